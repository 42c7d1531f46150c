//! `TestApp`: a core hosting every service, on port 0, isolated by a fresh database and unique
//! NATS and Redis prefixes.

use std::net::SocketAddr;

use meridian_platform::{auth::Role, settings::Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

/// The server URL of `DATABASE_URL` (or the default), and that URL with another database.
fn database_urls() -> (String, impl Fn(&str) -> String) {
    let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        "postgres://meridian:meridian@127.0.0.1:5432/meridian?sslmode=disable".into()
    });
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s.to_owned())
        .unwrap_or(base);
    (admin, move |db: &str| format!("{server}/{db}{query}"))
}

/// Creates an empty database and returns its name and URL.
pub async fn fresh_database() -> (String, String) {
    let (admin, with_db) = database_urls();
    let name = format!("meridian_test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("Postgres is reachable at DATABASE_URL (run through `cargo xtask test`)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let url = with_db(&name);
    (name, url)
}

/// Settings for an isolated core: fresh database, unique prefixes, ports chosen by the caller.
pub async fn isolated_settings() -> Settings {
    let (_, url) = fresh_database().await;
    let prefix = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    Settings::from_lookup(|key| match key {
        "DATABASE_URL" => Some(url.clone()),
        "MERIDIAN_NATS_PREFIX" | "MERIDIAN_REDIS_PREFIX" => Some(prefix.clone()),
        "MERIDIAN_DB_POOL_SIZE" => Some("5".into()),
        "MERIDIAN_DATA_DIR" => Some(
            std::env::temp_dir()
                .join("meridian-tests")
                .join(&prefix)
                .display()
                .to_string(),
        ),
        "MERIDIAN_HTTP_ADDR" | "MERIDIAN_OPS_ADDR" => Some("127.0.0.1:0".into()),
        other => std::env::var(other).ok(),
    })
    .expect("valid test settings")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub settings: Settings,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(isolated_settings().await).await
    }

    pub async fn spawn_with(settings: Settings) -> TestApp {
        // `MERIDIAN_TEST_LOG=1` shows the apps' logs (filtered by RUST_LOG) while debugging.
        if std::env::var_os("MERIDIAN_TEST_LOG").is_some() {
            meridian_platform::telemetry::init_tracing();
        }
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .expect("bind");
        let ops_listener = tokio::net::TcpListener::bind(settings.ops_addr)
            .await
            .expect("bind ops");
        let addr = listener.local_addr().expect("addr");
        let ops_addr = ops_listener.local_addr().expect("ops addr");
        let core = meridian_core::app::build(&settings)
            .await
            .expect("the core starts against Postgres, Redis and NATS");
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(core.serve(
            listener,
            ops_listener,
            async move { signal.cancelled().await },
        ));
        TestApp {
            addr,
            ops_addr,
            settings,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends `body` (if any) and returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("non-JSON body: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub async fn pool(&self, schema: &str) -> PgPool {
        meridian_platform::db::connect(&self.settings.database_url, schema, 2)
            .await
            .expect("pool")
    }

    pub async fn register(&self, email: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/users/register",
                None,
                Some(json!({"email": email, "password": PASSWORD, "name": "Test User"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/users/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// A buyer written straight into the users schema (see [`fast_user`]).
    pub async fn fast_buyer(&self, users: &PgPool) -> TestUser {
        fast_user(users, Role::Buyer).await
    }

    /// Registers a user, gives it `role` directly in the database, and signs it in.
    pub async fn user(&self, role: Role) -> TestUser {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        let registered = self.register(&email).await;
        let id: Uuid = registered["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        if role != Role::Buyer {
            let pool = self.pool("users").await;
            sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                .bind(id)
                .bind(role.as_str())
                .execute(&pool)
                .await
                .expect("set role");
        }
        let (status, pair) = self.login(&email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{pair}");
        TestUser {
            id,
            email,
            access_token: pair["access_token"].as_str().expect("token").to_owned(),
            refresh_token: pair["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }
}

/// Asserts the response is an RFC 9457 problem with `status`.
pub fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "problem without {field}: {body}");
    }
}

pub fn product_body(sku: &str) -> Value {
    json!({
        "sku": sku,
        "name": format!("Product {sku}"),
        "description": "A thing",
        "price": {"amount": 1999, "currency": "USD"},
        "attributes": {"color": "blue"},
        "images": ["https://images.example.com/1.jpg"]
    })
}

/// A user written straight into the users schema, with an access token signed by the issuer's
/// current key: for tests that need hundreds of users, where registering through Argon2 would
/// take minutes. The token is as real as a login's (same key, same claims).
pub async fn fast_user(users: &PgPool, role: Role) -> TestUser {
    let id = Uuid::now_v7();
    let email = format!("{}@example.com", id.simple());
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'Fast', 'x', $3)",
    )
    .bind(id)
    .bind(&email)
    .bind(role.as_str())
    .execute(users)
    .await
    .expect("insert user");
    let (kid, der): (String, Vec<u8>) = sqlx::query_as(
        "SELECT kid, private_der FROM signing_keys WHERE signing_from <= now() \
         ORDER BY signing_from DESC LIMIT 1",
    )
    .fetch_one(users)
    .await
    .expect("signing key");
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": id, "role": role.as_str(), "iss": meridian_platform::auth::ISSUER,
        "aud": meridian_platform::auth::AUDIENCE, "iat": now, "nbf": now, "exp": now + 900,
        "jti": Uuid::now_v7(),
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid);
    let access_token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .expect("sign");
    TestUser {
        id,
        email,
        access_token,
        refresh_token: String::new(),
    }
}

/// A `meridian-core serve` child process hosting every service, killed when dropped.
pub struct CoreProcess {
    child: std::process::Child,
    pub base: String,
}

impl CoreProcess {
    /// Starts the real binary against `settings` with extra environment, and waits until it
    /// is ready (or has exited, for processes meant to crash early).
    pub async fn start(settings: &Settings, env: &[(&str, &str)]) -> CoreProcess {
        // Free ports: bound for a moment and released before the child binds them.
        let (http, ops) = {
            let http = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            let ops = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            (
                http.local_addr().expect("addr"),
                ops.local_addr().expect("addr"),
            )
        };
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_meridian-core"));
        command
            .arg("serve")
            .env("DATABASE_URL", &settings.database_url)
            .env("NATS_URL", &settings.nats_url)
            .env("REDIS_URL", &settings.redis_url)
            .env("MERIDIAN_NATS_PREFIX", &settings.nats_prefix)
            .env("MERIDIAN_REDIS_PREFIX", &settings.redis_prefix)
            .env("MERIDIAN_DB_POOL_SIZE", "4")
            .env("MERIDIAN_DATA_DIR", &settings.data_dir)
            .env("MERIDIAN_HTTP_ADDR", http.to_string())
            .env("MERIDIAN_OPS_ADDR", ops.to_string())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn meridian-core");
        let process = CoreProcess {
            child,
            base: format!("http://{http}"),
        };
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("client");
        for _ in 0..300 {
            if let Ok(response) = client.get(format!("{}/readyz", process.base)).send().await
                && response.status().is_success()
            {
                return process;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("meridian-core did not become ready");
    }

    /// Waits for the process to exit by itself (a crash point); true if it did.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for CoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The naming and a JetStream context of the core `settings` describe.
pub async fn jetstream(
    settings: &Settings,
) -> (meridian_jetstream::Naming, async_nats::jetstream::Context) {
    let naming = meridian_jetstream::Naming::new(&settings.nats_prefix).expect("prefix");
    let client = async_nats::connect(&settings.nats_url)
        .await
        .expect("NATS is reachable (run through `cargo xtask test`)");
    (naming, async_nats::jetstream::new(client))
}

/// Waits until `stream` has published `count` messages (the outbox relays publish shortly
/// after each commit) and returns how many it has.
pub async fn wait_for_published(stream: &async_nats::jetstream::stream::Stream, count: u64) -> u64 {
    let mut published = 0;
    for _ in 0..200 {
        published = stream.get_info().await.expect("info").state.last_sequence;
        if published >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    published
}

/// Publishes message `sequence` of `stream` again as a new message (another `Nats-Msg-Id`, so
/// the stream keeps both): a duplicate delivery, as a publisher's retry would make one.
pub async fn republish(
    js: &async_nats::jetstream::Context,
    stream: &async_nats::jetstream::stream::Stream,
    sequence: u64,
) {
    let message = stream.get_raw_message(sequence).await.expect("message");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("again-{sequence}").as_str());
    js.publish_with_headers(message.subject.to_string(), headers, message.payload)
        .await
        .expect("publish")
        .await
        .expect("ack");
}

/// Waits (a minute at most) until every durable consumer named `prefix…` on `streams` has
/// nothing pending or unacknowledged, and at least `at_least` of them exist. Messages a killed
/// process held come back after their consumer's `ack_wait`.
pub async fn drained(
    js: &async_nats::jetstream::Context,
    naming: &meridian_jetstream::Naming,
    streams: &[meridian_jetstream::StreamKind],
    prefix: &str,
    at_least: usize,
) {
    use futures::StreamExt;
    for _ in 0..1200 {
        let mut busy = false;
        let mut seen = 0;
        for kind in streams {
            let stream = js
                .get_stream(naming.stream_name(*kind))
                .await
                .expect("stream");
            let mut consumers = stream.consumers();
            while let Some(info) = consumers.next().await {
                let info = info.expect("consumer info");
                if info.name.starts_with(prefix) {
                    seen += 1;
                    busy |= info.num_pending > 0 || info.num_ack_pending > 0;
                }
            }
        }
        if seen >= at_least && !busy {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the {prefix}* consumers did not drain");
}

/// GETs `url` (with `token` when given) until `done` holds for a 200's JSON body, for at most
/// `within`; returns the last body and when `done` first held.
pub async fn eventually(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    within: std::time::Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Option<std::time::Duration>) {
    let started = std::time::Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < within {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await
            && response.status() == StatusCode::OK
            && let Ok(body) = response.json::<Value>().await
        {
            if done(&body) {
                return (body, Some(started.elapsed()));
            }
            last = body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (last, None)
}

/// The `field` of every entry of a page's `items`.
pub fn item_ids(body: &Value, field: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i[field].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
