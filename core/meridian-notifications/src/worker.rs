//! From an event to a message sent once.
//!
//! 1. The event names what to send: a template, its data, a channel and a recipient (a user,
//!    whose address comes from `users.contact`, or an address given by a send request).
//! 2. The inbox row for the event id is created if absent and locked (`FOR UPDATE SKIP LOCKED`)
//!    for the time of the send: a row already `sent` means the event was handled, and it is
//!    only acknowledged; one locked by another worker is retried later. The lock dies with its
//!    connection, so a worker killed mid-send blocks nobody.
//! 3. The message is rendered and sent; the row becomes `sent` and is committed, then the event
//!    is acknowledged.
//!    A failure leaves the row `failed` and the event comes back with a growing delay; after
//!    the last delivery, or at once when it can never work, it goes to the dead-letter subject
//!    of the notifications stream, from which an admin can replay it.

use std::time::Duration;

use meridian_contracts::users::{ContactRequest, GetContact};
use meridian_jetstream::{
    Envelope, RawEnvelope,
    events::{
        notifications::{DeadLetteredV1, ReplayRequestedV1, SendRequestedV1},
        orders::{OrderConfirmedV1, OrderPlacedV1, OrderShippedV1},
        payments::{PaymentFailedV1, PaymentSucceededV1},
        users::UserRegisteredV1,
    },
};
use meridian_platform::consume::Failure;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    channels::{Channels, Outgoing, SendError},
    templates,
};

/// Deliveries of one event before it is dead-lettered.
pub const MAX_DELIVERIES: i64 = meridian_jetstream::consumers::NOTIFICATION_DELIVERIES;

#[derive(Clone)]
pub struct Worker {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub naming: meridian_jetstream::Naming,
    pub region: String,
    pub channels: Channels,
    /// The durable consumer this worker serves, for dead letters.
    pub consumer: String,
}

enum Recipient {
    User(Uuid),
    Address(String),
}

struct Notification {
    channel: String,
    recipient: Recipient,
    template: String,
    data: Value,
}

fn money(amount: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", amount / 100, amount.rem_euclid(100))
}

/// The short order reference shoppers see.
fn order_ref(order_id: Uuid) -> String {
    order_id.simple().to_string()[..12].to_ascii_uppercase()
}

fn retry(delay_s: u64, cause: impl std::fmt::Display) -> Failure {
    Failure::Retry {
        delay: Duration::from_secs(delay_s),
        cause: cause.to_string(),
    }
}

fn unreadable(error: serde_json::Error) -> Failure {
    Failure::Drop(format!("unreadable payload: {error}"))
}

/// Back-off between deliveries: 1, 4, 16, 60 s.
fn backoff(attempt: i64) -> Duration {
    Duration::from_secs(
        4u64.saturating_pow(attempt.saturating_sub(1) as u32)
            .min(60),
    )
}

impl Worker {
    pub async fn handle(&self, event: RawEnvelope, delivery: i64) -> Result<(), Failure> {
        // A replay is its original event arriving again; if it fails again, the original is
        // what goes back to the dead letters.
        let (event, handled) = match event.decode::<ReplayRequestedV1>() {
            Some(Ok(replay)) => (replay.original, event.id),
            Some(Err(error)) => {
                let cause = format!("unreadable replay: {error}");
                return self.dead_letter(&event, event.id, delivery, &cause).await;
            }
            None => {
                let id = event.id;
                (event, id)
            }
        };
        match self.handle_once(&event).await {
            Ok(()) => Ok(()),
            Err(Failure::Retry { cause, .. }) if delivery < MAX_DELIVERIES => Err(Failure::Retry {
                delay: backoff(delivery),
                cause,
            }),
            Err(Failure::Retry { cause, .. } | Failure::Drop(cause)) => {
                self.dead_letter(&event, handled, delivery, &cause).await
            }
        }
    }

