//! Typed request/reply over NATS: the only way one core service calls another.
//!
//! A service answers a [`Contract`] with [`serve`]; any number of replicas share the load in
//! the endpoint's queue group. A caller uses [`call`], which always has a deadline.

use std::{future::Future, time::Duration};

use async_nats::service::ServiceExt;
use futures::StreamExt;
use meridian_contracts::Contract;
use meridian_jetstream::Naming;
use tokio_util::sync::CancellationToken;

/// How many requests one endpoint of one process answers at once.
pub const MAX_IN_FLIGHT: usize = 256;

/// How long a caller waits for an answer unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no service answers {0}")]
    NoResponders(String),
    #[error("{0} did not answer in time")]
    TimedOut(String),
    #[error("{endpoint} failed: {message}")]
    Remote { endpoint: String, message: String },
    #[error("{endpoint}: {message}")]
    Transport { endpoint: String, message: String },
}

/// Calls `C` and decodes its answer.
pub async fn call<C: Contract>(
    client: &async_nats::Client,
    naming: &Naming,
    request: &C::Request,
    timeout: Duration,
) -> Result<C::Response, RpcError> {
    let endpoint = C::ENDPOINT;
    let transport = |message: String| RpcError::Transport {
        endpoint: endpoint.to_owned(),
        message,
    };
    let payload = serde_json::to_vec(request).map_err(|e| transport(e.to_string()))?;
    let subject = naming.rpc_subject(endpoint);
    let reply = tokio::time::timeout(timeout, client.request(subject, payload.into()))
        .await
        .map_err(|_| RpcError::TimedOut(endpoint.to_owned()))?
        .map_err(|error| match error.kind() {
            async_nats::client::RequestErrorKind::NoResponders => {
                RpcError::NoResponders(endpoint.to_owned())
            }
            async_nats::client::RequestErrorKind::TimedOut => {
                RpcError::TimedOut(endpoint.to_owned())
            }
            _ => transport(error.to_string()),
        })?;
    if let Some(headers) = &reply.headers
        && let Some(message) = headers.get(async_nats::service::NATS_SERVICE_ERROR)
    {
        return Err(RpcError::Remote {
            endpoint: endpoint.to_owned(),
            message: message.to_string(),
        });
    }
    serde_json::from_slice(&reply.payload).map_err(|e| transport(e.to_string()))
}

/// Answers `C` with `handler` until `shutdown` fires. Registers a NATS micro-service named
/// `service`, so `nats micro ls` shows its endpoints and stats.
pub async fn serve<C, H, Fut>(
    client: async_nats::Client,
    naming: &Naming,
    service: &str,
    handler: H,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>>
where
    C: Contract + 'static,
    H: Fn(C::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<C::Response, String>> + Send,
{
    let service = client
        .service_builder()
        .description(format!("meridian {service}"))
        .start(service, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("starting NATS service {service}: {e}"))?;
    let mut endpoint = service
        .endpoint_builder()
        .name(C::ENDPOINT.replace('.', "_"))
        .queue_group(C::ENDPOINT)
        .add(naming.rpc_subject(C::ENDPOINT))
        .await
        .map_err(|e| anyhow::anyhow!("adding NATS endpoint {}: {e}", C::ENDPOINT))?;
    let handler = std::sync::Arc::new(handler);
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    Ok(tokio::spawn(async move {
        let _service = service;
        loop {
            let request = tokio::select! {
                () = shutdown.cancelled() => break,
                next = endpoint.next() => match next {
                    Some(request) => request,
                    None => break,
                },
            };
            // Requests are answered concurrently, up to MAX_IN_FLIGHT per endpoint and process;
            // beyond that the endpoint stops taking requests, and NATS queues them.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let _permit = permit;
                answer::<C, H, Fut>(&handler, request).await;
            });
        }
    }))
}

async fn answer<C, H, Fut>(handler: &H, request: async_nats::service::Request)
where
    C: Contract + 'static,
    H: Fn(C::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<C::Response, String>> + Send,
{
    let answer = match serde_json::from_slice::<C::Request>(&request.message.payload) {
        Ok(decoded) => handler(decoded).await,
        Err(error) => Err(format!("malformed request: {error}")),
    };
    let response = answer.and_then(|response| {
        serde_json::to_vec(&response)
            .map(Into::into)
            .map_err(|e| e.to_string())
    });
    let response =
        response.map_err(|status| async_nats::service::error::Error { status, code: 500 });
    if let Err(error) = request.respond(response).await {
        tracing::warn!(endpoint = C::ENDPOINT, %error, "could not send a reply");
    }
}
