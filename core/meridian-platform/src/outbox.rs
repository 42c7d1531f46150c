//! The transactional outbox: an event is written in the same transaction as the change it
//! describes, and a relay publishes it to JetStream afterwards.
//!
//! Invariant: a row is marked published only after JetStream acknowledged it (a duplicate
//! acknowledgement counts: the event is on the stream). A relay claims rows for [`CLAIM_S`]
//! before publishing them, so relays of several replicas never publish the same rows at once;
//! a relay that dies before marking leaves its claim to expire, and the rows are published
//! again with the same `Nats-Msg-Id`, which JetStream drops within its duplicate window. So
//! every row reaches the stream exactly once.
//!
//! Cost: one round trip per batch. The marks of a batch ride on the statement that claims the
//! next one; when no next batch comes, they are written alone after [`MARK_WITHIN`]. A woken
//! relay gathers commits for [`GATHER`] first, so a busy service pays one round per batch,
//! not one per event.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use async_nats::{HeaderMap, jetstream};
use meridian_jetstream::{Envelope, Event, Naming, RawEnvelope};
use sqlx::{PgConnection, PgPool, postgres::PgListener};
use tokio::sync::Notify;
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
    // The notification is delivered at commit, and only if the transaction commits.
    sqlx::query(
        "WITH row AS (INSERT INTO outbox (id, event_type, envelope) VALUES ($1, $2, $3) \
         RETURNING id) SELECT pg_notify($4, '') FROM row",
    )
    .bind(raw.id)
    .bind(&raw.event_type)
    .bind(sqlx::types::Json(&raw))
    .bind(channel(schema))
    .execute(&mut *tx)
    .await?;
    Ok(raw.id)
}

/// Events that ride in the statement of the change they describe, so that the change, its
/// events and its commit cost one round trip instead of a transaction of several. The
/// statement includes [`Outgoing::cte`] as one of its `WITH` queries and binds
/// [`Outgoing::bind`] at the placeholders it named; once the statement (or the transaction it
/// ran in) committed, the caller [`wake`]s the relay.
#[derive(Default)]
pub struct Outgoing {
    ids: Vec<Uuid>,
    types: Vec<String>,
    envelopes: Vec<String>,
}

impl Outgoing {
    pub fn push<E: Event>(&mut self, event: Envelope<E>) -> Result<Uuid, sqlx::Error> {
        let raw = event
            .into_raw()
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let envelope = serde_json::to_string(&raw).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        self.ids.push(raw.id);
        self.types.push(raw.event_type);
        self.envelopes.push(envelope);
        Ok(raw.id)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `WITH` query `name AS (...)` that inserts the events when `condition` (an SQL
    /// boolean, e.g. `EXISTS (SELECT 1 FROM moved)`) holds, reading placeholders `$first`
    /// to `$first + 2`.
    pub fn cte(name: &str, first: usize, condition: &str) -> String {
        let (ids, types, envelopes) = (first, first + 1, first + 2);
        format!(
            "{name} AS (INSERT INTO outbox (id, event_type, envelope) \
             SELECT e.id, e.event_type, e.envelope::jsonb \
             FROM unnest(${ids}::uuid[], ${types}::text[], ${envelopes}::text[]) \
                 AS e(id, event_type, envelope) WHERE {condition})"
        )
    }

    /// Binds the events at the placeholders [`Outgoing::cte`] named.
    pub fn bind<'q, O>(
        self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query.bind(self.ids).bind(self.types).bind(self.envelopes)
    }
}

/// The in-process wake-up of the relays of `schema`.
fn waker(schema: &str) -> Arc<Notify> {
    static WAKERS: LazyLock<Mutex<HashMap<String, Arc<Notify>>>> = LazyLock::new(Mutex::default);
    let mut wakers = WAKERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    wakers.entry(schema.to_owned()).or_default().clone()
}

/// Wakes this process's relay of `schema` after a commit that wrote outbox rows without a
/// `NOTIFY` (the rows of [`Outgoing`]): cheaper than `NOTIFY`, which signals every listening
/// backend and serializes the commits that carry it. The relays of other replicas need no
/// waking: any relay publishes any row, and each polls every second regardless.
pub fn wake(schema: &str) {
    waker(schema).notify_one();
}

/// How long a relay owns the rows it claimed: longer than a batch takes to publish. Should a
/// batch take longer, another relay publishes it again, and JetStream drops the duplicates.
pub const CLAIM_S: i64 = 3;
/// How long acknowledged rows may wait for their mark when no new rows come.
const MARK_WITHIN: Duration = Duration::from_millis(100);
/// How long a woken relay waits for more commits before its round: under load one round
/// then publishes the events of many transactions instead of one each, for a few
/// milliseconds more between a commit and its event.
const GATHER: Duration = Duration::from_millis(5);

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
    seq: i64,
    event_type: String,
    envelope: sqlx::types::Json<RawEnvelope>,
}

