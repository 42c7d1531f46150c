use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{IdPath, Json},
    validate::Validator,
};
use serde::Deserialize;

use super::get_stock::product_summary;
use crate::{
    InventoryState,
    store::{self, MAX_AVAILABLE, RegionStock},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetStockRequest {
    /// One of the configured regions.
    pub region: String,
    /// Units available for sale in that region, 0 to 1000000.
    pub available: i64,
}

/// Sets a region's available units of a product (an admin, or the product's seller).
#[utoipa::path(
    put, path = "/inventory/{id}", tag = "inventory",
    params(("id" = uuid::Uuid, Path, description = "The product id")),
    request_body = SetStockRequest,
    responses(
        (status = 200, body = RegionStock),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn set_stock(
    State(state): State<InventoryState>,
    caller: Caller,
    IdPath(product_id): IdPath,
    Json(request): Json<SetStockRequest>,
) -> ApiResult<Json<RegionStock>> {
    caller.ensure_role(&[Role::Admin, Role::Seller])?;
    Validator::new()
        .check(
            state.regions.contains(&request.region),
            "region",
            format!("must be one of {}", state.regions.join(", ")),
        )
        .check(
            (0..=i64::from(MAX_AVAILABLE)).contains(&request.available),
            "available",
            "must be a whole number from 0 to 1000000",
        )
        .finish()?;
    let product = product_summary(&state, product_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such product".into()))?;
    if !caller.is_admin() && product.seller_id != caller.user_id.to_string() {
        return Err(ApiError::Forbidden(
            "only the product's seller or an admin may set its stock".into(),
        ));
    }
    let available = i32::try_from(request.available).map_err(ApiError::internal)?;
    let mut conn = state.pool.acquire().await?;
    let stock = store::set_available(&mut conn, product_id, &request.region, available).await?;
    tracing::info!(%product_id, region = %stock.region, available, "stock set");
    Ok(Json(stock))
}
