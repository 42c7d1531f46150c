//! Password hashing: Argon2id (m = 19456 KiB, t = 2, p = 1, OWASP's first choice) on the
//! blocking pool, behind a semaphore so that a flood of logins queues instead of starving the
//! process; a caller that cannot get a slot in time gets a 503.

use std::{collections::HashSet, sync::LazyLock, time::Duration};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use meridian_platform::ApiError;
use tokio::sync::Semaphore;

use crate::domain::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// How long a request waits for a hashing slot before it is told to come back.
const SLOT_WAIT: Duration = Duration::from_secs(3);

static BREACHED: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("breached-passwords.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
});

/// One slot per core: Argon2 is CPU-bound, more slots would only queue inside the pool.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password: length and the breached list. The message is the 422's.
pub fn check_strength(password: &str, email: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err("must be at least 10 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err("must be at most 128 characters");
    }
    let lowered = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default();
    let one_repeated = password.chars().all(|c| password.starts_with(c));
    if BREACHED.contains(&lowered) || one_repeated || lowered == local_part {
        return Err("is too common; it appears in known data breaches");
    }
    Ok(())
}

pub struct Hasher {
    slots: Semaphore,
    /// A hash of a random password, verified for unknown e-mails so that they take as long as
    /// a wrong password.
    decoy: String,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Self {
        let decoy_password: [u8; 16] = rand::random();
        let salt = SaltString::generate(&mut OsRng);
        let decoy = argon2()
            .hash_password(&decoy_password, &salt)
            .expect("hashing a fixed-size password cannot fail")
            .to_string();
        Self {
            slots: Semaphore::new(concurrency.max(1)),
            decoy,
        }
    }

    async fn on_blocking_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(SLOT_WAIT, self.slots.acquire())
            .await
            .map_err(|_| {
                metrics::counter!("password_hash_slot_timeouts_total").increment(1);
                ApiError::Unavailable("too many sign-ins at once; try again shortly".into())
            })?
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.on_blocking_pool(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
        })
        .await?
        .map_err(ApiError::internal)
    }

    /// Verifies `password` against `stored`, or against the decoy when there is no account,
    /// so both failures cost the same.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.clone());
        let matches = self
            .on_blocking_pool(move || {
                PasswordHash::new(&stored)
                    .map(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_strength("short", "a@b.co").is_err());
        assert!(check_strength("Password123", "a@b.co").is_err());
        assert!(check_strength("aaaaaaaaaaaa", "a@b.co").is_err());
        assert!(check_strength("ana.silva.99", "ana.silva.99@b.co").is_err());
        assert!(check_strength(&"x1".repeat(65), "a@b.co").is_err());
        assert!(check_strength("correct horse battery", "a@b.co").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_match() {
        let hasher = Hasher::new(2);
        let hash = hasher
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse battery".into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("anything at all".into(), None)
                .await
                .expect("verify")
        );
    }
}
