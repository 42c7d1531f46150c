//! The dev profile's admin login: `MERIDIAN_ADMIN_EMAIL` / `MERIDIAN_ADMIN_PASSWORD`, else
//! `admin@meridian.local` and a password generated once and kept in `.meridian/dev/admin-password`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::layout::{Layout, create_dir};

pub const DEFAULT_EMAIL: &str = "admin@meridian.local";
const PASSWORD_LENGTH: usize = 24;

pub struct AdminLogin {
    pub email: String,
    pub password: String,
    /// Where the password is kept, when xtask generated it.
    pub stored_in: Option<PathBuf>,
}

pub fn resolve(layout: &Layout) -> Result<AdminLogin> {
    let email = non_empty_env("MERIDIAN_ADMIN_EMAIL").unwrap_or_else(|| DEFAULT_EMAIL.to_owned());
    if let Some(password) = non_empty_env("MERIDIAN_ADMIN_PASSWORD") {
        return Ok(AdminLogin {
            email,
            password,
            stored_in: None,
        });
    }
    let file = layout.dev().join("admin-password");
    let stored = std::fs::read_to_string(&file)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    let password = if stored.is_empty() {
        let password = random_token(PASSWORD_LENGTH)?;
        create_dir(&layout.dev())?;
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        out.write_all(format!("{password}\n").as_bytes())?;
        password
    } else {
        stored
    };
    // Also when the file existed with looser permissions.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", file.display()))?;
    Ok(AdminLogin {
        email,
        password,
        stored_in: Some(file),
    })
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// `length` characters from [A-Za-z0-9], uniformly, from `/dev/urandom`.
pub fn random_token(length: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // 248 = 4 * 62: bytes at or above it are rejected so that every character is equally likely.
    const LIMIT: u8 = 248;
    let mut urandom = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    let mut token = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while token.len() < length {
        urandom.read_exact(&mut buffer)?;
        token.extend(
            buffer
                .iter()
                .filter(|byte| **byte < LIMIT)
                .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
                .take(length - token.len()),
        );
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::random_token;

    #[test]
    fn tokens_are_alphanumeric_and_differ() {
        let first = random_token(24).unwrap();
        let second = random_token(24).unwrap();
        assert_eq!(first.len(), 24);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(first, second);
    }
}
