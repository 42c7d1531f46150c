//! The web application firewall: anomaly scoring over a request taken apart and normalised.
//!
//! A request is split into values ([`request`]: path, query arguments and their names, cookies,
//! inspected headers, and the body as a form, JSON, multipart or XML), every value is decoded
//! into the views of [`normalize`], and every [`rules::RULES`] entry whose targets include the
//! value's origin and whose paranoia level is enabled is matched against its view. Matched rules
//! add their severity's score once each; a request whose score reaches the threshold is blocked
//! (or, in detect mode, logged). Protocol rules look at the request as a whole.
//!
//! The patterns of one view are compiled into one lazy DFA ([`dfa`]), so a value is scanned once
//! per view whatever the number of rules; libinjection's SQL and HTML5 tokenizers run on the
//! decoded text.

mod config;
mod dfa;
mod normalize;
mod request;
pub mod rules;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use http::{HeaderMap, Method, header};

use crate::per_thread::PerThread;
pub use config::{Config, Mode};
use dfa::{Cache, FormSet, PairTable};
use normalize::{Shape, Views, class};
use request::{BodyKind, Encoding, Parsed, Value};
use rules::{Check, Form, RULES, Rule, Targets, ids};

/// The request as the WAF sees it.
pub struct Request<'r> {
    pub method: &'r Method,
    /// The path, percent-encoded as sent.
    pub path: &'r str,
    pub query: Option<&'r str>,
    pub headers: &'r HeaderMap,
    /// The body, read in full (the edge refuses bodies over the inspection limit before this).
    pub body: &'r [u8],
}

/// One rule that matched, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub rule: u32,
    /// `ARGS:q`, `REQUEST_HEADERS:user-agent`, `REQUEST_FILENAME`, ... (CRS' names).
    pub target: String,
}

/// What the WAF concluded about a request.
#[derive(Debug, Default)]
pub struct Verdict {
    pub score: u32,
    /// Each matched rule once, in id order.
    pub hits: Vec<Hit>,
    /// The score reached the threshold.
    pub anomalous: bool,
}

