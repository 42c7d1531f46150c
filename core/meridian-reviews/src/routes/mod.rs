//! The reviews' HTTP routes.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use meridian_contracts::catalog::{GetProductSummary, ProductSummaryRequest};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    error::OnConstraint,
    extract::{IdPath, Json, Query},
    pagination::{Page, PageParams},
    rpc,
    validate::Validator,
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{
    ReviewsState,
    store::{self, NewReview, Rating, Review},
    text,
};

pub fn router(state: ReviewsState) -> Router {
    Router::new()
        .route(
            "/products/{id}/reviews",
            get(list_reviews).post(create_review),
        )
        .route("/reviews/{id}", put(update_review).delete(delete_review))
        .route("/reviews/{id}/hidden", put(hide_review))
        .with_state(state)
}

/// What a review says.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewInput {
    /// 1 to 5.
    pub rating: i64,
    /// 1 to 120 characters of plain text (markup is removed).
    pub title: String,
    /// Up to 5000 characters of plain text (markup is removed).
    #[serde(default)]
    pub body: String,
}

struct Parsed {
    rating: i16,
    title: String,
    body: String,
}

impl ReviewInput {
    fn validate(self) -> ApiResult<Parsed> {
        let title = text::plain(&self.title);
        let body = text::plain(&self.body);
        Validator::new()
            .check(
                (1..=5).contains(&self.rating),
                "rating",
                "must be a whole number from 1 to 5",
            )
            .length("title", &title, 1, 120)
            .length("body", &body, 0, 5000)
            .finish()?;
        Ok(Parsed {
            rating: self.rating as i16,
            title,
            body,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewPage {
    pub items: Vec<Review>,
    pub next_cursor: Option<String>,
    pub rating: Rating,
}

/// A product's visible reviews, newest first, and its rating over them.
#[utoipa::path(
    get, path = "/products/{id}/reviews", tag = "reviews",
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = ReviewPage))
)]
pub async fn list_reviews(
    State(state): State<ReviewsState>,
    IdPath(product_id): IdPath,
    Query(page): Query<PageParams>,
) -> ApiResult<Response> {
    let limit = page.limit()?;
    let before: Option<Uuid> = page.cursor()?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::list(&mut conn, product_id, before, limit).await?;
    let rating = store::rating(&mut conn, product_id).await?;
    let Page { items, next_cursor } = Page::from_rows(rows, limit, |review| review.id);
    // A reviewer expects to see their review at once: no shared cache keeps this.
    Ok((
        [(header::CACHE_CONTROL, "no-cache")],
        Json(ReviewPage {
            items,
            next_cursor,
            rating,
        }),
    )
        .into_response())
}

/// Reviews a product (signed in; one review per user and product).
#[utoipa::path(
    post, path = "/products/{id}/reviews", tag = "reviews",
    params(("id" = Uuid, Path)),
    request_body = ReviewInput,
    responses(
        (status = 201, body = Review),
        (status = 404, description = "No such product for sale"),
        (status = 409, description = "The caller has reviewed this product already"),
        (status = 422, description = "Invalid fields"),
    ),
    security(("bearer" = []))
)]
pub async fn create_review(
    State(state): State<ReviewsState>,
    caller: Caller,
    IdPath(product_id): IdPath,
    Json(input): Json<ReviewInput>,
) -> ApiResult<(StatusCode, Json<Review>)> {
    let input = input.validate()?;
    let request = ProductSummaryRequest {
        product_id: product_id.to_string(),
    };
    let product =
        rpc::call::<GetProductSummary>(&state.nats, &state.naming, &request, rpc::DEFAULT_TIMEOUT)
            .await
            .map_err(|error| ApiError::unavailable("catalog", error))?;
    if product.is_none_or(|p| p.status != "active") {
        return Err(ApiError::NotFound("no such product".into()));
    }
    let mut tx = state.pool.begin().await?;
    let id = store::insert(
        &mut tx,
        &NewReview {
            product_id,
            user_id: caller.user_id,
            rating: input.rating,
            title: &input.title,
            body: &input.body,
        },
    )
    .await
    .on_unique("reviews_one_per_user", || {
        ApiError::Conflict("you have reviewed this product already".into())
    })?;
    let review = store::get(&mut tx, id).await?.ok_or(ApiError::Internal)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(review)))
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such review".into())
}

/// Changes a review (its author only).
#[utoipa::path(
    put, path = "/reviews/{id}", tag = "reviews",
    params(("id" = Uuid, Path)),
    request_body = ReviewInput,
    responses(
        (status = 200, body = Review),
        (status = 403, description = "Not the author"),
        (status = 404, description = "No such review"),
        (status = 422, description = "Invalid fields"),
    ),
    security(("bearer" = []))
)]
pub async fn update_review(
    State(state): State<ReviewsState>,
    caller: Caller,
    IdPath(id): IdPath,
    Json(input): Json<ReviewInput>,
) -> ApiResult<Json<Review>> {
    let input = input.validate()?;
    let mut tx = state.pool.begin().await?;
    let review = store::lock(&mut tx, id).await?.ok_or_else(not_found)?;
    if review.author != caller.user_id {
        return Err(ApiError::Forbidden(
            "only its author may change a review".into(),
        ));
    }
    store::update(&mut tx, review, input.rating, &input.title, &input.body).await?;
    let review = store::get(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(review))
}

/// Removes a review (its author or an admin).
#[utoipa::path(
    delete, path = "/reviews/{id}", tag = "reviews",
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Neither the author nor an admin"),
        (status = 404, description = "No such review"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_review(
    State(state): State<ReviewsState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let review = store::lock(&mut tx, id).await?.ok_or_else(not_found)?;
    caller.ensure_self_or_admin(review.author)?;
    store::delete(&mut tx, review).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HiddenInput {
    pub hidden: bool,
}

/// Hides a review from the product's page and rating, or shows it again (admin).
#[utoipa::path(
    put, path = "/reviews/{id}/hidden", tag = "reviews",
    params(("id" = Uuid, Path)),
    request_body = HiddenInput,
    responses(
        (status = 200, body = Review),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No such review"),
    ),
    security(("bearer" = []))
)]
pub async fn hide_review(
    State(state): State<ReviewsState>,
    caller: Caller,
    IdPath(id): IdPath,
    Json(input): Json<HiddenInput>,
) -> ApiResult<Json<Review>> {
    caller.ensure_role(&[Role::Admin])?;
    let mut tx = state.pool.begin().await?;
    let review = store::lock(&mut tx, id).await?.ok_or_else(not_found)?;
    store::set_hidden(&mut tx, review, input.hidden).await?;
    let review = store::get(&mut tx, id).await?.ok_or_else(not_found)?;
    tx.commit().await?;
    Ok(Json(review))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_reviews, create_review, update_review, delete_review, hide_review),
    tags((name = "reviews", description = "Product reviews and ratings"))
)]
struct ReviewsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ReviewsApi::openapi()
}
