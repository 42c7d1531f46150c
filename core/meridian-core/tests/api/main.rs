//! The core's integration tests: one binary (link time), one module per area. Each test
//! starts the app on port 0 against real Postgres, Redis and NATS, in a fresh database and
//! under unique stream and key prefixes. E-mail goes to the real SMTP server that `cargo xtask
//! test` starts.

mod cart;
mod catalog;
mod consume;
mod crash;
mod errors;
mod helpers;
mod inventory;
mod notifications;
mod ops;
mod orders;
mod outbox;
mod payments;
mod recommendations;
mod reviews;
mod search;
mod users;
