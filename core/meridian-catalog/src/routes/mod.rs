//! The catalog's HTTP routes, one file per action.

mod categories;
mod create_product;
mod delete_product;
mod get_product;
mod list_products;
mod update_product;

use axum::{Router, routing::get};
use meridian_platform::{ApiError, auth::Caller};
use utoipa::OpenApi;

use crate::{CatalogState, store::Product};

pub fn router(state: CatalogState) -> Router {
    Router::new()
        .route(
            "/products",
            get(list_products::list_products).post(create_product::create_product),
        )
        .route(
            "/products/{id}",
            get(get_product::get_product)
                .put(update_product::update_product)
                .delete(delete_product::delete_product),
        )
        .route(
            "/categories",
            get(categories::list_categories).post(categories::create_category),
        )
        .with_state(state)
}

/// Only the product's seller or an admin may change it.
fn ensure_owner(caller: &Caller, product: &Product) -> Result<(), ApiError> {
    if caller.is_admin() || caller.user_id == product.seller_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the product's seller or an admin may change it".into(),
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such product".into())
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_products::list_products,
        get_product::get_product,
        create_product::create_product,
        update_product::update_product,
        delete_product::delete_product,
        categories::list_categories,
        categories::create_category,
    ),
    tags((name = "catalog", description = "Products and categories"))
)]
struct CatalogApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    CatalogApi::openapi()
}
