use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Json},
};

use super::PaymentBody;
use crate::{PaymentsState, store};

/// A payment (admin, or the user who paid it over HTTP).
#[utoipa::path(
    get, path = "/payments/{id}", tag = "payments",
    params(("id" = uuid::Uuid, Path, description = "The payment id")),
    responses(
        (status = 200, body = PaymentBody),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_payment(
    State(state): State<PaymentsState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<PaymentBody>> {
    let mut conn = state.pool.acquire().await?;
    let payment = store::payment(&mut conn, id, false)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such payment".into()))?;
    let payer_or_admin =
        caller.is_admin() || payment.user_id.is_some_and(|payer| payer == caller.user_id);
    if !payer_or_admin {
        return Err(ApiError::Forbidden(
            "only the user who paid or an admin may see a payment".into(),
        ));
    }
    Ok(Json(PaymentBody::from(&payment)))
}
