//! Running a durable JetStream consumer: each event is handed to a handler, and acknowledged
//! only once the handler has finished with it (its effect committed), so a crash or an error
//! means redelivery, never loss. Handlers must therefore be idempotent (an inbox keyed by event
//! id, or writes that converge).

use std::{future::Future, time::Duration};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use meridian_jetstream::{Naming, RawEnvelope, StreamKind};
use tokio_util::sync::CancellationToken;

/// A handler's verdict on an event it could not apply.
#[derive(Debug)]
pub enum Failure {
    /// Try again later (a dependency is down): redelivered after `delay`.
    Retry { delay: Duration, cause: String },
    /// Never applicable (unreadable): dropped, and logged.
    Drop(String),
}

/// Consumes `config` (a durable pull consumer of `stream`, created if absent) until `shutdown`
/// fires, handing each event to `handle` with how many times it has been delivered (1 the
/// first time).
pub async fn run<H, Fut>(
    js: jetstream::Context,
    naming: Naming,
    stream: StreamKind,
    config: pull::Config,
    handle: H,
    shutdown: CancellationToken,
) where
    H: Fn(RawEnvelope, i64) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let name = config.durable_name.clone().unwrap_or_default();
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let messages = async {
            let stream = js.get_stream(naming.stream_name(stream)).await?;
            let consumer = stream.get_or_create_consumer(&name, config.clone()).await?;
            anyhow::Ok(consumer.messages().await?)
        }
        .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, consumer = name, "cannot consume; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return,
                next = messages.next() => match next {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        tracing::debug!(%error, consumer = name, "consumer stream");
                        if matches!(error.kind(), pull::MessagesErrorKind::MissingHeartbeat) {
                            break;
                        }
                        continue;
                    }
                    None => break,
                },
            };
            let delivered = message.info().map_or(1, |info| info.delivered);
            let outcome = match serde_json::from_slice::<RawEnvelope>(&message.payload) {
                Ok(event) => handle(event, delivered).await,
                Err(error) => Err(Failure::Drop(format!("unreadable envelope: {error}"))),
            };
            let ack = match outcome {
                Ok(()) => message.ack().await,
                Err(Failure::Retry { delay, cause }) => {
                    tracing::warn!(consumer = name, %cause, "event postponed");
                    message.ack_with(AckKind::Nak(Some(delay))).await
                }
                Err(Failure::Drop(cause)) => {
                    tracing::warn!(consumer = name, %cause, subject = %message.subject, "event dropped");
                    message.ack_with(AckKind::Term).await
                }
            };
            if let Err(error) = ack {
                tracing::debug!(%error, consumer = name, "acknowledging");
            }
        }
    }
}
