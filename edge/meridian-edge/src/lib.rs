//! Meridian's edge: the Pingora proxy every public request passes through before it reaches a
//! regional core.
//!
//! The binary (`main.rs`) only reads [`settings::Settings`], starts [`logging`] and hands over to
//! [`server::build`]; everything else is here so it can be unit-tested.
//!
//! - [`settings`]: the one configuration struct, read from the environment.
//! - [`server`]: assembles the Pingora server: the public proxy (HTTP and HTTPS) and the ops
//!   listener with Prometheus `/metrics`.
//! - `proxy`: the `ProxyHttp` implementation; the only place that speaks Pingora's hooks.
//! - `phases`: what happens to a request, in order, before it is forwarded (request id, header
//!   sanitation, local endpoints, access tokens and the route policy, rate limits, the WAF).
//! - [`waf`]: the web application firewall's rules, normalisation and anomaly scoring (public
//!   so the evaluation example can drive it).
//! - `auth`: access-token verification against the issuer's JWKS, and the route policy.
//! - `ratelimit`: GCRA quotas per client address, user, sign-in routes and checkout;
//!   `global_limits`: the same quotas shared by every edge node through Redis, when configured.
//! - `upstreams`: regions, their core addresses, and the order one request tries them in.
//! - `reply` and `problem`: every response the edge writes itself, errors as problem+json.
//! - `tls`: the HTTPS certificate, operator-provided or a generated development one.
//! - [`logging`] and `metrics`: the access log and the request counters.
//! - `per_thread`: state every request writes, kept per thread so no cache line travels
//!   between cores (the WAF's caches, the log batch, the counters, the upstream pools).

mod auth;
mod cache;
mod context;
mod forward;
mod front;
mod global_limits;
pub mod logging;
mod metrics;
mod per_thread;
mod phases;
mod problem;
mod proxy;
mod ratelimit;
mod reply;
pub mod server;
pub mod settings;
mod tls;
mod upstreams;
pub mod waf;
