//! Running a durable JetStream consumer: each event is handed to a handler, and acknowledged
//! only once the handler has finished with it (its effect committed), so a crash or an error
//! means redelivery, never loss. Handlers must therefore be idempotent (an inbox keyed by event
//! id, or writes that converge).

use std::{future::Future, time::Duration};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::{FutureExt, StreamExt};
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
/// first time), one at a time.
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
    let one = move |mut events: Vec<(RawEnvelope, i64)>| {
        let handled = events
            .pop()
            .map(|(event, delivered)| handle(event, delivered));
        async move {
            match handled {
                Some(handled) => vec![handled.await],
                None => Vec::new(),
            }
        }
    };
    run_batched(js, naming, stream, config, 1, one, shutdown).await;
}

/// Like [`run`], but hands `handle` up to `max_batch` events at a time: the first to arrive and
/// those already received behind it (it never waits to fill a batch). `handle` answers one
/// outcome per event, in order; each event is then acknowledged, postponed or dropped on its
/// own, so one failure does not redeliver its neighbours.
pub async fn run_batched<H, Fut>(
    js: jetstream::Context,
    naming: Naming,
    stream: StreamKind,
    config: pull::Config,
    max_batch: usize,
    handle: H,
    shutdown: CancellationToken,
) where
    H: Fn(Vec<(RawEnvelope, i64)>) -> Fut + Send + Sync,
    Fut: Future<Output = Vec<Result<(), Failure>>> + Send,
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
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                next = messages.next() => next,
            };
            let mut batch = Vec::new();
            let mut reconnect = match read(first, &name) {
                Read::Message(message) => {
                    batch.push(message);
                    false
                }
                Read::Skip => continue,
                Read::Reconnect => break,
            };
            while batch.len() < max_batch && !reconnect {
                // Only what is already here: `None` from `now_or_never` means nothing is.
                let Some(next) = messages.next().now_or_never() else {
                    break;
                };
                match read(next, &name) {
                    Read::Message(message) => batch.push(message),
                    Read::Skip => {}
                    Read::Reconnect => reconnect = true,
                }
            }
            settle(&batch, &handle, &name).await;
            if reconnect {
                break;
            }
        }
    }
}

// Each `Read` lives only until its message is pushed into the batch: boxing would only add an
// allocation per message.
#[allow(clippy::large_enum_variant)]
enum Read {
    Message(jetstream::Message),
    /// A transient error of the stream: go on.
    Skip,
    /// The stream ended or lost its heartbeats: subscribe again.
    Reconnect,
}

fn read(next: Option<Result<jetstream::Message, pull::MessagesError>>, name: &str) -> Read {
    match next {
        Some(Ok(message)) => Read::Message(message),
        Some(Err(error)) => {
            tracing::debug!(%error, consumer = name, "consumer stream");
            if matches!(error.kind(), pull::MessagesErrorKind::MissingHeartbeat) {
                Read::Reconnect
            } else {
                Read::Skip
            }
        }
        None => Read::Reconnect,
    }
}

/// Hands the readable events of `batch` to `handle` and settles every message by its outcome.
async fn settle<H, Fut>(batch: &[jetstream::Message], handle: &H, name: &str)
where
    H: Fn(Vec<(RawEnvelope, i64)>) -> Fut,
    Fut: Future<Output = Vec<Result<(), Failure>>>,
{
    let mut events = Vec::with_capacity(batch.len());
    let mut unreadable = Vec::with_capacity(batch.len());
    for message in batch {
        let delivered = message.info().map_or(1, |info| info.delivered);
        match serde_json::from_slice::<RawEnvelope>(&message.payload) {
            Ok(event) => {
                events.push((event, delivered));
                unreadable.push(None);
            }
            Err(error) => unreadable.push(Some(format!("unreadable envelope: {error}"))),
        }
    }
    let expected = events.len();
    let mut outcomes = if events.is_empty() {
        Vec::new()
    } else {
        handle(events).await
    }
    .into_iter();
    if outcomes.len() != expected {
        tracing::error!(
            consumer = name,
            "a batch handler answered {} outcomes for {expected} events",
            outcomes.len()
        );
    }
    for (message, unreadable) in batch.iter().zip(unreadable) {
        let outcome = match unreadable {
            Some(cause) => Err(Failure::Drop(cause)),
            None => outcomes.next().unwrap_or_else(|| {
                Err(Failure::Retry {
                    delay: Duration::from_secs(1),
                    cause: "the handler gave no outcome".to_owned(),
                })
            }),
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
