//! The durable consumers of the platform, declared once: who reads which events, how
//! acknowledgements and redeliveries work for them.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};

use crate::{
    Event,
    events::{
        catalog::{ProductCreatedV1, ProductDeletedV1, ProductUpdatedV1},
        inventory::AvailabilityChangedV1,
        notifications::{ReplayRequestedV1, SendRequestedV1},
        orders::{OrderCancelledV1, OrderConfirmedV1, OrderPlacedV1, OrderShippedV1},
        payments::{PaymentFailedV1, PaymentSucceededV1},
        users::UserRegisteredV1,
    },
    naming::{Naming, StreamKind},
};

/// The subjects of `types`.
fn subjects(naming: &Naming, types: &[&str]) -> Vec<String> {
    types.iter().map(|t| naming.event_subject(t)).collect()
}

/// A consumer of one search index (each replica's index has its own), from `start_sequence`,
/// acknowledged per committed batch, deleted by the server after a week without a reader.
fn per_index(
    durable: &str,
    description: &str,
    start_sequence: u64,
    filter: Vec<String>,
) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_owned()),
        description: Some(description.to_owned()),
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        max_ack_pending: 4096,
        filter_subjects: filter,
        inactive_threshold: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    }
}

/// A durable shared by a service's replicas, from the start of its stream.
fn shared(durable: &str, description: &str, ack_wait_s: u64, filter: Vec<String>) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_owned()),
        description: Some(description.to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(ack_wait_s),
        max_ack_pending: 1024,
        filter_subjects: filter,
        ..Default::default()
    }
}

/// The product events of the catalog stream that the search index applies.
pub fn search_subjects(naming: &Naming) -> Vec<String> {
    subjects(
        naming,
        &[
            ProductCreatedV1::TYPE,
            ProductUpdatedV1::TYPE,
            ProductDeletedV1::TYPE,
        ],
    )
}

/// The durable consumer of one search index, named after that index (every replica's index has
/// its own), reading the catalog stream from `start_sequence`.
///
/// The indexer acknowledges a message only once the index commit that holds its effect is
/// durable; an unacknowledged one (its indexer died) comes back after `ack_wait`, 10 s, and
/// applying it again is harmless (events apply only when newer than what the index holds). A consumer whose index
/// is gone is deleted by the server after a week without a reader.
pub fn search_indexer(naming: &Naming, durable: &str, start_sequence: u64) -> pull::Config {
    per_index(
        durable,
        "search index of the catalog's products",
        start_sequence,
        search_subjects(naming),
    )
}

/// The second durable consumer of one search index: whether products are in stock, from the
/// inventory stream, from `start_sequence` (the index keeps only its own region's). Same
/// acknowledgement rules as [`search_indexer`].
pub fn search_stock(naming: &Naming, durable: &str, start_sequence: u64) -> pull::Config {
    per_index(
        durable,
        "search index: products in stock",
        start_sequence,
        subjects(naming, &[AvailabilityChangedV1::TYPE]),
    )
}

/// The reviews service's purchase projection (what makes a review a verified purchase): every
/// confirmed and cancelled order, from the start of the orders stream. One durable for all
/// replicas, which share its messages; the projection's writes converge whatever the order
/// and the number of deliveries.
pub fn reviews_purchases(naming: &Naming) -> pull::Config {
    shared(
        "reviews-purchases",
        "reviews: who bought what",
        30,
        subjects(naming, &[OrderConfirmedV1::TYPE, OrderCancelledV1::TYPE]),
    )
}

/// The recommendation worker's product embeddings: every product event from the start of the
/// catalog stream. One durable for all replicas; writes apply only when newer.
pub fn recommendations_catalog(naming: &Naming) -> pull::Config {
    shared(
        "recommendations-catalog",
        "recommendations: product embeddings",
        60,
        search_subjects(naming),
    )
}

/// The recommendation worker's purchase statistics (co-purchases, histories, what sells where):
/// every confirmed and cancelled order from the start of the orders stream, each counted once
/// and taken back once (an inbox by order).
pub fn recommendations_orders(naming: &Naming) -> pull::Config {
    shared(
        "recommendations-orders",
        "recommendations: who bought what with what",
        30,
        subjects(naming, &[OrderConfirmedV1::TYPE, OrderCancelledV1::TYPE]),
    )
}

/// How many times the notifications worker is handed one event before it dead-letters it.
pub const NOTIFICATION_DELIVERIES: i64 = 5;

/// The event types the notifications worker reads from `stream`.
pub fn notification_events(stream: StreamKind) -> &'static [&'static str] {
    match stream {
        StreamKind::Users => &[UserRegisteredV1::TYPE],
        StreamKind::Orders => &[
            OrderPlacedV1::TYPE,
            OrderConfirmedV1::TYPE,
            OrderShippedV1::TYPE,
        ],
        StreamKind::Payments => &[PaymentSucceededV1::TYPE, PaymentFailedV1::TYPE],
        StreamKind::Notifications => &[SendRequestedV1::TYPE, ReplayRequestedV1::TYPE],
        StreamKind::Catalog | StreamKind::Inventory => &[],
    }
}

/// The notifications worker's durable consumer of `stream` (one per stream it reads, shared by
/// its replicas), from the stream's start. The worker spaces redeliveries itself (a NAK with a
/// delay) and dead-letters an event on its last delivery; `max_deliver` is the backstop.
pub fn notifications(naming: &Naming, stream: StreamKind) -> pull::Config {
    pull::Config {
        durable_name: Some(format!("notifications-{}", stream.service())),
        description: Some("notifications: messages to send".to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_deliver: NOTIFICATION_DELIVERIES + 1,
        max_ack_pending: 256,
        filter_subjects: subjects(naming, notification_events(stream)),
        ..Default::default()
    }
}
