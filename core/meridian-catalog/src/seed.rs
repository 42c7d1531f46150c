//! The dev profile's demo catalog: 12 categories of 20 products each, deterministic, so a
//! second run adds nothing and every developer sees the same shop.

use meridian_platform::money::Money;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::{CategoryInput, ProductInput, ProductStatus},
    store,
};

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "Kitchen",
        &["Mug", "Kettle", "Chef Knife", "Cutting Board", "Teapot"],
    ),
    (
        "Books",
        &[
            "Novel",
            "Cookbook",
            "Atlas",
            "Poetry Collection",
            "Field Guide",
        ],
    ),
    (
        "Electronics",
        &["Headphones", "Charger", "Speaker", "Keyboard", "Webcam"],
    ),
    (
        "Garden",
        &["Trowel", "Planter", "Watering Can", "Hose", "Pruner"],
    ),
    (
        "Outdoor",
        &["Tent", "Backpack", "Lantern", "Sleeping Bag", "Camp Stove"],
    ),
    (
        "Fashion",
        &["Scarf", "Jacket", "Sneakers", "Belt", "Beanie"],
    ),
    (
        "Toys",
        &["Puzzle", "Kite", "Building Blocks", "Yo-yo", "Plush Bear"],
    ),
    (
        "Sports",
        &[
            "Yoga Mat",
            "Football",
            "Tennis Racket",
            "Jump Rope",
            "Water Bottle",
        ],
    ),
    (
        "Beauty",
        &["Face Cream", "Shampoo", "Lip Balm", "Hand Soap", "Perfume"],
    ),
    (
        "Office",
        &[
            "Notebook",
            "Fountain Pen",
            "Desk Lamp",
            "Stapler",
            "Planner",
        ],
    ),
    (
        "Home",
        &["Candle", "Throw Blanket", "Vase", "Wall Clock", "Cushion"],
    ),
    (
        "Music",
        &[
            "Ukulele",
            "Harmonica",
            "Guitar Strings",
            "Metronome",
            "Drumsticks",
        ],
    ),
];

const STYLES: &[&str] = &["Classic", "Deluxe", "Everyday", "Travel"];
const COLORS: &[&str] = &["black", "white", "blue", "green", "red"];

pub struct Seeded {
    /// How many categories and products this run created.
    pub categories: usize,
    pub products: usize,
    /// Every demo product, created now or before.
    pub product_ids: Vec<Uuid>,
}

/// Creates what is missing of the demo catalog, sold by `seller_id`.
pub async fn seed_demo(pool: &PgPool, region: &str, seller_id: Uuid) -> anyhow::Result<Seeded> {
    let mut created = Seeded {
        categories: 0,
        products: 0,
        product_ids: Vec::new(),
    };
    for (c, (category_name, items)) in CATEGORIES.iter().enumerate() {
        let mut tx = pool.begin().await?;
        let slug = crate::domain::slugify(category_name);
        let existing: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
                .bind(&slug)
                .fetch_optional(&mut *tx)
                .await?;
        let category_id = match existing {
            Some(id) => id,
            None => {
                created.categories += 1;
                let input = CategoryInput {
                    name: (*category_name).to_owned(),
                    slug: Some(slug),
                    parent_id: None,
                };
                store::insert_category(&mut tx, &input).await?.id
            }
        };
        for (i, item) in items.iter().enumerate() {
            for (s, style) in STYLES.iter().enumerate() {
                let sku = format!("DEMO-{:02}-{:02}-{}", c + 1, i + 1, s + 1);
                let existing: Option<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM products WHERE sku = $1 AND deleted_at IS NULL",
                )
                .bind(&sku)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = existing {
                    created.product_ids.push(id);
                    continue;
                }
                let amount = 499 + ((c * 37 + i * 113 + s * 251) % 120) as i64 * 100;
                let input = ProductInput {
                    sku,
                    name: format!("{style} {item}"),
                    description: format!(
                        "A {} {} from our {} range, made to last and easy to love.",
                        style.to_lowercase(),
                        item.to_lowercase(),
                        category_name.to_lowercase()
                    ),
                    price: Money {
                        amount,
                        currency: "USD".into(),
                    },
                    category_id: Some(category_id),
                    attributes: serde_json::json!({
                        "style": style.to_lowercase(),
                        "color": COLORS[(i + s) % COLORS.len()],
                    }),
                    images: vec![format!(
                        "https://images.meridian.dev/demo/{}-{}.jpg",
                        c + 1,
                        i * STYLES.len() + s + 1
                    )],
                    status: ProductStatus::Active,
                };
                let product = store::insert_product(&mut tx, region, seller_id, &input).await?;
                created.product_ids.push(product.id);
                created.products += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(created)
}
