use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Duration;
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::Json,
    idempotency::{self, Claim},
    validate::Validator,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    InventoryState,
    reservations::{self, MAX_ITEMS, MAX_QUANTITY, MAX_TTL_S, MIN_TTL_S, ReserveError},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReserveItem {
    pub product_id: Uuid,
    /// 1 to 1000.
    pub quantity: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReserveRequest {
    /// 1 to 100 distinct products.
    pub items: Vec<ReserveItem>,
    /// 10 to 3600 seconds; 600 by default.
    pub ttl_seconds: Option<i64>,
    /// The region whose stock to hold; this core's region by default.
    pub region: Option<String>,
}

struct Parsed {
    items: BTreeMap<Uuid, i32>,
    ttl: Duration,
    region: String,
}

fn parse(request: ReserveRequest, state: &InventoryState, home: &str) -> ApiResult<Parsed> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_ITEMS).contains(&request.items.len()),
        "items",
        "must list 1 to 100 products",
    );
    let mut items = BTreeMap::new();
    for item in &request.items {
        v.check(
            (1..=i64::from(MAX_QUANTITY)).contains(&item.quantity),
            "quantity",
            "each quantity must be a whole number from 1 to 1000",
        );
        let quantity = i32::try_from(item.quantity).unwrap_or(0);
        v.check(
            items.insert(item.product_id, quantity).is_none(),
            "items",
            "each product may appear once",
        );
    }
    let ttl = request.ttl_seconds.unwrap_or(reservations::DEFAULT_TTL_S);
    v.check(
        (MIN_TTL_S..=MAX_TTL_S).contains(&ttl),
        "ttl_seconds",
        "must be from 10 to 3600",
    );
    let region = request.region.unwrap_or_else(|| home.to_owned());
    v.check(
        state.regions.contains(&region),
        "region",
        format!("must be one of {}", state.regions.join(", ")),
    );
    v.finish()?;
    Ok(Parsed {
        items,
        ttl: Duration::seconds(ttl),
        region,
    })
}

/// Holds stock of one region for a while, all items or none (admin, or internal callers).
/// Requires `Idempotency-Key`: a replay answers what the first request got.
#[utoipa::path(
    post, path = "/inventory/reserve", tag = "inventory",
    request_body = ReserveRequest,
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters")),
    responses(
        (status = 201, body = reservations::Reservation),
        (status = 400, description = "No or a malformed Idempotency-Key", body = meridian_platform::error::Problem),
        (status = 409, description = "Some product is short (nothing was reserved), or the key is in flight", body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn reserve(
    State(state): State<InventoryState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    caller.ensure_role(&[Role::Admin])?;
    let (key, fingerprint, request): (_, _, ReserveRequest) =
        idempotency::keyed_request(&headers, body)?;
    let parsed = parse(request, &state, &state.region)?;
    let scope = format!("{}:reserve", caller.user_id);
    if let Claim::Replay(response) =
        idempotency::claim(&state.pool, &scope, &key, &fingerprint).await?
    {
        return Ok(response);
    }
    let mut tx = state.pool.begin().await?;
    let (status, bytes) =
        match reservations::reserve_in(&mut tx, &parsed.region, &parsed.items, parsed.ttl).await {
            Ok(reservation) => {
                idempotency::recordable((StatusCode::CREATED, Json(reservation)).into_response())
                    .await?
            }
            Err(ReserveError::Short(products)) => {
                tx.rollback().await?;
                tx = state.pool.begin().await?;
                let names: Vec<String> = products.iter().map(Uuid::to_string).collect();
                let problem = ApiError::Conflict(format!(
                    "not enough stock for: {}; nothing was reserved",
                    names.join(", ")
                ));
                idempotency::recordable(problem.into_response()).await?
            }
            Err(ReserveError::Database(error)) => {
                drop(tx);
                idempotency::abandon(&state.pool, &scope, &key).await;
                return Err(ApiError::unavailable("database", error));
            }
        };
    idempotency::complete(&mut tx, &scope, &key, status, &bytes).await?;
    tx.commit().await?;
    meridian_platform::outbox::wake(crate::SCHEMA);
    Ok(idempotency::respond(status, bytes))
}
