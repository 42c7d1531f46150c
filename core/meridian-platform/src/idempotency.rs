//! `Idempotency-Key` for writes that move money or stock: the same key with the same body
//! replays the first response (status and body, byte for byte) for at least
//! [`RETENTION_HOURS`]; another body is a 422; a key still being processed is a 409; any number
//! of concurrent requests with one key have one effect.
//!
//! Invariant: a handler claims the key ([`claim`]) before doing anything, and records the
//! response ([`complete`]) inside the transaction that makes the effect; so a crash leaves the
//! effect and the record together or neither. A claim whose holder vanished without completing
//! is taken over after [`LEASE_S`] (nothing was committed under it).

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{ApiError, ApiResult};

pub const HEADER: &str = "idempotency-key";
pub const MAX_KEY_LEN: usize = 255;
/// Completed keys are kept at least this long.
pub const RETENTION_HOURS: i64 = 48;
/// An in-flight claim older than this belongs to a request that died.
pub const LEASE_S: i64 = 60;

/// Creates the key table in `schema`.
pub async fn migrate(pool: &PgPool, schema: &str) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations/idempotency");
    migrator.create_schema(schema.to_owned());
    migrator.dangerous_set_table_name(format!("{schema}._idempotency_migrations"));
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrating the idempotency keys of {schema}: {e}"))
}

/// The request's key: required, 1 to 255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> ApiResult<String> {
    let value = headers.get(HEADER).ok_or_else(|| {
        ApiError::BadRequest("this request needs an Idempotency-Key header".into())
    })?;
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "the Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(key.to_owned())
}

/// What every keyed endpoint reads first: the key, the body's fingerprint, and the body as `T`
/// (a body of the wrong shape is a 422).
pub fn keyed_request<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: serde_json::Value,
) -> ApiResult<(String, Vec<u8>, T)> {
    let key = key(headers)?;
    let fingerprint = fingerprint(&body);
    let request =
        serde_json::from_value(body).map_err(|error| ApiError::field("body", error.to_string()))?;
    Ok((key, fingerprint, request))
}

/// The 409 for a key whose first request (a `what`: "request", "charge", ...) is still running.
pub fn in_flight(what: &str) -> ApiError {
    ApiError::Conflict(format!(
        "a {what} with this Idempotency-Key is still being processed"
    ))
}

/// The 422 for a key used again with another body.
pub fn key_reused() -> ApiError {
    ApiError::field(
        "idempotency_key",
        "this key was used with a different request body",
    )
}

/// The fingerprint of a JSON body, insensitive to key order and white space.
pub fn fingerprint(body: &serde_json::Value) -> Vec<u8> {
    Sha256::digest(body.to_string().as_bytes()).to_vec()
}

/// What a claim found.
pub enum Claim {
    /// The key is ours: do the work, then [`complete`] it. `first` when nobody held the key
    /// before (so nothing was done under it yet); otherwise this takes over the claim of a
    /// request that vanished.
    Proceed { first: bool },
    /// The key was completed before: answer this.
    Replay(Response),
}

/// What a claim found, before it is turned into HTTP (internal callers store other payloads).
pub enum Recorded {
    /// As [`Claim::Proceed`].
    Proceed { first: bool },
    /// The key was completed with this status and body.
    Completed { status: i16, body: Vec<u8> },
}

/// Claims `key` in `scope` for a request with `fingerprint`.
pub async fn claim(pool: &PgPool, scope: &str, key: &str, fingerprint: &[u8]) -> ApiResult<Claim> {
    Ok(match claim_recorded(pool, scope, key, fingerprint).await? {
        Recorded::Proceed { first } => Claim::Proceed { first },
        Recorded::Completed { status, body } => Claim::Replay(replay(status, body)),
    })
}

