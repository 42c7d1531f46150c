//! The transformations a value goes through before the rules look at it.
//!
//! Attackers hide a payload behind encodings a backend undoes but a naive matcher does not:
//! percent-encoding (nested: `%252e` is `%2e` is `.`), IIS' `%uXXXX`, HTML entities, JavaScript
//! escapes, NUL bytes, full-width Unicode look-alikes, SQL comments between keywords, shell
//! quoting inside command names. Each function here undoes one of them; [`Views`] applies them in
//! a fixed order and keeps the forms the rules match against.

use std::borrow::Cow;

use base64::Engine as _;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// How many rounds of percent-decoding a value gets (`%25252e` needs three).
const URL_DECODE_ROUNDS: usize = 3;

/// Kinds of bytes, as bits of a [`Shape`].
pub mod class {
    /// ASCII letters, digits, `_` and `-`: what bare tokens are made of.
    pub const TOKEN: u32 = 1;
    /// The base64 alphabets (standard and URL-safe), `=` and ASCII whitespace.
    pub const BASE64: u32 = 1 << 1;
    pub const PERCENT: u32 = 1 << 2;
    pub const NON_ASCII: u32 = 1 << 3;
    pub const AMPERSAND: u32 = 1 << 4;
    pub const BACKSLASH: u32 = 1 << 5;
    pub const NUL: u32 = 1 << 6;
    pub const UPPER: u32 = 1 << 7;
    /// ASCII whitespace other than the space: tab, line feed, form feed, carriage return.
    pub const CONTROL_SPACE: u32 = 1 << 8;
    /// The vertical tab, which a shell skips as whitespace but `is_ascii_whitespace` does not.
    pub const VERTICAL_TAB: u32 = 1 << 9;
    /// `=`, `<`, `>`: comparisons.
    pub const COMPARISON: u32 = 1 << 10;
    /// `#`: MySQL's comment, and the number sign of house and order numbers.
    pub const HASH: u32 = 1 << 17;
    /// The digit zero, which every raw marker holds (see `raw_markers` in the engine).
    pub const ZERO: u32 = 1 << 18;
    /// ASCII lowercase letters (with [`UPPER`], what tells an encoding from a word).
    pub const LOWER: u32 = 1 << 16;
    /// `'`, `"` and the backtick.
    pub const QUOTE: u32 = 1 << 11;
    pub const SEMICOLON: u32 = 1 << 12;
    pub const SLASH: u32 = 1 << 13;
    /// `<`, `=`, the backtick: what markup or an attribute injection needs.
    pub const MARKUP: u32 = 1 << 14;
    /// What the shell view rewrites: `\`, `"`, `'`, `^`, `,`, `/`, `(`.
    pub const SHELL: u32 = 1 << 15;
}

/// The class bits of each byte.
static CLASSES: [u32; 256] = {
    let mut classes = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let mut bits = 0;
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            bits |= class::TOKEN;
        }
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'+' | b'/' | b'-' | b'_' | b'=')
            || byte.is_ascii_whitespace()
        {
            bits |= class::BASE64;
        }
        if !byte.is_ascii() {
            bits |= class::NON_ASCII;
        }
        if byte.is_ascii_uppercase() {
            bits |= class::UPPER;
        }
        if byte.is_ascii_lowercase() {
            bits |= class::LOWER;
        }
        if byte.is_ascii_whitespace() && byte != b' ' {
            bits |= class::CONTROL_SPACE;
        }
        bits |= match byte {
            b'%' => class::PERCENT,
            b'&' => class::AMPERSAND,
            b'\\' => class::BACKSLASH | class::SHELL,
            0 => class::NUL,
            0x0b => class::VERTICAL_TAB,
            b'=' => class::COMPARISON | class::MARKUP,
            b'<' => class::COMPARISON | class::MARKUP,
            b'>' => class::COMPARISON,
            b'#' => class::HASH,
            b'0' => class::ZERO,
            b'\'' | b'"' => class::QUOTE | class::SHELL,
            b'`' => class::QUOTE | class::MARKUP,
            b';' => class::SEMICOLON,
            b'/' => class::SLASH | class::SHELL,
            b'^' | b',' | b'(' => class::SHELL,
            _ => 0,
        };
        classes[b] = bits;
        b += 1;
    }
    classes
};

/// Which [`class`]es of bytes a text holds, found in one pass, so that each check and
/// transformation that has nothing to do is skipped without reading the text again.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    any: u32,
    all: u32,
}

