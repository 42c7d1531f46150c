//! One Postgres pool per service, each confined to the service's own schema.
//!
//! Invariant: a service's pool has `search_path` set to its schema, and its migrations record
//! themselves in that schema; so services can share one database in development and live in
//! separate ones in production without a line of code changing.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Connects a pool whose connections see `schema` first.
pub async fn connect(
    database_url: &str,
    schema: &str,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name {schema:?} must be lowercase letters and '_'"
    );
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a Postgres URL: {e}"))?
        .application_name(&format!("meridian-{schema}"))
        .options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to Postgres for {schema}: {e}"))?;
    Ok(pool)
}

/// Applies `migrator` inside `schema`, creating the schema first.
pub async fn migrate(pool: &PgPool, schema: &str, mut migrator: Migrator) -> anyhow::Result<()> {
    migrator.create_schema(schema.to_owned());
    migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrating schema {schema}: {e}"))
}
