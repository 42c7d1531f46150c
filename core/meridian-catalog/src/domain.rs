//! Product and category input, parsed and bounded at the boundary.

use meridian_platform::{ApiError, money::Money, validate::Validator};
use serde::Deserialize;
use uuid::Uuid;

pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;
pub const MAX_IMAGES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Active,
    Draft,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Active => "active",
            ProductStatus::Draft => "draft",
            ProductStatus::Archived => "archived",
        }
    }
}

/// The writable fields of a product (`POST` and `PUT`). Fields such as `id`, `seller_id`,
/// `version` or timestamps in the body are ignored.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: Money,
    pub category_id: Option<Uuid>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default = "active")]
    pub status: ProductStatus,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn active() -> ProductStatus {
    ProductStatus::Active
}

fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl ProductInput {
    pub fn validate(mut self) -> Result<Self, ApiError> {
        self.sku = self.sku.trim().to_owned();
        self.name = self.name.trim().to_owned();
        let mut v = Validator::new();
        v.length("sku", &self.sku, 1, 64)
            .check(
                self.sku
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "sku",
                "may contain only letters, digits, '-', '_' and '.'",
            )
            .length("name", &self.name, 1, 200)
            .length("description", &self.description, 0, 5000);
        if let Err(message) = self.price.validate() {
            v.check(false, "price", message);
        }
        match &self.attributes {
            serde_json::Value::Object(map) => {
                let size = self.attributes.to_string().len();
                v.check(
                    map.len() <= MAX_ATTRIBUTES,
                    "attributes",
                    "at most 50 attributes",
                )
                .check(
                    size <= MAX_ATTRIBUTES_BYTES,
                    "attributes",
                    "at most 8 KiB of attributes",
                )
                .check(
                    map.keys().all(|k| (1..=64).contains(&k.len())),
                    "attributes",
                    "attribute names must be 1 to 64 characters",
                )
                .check(
                    depth(&self.attributes) <= 3,
                    "attributes",
                    "attributes may nest at most 3 levels",
                );
            }
            _ => {
                v.check(false, "attributes", "must be a JSON object");
            }
        }
        v.check(
            self.images.len() <= MAX_IMAGES,
            "images",
            "at most 10 images",
        )
        .check(
            self.images.iter().all(|url| {
                url.len() <= 2048
                    && url.starts_with("https://")
                    && !url.chars().any(|c| c.is_whitespace() || c.is_control())
            }),
            "images",
            "each image must be an https URL of at most 2048 characters",
        );
        v.finish()?;
        Ok(self)
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CategoryInput {
    pub name: String,
    /// Lower-case letters, digits and '-'; derived from the name when absent.
    pub slug: Option<String>,
    pub parent_id: Option<Uuid>,
}

pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

impl CategoryInput {
    pub fn validate(mut self) -> Result<Self, ApiError> {
        self.name = self.name.trim().to_owned();
        let slug = self.slug.take().unwrap_or_else(|| slugify(&self.name));
        let mut v = Validator::new();
        v.length("name", &self.name, 1, 100)
            .length("slug", &slug, 1, 100)
            .check(
                slug.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "slug",
                "may contain only lower-case letters, digits and '-'",
            )
            .finish()?;
        self.slug = Some(slug);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProductInput {
        serde_json::from_value(serde_json::json!({
            "sku": "MUG-1", "name": "Mug", "price": {"amount": 1299, "currency": "EUR"}
        }))
        .expect("valid input")
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let product = input().validate().expect("valid");
        assert_eq!(product.status, ProductStatus::Active);
        assert_eq!(product.attributes, serde_json::json!({}));
    }

    #[test]
    fn every_bound_is_enforced() {
        type Mutation = Box<dyn Fn(&mut ProductInput)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("sku", Box::new(|p| p.sku = "has space".into())),
            ("name", Box::new(|p| p.name = "x".repeat(201))),
            ("price", Box::new(|p| p.price.amount = -5)),
            (
                "attributes",
                Box::new(|p| p.attributes = serde_json::json!([1, 2])),
            ),
            (
                "attributes",
                Box::new(|p| p.attributes = serde_json::json!({"a": {"b": {"c": {"d": 1}}}})),
            ),
            ("images", Box::new(|p| p.images = vec!["http://x".into()])),
            (
                "images",
                Box::new(|p| p.images = vec!["https://x".into(); 11]),
            ),
        ];
        for (field, mutate) in cases {
            let mut product = input();
            mutate(&mut product);
            match product.validate() {
                Err(ApiError::Unprocessable { errors, .. }) => {
                    assert!(errors.contains_key(field), "{field}: {errors:?}")
                }
                other => panic!("{field}: expected a 422, got {other:?}"),
            }
        }
    }

    #[test]
    fn slugs_derive_from_names() {
        assert_eq!(slugify("  Home & Garden "), "home-garden");
        assert_eq!(slugify("Books"), "books");
    }
}
