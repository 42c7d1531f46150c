//! Typed request/reply contracts for internal calls between core services over NATS.
//!
//! A contract is a request type, a response type and an endpoint name; the subject is
//! `<prefix>.rpc.<endpoint>` (see `meridian_jetstream::Naming::rpc_subject`). Services answer in
//! a queue group named after the endpoint, so any number of replicas share the load.
//!
//! API boundary: serde only; no NATS client, so a service depends on the contracts of another
//! service without depending on that service.

pub mod cart;
pub mod catalog;
pub mod inventory;
pub mod payments;
pub mod users;

use serde::{Serialize, de::DeserializeOwned};

/// One internal endpoint.
pub trait Contract {
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The endpoint name, `<service>.<action>`.
    const ENDPOINT: &'static str;
}
