use axum::extract::State;
use meridian_platform::{
    ApiResult,
    auth::MaybeCaller,
    extract::{Json, Query},
    pagination::{Page, PageParams},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    CatalogState,
    store::{self, ListFilter, Product},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    pub category_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
    /// Items per page: 1 to 100, default 20; larger values are capped at 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Active products, oldest first; a seller listing their own products (`seller_id` = self) and
/// admins also see drafts and archived ones.
#[utoipa::path(
    get, path = "/products", tag = "catalog",
    params(ListQuery),
    responses((status = 200, description = "A page of products", body = Page<Product>))
)]
pub async fn list_products(
    State(state): State<CatalogState>,
    MaybeCaller(caller): MaybeCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Page<Product>>> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    let after: Option<Uuid> = page.cursor()?;
    let all_statuses =
        caller.is_some_and(|caller| caller.is_admin() || query.seller_id == Some(caller.user_id));
    let filter = ListFilter {
        category_id: query.category_id,
        seller_id: query.seller_id,
        all_statuses,
        after,
        limit,
    };
    let mut conn = state.pool.acquire().await?;
    let rows = store::list_products(&mut conn, &filter).await?;
    Ok(Json(Page::from_rows(rows, limit, |p| p.id)))
}
