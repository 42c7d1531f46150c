use meridian_cart::{
    domain::{GuestToken, Owner},
    store::CartStore,
};
use meridian_contracts::cart::{ClearCart, ClearCartRequest, GetCart, GetCartRequest};
use meridian_jetstream::Naming;
use meridian_platform::{auth::Role, rpc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, assert_problem, isolated_settings, product_body};

/// A well-formed token that no cart was ever made for.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The answer to a cart request: status, the `X-Cart-Token` it carried, and the JSON body.
struct Answer {
    status: StatusCode,
    token: Option<String>,
    body: Value,
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    cart_token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = app.request(method, path, bearer);
    if let Some(token) = cart_token {
        request = request.header("x-cart-token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let token = response
        .headers()
        .get("x-cart-token")
        .map(|value| value.to_str().expect("ascii").to_owned());
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Answer {
        status,
        token,
        body,
    }
}

/// A product of `seller`'s, priced `amount` in `currency`, with `status`; returns its id.
async fn product(
    app: &TestApp,
    seller: &TestUser,
    amount: i64,
    currency: &str,
    status: &str,
) -> String {
    let mut body = product_body(&format!("CART-{}", Uuid::new_v4().simple()));
    body["price"] = json!({"amount": amount, "currency": currency});
    body["status"] = json!(status);
    let (code, created) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(body),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

fn add(product_id: &str, quantity: impl Into<Value>) -> Option<Value> {
    Some(json!({"product_id": product_id, "quantity": quantity.into()}))
}

/// `(product_id, quantity)` of each line, in cart order.
fn lines(cart: &Value) -> Vec<(String, i64)> {
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["product_id"].as_str().expect("product_id").to_owned(),
                item["quantity"].as_i64().expect("quantity"),
            )
        })
        .collect()
}

fn line_id(cart: &Value, product_id: &str) -> String {
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["product_id"] == product_id)
        .and_then(|item| item["id"].as_str())
        .expect("line")
        .to_owned()
}

async fn store(app: &TestApp) -> CartStore {
    let connections = meridian_core::app::connect(&app.settings)
        .await
        .expect("connect");
    CartStore::new(connections.redis, &app.settings.redis_prefix)
}

#[tokio::test]
async fn guests_get_a_token_on_their_first_add_and_only_ours_are_honoured() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let lamp = product(&app, &seller, 4000, "USD", "active").await;

    let empty = send(&app, Method::GET, "/cart", None, None, None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(
        empty.body,
        json!({"id": null, "items": [], "subtotal": null, "item_count": 0})
    );
    assert_eq!(empty.token, None);

    let first = send(&app, Method::POST, "/cart/items", None, None, add(&mug, 2)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let token = first.token.expect("a guest gets a cart token");
    assert!(GuestToken::parse(&token).is_some(), "{token}");
    let item = &first.body["items"][0];
    assert_eq!(item["product_id"], mug.as_str());
    assert_eq!(item["quantity"], 2);
    assert!(
        item["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Product CART-"))
    );
    assert_eq!(
        item["unit_price"],
        json!({"amount": 1250, "currency": "USD"})
    );
    assert_eq!(
        item["line_total"],
        json!({"amount": 2500, "currency": "USD"})
    );
    assert_eq!(
        first.body["subtotal"],
        json!({"amount": 2500, "currency": "USD"})
    );
    assert_eq!(first.body["item_count"], 2);

    // The token names the cart on reads and writes; every write renews its 30 days.
    let read = send(&app, Method::GET, "/cart", None, Some(&token), None).await;
    assert_eq!(read.body, first.body);
    let second = send(
        &app,
        Method::POST,
        "/cart/items",
        None,
        Some(&token),
        add(&lamp, 1),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.token.as_deref(), Some(token.as_str()));
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(lines(&second.body), [(mug.clone(), 2), (lamp.clone(), 1)]);
    assert_eq!(second.body["subtotal"]["amount"], 6500);
    let ttl = store(&app)
        .await
        .ttl_s(&Owner::Guest(GuestToken::parse(&token).expect("token")))
        .await
        .expect("ttl");
    assert!(
        (30 * 24 * 3600 - 60..=30 * 24 * 3600).contains(&ttl),
        "{ttl}"
    );

    // A malformed or unknown token reads as an empty cart, whether or not the cart exists.
    for other in ["not-a-token", UNKNOWN_TOKEN, &token[..42]] {
        let read = send(&app, Method::GET, "/cart", None, Some(other), None).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body["items"], json!([]), "{other}");
        assert_eq!(read.token, None);
    }
    // A token we did not issue is never adopted: the write starts a cart under a new one.
    let fresh = send(
        &app,
        Method::POST,
        "/cart/items",
        None,
        Some(UNKNOWN_TOKEN),
        add(&mug, 1),
    )
    .await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    let fresh_token = fresh.token.expect("a new token");
    assert_ne!(fresh_token, UNKNOWN_TOKEN);
    assert_ne!(fresh_token, token);
    assert_eq!(lines(&fresh.body), [(mug.clone(), 1)]);
    let unknown = send(&app, Method::GET, "/cart", None, Some(UNKNOWN_TOKEN), None).await;
    assert_eq!(unknown.body["items"], json!([]));
    let original = send(&app, Method::GET, "/cart", None, Some(&token), None).await;
    assert_eq!(original.body, second.body);
}

