//! The issuer's signing keys, held in memory and refreshed in the background from the home
//! region's `/.well-known/jwks.json`.
//!
//! Invariant: only Ed25519 keys published with `alg: "EdDSA"` enter the set, under their `kid`;
//! a token never adds or chooses a key. An unknown `kid` triggers a fetch, but fetches run at
//! most once per [`MIN_REFRESH_GAP`] (the others wait for the running one or return at once),
//! so a flood of made-up `kid`s costs the issuer one request a second at most.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

/// How often the keys are fetched when nothing asks for them sooner.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// The least time between two fetches, whatever asks for them.
pub const MIN_REFRESH_GAP: Duration = Duration::from_secs(1);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A JWKS larger than this is refused.
const MAX_JWKS_BYTES: usize = 64 * 1024;
const MAX_KEYS: usize = 32;

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    alg: String,
    #[serde(default)]
    kid: String,
    #[serde(default)]
    x: String,
}

/// Reads a JWKS document into `kid → key`, skipping every key that is not an EdDSA Ed25519 key.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, String> {
    if body.len() > MAX_JWKS_BYTES {
        return Err("the JWKS is too large".into());
    }
    let jwks: Jwks = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let keys: HashMap<_, _> = jwks
        .keys
        .into_iter()
        .filter(|jwk| jwk.kty == "OKP" && jwk.crv == "Ed25519" && jwk.alg == "EdDSA")
        .filter(|jwk| !jwk.kid.is_empty())
        .filter_map(|jwk| {
            let raw: [u8; 32] = URL_SAFE_NO_PAD.decode(&jwk.x).ok()?.try_into().ok()?;
            Some((jwk.kid, VerifyingKey::from_bytes(&raw).ok()?))
        })
        .take(MAX_KEYS)
        .collect();
    if keys.is_empty() {
        return Err("the JWKS holds no EdDSA key".into());
    }
    Ok(keys)
}

/// The keys, shared by every request.
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    /// When the last fetch started; held across the fetch, so refreshes never overlap.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeySet {
    /// A key set fetched from `url` (nothing is fetched until [`KeySet::refresh`] or the
    /// refresher runs).
    pub fn new(url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        KeySet {
            inner: Arc::new(Inner {
                url,
                client,
                keys: RwLock::new(HashMap::new()),
                last_fetch: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// A key set holding `keys`, for tests.
    #[cfg(test)]
    pub fn fixed(keys: HashMap<String, VerifyingKey>) -> Self {
        let set = KeySet::new(String::new());
        *set.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        set
    }

    pub fn get(&self, kid: &str) -> Option<VerifyingKey> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .copied()
    }

    pub fn is_empty(&self) -> bool {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Fetches the keys now, unless a fetch ran less than [`MIN_REFRESH_GAP`] ago.
    pub async fn refresh(&self) -> Result<(), String> {
        let mut last = self.inner.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFRESH_GAP) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let response = self
            .inner
            .client
            .get(&self.inner.url)
            .send()
            .await
            .map_err(|e| format!("fetching the JWKS: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the JWKS answered {}", response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the JWKS: {e}"))?;
        let keys = parse_jwks(&body)?;
        *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// Refreshes every [`REFRESH_EVERY`]; retries every second while the issuer is unreachable
    /// and no key is held.
    pub async fn run_refresher(self) {
        loop {
            let pause = match self.refresh().await {
                Ok(()) => REFRESH_EVERY,
                Err(error) => {
                    tracing::warn!(%error, "refreshing the signing keys failed");
                    if self.is_empty() {
                        MIN_REFRESH_GAP
                    } else {
                        REFRESH_EVERY
                    }
                }
            };
            tokio::time::sleep(pause).await;
        }
    }
}
