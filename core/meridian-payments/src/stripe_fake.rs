//! A local Stripe for tests (feature `fake-stripe`): the PaymentIntents and Refunds endpoints in
//! Stripe's wire format (form-encoded requests, JSON answers, error objects) with its
//! `Idempotency-Key` semantics: a key's first result is replayed for every later request with
//! the same parameters (`Idempotent-Replayed: true`), other parameters are a 400
//! `idempotency_error`.
//!
//! Test tokens: `tok_visa` succeeds; `tok_chargeDeclined` and `tok_insufficientFunds` are 402
//! card errors; `tok_processingError` charges, then answers HTTP 500 as if the answer were lost
//! (a retry with the same key gets the success); anything else is a 400 `resource_missing`.
//! [`FakeStripe::set_delay`] holds every answer back (after its effect), to make clients time out.
//!
//! It counts what it charged and refunded, so tests can prove a key never charges twice.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Form, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// A running fake; stops when dropped.
pub struct FakeStripe {
    addr: SocketAddr,
    ledger: Arc<Mutex<Ledger>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Ledger {
    next_id: u64,
    intents: HashMap<String, Intent>,
    /// Idempotency key → (endpoint and parameters, the stored answer).
    keys: HashMap<String, (String, Answer)>,
    charges: u64,
    refunds: u64,
    requests: u64,
    delay: Option<Duration>,
}

struct Intent {
    amount: i64,
    amount_refunded: i64,
    succeeded: bool,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body }
    }

    fn error(status: StatusCode, kind: &str, code: &str, extra: Value) -> Self {
        let mut error = json!({"type": kind, "code": code, "message": format!("fake: {code}")});
        if let (Some(error), Value::Object(extra)) = (error.as_object_mut(), extra) {
            error.extend(extra);
        }
        Self::new(status, json!({ "error": error }))
    }
}

