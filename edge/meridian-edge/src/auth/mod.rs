//! Who the caller is: access tokens verified at the edge against the issuer's JWKS, and the
//! route policy they are judged by.
//!
//! - [`token`]: parsing and verifying one token (pure; the attack catalogue is its test).
//! - [`keys`]: the signing keys, refreshed in the background.
//! - [`policy`]: the least role each route needs.
//!
//! [`Verifier`] puts them together with a cache of verified tokens: a token seen before is not
//! verified again until it expires (the cache is keyed by the token's SHA-256, so it holds no
//! token).

pub mod keys;
pub mod policy;
pub mod token;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

pub use keys::KeySet;
pub use token::{Identity, Refusal};

/// Verified tokens remembered at most; past this, expired ones are dropped, and if none has
/// expired the cache starts over.
const CACHE_CAPACITY: usize = 100_000;

/// What became of a presented token.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid(Identity),
    Refused(Refusal),
    /// The token names a key we do not hold and the issuer could not be asked: a 503, not a
    /// 401, since the token may well be good.
    KeysUnavailable,
}

pub struct Verifier {
    keys: KeySet,
    cache: Mutex<HashMap<[u8; 32], Identity>>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Verifier {
    pub fn new(keys: KeySet) -> Self {
        Verifier {
            keys,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `token` at `now` (Unix seconds).
    pub async fn verify(&self, token: &str, now: i64) -> Verdict {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cached(&digest, now) {
            return Verdict::Valid(identity);
        }
        let parsed = match token::parse(token) {
            Ok(parsed) => parsed,
            Err(refusal) => return Verdict::Refused(refusal),
        };
        let key = match self.keys.get(&parsed.kid) {
            Some(key) => key,
            None => {
                // Perhaps a key the issuer has just added: look once (rate-limited).
                let refreshed = self.keys.refresh().await;
                match self.keys.get(&parsed.kid) {
                    Some(key) => key,
                    None if refreshed.is_err() && self.keys.is_empty() => {
                        return Verdict::KeysUnavailable;
                    }
                    None => return Verdict::Refused(Refusal::UnknownKey),
                }
            }
        };
        match parsed.verify(&key, now) {
            Ok(identity) => {
                self.remember(digest, identity.clone(), now);
                Verdict::Valid(identity)
            }
            Err(refusal) => Verdict::Refused(refusal),
        }
    }

    fn cached(&self, digest: &[u8; 32], now: i64) -> Option<Identity> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(digest)
            .filter(|identity| identity.expires_at > now - token::LEEWAY_S)
            .cloned()
    }

    fn remember(&self, digest: [u8; 32], identity: Identity, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, identity| identity.expires_at > now - token::LEEWAY_S);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(digest, identity);
    }
}

#[cfg(test)]
mod tests {
    //! The JWT attack catalogue: every token here must be refused, each for its own reason,
    //! and the one honest token accepted.

    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::token::Role;

    const NOW: i64 = 1_800_000_000;
    const KID: &str = "k2026-11";

    fn issuer_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn attacker_key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn verifier() -> Verifier {
        let keys = HashMap::from([(KID.to_owned(), issuer_key().verifying_key())]);
        Verifier::new(KeySet::fixed(keys))
    }

    fn header() -> Value {
        json!({"alg": "EdDSA", "typ": "JWT", "kid": KID})
    }

