//! The dev profile's admin account.

use meridian_platform::auth::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{domain::Email, passwords, store};

/// Creates the admin account, or resets its password and role if it exists; returns its id.
pub async fn ensure_admin(pool: &PgPool, email: &str, password: &str) -> anyhow::Result<Uuid> {
    let email = Email::parse(email).map_err(|m| anyhow::anyhow!("admin e-mail {m}"))?;
    passwords::check_strength(password, email.as_str())
        .map_err(|m| anyhow::anyhow!("admin password {m}"))?;
    let hash = passwords::Hasher::new(1).hash(password.to_owned()).await?;
    let mut tx = pool.begin().await?;
    let id = match store::by_email(&mut tx, email.as_str()).await? {
        Some((user, _)) => {
            store::update_password(&mut tx, user.id, &hash).await?;
            store::update_role(&mut tx, user.id, Role::Admin).await?;
            user.id
        }
        None => {
            store::insert_user(&mut tx, email.as_str(), "Administrator", &hash, Role::Admin)
                .await?
                .id
        }
    };
    tx.commit().await?;
    Ok(id)
}