impl Verdict {
    /// The matched rule ids, comma-separated, for the log.
    pub fn rule_ids(&self) -> String {
        self.hits
            .iter()
            .map(|hit| hit.rule.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The compiled pattern sets, one per view (or group of views that read alike).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SetId {
    Raw,
    Text,
    Sql,
    /// `Text` and `Sql` together, for values whose two views are the same (most of them).
    TextAndSql,
    /// Every view's patterns, for bare tokens (whose views are all the same), matched many at
    /// once, one per line (see `Scan::flush_tokens`).
    Token,
    Cmd,
}

const SETS: usize = 6;
/// The forms of each [`SetId`], in its order.
const SET_FORMS: [&[Form]; SETS] = [
    &[Form::Raw],
    &[Form::Text],
    &[Form::Sql],
    &[Form::Text, Form::Sql],
    &[Form::Text, Form::Sql, Form::Cmd],
    &[Form::Cmd],
];

/// A lazy DFA cache for each set.
type Caches = [Cache; SETS];

/// What a thread inspecting requests keeps from one request to the next: the sets' DFA caches
/// and the memos.
struct Local {
    caches: Caches,
    /// The table of `dfa::text_and_shell` over the `TextAndSql` and `Cmd` sets.
    pair: PairTable,
    memos: [Memo; MEMOS],
    /// The bare-token buffers of [`Scan`], kept (empty) from one request to the next.
    tokens: Vec<u8>,
    token_values: Vec<(usize, std::ops::Range<usize>)>,
}

pub struct Waf {
    config: Config,
    /// `RULES` entries enabled by the paranoia level and not disabled.
    enabled: Vec<bool>,
    sets: [FormSet; SETS],
    /// One [`Local`] per thread inspecting requests, made on its first request (the lock is
    /// only ever contended by threads past `per_thread::SLOTS`).
    locals: PerThread<Mutex<Option<Local>>>,
    sqli: Option<usize>,
    xss: Option<usize>,
    /// [`ids::NEWLINE_IN_ARG_NAME`], checked on every view of a name.
    newline_in_name: Option<usize>,
}

/// A value → the ids of the rules it matched (before exclusions). One memo holds values of
/// one kind of target only, so that the value alone decides what it matched.
type Memo = HashMap<Box<[u8]>, Arc<[u32]>>;

/// The memos of a [`Local`], by kind of value.
const MEMOS: usize = 2;
/// What each recently seen User-Agent matched: a client sends the same one with every request,
/// and it is the longest value of most GETs.
const USER_AGENTS: usize = 0;
/// What each recently seen value of the [`MEMO_HEADERS`] matched.
const FORWARDING: usize = 1;

/// Values remembered at most per memo; a memo starts over when full.
const MEMO_SIZE: usize = 4096;
/// Longer values are not remembered.
const MEMO_LEN: usize = 512;
/// Values from this long are scanned once per request, however often they are repeated in it.
const REPEAT_LEN: usize = 64;
/// Forwarding headers, which a client's own proxy writes: the same few values on every
/// request from it.
const MEMO_HEADERS: [&str; 4] = [
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// Content types a body may have (the CRS' default list); anything else is rule 920420.
const ALLOWED_CONTENT_TYPES: [&str; 9] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/related",
    "text/xml",
    "application/xml",
    "application/soap+xml",
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
];
const ALLOWED_CHARSETS: [&str; 4] = ["utf-8", "iso-8859-1", "iso-8859-15", "windows-1252"];
/// File extensions nobody has a reason to fetch from a shop's API (rule 920440).
const RESTRICTED_EXTENSIONS: [&str; 48] = [
    "asa",
    "asax",
    "ascx",
    "backup",
    "bak",
    "bat",
    "cdx",
    "cer",
    "cfg",
    "cmd",
    "com",
    "config",
    "conf",
    "cs",
    "csproj",
    "csr",
    "dat",
    "db",
    "dbf",
    "dll",
    "dos",
    "htr",
    "htw",
    "ida",
    "idc",
    "idq",
    "inc",
    "ini",
    "key",
    "licx",
    "lnk",
    "log",
    "mdb",
    "old",
    "pass",
    "pdb",
    "pol",
    "printer",
    "pwd",
    "rdb",
    "resources",
    "resx",
    "sql",
    "swp",
    "sys",
    "vb",
    "vbs",
    "vbproj",
];
/// Headers with no legitimate use towards the shop that proxies and servers have been fooled
/// by (rule 920450).
const RESTRICTED_HEADERS: [&str; 8] = [
    "proxy",
    "lock-token",
    "content-range",
    "if",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "request-range",
];
/// Parameters of once-popular PHP applications (Mambo/Joomla, Geeklog, Gallery, AppServ, ...)
/// that included a file from the path they were given (931110).
const RFI_PARAMETERS: [&str; 7] = [
    "mosconfig_absolute_path",
    "_conf[path]",
    "_server[document_root]",
    "gallery_basedir",
    "path[docroot]",
    "appserv_root",
    "config[root_dir]",
];
/// Argument names that carry session ids on platforms that accept them in URLs (943110/943120):
/// exact names, then name endings.
const SESSION_ID_NAMES: [&str; 12] = [
    "jsessionid",
    "aspsessionid",
    "asp.net_sessionid",
    "phpsessid",
    "cfid",
    "cftoken",
    "cfsid",
    "connect.sid",
    "sid",
    "sessid",
    "rack.session",
    "express:sess",
];
const SESSION_ID_SUFFIXES: [&str; 5] =
    ["session", "sessionid", "session_id", "session-id", "_sess"];
/// Session tokens of newer frameworks (Auth.js/NextAuth, Meteor, Sails, CakePHP, Koa, Shiny),
/// looked for only when the link came from another site (943110): without a referer they are
/// too rarely fixation to block on.
const SESSION_TOKEN_NAMES: [&str; 9] = [
    "next-auth.session-token",
    "__secure-next-auth.session-token",
    "__host-next-auth.session-token",
    "meteor_login_token",
    "sails.sid",
    "cakephp",
    "koa.sess",
    "koa:sess",
    "shiny-token",
];

/// Whether `name` carries a session id: `Some(true)` for the names of [`SESSION_ID_NAMES`] and
/// [`SESSION_ID_SUFFIXES`] (943110 and 943120), `Some(false)` for [`SESSION_TOKEN_NAMES`] (943110
/// only).
fn session_id_name(name: &str) -> Option<bool> {
    let is = |known: &&str| name.eq_ignore_ascii_case(known);
    let ends_with = |suffix: &&str| {
        name.len() >= suffix.len()
            && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    if SESSION_ID_NAMES.iter().any(is) || SESSION_ID_SUFFIXES.iter().any(ends_with) {
        Some(true)
    } else if SESSION_TOKEN_NAMES.iter().any(is) {
        Some(false)
    } else {
        None
    }
}

impl Waf {
    pub fn new(config: Config) -> Result<Waf, String> {
        let enabled = RULES
            .iter()
            .map(|rule| {
                rule.paranoia <= config.paranoia_level
                    && !config.disabled.iter().any(|range| range.contains(&rule.id))
            })
            .collect::<Vec<bool>>();
        let find = |check: fn(&Rule) -> bool| RULES.iter().position(check);
        // Only the enabled rules are compiled: a rule off (by level or by the rule file) costs
        // nothing per request.
        let mut sets = Vec::with_capacity(SETS);
        for forms in SET_FORMS {
            sets.push(forms_set(forms, &enabled)?);
        }
        let sets: [FormSet; SETS] = sets.try_into().map_err(|_| "pattern sets")?;
        // Built now rather than by the first request that needs it.
        LazyLock::force(&SQL_WORDS);
        Ok(Waf {
            sets,
            locals: PerThread::new(|| Mutex::new(None)),
            sqli: find(|r| matches!(r.check, Check::LibinjectionSqli)),
            xss: find(|r| matches!(r.check, Check::LibinjectionXss)),
            newline_in_name: find(|r| r.id == ids::NEWLINE_IN_ARG_NAME),
            enabled,
            config,
        })
    }

    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// The calling thread's slot. One left poisoned by a panic mid-inspection starts afresh.
    fn slot(&self) -> MutexGuard<'_, Option<Local>> {
        let slot = self.locals.mine();
        slot.lock().unwrap_or_else(|poisoned| {
            slot.clear_poison();
            let mut local = poisoned.into_inner();
            *local = None;
            local
        })
    }

    /// Scores `request`.
    pub fn inspect(&self, request: &Request<'_>) -> Verdict {
        let mut slot = self.slot();
        let local = slot.get_or_insert_with(|| Local {
            caches: std::array::from_fn(|set| self.sets[set].create_cache()),
            pair: PairTable::new(
                &self.sets[SetId::TextAndSql as usize],
                &self.sets[SetId::Cmd as usize],
            ),
            memos: std::array::from_fn(|_| HashMap::new()),
            // Room for a request's names and short values without growing one step at a time.
            tokens: Vec::with_capacity(512),
            token_values: Vec::with_capacity(32),
        });
        let tokens = std::mem::take(&mut local.tokens);
        let token_values = std::mem::take(&mut local.token_values);
        let mut scan = Scan {
            waf: self,
            local,
            exclusions: self
                .config
                .exclusions
                .iter()
                .filter(|e| e.applies_to(request.method.as_str(), request.path))
                .collect(),
            hits: BTreeMap::new(),
            current: 0,
            tokens,
            token_values,
        };
        let body_kind = scan.protocol(request);

        let mut parsed = Parsed::with_capacity(32);
        parsed.path(request.path.as_bytes());
        if let Some(query) = request.query {
            parsed.form(query.as_bytes());
        }
        parsed.headers(request.headers);
        let content_type = request
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        parsed.body(body_kind, content_type, request.body);
        if parsed.over_limits {
            scan.hit(ids::LIMITS, "REQUEST_BODY");
        }
        if parsed.multipart_malformed {
            scan.hit(ids::MULTIPART_MALFORMED, "REQUEST_BODY");
        }
        if parsed.multipart_bad_name {
            scan.hit(ids::MULTIPART_FILENAME, "MULTIPART_NAME");
        }
        if parsed.multipart_part_headers {
            scan.hit(ids::MULTIPART_PART_HEADERS, "MULTIPART_PART_HEADERS");
        }
        scan.session_ids(request, &parsed);
        scan.rfi_parameters(&parsed);
        // Values met before in this request (a shipping address repeated as the billing one,
        // a message quoted twice): what the first matched, by its index in `parsed.values`.
        let mut repeats: Vec<(usize, Arc<[u32]>)> = Vec::new();
        for (index, value) in parsed.values.iter().enumerate() {
            scan.current = index;
            if value.raw.len() < REPEAT_LEN || scan.memo(value).is_some() {
                scan.value(value);
                continue;
            }
            let earlier = repeats.iter().find(|(earlier, _)| {
                let earlier = &parsed.values[*earlier];
                earlier.raw == value.raw
                    && earlier.targets == value.targets
                    && earlier.encoding == value.encoding
            });
            match earlier {
                Some((_, matched)) => scan.record(value, matched),
                None => {
                    let matched = scan.alone(value);
                    scan.record(value, &matched);
                    repeats.push((index, matched));
                }
            }
        }
        scan.flush_tokens(&parsed.values);
        scan.local.tokens = std::mem::take(&mut scan.tokens);
        scan.local.token_values = std::mem::take(&mut scan.token_values);
        scan.verdict()
    }
}

/// The patterns of the enabled rules that read `forms`, compiled together.
fn forms_set(forms: &[Form], enabled: &[bool]) -> Result<FormSet, String> {
    let (rules, patterns): (Vec<usize>, Vec<&str>) = RULES
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| match rule.check {
            Check::Pattern(f, pattern) if forms.contains(&f) && enabled[index] => {
                Some((index, pattern))
            }
            _ => None,
        })
        .unzip();
    // Multi-line: bare tokens are matched many at once, one per line (see `Scan::flush_tokens`).
    FormSet::new(&patterns, rules, forms.len() == 3)
}

/// One request's evaluation.
struct Scan<'w, 'c> {
    waf: &'w Waf,
    local: &'c mut Local,
    exclusions: Vec<&'w config::Exclusion>,
    /// The index of the value being scanned.
    current: usize,
    /// Bare tokens to match, one per line, and which value and bytes each line is.
    tokens: Vec<u8>,
    token_values: Vec<(usize, std::ops::Range<usize>)>,
    /// Matched rule → where it first matched.
    hits: BTreeMap<u32, String>,
}

impl<'w> Scan<'w, '_> {
    fn applies(&self, index: usize, name: &str) -> bool {
        let rule = &RULES[index];
        self.waf.enabled[index] && !self.exclusions.iter().any(|e| e.covers(rule.id, name))
    }

    /// Records a protocol rule's match (subject to the level, disabled rules and exclusions).
    fn hit(&mut self, id: u32, target: &str) {
        if let Some(index) = RULES.iter().position(|r| r.id == id)
            && self.applies(index, "")
        {
            self.hits.entry(id).or_insert_with(|| target.to_owned());
        }
    }

    /// The request-level rules; returns how to take the body apart.
    fn protocol(&mut self, request: &Request<'_>) -> BodyKind {
        let headers = request.headers;
        let has_body = !request.body.is_empty()
            || headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body && matches!(*request.method, Method::GET | Method::HEAD) {
            self.hit(ids::BODY_ON_GET, "REQUEST_HEADERS:content-length");
        }
        // Browsers and API clients send both; scripts and scanners often neither (PL2 notices).
        if !headers.contains_key(header::ACCEPT) && *request.method != Method::OPTIONS {
            self.hit(ids::MISSING_ACCEPT, "REQUEST_HEADERS");
        }
        if !headers.contains_key(header::USER_AGENT) {
            self.hit(ids::MISSING_USER_AGENT, "REQUEST_HEADERS");
        }
        for name in headers.keys() {
            if RESTRICTED_HEADERS.contains(&name.as_str()) {
                self.hit(ids::HEADER_RESTRICTED, &format!("REQUEST_HEADERS:{name}"));
            }
        }

        let decoded_path = normalize::url_decode_repeatedly(request.path.as_bytes(), false);
        if decoded_path.iter().any(|b| matches!(b, b'\r' | b'\n')) {
            self.hit(ids::NEWLINE_IN_PATH, "REQUEST_FILENAME");
        }
        let last_segment = decoded_path
            .rsplit(|b| *b == b'/')
            .next()
            .unwrap_or_default();
        if last_segment.ends_with(b"~") {
            self.hit(ids::BACKUP_FILE, "REQUEST_FILENAME");
        }
        if let Some(dot) = last_segment.iter().rposition(|b| *b == b'.') {
            let extension = &last_segment[dot + 1..];
            if RESTRICTED_EXTENSIONS
                .iter()
                .any(|e| e.as_bytes().eq_ignore_ascii_case(extension))
            {
                self.hit(ids::EXTENSION_RESTRICTED, "REQUEST_FILENAME");
            }
        }

        let content_type = headers.get(header::CONTENT_TYPE);
        let Some(content_type) = content_type else {
            if has_body {
                self.hit(ids::BODY_WITHOUT_CONTENT_TYPE, "REQUEST_HEADERS");
            }
            return if has_body {
                BodyKind::Other
            } else {
                BodyKind::None
            };
        };
        let Ok(content_type) = content_type.to_str() else {
            self.hit(
                ids::CONTENT_TYPE_NOT_ALLOWED,
                "REQUEST_HEADERS:content-type",
            );
            return BodyKind::Other;
        };
        let mut params = content_type.split(';');
        let mime = params.next().unwrap_or("").trim().to_ascii_lowercase();
        if !ALLOWED_CONTENT_TYPES.contains(&mime.as_str()) {
            self.hit(
                ids::CONTENT_TYPE_NOT_ALLOWED,
                "REQUEST_HEADERS:content-type",
            );
        }
        for param in params {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("charset")
            {
                let charset = value.trim().trim_matches('"').to_ascii_lowercase();
                if !ALLOWED_CHARSETS.contains(&charset.as_str()) {
                    self.hit(ids::CHARSET_NOT_ALLOWED, "REQUEST_HEADERS:content-type");
                }
            }
        }
        match mime.as_str() {
            "application/x-www-form-urlencoded" => BodyKind::Form,
            "multipart/form-data" | "multipart/related" => BodyKind::Multipart,
            "text/xml" | "application/xml" | "application/soap+xml" => BodyKind::Xml,
            m if m == "application/json" || m.ends_with("+json") => BodyKind::Json,
            _ => BodyKind::Other,
        }
    }

    /// Parameters through which old PHP applications include a file, given a URL (931110): the
    /// name is the evidence, so the rule's pattern, which reads values, cannot see it.
    fn rfi_parameters(&mut self, parsed: &Parsed<'_>) {
        let Some(index) = RULES.iter().position(|r| r.id == ids::RFI_PARAMETER) else {
            return;
        };
        for value in &parsed.values {
            if !value.targets.contains(Targets::ARGS)
                || !RFI_PARAMETERS
                    .iter()
                    .any(|name| value.name.eq_ignore_ascii_case(name))
                || !self.wants(index, value)
            {
                continue;
            }
            let decoded = percent_decoded(value)
                .trim_ascii_start()
                .to_ascii_lowercase();
            if ["file://", "ftp://", "ftps://", "http://", "https://"]
                .iter()
                .any(|scheme| decoded.starts_with(scheme.as_bytes()))
            {
                self.hits.insert(ids::RFI_PARAMETER, target_name(value));
            }
        }
    }

    /// Session ids passed as arguments: from another site's page (943110) or typed/forged with
    /// no referer at all (943120).
    fn session_ids(&mut self, request: &Request<'_>, parsed: &Parsed<'_>) {
        let Some(without_referer) = parsed
            .values
            .iter()
            .filter(|v| v.targets.contains(Targets::ARG_NAMES))
            .filter_map(|v| session_id_name(&v.name))
            .reduce(|a, b| a || b)
        else {
            return;
        };
        let host = request
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        match request
            .headers
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
        {
            None if without_referer => self.hit(ids::SESSION_ID_NO_REFERER, "ARGS_NAMES"),
            None => {}
            Some(referer) => {
                let referer_host = referer
                    .split_once("://")
                    .map_or(referer, |(_, rest)| rest)
                    .split(['/', ':', '?', '#'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if host.as_deref() != Some(referer_host.as_str()) {
                    self.hit(ids::SESSION_ID_OFF_DOMAIN, "ARGS_NAMES");
                }
            }
        }
    }

    /// The memo that remembers what `value` matched across requests, if it is of a kind that
    /// repeats from request to request.
    fn memo(&self, value: &Value<'_>) -> Option<usize> {
        if value.raw.len() > MEMO_LEN {
            None
        } else if value.targets.contains(Targets::USER_AGENT) {
            Some(USER_AGENTS)
        } else if value.targets == Targets::HEADERS && MEMO_HEADERS.contains(&value.name.as_ref()) {
            Some(FORWARDING)
        } else {
            None
        }
    }

    fn value(&mut self, value: &Value<'_>) {
        match self.memo(value) {
            Some(memo) => self.remembered(value, memo),
            None => self.scan_value(value),
        }
    }

    /// A value of a kind that repeats across requests: what it matched is remembered in
    /// memo `memo` (before this route's exclusions, which are applied to the remembered rules
    /// as to fresh ones).
    fn remembered(&mut self, value: &Value<'_>, memo: usize) {
        let known = self.local.memos[memo].get(value.raw.as_ref()).cloned();
        let matched = match known {
            Some(matched) => matched,
            None => {
                let matched = self.alone(value);
                let values = &mut self.local.memos[memo];
                if values.len() >= MEMO_SIZE {
                    values.clear();
                }
                values.insert(value.raw.as_ref().into(), Arc::clone(&matched));
                matched
            }
        };
        self.record(value, &matched);
    }

    /// The ids of the rules `value` matches, scanned on its own, before exclusions.
    fn alone(&mut self, value: &Value<'_>) -> Arc<[u32]> {
        let mut alone = Scan {
            waf: self.waf,
            local: &mut *self.local,
            exclusions: Vec::new(),
            hits: BTreeMap::new(),
            current: 0,
            tokens: Vec::new(),
            token_values: Vec::new(),
        };
        alone.scan_value(value);
        // `value` is not in a slice here: put it in one.
        alone.flush_tokens(std::slice::from_ref(value));
        alone.hits.into_keys().collect()
    }

    /// Records the rules `value` matched (found by [`Scan::alone`]), subject to this route's
    /// exclusions.
    fn record(&mut self, value: &Value<'_>, matched: &[u32]) {
        for id in matched {
            if let Some(index) = RULES.iter().position(|r| r.id == *id)
                && self.applies(index, &value.name)
            {
                self.hits.entry(*id).or_insert_with(|| target_name(value));
            }
        }
    }

    fn scan_value(&mut self, value: &Value<'_>) {
        let raw_shape = Shape::of(&value.raw);
        let decoded = percent_decoded(value);
        let shape = match decoded {
            Cow::Borrowed(_) => raw_shape,
            Cow::Owned(ref decoded) => Shape::of(decoded),
        };
        // What decoding would hide: looked at only where there is something encoded, where
        // a bare token (otherwise skipped) may be a Java object or hex-written traversal, or
        // where bytes that are not UTF-8 may carry a serialized Java object (whose magic
        // bytes no UTF-8 text holds: accented words need no raw look).
        if raw_shape.any(class::PERCENT)
            || (raw_shape.any(class::NON_ASCII) && std::str::from_utf8(&value.raw).is_err())
            || (raw_shape.any(class::ZERO) && raw_markers(&value.raw))
        {
            let raw = value.raw.to_ascii_lowercase();
            self.patterns([(SetId::Raw, &raw)], value);
        }
        if value.targets.contains(Targets::FILES)
            && value
                .raw
                .iter()
                .any(|b| matches!(b, b'"' | b'\'' | b';' | b'='))
        {
            self.hit(ids::MULTIPART_FILENAME, &target_name(value));
        }
        // Identifiers, numbers and single words (most values) carry no syntax to inject: as
        // argument, cookie or header values they are skipped (only what they might decode to
        // is looked at). Names, file names, paths and user agents are matched whatever they look
        // like (`__proto__`, `shell.php`): a token's views are all the same, so in one pass.
        let always = Targets::ARG_NAMES
            | Targets::COOKIE_NAMES
            | Targets::FILES
            | Targets::PATH
            | Targets::USER_AGENT;
        if !bare_token(&decoded, shape) {
            let views = Views::of_shaped(&decoded, shape);
            if views.had_nul && value.targets.intersects(Targets::INPUT) {
                self.hit(ids::NUL_BYTE, &target_name(value));
            }
            self.views(&views, value);
        } else if value.targets.intersects(always) {
            let start = self.tokens.len();
            self.tokens
                .extend(decoded.iter().map(u8::to_ascii_lowercase));
            self.token_values
                .push((self.current, start..self.tokens.len()));
            self.tokens.push(b'\n');
        }
        // A payload sent base64-encoded is still a payload once the application decodes it
        // (in a path: the whole path, then each segment, since `/` is a base64 digit). What
        // `base64_text` asks first: an encoding mixes cases, which a path segment can do only
        // where the path does (most paths are lowercase words and ids).
        let mixed_case = shape.any(class::UPPER) && shape.any(class::LOWER);
        if value.encoding == Encoding::Path {
            if mixed_case {
                let path = decoded.strip_prefix(b"/").unwrap_or(&decoded);
                let whole = std::iter::once(path);
                let segments = path.split(|b| *b == b'/').filter(|s| s.len() != path.len());
                for candidate in whole.chain(segments) {
                    if let Some(inner) = normalize::base64_text(candidate) {
                        let views = Views::of_decoded(&inner);
                        self.views(&views, value);
                    }
                }
            }
        } else if mixed_case
            && shape.all(class::BASE64)
            && let Some(inner) = normalize::base64_text(&decoded)
        {
            // A cursor or token that is a JSON document (`{"id":…,"t":…}`) is read as the
            // application reads it: each string and member name on its own, as a JSON body's
            // are. Its quotes are the document's, not the start of an SQL string.
            let texts =
                request::json_texts(&inner).unwrap_or_else(|| vec![Cow::Borrowed(&inner[..])]);
            for text in texts.iter().filter(|text| !text.is_empty()) {
                // What holds for the value holds for what it decodes to: an id or a number
                // carries no syntax to inject.
                let shape = Shape::of(text);
                if bare_token(text, shape) && !value.targets.intersects(always) {
                    continue;
                }
                let views = Views::of_shaped(text, shape);
                self.views(&views, value);
            }
        }
    }

    fn views(&mut self, views: &Views<'_>, value: &Value<'_>) {
        let waf = self.waf;
        let text = views.text.as_bytes();
        if let Some(index) = waf.newline_in_name
            && self.wants(index, value)
            && memchr::memchr2(b'\r', b'\n', text).is_some()
        {
            self.hits
                .entry(RULES[index].id)
                .or_insert_with(|| target_name(value));
        }
        // Most values read the same in the text and SQL views: one set for both. Their shell
        // view is read from the text in the same pass where it is a byte-by-byte rewriting of
        // it, and made only if that pass finds something (which views matched, and which
        // rules, are then asked as for other text).
        if views.sql_is_text() {
            let maybe = !views.shell_bytewise() || {
                let local = &mut *self.local;
                let [text_cache, shell_cache] = local
                    .caches
                    .get_disjoint_mut([SetId::TextAndSql as usize, SetId::Cmd as usize])
                    .expect("two sets");
                dfa::text_and_shell(
                    (&waf.sets[SetId::TextAndSql as usize], text_cache),
                    (&waf.sets[SetId::Cmd as usize], shell_cache),
                    &mut local.pair,
                    text,
                )
            };
            if maybe {
                let cmd = views.cmd();
                self.patterns([(SetId::TextAndSql, text), (SetId::Cmd, &cmd)], value);
            }
        } else {
            let cmd = views.cmd();
            self.patterns(
                [
                    (SetId::Text, text),
                    (SetId::Sql, views.sql()),
                    (SetId::Cmd, &cmd),
                ],
                value,
            );
        }
        if let Some(index) = waf.sqli
            && self.wants(index, value)
            && libinjection_sqli(text, sql_contexts(&views.text, views.shape))
        {
            self.hits
                .entry(RULES[index].id)
                .or_insert_with(|| target_name(value));
        }
        if let Some(index) = waf.xss
            && self.wants(index, value)
            // Markup needs `<`, an attribute injection `=` or a backtick.
            && views.shape.any(class::MARKUP)
            && libinjectionrs::detect_xss(text).is_injection()
        {
            self.hits
                .entry(RULES[index].id)
                .or_insert_with(|| target_name(value));
        }
    }

    /// Matches the bare tokens collected from `values`: one pass over all of them, and one per
    /// token only when that pass finds something (a match may also span two lines).
    fn flush_tokens(&mut self, values: &[Value<'_>]) {
        let mut tokens = std::mem::take(&mut self.tokens);
        let mut token_values = std::mem::take(&mut self.token_values);
        if !tokens.is_empty() {
            self.match_tokens(&tokens, &token_values, values);
        }
        // Emptied, the buffers keep their room for the next request.
        tokens.clear();
        token_values.clear();
        self.tokens = tokens;
        self.token_values = token_values;
    }

    fn match_tokens(
        &mut self,
        tokens: &[u8],
        token_values: &[(usize, std::ops::Range<usize>)],
        values: &[Value<'_>],
    ) {
        let waf = self.waf;
        let [matched] = dfa::any_match([dfa::Scan {
            set: &waf.sets[SetId::Token as usize],
            cache: &mut self.local.caches[SetId::Token as usize],
            haystack: tokens,
        }]);
        if !matched {
            return;
        }
        for (index, range) in token_values {
            let value = if values.len() == 1 {
                &values[0]
            } else {
                &values[*index]
            };
            self.patterns([(SetId::Token, &tokens[range.clone()])], value);
        }
    }

    /// Whether rule `index` should look at `value` and has not matched yet.
    fn wants(&self, index: usize, value: &Value<'_>) -> bool {
        let rule = &RULES[index];
        rule.targets.intersects(value.targets)
            && !self.hits.contains_key(&rule.id)
            && self.applies(index, &value.name)
    }

    /// Matches each set against its haystack (stepped together, see [`dfa`]), and records the
    /// rules that matched.
    fn patterns<const N: usize>(&mut self, scans: [(SetId, &[u8]); N], value: &Value<'_>) {
        let waf = self.waf;
        let ids = scans.map(|(set, _)| set as usize);
        let empty = scans.iter().any(|(_, haystack)| haystack.is_empty());
        let answers = match self.local.caches.get_disjoint_mut(ids) {
            Ok(caches) if !empty => {
                let mut caches = caches.into_iter();
                dfa::any_match(scans.map(|(set, haystack)| dfa::Scan {
                    set: &waf.sets[set as usize],
                    cache: caches.next().expect("one cache per scan"),
                    haystack,
                }))
            }
            // An empty view matches nothing worth a rule; and a set named twice is scanned
            // once per haystack.
            _ => scans.map(|(set, haystack)| {
                !haystack.is_empty()
                    && dfa::any_match([dfa::Scan {
                        set: &waf.sets[set as usize],
                        cache: &mut self.local.caches[set as usize],
                        haystack,
                    }])[0]
            }),
        };
        for ((set, haystack), matched) in scans.into_iter().zip(answers) {
            if !matched {
                continue;
            }
            let form_set = &waf.sets[set as usize];
            for pattern in form_set.matches(&mut self.local.caches[set as usize], haystack) {
                let index = form_set.rules[pattern];
                if self.wants(index, value) {
                    self.hits.insert(RULES[index].id, target_name(value));
                }
            }
        }
    }

    fn verdict(self) -> Verdict {
        let score = self
            .hits
            .keys()
            .filter_map(|id| RULES.iter().find(|r| r.id == *id))
            .map(|rule| rule.severity.score())
            .sum();
        Verdict {
            score,
            anomalous: score >= self.waf.config.anomaly_threshold,
            hits: self
                .hits
                .into_iter()
                .map(|(rule, target)| Hit { rule, target })
                .collect(),
        }
    }
}

/// Whether `text` (of shape `shape`) is a bare token: an identifier, a number or a single word
/// of ASCII letters, digits, `_` and `-`, at most 256 bytes long.
fn bare_token(text: &[u8], shape: Shape) -> bool {
    text.len() <= 256 && shape.all(class::TOKEN)
}

/// `value` percent-decoded as its encoding says (borrowed when it arrived decoded).
fn percent_decoded<'v>(value: &'v Value<'_>) -> Cow<'v, [u8]> {
    match value.encoding {
        Encoding::Plain => Cow::Borrowed(value.raw.as_ref()),
        encoding => normalize::url_decode_repeatedly(&value.raw, encoding == Encoding::Form),
    }
}

/// Whether `raw`, with nothing percent-encoded, still has something only its raw form shows:
/// the start of a serialized Java object as base64 (`rO0AB`) or hex (`aced0005`), which rule
/// 944200 looks for, or a dot or slash written as `0x2e`, `0x2f` or `0x5c` (930100).
fn raw_markers(raw: &[u8]) -> bool {
    // All hold a zero digit, rare in text: only around one is there anything to compare.
    let around = |at: usize, before: usize, magic: &[u8]| {
        at.checked_sub(before)
            .and_then(|start| raw.get(start..start + magic.len()))
            .is_some_and(|window| window.eq_ignore_ascii_case(magic))
    };
    memchr::memchr_iter(b'0', raw).any(|at| {
        around(at, 2, b"ro0ab")
            || around(at, 4, b"aced0005")
            || around(at, 0, b"0x2e")
            || around(at, 0, b"0x2f")
            || around(at, 0, b"0x5c")
    })
}

/// Which of libinjection's SQL contexts a value is read in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SqlContexts {
    /// Not worth the tokenizer's time (tens of thousands of instructions a call).
    None,
    /// Inserted bare into a query, as a number or a name is: libinjection's unquoted passes.
    Bare,
    /// Bare, and inside a quoted string as well: every pass of `SqliState::detect`.
    All,
}

/// 1 for the bytes that SQL needs and prose seldom has: comparisons, `#`, parentheses, `*`,
/// `\` and quotes.
static SQL_PUNCTUATION: [u8; 256] = {
    let mut table = [0; 256];
    let punctuation = b"=#<>()*\\'\"`";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = 1;
        i += 1;
    }
    table
};

/// Which of libinjection's contexts `text` needs. Any context, for a comparison, a statement,
/// a `/*` comment, or a `#` that reads as a comment rather than as a number sign (`#4`,
/// `#A-10023`) anywhere; or for something other than words, hyphenated words and sentence
/// punctuation after the first quote that would end a string (an escape from a quoted string).
/// The bare context only, for a value that starts like a number (a digit, a parenthesis, `-` or
/// `@`): `--` and `#` comments follow a quote or a number. So `men's running shoes` and
/// `john or@var.es` are left to the pattern rules, which read every value anyway, and so is
/// `12 Rue de l'Église` in a quoted string; so is prose (over 48 bytes, under 4% of SQL
/// punctuation), since the tokenizer's own finds are short values.
fn sql_contexts(text: &str, shape: Shape) -> SqlContexts {
    let bytes = text.trim_ascii().as_bytes();
    let quote = |b: &u8| matches!(b, b'\'' | b'"' | b'`');
    // Prose first: one pass settles most long values (a table lookup and an add per byte,
    // which the compiler vectorises).
    if bytes.len() > 48 {
        let punctuation: usize = bytes
            .iter()
            .map(|b| usize::from(SQL_PUNCTUATION[usize::from(*b)]))
            .sum();
        if punctuation * 25 < bytes.len() {
            return SqlContexts::None;
        }
    }
    let anywhere = shape.any(class::COMPARISON)
        || (shape.any(class::HASH) && comment_hash(bytes))
        || (shape.any(class::SEMICOLON) && stacked_statement(bytes))
        || (shape.any(class::SLASH) && normalize::has_comment_start(text.as_bytes()));
    let escapes_quote = || {
        shape.any(class::QUOTE)
            && bytes.iter().position(quote).is_some_and(|at| {
                let word =
                    |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || !b.is_ascii());
                (at + 1..bytes.len()).any(|i| {
                    let b = bytes[i];
                    let hyphenated = b == b'-' && word(bytes.get(i - 1)) && word(bytes.get(i + 1));
                    !(b.is_ascii_alphanumeric()
                        || !b.is_ascii()
                        || hyphenated
                        || matches!(b, b' ' | b'.' | b',' | b'!' | b'?'))
                })
            })
    };
    let numeric = || {
        bytes
            .first()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'(' | b')' | b'-' | b'@'))
    };
    if anywhere || escapes_quote() {
        SqlContexts::All
    } else if numeric() {
        SqlContexts::Bare
    } else {
        SqlContexts::None
    }
}

