//! Events of the catalog service, on the catalog stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::Event, naming::StreamKind};

/// A product as events carry it: everything a projection (search, recommendations, the edge
/// cache) needs, so consumers never call back into the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductSnapshotV1 {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub price_currency: String,
    pub category_id: Option<Uuid>,
    pub seller_id: Uuid,
    pub attributes: serde_json::Value,
    pub images: Vec<String>,
    pub status: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductCreatedV1 {
    pub product: ProductSnapshotV1,
}

impl Event for ProductCreatedV1 {
    const STREAM: StreamKind = StreamKind::Catalog;
    const TYPE: &'static str = "catalog.product_created.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductUpdatedV1 {
    pub product: ProductSnapshotV1,
}

impl Event for ProductUpdatedV1 {
    const STREAM: StreamKind = StreamKind::Catalog;
    const TYPE: &'static str = "catalog.product_updated.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductDeletedV1 {
    pub product_id: Uuid,
    pub sku: String,
    pub version: i64,
}

impl Event for ProductDeletedV1 {
    const STREAM: StreamKind = StreamKind::Catalog;
    const TYPE: &'static str = "catalog.product_deleted.v1";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    #[test]
    fn raw_envelope_decodes_only_its_own_type() {
        let event = ProductDeletedV1 {
            product_id: Uuid::now_v7(),
            sku: "SKU-1".into(),
            version: 3,
        };
        let raw = Envelope::new("local", event.product_id, 3, event.clone())
            .into_raw()
            .expect("serializable");
        assert_eq!(raw.event_type, "catalog.product_deleted.v1");
        let decoded = raw.decode::<ProductDeletedV1>().expect("same type");
        assert_eq!(decoded.expect("valid payload"), event);
        assert!(raw.decode::<ProductCreatedV1>().is_none());
    }
}
