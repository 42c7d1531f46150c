//! The search service's HTTP routes.

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{Json, Query},
    pagination,
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{
    SearchState,
    index::SearchIndex,
    indexer::Rebuilt,
    query::{self, Facets, MAX_OFFSET, PRICE_BUCKETS, SearchRequest, Sort},
};

/// The longest query read, in bytes.
pub const MAX_QUERY_BYTES: usize = 200;
/// How many completions `/search/suggestions` gives at most.
const SUGGESTIONS: usize = 10;
/// Categories among them at most.
const CATEGORY_SUGGESTIONS: usize = 3;

/// Search answers may be a second old: the index itself trails the catalog by about that.
const CACHE_CONTROL: &str = "public, max-age=1";

pub fn router(state: SearchState) -> Router {
    Router::new()
        .route("/search", get(search))
        .route("/search/suggestions", get(suggestions))
        .route("/search/filters", get(filters))
        .route("/search/reindex", post(reindex))
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Words to look for; every word must match (words of 5 letters or more also with one
    /// typo). Empty or absent: every product, newest first unless `sort` says otherwise.
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    /// Lowest price, in minor units, inclusive.
    pub min_price: Option<i64>,
    /// Highest price, in minor units, inclusive.
    pub max_price: Option<i64>,
    /// `true`: only products with units on sale in this region; `false`: only those without.
    pub in_stock: Option<bool>,
    /// `relevance` (default), `price_asc`, `price_desc` or `newest`.
    pub sort: Option<String>,
    /// Items per page: 1 to 100, default 20; larger values are capped at 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (pages reach 10,000 hits deep at most).
    pub cursor: Option<String>,
}

/// Where the next page starts, and which search it belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    o: usize,
    h: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    /// Products as `{id, sku, name, description (cut to 300 characters), price, category_id,
    /// seller_id, attributes, images, in_stock, score}`.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    /// How many products match, exactly.
    pub total: u64,
    pub facets: FacetCounts,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FacetCounts {
    /// Matches per category, largest first (products without a category are not listed).
    pub category: Vec<CategoryCount>,
    /// Matches per price range, in minor units: `min` inclusive, `max` exclusive (`null`:
    /// no upper end); empty ranges are left out.
    pub price: Vec<PriceCount>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CategoryCount {
    pub id: Uuid,
    pub name: String,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriceCount {
    pub min: i64,
    pub max: Option<i64>,
    pub count: u64,
}

fn index(state: &SearchState) -> ApiResult<Arc<SearchIndex>> {
    state.engine.current().ok_or_else(|| {
        ApiError::Unavailable("the search index is being built; try again shortly".into())
    })
}

fn parse_sort(sort: Option<&str>) -> ApiResult<Sort> {
    match sort.unwrap_or("relevance") {
        "relevance" => Ok(Sort::Relevance),
        "price_asc" => Ok(Sort::PriceAsc),
        "price_desc" => Ok(Sort::PriceDesc),
        "newest" => Ok(Sort::Newest),
        _ => Err(ApiError::field(
            "sort",
            "must be one of relevance, price_asc, price_desc, newest",
        )),
    }
}

/// A digest of what selects the hits, so a cursor is refused for another search.
fn search_digest(request: &SearchRequest) -> u64 {
    let text = format!(
        "{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{}",
        request.q,
        request.category_id,
        request.min_price,
        request.max_price,
        request.in_stock,
        request.sort,
        request.limit
    );
    // FNV-1a: stable across processes and releases, unlike the std hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn search_request(query: SearchQuery) -> ApiResult<SearchRequest> {
    let q = query.q.unwrap_or_default();
    if q.len() > MAX_QUERY_BYTES {
        return Err(ApiError::field(
            "q",
            format!("must be at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    for (field, price) in [
        ("min_price", query.min_price),
        ("max_price", query.max_price),
    ] {
        if price.is_some_and(|p| p < 0) {
            return Err(ApiError::field(field, "must not be negative"));
        }
    }
    if let (Some(min), Some(max)) = (query.min_price, query.max_price)
        && min > max
    {
        return Err(ApiError::field("min_price", "must not exceed max_price"));
    }
    let page = pagination::PageParams {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()? as usize;
    let mut request = SearchRequest {
        q,
        category_id: query.category_id,
        min_price: query.min_price,
        max_price: query.max_price,
        in_stock: query.in_stock,
        sort: parse_sort(query.sort.as_deref())?,
        offset: 0,
        limit,
    };
    if let Some(cursor) = page.cursor::<Cursor>()? {
        if cursor.h != search_digest(&request) || cursor.o > MAX_OFFSET {
            return Err(ApiError::BadRequest(
                "the cursor belongs to another search".into(),
            ));
        }
        request.offset = cursor.o;
    }
    Ok(request)
}

fn facet_counts(state: &SearchState, facets: &Facets) -> FacetCounts {
    let category = facets
        .categories
        .iter()
        .filter_map(|(id, count)| {
            let id = (*id)?;
            Some(CategoryCount {
                id,
                name: state.categories.name(id).unwrap_or_default(),
                count: *count,
            })
        })
        .collect();
    let price = facets
        .prices
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(i, count)| PriceCount {
            min: PRICE_BUCKETS[i],
            max: PRICE_BUCKETS.get(i + 1).copied(),
            count: *count,
        })
        .collect();
    FacetCounts { category, price }
}

fn cacheable(body: impl Serialize) -> Response {
    ([(header::CACHE_CONTROL, CACHE_CONTROL)], axum::Json(body)).into_response()
}

/// Full-text search over the products for sale, with filters, exact facet counts and sorts.
#[utoipa::path(
    get, path = "/search", tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, description = "A cursor from another search"),
        (status = 422, description = "A bad parameter"),
        (status = 503, description = "The index is being built"),
    )
)]
pub async fn search(
    State(state): State<SearchState>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Response> {
    let request = search_request(query)?;
    let index = index(&state)?;
    let digest = search_digest(&request);
    let (request, results) = tokio::task::spawn_blocking(move || {
        let results = query::search(&index, &request);
        (request, results)
    })
    .await
    .map_err(ApiError::internal)?;
    let results = results.map_err(ApiError::internal)?;
    let relevance = request.sort == Sort::Relevance;
    let items = results
        .hits
        .iter()
        .map(|(json, score)| {
            let mut item: serde_json::Value =
                serde_json::from_str(json).unwrap_or(serde_json::Value::Null);
            if relevance && let Some(object) = item.as_object_mut() {
                object.insert("score".into(), serde_json::json!(score));
            }
            item
        })
        .collect::<Vec<_>>();
    let next = request.offset + items.len();
    let next_cursor =
        (items.len() == request.limit && (next as u64) < results.total && next <= MAX_OFFSET)
            .then(|| pagination::encode(&Cursor { o: next, h: digest }));
    Ok(cacheable(SearchResponse {
        items,
        total: results.total,
        facets: facet_counts(&state, &results.facets),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SuggestionsQuery {
    /// What the shopper has typed so far (the last word may be unfinished).
    pub q: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestionsResponse {
    pub suggestions: Vec<String>,
}

/// Completions of what has been typed: category names first, then product names.
#[utoipa::path(
    get, path = "/search/suggestions", tag = "search",
    params(SuggestionsQuery),
    responses((status = 200, body = SuggestionsResponse), (status = 422, description = "`q` too long"))
)]
pub async fn suggestions(
    State(state): State<SearchState>,
    Query(query): Query<SuggestionsQuery>,
) -> ApiResult<Response> {
    let q = query.q.unwrap_or_default();
    if q.len() > MAX_QUERY_BYTES {
        return Err(ApiError::field(
            "q",
            format!("must be at most {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let index = index(&state)?;
    let mut suggestions: Vec<String> = state
        .categories
        .all()
        .into_iter()
        .filter(|c| query::words_match_prefix(&c.name, &q))
        .map(|c| c.name)
        .take(CATEGORY_SUGGESTIONS)
        .collect();
    let wanted = SUGGESTIONS - suggestions.len();
    let names = tokio::task::spawn_blocking(move || query::complete_names(&index, &q, wanted))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    for name in names {
        if !suggestions.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
            suggestions.push(name);
        }
    }
    suggestions.truncate(SUGGESTIONS);
    Ok(cacheable(SuggestionsResponse { suggestions }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiltersResponse {
    /// Every filter `/search` takes, with what a shopper can pick.
    pub facets: FacetCounts,
    /// The `sort` values `/search` takes.
    pub sorts: Vec<&'static str>,
}

/// The facets over every product for sale, and the sort orders.
#[utoipa::path(
    get, path = "/search/filters", tag = "search",
    responses((status = 200, body = FiltersResponse))
)]
pub async fn filters(State(state): State<SearchState>) -> ApiResult<Response> {
    let index = index(&state)?;
    let facets = tokio::task::spawn_blocking(move || query::all_facets(&index))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(cacheable(FiltersResponse {
        facets: facet_counts(&state, &facets),
        sorts: Sort::ALL.to_vec(),
    }))
}

/// Rebuilds the index from the catalog (admin). Queries are answered from the old index until
/// the new one is complete; the answer comes when it is.
#[utoipa::path(
    post, path = "/search/reindex", tag = "search",
    responses(
        (status = 200, body = Rebuilt),
        (status = 403, description = "Not an admin"),
        (status = 503, description = "The rebuild failed; the old index stays"),
    )
)]
pub async fn reindex(State(state): State<SearchState>, caller: Caller) -> ApiResult<Json<Rebuilt>> {
    caller.ensure_role(&[Role::Admin])?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    state
        .reindex
        .send(reply)
        .await
        .map_err(|_| ApiError::Unavailable("the indexer is stopping".into()))?;
    match answer.await {
        Ok(Ok(rebuilt)) => Ok(Json(rebuilt)),
        Ok(Err(cause)) => Err(ApiError::unavailable("catalog", cause)),
        Err(_) => Err(ApiError::Unavailable("the indexer is stopping".into())),
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(search, suggestions, filters, reindex),
    tags((name = "search", description = "Full-text product search"))
)]
struct SearchApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    SearchApi::openapi()
}
