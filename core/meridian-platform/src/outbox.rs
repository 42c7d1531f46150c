//! The transactional outbox: an event is written in the same transaction as the change it
//! describes, and a relay publishes it to JetStream afterwards.
//!
//! Invariant: a row is marked published only after JetStream acknowledged it (a duplicate
//! acknowledgement counts: the event is on the stream). A relay that dies between publishing
//! and marking publishes the rows again, with the same `Nats-Msg-Id`, and JetStream drops the
//! copies within its duplicate window; so every row reaches the stream exactly once.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};
use meridian_jetstream::{Envelope, Event, Naming, RawEnvelope};
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Creates the outbox table in `schema` (the pool's own schema).
pub async fn migrate(pool: &PgPool, schema: &str) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("./migrations/outbox");
    migrator.create_schema(schema.to_owned());
    migrator.dangerous_set_table_name(format!("{schema}._outbox_migrations"));
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrating the outbox of {schema}: {e}"))
}

/// The NOTIFY channel on which a committed outbox row wakes the relay.
fn channel(schema: &str) -> String {
    format!("{schema}_outbox")
}

/// Writes `event` into the outbox, inside the caller's transaction.
pub async fn enqueue<E: Event>(
    tx: &mut PgConnection,
    schema: &str,
    event: Envelope<E>,
) -> Result<Uuid, sqlx::Error> {
    let raw = event
        .into_raw()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("INSERT INTO outbox (id, event_type, envelope) VALUES ($1, $2, $3)")
        .bind(raw.id)
        .bind(&raw.event_type)
        .bind(sqlx::types::Json(&raw))
        .execute(&mut *tx)
        .await?;
    // Delivered at commit, and only if the transaction commits.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel(schema))
        .execute(&mut *tx)
        .await?;
    Ok(raw.id)
}

/// Publishes one service's outbox to JetStream.
#[derive(Clone)]
pub struct Relay {
    pub pool: PgPool,
    pub schema: String,
    pub jetstream: jetstream::Context,
    pub naming: Naming,
    pub batch_size: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    event_type: String,
    envelope: sqlx::types::Json<RawEnvelope>,
}

impl Relay {
    /// Relays until `shutdown` fires: after each commit (NOTIFY), and every second regardless,
    /// so a lost notification or a failed publish only delays an event.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut listener) => match listener.listen(&channel(&self.schema)).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "outbox relay polls without LISTEN");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "outbox relay polls without LISTEN");
                None
            }
        };
        loop {
            let published = match self.publish_batch().await {
                Ok(published) => published,
                Err(error) => {
                    tracing::warn!(schema = %self.schema, %error, "outbox relay batch failed");
                    0
                }
            };
            if published as i64 == self.batch_size {
                continue;
            }
            let wake = async {
                match listener.as_mut() {
                    Some(listener) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake => {}
            }
        }
    }

    /// Publishes the oldest unpublished rows and marks those JetStream acknowledged.
    ///
    /// The rows stay locked (`FOR UPDATE SKIP LOCKED`) until the marks commit, so relays of
    /// several replicas never publish the same rows at once.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event_type, envelope FROM outbox WHERE published_at IS NULL \
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let acknowledged = self.publish(&rows).await;
        if !acknowledged.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
                .bind(&acknowledged)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        metrics::counter!("outbox_published_total", "schema" => self.schema.clone())
            .increment(acknowledged.len() as u64);
        Ok(acknowledged.len())
    }

    /// Sends every row without waiting, then collects the acknowledgements; returns the ids
    /// JetStream holds.
    async fn publish(&self, rows: &[Row]) -> Vec<Uuid> {
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let payload = match serde_json::to_vec(&row.envelope.0) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(id = %row.id, %error, "outbox row cannot be encoded");
                    continue;
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", row.id.to_string().as_str());
            headers.insert("Meridian-Event-Type", row.event_type.as_str());
            let subject = self.naming.event_subject(&row.event_type);
            match self
                .jetstream
                .publish_with_headers(subject, headers, payload.into())
                .await
            {
                Ok(ack) => pending.push((row.id, ack)),
                Err(error) => {
                    tracing::warn!(id = %row.id, %error, "publishing an outbox row failed");
                    break;
                }
            }
        }
        let mut acknowledged = Vec::with_capacity(pending.len());
        for (id, ack) in pending {
            match ack.await {
                Ok(_ack) => acknowledged.push(id),
                Err(error) => tracing::warn!(%id, %error, "no acknowledgement for an outbox row"),
            }
        }
        acknowledged
    }
}

/// How many rows wait to be published: the relay's lag.
pub async fn pending(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}
