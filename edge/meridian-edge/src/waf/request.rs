//! What the WAF inspects: a request taken apart into named values, each tagged with where it
//! came from, with limits on how much is taken apart.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, header};

use super::rules::Targets;

mod json;

/// At most this many values (arguments, cookies, headers, parts) are inspected; a request with
/// more is refused (rule 920380), so nothing hides behind the limit.
pub const MAX_VALUES: usize = 1024;
/// JSON nested deeper than this is refused (rule 920380).
pub const MAX_JSON_DEPTH: usize = 32;
/// Multipart bodies with more parts than this are refused (rule 920380).
pub const MAX_PARTS: usize = 100;

/// One value of the request.
pub struct Value<'a> {
    /// Where it came from (one or more [`Targets`] bits).
    pub targets: Targets,
    /// Its name: the argument, cookie or header name, `""` for the path and bodies.
    pub name: Cow<'a, str>,
    pub raw: Cow<'a, [u8]>,
    /// Whether `raw` is percent-encoded, and whether `+` stands for a space in it.
    pub encoding: Encoding,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    /// A path: percent-encoded, `+` is a plus.
    Path,
    /// A query string or urlencoded form: percent-encoded, `+` is a space.
    Form,
    /// Already decoded (JSON strings, multipart parts, headers).
    Plain,
}

/// The body formats the WAF takes apart. Anything else is inspected whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BodyKind {
    None,
    Form,
    Json,
    Multipart,
    Xml,
    Other,
}

/// The strings and member names of `text`, if it is one JSON document within the limits (a
/// cursor or token that decodes to one, say).
pub fn json_texts(text: &[u8]) -> Option<Vec<Cow<'_, [u8]>>> {
    let mut parsed = Parsed::with_capacity(8);
    json::read(&mut parsed, text).ok()?;
    if parsed.over_limits {
        return None;
    }
    Some(parsed.values.into_iter().map(|value| value.raw).collect())
}

/// The request's values, and what taking it apart found wrong.
#[derive(Default)]
pub struct Parsed<'a> {
    pub values: Vec<Value<'a>>,
    /// Over [`MAX_VALUES`], [`MAX_JSON_DEPTH`] or [`MAX_PARTS`].
    pub over_limits: bool,
    /// A multipart part's header announces a charset or a transfer encoding (rules 922110/922120).
    pub multipart_part_headers: bool,
    /// A multipart part name with quoting characters (rule 920120).
    pub multipart_bad_name: bool,
    /// A multipart body without a usable boundary.
    pub multipart_malformed: bool,
}

