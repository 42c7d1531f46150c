use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use meridian_platform::{
    ApiResult,
    auth::MaybeCaller,
    etag,
    extract::{IdPath, Json},
};

use crate::{CatalogState, routes::not_found, store};

/// Shared caches may keep an active product briefly; the edge purges it on change.
/// A stale copy may be served for a minute while one request refreshes it, and for ten while
/// the catalog cannot answer: a shop that shows a product priced as it was minutes ago beats
/// one that shows an error (checkout re-checks every price).
const PUBLIC_CACHE: &str = "public, max-age=30, stale-while-revalidate=60, stale-if-error=600";

/// A product. Drafts and archived products are visible to their seller and admins only.
/// Answers 304 when `If-None-Match` names the current version.
#[utoipa::path(
    get, path = "/products/{id}", tag = "catalog",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = store::Product, headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified"),
        (status = 404, body = meridian_platform::error::Problem),
    )
)]
pub async fn get_product(
    State(state): State<CatalogState>,
    MaybeCaller(caller): MaybeCaller,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let product = store::product(&mut conn, id, false)
        .await?
        .ok_or_else(not_found)?;
    let cache_control = if product.is_active() {
        PUBLIC_CACHE
    } else if caller.is_some_and(|c| c.is_admin() || c.user_id == product.seller_id) {
        "private, no-store"
    } else {
        return Err(not_found());
    };
    let etag = etag::of_version(product.version);
    let cache_headers = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(cache_control),
        ),
    ];
    if etag::not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    Ok((cache_headers, Json(product)).into_response())
}
