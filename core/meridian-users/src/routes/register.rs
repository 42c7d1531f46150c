use axum::{extract::State, http::StatusCode};
use meridian_jetstream::{Envelope, events::users::UserRegisteredV1};
use meridian_platform::{
    ApiError, ApiResult, auth::Role, error::OnConstraint, extract::Json, outbox,
    validate::Validator,
};
use serde::Deserialize;

use crate::{SCHEMA, UsersState, domain::Email, passwords, store};

/// Unknown fields (`role`, `id`, ...) are ignored: a new account is always a buyer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Creates a buyer account.
#[utoipa::path(
    post, path = "/users/register", tag = "users",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered", body = store::User),
        (status = 409, description = "The e-mail is taken", body = meridian_platform::error::Problem),
        (status = 422, description = "Invalid fields or a weak password", body = meridian_platform::error::Problem),
    )
)]
pub async fn register(
    State(state): State<UsersState>,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<store::User>)> {
    let mut v = Validator::new();
    let email = Email::parse(&request.email);
    v.check(email.is_ok(), "email", "must be an e-mail address");
    v.length("name", &request.name, 1, 100);
    if let Err(message) = passwords::check_strength(&request.password, &request.email) {
        v.check(false, "password", message);
    }
    v.finish()?;
    let email = email.map_err(|m| ApiError::field("email", m))?;

    let password_hash = state.passwords.hash(request.password).await?;
    let mut tx = state.pool.begin().await?;
    let user = store::insert_user(
        &mut tx,
        email.as_str(),
        request.name.trim(),
        &password_hash,
        Role::Buyer,
    )
    .await
    .on_unique("users_email_key", || {
        ApiError::Conflict("an account with this e-mail already exists".into())
    })?;
    let event = UserRegisteredV1 {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
    };
    outbox::enqueue(
        &mut tx,
        SCHEMA,
        Envelope::new(&state.region, user.id, 1, event),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user)))
}
