//! Stream names and subjects, all derived from one prefix.
//!
//! Invariant: every subject an event is published on is `<prefix>.<event type>`, and every
//! stream captures `<prefix>.<service>.>`; a consumer therefore filters by event type with a
//! subject filter alone.

use crate::envelope::Event;

/// The streams of the platform, one per event-owning service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Users,
    Catalog,
    Inventory,
    Orders,
    Payments,
    Notifications,
}

impl StreamKind {
    pub const ALL: &'static [StreamKind] = &[
        StreamKind::Users,
        StreamKind::Catalog,
        StreamKind::Inventory,
        StreamKind::Orders,
        StreamKind::Payments,
        StreamKind::Notifications,
    ];

    /// The service token that starts the stream's subjects.
    pub fn service(self) -> &'static str {
        match self {
            StreamKind::Users => "users",
            StreamKind::Catalog => "catalog",
            StreamKind::Inventory => "inventory",
            StreamKind::Orders => "orders",
            StreamKind::Payments => "payments",
            StreamKind::Notifications => "notifications",
        }
    }
}

/// Names under one prefix (`meridian` in a deployment, a unique one per test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    prefix: String,
}

impl Naming {
    /// `prefix` must be a single subject token of `[A-Za-z0-9_-]`; it is also used, upper-cased,
    /// in stream names.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(format!(
                "NATS prefix {prefix:?} must be 1 to 32 characters of letters, digits, '_' or '-'"
            ))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn stream_name(&self, stream: StreamKind) -> String {
        format!(
            "{}_{}",
            self.prefix.to_ascii_uppercase().replace('-', "_"),
            stream.service().to_ascii_uppercase()
        )
    }

    pub fn stream_subjects(&self, stream: StreamKind) -> String {
        format!("{}.{}.>", self.prefix, stream.service())
    }

    /// The subject an event of type `event_type` is published on.
    pub fn event_subject(&self, event_type: &str) -> String {
        format!("{}.{}", self.prefix, event_type)
    }

    pub fn subject_of<E: Event>(&self) -> String {
        self.event_subject(E::TYPE)
    }

    /// The subject of an internal request/reply endpoint, e.g. `users.jwks`.
    pub fn rpc_subject(&self, endpoint: &str) -> String {
        format!("{}.rpc.{}", self.prefix, endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::catalog::ProductCreatedV1;

    #[test]
    fn names_derive_from_the_prefix() {
        let naming = Naming::new("t-42").expect("valid prefix");
        assert_eq!(naming.stream_name(StreamKind::Catalog), "T_42_CATALOG");
        assert_eq!(
            naming.stream_subjects(StreamKind::Catalog),
            "t-42.catalog.>"
        );
        assert_eq!(
            naming.subject_of::<ProductCreatedV1>(),
            "t-42.catalog.product_created.v1"
        );
    }

    #[test]
    fn prefixes_that_would_break_subjects_are_refused() {
        for bad in ["", "a.b", "a b", "a>", "*", &"x".repeat(33)] {
            assert!(Naming::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
