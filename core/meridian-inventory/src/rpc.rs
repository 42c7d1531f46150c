//! The inventory's internal endpoints on NATS, for the order saga.
//!
//! `inventory.reserve` is idempotent by the caller's key exactly as `POST /inventory/reserve`
//! is: the outcome is recorded in the transaction that holds the stock, so a saga that retries
//! after a crash gets the same reservation back, never a second one.

use std::collections::BTreeMap;

use chrono::Duration;
use meridian_contracts::inventory::{
    Reserve, ReserveRequest, ReserveResponse, Settle, SettleAction, SettleRequest, SettleResponse,
};
use meridian_platform::{
    ApiError, ServiceContext,
    idempotency::{self, Recorded},
    rpc,
};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::reservations::{self, MAX_ITEMS, MAX_QUANTITY, MAX_TTL_S, MIN_TTL_S, ReserveError};

const RESERVE_SCOPE: &str = "rpc:inventory.reserve";

pub async fn serve(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let reserve_pool = pool.clone();
    let reserve = rpc::serve::<Reserve, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "inventory",
        move |request| {
            let pool = reserve_pool.clone();
            async move { reserve(&pool, request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    let settle = rpc::serve::<Settle, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "inventory",
        move |request| {
            let pool = pool.clone();
            async move { settle(&pool, request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(vec![reserve, settle])
}

fn describe(error: ApiError) -> String {
    match error {
        ApiError::Conflict(_) => "in_flight: the same key is being processed".into(),
        ApiError::Unprocessable { .. } => "key_reused: the key was used for another request".into(),
        other => format!("unavailable: {other}"),
    }
}

async fn reserve(pool: &PgPool, request: ReserveRequest) -> Result<ReserveResponse, String> {
    if request.items.is_empty() || request.items.len() > MAX_ITEMS {
        return Err("invalid: 1 to 100 items".into());
    }
    if !(MIN_TTL_S..=MAX_TTL_S).contains(&request.ttl_seconds) {
        return Err("invalid: ttl_seconds out of range".into());
    }
    let mut items = BTreeMap::new();
    for item in &request.items {
        let product = Uuid::parse_str(&item.product_id).map_err(|_| "invalid: product id")?;
        if !(1..=MAX_QUANTITY).contains(&item.quantity)
            || items.insert(product, item.quantity).is_some()
        {
            return Err("invalid: quantities 1 to 1000, each product once".into());
        }
    }
    let fingerprint =
        idempotency::fingerprint(&serde_json::to_value(&request).map_err(|e| e.to_string())?);
    let key = &request.idempotency_key;
    let ttl = Duration::seconds(request.ttl_seconds);
    // One transaction: the stock, the reservation, its event and the recorded answer. A
    // request that finds the key recorded rolls its own work back and answers the record.
    let outcome = async {
        let mut tx = pool.begin().await?;
        let response = match reservations::reserve_in(&mut tx, &request.region, &items, ttl).await {
            Ok(reservation) => ReserveResponse::Reserved {
                reservation_id: reservation.reservation_id.to_string(),
                expires_at: reservation.expires_at.to_rfc3339(),
            },
            Err(ReserveError::Short(products)) => {
                tx.rollback().await?;
                tx = pool.begin().await?;
                ReserveResponse::Short {
                    product_ids: products.iter().map(Uuid::to_string).collect(),
                }
            }
            Err(ReserveError::Database(error)) => return Err(Failed::Database(error)),
        };
        let body = serde_json::to_vec(&response).map_err(|e| Failed::Database(e.to_string()))?;
        let recorded = idempotency::record_in(
            &mut tx,
            RESERVE_SCOPE,
            key,
            &fingerprint,
            http::StatusCode::OK,
            &body,
        )
        .await
        .map_err(Failed::Key)?;
        match recorded {
            None => {
                tx.commit().await?;
                Ok(response)
            }
            Some(Recorded::Completed { body, .. }) => {
                tx.rollback().await?;
                serde_json::from_slice(&body).map_err(|e| Failed::Database(e.to_string()))
            }
            Some(Recorded::Proceed) => Err(Failed::Database("unexpected claim".into())),
        }
    }
    .await;
    match outcome {
        Ok(response) => Ok(response),
        Err(Failed::Key(error)) => Err(describe(error)),
        Err(Failed::Database(error)) => {
            tracing::warn!(%error, "inventory.reserve failed");
            Err("unavailable: the inventory database failed".into())
        }
    }
}

/// Why a reservation was not answered.
enum Failed {
    Database(String),
    /// The key was reused for another request, or is held by one in flight.
    Key(ApiError),
}

impl From<sqlx::Error> for Failed {
    fn from(error: sqlx::Error) -> Self {
        Failed::Database(error.to_string())
    }
}

async fn settle(pool: &PgPool, request: SettleRequest) -> Result<SettleResponse, String> {
    let Ok(id) = Uuid::parse_str(&request.reservation_id) else {
        return Ok(SettleResponse {
            status: "not_found".into(),
        });
    };
    let result = match request.action {
        SettleAction::Confirm => reservations::confirm(pool, id).await,
        SettleAction::Release => reservations::release(pool, id).await,
        SettleAction::Restock => reservations::restock(pool, id).await,
    };
    match result {
        Ok((reservations::Transition::NotFound, _)) => Ok(SettleResponse {
            status: "not_found".into(),
        }),
        Ok((_, status)) => Ok(SettleResponse { status }),
        Err(error) => {
            tracing::warn!(%error, "inventory.settle failed");
            Err("unavailable: the inventory database failed".into())
        }
    }
}
