//! The transformations a value goes through before the rules look at it.
//!
//! Attackers hide a payload behind encodings a backend undoes but a naive matcher does not:
//! percent-encoding (nested: `%252e` is `%2e` is `.`), IIS' `%uXXXX`, HTML entities, JavaScript
//! escapes, NUL bytes, full-width Unicode look-alikes, SQL comments between keywords, shell
//! quoting inside command names. Each function here undoes one of them; [`Views`] applies them in
//! a fixed order and keeps the forms the rules match against.

use std::borrow::Cow;

use base64::Engine as _;
use unicode_normalization::UnicodeNormalization;

/// How many rounds of percent-decoding a value gets (`%25252e` needs three).
const URL_DECODE_ROUNDS: usize = 3;

/// The forms of one value the rules match against.
pub struct Views {
    /// Decoded (percent, entities, JS escapes), NULs removed, NFKC-folded, lowercased. Also
    /// what the libinjection tokenizers read: they ignore case themselves.
    pub text: String,
    /// `text` with SQL comments replaced by a space and whitespace runs compressed.
    pub sql: String,
    /// `text` as a shell reads it: quotes, `\` and `^` removed, separators spaced.
    pub cmd: String,
    /// Whether the decoded value contained a NUL byte.
    pub had_nul: bool,
}

impl Views {
    /// The views of a value already percent-decoded (or never encoded: JSON strings, parts).
    pub fn of_decoded(value: &[u8]) -> Views {
        // Values that arrive unencoded (JSON strings, multipart parts, headers) may still carry
        // a percent-encoded payload the application decodes itself; encoded ones get more rounds.
        let value = if value.contains(&b'%') {
            Cow::Owned(url_decode_repeatedly(value, false))
        } else {
            Cow::Borrowed(value)
        };
        let text = String::from_utf8_lossy(&value);
        let text = html_entity_decode(&text);
        let text = js_decode(&text);
        let had_nul = text.contains('\0');
        let text = if had_nul {
            Cow::Owned(text.replace('\0', ""))
        } else {
            text
        };
        let text = if text.is_ascii() {
            text.to_ascii_lowercase()
        } else {
            text.nfkc().collect::<String>().to_lowercase()
        };
        let sql = sql_form(&text);
        let cmd = cmd_form(&text);
        Views {
            text,
            sql,
            cmd,
            had_nul,
        }
    }
}

/// Percent-decodes until nothing changes, at most [`URL_DECODE_ROUNDS`] times.
pub fn url_decode_repeatedly(raw: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut value = url_decode(raw, plus_is_space).into_owned();
    for _ in 1..URL_DECODE_ROUNDS {
        if !value.contains(&b'%') {
            break;
        }
        match url_decode(&value, false) {
            Cow::Borrowed(_) => break,
            Cow::Owned(next) => value = next,
        }
    }
    value
}

/// One round of percent-decoding, including IIS' `%uXXXX`; malformed escapes stay as they are.
pub fn url_decode(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let encoded = raw.contains(&b'%') || (plus_is_space && raw.contains(&b'+'));
    if !encoded {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                if let Some(byte) = hex_byte(raw.get(i + 1..i + 3)) {
                    out.push(byte);
                    i += 3;
                } else if matches!(raw.get(i + 1), Some(b'u' | b'U'))
                    && let Some(c) = hex_char(raw.get(i + 2..i + 6))
                {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 6;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = digits?;
    let text = std::str::from_utf8(digits).ok()?;
    u8::from_str_radix(text, 16).ok()
}

fn hex_char(digits: Option<&[u8]>) -> Option<char> {
    let digits = digits?;
    let text = std::str::from_utf8(digits).ok()?;
    char::from_u32(u32::from_str_radix(text, 16).ok()?)
}

/// Decodes numeric (`&#60;`, `&#x3c;`, with or without `;`) and the common named entities.
pub fn html_entity_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character an entity at the start of `text` stands for, and the entity's length.
fn entity(text: &str) -> Option<(char, usize)> {
    let body = &text[1..];
    if let Some(number) = body.strip_prefix('#') {
        let (digits, radix, skip) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 3),
            None => (number, 10, 2),
        };
        let len = digits
            .bytes()
            .take(8)
            .take_while(|b| b.is_ascii_alphanumeric() && (*b as char).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(&digits[..len], radix).ok()?)?;
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((c, skip + len + semicolon));
    }
    const NAMED: [(&str, char); 17] = [
        ("lt", '<'),
        ("lbrace", '{'),
        ("rbrace", '}'),
        ("lcub", '{'),
        ("rcub", '}'),
        ("dollar", '$'),
        ("gt", '>'),
        ("quot", '"'),
        ("apos", '\''),
        ("amp", '&'),
        ("nbsp", ' '),
        ("colon", ':'),
        ("sol", '/'),
        ("lpar", '('),
        ("rpar", ')'),
        ("semi", ';'),
        ("tab", '\t'),
    ];
    let name_len = body
        .bytes()
        .take(8)
        .take_while(u8::is_ascii_alphabetic)
        .count();
    let name = body[..name_len].to_ascii_lowercase();
    let (_, c) = NAMED.iter().find(|(n, _)| *n == name)?;
    let semicolon = usize::from(body[name_len..].starts_with(';'));
    Some((*c, 1 + name_len + semicolon))
}