/// libinjection's verdict on `text` in `contexts`.
fn libinjection_sqli(text: &[u8], contexts: SqlContexts) -> bool {
    use libinjectionrs::{SqliFlags, SqliState};
    match contexts {
        SqlContexts::None => false,
        // `detect` alone: `detect_sqli` would tokenize the text once more for a fingerprint
        // that nothing reads.
        SqlContexts::All => SqliState::new(text, SqliFlags::FLAG_NONE).detect(),
        // Numbers, words and quoted strings alone make no injection (see `plain_words`).
        SqlContexts::Bare if plain_words(text) => false,
        // The first passes of `detect`: ANSI, then MySQL where a comment reads differently.
        SqlContexts::Bare => {
            let bare = |dialect: SqliFlags| {
                let flags = SqliFlags::FLAG_QUOTE_NONE | dialect;
                let mut state = SqliState::new(text, flags);
                let sqli = state.is_sqli();
                (
                    sqli,
                    state.stats_comment_ddx != 0 || state.stats_comment_hash != 0,
                )
            };
            match bare(SqliFlags::FLAG_SQL_ANSI) {
                (true, _) => true,
                (false, mysql_comments) => mysql_comments && bare(SqliFlags::FLAG_SQL_MYSQL).0,
            }
        }
    }
}

