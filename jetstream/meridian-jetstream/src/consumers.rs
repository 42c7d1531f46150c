//! The durable consumers of the platform, declared once: who reads which events, how
//! acknowledgements and redeliveries work for them.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};

use crate::{
    Event,
    events::catalog::{ProductCreatedV1, ProductDeletedV1, ProductUpdatedV1},
    naming::Naming,
};

/// The product events of the catalog stream that the search index applies.
pub fn search_subjects(naming: &Naming) -> Vec<String> {
    [
        ProductCreatedV1::TYPE,
        ProductUpdatedV1::TYPE,
        ProductDeletedV1::TYPE,
    ]
    .iter()
    .map(|t| naming.event_subject(t))
    .collect()
}

/// The durable consumer of one search index, named after that index (every replica's index has
/// its own), reading the catalog stream from `start_sequence`.
///
/// The indexer acknowledges a message only once the index commit that holds its effect is
/// durable; an unacknowledged one (its indexer died) comes back after `ack_wait`, 10 s, and
/// applying it again is harmless (events apply only when newer than what the index holds). A consumer whose index
/// is gone is deleted by the server after a week without a reader.
pub fn search_indexer(naming: &Naming, durable: &str, start_sequence: u64) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_owned()),
        description: Some("search index of the catalog's products".to_owned()),
        deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        max_ack_pending: 4096,
        filter_subjects: search_subjects(naming),
        inactive_threshold: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    }
}
