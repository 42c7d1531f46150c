use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Json},
};
use serde::Serialize;

use super::ensure_visible;
use crate::{
    OrdersState,
    store::{self, Order, StatusChange},
};

fn not_found() -> ApiError {
    ApiError::NotFound("no such order".into())
}

/// An order: its buyer or an admin.
#[utoipa::path(
    get, path = "/orders/{id}", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = meridian_platform::error::Problem)),
    security(("bearer" = []))
)]
pub async fn get_order(
    State(state): State<OrdersState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<Order>> {
    let mut conn = state.pool.acquire().await?;
    let row = store::row(&mut conn, id).await?.ok_or_else(not_found)?;
    ensure_visible(&caller, &row)?;
    let items = store::items(&mut conn, id).await?;
    Ok(Json(row.into_order(items)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderStatus {
    pub status: String,
    pub history: Vec<StatusChange>,
}

/// An order's status and every status it went through.
#[utoipa::path(
    get, path = "/orders/{id}/status", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = OrderStatus), (status = 404, body = meridian_platform::error::Problem)),
    security(("bearer" = []))
)]
pub async fn order_status(
    State(state): State<OrdersState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<OrderStatus>> {
    let mut conn = state.pool.acquire().await?;
    let row = store::row(&mut conn, id).await?.ok_or_else(not_found)?;
    ensure_visible(&caller, &row)?;
    let history = store::history(&mut conn, id).await?;
    Ok(Json(OrderStatus {
        status: row.status,
        history,
    }))
}