impl Shape {
    pub fn of(bytes: &[u8]) -> Shape {
        let (mut any, mut all) = (0, u32::MAX);
        for &b in bytes {
            let bits = CLASSES[usize::from(b)];
            any |= bits;
            all &= bits;
        }
        Shape { any, all }
    }

    /// Whether some byte is of one of `classes`.
    pub fn any(self, classes: u32) -> bool {
        self.any & classes != 0
    }

    /// Whether every byte is of all of `classes` (true of the empty text).
    pub fn all(self, classes: u32) -> bool {
        self.all & classes == classes
    }
}

/// The forms of one value the rules match against.
pub struct Views<'v> {
    /// Decoded (percent, entities, JS escapes), NULs removed, NFKC-folded, lowercased. Also
    /// what the libinjection tokenizers read: they ignore case themselves. Borrowed from the
    /// value when none of that changes anything.
    pub text: Cow<'v, str>,
    /// The [`Shape`] of `text`.
    pub shape: Shape,
    /// `text` with SQL comments replaced by a space and whitespace runs compressed; `None`
    /// when that is `text`.
    sql: Option<String>,
    /// `text` as a shell reads it: quotes, `\` and `^` removed, separators spaced; `None` when
    /// that is `text`, and where it is made byte by byte, only when asked for (see
    /// [`Views::cmd`]).
    cmd: Option<Vec<u8>>,
    /// Whether `text` has no whitespace beyond ASCII's, so that its shell view is rewritten
    /// byte by byte ([`shell_byte`]).
    bytewise: bool,
    /// Whether that byte-by-byte shell view differs from `text`.
    bytewise_shell: bool,
    /// Whether the decoded value contained a NUL byte.
    pub had_nul: bool,
}

