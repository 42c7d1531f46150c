//! The checkout saga: reserve (compensable) → charge (the pivot) → confirm (retried) → clear
//! the cart; a declined charge releases the reservation, a shortage cancels the order.
//!
//! Each step calls one idempotent remote endpoint with the key `<order id>:<step>`: asked
//! again, the endpoint answers what it answered the first time, and acts no second time.
//! That is what lets the driver run the steps in memory and record their outcomes only when
//! the saga ends or must wait (a *checkpoint*: one `UPDATE ... WHERE saga_step = <the step
//! recorded before>`, with the status history and the events), instead of one transaction
//! per step. A driver that dies between checkpoints leaves the order at its last recorded
//! step; whoever resumes it replays the steps since, and the endpoints answer as before.
//!
//! One process at a time drives an order: it holds a lease (`lease_until`); a process that
//! dies loses its lease after [`LEASE_S`] and the resumer of any replica picks the order up.
//! Should a driver outlive its lease, the guarded checkpoint lets only one record.

use std::{sync::LazyLock, time::Duration};

use axum::http::StatusCode;
use chrono::{DateTime, SubsecRound, Utc};
use meridian_contracts::{
    cart::{ClearCart, ClearCartRequest},
    inventory::{
        Reserve, ReserveItem, ReserveRequest, ReserveResponse, Settle, SettleAction, SettleRequest,
    },
    payments::{Charge, ChargeRequest, ChargeResponse, Refund, RefundRequest, RefundResponse},
};
use meridian_jetstream::{
    Naming,
    events::orders::{OrderCancelledV1, OrderConfirmedV1, OrderPlacedV1},
};
use meridian_platform::{
    outbox::{self, Outgoing},
    rpc,
};
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{self, ItemRow, NewOrder, Order, OrderRow};

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

/// A drive's result: where it left the order and, unless another driver holds it, the order
/// as recorded.
pub struct Drove {
    pub driven: Driven,
    pub order: Option<Order>,
    /// The response recorded under the [`Completion`]'s key, in the checkpoint's transaction.
    pub completed: Option<Answer>,
}

/// A recorded HTTP answer: status and body.
pub type Answer = (StatusCode, Vec<u8>);

/// An `Idempotency-Key` to complete in the checkpoint that gives the order a final answer:
/// the response and the saga's record then commit together.
pub struct Completion<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    /// The response for the order as recorded, or `None` while it has no final answer.
    pub respond: fn(&Order) -> Option<Answer>,
}

/// An event the steps decided on, emitted by the checkpoint that records them.
enum Emit {
    Cancelled(OrderCancelledV1),
    Confirmed(OrderConfirmedV1),
}

/// An order in the hands of a driver: as recorded, and as the steps since have left it.
struct Run {
    row: OrderRow,
    items: Vec<ItemRow>,
    /// `saga_step` as the database holds it: the checkpoint's guard.
    recorded_step: String,
    history: Vec<(String, DateTime<Utc>)>,
    emits: Vec<Emit>,
}

impl Run {
    /// A run starting where the order was last recorded.
    fn new(row: OrderRow, items: Vec<ItemRow>) -> Self {
        Run {
            recorded_step: row.saga_step.clone(),
            row,
            items,
            history: Vec::new(),
            emits: Vec::new(),
        }
    }

    /// Moves the order to step `to`, optionally into `status`.
    fn advance(&mut self, to: &str, status: Option<&str>) {
        to.clone_into(&mut self.row.saga_step);
        self.row.attempts = 0;
        if let Some(status) = status {
            status.clone_into(&mut self.row.status);
            self.history.push((status.to_owned(), Utc::now()));
        }
    }
}

enum Step {
    Next,
    Retry(String),
}

impl Saga {
    /// Creates `order` (with its `OrderPlaced` event), leased to this caller, and drives it.
    pub async fn start(
        &self,
        order: &NewOrder,
        completion: Option<&Completion<'_>>,
    ) -> Result<Drove, sqlx::Error> {
        let event = OrderPlacedV1 {
            order_id: order.id,
            user_id: order.user_id,
            region: order.region.clone(),
            currency: order.currency.clone(),
            total_amount: order.items.iter().map(|i| i.line_total).sum(),
            lines: store::lines(&order.items),
        };
        let mut events = Outgoing::default();
        store::push(&mut events, &order.region, order.id, 1, event)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::insert(&mut conn, order, LEASE_S, events).await?;
        drop(conn);
        self.run(Run::new(row, order.items.clone()), completion)
            .await
    }

