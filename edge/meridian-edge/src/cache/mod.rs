//! The response cache for public GETs: what may be cached, under which key, and the shared
//! store and lock. Pingora's cache state machine does the misses, fills, revalidation and stale
//! answers (`proxy.rs` wires its hooks); a fresh hit is answered by [`fresh_hit`] without it.
//!
//! Off unless `MERIDIAN_EDGE_CACHE=on`; then the edge follows the catalog's events on
//! JetStream (`NATS_URL`, `MERIDIAN_NATS_PREFIX`) and purges what they change ([`purge`]).
//!
//! - Only `GET`/`HEAD` of the catalog and search (`/products…`, `/categories…`, `/search…`),
//!   without `Authorization` or `Cookie`: an authenticated response is never stored or served.
//! - The key is the purge generations, scheme, host, path and the query with its parameters
//!   sorted (`?b=2&a=1` and `?a=1&b=2` are one entry), and the request's values of the headers
//!   the response's `Vary` names.
//! - A response is stored only as the core's `Cache-Control` allows, never with `Set-Cookie`
//!   or `Vary: *`; within its `stale-while-revalidate` window a stale answer is served while one
//!   request refreshes it in the background, within `stale-if-error` when the core fails.
//! - Concurrent misses on one key wait for the first (the cache lock): one upstream request.

pub mod purge;
pub mod store;

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use http::{Method, header};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora_cache::cache_control::CacheControl;
use pingora_cache::filters::resp_cacheable;
use pingora_cache::key::{CacheKey, HashBinary};
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::{CacheMeta, CacheMetaDefaults, NoCacheReason, RespCacheable, VarianceBuilder};

use store::{FreshHit, MemoryStore};

/// How long concurrent misses wait for the first one's response before going upstream too.
const LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// Statuses cached without an explicit lifetime: none (the core says what may be cached, and
/// for how long it may be served stale).
const DEFAULTS: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

/// The routes whose anonymous reads are cached.
const PUBLIC_PREFIXES: [&str; 3] = ["/products", "/categories", "/search"];

static LOCK: LazyLock<Box<CacheLock>> = LazyLock::new(|| CacheLock::new_boxed(LOCK_TIMEOUT));

/// The store, created on first use with the configured capacity.
static STORE: std::sync::OnceLock<MemoryStore> = std::sync::OnceLock::new();

/// Creates the store (once; later calls keep the first size).
pub fn init(capacity_bytes: usize) {
    STORE.get_or_init(|| MemoryStore::new(capacity_bytes, capacity_bytes / 4096 + 1));
}

pub fn store() -> Option<&'static MemoryStore> {
    STORE.get()
}

pub fn lock() -> &'static CacheKeyLockImpl {
    &**LOCK
}

/// Whether a request may be answered from (and fill) the cache.
pub fn request_cacheable(request: &RequestHeader) -> bool {
    let method_ok = request.method == Method::GET || request.method == Method::HEAD;
    method_ok
        && cacheable_route(request.uri.path())
        && !request.headers.contains_key(header::AUTHORIZATION)
        && !request.headers.contains_key(header::COOKIE)
}

