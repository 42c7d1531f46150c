//! The services this binary can host.

use futures::future::BoxFuture;
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

pub struct ServiceEntry {
    pub name: &'static str,
    /// The Postgres schema the service owns.
    pub schema: &'static str,
    pub migrate: for<'a> fn(&'a PgPool) -> BoxFuture<'a, anyhow::Result<()>>,
    pub start: for<'a> fn(&'a ServiceContext, PgPool) -> BoxFuture<'a, anyhow::Result<Mounted>>,
    /// The service's part of the OpenAPI document.
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

pub const SERVICES: &[ServiceEntry] = &[
    ServiceEntry {
        name: "users",
        schema: meridian_users::SCHEMA,
        migrate: |pool| Box::pin(meridian_users::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_users::start(ctx, pool)),
        openapi: meridian_users::routes::openapi,
    },
    ServiceEntry {
        name: "catalog",
        schema: meridian_catalog::SCHEMA,
        migrate: |pool| Box::pin(meridian_catalog::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_catalog::start(ctx, pool)),
        openapi: meridian_catalog::routes::openapi,
    },
    ServiceEntry {
        name: "inventory",
        schema: meridian_inventory::SCHEMA,
        migrate: |pool| Box::pin(meridian_inventory::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_inventory::start(ctx, pool)),
        openapi: meridian_inventory::routes::openapi,
    },
    ServiceEntry {
        name: "cart",
        schema: meridian_cart::SCHEMA,
        migrate: |pool| Box::pin(meridian_cart::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_cart::start(ctx, pool)),
        openapi: meridian_cart::routes::openapi,
    },
    ServiceEntry {
        name: "orders",
        schema: meridian_orders::SCHEMA,
        migrate: |pool| Box::pin(meridian_orders::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_orders::start(ctx, pool)),
        openapi: meridian_orders::routes::openapi,
    },
    ServiceEntry {
        name: "payments",
        schema: meridian_payments::SCHEMA,
        migrate: |pool| Box::pin(meridian_payments::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_payments::start(ctx, pool)),
        openapi: meridian_payments::routes::openapi,
    },
    ServiceEntry {
        name: "search",
        schema: meridian_search::SCHEMA,
        migrate: |pool| Box::pin(meridian_search::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_search::start(ctx, pool)),
        openapi: meridian_search::routes::openapi,
    },
    ServiceEntry {
        name: "reviews",
        schema: meridian_reviews::SCHEMA,
        migrate: |pool| Box::pin(meridian_reviews::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_reviews::start(ctx, pool)),
        openapi: meridian_reviews::routes::openapi,
    },
    ServiceEntry {
        name: "notifications",
        schema: meridian_notifications::SCHEMA,
        migrate: |pool| Box::pin(meridian_notifications::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_notifications::start(ctx, pool)),
        openapi: meridian_notifications::routes::openapi,
    },
    ServiceEntry {
        name: "recommendations",
        schema: meridian_recommendations::SCHEMA,
        migrate: |pool| Box::pin(meridian_recommendations::migrate(pool)),
        start: |ctx, pool| Box::pin(meridian_recommendations::start(ctx, pool)),
        openapi: meridian_recommendations::routes::openapi,
    },
];

/// Resolves `MERIDIAN_SERVICES`: `all`, or a comma list of service names.
pub fn select(names: &[String]) -> anyhow::Result<Vec<&'static ServiceEntry>> {
    if names.iter().any(|n| n == "all") {
        return Ok(SERVICES.iter().collect());
    }
    let mut selected = Vec::new();
    for name in names {
        let entry = SERVICES.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<_> = SERVICES.iter().map(|s| s.name).collect();
            anyhow::anyhow!("unknown service {name:?} in MERIDIAN_SERVICES; known: {known:?}")
        })?;
        if !selected
            .iter()
            .any(|s: &&ServiceEntry| s.name == entry.name)
        {
            selected.push(entry);
        }
    }
    anyhow::ensure!(!selected.is_empty(), "MERIDIAN_SERVICES names no service");
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name_or_all() {
        let names = |s: &[&str]| s.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(select(&names(&["all"])).expect("all").len(), SERVICES.len());
        let one = select(&names(&["catalog", "catalog"])).expect("catalog");
        assert_eq!(one.iter().map(|s| s.name).collect::<Vec<_>>(), ["catalog"]);
        assert!(select(&names(&["billing"])).is_err());
        assert!(select(&[]).is_err());
    }
}
