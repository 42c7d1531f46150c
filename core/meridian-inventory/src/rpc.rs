//! The inventory's internal endpoints on NATS, for the order saga.
//!
//! `inventory.reserve` is idempotent by the caller's key exactly as `POST /inventory/reserve`
//! is: the outcome is recorded in the transaction that holds the stock, so a saga that retries
//! after a crash gets the same reservation back, never a second one.

use std::collections::BTreeMap;

use chrono::{Duration, SubsecRound, Utc};
use meridian_contracts::inventory::{
    ListAvailability, Reserve, ReserveRequest, ReserveResponse, Settle, SettleAction,
    SettleRequest, SettleResponse,
};
use meridian_platform::{
    ApiError, ServiceContext,
    idempotency::{self, Recorded},
    rpc,
};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::reservations::{
    self, MAX_ITEMS, MAX_QUANTITY, MAX_TTL_S, MIN_TTL_S, Record, Reservation,
};

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
    let settle_pool = pool.clone();
    let settle = rpc::serve::<Settle, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "inventory",
        move |request| {
            let pool = settle_pool.clone();
            async move { settle(&pool, request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    let availability = rpc::serve::<ListAvailability, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "inventory",
        move |request| {
            let pool = pool.clone();
            async move { crate::store::availability_page(&pool, &request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    Ok(vec![reserve, settle, availability])
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
    // One statement: the stock, the reservation, its event and the recorded answer. A key
    // recorded before fails it (nothing done), and the record answers.
    let reservation = Reservation {
        reservation_id: Uuid::now_v7(),
        region: request.region.clone(),
        status: "held".into(),
        expires_at: Utc::now().trunc_subsecs(6) + ttl,
    };
    let reserved = ReserveResponse::Reserved {
        reservation_id: reservation.reservation_id.to_string(),
        expires_at: reservation.expires_at.to_rfc3339(),
    };
    let outcome = async {
        let body = serde_json::to_vec(&reserved).map_err(|e| Failed::Database(e.to_string()))?;
        let record = Record {
            scope: RESERVE_SCOPE,
            key,
            fingerprint: &fingerprint,
            body: &body,
        };
        let mut conn = pool.acquire().await?;
        let short = match reservations::hold(&mut conn, &reservation, &items, Some(&record)).await {
            Ok(short) if short.is_empty() => {
                meridian_platform::outbox::wake(crate::SCHEMA);
                return Ok(reserved);
            }
            Ok(short) => short,
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        // Short of stock (nothing held), or the key was recorded before: record the shortage
        // unless a record exists, and answer what stands.
        let response = ReserveResponse::Short {
            product_ids: short.iter().map(Uuid::to_string).collect(),
        };
        let body = serde_json::to_vec(&response).map_err(|e| Failed::Database(e.to_string()))?;
        let recorded = if short.is_empty() {
            idempotency::recorded(&mut conn, RESERVE_SCOPE, key, &fingerprint).await
        } else {
            idempotency::record_in(
                &mut conn,
                RESERVE_SCOPE,
                key,
                &fingerprint,
                http::StatusCode::OK,
                &body,
            )
            .await
        };
        match recorded.map_err(Failed::Key)? {
            None => Ok(response),
            Some(Recorded::Completed { body, .. }) => {
                serde_json::from_slice(&body).map_err(|e| Failed::Database(e.to_string()))
            }
            Some(Recorded::Proceed { .. }) => Err(Failed::Database("unexpected claim".into())),
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
