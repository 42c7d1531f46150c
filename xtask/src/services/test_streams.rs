//! Deleting the JetStream streams that earlier test runs left behind.
//!
//! Every integration test runs its cores under a NATS prefix of its own (`t` or `e` and twelve
//! hex digits), so each one leaves six streams (`T0123456789AB_ORDERS`, ...) in the store, and
//! the server recovers all of them at every start: after a hundred runs, thousands of streams
//! and gigabytes. Like the stale test databases, they are deleted before a test run, through
//! the JetStream API over NATS' text protocol (xtask has no async runtime and needs only two
//! requests of it). Streams created in the last [`STALE_AFTER`] are kept: they may belong to a
//! test run in progress in another terminal, which shares this server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// A test stream younger than this may still be in use.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reply read (a page of the stream list is far smaller).
const MAX_REPLY: usize = 16 << 20;

/// One stream of the server.
#[derive(Debug)]
struct Stream {
    name: String,
    /// When it was created, in seconds since the Unix epoch (`None`: unreadable).
    created: Option<i64>,
}

/// Deletes the streams of the server at `url` (`nats://host:port`) that test runs left more
/// than [`STALE_AFTER`] ago. Returns (deleted, kept).
pub fn delete_stale(url: &str) -> Result<(usize, usize)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let cutoff = i64::try_from(now.saturating_sub(STALE_AFTER.as_secs())).unwrap_or(i64::MAX);
    delete_where(url, |stream| {
        stream.created.is_some_and(|created| created < cutoff)
    })
}

/// Deletes the test-named streams for which `stale` holds; returns (deleted, kept).
fn delete_where(url: &str, stale: impl Fn(&Stream) -> bool) -> Result<(usize, usize)> {
    let mut client = Client::connect(url)?;
    let (mut deleted, mut kept) = (0, 0);
    for stream in client.streams()? {
        if !is_test_stream(&stream.name) {
            continue;
        }
        if stale(&stream) {
            client.delete(&stream.name)?;
            deleted += 1;
        } else {
            kept += 1;
        }
    }
    Ok((deleted, kept))
}

/// Whether `name` is a stream of a test's own prefix: `T` or `E`, twelve upper-case hex digits,
/// `_`, the service (see `meridian_jetstream::Naming::stream_name` and the tests' prefixes).
fn is_test_stream(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 14
        && matches!(bytes[0], b'T' | b'E')
        && bytes[1..13]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
        && bytes[13] == b'_'
        && bytes[14..].iter().all(u8::is_ascii_uppercase)
}

/// A connection speaking just enough of NATS' protocol for JetStream API requests.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    requests: u64,
}

impl Client {
    fn connect(url: &str) -> Result<Client> {
        let address = url
            .strip_prefix("nats://")
            .unwrap_or(url)
            .trim_end_matches('/');
        let socket = address
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {address}"))?
            .next()
            .with_context(|| format!("{address} resolves to nothing"))?;
        let stream = TcpStream::connect_timeout(&socket, TIMEOUT)
            .with_context(|| format!("cannot connect to NATS at {address}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut client = Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            requests: 0,
        };
        let info = client.line()?;
        ensure!(info.starts_with("INFO "), "not a NATS server: {info:?}");
        client.writer.write_all(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"xtask\"}\r\n\
              SUB _INBOX.xtask.* 1\r\n",
        )?;
        Ok(client)
    }

    /// Sends `payload` to `subject` and returns the reply.
    fn request(&mut self, subject: &str, payload: &[u8]) -> Result<Value> {
        self.requests += 1;
        let inbox = format!("_INBOX.xtask.{}", self.requests);
        let mut message = format!("PUB {subject} {inbox} {}\r\n", payload.len()).into_bytes();
        message.extend_from_slice(payload);
        message.extend_from_slice(b"\r\n");
        self.writer.write_all(&message)?;
        loop {
            let line = self.line()?;
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n")?;
            } else if let Some(error) = line.strip_prefix("-ERR") {
                bail!("NATS refused a request to {subject}:{error}");
            } else if let Some(header) = line.strip_prefix("MSG ") {
                // MSG <subject> <sid> [reply-to] <size>
                let fields: Vec<&str> = header.split_whitespace().collect();
                let size: usize = fields
                    .last()
                    .and_then(|size| size.parse().ok())
                    .filter(|size| *size <= MAX_REPLY)
                    .with_context(|| format!("a malformed MSG line: {line:?}"))?;
                let mut body = vec![0; size + 2];
                self.reader.read_exact(&mut body)?;
                body.truncate(size);
                if fields.first() == Some(&inbox.as_str()) {
                    return serde_json::from_slice(&body)
                        .with_context(|| format!("the reply to {subject} is not JSON"));
                }
            }
            // INFO updates, PONG and +OK carry nothing for us.
        }
    }

