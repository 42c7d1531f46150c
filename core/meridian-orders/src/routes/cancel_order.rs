use axum::extract::State;
use meridian_jetstream::events::orders::OrderCancelledV1;
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Json},
};

use super::ensure_visible;
use crate::{
    OrdersState,
    store::{self, Order},
};

/// Cancels an order before it ships (its buyer or an admin): the stock goes back on sale and
/// the payment is refunded. Cancelling a cancelled order answers it as it is.
#[utoipa::path(
    put, path = "/orders/{id}/cancel", tag = "orders",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "Cancelled (and, once the refund went through, refunded)", body = Order),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 409, description = "Shipped, or its checkout is still running", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_order(
    State(state): State<OrdersState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<Order>> {
    let mut tx = state.pool.begin().await?;
    let row: store::OrderRow = sqlx::query_as("SELECT * FROM orders WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such order".into()))?;
    ensure_visible(&caller, &row)?;
    match (row.status.as_str(), row.saga_step.as_str()) {
        ("cancelled" | "refunded" | "payment_failed", _) => {}
        ("shipped" | "delivered", _) => {
            return Err(ApiError::Conflict(
                "the order has shipped; it can no longer be cancelled".into(),
            ));
        }
        ("confirmed", "done") => {
            sqlx::query(
                "UPDATE orders SET status = 'cancelled', saga_step = 'restock', attempts = 0, \
                 updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            store::record_status(&mut tx, id, "cancelled").await?;
            let event = OrderCancelledV1 {
                order_id: id,
                user_id: row.user_id,
                reason: if caller.is_admin() {
                    "cancelled_by_admin"
                } else {
                    "cancelled_by_buyer"
                }
                .into(),
            };
            store::emit(&mut tx, &row.region, id, 4, event).await?;
        }
        _ => {
            return Err(ApiError::Conflict(
                "the order's checkout is still running; try again shortly".into(),
            ));
        }
    }
    tx.commit().await?;
    // Restock and refund now; if a dependency is down, the resumer finishes later.
    let drove = state.saga.drive(id, None).await?;
    let order = drove
        .order
        .ok_or_else(|| ApiError::internal("a cancelled order vanished"))?;
    Ok(Json(order))
}
