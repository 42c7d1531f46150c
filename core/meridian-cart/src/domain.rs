//! The cart's values: who owns a cart, a quantity, a line as stored and the cart as shown.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use meridian_platform::money::Money;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The most units of one product a line may hold.
pub const MAX_QUANTITY: i32 = 99;
/// The most lines (distinct products) a cart may hold.
pub const MAX_LINES: usize = 50;
/// A cart is forgotten this long after its last write.
pub const TTL_S: i64 = 30 * 24 * 3600;
/// The header that carries a guest's cart token, both ways.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// A line's quantity: a whole number from 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub fn parse(raw: i64) -> Option<Quantity> {
        i32::try_from(raw)
            .ok()
            .filter(|n| (1..=MAX_QUANTITY).contains(n))
            .map(Quantity)
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

pub const QUANTITY_MESSAGE: &str = "must be a whole number from 1 to 99";

/// A guest's cart token: 32 random bytes, base64url without padding. Whoever holds it holds
/// the cart, so only its hash is stored and it never appears in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct GuestToken(String);

impl GuestToken {
    pub fn generate() -> GuestToken {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        GuestToken(URL_SAFE_NO_PAD.encode(secret))
    }

    /// `None` unless `raw` is exactly what [`GuestToken::generate`] makes.
    pub fn parse(raw: &str) -> Option<GuestToken> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == 32).then(|| GuestToken(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for GuestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestToken(..)")
    }
}

/// Whose cart: a signed-in user has one, a guest has the one its token names.
#[derive(Debug, Clone)]
pub enum Owner {
    User(Uuid),
    Guest(GuestToken),
}

impl Owner {
    /// The Redis key below `<prefix>:cart:`. A guest's names a digest of the token, so the
    /// key space holds no usable token.
    pub fn key_suffix(&self) -> String {
        match self {
            Owner::User(user_id) => format!("user:{user_id}"),
            Owner::Guest(token) => {
                let digest = Sha256::digest(token.as_str().as_bytes());
                format!("guest:{}", URL_SAFE_NO_PAD.encode(digest))
            }
        }
    }

    /// A stable id for the cart, derived from its owner without revealing it.
    pub fn cart_id(&self) -> Uuid {
        let digest = Sha256::digest(format!("meridian cart id\0{}", self.key_suffix()));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }
}

/// A line as stored: the JSON value of the cart hash's field named by `product_id`. The Lua
/// scripts (`scripts/`) read `id` and `currency` and change `quantity`, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLine {
    /// A UUIDv7, so lines sort in the order they were added.
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    /// The price when the line was added, in minor units of `currency`.
    pub unit_price_amount: i64,
    pub currency: String,
}

/// A cart as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cart {
    /// Stable for the cart's owner; `null` for a guest without a (well-formed) cart token.
    pub id: Option<Uuid>,
    /// In the order they were added.
    pub items: Vec<CartItem>,
    /// `null` while the cart is empty (an empty cart has no currency).
    pub subtotal: Option<Money>,
    /// Units in the cart, all lines together.
    pub item_count: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartItem {
    /// The line's id, for `PUT` and `DELETE /cart/items/{id}`.
    pub id: Uuid,
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i32,
    /// The price when the line was added; checkout prices it again.
    pub unit_price: Money,
    pub line_total: Money,
}

impl Cart {
    pub fn of(id: Option<Uuid>, mut lines: Vec<StoredLine>) -> Cart {
        lines.sort_by_key(|line| line.id);
        debug_assert!(
            lines.windows(2).all(|w| w[0].currency == w[1].currency),
            "a cart's lines share one currency"
        );
        let subtotal = lines.first().map(|first| Money {
            amount: lines.iter().map(line_total).sum(),
            currency: first.currency.clone(),
        });
        let item_count = lines.iter().map(|line| i64::from(line.quantity)).sum();
        let items = lines
            .into_iter()
            .map(|line| CartItem {
                line_total: Money {
                    amount: line_total(&line),
                    currency: line.currency.clone(),
                },
                unit_price: Money {
                    amount: line.unit_price_amount,
                    currency: line.currency,
                },
                id: line.id,
                product_id: line.product_id,
                name: line.name,
                quantity: line.quantity,
            })
            .collect();
        Cart {
            id,
            items,
            subtotal,
            item_count,
        }
    }
}

fn line_total(line: &StoredLine) -> i64 {
    line.unit_price_amount * i64::from(line.quantity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_whole_numbers_from_1_to_99() {
        assert_eq!(Quantity::parse(1).map(Quantity::get), Some(1));
        assert_eq!(Quantity::parse(99).map(Quantity::get), Some(99));
        for bad in [0, -1, 100, i64::from(i32::MAX) + 1] {
            assert_eq!(Quantity::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn guest_tokens_are_32_bytes_of_base64url() {
        let token = GuestToken::generate();
        assert_eq!(token.as_str().len(), 43);
        assert_eq!(GuestToken::parse(token.as_str()), Some(token.clone()));
        assert_ne!(GuestToken::generate(), token);
        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &format!("{}=", token.as_str()),
        ] {
            assert!(GuestToken::parse(bad).is_none(), "{bad}");
        }
        let key = Owner::Guest(token.clone()).key_suffix();
        assert!(!key.contains(token.as_str()));
        assert_eq!(
            Owner::Guest(token.clone()).cart_id(),
            Owner::Guest(token).cart_id()
        );
    }

    #[test]
    fn totals_are_in_minor_units() {
        let line = |id: Uuid, quantity, amount| StoredLine {
            id,
            product_id: Uuid::now_v7(),
            sku: "SKU".into(),
            name: "Thing".into(),
            quantity,
            unit_price_amount: amount,
            currency: "EUR".into(),
        };
        let first = Uuid::now_v7();
        let second = Uuid::now_v7();
        let cart = Cart::of(None, vec![line(second, 1, 500), line(first, 3, 1999)]);
        assert_eq!(cart.item_count, 4);
        assert_eq!(cart.items[0].id, first);
        assert_eq!(cart.items[0].line_total.amount, 5997);
        assert_eq!(
            cart.subtotal,
            Some(Money {
                amount: 6497,
                currency: "EUR".into()
            })
        );
        assert_eq!(Cart::of(None, vec![]).subtotal, None);
    }
}
