//! Contracts the users service answers.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// The JSON Web Key Set of the token issuer: every service verifies access tokens locally
/// against it, and asks again when it meets an unknown `kid`.
pub struct GetJwks;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GetJwksRequest {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key in JWK form (RFC 8037).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub key_use: String,
}

impl Contract for GetJwks {
    type Request = GetJwksRequest;
    type Response = Jwks;
    const ENDPOINT: &'static str = "users.jwks";
}
