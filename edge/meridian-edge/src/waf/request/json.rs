//! A JSON document read straight into the request's values: its strings as arguments named by
//! the member they belong to, its member names as argument names. Numbers, booleans and null
//! carry nothing to inject. Nothing is built but the values, and a string without escapes is
//! borrowed from the body.
//!
//! The grammar is RFC 8259's, read as strictly as the cores' parser (serde_json) reads it: what
//! the cores take as a document is read the same way here, and what is malformed is inspected
//! whole. Two documents the cores refuse are read here: numbers beyond a double's range, and
//! nesting beyond serde_json's 128 levels, which the WAF refuses itself (deeper than
//! [`MAX_JSON_DEPTH`], the rest of a value is checked for syntax and skipped, and the limit
//! reported, rule 920380).

use std::borrow::Cow;

use super::{Encoding, MAX_JSON_DEPTH, Parsed, Targets, Value};

/// Why a document was refused (only whether it was matters: it is then inspected whole).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

type Result<T> = std::result::Result<T, Malformed>;

/// Reads `body` into `parsed`, or says it is not one JSON document.
pub fn read<'a>(parsed: &mut Parsed<'a>, body: &'a [u8]) -> Result<()> {
    // Once for the whole body (strings must be UTF-8, and outside them only ASCII is valid),
    // so each string is a slice of text.
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    // Compact documents (what clients send) have no control characters at all: then no string
    // needs checking for one. One branch-free pass, which the compiler vectorises.
    let controls = body.iter().fold(false, |any, b| any | (*b < 0x20));
    let mut reader = Reader {
        text,
        bytes: body,
        controls,
        at: 0,
        parsed,
    };
    reader.value(Cow::Borrowed(""), 0)?;
    reader.whitespace();
    if reader.at == body.len() {
        Ok(())
    } else {
        Err(Malformed)
    }
}

struct Reader<'p, 'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// Whether the body has control characters (whitespace between tokens, or malformed).
    controls: bool,
    at: usize,
    parsed: &'p mut Parsed<'a>,
}

impl<'a> Reader<'_, 'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Just after a `[` or `{`: whether the container is empty (its `close` is next, and read).
    fn empty(&mut self, close: u8) -> bool {
        self.whitespace();
        let empty = self.peek() == Some(close);
        if empty {
            self.at += 1;
        }
        empty
    }

    /// After an item of a container: whether another follows (`,`, read) or the container
    /// ends (`close`, read).
    fn more(&mut self, close: u8) -> Result<bool> {
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(byte) if byte == close => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(Malformed),
        }
    }

    /// A member's `"name" :`.
    fn member_name(&mut self) -> Result<Cow<'a, str>> {
        self.whitespace();
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        let name = self.string()?;
        self.whitespace();
        self.expect(b':')?;
        Ok(name)
    }

    /// One value, named `name`, at nesting `depth` (the document is at 0).
    fn value(&mut self, name: Cow<'a, str>, depth: usize) -> Result<()> {
        self.whitespace();
        if depth > MAX_JSON_DEPTH {
            self.parsed.over_limits = true;
            return self.skip();
        }
        match self.peek().ok_or(Malformed)? {
            b'"' => {
                let text = self.string()?;
                self.parsed.push(Value {
                    targets: Targets::ARGS,
                    name,
                    raw: text_bytes(text),
                    encoding: Encoding::Plain,
                });
                Ok(())
            }
            b'[' => {
                self.at += 1;
                if self.empty(b']') {
                    return Ok(());
                }
                loop {
                    self.value(name.clone(), depth + 1)?;
                    if !self.more(b']')? {
                        return Ok(());
                    }
                }
            }
            b'{' => {
                self.at += 1;
                if self.empty(b'}') {
                    return Ok(());
                }
                loop {
                    let key = self.member_name()?;
                    self.value(key.clone(), depth + 1)?;
                    // After the member's own values, as serde's visitor read them before.
                    self.parsed.push(Value {
                        targets: Targets::ARG_NAMES,
                        raw: text_bytes(key.clone()),
                        name: key,
                        encoding: Encoding::Plain,
                    });
                    if !self.more(b'}')? {
                        return Ok(());
                    }
                }
            }
            _ => self.scalar(),
        }
    }

    /// A number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Result<()> {
        // Each literal compared as a constant: no call per number, boolean or null.
        let rest = &self.bytes[self.at..];
        let length = match rest.first() {
            Some(b't') if rest.starts_with(b"true") => 4,
            Some(b'f') if rest.starts_with(b"false") => 5,
            Some(b'n') if rest.starts_with(b"null") => 4,
            Some(b't' | b'f' | b'n') => return Err(Malformed),
            _ => return self.number(),
        };
        self.at += length;
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Malformed),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Result<()> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(Malformed)
        } else {
            Ok(())
        }
    }

    /// A string, at its opening quote: borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        self.at += 1;
        let start = self.at;
        let end = self.plain_run()?;
        if self.bytes[end] == b'"' {
            self.at = end + 1;
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        let mut owned = String::with_capacity(end - start + 16);
        owned.push_str(&self.text[start..end]);
        self.at = end;
        loop {
            match self.bytes[self.at] {
                b'"' => {
                    self.at += 1;
                    return Ok(Cow::Owned(owned));
                }
                _ => {
                    // A backslash.
                    self.at += 1;
                    self.escape(&mut owned)?;
                    let run = self.at;
                    let end = self.plain_run()?;
                    owned.push_str(&self.text[run..end]);
                    self.at = end;
                }
            }
        }
    }

    /// Where the run of unescaped characters from `at` ends: at a quote or a backslash.
    /// Control characters are not allowed in a string.
    fn plain_run(&self) -> Result<usize> {
        let rest = &self.bytes[self.at..];
        let length = memchr::memchr2(b'"', b'\\', rest).ok_or(Malformed)?;
        if self.controls && rest[..length].iter().any(|b| *b < 0x20) {
            return Err(Malformed);
        }
        Ok(self.at + length)
    }

    /// One escape, after its backslash.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let byte = self.peek().ok_or(Malformed)?;
        self.at += 1;
        let c = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        // A leading surrogate must be followed by a trailing one.
                        self.expect(b'\\')?;
                        self.expect(b'u')?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Malformed);
                        }
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        char::from_u32(code).ok_or(Malformed)?
                    }
                    0xDC00..=0xDFFF => return Err(Malformed),
                    _ => char::from_u32(unit).ok_or(Malformed)?,
                }
            }
            _ => return Err(Malformed),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.bytes.get(self.at..self.at + 4).ok_or(Malformed)?;
        let mut value = 0;
        for digit in digits {
            let nibble = char::from(*digit).to_digit(16).ok_or(Malformed)?;
            value = value * 16 + nibble;
        }
        self.at += 4;
        Ok(value)
    }

    /// Checks the syntax of the value at `at` and moves past it, keeping nothing. Iterative:
    /// how deep a document nests is the sender's choice.
    fn skip(&mut self) -> Result<()> {
        // The containers open around the position, innermost last.
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.whitespace();
            // A value.
            match self.peek().ok_or(Malformed)? {
                b'"' => drop(self.string()?),
                b'[' => {
                    self.at += 1;
                    if !self.empty(b']') {
                        open.push(b']');
                        continue;
                    }
                }
                b'{' => {
                    self.at += 1;
                    if !self.empty(b'}') {
                        open.push(b'}');
                        drop(self.member_name()?);
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            // After a value: the next one in its container, or the containers' ends.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                if self.more(close)? {
                    if close == b'}' {
                        drop(self.member_name()?);
                    }
                    break;
                }
                open.pop();
            }
        }
    }
}

