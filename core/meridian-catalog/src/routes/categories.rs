use std::collections::HashMap;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    error::OnConstraint,
    extract::Json,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    CatalogState,
    domain::CategoryInput,
    store::{self, Category},
};

/// A category with its sub-categories.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryNode {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// Builds the forest of `categories`, each level sorted by name.
fn tree(categories: Vec<Category>) -> Vec<CategoryNode> {
    let mut by_parent: HashMap<Option<Uuid>, Vec<Category>> = HashMap::new();
    for category in categories {
        by_parent
            .entry(category.parent_id)
            .or_default()
            .push(category);
    }
    fn build(
        parent: Option<Uuid>,
        by_parent: &mut HashMap<Option<Uuid>, Vec<Category>>,
    ) -> Vec<CategoryNode> {
        let children = by_parent.remove(&parent).unwrap_or_default();
        children
            .into_iter()
            .map(|c| CategoryNode {
                children: build(Some(c.id), by_parent),
                id: c.id,
                name: c.name,
                slug: c.slug,
                parent_id: c.parent_id,
            })
            .collect()
    }
    build(None, &mut by_parent)
}

/// The category tree.
#[utoipa::path(
    get, path = "/categories", tag = "catalog",
    responses((status = 200, body = Vec<CategoryNode>))
)]
pub async fn list_categories(State(state): State<CatalogState>) -> ApiResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let categories = store::categories(&mut conn).await?;
    Ok((
        [(
            header::CACHE_CONTROL,
            "public, max-age=60, stale-while-revalidate=60, stale-if-error=600",
        )],
        Json(tree(categories)),
    )
        .into_response())
}

/// Creates a category (admin only).
#[utoipa::path(
    post, path = "/categories", tag = "catalog",
    request_body = CategoryInput,
    responses(
        (status = 201, body = Category),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 409, description = "The slug is taken", body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_category(
    State(state): State<CatalogState>,
    caller: Caller,
    Json(input): Json<CategoryInput>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    caller.ensure_role(&[Role::Admin])?;
    let input = input.validate()?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('catalog.categories'))")
        .execute(&mut *tx)
        .await?;
    if store::count_categories(&mut tx).await? >= store::MAX_CATEGORIES {
        return Err(ApiError::field(
            "name",
            "the catalog holds its maximum of 1000 categories",
        ));
    }
    if let Some(parent_id) = input.parent_id
        && !store::category_exists(&mut tx, parent_id).await?
    {
        return Err(ApiError::field("parent_id", "no such category"));
    }
    let category = store::insert_category(&mut tx, &input)
        .await
        .on_unique("categories_slug_key", || {
            ApiError::Conflict("a category with this slug already exists".into())
        })?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(category)))
}
