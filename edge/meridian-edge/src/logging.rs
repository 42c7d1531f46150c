//! Process-wide logging and the access log line.
//!
//! Pingora logs through the `log` crate; `tracing-subscriber` forwards those records, so both
//! end up in one stream. Field names follow the workspace convention (`request_id`, units in the
//! name as in `duration_ms`). `RUST_LOG` overrides the default `info` level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; call once, from `main`, and keep the guard alive.
///
/// Lines are written by a background thread: the access log is one line per request, and a
/// `write` per line on the proxy's threads cost about a tenth of its throughput. When that
/// thread falls behind by more than its buffer, lines are dropped rather than slowing requests.
pub fn init() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .init();
    guard
}

/// One finished request, as the access log records it.
pub(crate) struct AccessRecord<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// 0 when no response could be sent (the client went away).
    pub status: u16,
    pub duration_ms: u64,
    pub request_id: &'a str,
    /// `None` when the edge answered by itself.
    pub upstream: Option<&'a str>,
}

pub(crate) fn access(record: &AccessRecord<'_>) {
    tracing::info!(
        target: "meridian_edge::access",
        method = record.method,
        path = record.path,
        status = record.status,
        duration_ms = record.duration_ms,
        request_id = record.request_id,
        upstream = record.upstream.unwrap_or("-"),
        "request"
    );
}
