//! The orders' SQL, as plain functions over a connection.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use meridian_jetstream::{Envelope, Event, events::orders::OrderLine};
use meridian_platform::{
    money::Money,
    outbox::{self, Outgoing},
};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use crate::SCHEMA;

/// An order line as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderItem {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub items: Vec<OrderItem>,
    pub subtotal: Money,
    pub total: Money,
    pub currency: String,
    #[schema(value_type = Object)]
    pub shipping_address: serde_json::Value,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order with its saga state, as the saga reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub saga_step: String,
    pub region: String,
    pub currency: String,
    pub subtotal: i64,
    pub total: i64,
    pub shipping_address: sqlx::types::Json<serde_json::Value>,
    pub payment_token: Option<String>,
    pub reservation_id: Option<Uuid>,
    pub payment_id: Option<Uuid>,
    pub failure_reason: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub line_total: i64,
}

impl OrderRow {
    pub fn into_order(self, items: Vec<ItemRow>) -> Order {
        let money = |amount| Money {
            amount,
            currency: self.currency.clone(),
        };
        Order {
            id: self.id,
            user_id: self.user_id,
            status: self.status.clone(),
            items: items
                .into_iter()
                .map(|i| OrderItem {
                    product_id: i.product_id,
                    sku: i.sku,
                    name: i.name,
                    quantity: i.quantity,
                    unit_price: money(i.unit_price),
                    line_total: money(i.line_total),
                })
                .collect(),
            subtotal: money(self.subtotal),
            total: money(self.total),
            currency: self.currency.clone(),
            shipping_address: self.shipping_address.0.clone(),
            region: self.region.clone(),
            failure_reason: self.failure_reason.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

pub fn lines(items: &[ItemRow]) -> Vec<OrderLine> {
    items
        .iter()
        .map(|i| OrderLine {
            product_id: i.product_id,
            sku: i.sku.clone(),
            name: i.name.clone(),
            quantity: i.quantity,
            unit_price_amount: i.unit_price,
        })
        .collect()
}

/// What checkout decided, before the saga runs.
pub struct NewOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub region: String,
    pub currency: String,
    pub shipping_address: serde_json::Value,
    pub payment_token: String,
    pub idempotency_key: String,
    pub items: Vec<ItemRow>,
}

/// Inserts a new order with its items, first status and `events`, leased for `lease_s`
/// seconds to the caller that drives it: one statement, committed on its own (the connection
/// must not be in a transaction: the relay is woken when it returns).
pub async fn insert(
    conn: &mut PgConnection,
    order: &NewOrder,
    lease_s: i64,
    events: Outgoing,
) -> Result<OrderRow, sqlx::Error> {
    static STATEMENT: LazyLock<String> = LazyLock::new(|| {
        let outboxed = Outgoing::cte("outboxed", 17, "true");
        // The request that places the order drives its saga; the resumer steps in only if
        // that request dies, so it looks at the order only a while later.
        format!(
            "WITH placed AS ( \
                 INSERT INTO orders (id, user_id, status, saga_step, region, currency, subtotal, \
                     total, shipping_address, payment_token, idempotency_key, next_attempt_at, \
                     lease_until) \
                 VALUES ($1, $2, 'pending', 'reserve', $3, $4, $5, $5, $6, $7, $8, \
                     now() + interval '10 seconds', now() + make_interval(secs => $9)) \
                 RETURNING *), \
             items AS ( \
                 INSERT INTO order_items (order_id, product_id, seller_id, sku, name, quantity, \
                     unit_price, line_total) \
                 SELECT $1, * FROM unnest($10::uuid[], $11::uuid[], $12::text[], $13::text[], \
                     $14::int[], $15::bigint[], $16::bigint[])), \
             history AS (INSERT INTO order_status_history (order_id, status) VALUES ($1, 'pending')), \
             {outboxed} \
             SELECT * FROM placed"
        )
    });
    let subtotal: i64 = order.items.iter().map(|i| i.line_total).sum();
    let items = &order.items;
    let query = sqlx::query_as(AssertSqlSafe(STATEMENT.as_str()))
        .bind(order.id)
        .bind(order.user_id)
        .bind(&order.region)
        .bind(&order.currency)
        .bind(subtotal)
        .bind(sqlx::types::Json(&order.shipping_address))
        .bind(&order.payment_token)
        .bind(&order.idempotency_key)
        .bind(lease_s as f64)
        .bind(items.iter().map(|i| i.product_id).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.seller_id).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.sku.clone()).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.name.clone()).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.quantity).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.unit_price).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.line_total).collect::<Vec<_>>());
    let row = events.bind(query).fetch_one(&mut *conn).await?;
    outbox::wake(SCHEMA);
    Ok(row)
}

pub async fn record_status(
    tx: &mut PgConnection,
    id: Uuid,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_status_history (order_id, status) VALUES ($1, $2)")
        .bind(id)
        .bind(status)
        .execute(tx)
        .await?;
    Ok(())
}

/// `event` of order `order_id` at `version`, for a statement that carries its events.
pub fn push<E: Event>(
    events: &mut Outgoing,
    region: &str,
    order_id: Uuid,
    version: i64,
    event: E,
) -> Result<(), sqlx::Error> {
    events
        .push(Envelope::new(region, order_id, version, event))
        .map(drop)
}

pub async fn emit<E: Event>(
    tx: &mut PgConnection,
    region: &str,
    order_id: Uuid,
    version: i64,
    event: E,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(tx, SCHEMA, Envelope::new(region, order_id, version, event))
        .await
        .map(drop)
}

pub async fn row(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn items(conn: &mut PgConnection, id: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, seller_id, sku, name, quantity, unit_price, line_total \
         FROM order_items WHERE order_id = $1 ORDER BY product_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

pub async fn order(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let Some(row) = row(&mut *conn, id).await? else {
        return Ok(None);
    };
    let items = items(conn, id).await?;
    Ok(Some(row.into_order(items)))
}

pub async fn by_key(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM orders WHERE user_id = $1 AND idempotency_key = $2")
        .bind(user_id)
        .bind(key)
        .fetch_optional(conn)
        .await
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StatusChange {
    pub status: String,
    pub at: DateTime<Utc>,
}

pub async fn history(conn: &mut PgConnection, id: Uuid) -> Result<Vec<StatusChange>, sqlx::Error> {
    sqlx::query_as("SELECT status, at FROM order_status_history WHERE order_id = $1 ORDER BY at")
        .bind(id)
        .fetch_all(conn)
        .await
}

/// Orders in id order (creation order), `limit + 1` at most.
pub async fn list(
    conn: &mut PgConnection,
    user_id: Option<Uuid>,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM orders WHERE ($1::uuid IS NULL OR user_id = $1) \
         AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id > $3) \
         ORDER BY id LIMIT $4",
    )
    .bind(user_id)
    .bind(status)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(conn)
    .await
}