impl Relay {
    /// Relays until `shutdown` fires: after each commit (`NOTIFY`, or [`wake`] from this
    /// process), and every second regardless,
    /// so a lost notification or a failed publish only delays an event.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut listener) => match listener.listen(&channel(&self.schema)).await {
                Ok(()) => {
                    // The relay's own round trips run on this connection too. Its marks and
                    // claims need no flush to disk: one lost in a crash only means that rows
                    // are published again, and JetStream drops the copies.
                    if let Err(error) = sqlx::query("SET synchronous_commit = off")
                        .execute(&mut listener)
                        .await
                    {
                        tracing::warn!(%error, "outbox relay commits synchronously");
                    }
                    Some(listener)
                }
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
        let waker = waker(&self.schema);
        // Acknowledged by JetStream, not yet marked.
        let mut acknowledged: Vec<Uuid> = Vec::new();
        loop {
            let round = match listener.as_mut() {
                Some(listener) => self.round(listener, &acknowledged).await,
                None => self.round(&self.pool, &acknowledged).await,
            };
            let claimed = match round {
                Ok(claimed) => {
                    acknowledged.clear();
                    claimed
                }
                Err(error) => {
                    tracing::warn!(schema = %self.schema, %error, "outbox relay round failed");
                    Vec::new()
                }
            };
            let full = claimed.len() as i64 == self.batch_size;
            let published = self.publish(&claimed).await;
            if published.len() < claimed.len() {
                // JetStream refused or timed out: let the rows go, to be retried shortly.
                self.release(&claimed, &published).await;
            }
            acknowledged.extend(published);
            if full {
                continue;
            }
            let pause = if acknowledged.is_empty() {
                Duration::from_secs(1)
            } else {
                MARK_WITHIN
            };
            let wake = async {
                let woken = match listener.as_mut() {
                    Some(listener) => tokio::select! {
                        notified = tokio::time::timeout(pause, listener.recv()) => {
                            matches!(notified, Ok(Ok(_)))
                        }
                        () = waker.notified() => true,
                    },
                    None => tokio::time::timeout(pause, waker.notified()).await.is_ok(),
                };
                if woken {
                    // Let the commits of the next few milliseconds join this round, and let
                    // their wake-ups go: the round finds their rows.
                    tokio::time::sleep(GATHER).await;
                    if let Some(listener) = listener.as_mut() {
                        while listener.next_buffered().is_some() {}
                    }
                    // `notify_one` stores at most one permit: take it, if one came meanwhile.
                    let _ = tokio::time::timeout(Duration::ZERO, waker.notified()).await;
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    if !acknowledged.is_empty() {
                        let _ = self.mark(&acknowledged).await;
                    }
                    return;
                }
                () = wake => {}
            }
        }
    }

    /// One round trip: marks `acknowledged` published and claims the next batch of unclaimed
    /// rows, in `seq` order.
    async fn round<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        acknowledged: &[Uuid],
    ) -> Result<Vec<Row>, sqlx::Error> {
        let mut rows: Vec<Row> = sqlx::query_as(
            "WITH marked AS (UPDATE outbox SET published_at = now() WHERE id = ANY($1)) \
             UPDATE outbox SET claimed_until = now() + make_interval(secs => $3) \
             WHERE id IN (SELECT id FROM outbox WHERE published_at IS NULL \
                 AND claimed_until < now() ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, seq, event_type, envelope",
        )
        .bind(acknowledged)
        .bind(self.batch_size)
        .bind(CLAIM_S as f64)
        .fetch_all(executor)
        .await?;
        rows.sort_unstable_by_key(|row| row.seq);
        if !acknowledged.is_empty() {
            metrics::counter!("outbox_published_total", "schema" => self.schema.clone())
                .increment(acknowledged.len() as u64);
        }
        Ok(rows)
    }

    /// Gives back the claims of the rows that were not published.
    async fn release(&self, claimed: &[Row], published: &[Uuid]) {
        let unpublished: Vec<Uuid> = claimed
            .iter()
            .map(|row| row.id)
            .filter(|id| !published.contains(id))
            .collect();
        let released = sqlx::query(
            "UPDATE outbox SET claimed_until = '-infinity' WHERE id = ANY($1) \
             AND published_at IS NULL",
        )
        .bind(&unpublished)
        .execute(&self.pool)
        .await;
        if let Err(error) = released {
            tracing::warn!(%error, "releasing outbox claims failed; they expire on their own");
        }
    }

    async fn mark(&self, acknowledged: &[Uuid]) -> Result<(), sqlx::Error> {
        if acknowledged.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(acknowledged)
            .execute(&self.pool)
            .await?;
        metrics::counter!("outbox_published_total", "schema" => self.schema.clone())
            .increment(acknowledged.len() as u64);
        Ok(())
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
