use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    error::OnConstraint,
    etag,
    extract::Json,
};

use crate::{CatalogState, domain::ProductInput, store};

pub(super) fn sku_taken() -> ApiError {
    ApiError::Conflict("a product with this SKU already exists".into())
}

pub(super) async fn ensure_category(
    conn: &mut sqlx::PgConnection,
    input: &ProductInput,
) -> ApiResult<()> {
    if let Some(category_id) = input.category_id
        && !store::category_exists(conn, category_id).await?
    {
        return Err(ApiError::field("category_id", "no such category"));
    }
    Ok(())
}

/// Creates a product sold by the caller (a seller or an admin).
#[utoipa::path(
    post, path = "/products", tag = "catalog",
    request_body = ProductInput,
    responses(
        (status = 201, body = store::Product, headers(("ETag" = String), ("Location" = String))),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 409, description = "The SKU is taken", body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_product(
    State(state): State<CatalogState>,
    caller: Caller,
    Json(input): Json<ProductInput>,
) -> ApiResult<Response> {
    caller.ensure_role(&[Role::Seller, Role::Admin])?;
    let input = input.validate()?;
    let mut tx = state.pool.begin().await?;
    ensure_category(&mut tx, &input).await?;
    let product = store::insert_product(&mut tx, &state.region, caller.user_id, &input)
        .await
        .on_unique("products_sku_key", sku_taken)?;
    tx.commit().await?;
    let location = format!("/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [
            (header::ETAG, etag::of_version(product.version)),
            (
                header::LOCATION,
                header::HeaderValue::from_str(&location).map_err(ApiError::internal)?,
            ),
        ],
        Json(product),
    )
        .into_response())
}