/// [`claim`], answering the recorded status and body as they are.
pub async fn claim_recorded(
    pool: &PgPool,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> ApiResult<Recorded> {
    // `xmax = 0` tells an inserted row from a taken-over one.
    let claimed: Option<bool> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) \
         ON CONFLICT (scope, key) DO UPDATE SET claimed_at = now() \
         WHERE idempotency_keys.status IS NULL \
           AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
           AND idempotency_keys.claimed_at < now() - make_interval(secs => $4) \
         RETURNING xmax = 0",
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(LEASE_S as f64)
    .fetch_optional(pool)
    .await?;
    if let Some(first) = claimed {
        return Ok(Recorded::Proceed { first });
    }
    let mut conn = pool.acquire().await?;
    recorded_before(&mut conn, scope, key, fingerprint).await
}

/// Records `status` and `body` under a key that nobody claimed, in the transaction of the
/// work's effect, for internal endpoints whose effect and answer commit together (nothing is
/// ever in flight in between). `None` when this record stands; otherwise what was recorded
/// before (or the 409/422 the key deserves), and the caller must roll its transaction back,
/// effect included. Two concurrent first requests serialize on the key: the second waits for
/// the first to commit, then finds its record.
pub async fn record_in(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    status: StatusCode,
    body: &[u8],
) -> ApiResult<Option<Recorded>> {
    let recorded = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, completed_at) \
         VALUES ($1, $2, $3, $4, $5, now()) \
         ON CONFLICT (scope, key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body, \
             claimed_at = now(), completed_at = now() \
         WHERE idempotency_keys.status IS NULL \
           AND idempotency_keys.fingerprint = EXCLUDED.fingerprint \
           AND idempotency_keys.claimed_at < now() - make_interval(secs => $6)",
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(status.as_u16() as i16)
    .bind(body)
    .bind(LEASE_S as f64)
    .execute(&mut *conn)
    .await?;
    if recorded.rows_affected() == 1 {
        return Ok(None);
    }
    recorded_before(conn, scope, key, fingerprint)
        .await
        .map(Some)
}

/// What is recorded under `key` (a request with another fingerprint is a 422; a key claimed
/// but not completed a 409).
pub async fn recorded(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> ApiResult<Option<Recorded>> {
    recorded_before(conn, scope, key, fingerprint)
        .await
        .map(Some)
}

/// What is recorded under a key that another request claimed.
async fn recorded_before(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> ApiResult<Recorded> {
    let (stored, status, body): (Vec<u8>, Option<i16>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(conn)
    .await?;
    if stored != fingerprint {
        return Err(key_reused());
    }
    match (status, body) {
        (Some(status), Some(body)) => Ok(Recorded::Completed { status, body }),
        _ => Err(in_flight("request")),
    }
}

fn replay(status: i16, body: Vec<u8>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = respond(status, body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// A recorded answer, with the content type its status implies: JSON for a success,
/// problem+json otherwise. The first answer and its replays are built alike.
pub fn respond(status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = if status.is_success() {
        "application/json"
    } else {
        crate::error::PROBLEM_JSON
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The status and body of a response (or an `ApiError`), to record under a key.
pub async fn recordable(response: impl IntoResponse) -> ApiResult<(StatusCode, Vec<u8>)> {
    let response = response.into_response();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map_err(ApiError::internal)?;
    Ok((status, bytes.to_vec()))
}

/// Records the response of a claimed key, in the transaction of the work's effect.
pub async fn complete(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, body = $4, completed_at = now() \
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives a claim up after a failure that the client may retry (a dependency was down).
pub async fn abandon(pool: &PgPool, scope: &str, key: &str) {
    let released = sqlx::query(
        // The row stays, its claim expired as of now: a retry with the same body takes it
        // over (and knows that work may have been done under the key), another body is a 422.
        "UPDATE idempotency_keys SET claimed_at = now() - make_interval(secs => $3) \
         WHERE scope = $1 AND key = $2 AND status IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(LEASE_S as f64)
    .execute(pool)
    .await;
    if let Err(error) = released {
        tracing::warn!(%error, "could not release an idempotency claim; it expires with its lease");
    }
}

/// Deletes completed keys past their retention, and claims given up as long ago.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE completed_at < now() - make_interval(hours => $1) \
         OR (status IS NULL AND claimed_at < now() - make_interval(hours => $1))",
    )
    .bind(RETENTION_HOURS as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
