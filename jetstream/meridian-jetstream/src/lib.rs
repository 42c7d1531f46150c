//! Every JetStream stream, consumer and versioned event schema of Meridian, declared once.
//!
//! - [`envelope`]: the envelope every event travels in (id, type, version, aggregate, time).
//! - [`events`]: the versioned payloads, one module per owning service.
//! - [`naming`]: stream names and subjects, derived from one prefix so tests and
//!   deployments can share a server without seeing each other's traffic.
//! - `declare` (feature `declare`): creates or updates the streams on a server.
//! - `consumers` (feature `declare`): the durable consumers, each declared once.
//!
//! API boundary: the schemas compile with serde alone, so any crate may depend on this one
//! without pulling in a NATS client.

pub mod envelope;
pub mod events;
pub mod naming;

#[cfg(feature = "declare")]
pub mod consumers;
#[cfg(feature = "declare")]
pub mod declare;

pub use envelope::{Envelope, Event, RawEnvelope};
pub use naming::{Naming, StreamKind};
