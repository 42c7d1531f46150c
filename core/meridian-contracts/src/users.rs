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

/// One of a user's addresses, for checkout (`None` when it is not theirs or does not exist).
pub struct GetAddress;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetAddressRequest {
    pub user_id: String,
    pub address_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressSnapshot {
    pub id: String,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: Option<String>,
}

impl Contract for GetAddress {
    type Request = GetAddressRequest;
    type Response = Option<AddressSnapshot>;
    const ENDPOINT: &'static str = "users.address";
}

/// How to reach a user: what the notifications worker addresses a message with.
pub struct GetContact;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactRequest {
    pub user_id: uuid::Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub email: String,
    pub name: String,
}

impl Contract for GetContact {
    type Request = ContactRequest;
    /// `None` when there is no such user.
    type Response = Option<Contact>;
    const ENDPOINT: &'static str = "users.contact";
}
