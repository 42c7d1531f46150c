//! Integration tests: the real `meridian-edge` binary on free ports, in front of fake cores that
//! echo back the request they received. One test binary for the crate (link time); its modules
//! live in `tests/edge/` and group the tests by concern.

#[path = "edge/auth.rs"]
mod auth;
#[path = "edge/cache.rs"]
mod cache;
#[path = "edge/failures.rs"]
mod failures;
#[path = "edge/forwarding.rs"]
mod forwarding;
#[path = "edge/helpers.rs"]
mod helpers;
#[path = "edge/local.rs"]
mod local;
#[path = "edge/rate_limits.rs"]
mod rate_limits;
#[path = "edge/smuggling.rs"]
mod smuggling;
#[path = "edge/tls.rs"]
mod tls;
#[path = "edge/upstream_connections.rs"]
mod upstream_connections;
#[path = "edge/waf.rs"]
mod waf;
