use axum::extract::State;
use meridian_contracts::catalog::{GetProductSummary, ProductSummary, ProductSummaryRequest};
use meridian_platform::{
    ApiError, ApiResult,
    extract::{IdPath, Json},
    rpc,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    InventoryState,
    store::{self, RegionStock},
};

/// A product's stock: totals over every region, and each region's own numbers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stock {
    pub product_id: Uuid,
    /// Units available in all regions together; each region sells only its own.
    pub available: i64,
    pub reserved: i64,
    pub regions: Vec<RegionStock>,
}

/// Asks the catalog who sells the product; `None` when it does not exist.
pub(super) async fn product_summary(
    state: &InventoryState,
    product_id: Uuid,
) -> ApiResult<Option<ProductSummary>> {
    let request = ProductSummaryRequest {
        product_id: product_id.to_string(),
    };
    rpc::call::<GetProductSummary>(&state.nats, &state.naming, &request, rpc::DEFAULT_TIMEOUT)
        .await
        .map_err(|error| ApiError::unavailable("catalog", error))
}

/// The product's stock in every configured region (zero where none was set).
#[utoipa::path(
    get, path = "/inventory/{id}", tag = "inventory",
    params(("id" = uuid::Uuid, Path, description = "The product id")),
    responses(
        (status = 200, body = Stock),
        (status = 404, body = meridian_platform::error::Problem),
    )
)]
pub async fn get_stock(
    State(state): State<InventoryState>,
    IdPath(product_id): IdPath,
) -> ApiResult<Json<Stock>> {
    let mut conn = state.pool.acquire().await?;
    let mut regions = store::stock(&mut conn, product_id).await?;
    drop(conn);
    if regions.is_empty() && product_summary(&state, product_id).await?.is_none() {
        return Err(ApiError::NotFound("no such product".into()));
    }
    for region in &state.regions {
        if !regions.iter().any(|r| &r.region == region) {
            regions.push(RegionStock {
                region: region.clone(),
                available: 0,
                reserved: 0,
            });
        }
    }
    regions.sort_by(|a, b| a.region.cmp(&b.region));
    Ok(Json(Stock {
        product_id,
        available: regions.iter().map(|r| i64::from(r.available)).sum(),
        reserved: regions.iter().map(|r| i64::from(r.reserved)).sum(),
        regions,
    }))
}
