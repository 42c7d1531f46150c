//! Stock for the dev profile's demo catalog.

use sqlx::PgPool;
use uuid::Uuid;

use crate::store;

/// Gives every product in `product_ids` a deterministic quantity (5 to 200) in every region,
/// where it has none yet; returns how many rows it created.
pub async fn ensure_stock(
    pool: &PgPool,
    product_ids: &[Uuid],
    regions: &[String],
) -> anyhow::Result<usize> {
    let mut created = 0;
    let mut tx = pool.begin().await?;
    for (i, product_id) in product_ids.iter().enumerate() {
        for (r, region) in regions.iter().enumerate() {
            let units = 5 + ((i * 37 + r * 11) % 196) as i32;
            if store::insert_if_absent(&mut tx, *product_id, region, units).await? {
                created += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(created)
}