impl<'v> Views<'v> {
    /// The views of a value already percent-decoded (or never encoded: JSON strings, parts).
    pub fn of_decoded(value: &'v [u8]) -> Views<'v> {
        Views::of_shaped(value, Shape::of(value))
    }

    /// [`Views::of_decoded`], for a value whose [`Shape`] is known.
    pub fn of_shaped(value: &'v [u8], mut shape: Shape) -> Views<'v> {
        // Values that arrive unencoded (JSON strings, multipart parts, headers) may still carry
        // a percent-encoded payload the application decodes itself; encoded ones get more rounds.
        let mut text = if shape.any(class::PERCENT) {
            let decoded = url_decode_repeatedly(value, false);
            shape = Shape::of(&decoded);
            Cow::Owned(utf8_lossy(&decoded).into_owned())
        } else {
            utf8_lossy(value)
        };
        // Each decoding that changes the text changes its shape, for the next one.
        if shape.any(class::AMPERSAND)
            && let Cow::Owned(decoded) = html_entity_decode(&text)
        {
            shape = Shape::of(decoded.as_bytes());
            text = Cow::Owned(decoded);
        }
        if shape.any(class::BACKSLASH)
            && let Cow::Owned(decoded) = js_decode(&text)
        {
            shape = Shape::of(decoded.as_bytes());
            text = Cow::Owned(decoded);
        }
        let had_nul = shape.any(class::NUL);
        if had_nul {
            text = Cow::Owned(text.replace('\0', ""));
            shape = Shape::of(text.as_bytes());
        }
        if !shape.any(class::NON_ASCII) {
            if shape.any(class::UPPER) {
                text.to_mut().make_ascii_lowercase();
                shape.any &= !class::UPPER;
            }
        } else {
            // Most non-ASCII text (accented names, addresses) is already in NFKC, which the
            // quick check tells without building the normalised copy; text in Latin-1's
            // letters is told and lowercased in one pass over its bytes.
            let lower = match latin1_lowercase(&text) {
                Some(lower) => lower,
                None => match is_nfkc_quick(text.chars()) {
                    IsNormalized::Yes => text.to_lowercase(),
                    IsNormalized::No | IsNormalized::Maybe => {
                        text.nfkc().collect::<String>().to_lowercase()
                    }
                },
            };
            text = Cow::Owned(lower);
            shape = Shape::of(text.as_bytes());
        }
        let unicode_space = shape.any(class::NON_ASCII) && unicode_space(&text);
        let space_runs = shape.any(class::CONTROL_SPACE) || unicode_space || double_space(&text);
        let sql = sql_form(&text, shape, space_runs).filter(|sql| *sql != *text);
        // The shell view of text with no whitespace beyond ASCII's is a byte-by-byte rewriting,
        // which `dfa::text_and_shell` reads from the text itself: it is made only if that pass
        // finds something.
        let cmd = if unicode_space {
            cmd_form(&text, shape, space_runs).filter(|cmd| *cmd != text.as_bytes())
        } else {
            None
        };
        Views {
            text,
            shape,
            sql,
            cmd,
            bytewise: !unicode_space,
            bytewise_shell: !unicode_space && shell_rewrites(shape, space_runs),
            had_nul,
        }
    }

    pub fn sql(&self) -> &[u8] {
        self.sql
            .as_ref()
            .map_or(self.text.as_bytes(), String::as_bytes)
    }

    /// Whether [`Views::sql`] is the text.
    pub fn sql_is_text(&self) -> bool {
        self.sql.is_none()
    }

    /// The shell view.
    pub fn cmd(&self) -> Cow<'_, [u8]> {
        match &self.cmd {
            Some(cmd) => Cow::Borrowed(cmd),
            None if self.bytewise_shell => Cow::Owned(bytewise_cmd_form(self.text.as_bytes())),
            None => Cow::Borrowed(self.text.as_bytes()),
        }
    }

    /// Whether the shell view is [`shell_byte`]'s rewriting of the text, byte by byte: the
    /// text has no whitespace beyond ASCII's.
    pub fn shell_bytewise(&self) -> bool {
        self.bytewise
    }
}

/// The characters U+0080 to U+00FF that NFKC leaves as they are (bit `c - 0x80`): all but the
/// compatibility characters (no-break space, diaeresis, ordinal indicators, macron, superscript
/// digits, acute accent, micro sign, cedilla and vulgar fractions).
const LATIN1_NFKC: u128 = {
    let compatibility = [
        0xa0, 0xa8, 0xaa, 0xaf, 0xb2, 0xb3, 0xb4, 0xb5, 0xb8, 0xb9, 0xba, 0xbc, 0xbd, 0xbe,
    ];
    let mut mask = u128::MAX;
    let mut i = 0;
    while i < compatibility.len() {
        mask &= !(1 << (compatibility[i] - 0x80));
        i += 1;
    }
    mask
};

/// `text` lowercased, if it is in NFKC and every character is ASCII or Latin-1 (U+0080 to
/// U+00FF), as most accented names and addresses of Western Europe are: what `to_lowercase`
/// makes of it, without the Unicode tables. `None` for any other text.
fn latin1_lowercase(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut lower = String::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b.is_ascii() {
            lower.push(char::from(b.to_ascii_lowercase()));
            at += 1;
            continue;
        }
        // Two bytes, `110000xx 10xxxxxx`, for U+0080 to U+00FF (the text is UTF-8).
        if !matches!(b, 0xc2 | 0xc3) {
            return None;
        }
        let c = ((b & 0x1f) << 6) | (bytes[at + 1] & 0x3f);
        if LATIN1_NFKC & (1 << (c - 0x80)) == 0 {
            return None;
        }
        // The capitals À to Þ (but ×) are their small letters less 0x20; the rest of the
        // block (ß and ÿ among them) has no other case within it.
        let c = if (0xc0..=0xde).contains(&c) && c != 0xd7 {
            c + 0x20
        } else {
            c
        };
        // A byte is the character of its value in Latin-1.
        lower.push(char::from(c));
        at += 2;
    }
    Some(lower)
}

