//! The edge's own connections to the cores: kept alive and reused, every framing of a
//! response relayed intact, a connection the core closed while idle never costs a request, and
//! a response framed two ways never reaches the client.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{EdgeConfig, TestDir, TestEdge};

/// A core that keeps connections alive and answers by path; it counts the connections that
/// carried a forwarded request, and the POSTs it received.
struct ScriptedCore {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
}

impl ScriptedCore {
    async fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let posts = Arc::new(AtomicUsize::new(0));
        let counters = (Arc::clone(&connections), Arc::clone(&posts));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, counters.clone()));
            }
        });
        ScriptedCore {
            addr,
            connections,
            posts,
        }
    }
}

/// Serves requests on one connection until the client or the script closes it.
async fn serve(mut stream: TcpStream, (connections, posts): (Arc<AtomicUsize>, Arc<AtomicUsize>)) {
    let mut buffer = Vec::new();
    let mut counted = false;
    loop {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        let request_line: Vec<&str> = head.lines().next().unwrap_or_default().split(' ').collect();
        let (method, path) = (request_line[0], request_line[1]);
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.trim().parse().unwrap());
        while buffer.len() < length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer.drain(..length).collect();
        // The edge's own health probes and key fetches are not forwarded requests.
        let forwarded = !matches!(path, "/readyz" | "/.well-known/jwks.json");
        if forwarded && !counted {
            counted = true;
            connections.fetch_add(1, Ordering::SeqCst);
        }
        if method == "POST" {
            posts.fetch_add(1, Ordering::SeqCst);
        }
        let fixed = |text: &str| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )
        };
        let (answer, then_close) = match path {
            "/api/chunked" => (
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n"
                    .to_owned(),
                false,
            ),
            "/api/until-close" => (
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n\
                 everything until the end"
                    .to_owned(),
                true,
            ),
            "/api/smuggled" => (
                "HTTP/1.1 200 OK\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n\
                 0\r\n\r\n"
                    .to_owned(),
                false,
            ),
            // Answers, then closes the connection without saying so, as a core does when an
            // idle connection times out.
            "/api/then-idle-close" => (fixed("bye"), true),
            _ if method == "POST" => (
                fixed(&format!("got {}", String::from_utf8_lossy(&body))),
                false,
            ),
            _ => (fixed(&format!("ok {path}")), false),
        };
        if stream.write_all(answer.as_bytes()).await.is_err() || then_close {
            return;
        }
    }
}

async fn edge_in_front_of(core: &ScriptedCore, dir: &TestDir) -> TestEdge {
    TestEdge::start(
        EdgeConfig::with_upstreams(format!("local={}", core.addr)),
        dir.path(),
    )
    .await
}

async fn text(edge: &TestEdge, path: &str) -> (u16, String) {
    let response = edge.client.get(edge.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let core = ScriptedCore::start().await;
    let dir = TestDir::new();
    let edge = edge_in_front_of(&core, &dir).await;
    for i in 0..30 {
        let (status, body) = text(&edge, &format!("/api/items/{i}")).await;
        assert_eq!((status, body), (200, format!("ok /api/items/{i}")));
    }
    assert_eq!(core.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn chunked_and_close_delimited_answers_arrive_whole() {
    let core = ScriptedCore::start().await;
    let dir = TestDir::new();
    let edge = edge_in_front_of(&core, &dir).await;
    for _ in 0..3 {
        assert_eq!(
            text(&edge, "/api/chunked").await,
            (200, "hello, world".to_owned())
        );
        assert_eq!(
            text(&edge, "/api/until-close").await,
            (200, "everything until the end".to_owned())
        );
    }
}

#[tokio::test]
async fn a_connection_the_core_closed_while_idle_costs_no_request() {
    let core = ScriptedCore::start().await;
    let dir = TestDir::new();
    let edge = edge_in_front_of(&core, &dir).await;
    for i in 0..5 {
        assert_eq!(text(&edge, "/api/then-idle-close").await.0, 200);
        assert_eq!(text(&edge, &format!("/api/after/{i}")).await.0, 200);
        let response = edge
            .client
            .post(edge.url("/api/cart/items"))
            .body("one line")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "got one line");
        assert_eq!(text(&edge, "/api/then-idle-close").await.0, 200);
    }
    assert_eq!(
        core.posts.load(Ordering::SeqCst),
        5,
        "each POST reached the core once"
    );
}

#[tokio::test]
async fn an_answer_framed_two_ways_is_a_502() {
    let core = ScriptedCore::start().await;
    let dir = TestDir::new();
    let edge = edge_in_front_of(&core, &dir).await;
    let response = edge
        .client
        .get(edge.url("/api/smuggled"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, _) = text(&edge, "/api/next").await;
    assert_eq!(status, 200);
}