/// Whether anonymous reads of `path` are cached.
pub fn cacheable_route(path: &str) -> bool {
    PUBLIC_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Generations, scheme, host, path and sorted query.
pub fn key(request: &RequestHeader, tls: bool) -> CacheKey {
    let host = request
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        // HTTP/2 carries the host, port included, as the URI's authority.
        .or_else(|| request.uri.authority().map(|authority| authority.as_str()))
        .unwrap_or_default();
    key_of(host, tls, request.uri.path(), request.uri.query())
}

/// [`key`], from the request's parts.
fn key_of(host: &str, tls: bool, path: &str, query: Option<&str>) -> CacheKey {
    let host = host.to_ascii_lowercase();
    let scheme = if tls { "https" } else { "http" };
    let generations = purge::generations().for_path(path);
    let scope = if generations.product_page { 'p' } else { 'l' };
    let primary = format!(
        "{}|{scope}{}|{scheme}://{host}{path}?{}",
        generations.epoch,
        generations.scope,
        normalized_query(query.unwrap_or_default())
    );
    CacheKey::new(primary, "")
}

fn normalized_query(query: &str) -> String {
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    pairs.join("&")
}

/// The stored answer to `request` if it is fresh and may be served as it is: a plain `GET`
/// (no validators or ranges to answer, which Pingora's path handles) of an entry that varies
/// on nothing. Everything else goes through Pingora's cache state machine.
pub fn fresh_hit(request: &RequestHeader, tls: bool) -> Option<FreshHit> {
    let conditional = [
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::RANGE,
        header::IF_RANGE,
    ]
    .iter()
    .any(|name| request.headers.contains_key(name));
    if request.method != Method::GET || conditional || !request_cacheable(request) {
        return None;
    }
    store()?.fresh(&key(request, tls), SystemTime::now())
}

/// The stored answer for a plain `GET` of `path` and `query` at `host`, if it is fresh and
/// varies on nothing (the caller has checked the request is one [`fresh_hit`] would serve).
pub fn fresh_hit_of(host: &str, tls: bool, path: &str, query: Option<&str>) -> Option<FreshHit> {
    store()?.fresh(&key_of(host, tls, path, query), SystemTime::now())
}

/// The response head of a fresh hit: the stored one with its `Age`, length, the request's id,
/// `X-Cache: HIT` and the rate-limit headers.
pub fn hit_header(
    hit: &FreshHit,
    request_id: &str,
    rate_limit: Option<&crate::ratelimit::Decision>,
) -> pingora::Result<ResponseHeader> {
    let mut header = hit.header().clone();
    for name in store::NOT_STORED {
        header.remove_header(name);
    }
    for (name, value) in hit_fields(hit, request_id, rate_limit) {
        header.insert_header(name, value)?;
    }
    Ok(header)
}

/// The whole HTTP/1.1 answer of a fresh hit, as [`hit_header`] and the stored body make it.
pub fn hit_bytes(
    hit: &FreshHit,
    request_id: &str,
    rate_limit: Option<&crate::ratelimit::Decision>,
) -> Vec<u8> {
    let body = hit.body();
    let mut bytes = Vec::with_capacity(hit.wire_head().len() + 256 + body.len());
    bytes.extend_from_slice(hit.wire_head());
    for (name, value) in hit_fields(hit, request_id, rate_limit) {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// The headers every hit sets for itself.
fn hit_fields(
    hit: &FreshHit,
    request_id: &str,
    rate_limit: Option<&crate::ratelimit::Decision>,
) -> Vec<(&'static str, String)> {
    // RFC 9111 section 4: a response served from a cache carries its Age.
    let mut fields = vec![
        ("age", hit.age_s.to_string()),
        ("content-length", hit.body().len().to_string()),
        (crate::phases::X_REQUEST_ID, request_id.to_owned()),
        (X_CACHE, "HIT".to_owned()),
    ];
    if let Some(decision) = rate_limit {
        fields.extend(crate::reply::rate_limit_fields(decision));
    }
    fields
}

/// How the edge's cache treated a request on a cached route: HIT, MISS, STALE or REVALIDATED.
pub const X_CACHE: &str = "x-cache";

/// The variance of `request` for a response that varies by the headers its `Vary` names
/// (`None` when it names none).
pub fn variance(request: &RequestHeader, meta: &CacheMeta) -> Option<HashBinary> {
    let mut names: Vec<String> = meta
        .headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort_unstable();
    names.dedup();
    let mut variance = VarianceBuilder::new();
    for name in &names {
        let value = request
            .headers
            .get(name.as_str())
            .map_or(&b""[..], |value| value.as_bytes());
        variance.add_value(name, value);
    }
    variance.finalize()
}

/// Whether the core's response may be stored, and for how long.
pub fn response_cacheable(response: &ResponseHeader) -> RespCacheable {
    if response.headers.contains_key(header::SET_COOKIE) {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("sets a cookie"));
    }
    let vary_all = response
        .headers
        .get_all(header::VARY)
        .iter()
        .any(|v| v.as_bytes().trim_ascii() == b"*");
    if vary_all {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("Vary: *"));
    }
    let cache_control = CacheControl::from_resp_headers(response);
    resp_cacheable(cache_control.as_ref(), response.clone(), false, &DEFAULTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> RequestHeader {
        let mut request = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        request.insert_header("host", "Shop.Example").unwrap();
        request
    }

    #[test]
    fn only_anonymous_catalog_reads_are_cacheable() {
        assert!(request_cacheable(&get("/products/1")));
        assert!(request_cacheable(&get("/search?q=shoe")));
        assert!(!request_cacheable(&get("/productsx")));
        assert!(!request_cacheable(&get("/cart")));
        let mut signed_in = get("/products/1");
        signed_in
            .insert_header("authorization", "Bearer x")
            .unwrap();
        assert!(!request_cacheable(&signed_in));
        let mut cookie = get("/products/1");
        cookie.insert_header("cookie", "s=1").unwrap();
        assert!(!request_cacheable(&cookie));
        let post = RequestHeader::build("POST", b"/products", None).unwrap();
        assert!(!request_cacheable(&post));
    }

    #[test]
    fn keys_ignore_parameter_order_and_host_case() {
        use pingora_cache::key::CacheHashKey;
        let a = key(&get("/products?b=2&a=1"), false).combined();
        let b = key(&get("/products?a=1&b=2&"), false).combined();
        assert_eq!(a, b);
        assert_ne!(a, key(&get("/products?a=1"), false).combined());
        assert_ne!(a, key(&get("/products?b=2&a=1"), true).combined());
    }

    #[test]
    fn an_h2_authority_keys_as_the_h1_host_header_does() {
        let mut h1 = RequestHeader::build("GET", b"/products/1", None).unwrap();
        h1.insert_header("host", "shop.example:8443").unwrap();
        let mut h2 = RequestHeader::build("GET", b"/products/1", None).unwrap();
        h2.set_uri("https://shop.example:8443/products/1".parse().unwrap());
        use pingora_cache::key::CacheHashKey;
        assert_eq!(key(&h1, true).combined(), key(&h2, true).combined());
    }

    #[test]
    fn cookies_and_private_answers_are_not_stored() {
        let mut ok = ResponseHeader::build(200, None).unwrap();
        ok.insert_header("cache-control", "public, max-age=30")
            .unwrap();
        assert!(matches!(
            response_cacheable(&ok),
            RespCacheable::Cacheable(_)
        ));
        let mut cookie = ok.clone();
        cookie.insert_header("set-cookie", "s=1").unwrap();
        assert!(!matches!(
            response_cacheable(&cookie),
            RespCacheable::Cacheable(_)
        ));
        let mut private = ResponseHeader::build(200, None).unwrap();
        private
            .insert_header("cache-control", "private, max-age=30")
            .unwrap();
        assert!(!matches!(
            response_cacheable(&private),
            RespCacheable::Cacheable(_)
        ));
        let silent = ResponseHeader::build(200, None).unwrap();
        assert!(!matches!(
            response_cacheable(&silent),
            RespCacheable::Cacheable(_)
        ));
    }
}
