//! Access tokens: the claims the users service signs, their verification against the
//! issuer's JWKS, and the caller's identity as an extractor.
//!
//! Invariant: a token is accepted only with `alg: EdDSA`, a `kid` present in the JWKS, a valid
//! signature, our issuer and audience, `exp`/`nbf`/`iat` within 30 s of leeway and a lifetime no
//! longer than [`MAX_TOKEN_LIFETIME_S`]. Nothing in the token (`jku`, `jwk`, `x5u`) chooses the key.
//! A token once verified is remembered (by its SHA-256) until it expires.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use meridian_contracts::users::{GetJwks, GetJwksRequest, Jwks};
use meridian_jetstream::Naming;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use uuid::Uuid;

use crate::error::ApiError;

pub const ISSUER: &str = "meridian-users";
pub const AUDIENCE: &str = "meridian";
/// The lifetime of an access token the issuer signs.
pub const ACCESS_TOKEN_TTL_S: i64 = 15 * 60;
/// The longest lifetime a verifier accepts, whoever signed it.
pub const MAX_TOKEN_LIFETIME_S: i64 = ACCESS_TOKEN_TTL_S;
const LEEWAY_S: u64 = 30;
/// An unknown `kid` makes the verifier fetch the JWKS again, at most this often; a request
/// that meets one sooner waits for the next fetch instead.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Seller,
    Buyer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Seller => "seller",
            Role::Buyer => "buyer",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "seller" => Some(Role::Seller),
            "buyer" => Some(Role::Buyer),
            _ => None,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Who is calling, as established from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The caller is `user_id` or an admin; anyone else gets a 403.
    pub fn ensure_self_or_admin(&self, user_id: Uuid) -> Result<(), ApiError> {
        if self.user_id == user_id || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "you may only access your own resources".into(),
            ))
        }
    }

    pub fn ensure_role(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role does not allow this".into()))
        }
    }
}

/// Where a verifier gets the issuer's keys from.
#[derive(Clone)]
pub enum JwksSource {
    /// Ask the users service over NATS request/reply.
    Nats {
        client: async_nats::Client,
        naming: Naming,
    },
    /// A fixed set, for tests of the verifier itself.
    Fixed(Jwks),
}

impl JwksSource {
    async fn fetch(&self) -> Result<Jwks, String> {
        match self {
            JwksSource::Nats { client, naming } => crate::rpc::call::<GetJwks>(
                client,
                naming,
                &GetJwksRequest {},
                crate::rpc::DEFAULT_TIMEOUT,
            )
            .await
            .map_err(|e| e.to_string()),
            JwksSource::Fixed(jwks) => Ok(jwks.clone()),
        }
    }
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    /// Counts fetches, so a request that waited for the lock knows whether one happened.
    generation: u64,
}

/// Verified tokens remembered at most (by SHA-256); past this, expired ones are dropped, and if
/// none has expired the memory starts over.
const VERIFIED_CAPACITY: usize = 100_000;

/// Verifies access tokens locally against a cached JWKS, and remembers the tokens it verified
/// until they expire, so a session's requests cost one signature check, not one each.
#[derive(Clone)]
pub struct TokenVerifier {
    source: JwksSource,
    cache: Arc<RwLock<KeyCache>>,
    refresh: Arc<tokio::sync::Mutex<()>>,
    verified: Arc<std::sync::Mutex<HashMap<[u8; 32], Claims>>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token's lifetime is too long")]
    Lifetime,
    #[error("the issuer's keys could not be fetched")]
    KeysUnavailable,
}

impl TokenVerifier {
    pub fn new(source: JwksSource) -> Self {
        Self {
            source,
            cache: Arc::new(RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
                generation: 0,
            })),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            verified: Arc::new(std::sync::Mutex::new(HashMap::new())),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > 4096 {
            return Err(VerifyError::Malformed);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let still_valid = |claims: &Claims| claims.exp > now - LEEWAY_S as i64;
        {
            let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(claims) = verified.get(&digest).filter(|c| still_valid(c)) {
                return Ok(claims.clone());
            }
        }
        let claims = self.verify_signed(token).await?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, claims| still_valid(claims));
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Algorithm);
        }
        if header.jku.is_some() || header.jwk.is_some() || header.x5u.is_some() {
            return Err(VerifyError::Malformed);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh_keys().await?;
                self.key(&kid).ok_or(VerifyError::UnknownKey)?
            }
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation())
            .map_err(|e| VerifyError::Invalid(e.to_string()))?
            .claims;
        if claims.exp - claims.iat > MAX_TOKEN_LIFETIME_S || claims.nbf < claims.iat - 60 {
            return Err(VerifyError::Lifetime);
        }
        Ok(claims)
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.read_cache().keys.get(kid).cloned()
    }

    /// Fetches the JWKS again, unless another request did while this one waited; at most
    /// once per [`MIN_REFRESH_INTERVAL`], so unknown `kid`s cannot flood the issuer.
    async fn refresh_keys(&self) -> Result<(), VerifyError> {
        let seen_generation = self.read_cache().generation;
        let _single_flight = self.refresh.lock().await;
        let (generation, fetched_at) = {
            let cache = self.read_cache();
            (cache.generation, cache.fetched_at)
        };
        if generation != seen_generation {
            return Ok(());
        }
        if let Some(wait) = fetched_at.and_then(|at| MIN_REFRESH_INTERVAL.checked_sub(at.elapsed()))
        {
            tokio::time::sleep(wait).await;
        }
        let jwks = match self.source.fetch().await {
            Ok(jwks) => jwks,
            Err(error) => {
                tracing::warn!(%error, "fetching the JWKS failed");
                // Failures count against the interval too, so an outage is not hammered.
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .fetched_at = Some(Instant::now());
                return Err(VerifyError::KeysUnavailable);
            }
        };
        let keys = jwks
            .keys
            .iter()
            .filter(|jwk| jwk.kty == "OKP" && jwk.crv == "Ed25519" && jwk.alg == "EdDSA")
            .filter_map(|jwk| {
                DecodingKey::from_ed_components(&jwk.x)
                    .ok()
                    .map(|key| (jwk.kid.clone(), key))
            })
            .collect();
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache.generation += 1;
        Ok(())
    }
}