/// A text as bytes, still borrowed if it was.
fn text_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value's name, its text, and whether it is a member name.
    type Read = Vec<(String, String, bool)>;

    fn values(body: &str) -> Result<(Read, bool)> {
        let mut parsed = Parsed::default();
        read(&mut parsed, body.as_bytes())?;
        let values = parsed
            .values
            .iter()
            .map(|v| {
                (
                    v.name.to_string(),
                    String::from_utf8(v.raw.to_vec()).unwrap(),
                    v.targets == Targets::ARG_NAMES,
                )
            })
            .collect();
        Ok((values, parsed.over_limits))
    }

    #[test]
    fn strings_and_member_names_are_read_in_order() {
        let (read, over_limits) = values(
            r#" {"a": ["x", 1, -2.5e+3, true, null, {"b": "caf\u00e9 \"q\" \ud83d\ude00\n"}], "c": {}, "d": []} "#,
        )
        .unwrap();
        let expected = [
            ("a", "x", false),
            ("b", "café \"q\" 😀\n", false),
            ("b", "b", true),
            ("a", "a", true),
            ("c", "c", true),
            ("d", "d", true),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(n, r, k)| (n.to_string(), r.to_string(), *k))
            .collect();
        assert_eq!(read, expected);
        assert!(!over_limits);
        assert_eq!(values(r#""top""#).unwrap().0[0].1, "top");
    }

    /// What serde_json (the cores' parser) refuses is refused, and what it takes is taken.
    #[test]
    fn the_grammar_is_the_cores_grammar() {
        let documents = [
            r#"{"a":1}"#,
            r#"{"a":1,}"#,
            r#"[1,2,]"#,
            r#"[01]"#,
            r#"[-]"#,
            r#"[1.]"#,
            r#"[.5]"#,
            r#"[1e]"#,
            r#"[1E-7, 0, -0, 0.0e0]"#,
            r#"{'a':1}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":true false}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00\ud800"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":"\x41"}"#,
            r#"{"a":"\u00G1"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open"#,
            r#"{"a":1} x"#,
            r#"{"a":1}   "#,
            r#"{}{}"#,
            r#"nul"#,
            r#"[[[]],{"b":[{}]}]"#,
            "",
            " ",
        ];
        for document in documents {
            let cores = serde_json::from_str::<serde_json::Value>(document).is_ok();
            assert_eq!(values(document).is_ok(), cores, "{document:?}");
        }
        let mut parsed = Parsed::default();
        assert_eq!(read(&mut parsed, b"[\"\xff\"]"), Err(Malformed));
    }

    #[test]
    fn deep_documents_are_skipped_past_the_limit_without_recursion() {
        let deep = |levels: usize| {
            format!(
                "{}\"inside\"{}",
                "{\"k\":[".repeat(levels),
                "]}".repeat(levels)
            )
        };
        let (read, over_limits) = values(&deep(10)).unwrap();
        assert!(!over_limits);
        assert!(read.iter().any(|(_, raw, _)| raw == "inside"));
        let (read, over_limits) = values(&deep(20)).unwrap();
        assert!(over_limits);
        assert!(!read.iter().any(|(_, raw, _)| raw == "inside"));
        // Far deeper than any stack would take recursively, and still checked.
        assert!(values(&deep(30_000)).unwrap().1);
        assert_eq!(values(&deep(30_000)[1..]), Err(Malformed));
    }
}
