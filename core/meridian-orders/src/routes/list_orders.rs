use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{Json, Query},
    pagination::{Page, PageParams},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    OrdersState,
    store::{self, Order},
};

const STATUSES: &[&str] = &[
    "pending",
    "reserved",
    "paid",
    "confirmed",
    "shipped",
    "delivered",
    "payment_failed",
    "cancelled",
    "refunded",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Admins only: filter by status.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// The caller's orders, oldest first; an admin sees everyone's.
#[utoipa::path(
    get, path = "/orders", tag = "orders",
    params(ListQuery),
    responses((status = 200, body = Page<Order>)),
    security(("bearer" = []))
)]
pub async fn list_orders(
    State(state): State<OrdersState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Page<Order>>> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let after: Option<Uuid> = page.cursor()?;
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::field("status", "not an order status"));
    }
    let user = (!caller.is_admin()).then_some(caller.user_id);
    let mut conn = state.pool.acquire().await?;
    let rows = store::list(&mut conn, user, query.status.as_deref(), after, limit).await?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        let items = store::items(&mut conn, row.id).await?;
        orders.push(row.into_order(items));
    }
    Ok(Json(Page::from_rows(orders, limit, |o| o.id)))
}