impl FakeStripe {
    /// Starts on 127.0.0.1, port 0.
    pub async fn start() -> std::io::Result<FakeStripe> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let router = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/refunds", post(create_refund))
            .with_state(ledger.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "fake Stripe stopped");
            }
        });
        Ok(FakeStripe {
            addr,
            ledger,
            server,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Successful charges made (a replay makes none).
    pub fn charges(&self) -> u64 {
        self.ledger().charges
    }

    /// Refunds made.
    pub fn refunds(&self) -> u64 {
        self.ledger().refunds
    }

    /// Requests received, replays included.
    pub fn requests(&self) -> u64 {
        self.ledger().requests
    }

    /// What has been refunded of a payment intent.
    pub fn refunded(&self, payment_intent: &str) -> Option<i64> {
        self.ledger()
            .intents
            .get(payment_intent)
            .map(|intent| intent.amount_refunded)
    }

    /// Delays every answer, replays included, by `delay` (after its effect is recorded).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.ledger().delay = delay;
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Params = Vec<(String, String)>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn respond(answer: Answer, replayed: bool) -> Response {
    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    response
}

/// Runs `create` once per idempotency key; the first result is stored (unless the request was
/// invalid) and replayed. `create` answers (stored, sent): they differ only when the fake
/// simulates a lost answer.
async fn idempotent(
    ledger: &Mutex<Ledger>,
    headers: &HeaderMap,
    endpoint: &str,
    params: &Params,
    create: impl FnOnce(&mut Ledger, &Params) -> (Answer, Answer),
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Bearer sk_"));
    if !authorized {
        let answer = Answer::error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            json!({}),
        );
        return respond(answer, false);
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut sorted = params.clone();
    sorted.sort();
    let request = format!("{endpoint}?{sorted:?}");
    let (sent, replayed, delay) = {
        let mut ledger = lock(ledger);
        ledger.requests += 1;
        let delay = ledger.delay;
        match key.as_ref().and_then(|k| ledger.keys.get(k)) {
            Some((stored_request, _)) if *stored_request != request => {
                let answer = Answer::error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "idempotency_key_reused",
                    json!({}),
                );
                return respond(answer, false);
            }
            Some((_, answer)) => (answer.clone(), true, delay),
            None => {
                let (stored, sent) = create(&mut ledger, params);
                if let Some(key) = key
                    && stored.status != StatusCode::BAD_REQUEST
                {
                    ledger.keys.insert(key, (request, stored));
                }
                (sent, false, delay)
            }
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    respond(sent, replayed)
}

async fn create_intent(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    idempotent(&ledger, &headers, "payment_intents", &params, charge).await
}

fn charge(ledger: &mut Ledger, params: &Params) -> (Answer, Answer) {
    let invalid = |param: &str| {
        let answer = Answer::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            json!({"param": param}),
        );
        (answer.clone(), answer)
    };
    let Some(amount) = param(params, "amount")
        .and_then(|a| a.parse::<i64>().ok())
        .filter(|a| *a > 0)
    else {
        return invalid("amount");
    };
    let Some(currency) = param(params, "currency")
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
    else {
        return invalid("currency");
    };
    if param(params, "confirm") != Some("true") {
        return invalid("confirm");
    }
    let token = param(params, "payment_method").unwrap_or_default();
    let decline = match token {
        "tok_visa" | "tok_processingError" => None,
        "tok_chargeDeclined" => Some("generic_decline"),
        "tok_insufficientFunds" => Some("insufficient_funds"),
        _ => {
            let answer = Answer::error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "resource_missing",
                json!({"param": "payment_method"}),
            );
            return (answer.clone(), answer);
        }
    };
    ledger.next_id += 1;
    let id = format!("pi_fake_{}", ledger.next_id);
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "currency": currency,
        "status": if decline.is_some() { "requires_payment_method" } else { "succeeded" },
        "metadata": {"order_id": param(params, "metadata[order_id]")},
    });
    if let Some(decline_code) = decline {
        let error =
            json!({"type": "card_error", "code": "card_declined", "decline_code": decline_code});
        intent["last_payment_error"] = error;
        ledger.intents.insert(
            id.clone(),
            Intent {
                amount,
                amount_refunded: 0,
                succeeded: false,
            },
        );
        let answer = Answer::error(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            "card_declined",
            json!({"decline_code": decline_code, "payment_intent": intent}),
        );
        return (answer.clone(), answer);
    }
    ledger.charges += 1;
    ledger.intents.insert(
        id,
        Intent {
            amount,
            amount_refunded: 0,
            succeeded: true,
        },
    );
    let stored = Answer::new(StatusCode::OK, intent);
    if token == "tok_processingError" {
        // The charge was made but its answer is lost; a retry under the key gets `stored`.
        let lost = Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "processing_error",
            json!({}),
        );
        return (stored, lost);
    }
    (stored.clone(), stored)
}

async fn create_refund(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    idempotent(&ledger, &headers, "refunds", &params, refund).await
}

fn refund(ledger: &mut Ledger, params: &Params) -> (Answer, Answer) {
    let refused = |code: &str, param: &str| {
        let answer = Answer::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            json!({"param": param}),
        );
        (answer.clone(), answer)
    };
    let intent_id = param(params, "payment_intent")
        .unwrap_or_default()
        .to_owned();
    let Some(intent) = ledger.intents.get_mut(&intent_id) else {
        return refused("resource_missing", "payment_intent");
    };
    if !intent.succeeded {
        return refused("payment_intent_unexpected_state", "payment_intent");
    }
    let remaining = intent.amount - intent.amount_refunded;
    if remaining == 0 {
        return refused("charge_already_refunded", "payment_intent");
    }
    let amount = match param(params, "amount") {
        None => remaining,
        Some(raw) => match raw.parse::<i64>() {
            Ok(amount) if amount > 0 && amount <= remaining => amount,
            Ok(amount) if amount > remaining => return refused("amount_too_large", "amount"),
            _ => return refused("parameter_invalid", "amount"),
        },
    };
    intent.amount_refunded += amount;
    ledger.refunds += 1;
    ledger.next_id += 1;
    let answer = Answer::new(
        StatusCode::OK,
        json!({
            "id": format!("re_fake_{}", ledger.next_id),
            "object": "refund",
            "amount": amount,
            "payment_intent": intent_id,
            "status": "succeeded",
        }),
    );
    (answer.clone(), answer)
}
