//! What every core service shares, so that each service crate holds only its domain.
//!
//! - [`error`]: the closed set of API errors and the one place they become problem+json.
//! - [`extract`]: JSON and path extractors whose rejections use the same format.
//! - [`auth`]: access-token verification against the issuer's JWKS, and the caller's identity.
//! - [`settings`]: the core binary's configuration, from the environment.
//! - [`db`]: one Postgres pool per service, each confined to the service's own schema.
//! - [`outbox`]: events written in the same transaction as the change, relayed to JetStream.
//! - [`rpc`]: typed request/reply over NATS for internal calls.
//! - [`http`]: middleware every router gets (request id, region, limits, metrics).
//! - [`ops`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`pagination`]: `limit` and opaque cursors.
//! - [`validate`]: field-level validation that collects every failure at once.

pub mod auth;
pub mod consume;
pub mod db;
pub mod error;
pub mod etag;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod money;
pub mod ops;
pub mod outbox;
pub mod pagination;
pub mod rpc;
pub mod settings;
pub mod telemetry;
pub mod validate;

pub use error::{ApiError, ApiResult};
pub use service::{Mounted, ServiceContext};

pub mod service;