#[tokio::test]
async fn a_signed_in_user_has_one_cart_and_adding_again_sums() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let other = app.user(Role::Buyer).await;
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let token = Some(buyer.access_token.as_str());

    let first = send(&app, Method::POST, "/cart/items", token, None, add(&mug, 2)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.token, None, "signed-in carts need no token");
    // The line keeps the price it was added at, and its id, when more units are added.
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/products/{mug}"),
            Some(&seller.access_token),
            Some({
                let mut body = product_body("CART-REPRICED");
                body["price"] = json!({"amount": 9999, "currency": "USD"});
                body
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = send(&app, Method::POST, "/cart/items", token, None, add(&mug, 3)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(lines(&again.body), [(mug.clone(), 5)]);
    assert_eq!(again.body["items"][0]["id"], first.body["items"][0]["id"]);
    assert_eq!(again.body["items"][0]["unit_price"]["amount"], 1250);
    assert_eq!(again.body["subtotal"]["amount"], 6250);
    assert_eq!(again.body["item_count"], 5);

    let read = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(read.body, again.body);
    // A guest token sent beside an access token is ignored.
    let guest = send(&app, Method::POST, "/cart/items", None, None, add(&mug, 1)).await;
    let read = send(
        &app,
        Method::GET,
        "/cart",
        token,
        guest.token.as_deref(),
        None,
    )
    .await;
    assert_eq!(read.body, again.body);
    // Another user's cart is another cart.
    let theirs = send(
        &app,
        Method::GET,
        "/cart",
        Some(&other.access_token),
        None,
        None,
    )
    .await;
    assert_eq!(theirs.body["items"], json!([]));
    assert_ne!(theirs.body["id"], again.body["id"]);
    // A bad access token is a 401, never a guest's cart.
    let bad = send(&app, Method::GET, "/cart", Some("nope"), None, None).await;
    assert_problem(bad.status, &bad.body, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_quantities_and_products_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let token = Some(buyer.access_token.as_str());
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let draft = product(&app, &seller, 100, "USD", "draft").await;
    let archived = product(&app, &seller, 100, "USD", "archived").await;
    let euro = product(&app, &seller, 100, "EUR", "active").await;
    let deleted = product(&app, &seller, 100, "USD", "active").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/products/{deleted}"),
            Some(&seller.access_token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");

    let added = send(
        &app,
        Method::POST,
        "/cart/items",
        token,
        None,
        add(&mug, 98),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let line = line_id(&added.body, &mug);

    let refused = vec![
        add(&mug, 0),
        add(&mug, -1),
        add(&mug, 100),
        add(&mug, 2), // 98 + 2 > 99
        add(&mug, 1.5),
        add(&mug, "1"),
        add(&mug, Value::Null),
        Some(json!({"product_id": mug})),
        Some(json!({"product_id": "not-a-uuid", "quantity": 1})),
        add(&Uuid::now_v7().to_string(), 1),
        add(&draft, 1),
        add(&archived, 1),
        add(&deleted, 1),
        add(&euro, 1),
    ];
    for body in refused {
        let answer = send(&app, Method::POST, "/cart/items", token, None, body.clone()).await;
        assert_problem(
            answer.status,
            &answer.body,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        let detail = answer.body.to_string();
        if body.as_ref().is_some_and(|b| b["product_id"] == draft) {
            assert!(
                detail.contains("unknown or unavailable product"),
                "{detail}"
            );
        }
    }
    // A guest is refused the same way, and gets no cart for it.
    let guest = send(
        &app,
        Method::POST,
        "/cart/items",
        None,
        None,
        add(&draft, 1),
    )
    .await;
    assert_problem(guest.status, &guest.body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(guest.token, None);

    for quantity in [json!(0), json!(100), json!(2.5), json!("3"), json!(-4)] {
        let answer = send(
            &app,
            Method::PUT,
            &format!("/cart/items/{line}"),
            token,
            None,
            Some(json!({"quantity": quantity})),
        )
        .await;
        assert_problem(
            answer.status,
            &answer.body,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let after = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(after.body, added.body);
}

#[tokio::test]
async fn a_cart_holds_at_most_50_products() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let token = Some(buyer.access_token.as_str());
    for _ in 0..50 {
        let id = product(&app, &seller, 100, "USD", "active").await;
        let answer = send(&app, Method::POST, "/cart/items", token, None, add(&id, 1)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let one_more = product(&app, &seller, 100, "USD", "active").await;
    let answer = send(
        &app,
        Method::POST,
        "/cart/items",
        token,
        None,
        add(&one_more, 1),
    )
    .await;
    assert_problem(
        answer.status,
        &answer.body,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let cart = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(cart.body["items"].as_array().map(Vec::len), Some(50));
    assert_eq!(cart.body["subtotal"]["amount"], 5000);
}

#[tokio::test]
async fn lines_are_updated_and_removed_and_carts_deleted() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let token = Some(buyer.access_token.as_str());
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let lamp = product(&app, &seller, 4000, "USD", "active").await;
    send(&app, Method::POST, "/cart/items", token, None, add(&mug, 1)).await;
    let both = send(
        &app,
        Method::POST,
        "/cart/items",
        token,
        None,
        add(&lamp, 1),
    )
    .await;
    let mug_line = line_id(&both.body, &mug);

    let updated = send(
        &app,
        Method::PUT,
        &format!("/cart/items/{mug_line}"),
        token,
        None,
        Some(json!({"quantity": 7})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(lines(&updated.body), [(mug.clone(), 7), (lamp.clone(), 1)]);
    assert_eq!(updated.body["subtotal"]["amount"], 7 * 1250 + 4000);

    // Lines of no cart, of another's cart, or with no UUID are not found.
    let other = app.user(Role::Buyer).await;
    for (path, bearer) in [
        (format!("/cart/items/{}", Uuid::now_v7()), token),
        (
            format!("/cart/items/{mug_line}"),
            Some(other.access_token.as_str()),
        ),
        ("/cart/items/not-a-uuid".to_owned(), token),
    ] {
        let body = Some(json!({"quantity": 1}));
        let answer = send(&app, Method::PUT, &path, bearer, None, body).await;
        assert_problem(answer.status, &answer.body, StatusCode::NOT_FOUND);
        let answer = send(&app, Method::DELETE, &path, bearer, None, None).await;
        assert_problem(answer.status, &answer.body, StatusCode::NOT_FOUND);
    }
    let answer = send(
        &app,
        Method::PUT,
        &format!("/cart/items/{mug_line}"),
        None,
        None,
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_problem(answer.status, &answer.body, StatusCode::NOT_FOUND);

    let removed = send(
        &app,
        Method::DELETE,
        &format!("/cart/items/{mug_line}"),
        token,
        None,
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(lines(&removed.body), [(lamp.clone(), 1)]);
    let again = send(
        &app,
        Method::DELETE,
        &format!("/cart/items/{mug_line}"),
        token,
        None,
        None,
    )
    .await;
    assert_problem(again.status, &again.body, StatusCode::NOT_FOUND);

    for _ in 0..2 {
        let cleared = send(&app, Method::DELETE, "/cart", token, None, None).await;
        assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    }
    let empty = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(empty.body["items"], json!([]));
    assert_eq!(empty.body["item_count"], 0);

    // A guest's cart goes the same way, and its token then names no cart.
    let guest = send(&app, Method::POST, "/cart/items", None, None, add(&mug, 1)).await;
    let guest_token = guest.token.expect("token");
    let cleared = send(
        &app,
        Method::DELETE,
        "/cart",
        None,
        Some(&guest_token),
        None,
    )
    .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let gone = send(&app, Method::GET, "/cart", None, Some(&guest_token), None).await;
    assert_eq!(gone.body["items"], json!([]));
}

#[tokio::test]
async fn a_guest_cart_merges_into_the_users_once() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let token = Some(buyer.access_token.as_str());
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let lamp = product(&app, &seller, 4000, "USD", "active").await;
    let rug = product(&app, &seller, 9000, "USD", "active").await;
    let pen = product(&app, &seller, 300, "USD", "active").await;

    let guest = send(&app, Method::POST, "/cart/items", None, None, add(&mug, 60)).await;
    let guest_token = guest.token.expect("token");
    for (id, quantity) in [(&lamp, 2), (&pen, 5)] {
        let answer = send(
            &app,
            Method::POST,
            "/cart/items",
            None,
            Some(&guest_token),
            add(id, quantity),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    for (id, quantity) in [(&mug, 50), (&rug, 1), (&pen, 1)] {
        send(
            &app,
            Method::POST,
            "/cart/items",
            token,
            None,
            add(id, quantity),
        )
        .await;
    }

    let merge = Some(json!({"cart_token": guest_token}));
    let merged = send(
        &app,
        Method::POST,
        "/cart/merge",
        token,
        None,
        merge.clone(),
    )
    .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    let mut got = lines(&merged.body);
    got.sort();
    let mut expected = vec![
        (mug.clone(), 99),
        (rug.clone(), 1),
        (pen.clone(), 6),
        (lamp.clone(), 2),
    ];
    expected.sort();
    assert_eq!(got, expected);
    let gone = send(&app, Method::GET, "/cart", None, Some(&guest_token), None).await;
    assert_eq!(gone.body["items"], json!([]));

    // Merging again changes nothing.
    let again = send(
        &app,
        Method::POST,
        "/cart/merge",
        token,
        None,
        merge.clone(),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body, merged.body);

    // Only a signed-in caller merges, and only a token.
    let anonymous = send(&app, Method::POST, "/cart/merge", None, None, merge).await;
    assert_problem(anonymous.status, &anonymous.body, StatusCode::UNAUTHORIZED);
    let malformed = send(
        &app,
        Method::POST,
        "/cart/merge",
        token,
        None,
        Some(json!({"cart_token": "nope"})),
    )
    .await;
    assert_problem(
        malformed.status,
        &malformed.body,
        StatusCode::UNPROCESSABLE_ENTITY,
    );

    // A guest cart in another currency is refused whole, and kept.
    let euro = product(&app, &seller, 100, "EUR", "active").await;
    let foreign = send(&app, Method::POST, "/cart/items", None, None, add(&euro, 1)).await;
    let foreign_token = foreign.token.expect("token");
    let refused = send(
        &app,
        Method::POST,
        "/cart/merge",
        token,
        None,
        Some(json!({"cart_token": foreign_token})),
    )
    .await;
    assert_problem(
        refused.status,
        &refused.body,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let kept = send(&app, Method::GET, "/cart", None, Some(&foreign_token), None).await;
    assert_eq!(lines(&kept.body), [(euro, 1)]);
    let mine = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(mine.body, merged.body);
}

#[tokio::test]
async fn concurrent_adds_lose_no_update() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let adds = (0..20).map(|_| {
        send(
            &app,
            Method::POST,
            "/cart/items",
            Some(&buyer.access_token),
            None,
            add(&mug, 1),
        )
    });
    for answer in futures::future::join_all(adds).await {
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let cart = send(
        &app,
        Method::GET,
        "/cart",
        Some(&buyer.access_token),
        None,
        None,
    )
    .await;
    assert_eq!(lines(&cart.body), [(mug, 20)]);
    assert_eq!(cart.body["subtotal"]["amount"], 20 * 1250);
}

#[tokio::test]
async fn checkout_reads_and_clears_carts_over_nats() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let token = Some(buyer.access_token.as_str());
    let mug = product(&app, &seller, 1250, "USD", "active").await;
    let lamp = product(&app, &seller, 4000, "USD", "active").await;
    send(&app, Method::POST, "/cart/items", token, None, add(&mug, 3)).await;
    let shown = send(
        &app,
        Method::POST,
        "/cart/items",
        token,
        None,
        add(&lamp, 1),
    )
    .await;

    let nats = async_nats::connect(&app.settings.nats_url)
        .await
        .expect("NATS");
    let naming = Naming::new(&app.settings.nats_prefix).expect("naming");
    let get = |user_id: String| {
        let (nats, naming) = (nats.clone(), naming.clone());
        async move {
            rpc::call::<GetCart>(
                &nats,
                &naming,
                &GetCartRequest { user_id },
                rpc::DEFAULT_TIMEOUT,
            )
            .await
            .expect("cart.get")
        }
    };
    let snapshot = get(buyer.id.to_string()).await;
    assert_eq!(snapshot.lines.len(), 2);
    for (line, item) in snapshot
        .lines
        .iter()
        .zip(shown.body["items"].as_array().expect("items"))
    {
        assert_eq!(line.product_id, item["product_id"].as_str().expect("id"));
        assert_eq!(line.name, item["name"].as_str().expect("name"));
        assert!(line.sku.starts_with("CART-"), "{}", line.sku);
        assert_eq!(
            i64::from(line.quantity),
            item["quantity"].as_i64().expect("q")
        );
        assert_eq!(line.unit_price_amount, item["unit_price"]["amount"]);
        assert_eq!(line.unit_price_currency, item["unit_price"]["currency"]);
    }
    assert!(get(Uuid::now_v7().to_string()).await.lines.is_empty());

    for _ in 0..2 {
        rpc::call::<ClearCart>(
            &nats,
            &naming,
            &ClearCartRequest {
                user_id: buyer.id.to_string(),
            },
            rpc::DEFAULT_TIMEOUT,
        )
        .await
        .expect("cart.clear");
    }
    let cleared = send(&app, Method::GET, "/cart", token, None, None).await;
    assert_eq!(cleared.body["items"], json!([]));
    assert!(get(buyer.id.to_string()).await.lines.is_empty());
    let malformed = rpc::call::<GetCart>(
        &nats,
        &naming,
        &GetCartRequest {
            user_id: "nobody".into(),
        },
        rpc::DEFAULT_TIMEOUT,
    )
    .await;
    assert!(matches!(malformed, Err(rpc::RpcError::Remote { .. })));
}

#[tokio::test]
async fn without_the_catalog_adds_are_unavailable() {
    let mut settings = isolated_settings().await;
    settings.services = vec!["users".into(), "cart".into()];
    let app = TestApp::spawn_with(settings).await;
    let answer = send(
        &app,
        Method::POST,
        "/cart/items",
        None,
        None,
        add(&Uuid::now_v7().to_string(), 1),
    )
    .await;
    assert_problem(answer.status, &answer.body, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.token, None);
}
