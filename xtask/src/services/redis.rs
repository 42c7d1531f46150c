//! Redis: `REDIS_URL`, or a local server on 127.0.0.1:6379 (installed and started when missing).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{ServiceUrl, wait_until};
use crate::apt;
use crate::cmd;

pub const LOCAL_URL: &str = "redis://127.0.0.1:6379";
const PORT: u16 = 6379;

pub fn ensure() -> Result<ServiceUrl> {
    if let Some(url) = ServiceUrl::from_env("REDIS_URL") {
        println!("xtask: Redis: using REDIS_URL");
        return Ok(url);
    }
    match ping() {
        Ping::Pong => {}
        Ping::NeedsAuth => bail!(
            "Redis on 127.0.0.1:{PORT} requires a password; set REDIS_URL=redis://:PASSWORD@127.0.0.1:{PORT}"
        ),
        Ping::Unexpected(answer) => {
            bail!("something on 127.0.0.1:{PORT} answers PING with `{answer}`; is it Redis?")
        }
        Ping::NoAnswer => start_local_server().context("cannot start a local Redis")?,
    }
    println!("xtask: Redis ready on 127.0.0.1:{PORT}");
    Ok(ServiceUrl::local(LOCAL_URL))
}

fn start_local_server() -> Result<()> {
    if cmd::find_program("redis-server").is_none() {
        apt::install(&["redis-server"])?;
        if ping() == Ping::Pong {
            return Ok(()); // the package's scripts started it
        }
    }
    println!("xtask: starting redis-server on 127.0.0.1:{PORT} (no persistence)");
    // Daemonized: like Postgres it is a machine service that outlives xtask.
    let port = PORT.to_string();
    cmd::run(cmd::command("redis-server").current_dir("/").args([
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--save",
        "",
        "--appendonly",
        "no",
    ]))?;
    wait_until("Redis on 127.0.0.1:6379", Duration::from_secs(15), || {
        ping() == Ping::Pong
    })
}

#[derive(Debug, PartialEq)]
enum Ping {
    Pong,
    NeedsAuth,
    Unexpected(String),
    NoAnswer,
}

/// An inline `PING` over raw TCP; no redis-cli needed.
fn ping() -> Ping {
    let address = SocketAddr::from(([127, 0, 0, 1], PORT));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return Ping::NoAnswer;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.write_all(b"PING\r\n").is_err() {
        return Ping::NoAnswer;
    }
    let mut answer = [0u8; 128];
    match stream.read(&mut answer) {
        Ok(read) if read > 0 => classify(&String::from_utf8_lossy(&answer[..read])),
        _ => Ping::NoAnswer,
    }
}

fn classify(answer: &str) -> Ping {
    let answer = answer.trim();
    if answer == "+PONG" {
        Ping::Pong
    } else if answer.starts_with("-NOAUTH") {
        Ping::NeedsAuth
    } else {
        Ping::Unexpected(answer.chars().take(60).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ping_answers() {
        assert_eq!(classify("+PONG\r\n"), Ping::Pong);
        assert_eq!(
            classify("-NOAUTH Authentication required.\r\n"),
            Ping::NeedsAuth
        );
        assert!(matches!(classify("HTTP/1.1 400"), Ping::Unexpected(_)));
    }
}