/// `String::from_utf8_lossy`, with the fast check of valid text first (most values are).
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Percent-decodes until nothing changes, at most [`URL_DECODE_ROUNDS`] times (borrowed when
/// nothing was encoded).
pub fn url_decode_repeatedly(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let mut value = url_decode(raw, plus_is_space);
    for _ in 1..URL_DECODE_ROUNDS {
        if !value.contains(&b'%') {
            break;
        }
        match url_decode(&value, false) {
            Cow::Borrowed(_) => break,
            Cow::Owned(next) => value = Cow::Owned(next),
        }
    }
    value
}

/// One round of percent-decoding, including IIS' `%uXXXX`; malformed escapes stay as they are.
pub fn url_decode(raw: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    // One pass over what are mostly short values (a search for each byte would cost more in
    // setting up than in searching).
    let encoded = raw
        .iter()
        .any(|&b| b == b'%' || (plus_is_space && b == b'+'));
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

/// The number that `digits` (hex digits only, as every decoder reads them: no sign) write.
fn hex_value(digits: Option<&[u8]>) -> Option<u32> {
    let digits = digits.filter(|d| !d.is_empty())?;
    digits.iter().try_fold(0, |value, &digit| {
        Some(value << 4 | char::from(digit).to_digit(16)?)
    })
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    u8::try_from(hex_value(digits)?).ok()
}

fn hex_char(digits: Option<&[u8]>) -> Option<char> {
    char::from_u32(hex_value(digits)?)
}

/// Decodes numeric (`&#60;`, `&#x3c;`, with or without `;`) and the common named entities
/// (borrowed when there is none: a bare `&` is everyday punctuation).
pub fn html_entity_decode(text: &str) -> Cow<'_, str> {
    decode_each(text, '&', entity)
}

/// `text` with every `marker` that begins what `decode` reads (a character and the length it
/// was written in) replaced by that character; borrowed when none does.
fn decode_each(
    text: &str,
    marker: char,
    decode: fn(&str) -> Option<(char, usize)>,
) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    // `text[..copied]` is in `out`; the next marker is looked for from `from`.
    let (mut copied, mut from) = (0, 0);
    while let Some(found) = text[from..].find(marker) {
        let at = from + found;
        match decode(&text[at..]) {
            Some((c, len)) => {
                let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                out.push_str(&text[copied..at]);
                out.push(c);
                copied = at + len;
                from = copied;
            }
            None => from = at + marker.len_utf8(),
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
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

/// Decodes JavaScript escapes: `\uXXXX`, `\u{X..}`, `\xXX` (borrowed when there is none).
pub fn js_decode(text: &str) -> Cow<'_, str> {
    decode_each(text, '\\', js_escape)
}

/// The character a JavaScript escape at the start of `text` stands for, and its length.
fn js_escape(text: &str) -> Option<(char, usize)> {
    let bytes = text.as_bytes();
    match bytes.get(1) {
        Some(b'u') if bytes.get(2) == Some(&b'{') => {
            let end = text[3..].find('}').filter(|end| *end <= 6)?;
            hex_char(bytes.get(3..3 + end)).map(|c| (c, end + 4))
        }
        Some(b'u') => hex_char(bytes.get(2..6)).map(|c| (c, 6)),
        Some(b'x') => hex_byte(bytes.get(2..4)).map(|b| (char::from(b), 4)),
        _ => None,
    }
}

/// Whether `text` has two spaces in a row: one pass with no branch per byte, which the compiler
/// vectorises (a substring search would first build a searcher, for every value).
fn double_space(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .zip(bytes.iter().skip(1))
        .fold(false, |found, (a, b)| found | ((*a == b' ') & (*b == b' ')))
}

/// Whether `bytes` has `/*` in it.
pub fn has_comment_start(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|pair| pair == b"/*")
}

/// SQL comments (`/* */`) become one space and whitespace runs one space, so
/// `union/**/select` reads `union select`; MySQL's executable comments (`/*!50000select*/`) keep
/// their body, since MySQL runs it.
/// `None` when there is nothing to rewrite.
fn sql_form(text: &str, shape: Shape, space_runs: bool) -> Option<String> {
    // Most values have neither comments nor runs of whitespace.
    let rewrites = (shape.any(class::SLASH) && has_comment_start(text.as_bytes())) || space_runs;
    if !rewrites {
        return None;
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
    Some(out)
}

/// The value as a shell would read a command in it (CRS' `cmdLine`): `c\a"t' /e^tc/pa''sswd`
/// reads `cat /etc/passwd`; `,` and `;` separate; no space before `/` or `(`.
/// `None` when the text has nothing a shell would read differently.
fn cmd_form(text: &str, shape: Shape, space_runs: bool) -> Option<Vec<u8>> {
    if !shell_rewrites(shape, space_runs) {
        return None;
    }
    if !shape.any(class::NON_ASCII) {
        return Some(bytewise_cmd_form(text.as_bytes()));
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
    Some(out.into_bytes())
}

/// Whether `text` has whitespace beyond ASCII's (the non-breaking space, say, or the line
/// separator). Every such character's UTF-8 begins with one of four bytes, which accented
/// letters' do not: only text with one of those is read character by character.
fn unicode_space(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, 0xc2 | 0xe1 | 0xe2 | 0xe3))
        && text.chars().any(|c| !c.is_ascii() && c.is_whitespace())
}

/// Whether text of shape `shape` has anything [`cmd_form`] rewrites.
fn shell_rewrites(shape: Shape, space_runs: bool) -> bool {
    shape.any(class::SHELL | class::VERTICAL_TAB) || space_runs
}

/// What the shell view makes of a byte (of text with no whitespace beyond ASCII's: every byte
/// of another character is [`ShellByte::Kept`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ShellByte {
    /// Quoting (`\`, `"`, `'`, `^`): left out.
    Dropped,
    /// Whitespace: one space for a run of it, none before a [`ShellByte::Joined`] byte.
    Space,
    /// `/` and `(`: kept, with no space before them.
    Joined,
    /// `,` and `;`: a `;`.
    Separator,
    Kept,
}

