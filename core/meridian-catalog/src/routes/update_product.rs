use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use meridian_platform::{
    ApiResult,
    auth::Caller,
    error::OnConstraint,
    etag,
    extract::{IdPath, Json},
};

use super::create_product::{ensure_category, sku_taken};
use crate::{
    CatalogState,
    domain::ProductInput,
    routes::{ensure_owner, not_found},
    store,
};

/// Replaces a product's writable fields (its seller or an admin). With `If-Match`, the
/// update applies only to the version the caller read; otherwise 412.
#[utoipa::path(
    put, path = "/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path)),
    request_body = ProductInput,
    responses(
        (status = 200, body = store::Product, headers(("ETag" = String))),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 409, body = meridian_platform::error::Problem),
        (status = 412, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update_product(
    State(state): State<CatalogState>,
    caller: Caller,
    IdPath(id): IdPath,
    headers: HeaderMap,
    Json(input): Json<ProductInput>,
) -> ApiResult<Response> {
    let input = input.validate()?;
    let mut tx = state.pool.begin().await?;
    let current = store::product(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    ensure_owner(&caller, &current)?;
    etag::check_if_match(&headers, &etag::of_version(current.version))?;
    ensure_category(&mut tx, &input).await?;
    let product = store::update_product(&mut tx, &state.region, id, &input)
        .await
        .on_unique("products_sku_key", sku_taken)?;
    tx.commit().await?;
    Ok((
        [(header::ETAG, etag::of_version(product.version))],
        Json(product),
    )
        .into_response())
}