    /// Drives `order_id` until the saga ends or a step must wait.
    pub async fn drive(
        &self,
        order_id: Uuid,
        completion: Option<&Completion<'_>>,
    ) -> Result<Drove, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let leased: Option<OrderRow> = sqlx::query_as(
            "UPDATE orders SET lease_until = now() + make_interval(secs => $2) \
             WHERE id = $1 AND saga_step <> 'done' AND lease_until < now() RETURNING *",
        )
        .bind(order_id)
        .bind(LEASE_S as f64)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = leased else {
            // Finished, or driven by someone else right now.
            let Some(row) = store::row(&mut conn, order_id).await? else {
                return Ok(Drove {
                    driven: Driven::Finished,
                    order: None,
                    completed: None,
                });
            };
            let driven = if row.saga_step == "done" {
                Driven::Finished
            } else {
                Driven::Busy
            };
            let items = store::items(&mut conn, order_id).await?;
            return Ok(Drove {
                driven,
                order: Some(row.into_order(items)),
                completed: None,
            });
        };
        let items = store::items(&mut conn, order_id).await?;
        drop(conn);
        self.run(Run::new(row, items), completion).await
    }

    /// Runs the steps of a leased order in memory, then records where they left it.
    async fn run(
        &self,
        mut run: Run,
        completion: Option<&Completion<'_>>,
    ) -> Result<Drove, sqlx::Error> {
        let mut retry = None;
        while run.row.saga_step != "done" {
            if let Step::Retry(reason) = self.step(&mut run).await {
                retry = Some(reason);
                break;
            }
        }
        let backoff = retry.as_ref().map(|_| {
            run.row.attempts += 1;
            (1i64 << (run.row.attempts - 1).clamp(0, 6)).min(MAX_BACKOFF_S)
        });
        let Some(completed) = self.checkpoint(&run, backoff, completion).await? else {
            // Another driver recorded first (this one outlived its lease): its record stands.
            let mut conn = self.pool.acquire().await?;
            let order = store::order(&mut conn, run.row.id).await?;
            return Ok(Drove {
                driven: Driven::Busy,
                order,
                completed: None,
            });
        };
        let (order, completed) = completed;
        Ok(Drove {
            driven: retry.map_or(Driven::Finished, Driven::Postponed),
            order: Some(order),
            completed,
        })
    }

    /// Records the run in one statement guarded by the step recorded before, with its status
    /// history, its events and the request's answer, releasing the lease; `backoff` schedules
    /// the next attempt of a postponed step. `None` if another driver moved the order
    /// meanwhile.
    async fn checkpoint(
        &self,
        run: &Run,
        backoff: Option<i64>,
        completion: Option<&Completion<'_>>,
    ) -> Result<Option<(Order, Option<Answer>)>, sqlx::Error> {
        static STATEMENT: LazyLock<String> = LazyLock::new(|| {
            let moved = "EXISTS (SELECT 1 FROM moved)";
            let outboxed = Outgoing::cte("outboxed", 18, moved);
            format!(
                "WITH moved AS ( \
                     UPDATE orders SET saga_step = $3, status = $4, reservation_id = $5, \
                         payment_id = $6, failure_reason = $7, payment_token = $8, attempts = $9, \
                         next_attempt_at = CASE WHEN $10::float8 IS NULL THEN next_attempt_at \
                             ELSE now() + make_interval(secs => $10) END, \
                         lease_until = '-infinity', \
                         updated_at = $17 \
                     WHERE id = $1 AND saga_step = $2 RETURNING id), \
                 history AS ( \
                     INSERT INTO order_status_history (order_id, status, at) \
                     SELECT $1, * FROM unnest($11::text[], $12::timestamptz[]) WHERE {moved}), \
                 completed AS ( \
                     UPDATE idempotency_keys SET status = $15, body = $16, completed_at = now() \
                     WHERE scope = $13 AND key = $14 AND $15::int2 IS NOT NULL AND {moved}), \
                 {outboxed} \
                 SELECT id FROM moved"
            )
        });
        let row = &run.row;
        let (statuses, times): (Vec<&str>, Vec<DateTime<Utc>>) =
            run.history.iter().map(|(s, at)| (s.as_str(), *at)).unzip();
        let mut events = Outgoing::default();
        for emit in &run.emits {
            match emit {
                Emit::Cancelled(event) => {
                    store::push(&mut events, &row.region, row.id, 2, event.clone())?;
                }
                Emit::Confirmed(event) => {
                    store::push(&mut events, &row.region, row.id, 3, event.clone())?;
                }
            }
        }
        // The order as this checkpoint leaves it, and the answer that follows from it. The
        // time is taken here (to the database's microseconds) so that the answer shows it.
        let mut recorded = row.clone();
        if row.saga_step != run.recorded_step {
            recorded.updated_at = Utc::now().trunc_subsecs(6);
        }
        let answer = completion.and_then(|completion| {
            (completion.respond)(&recorded.clone().into_order(run.items.clone()))
                .map(|answer| (completion, answer))
        });
        let query = sqlx::query_as(AssertSqlSafe(STATEMENT.as_str()))
            .bind(row.id)
            .bind(&run.recorded_step)
            .bind(&row.saga_step)
            .bind(&row.status)
            .bind(row.reservation_id)
            .bind(row.payment_id)
            .bind(&row.failure_reason)
            .bind(&row.payment_token)
            .bind(row.attempts)
            .bind(backoff.map(|s| s as f64))
            .bind(&statuses)
            .bind(&times)
            .bind(answer.as_ref().map(|(c, _)| c.scope))
            .bind(answer.as_ref().map(|(c, _)| c.key))
            .bind(
                answer
                    .as_ref()
                    .map(|(_, (status, _))| status.as_u16() as i16),
            )
            .bind(answer.as_ref().map(|(_, (_, body))| body.as_slice()))
            .bind(recorded.updated_at);
        let wakes = !events.is_empty();
        let moved: Option<(Uuid,)> = events.bind(query).fetch_optional(&self.pool).await?;
        if moved.is_none() {
            return Ok(None);
        }
        if wakes {
            outbox::wake(crate::SCHEMA);
        }
        let order = recorded.into_order(run.items.clone());
        Ok(Some((order, answer.map(|(_, answer)| answer))))
    }

    async fn step(&self, run: &mut Run) -> Step {
        match run.row.saga_step.as_str() {
            "reserve" => self.reserve(run).await,
            "charge" => self.charge(run).await,
            "confirm" => self.confirm(run).await,
            "release" => self.settle_then(run, SettleAction::Release, "done").await,
            "clear_cart" => self.clear_cart(run).await,
            "restock" => self.settle_then(run, SettleAction::Restock, "refund").await,
            "refund" => self.refund(run).await,
            other => {
                tracing::error!(order_id = %run.row.id, step = other, "unknown saga step");
                Step::Retry(format!("unknown step {other}"))
            }
        }
    }

    async fn reserve(&self, run: &mut Run) -> Step {
        let request = ReserveRequest {
            region: run.row.region.clone(),
            items: run
                .items
                .iter()
                .map(|i| ReserveItem {
                    product_id: i.product_id.to_string(),
                    quantity: i.quantity,
                })
                .collect(),
            ttl_seconds: RESERVATION_TTL_S,
            idempotency_key: format!("{}:reserve", run.row.id),
        };
        let answer =
            match rpc::call::<Reserve>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await {
                Ok(answer) => answer,
                Err(error) => return Step::Retry(error.to_string()),
            };
        crash_point("after_reserve");
        match answer {
            ReserveResponse::Reserved { reservation_id, .. } => {
                run.row.reservation_id = Uuid::parse_str(&reservation_id).ok();
                run.advance("charge", Some("reserved"));
            }
            ReserveResponse::Short { product_ids } => {
                let reason = format!("out_of_stock: {}", product_ids.join(", "));
                run.row.failure_reason = Some(reason.clone());
                run.row.payment_token = None;
                run.advance("done", Some("cancelled"));
                run.emits.push(Emit::Cancelled(OrderCancelledV1 {
                    order_id: run.row.id,
                    user_id: run.row.user_id,
                    reason,
                }));
            }
        }
        Step::Next
    }

    async fn charge(&self, run: &mut Run) -> Step {
        let request = ChargeRequest {
            order_id: run.row.id.to_string(),
            amount: run.row.total,
            currency: run.row.currency.clone(),
            token: run.row.payment_token.clone().unwrap_or_default(),
            idempotency_key: format!("{}:charge", run.row.id),
            user_id: Some(run.row.user_id.to_string()),
        };
        let answer =
            match rpc::call::<Charge>(&self.nats, &self.naming, &request, Duration::from_secs(10))
                .await
            {
                Ok(answer) => answer,
                Err(error) => return Step::Retry(error.to_string()),
            };
        crash_point("after_charge");
        match answer {
            ChargeResponse::Succeeded { payment_id } => {
                run.row.payment_id = Uuid::parse_str(&payment_id).ok();
                run.advance("confirm", Some("paid"));
            }
            ChargeResponse::Declined { payment_id, reason } => {
                run.row.payment_id = Uuid::parse_str(&payment_id).ok();
                run.row.failure_reason = Some(format!("payment_declined: {reason}"));
                run.row.payment_token = None;
                run.advance("release", Some("payment_failed"));
            }
            ChargeResponse::Unavailable { reason } => return Step::Retry(reason),
        }
        Step::Next
    }

    /// Settles the order's reservation; `None` if the inventory did not answer.
    async fn settle(&self, run: &Run, action: SettleAction) -> Option<String> {
        let Some(reservation_id) = run.row.reservation_id else {
            return Some("not_found".into());
        };
        let request = SettleRequest {
            reservation_id: reservation_id.to_string(),
            action,
        };
        rpc::call::<Settle>(&self.nats, &self.naming, &request, STEP_TIMEOUT)
            .await
            .ok()
            .map(|answer| answer.status)
    }

    async fn confirm(&self, run: &mut Run) -> Step {
        crash_point("before_confirm");
        let Some(status) = self.settle(run, SettleAction::Confirm).await else {
            return Step::Retry("inventory unavailable".into());
        };
        if status == "confirmed" {
            run.row.payment_token = None;
            run.advance("clear_cart", Some("confirmed"));
            run.emits.push(Emit::Confirmed(OrderConfirmedV1 {
                order_id: run.row.id,
                user_id: run.row.user_id,
                region: run.row.region.clone(),
                lines: store::lines(&run.items),
            }));
        } else {
            // The reservation ran out (expired, or released) before the payment was confirmed:
            // its units may have been sold to someone else, so the order cannot be fulfilled.
            // Nobody keeps money for goods they will not ship: cancel and refund.
            tracing::warn!(order_id = %run.row.id, %status, "a paid order lost its reservation; refunding");
            run.row.failure_reason = Some(format!("reservation_{status}"));
            run.row.payment_token = None;
            run.advance("refund", Some("cancelled"));
            run.emits.push(Emit::Cancelled(OrderCancelledV1 {
                order_id: run.row.id,
                user_id: run.row.user_id,
                reason: format!("reservation_{status}"),
            }));
        }
        Step::Next
    }

    /// Releases (after a declined payment) or restocks (after a cancellation), then goes on to
    /// `then`.
    async fn settle_then(&self, run: &mut Run, action: SettleAction, then: &str) -> Step {
        if self.settle(run, action).await.is_none() {
            return Step::Retry("inventory unavailable".into());
        }
        run.advance(then, None);
        Step::Next
    }

    /// After a cancellation: the payment is refunded in full.
    async fn refund(&self, run: &mut Run) -> Step {
        let Some(payment_id) = run.row.payment_id else {
            run.advance("done", None);
            return Step::Next;
        };
        let request = RefundRequest {
            payment_id: payment_id.to_string(),
            amount: None,
            idempotency_key: format!("{}:refund", run.row.id),
        };
        let answer =
            match rpc::call::<Refund>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await {
                Ok(answer) => answer,
                Err(error) => return Step::Retry(error.to_string()),
            };
        match answer {
            RefundResponse::Refunded { .. } => run.advance("done", Some("refunded")),
            RefundResponse::Refused { reason } => {
                tracing::error!(order_id = %run.row.id, %reason, "the refund of a cancelled order was refused");
                run.row.failure_reason = Some(format!("refund_refused: {reason}"));
                run.advance("done", None);
            }
            RefundResponse::Unavailable { reason } => return Step::Retry(reason),
        }
        Step::Next
    }

    async fn clear_cart(&self, run: &mut Run) -> Step {
        let request = ClearCartRequest {
            user_id: run.row.user_id.to_string(),
        };
        if let Err(error) =
            rpc::call::<ClearCart>(&self.nats, &self.naming, &request, STEP_TIMEOUT).await
        {
            return Step::Retry(error.to_string());
        }
        run.advance("done", None);
        Step::Next
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
                    match self.drive(order_id, None).await {
                        Ok(Drove {
                            driven: Driven::Postponed(reason),
                            ..
                        }) => {
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