impl ShellByte {
    /// The byte the shell view writes for `byte`, of this kind (a space it owes aside).
    pub fn written(self, byte: u8) -> Option<u8> {
        match self {
            ShellByte::Dropped | ShellByte::Space => None,
            ShellByte::Separator => Some(b';'),
            ShellByte::Joined | ShellByte::Kept => Some(byte),
        }
    }
}

pub fn shell_byte(b: u8) -> ShellByte {
    match b {
        b'\\' | b'"' | b'\'' | b'^' => ShellByte::Dropped,
        b',' | b';' => ShellByte::Separator,
        b'/' | b'(' => ShellByte::Joined,
        b if b.is_ascii_whitespace() || b == 0x0b => ShellByte::Space,
        _ => ShellByte::Kept,
    }
}

/// [`cmd_form`] of text with no whitespace beyond ASCII's, byte by byte (the bytes of other
/// characters are kept, as `cmd_form` keeps the characters).
fn bytewise_cmd_form(text: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for &b in text {
        let kind = shell_byte(b);
        match kind {
            ShellByte::Space => {
                if out.last() != Some(&b' ') {
                    out.push(b' ');
                }
            }
            ShellByte::Joined => {
                while out.last() == Some(&b' ') {
                    out.pop();
                }
            }
            ShellByte::Dropped | ShellByte::Separator | ShellByte::Kept => {}
        }
        out.extend(kind.written(b));
    }
    out
}

