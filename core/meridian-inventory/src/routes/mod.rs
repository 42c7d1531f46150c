//! The inventory's HTTP routes, one file per action.

mod get_stock;
mod release;
mod reserve;
mod set_stock;

use axum::{
    Router,
    routing::{get, post},
};
use utoipa::OpenApi;

use crate::InventoryState;

pub fn router(state: InventoryState) -> Router {
    Router::new()
        .route(
            "/inventory/{id}",
            get(get_stock::get_stock).put(set_stock::set_stock),
        )
        .route("/inventory/reserve", post(reserve::reserve))
        .route("/inventory/release", post(release::release))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_stock::get_stock,
        set_stock::set_stock,
        reserve::reserve,
        release::release
    ),
    tags((name = "inventory", description = "Stock per product and region"))
)]
struct InventoryApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    InventoryApi::openapi()
}