impl<'a> Parsed<'a> {
    /// Room for `values` values before the first reallocation.
    pub fn with_capacity(values: usize) -> Parsed<'a> {
        Parsed {
            values: Vec::with_capacity(values),
            ..Parsed::default()
        }
    }

    fn push(&mut self, value: Value<'a>) {
        if self.values.len() >= MAX_VALUES {
            self.over_limits = true;
        } else {
            self.values.push(value);
        }
    }

    fn push_pair(
        &mut self,
        name: &'a [u8],
        value: &'a [u8],
        encoding: Encoding,
        names: Targets,
        values: Targets,
    ) {
        // Most names are plain words (`q`, `limit`, `category_id`): borrowed as they are,
        // without a copy for each of the two values that carry them.
        let decoded_name = match encoding {
            Encoding::Plain => String::from_utf8_lossy(name),
            _ => match super::normalize::url_decode(name, encoding == Encoding::Form) {
                Cow::Borrowed(plain) => String::from_utf8_lossy(plain),
                Cow::Owned(decoded) => Cow::Owned(String::from_utf8_lossy(&decoded).into_owned()),
            },
        };
        self.push(Value {
            targets: names,
            name: decoded_name.clone(),
            raw: Cow::Borrowed(name),
            encoding,
        });
        self.push(Value {
            targets: values,
            name: decoded_name,
            raw: Cow::Borrowed(value),
            encoding,
        });
    }

    /// `a=1&b=2` pairs (query strings, urlencoded bodies).
    pub fn form(&mut self, input: &'a [u8]) {
        for pair in input.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = split_once(pair, b'=');
            self.push_pair(
                name,
                value,
                Encoding::Form,
                Targets::ARG_NAMES,
                Targets::ARGS,
            );
        }
    }

    /// The path, percent-encoded as sent.
    pub fn path(&mut self, path: &'a [u8]) {
        self.push(Value {
            targets: Targets::PATH,
            name: Cow::Borrowed(""),
            raw: Cow::Borrowed(path),
            encoding: Encoding::Path,
        });
    }

    /// Headers, cookies included. Headers that carry no user text (framing, negotiation,
    /// credentials the edge verifies itself) are not inspected.
    pub fn headers(&mut self, headers: &'a HeaderMap) {
        for (name, value) in headers {
            if *name == header::COOKIE {
                for cookie in value.as_bytes().split(|b| *b == b';') {
                    let cookie = cookie.trim_ascii();
                    if cookie.is_empty() {
                        continue;
                    }
                    let (name, value) = split_once(cookie, b'=');
                    self.push_pair(
                        name,
                        value,
                        Encoding::Path,
                        Targets::COOKIE_NAMES,
                        Targets::COOKIES,
                    );
                }
                continue;
            }
            if uninspected(name) {
                continue;
            }
            let targets = if FILE_NAME_HEADERS.contains(&name.as_str()) {
                // What upload endpoints take a file's name from.
                Targets::HEADERS | Targets::FILES
            } else if *name == header::USER_AGENT {
                Targets::HEADERS | Targets::USER_AGENT
            } else if *name == header::REFERER {
                Targets::HEADERS | Targets::REFERER
            } else {
                Targets::HEADERS
            };
            self.push(Value {
                targets,
                name: Cow::Borrowed(name.as_str()),
                raw: Cow::Borrowed(value.as_bytes()),
                encoding: Encoding::Plain,
            });
        }
    }

    /// The body, taken apart by its kind.
    pub fn body(&mut self, kind: BodyKind, content_type: &str, body: &'a [u8]) {
        if body.is_empty() {
            return;
        }
        match kind {
            BodyKind::None => {}
            BodyKind::Form => self.form(body),
            BodyKind::Json => self.json(body),
            BodyKind::Multipart => match boundary(content_type) {
                Some(boundary) => self.multipart(boundary.as_bytes(), body),
                None => {
                    self.multipart_malformed = true;
                    self.whole_body(body);
                }
            },
            BodyKind::Xml => {
                // The document whole, for what only its structure shows (entities); its
                // texts, as the arguments an application reads from it.
                self.push(Value {
                    targets: Targets::BODY,
                    name: Cow::Borrowed(""),
                    raw: Cow::Borrowed(body),
                    encoding: Encoding::Plain,
                });
                for text in xml_texts(body) {
                    self.push(Value {
                        targets: Targets::ARGS,
                        name: Cow::Borrowed(""),
                        raw: Cow::Owned(text),
                        encoding: Encoding::Plain,
                    });
                }
            }
            BodyKind::Other => self.whole_body(body),
        }
    }

    fn whole_body(&mut self, body: &'a [u8]) {
        self.push(Value {
            targets: Targets::BODY | Targets::ARGS,
            name: Cow::Borrowed(""),
            raw: Cow::Borrowed(body),
            encoding: Encoding::Plain,
        });
    }

    /// The strings of a JSON document and the names of its members ([`json`]). A document
    /// that does not parse is inspected whole; the values read before the error are dropped.
    fn json(&mut self, body: &'a [u8]) {
        let (values, over_limits) = (self.values.len(), self.over_limits);
        if json::read(self, body).is_err() {
            self.values.truncate(values);
            self.over_limits = over_limits;
            self.whole_body(body);
        }
    }

    fn multipart(&mut self, boundary: &[u8], body: &'a [u8]) {
        let delimiter = [b"--", boundary].concat();
        let mut parts = 0;
        let mut rest = body;
        let Some(first) = find(rest, &delimiter) else {
            self.multipart_malformed = true;
            self.whole_body(body);
            return;
        };
        rest = &rest[first + delimiter.len()..];
        loop {
            if rest.starts_with(b"--") {
                return;
            }
            let Some(end) = find(rest, &delimiter) else {
                self.multipart_malformed = true;
                return;
            };
            let part = &rest[..end];
            rest = &rest[end + delimiter.len()..];
            parts += 1;
            if parts > MAX_PARTS {
                self.over_limits = true;
                return;
            }
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let part = part.strip_suffix(b"\r\n").unwrap_or(part);
            let Some(split) = find(part, b"\r\n\r\n") else {
                self.multipart_malformed = true;
                continue;
            };
            let (head, content) = (&part[..split], &part[split + 4..]);
            let mut name = Cow::Borrowed("");
            let mut file = false;
            let mut text = true;
            for line in head.split(|b| *b == b'\n') {
                let line = line.trim_ascii();
                let lower = line.to_ascii_lowercase();
                if lower.starts_with(b"content-disposition:") {
                    if let Some(value) = disposition_param(line, b"name") {
                        if value
                            .iter()
                            .any(|b| matches!(b, b'"' | b'\'' | b';' | b'='))
                        {
                            self.multipart_bad_name = true;
                        }
                        name = Cow::Owned(String::from_utf8_lossy(value).into_owned());
                        self.push(Value {
                            targets: Targets::ARG_NAMES,
                            name: name.clone(),
                            raw: Cow::Borrowed(value),
                            encoding: Encoding::Plain,
                        });
                    }
                    if let Some(filename) = disposition_param(line, b"filename") {
                        file = true;
                        self.push(Value {
                            targets: Targets::FILES,
                            name: name.clone(),
                            raw: Cow::Borrowed(filename),
                            encoding: Encoding::Plain,
                        });
                    }
                } else if lower.starts_with(b"content-type:") {
                    text = lower.windows(5).any(|w| w == b"text/")
                        || lower.windows(4).any(|w| w == b"json")
                        || lower.windows(3).any(|w| w == b"xml");
                    if lower.windows(8).any(|w| w == b"charset=") {
                        self.multipart_part_headers = true;
                    }
                } else if lower.starts_with(b"content-transfer-encoding:") {
                    self.multipart_part_headers = true;
                }
            }
            // Uploaded files are data, not arguments, unless they are text.
            if !file || text {
                self.push(Value {
                    targets: Targets::ARGS,
                    name,
                    raw: Cow::Borrowed(content),
                    encoding: Encoding::Plain,
                });
            }
        }
    }
}