    /// Publishes `event` as a dead letter. `handled` is the id of the message this worker was
    /// given (the event's own, or a replay's): with the delivery count it makes the letter's
    /// deduplication id, so a replay that fails again is a new letter.
    async fn dead_letter(
        &self,
        event: &RawEnvelope,
        handled: Uuid,
        attempts: i64,
        error: &str,
    ) -> Result<(), Failure> {
        let dead = DeadLetteredV1 {
            original: event.clone(),
            consumer: self.consumer.clone(),
            attempts: attempts as u32,
            error: error.chars().take(500).collect(),
        };
        let envelope = Envelope::new(&self.region, event.id, attempts, dead);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("dead-{handled}-{attempts}").as_str());
        let payload = serde_json::to_vec(&envelope).map_err(|e| retry(5, e))?;
        self.jetstream
            .publish_with_headers(
                self.naming.subject_of::<DeadLetteredV1>(),
                headers,
                payload.into(),
            )
            .await
            .map_err(|e| retry(5, e))?
            .await
            .map_err(|e| retry(5, e))?;
        metrics::counter!("notifications_dead_lettered_total").increment(1);
        tracing::warn!(event_id = %event.id, event_type = event.event_type, error, "notification dead-lettered");
        Ok(())
    }

    async fn handle_once(&self, event: &RawEnvelope) -> Result<(), Failure> {
        let Some(notification) = self.notification(event).await? else {
            return Ok(());
        };
        self.deliver(event, notification).await
    }

    /// What `event` calls for, if anything; records the order projection on the way.
    async fn notification(&self, event: &RawEnvelope) -> Result<Option<Notification>, Failure> {
        let email = |user: Uuid, template: &str, data: Value| Notification {
            channel: "email".into(),
            recipient: Recipient::User(user),
            template: template.into(),
            data,
        };
        if let Some(e) = event.decode::<UserRegisteredV1>() {
            let e = e.map_err(unreadable)?;
            return Ok(Some(Notification {
                channel: "email".into(),
                recipient: Recipient::Address(e.email),
                template: "welcome".into(),
                data: json!({"name": e.name}),
            }));
        }
        if let Some(e) = event.decode::<OrderPlacedV1>() {
            let e = e.map_err(unreadable)?;
            sqlx::query(
                "INSERT INTO orders (order_id, user_id, total_amount, currency) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(e.order_id)
            .bind(e.user_id)
            .bind(e.total_amount)
            .bind(&e.currency)
            .execute(&self.pool)
            .await
            .map_err(|e| retry(1, e))?;
            let data = json!({"order_ref": order_ref(e.order_id),
                "total": money(e.total_amount, &e.currency)});
            return Ok(Some(email(e.user_id, "order_placed", data)));
        }
        if let Some(e) = event.decode::<OrderConfirmedV1>() {
            let e = e.map_err(unreadable)?;
            let data = json!({"order_ref": order_ref(e.order_id)});
            return Ok(Some(email(e.user_id, "order_confirmed", data)));
        }
        if let Some(e) = event.decode::<OrderShippedV1>() {
            let e = e.map_err(unreadable)?;
            let data = json!({"order_ref": order_ref(e.order_id)});
            return Ok(Some(email(e.user_id, "order_shipped", data)));
        }
        let payment = if let Some(e) = event.decode::<PaymentSucceededV1>() {
            let e = e.map_err(unreadable)?;
            Some((
                e.order_id,
                "payment_succeeded",
                json!({"amount": money(e.amount, &e.currency)}),
            ))
        } else if let Some(e) = event.decode::<PaymentFailedV1>() {
            let e = e.map_err(unreadable)?;
            Some((
                e.order_id,
                "payment_failed",
                json!({"amount": money(e.amount, &e.currency), "reason": e.reason}),
            ))
        } else {
            None
        };
        if let Some((order_id, template, mut data)) = payment {
            // The order's OrderPlaced comes on another stream; it may not be here yet.
            let user: Option<Uuid> =
                sqlx::query_scalar("SELECT user_id FROM orders WHERE order_id = $1")
                    .bind(order_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| retry(1, e))?;
            let user = user.ok_or_else(|| retry(1, "the order is not known yet"))?;
            data["order_ref"] = json!(order_ref(order_id));
            return Ok(Some(email(user, template, data)));
        }
        if let Some(e) = event.decode::<SendRequestedV1>() {
            let e = e.map_err(unreadable)?;
            return Ok(Some(Notification {
                channel: e.channel,
                recipient: Recipient::Address(e.to),
                template: e.template,
                data: e.data,
            }));
        }
        Ok(None)
    }

    async fn deliver(
        &self,
        event: &RawEnvelope,
        notification: Notification,
    ) -> Result<(), Failure> {
        let template = templates::find(&notification.template)
            .ok_or_else(|| Failure::Drop(format!("no template {:?}", notification.template)))?;
        let provider = self
            .channels
            .get(&notification.channel)
            .ok_or_else(|| {
                Failure::Drop(format!(
                    "no {} provider is configured",
                    notification.channel
                ))
            })?
            .clone();
        let (to, mut data) = match notification.recipient {
            Recipient::Address(to) => (to, notification.data),
            Recipient::User(user_id) => {
                let contact = meridian_platform::rpc::call::<GetContact>(
                    &self.nats,
                    &self.naming,
                    &ContactRequest { user_id },
                    meridian_platform::rpc::DEFAULT_TIMEOUT,
                )
                .await
                .map_err(|e| retry(1, e))?
                .ok_or_else(|| Failure::Drop("the user no longer exists".into()))?;
                let mut data = notification.data;
                data["name"] = json!(contact.name);
                (contact.email, data)
            }
        };
        if data.get("name").is_none() {
            data["name"] = json!("");
        }
        // The inbox row, then its lock for the time of the send: a second worker finds it
        // locked and comes back later; a worker that dies mid-send loses the lock with its
        // connection, so the next delivery sends at once.
        sqlx::query(
            "INSERT INTO deliveries (event_id, event_type, channel, recipient, template) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event.id)
        .bind(&event.event_type)
        .bind(&notification.channel)
        .bind(&to)
        .bind(template.name)
        .execute(&self.pool)
        .await
        .map_err(|e| retry(1, e))?;
        let mut tx = self.pool.begin().await.map_err(|e| retry(1, e))?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM deliveries WHERE event_id = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(event.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| retry(1, e))?;
        match status.as_deref() {
            None => return Err(retry(5, "another worker is sending this message")),
            Some("sent") => {
                metrics::counter!("notifications_duplicates_total").increment(1);
                return Ok(());
            }
            Some(_) => {}
        }
        let outgoing = Outgoing {
            id: event.id,
            to,
            rendered: template.render(&data),
        };
        let sent = provider.send(&outgoing).await;
        let (status, error) = match &sent {
            Ok(()) => ("sent", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        sqlx::query(
            "UPDATE deliveries SET status = $2, last_error = $3, attempts = attempts + 1, \
             updated_at = now(), sent_at = CASE WHEN $2 = 'sent' THEN now() END \
             WHERE event_id = $1",
        )
        .bind(event.id)
        .bind(status)
        .bind(&error)
        .execute(&mut *tx)
        .await
        .map_err(|e| retry(1, e))?;
        tx.commit().await.map_err(|e| retry(1, e))?;
        match sent {
            Ok(()) => {
                metrics::counter!("notifications_sent_total", "channel" => notification.channel)
                    .increment(1);
                Ok(())
            }
            Err(SendError::Transient(cause)) => Err(retry(1, cause)),
            Err(SendError::Permanent(cause)) => Err(Failure::Drop(cause)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_references_read_well() {
        assert_eq!(money(12999, "USD"), "129.99 USD");
        assert_eq!(money(5, "EUR"), "0.05 EUR");
        assert_eq!(order_ref(Uuid::nil()), "000000000000");
        assert_eq!(
            [1, 2, 3, 4, 5].map(|a| backoff(a).as_secs()),
            [1, 4, 16, 60, 60]
        );
    }
}
