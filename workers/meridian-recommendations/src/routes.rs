//! `GET /recommendations/product/{id}` (anyone) and `GET /recommendations/user/{id}` (the user
//! or an admin).

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Query},
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{RecommendationsState, recommend};

/// At most this many items per answer.
pub const MAX_LIMIT: i64 = 50;
const DEFAULT_LIMIT: i64 = 10;

pub fn router(state: RecommendationsState) -> Router {
    Router::new()
        .route("/recommendations/product/{id}", get(for_product))
        .route("/recommendations/user/{id}", get(for_user))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LimitQuery {
    /// Items: 1 to 50, default 10.
    pub limit: Option<i64>,
}

impl LimitQuery {
    fn limit(&self) -> ApiResult<usize> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            n @ 1..=MAX_LIMIT => Ok(n as usize),
            _ => Err(ApiError::field("limit", "must be between 1 and 50")),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub product_id: Uuid,
    /// Higher is a better match; comparable within one answer only.
    pub score: f32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecommendationList {
    pub items: Vec<Item>,
    /// What produced the answer: `all-MiniLM-L6-v2` (content similarity, with what sells in
    /// the region), `all-MiniLM-L6-v2+co-purchase` (also what was bought together), or
    /// `popularity/<region>` (best sellers, for a user without a history).
    pub model: String,
}

fn answer(recommendations: recommend::Recommendations, cache: &'static str) -> Response {
    let body = RecommendationList {
        items: recommendations
            .items
            .into_iter()
            .map(|s| Item {
                product_id: s.id,
                score: s.score,
            })
            .collect(),
        model: recommendations.model,
    };
    ([(header::CACHE_CONTROL, cache)], axum::Json(body)).into_response()
}

/// Products like this one and bought with it, for sale.
#[utoipa::path(
    get, path = "/recommendations/product/{id}", tag = "recommendations",
    params(("id" = Uuid, Path), LimitQuery),
    responses(
        (status = 200, body = RecommendationList),
        (status = 404, description = "No such product for sale", body = meridian_platform::error::Problem),
    )
)]
pub async fn for_product(
    State(state): State<RecommendationsState>,
    IdPath(product_id): IdPath,
    Query(query): Query<LimitQuery>,
) -> ApiResult<Response> {
    let limit = query.limit()?;
    let found = recommend::for_product(
        &state.pool,
        &state.vectors,
        &state.model,
        product_id,
        &state.region,
        limit,
    )
    .await?
    .ok_or_else(|| ApiError::NotFound("no such product for sale".into()))?;
    Ok(answer(found, "public, max-age=60"))
}

/// For a user: like what they bought lately; without a history, the region's best sellers.
#[utoipa::path(
    get, path = "/recommendations/user/{id}", tag = "recommendations",
    params(("id" = Uuid, Path), LimitQuery),
    responses(
        (status = 200, body = RecommendationList),
        (status = 403, description = "Another user's", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn for_user(
    State(state): State<RecommendationsState>,
    caller: Caller,
    IdPath(user_id): IdPath,
    Query(query): Query<LimitQuery>,
) -> ApiResult<Response> {
    caller.ensure_self_or_admin(user_id)?;
    let limit = query.limit()?;
    let found = recommend::for_user(
        &state.pool,
        &state.vectors,
        &state.model,
        user_id,
        &state.region,
        limit,
    )
    .await?;
    Ok(answer(found, "private, no-store"))
}

#[derive(OpenApi)]
#[openapi(
    paths(for_product, for_user),
    tags((name = "recommendations", description = "Products to show next"))
)]
struct RecommendationsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    RecommendationsApi::openapi()
}