/// Every word of libinjection's keyword table (each entry cut at anything but a letter, a digit
/// or `_`, lowercased): SQL's keywords, functions, operators, types and variables, and the
/// words of its multi-word keywords (`order by`, `at time zone`), which it merges from
/// barewords.
static SQL_WORDS: LazyLock<HashSet<Box<[u8]>>> = LazyLock::new(|| {
    libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
        .iter()
        // Not the fingerprints on its list, which the table holds too (`0sos`, `01&1`).
        .filter(|keyword| keyword.token_type != b'F')
        .flat_map(|keyword| keyword.word.as_bytes().split(|b| !is_word_byte(*b)))
        .filter(|word| !word.is_empty())
        .map(|word| word.to_ascii_lowercase().into_boxed_slice())
        .collect()
});

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether libinjection can only read `text` (lowercased) as numbers, barewords, strings,
/// commas and dots: it holds nothing but lowercase words, digits, other characters, spaces,
/// `.`, `,` and `'`, and none of its ASCII words (nor, for a word led by a digit, any ending of
/// it) is a word of [`SQL_WORDS`]. No fingerprint of those tokens is on libinjection's list
/// (the test `plain_words_are_no_injection_to_libinjection` checks both), so such a value, in
/// the bare context, is none: `10.5 us` or `12 rue de l'église, bâtiment b` cost a table lookup
/// per word rather than the tokenizer's thousands of instructions.
fn plain_words(text: &[u8]) -> bool {
    text.iter().all(|b| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || !b.is_ascii()
            || matches!(b, b'_' | b' ' | b'.' | b',' | b'\'')
    }) && text
        .split(|b| !is_word_byte(*b))
        .filter(|word| !word.is_empty())
        .all(|word| {
            // A word that starts with a digit is read as a number (`10`, `0x1f`, `2e5`, `0b1`)
            // and then as whatever follows it, from wherever the number ends: every ending of
            // it is looked up.
            let endings = if word[0].is_ascii_digit() {
                word.len()
            } else {
                1
            };
            (0..endings).all(|start| !SQL_WORDS.contains(&word[start..]))
        })
}

