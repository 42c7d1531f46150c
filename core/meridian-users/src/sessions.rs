//! Refresh tokens: opaque, stored hashed, spent once.
//!
//! Invariant: spending a token is one conditional `UPDATE`, so two concurrent refreshes with
//! one token cannot both succeed; presenting a spent or revoked token revokes its family, which
//! logs out whoever stole it (and the victim, who signs in again).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

pub const REFRESH_TOKEN_TTL_DAYS: i64 = 30;

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Issues a refresh token in `family_id` (a new family for a new login).
pub async fn issue(
    conn: &mut PgConnection,
    user_id: Uuid,
    family_id: Uuid,
) -> Result<String, sqlx::Error> {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let token = URL_SAFE_NO_PAD.encode(secret);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(&token))
    .bind(family_id)
    .bind(user_id)
    .bind(Utc::now() + Duration::days(REFRESH_TOKEN_TTL_DAYS))
    .execute(conn)
    .await?;
    Ok(token)
}

pub enum Spent {
    /// The token was live and is now spent: issue the next one in `family_id`.
    Ok { user_id: Uuid, family_id: Uuid },
    /// The token had been spent or revoked before: its family is now revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// Spends `token`; detects reuse.
pub async fn spend(conn: &mut PgConnection, token: &str) -> Result<Spent, sqlx::Error> {
    let token_hash = hash(token);
    let live: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE refresh_tokens SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() \
         RETURNING user_id, family_id",
    )
    .bind(&token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((user_id, family_id)) = live {
        return Ok(Spent::Ok { user_id, family_id });
    }
    let known: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT family_id, (used_at IS NOT NULL OR revoked_at IS NOT NULL) \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    match known {
        Some((family_id, true)) => {
            revoke_family(conn, family_id).await?;
            Ok(Spent::Reused)
        }
        _ => Ok(Spent::Invalid),
    }
}

pub async fn revoke_family(conn: &mut PgConnection, family_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes the family of `token`, whatever its state; unknown tokens are ignored.
pub async fn logout(conn: &mut PgConnection, token: &str) -> Result<(), sqlx::Error> {
    let family: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(family_id) = family {
        revoke_family(conn, family_id).await?;
    }
    Ok(())
}
