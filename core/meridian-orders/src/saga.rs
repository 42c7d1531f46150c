//! The checkout saga: reserve (compensable) → charge (the pivot) → confirm (retried) → clear
//! the cart; a declined charge releases the reservation, a shortage cancels the order.
//!
//! Each step calls one idempotent remote endpoint with the key `<order id>:<step>` and then
//! records its outcome together with the next step (`UPDATE ... WHERE saga_step = <step>`).
//! One process at a time drives an order: it holds a lease (`lease_until`); a process that
//! dies loses its lease after [`LEASE_S`] and the resumer of any replica picks the order up.

use std::time::Duration;

use meridian_contracts::{
    cart::{ClearCart, ClearCartRequest},
    inventory::{
        Reserve, ReserveItem, ReserveRequest, ReserveResponse, Settle, SettleAction, SettleRequest,
    },
    payments::{Charge, ChargeRequest, ChargeResponse, Refund, RefundRequest, RefundResponse},
};
use meridian_jetstream::{
    Naming,
    events::orders::{OrderCancelledV1, OrderConfirmedV1},
};
use meridian_platform::rpc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{self, OrderRow};

/// How long a driver owns an order before another may take over.
pub const LEASE_S: i64 = 30;
/// How long a step waits for its remote answer before it is retried (with the same key).
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long reservations made by checkout last.
const RESERVATION_TTL_S: i64 = 600;
/// After this many failed attempts at one order, it waits this long between attempts.
const MAX_BACKOFF_S: i64 = 60;