    /// Every stream of the server, page by page.
    fn streams(&mut self) -> Result<Vec<Stream>> {
        let mut streams = Vec::new();
        loop {
            let page = self.request(
                "$JS.API.STREAM.LIST",
                format!("{{\"offset\":{}}}", streams.len()).as_bytes(),
            )?;
            api_error(&page, "listing the streams")?;
            let listed = page["streams"].as_array().cloned().unwrap_or_default();
            if listed.is_empty() {
                break;
            }
            for info in listed {
                let name = info["config"]["name"].as_str().unwrap_or_default();
                streams.push(Stream {
                    name: name.to_owned(),
                    created: info["created"].as_str().and_then(rfc3339_seconds),
                });
            }
            if streams.len() as u64 >= page["total"].as_u64().unwrap_or(0) {
                break;
            }
        }
        Ok(streams)
    }

    fn delete(&mut self, stream: &str) -> Result<()> {
        let reply = self.request(&format!("$JS.API.STREAM.DELETE.{stream}"), b"")?;
        api_error(&reply, &format!("deleting stream {stream}"))?;
        ensure!(
            reply["success"] == Value::Bool(true),
            "deleting stream {stream}: {reply}"
        );
        Ok(())
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = (&mut self.reader)
            .take(64 * 1024)
            .read_line(&mut line)
            .context("reading from NATS")?;
        ensure!(read > 0, "NATS closed the connection");
        Ok(line.trim_end().to_owned())
    }
}

fn api_error(reply: &Value, doing: &str) -> Result<()> {
    match reply.get("error") {
        Some(error) => bail!("{doing}: {error}"),
        None => Ok(()),
    }
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time (`2026-12-07T04:33:30.123456789Z`, as
/// NATS writes `created`); `None` for any other form.
fn rfc3339_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.ends_with('Z') || bytes[10] != b'T' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let fraction = &text[19..text.len() - 1];
    let fraction_ok = fraction.is_empty()
        || (fraction.len() > 1
            && fraction.starts_with('.')
            && fraction[1..].bytes().all(|b| b.is_ascii_digit()));
    if !fraction_ok
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (the proleptic Gregorian calendar), Howard Hinnant's method.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tests_own_streams_are_test_streams() {
        assert!(is_test_stream("T0123456789AB_ORDERS"));
        assert!(is_test_stream("EFA39807D2996_CATALOG"));
        for name in [
            "MERIDIAN_ORDERS",
            "T0123456789AB_",
            "T0123456789A_ORDERS",
            "T0123456789ab_ORDERS",
            "X0123456789AB_ORDERS",
            "T0123456789AB_ORDERS2",
            "KV_T0123456789AB",
        ] {
            assert!(!is_test_stream(name), "{name}");
        }
    }

    #[test]
    fn nats_creation_times_are_read() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2026-12-07T04:33:30.123456789Z"),
            Some(1_796_618_010)
        );
        assert_eq!(rfc3339_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        for text in [
            "2026-12-07T04:33:30+01:00",
            "2026-12-07 04:33:30Z",
            "2026-13-07T04:33:30Z",
            "2026-12-07T04:33:30.Z",
            "",
        ] {
            assert_eq!(rfc3339_seconds(text), None, "{text}");
        }
    }

    /// Against the real server (`NATS_URL`, as `cargo xtask test` exports it, or xtask's own):
    /// a stream named as a test's is listed with its creation time and deleted; the others are
    /// left alone.
    #[test]
    fn a_stale_test_stream_is_deleted_and_others_are_kept() {
        let url = std::env::var("NATS_URL").unwrap_or_else(|_| crate::services::nats::local_url());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let ours = format!("T{:012X}_XTASK", u64::from(nanos) << 8 | 0xAB);
        let other = format!("X{}_KEPT", &ours[1..13]);
        let mut client = Client::connect(&url).unwrap();
        for (name, subject) in [(&ours, "a"), (&other, "b")] {
            let config = serde_json::json!({
                "name": name,
                "subjects": [format!("xtask-test.{}.{subject}", &ours[1..13])],
                "storage": "memory",
            });
            let reply = client
                .request(
                    &format!("$JS.API.STREAM.CREATE.{name}"),
                    config.to_string().as_bytes(),
                )
                .unwrap();
            assert!(reply.get("error").is_none(), "{reply}");
        }

        let listed = client.streams().unwrap();
        let created = listed
            .iter()
            .find(|s| s.name == ours)
            .and_then(|s| s.created)
            .expect("our stream is listed with its creation time");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!((created - now.as_secs() as i64).abs() < 120, "{created}");

        let (deleted, _) = delete_where(&url, |s| s.name == ours).unwrap();
        assert_eq!(deleted, 1);
        let names: Vec<String> = client
            .streams()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(!names.contains(&ours));
        assert!(
            names.contains(&other),
            "a stream not named as a test's is kept"
        );
        client.delete(&other).unwrap();
    }
}