/// Headers that name an uploaded file.
const FILE_NAME_HEADERS: [&str; 4] = ["x-filename", "x_filename", "x-file-name", "x.filename"];

/// Headers whose values the attack rules skip: framing and negotiation the edge and Pingora
/// validate, and credentials the edge verifies (a JWT is base64 by design).
fn uninspected(name: &HeaderName) -> bool {
    [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::AUTHORIZATION,
        header::ACCEPT,
        header::ACCEPT_ENCODING,
        header::ACCEPT_LANGUAGE,
        header::CACHE_CONTROL,
        header::PRAGMA,
        header::IF_NONE_MATCH,
        header::IF_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::UPGRADE_INSECURE_REQUESTS,
        header::TE,
    ]
    .contains(name)
        || name.as_str().starts_with("sec-")
}

fn split_once(input: &[u8], separator: u8) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == separator) {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (input, &[]),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `boundary` parameter of a multipart Content-Type.
fn boundary(content_type: &str) -> Option<&str> {
    let (_, params) = content_type.split_once(';')?;
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty() && value.len() <= 70).then_some(value)
    })
}

/// A parameter of a Content-Disposition line (`name="x"`, `filename=y`).
fn disposition_param<'l>(line: &'l [u8], key: &[u8]) -> Option<&'l [u8]> {
    line.split(|b| *b == b';').skip(1).find_map(|param| {
        let param = param.trim_ascii();
        let (k, v) = split_once(param, b'=');
        if !k.trim_ascii().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim_ascii();
        Some(
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v),
        )
    })
}

/// The text between an XML document's tags and its attribute values, roughly: enough to put
/// what an XML parser hands the application in front of the rules.
fn xml_texts(body: &[u8]) -> Vec<Vec<u8>> {
    let mut texts = Vec::new();
    let mut in_tag = false;
    let mut current = Vec::new();
    let mut quote = None;
    for &byte in body {
        match (in_tag, quote, byte) {
            (false, _, b'<') => {
                if !current.trim_ascii().is_empty() {
                    texts.push(std::mem::take(&mut current));
                }
                current.clear();
                in_tag = true;
            }
            (false, _, _) => current.push(byte),
            (true, None, b'"' | b'\'') => quote = Some(byte),
            (true, Some(q), b) if b == q => {
                texts.push(std::mem::take(&mut current));
                quote = None;
            }
            (true, Some(_), _) => current.push(byte),
            (true, None, b'>') => in_tag = false,
            (true, None, _) => {}
        }
        if texts.len() >= MAX_VALUES {
            break;
        }
    }
    if !current.trim_ascii().is_empty() {
        texts.push(current);
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_values(parsed: &Parsed<'_>) -> Vec<(String, String)> {
        parsed
            .values
            .iter()
            .filter(|v| v.targets.contains(Targets::ARGS))
            .map(|v| {
                (
                    v.name.to_string(),
                    String::from_utf8_lossy(&v.raw).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn bodies_are_taken_apart_by_kind() {
        let mut parsed = Parsed::default();
        parsed.body(
            BodyKind::Json,
            "application/json",
            br#"{"a":{"b":["x",{"c":"y"}]},"n":1}"#,
        );
        assert_eq!(
            names_and_values(&parsed),
            [("b".into(), "x".into()), ("c".into(), "y".into())]
        );

        let mut parsed = Parsed::default();
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.php\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
        parsed.body(
            BodyKind::Multipart,
            "multipart/form-data; boundary=XyZ",
            body,
        );
        assert_eq!(names_and_values(&parsed), [("f".into(), "hello".into())]);
        let files: Vec<_> = parsed
            .values
            .iter()
            .filter(|v| v.targets.contains(Targets::FILES))
            .map(|v| v.raw.to_vec())
            .collect();
        assert_eq!(files, [b"a.php".to_vec()]);

        let mut parsed = Parsed::default();
        parsed.body(BodyKind::Xml, "text/xml", b"<a x='1'><b>text</b></a>");
        let texts: Vec<_> = names_and_values(&parsed)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(texts, ["1".to_owned(), "text".to_owned()]);
    }

    #[test]
    fn limits_are_reported_not_silently_applied() {
        let mut parsed = Parsed::default();
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        parsed.body(BodyKind::Json, "application/json", deep.as_bytes());
        assert!(parsed.over_limits);

        let mut parsed = Parsed::default();
        let many = "a=1&".repeat(MAX_VALUES);
        parsed.form(many.as_bytes());
        assert!(parsed.over_limits);
    }
}
