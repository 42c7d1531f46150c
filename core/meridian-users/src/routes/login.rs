use axum::extract::State;
use meridian_platform::{ApiError, ApiResult, extract::Json};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{UsersState, domain::Email, sessions, store};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: store::User,
}

impl UsersState {
    /// Signs an access token and issues a refresh token in `family_id`, inside `conn`'s
    /// transaction.
    pub(crate) async fn token_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        user: store::User,
        family_id: Uuid,
    ) -> ApiResult<TokenPair> {
        let (access_token, expires_in) = self.keys.sign_access_token(user.id, user.role)?;
        let refresh_token = sessions::issue(conn, user.id, family_id).await?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            user,
        })
    }
}

fn wrong_credentials() -> ApiError {
    ApiError::Unauthorized("the e-mail or password is wrong".into())
}

/// Signs in; unknown e-mail and wrong password get the same answer in about the same time.
#[utoipa::path(
    post, path = "/users/login", tag = "users",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 401, description = "Wrong e-mail or password", body = meridian_platform::error::Problem),
        (status = 429, description = "Too many failed sign-ins for this account", body = meridian_platform::error::Problem),
    )
)]
pub async fn login(
    State(state): State<UsersState>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    if request.password.chars().count() > crate::domain::MAX_PASSWORD_CHARS {
        return Err(wrong_credentials());
    }
    let Ok(email) = Email::parse(&request.email) else {
        // Still spend a hash, so a malformed e-mail is not a fast oracle either.
        state.passwords.verify(request.password, None).await?;
        return Err(wrong_credentials());
    };
    state.throttle.check(email.as_str()).await?;
    let mut conn = state.pool.acquire().await?;
    let found = store::by_email(&mut conn, email.as_str()).await?;
    drop(conn);
    let (user, stored_hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = state
        .passwords
        .verify(request.password, stored_hash)
        .await?;
    let Some(user) = user.filter(|_| matches) else {
        state.throttle.record_failure(email.as_str()).await;
        return Err(wrong_credentials());
    };
    state.throttle.clear(email.as_str()).await;
    let mut tx = state.pool.begin().await?;
    let pair = state.token_pair(&mut tx, user, Uuid::now_v7()).await?;
    tx.commit().await?;
    Ok(Json(pair))
}
