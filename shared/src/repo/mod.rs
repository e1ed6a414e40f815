//! Repositories: domain entities mapped onto the [`Table`](crate::store::Table) port.
//! Key and index layout for each entity is documented in its module.

pub mod c2b;
pub mod callbacks;
pub mod checkout_sessions;
pub mod listing;
pub mod live_connections;
pub mod payments;
pub mod payouts;
pub mod receipts;

/// Shards for list and open-payment indexes, so one busy merchant never concentrates writes on a
/// single index partition. Changing it needs a re-index of stored items.
pub const INDEX_SHARDS: u32 = 4;

/// Stable shard of an id (FNV-1a; not `DefaultHasher`, whose output may change between releases).
pub fn shard_of(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % INDEX_SHARDS
}

/// Sort key that orders by time, then id: `0001763724605123#pay_…`.
pub fn time_sort_key(at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{:016}#{id}", at.timestamp_millis().max(0))
}

/// The lowest sort key at or after `at` (for range bounds).
pub fn time_bound(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:016}", at.timestamp_millis().max(0))
}

/// The items of an "open" index (`gsi3`, `<partition prefix>#<shard>` / `<due time>#<id>`) due
/// at `now`, from every shard at once (at most `limit_per_shard` each), read back as entities
/// (see [`readable`]). The caller orders them.
pub async fn due_across_shards<T>(
    table: &dyn crate::store::Table,
    partition_prefix: &str,
    now: chrono::DateTime<chrono::Utc>,
    limit_per_shard: usize,
    read: fn(&crate::store::Item) -> Result<T, crate::store::StoreError>,
    entity: &'static str,
) -> Result<Vec<T>, crate::store::StoreError> {
    use crate::store::{Bound, Index, Order, Query};
    let queries: Vec<Query> = (0..INDEX_SHARDS)
        .map(|shard| {
            let mut query = Query::new(
                Index::Gsi3,
                format!("{partition_prefix}#{shard}"),
                Order::Ascending,
                limit_per_shard,
            );
            query.upper = Some(Bound::Exclusive(time_bound(now + chrono::Duration::milliseconds(1))));
            query
        })
        .collect();
    let results = futures::future::join_all(queries.iter().map(|q| table.query(q))).await;
    let mut due = Vec::new();
    for result in results {
        due.extend(readable(result?, read, entity));
    }
    Ok(due)
}

/// The items that read back as entities; each one that does not is logged and counted
/// (`CorruptItems{Entity}`, alarmed) and left out, so one corrupt item never stops a sweep.
pub fn readable<T>(
    items: Vec<crate::store::Item>,
    read: fn(&crate::store::Item) -> Result<T, crate::store::StoreError>,
    entity: &'static str,
) -> Vec<T> {
    items
        .iter()
        .filter_map(|item| match read(item) {
            Ok(value) => Some(value),
            Err(error) => {
                crate::metrics::count("CorruptItems", 1, &[("Entity", entity)]);
                tracing::error!(%error, key = %item.key, entity, "stored item cannot be read; skipped");
                None
            }
        })
        .collect()
}