/// If `value` is plausibly base64 of text (at least 8 characters of the standard or URL-safe
/// alphabet, decoding to UTF-8 that is nearly all printable), the decoded text.
pub fn base64_text(value: &[u8]) -> Option<Vec<u8>> {
    let trimmed = value.trim_ascii();
    let alphabet =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b' ');
    if trimmed.len() < 8 || !trimmed.iter().all(alphabet) {
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
    if trimmed.len() < 8 || trimmed.len() > 16 * 1024 {
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
    fn latin1_text_is_lowercased_as_unicode_would_and_the_rest_is_left_to_it() {
        for c in (0x80..=0xff).filter_map(char::from_u32) {
            let text = format!("Ab{c}Z{c}");
            let expected =
                (is_nfkc_quick(text.chars()) == IsNormalized::Yes).then(|| text.to_lowercase());
            assert_eq!(latin1_lowercase(&text), expected, "U+{:04X}", u32::from(c));
        }
        assert_eq!(
            latin1_lowercase("12 Rue de l'Église, BÂTIMENT B").as_deref(),
            Some("12 rue de l'église, bâtiment b")
        );
        // Beyond the block (Œ, ẞ, a line separator, a combining accent): the tables decide.
        for text in ["Œuvre", "STRAẞE", "a\u{2028}b", "e\u{301}", "Ÿ", "日本"] {
            assert_eq!(latin1_lowercase(text), None, "{text}");
        }
    }

    #[test]
    fn percent_decoding_undoes_nesting_and_iis_escapes() {
        assert_eq!(*url_decode_repeatedly(b"%252e%252e%252f", false), *b"../");
        assert_eq!(*url_decode_repeatedly(b"a+b%20c", true), *b"a b c");
        assert_eq!(*url_decode_repeatedly(b"a+b", false), *b"a+b");
        assert_eq!(*url_decode_repeatedly(b"%u003cscript", false), *b"<script");
        assert_eq!(*url_decode_repeatedly(b"100%", false), *b"100%");
        assert_eq!(*url_decode_repeatedly(b"%zz%4", false), *b"%zz%4");
        // A sign is no hex digit, to us as to the servers behind us.
        assert_eq!(
            *url_decode_repeatedly(b"%+f%u+03c%2B", false),
            *b"%+f%u+03c+"
        );
        assert_eq!(
            *url_decode_repeatedly(b"%u00e9%C3%A9", false),
            *"éé".as_bytes()
        );
    }

    #[test]
    fn entities_and_escapes_are_decoded() {
        assert_eq!(
            html_entity_decode("&lt;a&#62;&#x3C;&#60b&quot;&bogus;"),
            "<a><<b\"&bogus;"
        );
        assert_eq!(js_decode(r"\u003cscript\x3e\u{2f}\q"), r"<script>/\q");
        assert_eq!(
            html_entity_decode("fish & chips &amp; peas &"),
            "fish & chips & peas &"
        );
        assert_eq!(js_decode(r"C:\temp\x41\"), r"C:\tempA\");
        // As in percent escapes, a sign is no hex digit.
        assert_eq!(js_decode(r"\u{+3c}\u+03c\x+3"), r"\u{+3c}\u+03c\x+3");
    }

    /// A bare `&` or `\` is punctuation, not an encoding: the text comes back as it was,
    /// uncopied.
    #[test]
    fn text_with_nothing_to_decode_is_borrowed() {
        for text in ["Love, Alex & the kids.", "R&D", "&", "&&;", "&#;", "&#xzz"] {
            assert!(
                matches!(html_entity_decode(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        for text in [r"C:\temp", r"\", r"\u12", r"\x4", r"\u{1234567}"] {
            assert!(
                matches!(js_decode(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    fn of(raw: &[u8], plus_is_space: bool) -> (String, String, String, bool) {
        let decoded = url_decode_repeatedly(raw, plus_is_space);
        let views = Views::of_decoded(&decoded);
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            views.text.to_string(),
            text(views.sql()),
            text(&views.cmd()),
            views.had_nul,
        )
    }

    #[test]
    fn views_fold_case_width_and_nuls() {
        let (text, _, _, had_nul) = of("ＳＥＬＥＣＴ%00 *".as_bytes(), true);
        assert_eq!(text, "select *");
        assert!(had_nul);
        let (_, sql, _, _) = of(b"UN/**/ION%20%20SEL/*!50000ECT*/", false);
        assert_eq!(sql, "un ion sel ect ");
        let views = Views::of_decoded(b"%3Csvg%2Fonload%3Dalert(1)%3E");
        assert_eq!(views.text, "<svg/onload=alert(1)>");
        let (_, sql, _, _) = of(b"union/**/select", false);
        assert_eq!(sql, "union select");
        let (_, _, cmd, _) = of(br#";c\a"t' /e^tc/pa''sswd"#, false);
        assert_eq!(cmd, ";cat/etc/passwd");
    }

    /// Accented text with no whitespace beyond ASCII's gets its shell view byte by byte; what
    /// that makes is what reading it character by character makes. Text with other whitespace
    /// is read character by character.
    #[test]
    fn accented_text_gets_the_shell_view_characters_would_give() {
        for text in [
            "Église, l'été / (rue) ; \"x\"",
            "caf\u{e9} cr\u{e8}me  mugs",
            "\u{201c}quoted\u{201d} \u{2014} dash\u{2026} 5\u{20ac}",
            "a\u{a0}b",
            "a\u{2028}b ;c",
            "x\u{85}y /z",
            "\u{1680}ls",
        ] {
            let views = Views::of_decoded(text.as_bytes());
            let by_chars = cmd_form(&views.text, views.shape, true)
                .unwrap_or_else(|| views.text.as_bytes().to_vec());
            assert_eq!(*views.cmd(), *by_chars, "{text:?}");
            let separators = ["\u{2028}", "\u{85}", "\u{1680}"];
            assert_eq!(
                views.shell_bytewise(),
                !separators.iter().any(|s| text.contains(s)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn views_that_change_nothing_are_the_text() {
        let views = Views::of_decoded(b"plain words, nothing more");
        assert!(matches!(views.text, Cow::Borrowed(_)));
        assert!(views.sql_is_text());
        assert_eq!(&*views.cmd(), b"plain words; nothing more");
        let views = Views::of_decoded(b"slate/orange");
        assert!(views.sql_is_text());
        assert_eq!(&*views.cmd(), b"slate/orange");
        let views = Views::of_decoded(b"Two\tWords");
        assert_eq!(views.text, "two\twords");
        assert_eq!(views.sql(), b"two words");
        assert_eq!(&*views.cmd(), b"two words");
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
        // Short ones too, as long as they decode to text: mixed-case words do not.
        assert_eq!(base64_text(b"ZWNobyBo").as_deref(), Some(&b"echo h"[..]));
        assert_eq!(base64_text(b"PlayStation"), None);
        assert_eq!(base64_text(b"MacBookPro"), None);
        assert_eq!(base64_text(b"Abc1234"), None);
    }
}
