//! Failed sign-ins per account, counted in Redis: after [`MAX_FAILURES`] within
//! [`WINDOW_S`], that account's sign-ins get a 429 until the window ends, whoever sends them.
//!
//! Redis being down does not lock everyone out: the throttle then lets requests through
//! (Argon2's cost and the edge's rate limits still bound guessing) and logs it.

use fred::{
    clients::Pool,
    interfaces::{KeysInterface, LuaInterface},
};
use meridian_platform::ApiError;
use sha2::{Digest, Sha256};

pub const MAX_FAILURES: i64 = 10;
pub const WINDOW_S: i64 = 15 * 60;

#[derive(Clone)]
pub struct LoginThrottle {
    redis: Pool,
    prefix: String,
}

impl LoginThrottle {
    pub fn new(redis: Pool, prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{prefix}:users:login-failures:"),
        }
    }

    fn key(&self, email: &str) -> String {
        // Hashed so that the key space holds no e-mail addresses.
        let digest = Sha256::digest(email.as_bytes());
        format!(
            "{}{}",
            self.prefix,
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &digest[..16],
            )
        )
    }

    /// Refuses with a 429 when `email` has failed too often.
    pub async fn check(&self, email: &str) -> Result<(), ApiError> {
        let key = self.key(email);
        let failures: Result<Option<i64>, _> = self.redis.get(&key).await;
        match failures {
            Ok(Some(count)) if count >= MAX_FAILURES => {
                let ttl: i64 = self.redis.ttl(&key).await.unwrap_or(WINDOW_S);
                Err(ApiError::TooManyRequests {
                    detail: "too many failed sign-ins for this account; try again later".into(),
                    retry_after_s: ttl.clamp(1, WINDOW_S) as u64,
                })
            }
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "login throttle unavailable; letting the attempt through");
                Ok(())
            }
        }
    }

    pub async fn record_failure(&self, email: &str) {
        // One script, so the counter can never exist without its expiry.
        const COUNT: &str = "local n = redis.call('INCR', KEYS[1]) \
            if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n";
        let counted: Result<i64, _> = self.redis.eval(COUNT, self.key(email), WINDOW_S).await;
        if let Err(error) = counted {
            tracing::warn!(%error, "could not count a failed sign-in");
        }
    }

    pub async fn clear(&self, email: &str) {
        let _: Result<i64, _> = self.redis.del(self.key(email)).await;
    }
}
