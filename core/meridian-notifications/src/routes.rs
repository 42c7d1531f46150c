//! The notifications service's HTTP routes, all for admins.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use meridian_jetstream::{
    Envelope, Event, RawEnvelope,
    events::notifications::{DeadLetteredV1, ReplayRequestedV1, SendRequestedV1},
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{Json, Query},
    pagination::{PageParams, encode},
    validate::Validator,
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{NotificationsState, templates};

/// The most bytes of `data` a send request may carry.
const MAX_DATA_BYTES: usize = 8 * 1024;

pub fn router(state: NotificationsState) -> Router {
    Router::new()
        .route("/notifications/send", post(send))
        .route("/notifications/dead-letters", get(dead_letters))
        .route(
            "/notifications/dead-letters/{sequence}/replay",
            post(replay),
        )
        .with_state(state)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SendInput {
    /// `email`, `sms` or `push`.
    pub channel: String,
    /// An e-mail address, an E.164 phone number (`+` and 8 to 15 digits) or a device token.
    pub to: String,
    /// One of `welcome`, `order_placed`, `order_confirmed`, `order_shipped`,
    /// `payment_succeeded`, `payment_failed`, `message` (`data.subject`, `data.body`).
    pub template: String,
    /// The template's fields (an object, at most 8 KiB).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The request's id; its delivery is recorded under it.
    pub id: Uuid,
}

fn valid_recipient(channel: &str, to: &str) -> bool {
    match channel {
        "email" => to.len() <= 254 && to.parse::<lettre::Address>().is_ok(),
        "sms" => {
            to.len() >= 9
                && to.len() <= 16
                && to.starts_with('+')
                && to[1..].chars().all(|c| c.is_ascii_digit())
        }
        "push" => (1..=4096).contains(&to.len()) && to.chars().all(|c| c.is_ascii_graphic()),
        _ => false,
    }
}

async fn publish<E: Event>(state: &NotificationsState, event: E, id: Uuid) -> ApiResult<Uuid> {
    let mut envelope = Envelope::new(&state.region, id, 1, event);
    envelope.id = id;
    let payload = serde_json::to_vec(&envelope).map_err(ApiError::internal)?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.to_string().as_str());
    state
        .jetstream
        .publish_with_headers(state.naming.subject_of::<E>(), headers, payload.into())
        .await
        .map_err(|e| ApiError::unavailable("message broker", e))?
        .await
        .map_err(|e| ApiError::unavailable("message broker", e))?;
    Ok(id)
}

/// Queues a message (admin); it is sent once, with retries, or dead-lettered.
#[utoipa::path(
    post, path = "/notifications/send", tag = "notifications",
    request_body = SendInput,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 422, description = "An unknown channel or template, a bad recipient, or a channel without a provider"),
    ),
    security(("bearer" = []))
)]
pub async fn send(
    State(state): State<NotificationsState>,
    caller: Caller,
    Json(input): Json<SendInput>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    caller.ensure_role(&[Role::Admin])?;
    let data_bytes = input.data.to_string().len();
    Validator::new()
        .check(
            ["email", "sms", "push"].contains(&input.channel.as_str()),
            "channel",
            "must be email, sms or push",
        )
        .check(
            state.channels.get(&input.channel).is_some()
                || !["email", "sms", "push"].contains(&input.channel.as_str()),
            "channel",
            "no provider is configured for this channel",
        )
        .check(
            valid_recipient(&input.channel, &input.to),
            "to",
            "is not a valid recipient for the channel",
        )
        .check(
            templates::find(&input.template).is_some(),
            "template",
            "no such template",
        )
        .check(
            input.data.is_object() || input.data.is_null(),
            "data",
            "must be an object",
        )
        .check(
            data_bytes <= MAX_DATA_BYTES,
            "data",
            "must be at most 8 KiB",
        )
        .finish()?;
    let data = if input.data.is_null() {
        serde_json::json!({})
    } else {
        input.data
    };
    let request = SendRequestedV1 {
        channel: input.channel,
        to: input.to,
        template: input.template,
        data,
    };
    let id = publish(&state, request, Uuid::now_v7()).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id })))
}

