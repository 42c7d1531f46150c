//! Process-wide logging and the access log line.
//!
//! Pingora logs through the `log` crate; `tracing-subscriber` forwards those records, so both
//! end up in one stream. Field names follow the workspace convention (`request_id`, units in the
//! name as in `duration_ms`). `RUST_LOG` overrides the default `info` level.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How often the buffered lines go out.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many buffered bytes (the output is stuck), new lines are dropped.
const MAX_BUFFERED: usize = 8 << 20;

/// Installs the global subscriber; call once, from `main`.
///
/// Lines are collected in memory and written to stdout by a background thread every
/// [`FLUSH_EVERY`]: the access log is one line per request, and a `write` per line on the
/// proxy's threads cost about a tenth of its throughput, as did waking a writer thread per line
/// (a seventh, on cache hits). When the output falls behind by more than [`MAX_BUFFERED`], lines
/// are dropped rather than slowing requests.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let buffer = Batched::default();
    let flushed = buffer.clone();
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flushed.flush_to(&mut std::io::stdout());
            }
        });
    if spawned.is_err() {
        eprintln!("meridian-edge: cannot start the log writer; logging to stdout directly");
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(buffer)
        .init();
}

/// Log lines waiting for the writer thread.
#[derive(Clone, Default)]
struct Batched(Arc<Mutex<Vec<u8>>>);

impl Batched {
    fn flush_to(&self, out: &mut impl Write) {
        let lines = {
            let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *buffer)
        };
        if !lines.is_empty() {
            let _ = out.write_all(&lines);
            let _ = out.flush();
        }
    }
}

impl Write for Batched {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.len() + bytes.len() <= MAX_BUFFERED {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{Batched, MAX_BUFFERED};

    #[test]
    fn lines_wait_for_the_flush_and_a_stuck_output_drops_them() {
        let mut buffer = Batched::default();
        buffer.write_all(b"one\n").unwrap();
        buffer.write_all(b"two\n").unwrap();
        let mut out = Vec::new();
        buffer.flush_to(&mut out);
        assert_eq!(out, b"one\ntwo\n");
        buffer.flush_to(&mut out);
        assert_eq!(out, b"one\ntwo\n", "a flush writes each line once");

        let big = vec![b'x'; MAX_BUFFERED];
        buffer.write_all(&big).unwrap();
        buffer.write_all(b"dropped\n").unwrap();
        let mut out = Vec::new();
        buffer.flush_to(&mut out);
        assert_eq!(out.len(), MAX_BUFFERED);
    }
}