    fn claims() -> Value {
        json!({
            "sub": "0190a0b0-0000-7000-8000-000000000001", "role": "buyer",
            "iss": token::ISSUER, "aud": token::AUDIENCE,
            "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 600, "jti": "j1",
        })
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn signed_by(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn signed(header: &Value, claims: &Value) -> String {
        signed_by(&issuer_key(), header, claims)
    }

    fn with(mut value: Value, name: &str, member: Value) -> Value {
        value[name] = member;
        value
    }

    fn without(mut value: Value, name: &str) -> Value {
        value.as_object_mut().map(|object| object.remove(name));
        value
    }

    async fn verdict(token: &str) -> Verdict {
        verifier().verify(token, NOW).await
    }

    #[tokio::test]
    async fn the_issuers_token_is_accepted() {
        let Verdict::Valid(identity) = verdict(&signed(&header(), &claims())).await else {
            panic!("a good token was refused");
        };
        assert_eq!(identity.role, Role::Buyer);
        assert_eq!(identity.user_id, "0190a0b0-0000-7000-8000-000000000001");
        assert_eq!(identity.expires_at, NOW + 600);
    }

    #[tokio::test]
    async fn the_attack_catalogue_is_refused() {
        let good = signed(&header(), &claims());
        let (good_input, good_signature) = good.rsplit_once('.').expect("three parts");
        let mut flipped = URL_SAFE_NO_PAD.decode(good_signature).expect("signature");
        flipped[5] ^= 1;
        let public = issuer_key().verifying_key().to_bytes();

        let mut cases: Vec<(&str, String, Refusal)> = Vec::new();
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = json!({"alg": alg, "typ": "JWT", "kid": KID});
            let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
            cases.push(("alg none, empty signature", unsigned, Refusal::Algorithm));
            let signed = signed(&header, &claims());
            cases.push(("alg none, with a signature", signed, Refusal::Algorithm));
        }
        for alg in [
            "HS256", "HS512", "RS256", "ES256", "PS256", "eddsa", "EDDSA", "Ed25519",
        ] {
            // Key confusion: the public key used as an HMAC secret, or another family.
            let header = json!({"alg": alg, "typ": "JWT", "kid": KID});
            let input = format!("{}.{}", b64(&header), b64(&claims()));
            let mac = <Sha256 as Digest>::digest([&public[..], input.as_bytes()].concat());
            let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
            cases.push(("algorithm confusion", forged, Refusal::Algorithm));
        }
        cases.push((
            "no alg",
            signed(&without(header(), "alg"), &claims()),
            Refusal::Algorithm,
        ));
        cases.push((
            "alg as a list",
            signed(&with(header(), "alg", json!(["EdDSA"])), &claims()),
            Refusal::Algorithm,
        ));
        cases.push((
            "stripped signature",
            format!("{good_input}."),
            Refusal::Malformed,
        ));
        cases.push(("two parts", good_input.to_owned(), Refusal::Malformed));
        cases.push((
            "four parts",
            format!("{good}.{good_signature}"),
            Refusal::Malformed,
        ));
        cases.push((
            "flipped signature bit",
            format!("{good_input}.{}", URL_SAFE_NO_PAD.encode(&flipped)),
            Refusal::Signature,
        ));
        cases.push((
            "padded base64",
            format!(
                "{good_input}.{}",
                STANDARD.encode(URL_SAFE_NO_PAD.decode(good_signature).expect("sig"))
            ),
            Refusal::Malformed,
        ));
        cases.push((
            "signed by another key under our kid",
            signed_by(&attacker_key(), &header(), &claims()),
            Refusal::Signature,
        ));
        cases.push((
            "claims swapped after signing",
            format!(
                "{}.{}.{good_signature}",
                b64(&header()),
                b64(&with(claims(), "role", json!("admin")))
            ),
            Refusal::Signature,
        ));
        cases.push((
            "unknown kid",
            signed_by(
                &attacker_key(),
                &with(header(), "kid", json!("attacker")),
                &claims(),
            ),
            Refusal::UnknownKey,
        ));
        for kid in [
            "../../../../dev/null",
            "/etc/passwd",
            "x' OR '1'='1",
            "k|rm -rf /",
            "",
            "k\u{0}",
        ] {
            let token = signed(&with(header(), "kid", json!(kid)), &claims());
            cases.push(("kid traversal or injection", token, Refusal::Header));
        }
        cases.push((
            "kid as a number",
            signed(&with(header(), "kid", json!(7)), &claims()),
            Refusal::Header,
        ));
        cases.push((
            "no kid",
            signed(&without(header(), "kid"), &claims()),
            Refusal::Header,
        ));
        let attacker_jwk = json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(attacker_key().verifying_key().to_bytes()),
        });
        for (name, member) in [
            ("jwk", attacker_jwk),
            ("jku", json!("https://attacker.example/jwks.json")),
            ("x5u", json!("https://attacker.example/cert.pem")),
            ("x5c", json!(["MIIB"])),
            ("crit", json!(["exp"])),
        ] {
            let token = signed_by(&attacker_key(), &with(header(), name, member), &claims());
            cases.push(("embedded or remote key", token, Refusal::Header));
        }
        for typ in [json!("at+jwt"), json!("JWE"), json!("jwt "), json!(1)] {
            cases.push((
                "wrong typ",
                signed(&with(header(), "typ", typ), &claims()),
                Refusal::Header,
            ));
        }
        cases.push((
            "expired",
            signed(&header(), &with(claims(), "exp", json!(NOW - 31))),
            Refusal::Expired,
        ));
        cases.push((
            "nbf in the future",
            signed(&header(), &with(claims(), "nbf", json!(NOW + 31))),
            Refusal::NotYetValid,
        ));
        cases.push((
            "iat in the future",
            signed(&header(), &with(claims(), "iat", json!(NOW + 31))),
            Refusal::NotYetValid,
        ));
        cases.push((
            "wrong audience",
            signed(&header(), &with(claims(), "aud", json!("other"))),
            Refusal::Audience,
        ));
        cases.push((
            "no audience",
            signed(&header(), &without(claims(), "aud")),
            Refusal::Audience,
        ));
        cases.push((
            "wrong issuer",
            signed(&header(), &with(claims(), "iss", json!("evil"))),
            Refusal::Issuer,
        ));
        cases.push((
            "exp as a string",
            signed(
                &header(),
                &with(claims(), "exp", json!((NOW + 600).to_string())),
            ),
            Refusal::Claims,
        ));
        cases.push((
            "exp as a float",
            signed(&header(), &with(claims(), "exp", json!(1.8e9 + 600.5))),
            Refusal::Claims,
        ));
        cases.push((
            "no exp",
            signed(&header(), &without(claims(), "exp")),
            Refusal::Claims,
        ));
        cases.push((
            "no sub",
            signed(&header(), &without(claims(), "sub")),
            Refusal::Claims,
        ));
        cases.push((
            "unknown role",
            signed(&header(), &with(claims(), "role", json!("root"))),
            Refusal::Claims,
        ));
        cases.push((
            "lifetime over 15 minutes",
            signed(
                &header(),
                &with(claims(), "exp", json!(NOW - 10 + 15 * 60 + 1)),
            ),
            Refusal::Lifetime,
        ));
        cases.push((
            "not JSON",
            format!(
                "{}.{}.{good_signature}",
                URL_SAFE_NO_PAD.encode("{"),
                b64(&claims())
            ),
            Refusal::Malformed,
        ));
        cases.push((
            "oversized",
            "a".repeat(token::MAX_TOKEN_LEN + 1),
            Refusal::Malformed,
        ));

        for (name, token, expected) in cases {
            assert_eq!(
                verdict(&token).await,
                Verdict::Refused(expected),
                "{name}: {token}"
            );
        }
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_until_it_expires() {
        let verifier = verifier();
        let token = signed(&header(), &claims());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        assert!(matches!(
            runtime.block_on(verifier.verify(&token, NOW)),
            Verdict::Valid(_)
        ));
        assert_eq!(verifier.cache.lock().expect("cache").len(), 1);
        assert!(matches!(
            runtime.block_on(verifier.verify(&token, NOW + 100)),
            Verdict::Valid(_)
        ));
        assert_eq!(
            runtime.block_on(verifier.verify(&token, NOW + 600 + token::LEEWAY_S)),
            Verdict::Refused(Refusal::Expired)
        );
    }
}
