//! The orders' HTTP routes, one file per action.

mod cancel_order;
mod get_order;
mod list_orders;
mod place_order;
mod ship_order;

use axum::{
    Router,
    routing::{get, post, put},
};
use meridian_platform::{ApiError, auth::Caller};
use utoipa::OpenApi;

use crate::{OrdersState, store::OrderRow};

pub fn router(state: OrdersState) -> Router {
    Router::new()
        .route(
            "/orders",
            get(list_orders::list_orders).post(place_order::place_order),
        )
        .route("/orders/{id}", get(get_order::get_order))
        .route("/orders/{id}/status", get(get_order::order_status))
        .route("/orders/{id}/cancel", put(cancel_order::cancel_order))
        .route("/orders/{id}/ship", post(ship_order::ship_order))
        .with_state(state)
}

/// The order's buyer or an admin; anyone else is told it does not exist.
fn ensure_visible(caller: &Caller, order: &OrderRow) -> Result<(), ApiError> {
    if caller.is_admin() || caller.user_id == order.user_id {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such order".into()))
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        place_order::place_order,
        list_orders::list_orders,
        get_order::get_order,
        get_order::order_status,
        cancel_order::cancel_order,
        ship_order::ship_order,
    ),
    tags((name = "orders", description = "Checkout and orders"))
)]
struct OrdersApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    OrdersApi::openapi()
}
