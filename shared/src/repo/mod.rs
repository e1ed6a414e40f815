//! Repositories: domain entities mapped onto the [`Table`](crate::store::Table) port.
//! Key and index layout for each entity is documented in its module.

pub mod c2b;
pub mod callbacks;
pub mod listing;
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
