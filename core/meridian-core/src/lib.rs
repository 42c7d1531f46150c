//! The composition root: hosts any subset of the domain services for one region.
//!
//! - [`registry`]: the services this binary can host; the only place that names them all.
//! - [`app`]: connects the shared dependencies, migrates, starts the chosen services and
//!   serves them behind the platform middleware, with the ops port beside.
//! - [`openapi`]: the OpenAPI 3.1 document of the hosted services.
//!
//! Invariant: this is the only crate that depends on more than one service; which services a
//! process hosts is configuration (`MERIDIAN_SERVICES`), not code.

pub mod app;
pub mod openapi;
pub mod registry;
