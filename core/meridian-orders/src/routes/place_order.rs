use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use meridian_contracts::{
    cart::{GetCart, GetCartRequest},
    catalog::{GetProductSummary, ProductSummaryRequest},
    users::{GetAddress, GetAddressRequest},
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::Json,
    idempotency::{self, Claim},
    rpc,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    OrdersState,
    saga::{Completion, Driven},
    store::{self, ItemRow, NewOrder, Order},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PaymentInput {
    /// Only `card`.
    pub method: String,
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PlaceOrderRequest {
    pub shipping_address_id: Uuid,
    pub payment: PaymentInput,
}

/// How long a checkout waits for a free slot before it is told to come back.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(30);

/// How long the request waits for a saga driven by someone else, or postponed, to end.
const WAIT_FOR_SAGA: Duration = Duration::from_secs(8);

fn unavailable(service: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(service, error)
}

/// Builds the order from the caller's cart, re-checking every product and price.
async fn new_order(
    state: &OrdersState,
    caller: &Caller,
    request: &PlaceOrderRequest,
    key: &str,
) -> ApiResult<NewOrder> {
    let timeout = rpc::DEFAULT_TIMEOUT;
    let address_request = GetAddressRequest {
        user_id: caller.user_id.to_string(),
        address_id: request.shipping_address_id.to_string(),
    };
    let cart_request = GetCartRequest {
        user_id: caller.user_id.to_string(),
    };
    // The address and the cart at once, then every product of the cart at once.
    let (address, cart) = tokio::join!(
        rpc::call::<GetAddress>(&state.nats, &state.naming, &address_request, timeout),
        rpc::call::<GetCart>(&state.nats, &state.naming, &cart_request, timeout),
    );
    let address = address
        .map_err(|e| unavailable("users service", e))?
        .ok_or_else(|| ApiError::field("shipping_address_id", "not one of your addresses"))?;
    let cart = cart.map_err(|e| unavailable("cart service", e))?;
    if cart.lines.is_empty() {
        return Err(ApiError::field("cart", "the cart is empty"));
    }
    let summaries = futures::future::join_all(cart.lines.iter().map(|line| async {
        let summary_request = ProductSummaryRequest {
            product_id: line.product_id.clone(),
        };
        rpc::call::<GetProductSummary>(&state.nats, &state.naming, &summary_request, timeout).await
    }))
    .await;
    let mut items = Vec::with_capacity(cart.lines.len());
    let mut currency: Option<String> = None;
    let mut changed = Vec::new();
    for (line, summary) in cart.lines.iter().zip(summaries) {
        let product = summary
            .map_err(|e| unavailable("catalog", e))?
            .filter(|p| p.status == "active")
            .ok_or_else(|| {
                ApiError::field(
                    "cart",
                    format!("product {} is no longer for sale", line.product_id),
                )
            })?;
        if product.price_amount != line.unit_price_amount
            || product.price_currency != line.unit_price_currency
        {
            changed.push(line.product_id.clone());
            continue;
        }
        match &currency {
            Some(c) if *c != product.price_currency => {
                return Err(ApiError::field(
                    "cart",
                    "all products of an order must share one currency",
                ));
            }
            _ => currency = Some(product.price_currency.clone()),
        }
        let parse = |id: &str| Uuid::parse_str(id).map_err(ApiError::internal);
        let line_total = product
            .price_amount
            .checked_mul(i64::from(line.quantity))
            .ok_or_else(|| ApiError::field("cart", "the order total is too large"))?;
        items.push(ItemRow {
            product_id: parse(&product.product_id)?,
            seller_id: parse(&product.seller_id)?,
            sku: product.sku,
            name: product.name,
            quantity: line.quantity,
            unit_price: product.price_amount,
            line_total,
        });
    }
    if !changed.is_empty() {
        return Err(ApiError::Conflict(format!(
            "prices changed since these products were added to the cart: {}; review the cart",
            changed.join(", ")
        )));
    }
    Ok(NewOrder {
        id: Uuid::now_v7(),
        user_id: caller.user_id,
        region: state.region.clone(),
        currency: currency.unwrap_or_default(),
        shipping_address: serde_json::to_value(&address).map_err(ApiError::internal)?,
        payment_token: request.payment.token.clone(),
        idempotency_key: key.to_owned(),
        items,
    })
}

/// Whether the order was paid, then lost its reservation before it could be confirmed.
fn lost_reservation(order: &Order) -> bool {
    order
        .failure_reason
        .as_deref()
        .is_some_and(|reason| reason.starts_with("reservation_"))
}

/// The response that ends a checkout, by the order's final state.
fn final_response(order: &Order) -> Option<(StatusCode, Vec<u8>)> {
    let problem = |status: StatusCode, slug: &str, detail: String| {
        let body = serde_json::json!({
            "type": format!("https://meridian.dev/problems/{slug}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "order": order,
        });
        (status, body.to_string().into_bytes())
    };
    match order.status.as_str() {
        "confirmed" => Some((StatusCode::CREATED, serde_json::to_vec(order).ok()?)),
        "payment_failed" => Some(problem(
            StatusCode::PAYMENT_REQUIRED,
            "payment-failed",
            "the payment was declined; nothing was charged and the stock was released".into(),
        )),
        "cancelled" | "refunded" if lost_reservation(order) => Some(problem(
            StatusCode::CONFLICT,
            "reservation-expired",
            if order.status == "refunded" {
                "the stock could not be held until the payment completed; the payment was refunded"
            } else {
                "the stock could not be held until the payment completed; the payment is being refunded"
            }
            .into(),
        )),
        "cancelled" => Some(problem(
            StatusCode::CONFLICT,
            "out-of-stock",
            format!(
                "not enough stock; nothing was charged ({})",
                order.failure_reason.clone().unwrap_or_default()
            ),
        )),
        _ => None,
    }
}

/// Checks out the caller's cart: reserves the stock, charges the payment, confirms the order
/// and empties the cart. Requires `Idempotency-Key`; a replay answers what the first got.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters")),
    responses(
        (status = 201, description = "Paid and confirmed", body = Order),
        (status = 402, description = "Declined: the order is payment_failed, the stock released", body = meridian_platform::error::Problem),
        (status = 409, description = "Not enough stock (nothing charged), the stock no longer held when the payment completed (refunded), prices changed, or the key is in flight", body = meridian_platform::error::Problem),
        (status = 422, description = "Empty cart, unknown address, invalid input", body = meridian_platform::error::Problem),
        (status = 503, description = "A dependency is down; retry with the same key", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn place_order(
    State(state): State<OrdersState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    let (key, fingerprint, request): (_, _, PlaceOrderRequest) =
        idempotency::keyed_request(&headers, body)?;
    if request.payment.method != "card" {
        return Err(ApiError::field("payment.method", "only `card` is accepted"));
    }
    if request.payment.token.is_empty() || request.payment.token.len() > 255 {
        return Err(ApiError::field(
            "payment.token",
            "must be 1 to 255 characters",
        ));
    }
    // Everything from here touches the database: queue for a slot first, so a flood of
    // checkouts waits in line instead of exhausting the connection pool.
    let slot = tokio::time::timeout(WAIT_FOR_SLOT, state.checkout_slots.acquire()).await;
    let Ok(Ok(_slot)) = slot else {
        return Err(ApiError::Unavailable(
            "too many checkouts at once; retry with the same Idempotency-Key".into(),
        ));
    };
    let scope = format!("{}:orders", caller.user_id);
    let first = match idempotency::claim(&state.pool, &scope, &key, &fingerprint).await? {
        Claim::Replay(response) => return Ok(response),
        Claim::Proceed { first } => first,
    };
    let completion = Completion {
        scope: &scope,
        key: &key,
        respond: final_response,
    };
    match checkout(&state, &caller, &request, &completion, first).await {
        Ok(Some((status, bytes))) => Ok(idempotency::respond(status, bytes)),
        Ok(None) => {
            // The saga waits on a dependency; it goes on in the background, and a retry with
            // the same key finds the same order.
            idempotency::abandon(&state.pool, &scope, &key).await;
            Err(ApiError::Unavailable(
                "the payment could not be completed yet; retry with the same Idempotency-Key"
                    .into(),
            ))
        }
        Err(error) if error.status().is_server_error() => {
            idempotency::abandon(&state.pool, &scope, &key).await;
            Err(error)
        }
        Err(error) => {
            let (status, bytes) = idempotency::recordable(error.into_response()).await?;
            let mut tx = state.pool.begin().await?;
            idempotency::complete(&mut tx, &scope, &key, status, &bytes).await?;
            tx.commit().await?;
            Ok(idempotency::respond(status, bytes))
        }
    }
}

/// Creates the order (unless this key already did) and drives its saga; the final response,
/// recorded under the key, or `None` if the saga did not end in time. `first`: the key was
/// claimed for the first time, so no order has it yet.
async fn checkout(
    state: &OrdersState,
    caller: &Caller,
    request: &PlaceOrderRequest,
    completion: &Completion<'_>,
    first: bool,
) -> ApiResult<Option<(StatusCode, Vec<u8>)>> {
    let existing = if first {
        None
    } else {
        let mut conn = state.pool.acquire().await?;
        store::by_key(&mut conn, caller.user_id, completion.key).await?
    };
    let mut drove = match existing {
        Some(id) => state.saga.drive(id, Some(completion)).await?,
        None => {
            let order = new_order(state, caller, request, completion.key).await?;
            match state.saga.start(&order, Some(completion)).await {
                // The key's record was purged past its retention, but its order stands: that
                // order is the answer.
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    let mut conn = state.pool.acquire().await?;
                    let id = store::by_key(&mut conn, caller.user_id, completion.key)
                        .await?
                        .ok_or_else(|| ApiError::internal("an order's key without its order"))?;
                    drop(conn);
                    state.saga.drive(id, Some(completion)).await?
                }
                started => started?,
            }
        }
    };
    let deadline = tokio::time::Instant::now() + WAIT_FOR_SAGA;
    loop {
        if let Some(response) = drove.completed {
            return Ok(Some(response));
        }
        let order = drove
            .order
            .ok_or_else(|| ApiError::internal("a placed order vanished"))?;
        if let Some((status, bytes)) = final_response(&order) {
            // Finished by another driver: record the answer here.
            let mut tx = state.pool.begin().await?;
            idempotency::complete(&mut tx, completion.scope, completion.key, status, &bytes)
                .await?;
            tx.commit().await?;
            return Ok(Some((status, bytes)));
        }
        if drove.driven == Driven::Finished || tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        drove = state.saga.drive(order.id, Some(completion)).await?;
    }
}
