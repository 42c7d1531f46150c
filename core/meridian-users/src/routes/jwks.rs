use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use meridian_platform::extract::Json;

use crate::UsersState;

/// The issuer's public keys (RFC 7517). Verifiers cache it and fetch it again on an unknown `kid`.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "users",
    responses((status = 200, description = "JSON Web Key Set", body = Object))
)]
pub async fn jwks(State(state): State<UsersState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(state.keys.jwks()),
    )
        .into_response()
}
