//! The users service's SQL, as plain functions over a connection.

use chrono::{DateTime, Utc};
use meridian_platform::auth::Role;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::AddressInput;

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "buyer")]
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    password_hash: String,
}

impl UserRow {
    fn into_user(self) -> (User, String) {
        let user = User {
            id: self.id,
            email: self.email,
            name: self.name,
            // The column's CHECK admits only the three roles.
            role: Role::parse(&self.role).unwrap_or(Role::Buyer),
            created_at: self.created_at,
        };
        (user, self.password_hash)
    }
}

pub async fn insert_user(
    conn: &mut PgConnection,
    email: &str,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, sqlx::Error> {
    let row: UserRow = sqlx::query_as(
        "INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, $3, $4, $5) \
         RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(conn)
    .await?;
    Ok(row.into_user().0)
}

/// The user and their password hash.
pub async fn by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(UserRow::into_user))
}

pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.into_user().0))
}

pub async fn update_name(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as("UPDATE users SET name = $2, updated_at = now() WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|r| r.into_user().0))
}

pub async fn update_role(
    conn: &mut PgConnection,
    id: Uuid,
    role: Role,
) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as("UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(role.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|r| r.into_user().0))
}

pub async fn update_password(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Address {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The most addresses one user may keep.
pub const MAX_ADDRESSES: i64 = 20;

pub async fn count_addresses(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM addresses WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(conn)
        .await
}

pub async fn insert_address(
    conn: &mut PgConnection,
    user_id: Uuid,
    input: &AddressInput,
) -> Result<Address, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO addresses (id, user_id, name, line1, line2, city, postal_code, country, phone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(input.name.trim())
    .bind(input.line1.trim())
    .bind(input.line2.as_deref().map(str::trim))
    .bind(input.city.trim())
    .bind(input.postal_code.trim())
    .bind(&input.country)
    .bind(input.phone.as_deref().map(str::trim))
    .fetch_one(conn)
    .await
}

pub async fn addresses(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<Address>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM addresses WHERE user_id = $1 ORDER BY id")
        .bind(user_id)
        .fetch_all(conn)
        .await
}

/// A user's address for another service (the `users.address` contract); `None` unless the
/// address exists and belongs to the user. The error is the reply's error text.
pub async fn address_snapshot(
    pool: &sqlx::PgPool,
    request: &meridian_contracts::users::GetAddressRequest,
) -> Result<Option<meridian_contracts::users::AddressSnapshot>, String> {
    let (Ok(user_id), Ok(address_id)) = (
        Uuid::parse_str(&request.user_id),
        Uuid::parse_str(&request.address_id),
    ) else {
        return Ok(None);
    };
    let address: Option<Address> =
        sqlx::query_as("SELECT * FROM addresses WHERE id = $1 AND user_id = $2")
            .bind(address_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "answering users.address");
                "the users service is unavailable".to_owned()
            })?;
    Ok(address.map(|a| meridian_contracts::users::AddressSnapshot {
        id: a.id.to_string(),
        name: a.name,
        line1: a.line1,
        line2: a.line2,
        city: a.city,
        postal_code: a.postal_code,
        country: a.country,
        phone: a.phone,
    }))
}

/// A user's e-mail and name (the `users.contact` contract); the error is the reply's text.
pub async fn contact(
    pool: &sqlx::PgPool,
    user_id: Uuid,
) -> Result<Option<meridian_contracts::users::Contact>, String> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT email, name FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "answering users.contact");
                "the users service is unavailable".to_owned()
            })?;
    Ok(row.map(|(email, name)| meridian_contracts::users::Contact { email, name }))
}
