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

use crate::per_thread::PerThread;

/// How often the buffered lines go out.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many bytes buffered by one thread (the output is stuck), its new lines are
/// dropped.
const MAX_BUFFERED: usize = 8 << 20;

/// Installs the global subscriber; call once, from `main`.
///
/// Lines are collected in memory and written to stdout by a background thread every
/// [`FLUSH_EVERY`]: the access log is one line per request, and a `write` per line on the
/// proxy's threads cost about a tenth of its throughput, as did waking a writer thread per line
/// (a seventh, on cache hits). Each thread collects its own lines (one buffer shared by all
/// would travel between cores with every request), so within one flush the lines come thread by
/// thread, each with its timestamp. When the output falls behind by more than [`MAX_BUFFERED`],
/// lines are dropped rather than slowing requests.
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
    if !ansi {
        // Access lines are formatted by hand (without colours) into the same batch.
        let _ = ACCESS_OUT.set(buffer.clone());
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(buffer)
        .init();
}

/// Log lines waiting for the writer thread, by the thread that wrote them (the lock is taken
/// by that thread and, every [`FLUSH_EVERY`], by the writer).
#[derive(Clone)]
struct Batched(Arc<PerThread<Mutex<Vec<u8>>>>);

impl Default for Batched {
    fn default() -> Self {
        Batched(Arc::new(PerThread::new(|| Mutex::new(Vec::new()))))
    }
}

impl Batched {
    fn flush_to(&self, out: &mut impl Write) {
        let mut wrote = false;
        for buffer in self.0.iter() {
            let lines = {
                let mut buffer = buffer.lock().unwrap_or_else(PoisonError::into_inner);
                if buffer.is_empty() {
                    continue;
                }
                std::mem::take(&mut *buffer)
            };
            let _ = out.write_all(&lines);
            wrote = true;
        }
        if wrote {
            let _ = out.flush();
        }
    }

    /// Adds `bytes` to the calling thread's lines.
    fn append(&self, bytes: &[u8]) {
        let buffer = self.0.mine();
        let mut buffer = buffer.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.len() + bytes.len() <= MAX_BUFFERED {
            buffer.extend_from_slice(bytes);
        }
    }
}

impl Write for Batched {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.append(bytes);
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

/// Writes the access log line of `record`, in the format of every other line (`tracing`'s).
///
/// Formatted by hand into the shared batch: the general formatter (a timestamp built from
/// scratch, every field through `Debug`) cost about a seventh of a proxied request.
pub(crate) fn access(record: &AccessRecord<'_>) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(out) = ACCESS_OUT.get() else {
        // Logging was not set up for batching: go through the subscriber.
        tracing::info!(
            target: ACCESS_TARGET,
            method = record.method,
            path = record.path,
            status = record.status,
            duration_ms = record.duration_ms,
            request_id = record.request_id,
            upstream = record.upstream.unwrap_or("-"),
            "request"
        );
        return;
    };
    LINE.with_borrow_mut(|line| {
        line.clear();
        access_line(line, std::time::SystemTime::now(), record);
        // Not through a clone: that would count a reference on the shared `Arc` per request.
        out.append(line);
    });
}

const ACCESS_TARGET: &str = "meridian_edge::access";

/// The batch access lines go to, once [`init`] has set it up.
static ACCESS_OUT: std::sync::OnceLock<Batched> = std::sync::OnceLock::new();

thread_local! {
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `2026-01-02T03:04:05.678901Z  INFO meridian_edge::access: request method="GET" …`, as
/// `tracing_subscriber`'s default format writes an event without ANSI colours.
fn access_line(line: &mut Vec<u8>, now: std::time::SystemTime, record: &AccessRecord<'_>) {
    let since_epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    write_timestamp(line, since_epoch);
    line.extend_from_slice(b"  INFO ");
    line.extend_from_slice(ACCESS_TARGET.as_bytes());
    line.extend_from_slice(b": request method=");
    write_quoted(line, record.method);
    line.extend_from_slice(b" path=");
    write_quoted(line, record.path);
    line.extend_from_slice(b" status=");
    write_number(line, record.status.into(), 1);
    line.extend_from_slice(b" duration_ms=");
    write_number(line, record.duration_ms, 1);
    line.extend_from_slice(b" request_id=");
    write_quoted(line, record.request_id);
    line.extend_from_slice(b" upstream=");
    write_quoted(line, record.upstream.unwrap_or("-"));
    line.push(b'\n');
}

/// RFC 3339 in UTC with microseconds.
fn write_timestamp(line: &mut Vec<u8>, since_epoch: Duration) {
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3600, 2, b':'),
        (of_day / 60 % 60, 2, b':'),
        (of_day % 60, 2, b'.'),
        (since_epoch.subsec_micros().into(), 6, b'Z'),
    ];
    for (value, width, after) in fields {
        write_number(line, value, width);
        line.push(after);
    }
}

/// `value` in decimal, zero-padded to at least `width` digits (`write!` would do, at several
/// times the cost, on every request).
fn write_number(line: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(digits.len().saturating_sub(width));
    line.extend_from_slice(&digits[start..]);
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// A string as `Debug` writes it: plain text as it is, anything else escaped.
fn write_quoted(line: &mut Vec<u8>, value: &str) {
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

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

    #[test]
    fn access_lines_read_as_the_subscriber_writes_them() {
        let record = AccessRecord {
            method: "GET",
            path: "/products/1",
            status: 200,
            duration_ms: 3,
            request_id: "abc",
            upstream: None,
        };
        let now = std::time::UNIX_EPOCH + Duration::from_micros(1_764_660_267_000_042);
        let mut line = Vec::new();
        access_line(&mut line, now, &record);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2025-12-02T07:24:27.000042Z  INFO meridian_edge::access: request method=\"GET\" \
             path=\"/products/1\" status=200 duration_ms=3 request_id=\"abc\" upstream=\"-\"\n"
        );
        let odd = AccessRecord {
            path: "/a\"b\n",
            upstream: Some("127.0.0.1:1"),
            ..record
        };
        let mut line = Vec::new();
        access_line(&mut line, now, &odd);
        let line = String::from_utf8(line).unwrap();
        assert!(line.contains(r#"path="/a\"b\n""#), "{line}");
        assert!(line.contains(r#"upstream="127.0.0.1:1""#), "{line}");
    }

    #[test]
    fn numbers_are_padded_to_their_width() {
        let written = |value, width| {
            let mut line = Vec::new();
            write_number(&mut line, value, width);
            String::from_utf8(line).unwrap()
        };
        assert_eq!(written(0, 1), "0");
        assert_eq!(written(7, 2), "07");
        assert_eq!(written(42, 6), "000042");
        assert_eq!(written(2026, 4), "2026");
        assert_eq!(written(12345, 2), "12345");
        assert_eq!(written(u64::MAX, 1), u64::MAX.to_string());
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_424), (2025, 12, 2));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }
}