/// Decodes JavaScript escapes: `\uXXXX`, `\u{X..}`, `\xXX`.
pub fn js_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let bytes = rest.as_bytes();
        let decoded = match bytes.get(1) {
            Some(b'u') if bytes.get(2) == Some(&b'{') => {
                rest[3..].find('}').filter(|end| *end <= 6).and_then(|end| {
                    let c = char::from_u32(u32::from_str_radix(&rest[3..3 + end], 16).ok()?)?;
                    Some((c, end + 4))
                })
            }
            Some(b'u') => hex_char(rest.as_bytes().get(2..6)).map(|c| (c, 6)),
            Some(b'x') => hex_byte(rest.as_bytes().get(2..4)).map(|b| (char::from(b), 4)),
            _ => None,
        };
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('\\');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// SQL comments (`/* */`) become one space and whitespace runs one space, so
/// `union/**/select` reads `union select`; MySQL's executable comments (`/*!50000select*/`) keep
/// their body, since MySQL runs it.
fn sql_form(text: &str) -> String {
    // Most values have neither comments nor runs of whitespace: nothing to rewrite.
    let bytes = text.as_bytes();
    let rewrites = text.contains("/*")
        || text.contains("  ")
        || bytes.iter().any(|b| b.is_ascii_whitespace() && *b != b' ')
        || !text.is_ascii();
    if !rewrites {
        return text.to_owned();
    }
    fn space(out: &mut String) {
        if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("/*") {
            let (inside, next) = match after.find("*/") {
                Some(end) => (&after[..end], &after[end + 2..]),
                None => (after, ""),
            };
            space(&mut out);
            if let Some(executable) = inside.strip_prefix('!') {
                out.push_str(executable.trim_start_matches(|c: char| c.is_ascii_digit()));
                space(&mut out);
            }
            rest = next;
            continue;
        }
        if c.is_whitespace() {
            space(&mut out);
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The value as a shell would read a command in it (CRS' `cmdLine`): `c\a"t' /e^tc/pa''sswd`
/// reads `cat /etc/passwd`; `,` and `;` separate; no space before `/` or `(`.
fn cmd_form(text: &str) -> String {
    if text.is_ascii() {
        return ascii_cmd_form(text.as_bytes());
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '"' | '\'' | '^' => {}
            ',' | ';' => {
                out.push(';');
            }
            '/' | '(' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
            }
            c if c.is_whitespace() => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// [`cmd_form`] of ASCII text, byte by byte.
fn ascii_cmd_form(text: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for &b in text {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b',' | b';' => out.push(b';'),
            b'/' | b'(' => {
                while out.last() == Some(&b' ') {
                    out.pop();
                }
                out.push(b);
            }
            b if b.is_ascii_whitespace() || b == 0x0b => {
                if out.last() != Some(&b' ') {
                    out.push(b' ');
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// If `value` is plausibly base64 of text (at least 12 characters of the standard or URL-safe
/// alphabet, decoding to UTF-8 that is nearly all printable), the decoded text.
pub fn base64_text(value: &[u8]) -> Option<Vec<u8>> {
    let trimmed = value.trim_ascii();
    let alphabet =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b' ');
    if trimmed.len() < 12 || !trimmed.iter().all(alphabet) {
        return None;
    }
    // A `+` of the alphabet reads as a space once a query string is decoded.
    let unspaced;
    let trimmed = if trimmed.contains(&b' ') {
        unspaced = trimmed
            .iter()
            .map(|b| if *b == b' ' { b'+' } else { *b })
            .collect::<Vec<u8>>();
        &unspaced[..]
    } else {
        trimmed
    };
    if trimmed.len() < 12 || trimmed.len() > 16 * 1024 {
        return None;
    }
    let body = trimmed
        .strip_suffix(b"==")
        .or_else(|| trimmed.strip_suffix(b"="))
        .unwrap_or(trimmed);
    let url_safe = body.iter().any(|b| matches!(b, b'-' | b'_'));
    if !body
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
    {
        return None;
    }
    // Words and numbers are base64 too, but a real encoding mixes cases or digits.
    let mixed = body.iter().any(u8::is_ascii_uppercase) && body.iter().any(u8::is_ascii_lowercase);
    if !mixed {
        return None;
    }
    let decoded = if url_safe {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(body)
    }
    .ok()?;
    let text = std::str::from_utf8(&decoded).ok()?;
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    (printable * 20 >= text.chars().count() * 19).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_undoes_nesting_and_iis_escapes() {
        assert_eq!(url_decode_repeatedly(b"%252e%252e%252f", false), b"../");
        assert_eq!(url_decode_repeatedly(b"a+b%20c", true), b"a b c");
        assert_eq!(url_decode_repeatedly(b"a+b", false), b"a+b");
        assert_eq!(url_decode_repeatedly(b"%u003cscript", false), b"<script");
        assert_eq!(url_decode_repeatedly(b"100%", false), b"100%");
        assert_eq!(url_decode_repeatedly(b"%zz%4", false), b"%zz%4");
    }

    #[test]
    fn entities_and_escapes_are_decoded() {
        assert_eq!(
            html_entity_decode("&lt;a&#62;&#x3C;&#60b&quot;&bogus;"),
            "<a><<b\"&bogus;"
        );
        assert_eq!(js_decode(r"\u003cscript\x3e\u{2f}\q"), r"<script>/\q");
    }

    fn of(raw: &[u8], plus_is_space: bool) -> Views {
        Views::of_decoded(&url_decode_repeatedly(raw, plus_is_space))
    }

    #[test]
    fn views_fold_case_width_and_nuls() {
        let views = of("ＳＥＬＥＣＴ%00 *".as_bytes(), true);
        assert_eq!(views.text, "select *");
        assert!(views.had_nul);
        let views = of(b"UN/**/ION%20%20SEL/*!50000ECT*/", false);
        assert_eq!(views.sql, "un ion sel ect ");
        let views = Views::of_decoded(b"%3Csvg%2Fonload%3Dalert(1)%3E");
        assert_eq!(views.text, "<svg/onload=alert(1)>");
        let views = of(b"union/**/select", false);
        assert_eq!(views.sql, "union select");
        let views = of(br#";c\a"t' /e^tc/pa''sswd"#, false);
        assert_eq!(views.cmd, ";cat/etc/passwd");
    }

    #[test]
    fn base64_is_decoded_only_when_it_looks_like_text() {
        assert_eq!(
            base64_text(b"JyBvciAxPTEgLS0=").as_deref(),
            Some(&b"' or 1=1 --"[..])
        );
        assert_eq!(base64_text(b"helloworldfoobar"), None);
        assert_eq!(base64_text(b"0196f5a2-8c1e-7d3b"), None);
        assert_eq!(base64_text(b"short"), None);
        assert_eq!(
            base64_text(b"PGltZyBzcmM9eCBvbmVycm9yPWFsZXJ0KGRvY3VtZW50LmRvbWFpbik L2FsbA")
                .as_deref(),
            Some(&b"<img src=x onerror=alert(document.domain)>/all"[..])
        );
        assert_eq!(base64_text(b"two words here"), None);
    }
}
