//! Versioned event payloads, one module per owning service.

pub mod catalog;
pub mod users;
