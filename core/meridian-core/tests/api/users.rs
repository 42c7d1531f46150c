use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, assert_problem};

#[tokio::test]
async fn register_login_and_profile() {
    let app = TestApp::spawn().await;
    // `role` and `id` in the body are ignored: a new account is a buyer.
    let (status, user) = app
        .call(
            Method::POST,
            "/users/register",
            None,
            Some(json!({
                "email": "Ana.Silva@Example.com", "password": PASSWORD, "name": "Ana",
                "role": "admin", "id": "00000000-0000-0000-0000-000000000000"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["role"], "buyer");
    assert_eq!(user["email"], "ana.silva@example.com");
    assert_ne!(user["id"], "00000000-0000-0000-0000-000000000000");
    assert!(user.get("password_hash").is_none());

    let (status, pair) = app.login("ana.silva@EXAMPLE.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["user"]["id"], user["id"]);
    let token = pair["access_token"].as_str().expect("token");
    let id = user["id"].as_str().expect("id");

    let (status, profile) = app
        .call(Method::GET, &format!("/users/{id}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["name"], "Ana");

    let (status, renamed) = app
        .call(
            Method::PUT,
            &format!("/users/{id}"),
            Some(token),
            Some(json!({"name": "Ana S.", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Ana S.");
    assert_eq!(renamed["role"], "buyer");

    let (status, body) = app
        .call(Method::GET, &format!("/users/{id}"), None, None)
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn duplicate_emails_and_weak_passwords_are_refused() {
    let app = TestApp::spawn().await;
    app.register("dup@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/users/register",
            None,
            Some(json!({"email": "DUP@example.com", "password": PASSWORD, "name": "B"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    for (password, why) in [
        ("short1", "too short"),
        ("Password123", "breached"),
        ("qwertyuiop", "breached"),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/users/register",
                None,
                Some(json!({"email": "weak@example.com", "password": password, "name": "W"})),
            )
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["errors"]["password"].is_string(), "{why}: {body}");
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/users/register",
            None,
            Some(json!({"email": "not-an-email", "password": PASSWORD, "name": ""})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["errors"]["email"].is_string() && body["errors"]["name"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.register("known@example.com").await;
    let (s1, wrong_password) = app.login("known@example.com", "not the password!").await;
    let (s2, unknown_email) = app.login("nobody@example.com", "not the password!").await;
    assert_problem(s1, &wrong_password, StatusCode::UNAUTHORIZED);
    assert_eq!((s1, &wrong_password), (s2, &unknown_email));
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_while() {
    let app = TestApp::spawn().await;
    app.register("target@example.com").await;
    for _ in 0..10 {
        let (status, _) = app.login("target@example.com", "guess guess guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = app
        .request(Method::POST, "/users/login", None)
        .json(&json!({"email": "target@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry_after));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Buyer).await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/users/token/refresh",
                None,
                Some(json!({"refresh_token": token})),
            )
            .await
        }
    };
    let (status, second) = refresh(user.refresh_token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(second_refresh, user.refresh_token);

    // The first token was spent: presenting it again is reuse, and revokes the family...
    let (status, body) = refresh(user.refresh_token.clone()).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    // ...so the legitimately rotated token no longer works either.
    let (status, body) = refresh(second_refresh).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    // A fresh login starts a new family.
    let (status, _) = app.login(&user.email, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Buyer).await;
    let (status, _) = app
        .call(
            Method::POST,
            "/users/logout",
            Some(&user.access_token),
            Some(json!({"refresh_token": user.refresh_token})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .call(
            Method::POST,
            "/users/token/refresh",
            None,
            Some(json!({"refresh_token": user.refresh_token})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_the_user_or_an_admin_sees_a_profile_and_only_admins_change_roles() {
    let app = TestApp::spawn().await;
    let alice = app.user(Role::Buyer).await;
    let bob = app.user(Role::Buyer).await;
    let admin = app.user(Role::Admin).await;

    let (status, body) = app
        .call(
            Method::GET,
            &format!("/users/{}", alice.id),
            Some(&bob.access_token),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/users/{}/addresses", alice.id),
            Some(&bob.access_token),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/users/{}", alice.id),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let role_path = format!("/users/{}/role", alice.id);
    let (status, body) = app
        .call(
            Method::PUT,
            &role_path,
            Some(&alice.access_token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::PUT,
            &role_path,
            Some(&admin.access_token),
            Some(json!({"role": "emperor"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .call(
            Method::PUT,
            &role_path,
            Some(&admin.access_token),
            Some(json!({"role": "seller"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "seller");

    // The new role is in the next access token: a refreshed seller may create products.
    let (_, pair) = app
        .call(
            Method::POST,
            "/users/token/refresh",
            None,
            Some(json!({"refresh_token": alice.refresh_token})),
        )
        .await;
    assert_eq!(pair["user"]["role"], "seller");
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            pair["access_token"].as_str(),
            Some(crate::helpers::product_body("ALICE-1")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn addresses_are_validated_and_private() {
    let app = TestApp::spawn().await;
    let user = app.user(Role::Buyer).await;
    let path = format!("/users/{}/addresses", user.id);
    let address = json!({
        "name": "Home", "line1": "Rua Augusta 1", "city": "Lisboa",
        "postal_code": "1100-048", "country": "pt", "phone": "+351 21 000 0000"
    });
    let (status, created) = app
        .call(
            Method::POST,
            &path,
            Some(&user.access_token),
            Some(address.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["country"], "PT");

    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&user.access_token),
            Some(json!({"name": "X", "line1": "", "city": "C", "postal_code": "1", "country": "Portugal"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["country"].is_string() && body["errors"]["line1"].is_string());

    let (status, list) = app
        .call(Method::GET, &path, Some(&user.access_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn key_rotation_publishes_both_keys_and_keeps_old_tokens_valid() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let (_, jwks) = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(
        keys[0].get("d").is_none(),
        "the private key must never be published"
    );

    let (status, rotated) = app
        .call(
            Method::POST,
            "/users/signing-keys/rotate",
            Some(&admin.access_token),
            Some(json!({"delay_seconds": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let (_, jwks) = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    let kids: Vec<_> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&rotated["kid"]));

    // A token signed by the old key still verifies...
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/users/{}", admin.id),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // ...and a new one is signed by the new key, which every verifier finds.
    let (_, pair) = app.login(&admin.email, PASSWORD).await;
    let token = pair["access_token"].as_str().expect("token");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(
        Some(rotated["kid"].as_str().expect("kid")),
        header.kid.as_deref()
    );
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/users/{}", admin.id),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let buyer = app.user(Role::Buyer).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/users/signing-keys/rotate",
            Some(&buyer.access_token),
            Some(json!({})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let app = TestApp::spawn().await;
    let user = app.user(Role::Buyer).await;
    let path = format!("/users/{}", user.id);
    let parts: Vec<&str> = user.access_token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    claims["role"] = json!("admin");
    let elevated = URL_SAFE_NO_PAD.encode(claims.to_string());
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let forged = [
        format!("{}.{}.{}", parts[0], elevated, parts[2]),
        format!("{none_header}.{elevated}."),
        format!("{}.{}.", parts[0], parts[1]),
        "not-a-token".to_owned(),
    ];
    for token in forged {
        let (status, body) = app.call(Method::GET, &path, Some(&token), None).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    }
}
