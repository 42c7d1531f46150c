//! The OpenAPI 3.1 document of the hosted services, generated from their handlers.

use utoipa::openapi::{
    InfoBuilder, OpenApi, OpenApiBuilder,
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::registry::ServiceEntry;

/// Merges the services' documents; `docs` are in registry order, so the output is stable.
pub fn document(docs: Vec<OpenApi>) -> OpenApi {
    let mut merged = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Meridian")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The public API of Meridian. Errors are RFC 9457 application/problem+json.",
                ))
                .build(),
        )
        .build();
    for doc in docs {
        merged.merge(doc);
    }
    let components = merged.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    merged
}

/// The document of `services`, without starting anything (for `meridian-core openapi`).
pub fn of(services: &[&ServiceEntry]) -> OpenApi {
    document(services.iter().map(|s| (s.openapi)()).collect())
}
