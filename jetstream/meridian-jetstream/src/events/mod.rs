//! Versioned event payloads, one module per owning service.

pub mod catalog;
pub mod inventory;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod users;
