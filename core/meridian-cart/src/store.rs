//! Carts in Redis: one hash per cart under `<prefix>:cart:<owner>`, a field per product whose
//! value is the JSON [`StoredLine`], and a TTL that every write renews.
//!
//! Invariant: every read-modify-write is one Lua script, so concurrent requests on one cart
//! never lose an update and a refused change changes nothing.

use fred::{
    clients::Pool,
    interfaces::{HashesInterface, KeysInterface, LuaInterface},
};
use meridian_platform::ApiError;
use uuid::Uuid;

use crate::domain::{MAX_LINES, MAX_QUANTITY, Owner, Quantity, StoredLine, TTL_S};

const ADD: &str = include_str!("scripts/add.lua");
const SET_QUANTITY: &str = include_str!("scripts/set_quantity.lua");
const REMOVE: &str = include_str!("scripts/remove.lua");
const MERGE: &str = include_str!("scripts/merge.lua");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("a stored cart line is malformed: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("a cart script answered {0:?}")]
    UnexpectedAnswer(Vec<String>),
}

impl From<StoreError> for ApiError {
    #[track_caller]
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Redis(error) => ApiError::unavailable("cart store", error),
            other => ApiError::internal(other),
        }
    }
}

/// What [`CartStore::add`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    Done,
    /// The cart had to exist and does not (a guest's unknown or expired token).
    Missing,
    /// The line would exceed [`MAX_QUANTITY`]; it holds `in_cart` units.
    TooMany {
        in_cart: i32,
    },
    /// The cart already has [`MAX_LINES`] lines.
    Full,
    /// The cart's lines are priced in `cart_currency`.
    OtherCurrency {
        cart_currency: String,
    },
}

/// What [`CartStore::merge`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged {
    /// Merged, or there was no guest cart (merging again is harmless).
    Done,
    /// Together the carts would have more than [`MAX_LINES`] lines.
    Full,
    OtherCurrency {
        user: String,
        guest: String,
    },
}

#[derive(Clone)]
pub struct CartStore {
    redis: Pool,
    prefix: String,
}

impl CartStore {
    pub fn new(redis: Pool, redis_prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{redis_prefix}:cart:"),
        }
    }

    fn key(&self, owner: &Owner) -> String {
        format!("{}{}", self.prefix, owner.key_suffix())
    }

    /// The cart's lines, in no particular order; none for a cart that does not exist.
    pub async fn lines(&self, owner: &Owner) -> Result<Vec<StoredLine>, StoreError> {
        let values: Vec<String> = self.redis.hvals(self.key(owner)).await?;
        values
            .iter()
            .map(|value| serde_json::from_str(value).map_err(StoreError::from))
            .collect()
    }

    /// Adds `line.quantity` units of `line.product_id`: to the line already there (keeping its
    /// id and price), or as `line`. With `must_exist`, a missing cart is left missing.
    pub async fn add(
        &self,
        owner: &Owner,
        line: &StoredLine,
        must_exist: bool,
    ) -> Result<Added, StoreError> {
        let args = vec![
            line.product_id.to_string(),
            serde_json::to_string(line)?,
            line.quantity.to_string(),
            MAX_QUANTITY.to_string(),
            MAX_LINES.to_string(),
            TTL_S.to_string(),
            if must_exist { "1" } else { "0" }.to_owned(),
        ];
        let answer: Vec<String> = self.redis.eval(ADD, self.key(owner), args).await?;
        Ok(match answer.as_slice() {
            [ok] if ok == "ok" => Added::Done,
            [missing] if missing == "missing" => Added::Missing,
            [full] if full == "full" => Added::Full,
            [too_many, in_cart] if too_many == "too_many" => Added::TooMany {
                in_cart: in_cart.parse().unwrap_or(MAX_QUANTITY),
            },
            [currency, cart_currency] if currency == "currency" => Added::OtherCurrency {
                cart_currency: cart_currency.clone(),
            },
            _ => return Err(StoreError::UnexpectedAnswer(answer)),
        })
    }

    /// Sets the quantity of line `line_id`; `false` if the cart has no such line.
    pub async fn set_quantity(
        &self,
        owner: &Owner,
        line_id: Uuid,
        quantity: Quantity,
    ) -> Result<bool, StoreError> {
        let args = vec![
            line_id.to_string(),
            quantity.get().to_string(),
            TTL_S.to_string(),
        ];
        let found: i64 = self.redis.eval(SET_QUANTITY, self.key(owner), args).await?;
        Ok(found == 1)
    }

    /// Removes line `line_id`; `false` if the cart has no such line.
    pub async fn remove(&self, owner: &Owner, line_id: Uuid) -> Result<bool, StoreError> {
        let args = vec![line_id.to_string(), TTL_S.to_string()];
        let found: i64 = self.redis.eval(REMOVE, self.key(owner), args).await?;
        Ok(found == 1)
    }

    /// Deletes the cart. Idempotent.
    pub async fn clear(&self, owner: &Owner) -> Result<(), StoreError> {
        let _: i64 = self.redis.del(self.key(owner)).await?;
        Ok(())
    }

    /// Moves `guest`'s lines into `user`'s cart and deletes `guest`'s, all or nothing.
    pub async fn merge(&self, user: &Owner, guest: &Owner) -> Result<Merged, StoreError> {
        let keys = vec![self.key(user), self.key(guest)];
        let args = vec![
            MAX_QUANTITY.to_string(),
            MAX_LINES.to_string(),
            TTL_S.to_string(),
        ];
        let answer: Vec<String> = self.redis.eval(MERGE, keys, args).await?;
        Ok(match answer.as_slice() {
            [ok] if ok == "ok" => Merged::Done,
            [full] if full == "full" => Merged::Full,
            [currency, user, guest] if currency == "currency" => Merged::OtherCurrency {
                user: user.clone(),
                guest: guest.clone(),
            },
            _ => return Err(StoreError::UnexpectedAnswer(answer)),
        })
    }

    /// The TTL left on the cart, in seconds (`-2` when it does not exist); for tests.
    pub async fn ttl_s(&self, owner: &Owner) -> Result<i64, StoreError> {
        Ok(self.redis.ttl(self.key(owner)).await?)
    }
}
