//! The issuer's Ed25519 signing keys: creation, rotation, signing and the JWKS.
//!
//! Invariant: the JWKS publishes every key that signs now, that will sign soon, or that signed
//! a token which may not have expired yet; so a rotation never invalidates a live token and a
//! verifier that refreshes on an unknown `kid` always finds the key.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{EncodingKey, Header};
use meridian_contracts::users::{Jwk, Jwks};
use meridian_platform::{
    ApiError,
    auth::{ACCESS_TOKEN_TTL_S, AUDIENCE, Claims, ISSUER, Role},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often each replica re-reads the keys, to pick up rotations made by another replica.
const RELOAD_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, sqlx::FromRow)]
struct StoredKey {
    kid: String,
    private_der: Vec<u8>,
    public_raw: Vec<u8>,
    signing_from: DateTime<Utc>,
}

/// The keys, as loaded from Postgres.
#[derive(Clone)]
pub struct KeyRing {
    pool: PgPool,
    keys: Arc<RwLock<Vec<StoredKey>>>,
}

impl KeyRing {
    /// Loads the keys, creating the first one if there is none (once, whatever the number of
    /// replicas starting together).
    pub async fn load_or_create(pool: PgPool) -> anyhow::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('users.signing_keys'))")
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if count == 0 {
            insert_new_key(&mut tx, Utc::now()).await?;
        }
        tx.commit().await?;
        let ring = Self {
            pool,
            keys: Arc::new(RwLock::new(Vec::new())),
        };
        ring.reload().await?;
        Ok(ring)
    }

    /// Re-reads the published keys.
    pub async fn reload(&self) -> Result<(), sqlx::Error> {
        let keys: Vec<StoredKey> = sqlx::query_as(
            "SELECT kid, private_der, public_raw, signing_from FROM signing_keys \
             WHERE retired_at IS NULL OR retired_at > now() ORDER BY signing_from",
        )
        .fetch_all(&self.pool)
        .await?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    pub fn spawn_reload(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let ring = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RELOAD_EVERY) => {}
                }
                if let Err(error) = ring.reload().await {
                    tracing::warn!(%error, "reloading the signing keys failed");
                }
            }
        })
    }

    /// Adds a key that starts signing after `delay`, and retires the keys it replaces once
    /// every token they signed has expired. Returns the new key's id.
    pub async fn rotate(&self, delay: Duration) -> Result<String, ApiError> {
        let delay = chrono::Duration::from_std(delay).map_err(ApiError::internal)?;
        let signing_from = Utc::now() + delay;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('users.signing_keys'))")
            .execute(&mut *tx)
            .await?;
        let retire_at = signing_from + chrono::Duration::seconds(ACCESS_TOKEN_TTL_S + 60);
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 \
             WHERE retired_at IS NULL AND signing_from <= $2",
        )
        .bind(retire_at)
        .bind(signing_from)
        .execute(&mut *tx)
        .await?;
        let kid = insert_new_key(&mut tx, signing_from)
            .await
            .map_err(ApiError::internal)?;
        tx.commit().await?;
        self.reload().await?;
        Ok(kid)
    }

    /// The key that signs now: the newest whose time has come.
    fn current(&self) -> Option<StoredKey> {
        let now = Utc::now();
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.iter().rev().find(|k| k.signing_from <= now).cloned()
    }

    /// Signs an access token for `user_id`; returns it with its lifetime in seconds.
    pub fn sign_access_token(&self, user_id: Uuid, role: Role) -> Result<(String, i64), ApiError> {
        let key = self
            .current()
            .ok_or_else(|| ApiError::internal("no signing key is active"))?;
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_TTL_S,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_der(&key.private_der),
        )
        .map_err(ApiError::internal)?;
        Ok((token, ACCESS_TOKEN_TTL_S))
    }

    pub fn jwks(&self) -> Jwks {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        Jwks {
            keys: keys
                .iter()
                .map(|key| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: URL_SAFE_NO_PAD.encode(&key.public_raw),
                    kid: key.kid.clone(),
                    alg: "EdDSA".into(),
                    key_use: "sig".into(),
                })
                .collect(),
        }
    }
}

async fn insert_new_key(
    tx: &mut sqlx::PgConnection,
    signing_from: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let signing = SigningKey::from_bytes(&secret);
    let private_der = signing
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("encoding a signing key: {e}"))?;
    let public_raw = signing.verifying_key().to_bytes();
    let kid = format!("k{}", Uuid::now_v7().simple());
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_der, public_raw, signing_from) VALUES ($1, $2, $3, $4)",
    )
    .bind(&kid)
    .bind(private_der.as_bytes())
    .bind(public_raw.as_slice())
    .bind(signing_from)
    .execute(&mut *tx)
    .await?;
    Ok(kid)
}
