//! Access tokens at the edge, against a core that publishes a JWKS: identity forwarded, bad
//! tokens and the route policy answered before the core sees anything.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::helpers::{Echo, EchoCore, EdgeConfig, TestDir, TestEdge};

const KID: &str = "edge-test-key";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

fn jwks() -> String {
    let x = URL_SAFE_NO_PAD.encode(key().verifying_key().to_bytes());
    json!({"keys": [
        {"kty": "RSA", "kid": "ignored", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": KID, "x": x},
    ]})
    .to_string()
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn token(role: &str, user: &str, exp_in: i64) -> String {
    let now = now();
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": KID});
    let claims = json!({
        "sub": user, "role": role, "iss": "meridian-users", "aud": "meridian",
        "iat": now, "nbf": now, "exp": now + exp_in,
    });
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", encode(&header), encode(&claims));
    let signature = URL_SAFE_NO_PAD.encode(key().sign(input.as_bytes()).to_bytes());
    format!("{input}.{signature}")
}

#[tokio::test]
async fn tokens_are_verified_and_routes_judged_at_the_edge() {
    let core = EchoCore::start_with_jwks("core", Some(jwks())).await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;
    let buyer = token("buyer", "0190a0b0-0000-7000-8000-00000000000b", 600);
    let seller = token("seller", "0190a0b0-0000-7000-8000-00000000000c", 600);

    // A valid token: the identity goes upstream; a client-sent one never does.
    let response = edge
        .client
        .get(edge.url("/orders"))
        .bearer_auth(&buyer)
        .header("x-meridian-role", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Echo = response.json().await.unwrap();
    assert_eq!(
        seen.header("x-meridian-user-id"),
        ["0190a0b0-0000-7000-8000-00000000000b"]
    );
    assert_eq!(seen.header("x-meridian-role"), ["buyer"]);

    // What the edge refuses never reaches the core.
    let hits = core.hits();
    let expired = token("buyer", "0190a0b0-0000-7000-8000-00000000000b", -60);
    let tampered = format!("{}x", &buyer[..buyer.len() - 1]);
    let refusals = [
        ("GET", "/orders", None, 401),
        ("GET", "/products", Some(expired.as_str()), 401),
        ("GET", "/products", Some(tampered.as_str()), 401),
        ("GET", "/products", Some("not-a-jwt"), 401),
        ("POST", "/products", Some(buyer.as_str()), 403),
        ("POST", "/categories", Some(seller.as_str()), 403),
        ("PUT", "/users/0190/role", Some(seller.as_str()), 403),
    ];
    for (method, path, bearer, status) in refusals {
        let mut request = edge.client.request(method.parse().unwrap(), edge.url(path));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        assert!(response.headers().contains_key("x-request-id"));
        if status == 401 {
            assert_eq!(
                response.headers()["www-authenticate"],
                r#"Bearer realm="meridian""#
            );
        }
    }
    assert_eq!(core.hits(), hits, "a refused request reached the core");

    // Guests browse; sellers sell.
    let guest = edge.client.get(edge.url("/products")).send().await.unwrap();
    assert_eq!(guest.status(), 200);
    let listing = edge
        .client
        .post(edge.url("/products"))
        .bearer_auth(&seller)
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
}
