//! Request smuggling: requests whose framing two parsers could read differently get one answer
//! from the edge, on a connection it then closes, and what reaches a core (if anything) is framed
//! one way only. (Pingora itself reads CL.TE as RFC 9112 says: chunked, Content-Length
//! dropped, connection closed; the edge refuses the other shapes before forwarding.)

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{EchoCore, EdgeConfig, TestDir, TestEdge};

/// Writes `raw` on a fresh connection and reads until the edge closes it (or goes quiet).
async fn exchange(edge: &TestEdge, raw: &str) -> String {
    let mut stream = TcpStream::connect(edge.http).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n";

#[tokio::test]
async fn ambiguous_framing_gets_one_answer_and_no_desync() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;
    let chunked_smuggle = format!("0\r\n\r\n{SMUGGLED}");
    let cases = [
        (
            "CL.TE",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nContent-Length: {}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{chunked_smuggle}",
                chunked_smuggle.len()
            ),
        ),
        (
            "TE.CL",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\
                 Content-Length: 4\r\n\r\n{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n",
                SMUGGLED.len()
            ),
        ),
        (
            "duplicate Content-Length",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n\
                 Content-Length: {}\r\n\r\n{SMUGGLED}",
                SMUGGLED.len()
            ),
        ),
        (
            "obfuscated TE (xchunked)",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\
                 Transfer-Encoding: xchunked\r\n\r\n{chunked_smuggle}"
            ),
        ),
        (
            "obfuscated TE (two headers)",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\
                 Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n{chunked_smuggle}"
            ),
        ),
        (
            "obfuscated TE (space before colon)",
            format!(
                "POST /cart/items HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding : chunked\r\n\
                 Content-Length: 5\r\n\r\n{chunked_smuggle}"
            ),
        ),
        (
            "HTTP/1.0 with TE",
            format!(
                "POST /cart/items HTTP/1.0\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\
                 \r\n{chunked_smuggle}"
            ),
        ),
    ];
    for (name, raw) in cases {
        let before = core.hits();
        let answer = exchange(&edge, &raw).await;
        let responses = answer.matches("HTTP/1.").count();
        eprintln!("{name}: {:?}", answer.lines().next());
        assert_eq!(responses, 1, "{name}: {answer}");
        assert!(!answer.contains("/smuggled"), "{name}: {answer}");
        match core.hits() - before {
            // Refused: as ambiguous (400), or by the WAF for the request line in its body (403).
            0 => assert!(
                answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 403"),
                "{name}: {answer}"
            ),
            1 => {
                // Forwarded: with one framing only.
                let framed_twice = answer.contains("[\"content-length\"")
                    && answer.contains("[\"transfer-encoding\"");
                assert!(
                    !framed_twice,
                    "{name} reached the core framed twice: {answer}"
                );
            }
            more => panic!("{name}: {more} requests reached the core"),
        }
    }
}

#[tokio::test]
async fn methods_the_shop_does_not_serve_are_refused() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;
    for method in ["TRACE", "PROPFIND", "DEBUG", "MOVE"] {
        let answer = exchange(
            &edge,
            &format!("{method} /products HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{method}: {answer}");
    }
    assert_eq!(core.hits(), 0);
}
