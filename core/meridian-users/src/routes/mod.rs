//! The users service's HTTP routes, one file per action.

mod addresses;
mod jwks;
mod login;
mod logout;
mod profile;
mod refresh;
mod register;
mod role;
mod rotate_keys;

use axum::{
    Router,
    routing::{get, post, put},
};
use utoipa::OpenApi;

use crate::UsersState;

pub use login::TokenPair;

pub fn router(state: UsersState) -> Router {
    Router::new()
        .route("/users/register", post(register::register))
        .route("/users/login", post(login::login))
        .route("/users/token/refresh", post(refresh::refresh))
        .route("/users/logout", post(logout::logout))
        .route(
            "/users/{id}",
            get(profile::get_user).put(profile::update_user),
        )
        .route("/users/{id}/role", put(role::set_role))
        .route(
            "/users/{id}/addresses",
            get(addresses::list_addresses).post(addresses::add_address),
        )
        .route("/.well-known/jwks.json", get(jwks::jwks))
        .route("/users/signing-keys/rotate", post(rotate_keys::rotate_keys))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        register::register,
        login::login,
        refresh::refresh,
        logout::logout,
        profile::get_user,
        profile::update_user,
        role::set_role,
        addresses::list_addresses,
        addresses::add_address,
        jwks::jwks,
        rotate_keys::rotate_keys,
    ),
    tags((name = "users", description = "Accounts, sessions and the token issuer"))
)]
struct UsersApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    UsersApi::openapi()
}
