//! The envelope around every event: what a consumer needs to deduplicate, order and route an
//! event without understanding its payload.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::naming::StreamKind;

/// A versioned event payload.
///
/// Invariant: `TYPE` names one schema forever. A change that is not backward compatible gets a
/// new type with a bumped version (`catalog.product_created.v2`) beside the old one.
pub trait Event: Serialize + DeserializeOwned {
    /// The stream the event belongs to.
    const STREAM: StreamKind;
    /// The event type, `<service>.<name>.v<version>`; also the last tokens of its subject.
    const TYPE: &'static str;
}

/// An event as it travels on a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Unique per event; published as `Nats-Msg-Id`, so JetStream drops re-publications, and
    /// used as the key of consumers' inbox tables, so a redelivery has no second effect.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The region whose service wrote the event.
    pub region: String,
    /// The entity the event is about (a product id, an order id, ...).
    pub aggregate_id: Uuid,
    /// The entity's version after the change; consumers apply an event only when it is newer
    /// than what they hold, so reordering and redelivery are harmless.
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub data: T,
}

/// An envelope whose payload has not been decoded yet.
pub type RawEnvelope = Envelope<serde_json::Value>;

impl<T: Event> Envelope<T> {
    pub fn new(region: &str, aggregate_id: Uuid, aggregate_version: i64, data: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: T::TYPE.to_owned(),
            region: region.to_owned(),
            aggregate_id,
            aggregate_version,
            occurred_at: Utc::now(),
            data,
        }
    }

    /// Erases the payload type, for storage in an outbox.
    pub fn into_raw(self) -> Result<RawEnvelope, serde_json::Error> {
        Ok(Envelope {
            id: self.id,
            event_type: self.event_type,
            region: self.region,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version,
            occurred_at: self.occurred_at,
            data: serde_json::to_value(self.data)?,
        })
    }
}

impl RawEnvelope {
    /// Decodes the payload as `T` when the envelope carries that type.
    pub fn decode<T: Event>(&self) -> Option<Result<T, serde_json::Error>> {
        (self.event_type == T::TYPE).then(|| T::deserialize(&self.data))
    }
}
