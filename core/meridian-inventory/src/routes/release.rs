use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::Json,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    InventoryState,
    reservations::{self, Transition},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReleaseRequest {
    pub reservation_id: Uuid,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Released {
    pub reservation_id: Uuid,
    /// `released`, or `expired` if its time had run out first.
    pub status: String,
}

/// Returns a held reservation's units (admin, or internal callers). Releasing again is a no-op;
/// a confirmed reservation cannot be released (409).
#[utoipa::path(
    post, path = "/inventory/release", tag = "inventory",
    request_body = ReleaseRequest,
    responses(
        (status = 200, body = Released),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 409, description = "Already confirmed", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn release(
    State(state): State<InventoryState>,
    caller: Caller,
    Json(request): Json<ReleaseRequest>,
) -> ApiResult<Json<Released>> {
    caller.ensure_role(&[Role::Admin])?;
    let (transition, status) = reservations::release(&state.pool, request.reservation_id).await?;
    match transition {
        Transition::NotFound => Err(ApiError::NotFound("no such reservation".into())),
        Transition::AlreadyLeft if status == "confirmed" => Err(ApiError::Conflict(
            "the reservation was confirmed; its stock is sold".into(),
        )),
        Transition::Done | Transition::AlreadyLeft => Ok(Json(Released {
            reservation_id: request.reservation_id,
            status,
        })),
    }
}
