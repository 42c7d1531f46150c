use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use meridian_platform::{ApiResult, auth::Caller, etag, extract::IdPath};

use crate::{
    CatalogState,
    routes::{ensure_owner, not_found},
    store,
};

/// Deletes a product (its seller or an admin); honours `If-Match`.
#[utoipa::path(
    delete, path = "/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 412, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn delete_product(
    State(state): State<CatalogState>,
    caller: Caller,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let product = store::product(&mut tx, id, true)
        .await?
        .ok_or_else(not_found)?;
    ensure_owner(&caller, &product)?;
    etag::check_if_match(&headers, &etag::of_version(product.version))?;
    store::delete_product(&mut tx, &state.region, &product).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
