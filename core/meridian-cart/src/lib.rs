//! The cart service: a cart per signed-in user, and per guest token, in Redis.
//!
//! - [`domain`]: owners and guest tokens, quantities, lines as stored and carts as shown.
//! - [`store`]: the Redis layout and the Lua scripts that change a cart in one step.
//! - [`routes`]: one file per action.
//! - [`rpc`]: `cart.get` and `cart.clear`, for checkout.
//!
//! Invariant: Redis is the cart's only store, and a cart may be lost (it expires 30 days after
//! its last write); nothing that must not be lost (stock, orders, payments) lives here. Each
//! line's price is the catalog's when the line was added; all lines share one currency.

pub mod domain;
pub mod routes;
pub mod rpc;
pub mod store;

use meridian_contracts::cart::{ClearCart, ClearCartRequest, GetCart, GetCartRequest};
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

/// The name the core gives the pool it hands every service. The cart owns no Postgres schema:
/// it never migrates, creates or queries one, and drops its pool.
pub const SCHEMA: &str = "cart";

/// Nothing to migrate: carts live in Redis.
pub async fn migrate(_pool: &PgPool) -> anyhow::Result<()> {
    Ok(())
}

#[derive(Clone)]
pub struct CartState {
    pub store: store::CartStore,
    /// For `catalog.product_summary`: a line's product must exist and be active.
    pub nats: async_nats::Client,
    pub naming: meridian_jetstream::Naming,
}

pub async fn start(ctx: &ServiceContext, _pool: PgPool) -> anyhow::Result<Mounted> {
    let store = store::CartStore::new(ctx.redis.clone(), &ctx.redis_prefix);
    let getter = store.clone();
    let get = meridian_platform::rpc::serve::<GetCart, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "cart",
        move |request: GetCartRequest| {
            let store = getter.clone();
            async move { rpc::get_cart(&store, request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    let clearer = store.clone();
    let clear = meridian_platform::rpc::serve::<ClearCart, _, _>(
        ctx.nats.clone(),
        &ctx.naming,
        "cart",
        move |request: ClearCartRequest| {
            let store = clearer.clone();
            async move { rpc::clear_cart(&store, request).await }
        },
        ctx.shutdown.clone(),
    )
    .await?;
    let state = CartState {
        store,
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
    };
    Ok(Mounted {
        name: "cart",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks: vec![get, clear],
    })
}
