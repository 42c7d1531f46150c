use axum::extract::State;
use meridian_jetstream::events::orders::OrderShippedV1;
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{IdPath, Json},
};

use crate::{
    OrdersState,
    store::{self, Order},
};

/// Marks a confirmed order shipped (an admin, or a seller of one of its products).
#[utoipa::path(
    post, path = "/orders/{id}/ship", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = Order),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 409, description = "Not confirmed (or already shipped)", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn ship_order(
    State(state): State<OrdersState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<Order>> {
    caller.ensure_role(&[Role::Admin, Role::Seller])?;
    let mut tx = state.pool.begin().await?;
    let row: store::OrderRow = sqlx::query_as("SELECT * FROM orders WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such order".into()))?;
    let items = store::items(&mut tx, id).await?;
    if !caller.is_admin() && !items.iter().any(|i| i.seller_id == caller.user_id) {
        return Err(ApiError::Forbidden(
            "only an admin or a seller of this order may ship it".into(),
        ));
    }
    if row.status != "confirmed" || row.saga_step != "done" {
        return Err(ApiError::Conflict(format!(
            "an order that is {} cannot be shipped",
            row.status
        )));
    }
    sqlx::query("UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    store::record_status(&mut tx, id, "shipped").await?;
    let event = OrderShippedV1 {
        order_id: id,
        user_id: row.user_id,
    };
    store::emit(&mut tx, &row.region, id, 4, event).await?;
    let order = store::order(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::internal("vanished"))?;
    tx.commit().await?;
    Ok(Json(order))
}