fn validation() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.leeway = LEEWAY_S;
    validation.validate_nbf = true;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation
}

fn bearer(parts: &Parts) -> Option<Result<&str, ApiError>> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(token.ok_or_else(|| {
        ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
    }))
}

async fn caller_from(parts: &Parts, token: &str) -> Result<Caller, ApiError> {
    let verifier = parts
        .extensions
        .get::<TokenVerifier>()
        .ok_or_else(|| ApiError::internal("no TokenVerifier in the request extensions"))?;
    match verifier.verify(token).await {
        Ok(claims) => Ok(Caller {
            user_id: claims.sub,
            role: claims.role,
        }),
        Err(VerifyError::KeysUnavailable) => Err(ApiError::unavailable(
            "token issuer",
            "the JWKS could not be fetched",
        )),
        Err(error) => {
            tracing::debug!(%error, "access token refused");
            Err(ApiError::Unauthorized(
                "the access token is invalid or expired".into(),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) => caller_from(parts, token?).await,
            None => Err(ApiError::Unauthorized(
                "this endpoint needs an access token".into(),
            )),
        }
    }
}

/// The caller if a token was sent (and then it must be valid), or a guest.
#[derive(Debug, Clone, Copy)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) => Ok(MaybeCaller(Some(caller_from(parts, token?).await?))),
            None => Ok(MaybeCaller(None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
    use jsonwebtoken::{EncodingKey, Header};
    use meridian_contracts::users::Jwk;

    use super::*;

    struct Issuer {
        der: Vec<u8>,
        jwk: Jwk,
    }

    fn issuer(kid: &str) -> Issuer {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        Issuer {
            der: key.to_pkcs8_der().expect("der").as_bytes().to_vec(),
            jwk: Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
                kid: kid.into(),
                alg: "EdDSA".into(),
                key_use: "sig".into(),
            },
        }
    }

    fn claims() -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        serde_json::json!({
            "sub": Uuid::now_v7(), "role": "buyer", "iss": ISSUER, "aud": AUDIENCE,
            "iat": now, "nbf": now, "exp": now + 600, "jti": Uuid::now_v7(),
        })
    }

    fn sign(issuer: &Issuer, kid: &str, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&issuer.der)).expect("sign")
    }

    fn verifier(issuers: &[&Issuer]) -> TokenVerifier {
        TokenVerifier::new(JwksSource::Fixed(Jwks {
            keys: issuers.iter().map(|i| i.jwk.clone()).collect(),
        }))
    }

    #[tokio::test]
    async fn valid_tokens_verify() {
        let key = issuer("k1");
        let claims = claims();
        let verified = verifier(&[&key])
            .verify(&sign(&key, "k1", &claims))
            .await
            .expect("valid");
        assert_eq!(
            verified.sub.to_string(),
            claims["sub"].as_str().expect("sub")
        );
        assert_eq!(verified.role, Role::Buyer);
    }

    #[tokio::test]
    async fn every_claim_is_checked() {
        let key = issuer("k1");
        let verifier = verifier(&[&key]);
        let now = chrono::Utc::now().timestamp();
        let tamper: Vec<(&str, serde_json::Value)> = vec![
            ("aud", "someone-else".into()),
            ("iss", "https://evil.example".into()),
            ("exp", (now - 120).into()),
            ("exp", "never".into()),
            ("nbf", (now + 120).into()),
            ("exp", (now + 7 * 24 * 3600).into()),
        ];
        for (claim, value) in tamper {
            let mut claims = claims();
            claims[claim] = value.clone();
            let result = verifier.verify(&sign(&key, "k1", &claims)).await;
            assert!(result.is_err(), "{claim} = {value} accepted");
        }
        for required in ["exp", "iat", "nbf", "iss", "aud", "sub"] {
            let mut claims = claims();
            claims.as_object_mut().expect("object").remove(required);
            assert!(
                verifier.verify(&sign(&key, "k1", &claims)).await.is_err(),
                "no {required}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_keys_and_other_signers_are_refused() {
        let ours = issuer("k1");
        let theirs = issuer("k1");
        let verifier = verifier(&[&ours]);
        let claims = claims();
        assert!(
            verifier
                .verify(&sign(&theirs, "k1", &claims))
                .await
                .is_err()
        );
        assert_eq!(
            verifier.verify(&sign(&ours, "k2", &claims)).await.err(),
            Some(VerifyError::UnknownKey)
        );
        let hs256 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(ours.jwk.x.as_bytes()),
        )
        .expect("sign");
        assert_eq!(
            verifier.verify(&hs256).await.err(),
            Some(VerifyError::Algorithm)
        );
    }
}