/// Aborts the process at `point` when `MERIDIAN_CRASH_AT` names it: how the crash tests kill
/// a core between a step's remote effect and its record. Absent from release builds.
fn crash_point(point: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("MERIDIAN_CRASH_AT").as_deref() == Ok(point) {
        eprintln!("crash point {point}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
}

#[derive(Clone)]
pub struct Saga {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub naming: Naming,
    pub region: String,
}

/// Where a drive left the order.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven {
    /// The saga reached its end.
    Finished,
    /// A step could not run now (a dependency is unavailable); it is scheduled again.
    Postponed(String),
    /// Another driver holds the order.
    Busy,
}

enum Step {
    Next,
    Retry(String),
}

impl Saga {
    /// Drives `order_id` until the saga ends or a step must wait.
    pub async fn drive(&self, order_id: Uuid) -> Result<Driven, sqlx::Error> {
        let leased = sqlx::query(
            "UPDATE orders SET lease_until = now() + make_interval(secs => $2) \
             WHERE id = $1 AND saga_step <> 'done' AND lease_until < now()",
        )
        .bind(order_id)
        .bind(LEASE_S as f64)
        .execute(&self.pool)
        .await?;
        if leased.rows_affected() == 0 {
            let done: Option<String> =
                sqlx::query_scalar("SELECT saga_step FROM orders WHERE id = $1")
                    .bind(order_id)
                    .fetch_optional(&self.pool)
                    .await?;
            return Ok(if done.as_deref() == Some("done") {
                Driven::Finished
            } else {
                Driven::Busy
            });
        }
        let outcome = loop {
            let mut conn = self.pool.acquire().await?;
            let Some(order) = store::row(&mut conn, order_id).await? else {
                break Driven::Finished;
            };
            drop(conn);
            if order.saga_step == "done" {
                break Driven::Finished;
            }
            match self.step(&order).await? {
                Step::Next => continue,
                Step::Retry(reason) => {
                    let backoff = (1i64 << order.attempts.clamp(0, 6)).min(MAX_BACKOFF_S);
                    sqlx::query(
                        "UPDATE orders SET attempts = attempts + 1, \
                         next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
                    )
                    .bind(order_id)
                    .bind(backoff as f64)
                    .execute(&self.pool)
                    .await?;
                    break Driven::Postponed(reason);
                }
            }
        };
        sqlx::query("UPDATE orders SET lease_until = '-infinity' WHERE id = $1")
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        Ok(outcome)
    }

    async fn step(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        match order.saga_step.as_str() {
            "reserve" => self.reserve(order).await,
            "charge" => self.charge(order).await,
            "confirm" => self.confirm(order).await,
            "release" => self.release(order).await,
            "clear_cart" => self.clear_cart(order).await,
            "restock" => self.restock(order).await,
            "refund" => self.refund(order).await,
            other => {
                tracing::error!(order_id = %order.id, step = other, "unknown saga step");
                Ok(Step::Retry(format!("unknown step {other}")))
            }
        }
    }

    /// Moves the order from `from` to `to`, optionally into `status`; false if another
    /// driver moved it first.
    async fn advance(
        &self,
        tx: &mut sqlx::PgConnection,
        order: &OrderRow,
        to: &str,
        status: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let moved = sqlx::query(
            "UPDATE orders SET saga_step = $3, status = COALESCE($4, status), attempts = 0, \
             updated_at = now() WHERE id = $1 AND saga_step = $2",
        )
        .bind(order.id)
        .bind(&order.saga_step)
        .bind(to)
        .bind(status)
        .execute(&mut *tx)
        .await?;
        if let Some(status) = status {
            store::record_status(tx, order.id, status).await?;
        }
        Ok(moved.rows_affected() == 1)
    }

    async fn reserve(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let items = store::items(&mut conn, order.id).await?;
        drop(conn);
        let request = ReserveRequest {
            region: order.region.clone(),
            items: items
                .iter()
                .map(|i| ReserveItem {
                    product_id: i.product_id.to_string(),
                    quantity: i.quantity,
                })
                .collect(),
            ttl_seconds: RESERVATION_TTL_S,
            idempotency_key: format!("{}:reserve", order.id),
        };
        let answer =
            match rpc::call::<Reserve>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await {
                Ok(answer) => answer,
                Err(error) => return Ok(Step::Retry(error.to_string())),
            };
        crash_point("after_reserve");
        let mut tx = self.pool.begin().await?;
        match answer {
            ReserveResponse::Reserved { reservation_id, .. } => {
                let reservation_id = Uuid::parse_str(&reservation_id).ok();
                sqlx::query("UPDATE orders SET reservation_id = $2 WHERE id = $1")
                    .bind(order.id)
                    .bind(reservation_id)
                    .execute(&mut *tx)
                    .await?;
                self.advance(&mut tx, order, "charge", Some("reserved"))
                    .await?;
            }
            ReserveResponse::Short { product_ids } => {
                let reason = format!("out_of_stock: {}", product_ids.join(", "));
                sqlx::query(
                    "UPDATE orders SET failure_reason = $2, payment_token = NULL WHERE id = $1",
                )
                .bind(order.id)
                .bind(&reason)
                .execute(&mut *tx)
                .await?;
                if self
                    .advance(&mut tx, order, "done", Some("cancelled"))
                    .await?
                {
                    let event = OrderCancelledV1 {
                        order_id: order.id,
                        user_id: order.user_id,
                        reason,
                    };
                    store::emit(&mut tx, &order.region, order.id, 2, event).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(Step::Next)
    }

    async fn charge(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        let request = ChargeRequest {
            order_id: order.id.to_string(),
            amount: order.total,
            currency: order.currency.clone(),
            token: order.payment_token.clone().unwrap_or_default(),
            idempotency_key: format!("{}:charge", order.id),
        };
        let answer =
            match rpc::call::<Charge>(&self.nats, &self.naming, &request, Duration::from_secs(10))
                .await
            {
                Ok(answer) => answer,
                Err(error) => return Ok(Step::Retry(error.to_string())),
            };
        crash_point("after_charge");
        let mut tx = self.pool.begin().await?;
        match answer {
            ChargeResponse::Succeeded { payment_id } => {
                sqlx::query("UPDATE orders SET payment_id = $2 WHERE id = $1")
                    .bind(order.id)
                    .bind(Uuid::parse_str(&payment_id).ok())
                    .execute(&mut *tx)
                    .await?;
                self.advance(&mut tx, order, "confirm", Some("paid"))
                    .await?;
            }
            ChargeResponse::Declined { payment_id, reason } => {
                sqlx::query(
                    "UPDATE orders SET payment_id = $2, failure_reason = $3, payment_token = NULL \
                     WHERE id = $1",
                )
                .bind(order.id)
                .bind(Uuid::parse_str(&payment_id).ok())
                .bind(format!("payment_declined: {reason}"))
                .execute(&mut *tx)
                .await?;
                self.advance(&mut tx, order, "release", Some("payment_failed"))
                    .await?;
            }
            ChargeResponse::Unavailable { reason } => return Ok(Step::Retry(reason)),
        }
        tx.commit().await?;
        Ok(Step::Next)
    }

    async fn settle(
        &self,
        order: &OrderRow,
        action: SettleAction,
    ) -> Result<Option<String>, sqlx::Error> {
        let Some(reservation_id) = order.reservation_id else {
            return Ok(Some("not_found".into()));
        };
        let request = SettleRequest {
            reservation_id: reservation_id.to_string(),
            action,
        };
        Ok(
            rpc::call::<Settle>(&self.nats, &self.naming, &request, STEP_TIMEOUT)
                .await
                .ok()
                .map(|answer| answer.status),
        )
    }

    async fn confirm(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        crash_point("before_confirm");
        let Some(status) = self.settle(order, SettleAction::Confirm).await? else {
            return Ok(Step::Retry("inventory unavailable".into()));
        };
        let mut tx = self.pool.begin().await?;
        if status == "confirmed" {
            sqlx::query("UPDATE orders SET payment_token = NULL WHERE id = $1")
                .bind(order.id)
                .execute(&mut *tx)
                .await?;
            if self
                .advance(&mut tx, order, "clear_cart", Some("confirmed"))
                .await?
            {
                let items = store::items(&mut tx, order.id).await?;
                let event = OrderConfirmedV1 {
                    order_id: order.id,
                    user_id: order.user_id,
                    region: order.region.clone(),
                    lines: store::lines(&items),
                };
                store::emit(&mut tx, &order.region, order.id, 3, event).await?;
            }
        } else {
            // The reservation ran out before the payment was confirmed: the units may be sold
            // to someone else. Leave the order paid and flagged; refunds come with cancellation.
            tracing::error!(order_id = %order.id, %status, "a paid order lost its reservation");
            sqlx::query("UPDATE orders SET failure_reason = 'reservation_lost' WHERE id = $1")
                .bind(order.id)
                .execute(&mut *tx)
                .await?;
            self.advance(&mut tx, order, "done", None).await?;
        }
        tx.commit().await?;
        Ok(Step::Next)
    }

    async fn release(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        if self.settle(order, SettleAction::Release).await?.is_none() {
            return Ok(Step::Retry("inventory unavailable".into()));
        }
        let mut tx = self.pool.begin().await?;
        self.advance(&mut tx, order, "done", None).await?;
        tx.commit().await?;
        Ok(Step::Next)
    }

    /// After a cancellation: the sold units go back on sale.
    async fn restock(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        if self.settle(order, SettleAction::Restock).await?.is_none() {
            return Ok(Step::Retry("inventory unavailable".into()));
        }
        let mut tx = self.pool.begin().await?;
        self.advance(&mut tx, order, "refund", None).await?;
        tx.commit().await?;
        Ok(Step::Next)
    }

    /// After a cancellation: the payment is refunded in full.
    async fn refund(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        let Some(payment_id) = order.payment_id else {
            let mut tx = self.pool.begin().await?;
            self.advance(&mut tx, order, "done", None).await?;
            tx.commit().await?;
            return Ok(Step::Next);
        };
        let request = RefundRequest {
            payment_id: payment_id.to_string(),
            amount: None,
            idempotency_key: format!("{}:refund", order.id),
        };
        let answer =
            match rpc::call::<Refund>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await {
                Ok(answer) => answer,
                Err(error) => return Ok(Step::Retry(error.to_string())),
            };
        let mut tx = self.pool.begin().await?;
        match answer {
            RefundResponse::Refunded { .. } => {
                self.advance(&mut tx, order, "done", Some("refunded"))
                    .await?;
            }
            RefundResponse::Refused { reason } => {
                tracing::error!(order_id = %order.id, %reason, "the refund of a cancelled order was refused");
                sqlx::query("UPDATE orders SET failure_reason = $2 WHERE id = $1")
                    .bind(order.id)
                    .bind(format!("refund_refused: {reason}"))
                    .execute(&mut *tx)
                    .await?;
                self.advance(&mut tx, order, "done", None).await?;
            }
            RefundResponse::Unavailable { reason } => return Ok(Step::Retry(reason)),
        }
        tx.commit().await?;
        Ok(Step::Next)
    }

    async fn clear_cart(&self, order: &OrderRow) -> Result<Step, sqlx::Error> {
        let request = ClearCartRequest {
            user_id: order.user_id.to_string(),
        };
        if let Err(error) =
            rpc::call::<ClearCart>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await
        {
            return Ok(Step::Retry(error.to_string()));
        }
        let mut tx = self.pool.begin().await?;
        self.advance(&mut tx, order, "done", None).await?;
        tx.commit().await?;
        Ok(Step::Next)
    }

    /// Drives every order whose saga waits (after a crash or a postponed step), every second.
    pub fn spawn_resumer(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let due: Result<Vec<Uuid>, _> = sqlx::query_scalar(
                    "SELECT id FROM orders WHERE saga_step <> 'done' AND next_attempt_at <= now() \
                     AND lease_until < now() ORDER BY next_attempt_at LIMIT 100",
                )
                .fetch_all(&self.pool)
                .await;
                let due = match due {
                    Ok(due) => due,
                    Err(error) => {
                        tracing::warn!(%error, "listing sagas to resume failed");
                        continue;
                    }
                };
                for order_id in due {
                    match self.drive(order_id).await {
                        Ok(Driven::Postponed(reason)) => {
                            tracing::info!(%order_id, %reason, "saga step postponed");
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%order_id, %error, "resuming a saga failed"),
                    }
                }
            }
        })
    }
}