/// Whether a `#` in `bytes` may start a MySQL comment: one that does not begin a word such as
/// `#4` or `#A-10023` (`SLEEP(5)#`, `NULL#` and `1 #` end an injection's query).
fn comment_hash(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'#', bytes).any(|at| {
        let starts_word = at == 0 || bytes[at - 1].is_ascii_whitespace();
        let number_sign = starts_word && bytes.get(at + 1).is_some_and(u8::is_ascii_alphanumeric);
        !number_sign
    })
}

/// Whether a `;` in `bytes` is followed by the start of an SQL statement (a `;` alone is
/// everyday punctuation, and in every browser's User-Agent).
fn stacked_statement(bytes: &[u8]) -> bool {
    const STATEMENTS: [&[u8]; 13] = [
        b"select",
        b"insert",
        b"update",
        b"delete",
        b"drop",
        b"exec",
        b"declare",
        b"shutdown",
        b"waitfor",
        b"create",
        b"alter",
        b"truncate",
        b"union",
    ];
    memchr::memchr_iter(b';', bytes).any(|at| {
        let rest = bytes[at + 1..].trim_ascii_start();
        STATEMENTS
            .iter()
            .any(|s| rest.len() >= s.len() && rest[..s.len()].eq_ignore_ascii_case(s))
    })
}

/// The CRS name of where `value` came from.
fn target_name(value: &Value<'_>) -> String {
    let t = value.targets;
    let name = &value.name;
    if t.contains(Targets::PATH) {
        "REQUEST_FILENAME".to_owned()
    } else if t.contains(Targets::BODY) {
        "REQUEST_BODY".to_owned()
    } else if t.contains(Targets::FILES) {
        format!("FILES:{name}")
    } else if t.contains(Targets::COOKIE_NAMES) {
        format!("REQUEST_COOKIES_NAMES:{name}")
    } else if t.contains(Targets::COOKIES) {
        format!("REQUEST_COOKIES:{name}")
    } else if t.contains(Targets::HEADERS) {
        format!("REQUEST_HEADERS:{name}")
    } else if t.contains(Targets::ARG_NAMES) {
        format!("ARGS_NAMES:{name}")
    } else {
        format!("ARGS:{name}")
    }
}

#[cfg(test)]
mod tests;
