//! Declares the streams on a JetStream server; idempotent, run by `meridian-core migrate` and
//! by every process that publishes before it publishes.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::naming::{Naming, StreamKind};

/// How long JetStream remembers a `Nats-Msg-Id`: an outbox relay that crashed after publishing
/// and before marking its rows may re-publish them within this window without duplicates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(30 * 60);

/// The configuration of one stream.
pub fn stream_config(naming: &Naming, kind: StreamKind) -> stream::Config {
    stream::Config {
        name: naming.stream_name(kind),
        subjects: vec![naming.stream_subjects(kind)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(30 * 24 * 3600),
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// Creates every stream, or updates it to the declared configuration.
pub async fn declare_streams(js: &jetstream::Context, naming: &Naming) -> Result<(), DeclareError> {
    for &kind in StreamKind::ALL {
        js.create_or_update_stream(stream_config(naming, kind))
            .await
            .map_err(|source| DeclareError {
                stream: naming.stream_name(kind),
                source: source.to_string(),
            })?;
    }
    Ok(())
}

#[derive(Debug)]
pub struct DeclareError {
    pub stream: String,
    pub source: String,
}

impl std::fmt::Display for DeclareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "declaring stream {}: {}", self.stream, self.source)
    }
}

impl std::error::Error for DeclareError {}