/// A message given up on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Its position on the notifications stream: what `replay` takes.
    pub sequence: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub consumer: String,
    pub attempts: u32,
    pub error: String,
    pub dead_at: DateTime<Utc>,
    /// Whether the event's message has been sent since (by a replay, or a redelivery that
    /// worked): nothing is left to do for it.
    pub sent_since: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetter>,
    pub next_cursor: Option<String>,
}

fn admin(caller: &Caller) -> ApiResult<()> {
    caller.ensure_role(&[Role::Admin])
}

/// Dead letters, oldest first (admin).
#[utoipa::path(
    get, path = "/notifications/dead-letters", tag = "notifications",
    params(PageParams),
    responses((status = 200, body = DeadLetterPage), (status = 403, description = "Not an admin")),
    security(("bearer" = []))
)]
pub async fn dead_letters(
    State(state): State<NotificationsState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<DeadLetterPage>> {
    admin(&caller)?;
    let limit = page.limit()? as usize;
    let after: u64 = page.cursor()?.unwrap_or(0);
    let unavailable = |e: &dyn std::fmt::Display| ApiError::unavailable("message broker", e);
    let stream = state
        .jetstream
        .get_stream(state.naming.stream_name(DeadLetteredV1::STREAM))
        .await
        .map_err(|e| unavailable(&e))?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: state.naming.subject_of::<DeadLetteredV1>(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let mut items = Vec::new();
    // Nothing more within this long: the end of the stream.
    while items.len() <= limit {
        let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(250), messages.next()).await
        else {
            break;
        };
        let message = message.map_err(|e| unavailable(&e))?;
        let sequence = message.info().map_or(0, |i| i.stream_sequence);
        let Ok(envelope) = serde_json::from_slice::<Envelope<DeadLetteredV1>>(&message.payload)
        else {
            continue;
        };
        items.push(DeadLetter {
            sequence,
            event_id: envelope.data.original.id,
            event_type: envelope.data.original.event_type,
            consumer: envelope.data.consumer,
            attempts: envelope.data.attempts,
            error: envelope.data.error,
            dead_at: envelope.occurred_at,
            sent_since: false,
        });
    }
    let more = items.len() > limit;
    items.truncate(limit);
    let ids: Vec<Uuid> = items.iter().map(|item| item.event_id).collect();
    let sent: Vec<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM deliveries WHERE event_id = ANY($1) AND status = 'sent'",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    for item in &mut items {
        item.sent_since = sent.contains(&item.event_id);
    }
    let next_cursor = if more {
        items.last().map(|last| encode(&last.sequence))
    } else {
        None
    };
    Ok(Json(DeadLetterPage { items, next_cursor }))
}

/// Tries a dead letter again (admin): the worker handles it as if it had just arrived; an
/// event whose message was sent meanwhile sends nothing.
#[utoipa::path(
    post, path = "/notifications/dead-letters/{sequence}/replay", tag = "notifications",
    params(("sequence" = u64, Path)),
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "Not an admin"),
        (status = 404, description = "No dead letter at that sequence"),
    ),
    security(("bearer" = []))
)]
pub async fn replay(
    State(state): State<NotificationsState>,
    caller: Caller,
    Path(sequence): Path<String>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    admin(&caller)?;
    let not_found = || ApiError::NotFound("no dead letter at that sequence".into());
    let sequence: u64 = sequence.parse().map_err(|_| not_found())?;
    let stream = state
        .jetstream
        .get_stream(state.naming.stream_name(DeadLetteredV1::STREAM))
        .await
        .map_err(|e| ApiError::unavailable("message broker", e))?;
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|_| not_found())?;
    if message.subject.as_str() != state.naming.subject_of::<DeadLetteredV1>() {
        return Err(not_found());
    }
    let dead: Envelope<DeadLetteredV1> =
        serde_json::from_slice(&message.payload).map_err(|_| not_found())?;
    let original: RawEnvelope = dead.data.original;
    let id = publish(&state, ReplayRequestedV1 { original }, Uuid::now_v7()).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id })))
}

#[derive(OpenApi)]
#[openapi(
    paths(send, dead_letters, replay),
    tags((name = "notifications", description = "E-mail, SMS and push messages"))
)]
struct NotificationsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    NotificationsApi::openapi()
}
