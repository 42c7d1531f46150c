//! Access-token verification: compact JWS, EdDSA (Ed25519) only, checked byte by byte before
//! any key is touched.
//!
//! Invariant: a token is accepted only if its header is exactly what the issuer writes
//! (`alg: "EdDSA"` in that casing, `typ` absent or `"JWT"`, a `kid` of at most 64 URL-safe
//! characters naming a key we already hold, and no other member: nothing in the token —
//! `jwk`, `jku`, `x5u`, `x5c`, `crit` — can choose or carry a key), its signature verifies
//! strictly under that key, and its claims are our issuer and audience, with integer
//! `exp`/`nbf`/`iat` inside [`LEEWAY_S`] of now and a lifetime of at most [`MAX_LIFETIME_S`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

/// Who signs access tokens, and for whom.
pub const ISSUER: &str = "meridian-users";
pub const AUDIENCE: &str = "meridian";
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_S: i64 = 30;
/// The longest lifetime (`exp - iat`) accepted: the issuer signs for 15 minutes.
pub const MAX_LIFETIME_S: i64 = 15 * 60;
/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_LEN: usize = 4096;
const MAX_KID_LEN: usize = 64;

/// The verified identity a token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub role: Role,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Buyer,
    Seller,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
            Role::Admin => "admin",
        }
    }

    fn parse(raw: &str) -> Option<Role> {
        match raw {
            "buyer" => Some(Role::Buyer),
            "seller" => Some(Role::Seller),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Why a token was refused. Only logged: every refusal is the same 401 to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Header,
    Algorithm,
    /// The `kid` is well formed but names no key we hold (a refresh may find it).
    UnknownKey,
    Signature,
    Claims,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    Lifetime,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Header => "header",
            Refusal::Algorithm => "algorithm",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Signature => "signature",
            Refusal::Claims => "claims",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Issuer => "issuer",
            Refusal::Audience => "audience",
            Refusal::Lifetime => "lifetime",
        }
    }
}

/// The parts of a token, split and decoded, before any key is chosen.
pub struct Parsed<'t> {
    /// The `kid` its header names.
    pub kid: String,
    signing_input: &'t [u8],
    signature: Signature,
    claims: Vec<u8>,
}

/// Splits and checks the header of `token`.
pub fn parse(token: &str) -> Result<Parsed<'_>, Refusal> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header = decode(header)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|_| Refusal::Malformed)?;
    let kid = check_header(&header)?;
    let signature = decode(signature)?;
    let signature = Signature::from_slice(&signature).map_err(|_| Refusal::Signature)?;
    let claims = decode(claims)?;
    Ok(Parsed {
        kid,
        signing_input: &token.as_bytes()[..token.rfind('.').unwrap_or(0)],
        signature,
        claims,
    })
}

impl Parsed<'_> {
    /// Verifies the signature under `key` (the key the header's `kid` names) and the claims at
    /// `now` (Unix seconds).
    pub fn verify(&self, key: &VerifyingKey, now: i64) -> Result<Identity, Refusal> {
        key.verify_strict(self.signing_input, &self.signature)
            .map_err(|_| Refusal::Signature)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&self.claims).map_err(|_| Refusal::Claims)?;
        check_claims(&claims, now)
    }
}

/// Strict base64url without padding, as JWS requires.
fn decode(part: &str) -> Result<Vec<u8>, Refusal> {
    if part.is_empty() {
        return Err(Refusal::Malformed);
    }
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::Malformed)
}

fn check_header(header: &Map<String, Value>) -> Result<String, Refusal> {
    for (name, value) in header {
        match name.as_str() {
            "alg" => {
                if value.as_str() != Some("EdDSA") {
                    return Err(Refusal::Algorithm);
                }
            }
            "typ" => {
                if value.as_str() != Some("JWT") {
                    return Err(Refusal::Header);
                }
            }
            "kid" => {}
            // jwk, jku, x5u, x5c, x5t, crit, b64, cty, ...: the issuer writes none of them.
            _ => return Err(Refusal::Header),
        }
    }
    if !header.contains_key("alg") {
        return Err(Refusal::Algorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(Refusal::Header)?;
    let well_formed = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(Refusal::Header);
    }
    Ok(kid.to_owned())
}

/// A claim that must be a JSON integer (not a string, not a float).
fn integer(claims: &Map<String, Value>, name: &str) -> Result<i64, Refusal> {
    claims
        .get(name)
        .and_then(Value::as_i64)
        .ok_or(Refusal::Claims)
}

fn check_claims(claims: &Map<String, Value>, now: i64) -> Result<Identity, Refusal> {
    let exp = integer(claims, "exp")?;
    let nbf = integer(claims, "nbf")?;
    let iat = integer(claims, "iat")?;
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Err(Refusal::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    if !audience_ok {
        return Err(Refusal::Audience);
    }
    if exp <= now - LEEWAY_S {
        return Err(Refusal::Expired);
    }
    if nbf > now + LEEWAY_S || iat > now + LEEWAY_S {
        return Err(Refusal::NotYetValid);
    }
    if exp - iat > MAX_LIFETIME_S || nbf > exp {
        return Err(Refusal::Lifetime);
    }
    let user_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|sub| {
            !sub.is_empty() && sub.len() <= 64 && sub.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or(Refusal::Claims)?;
    let role = claims
        .get("role")
        .and_then(Value::as_str)
        .and_then(Role::parse)
        .ok_or(Refusal::Claims)?;
    Ok(Identity {
        user_id: user_id.to_owned(),
        role,
        expires_at: exp,
    })
}
