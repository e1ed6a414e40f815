//! The audit log in the table.
//!
//! - item `AUD#<source>`: one entry (the source is unique, so appending the same thing twice is
//!   refused by the item's own condition); `gsi1` `AUD#C#<chain>` / `<seq>#<chain>`: a chain in
//!   order; `gsi2` `AUD#M#<merchant>#<shard>` / `<recorded>#<chain>:<seq>`: a merchant's entries,
//!   newest first (`GET /v1/audit`); attrs `kind`, `action`, `chain`;
//! - item `AUDH#<chain>`: the chain's head (last seq and hash; every append is a conditional
//!   write of it, so a chain never forks); `gsi3` `AUD#HEADS#<shard>` / `<updated>#<chain>`: the
//!   heads changed since a time (the digests) and every chain (verification);
//! - item `AUDD#<merchant>#<seq>`: a digest; `gsi1` `AUD#D#<merchant>` / `<seq>#d`: a merchant's
//!   digests in order; item `AUDDH#<merchant>`: the last digest (`gsi3` `AUD#DHEADS` /
//!   `<merchant>`: every merchant with digests); item `AUDDW`: how far the digests have reached.
//!
//! No item is on the path of every payment of a merchant: heads are per resource.

use chrono::{DateTime, Utc};

use super::chain::Head;
use super::digest::{Digest, DigestHead, Watermark};
use super::entry::AuditEntry;
use crate::repo::{shard_of, time_bound, time_sort_key, INDEX_SHARDS};
use crate::store::{Bound, Condition, Index, Item, Order, Query, StoreError, Table, Write};

/// The merchant digests of chains with no known merchant are filed under.
pub const NO_MERCHANT: &str = "-";

pub fn entry_key(source: &str) -> String {
    format!("AUD#{source}")
}

pub fn head_key(chain: &str) -> String {
    format!("AUDH#{chain}")
}

fn chain_partition(chain: &str) -> String {
    format!("AUD#C#{chain}")
}

/// The prefix of a merchant's sharded partitions (`#<shard>` follows).
pub fn merchant_prefix(merchant: &str) -> String {
    format!("AUD#M#{merchant}")
}

fn heads_partition(shard: u32) -> String {
    format!("AUD#HEADS#{shard}")
}

fn seq_sort(seq: u64, tail: &str) -> String {
    format!("{seq:016}#{tail}")
}

fn corrupt(what: &str, key: &str, error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what} {key}: {error}"))
}

/// Writes a new entry; refused if its source was appended before.
pub fn insert_entry(entry: &AuditEntry) -> Write {
    let doc = serde_json::to_string(entry).unwrap_or_default();
    let mut item = Item::new(entry_key(&entry.source), 1, doc)
        .with_attr("kind", entry.kind.as_str())
        .with_attr("action", entry.action.clone())
        .with_attr("chain", entry.chain.clone())
        .with_index(
            Index::Gsi1,
            chain_partition(&entry.chain),
            seq_sort(entry.seq, &entry.chain),
        );
    if let Some(merchant) = &entry.merchant {
        let shard = shard_of(&entry.chain);
        item = item.with_index(
            Index::Gsi2,
            format!("{}#{shard}", merchant_prefix(merchant)),
            time_sort_key(entry.recorded_at, &entry.name()),
        );
    }
    Write::Put {
        item,
        condition: Condition::Absent { now_epoch: 0 },
    }
}

pub fn entry_from_item(item: &Item) -> Result<AuditEntry, StoreError> {
    serde_json::from_str(&item.doc).map_err(|e| corrupt("audit entry", &item.key, e))
}

/// The head after appending: created (absent before) or moved on from the version read.
pub fn write_head(head: &Head) -> Write {
    let doc = serde_json::to_string(head).unwrap_or_default();
    let item = Item::new(head_key(&head.chain), head.version + 1, doc).with_index(
        Index::Gsi3,
        heads_partition(shard_of(&head.chain)),
        time_sort_key(head.updated_at, &head.chain),
    );
    let condition = match head.version {
        0 => Condition::Absent { now_epoch: 0 },
        v => Condition::VersionIs(v),
    };
    Write::Put { item, condition }
}

pub fn head_from_item(item: &Item) -> Result<Head, StoreError> {
    let mut head: Head = serde_json::from_str(&item.doc).map_err(|e| corrupt("audit head", &item.key, e))?;
    head.version = item.version;
    Ok(head)
}

pub async fn head(table: &dyn Table, chain: &str) -> Result<Option<Head>, StoreError> {
    match table.get(&head_key(chain)).await? {
        Some(item) => head_from_item(&item).map(Some),
        None => Ok(None),
    }
}

pub async fn entry(table: &dyn Table, source: &str) -> Result<Option<AuditEntry>, StoreError> {
    match table.get(&entry_key(source)).await? {
        Some(item) => entry_from_item(&item).map(Some),
        None => Ok(None),
    }
}

/// Up to `limit` entries of `chain` after `after_seq`, in order.
pub async fn chain_page(
    table: &dyn Table,
    chain: &str,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut query = Query::new(Index::Gsi1, chain_partition(chain), Order::Ascending, limit);
    query.lower = Some(Bound::Exclusive(seq_sort(after_seq, "~")));
    if after_seq == 0 {
        query.lower = None;
    }
    table.query(&query).await?.iter().map(entry_from_item).collect()
}

/// Every entry of `chain`, in order.
pub async fn whole_chain(table: &dyn Table, chain: &str) -> Result<Vec<AuditEntry>, StoreError> {
    let mut all: Vec<AuditEntry> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e.seq);
        let page = chain_page(table, chain, after, 500).await?;
        let done = page.len() < 500;
        // A repeated number would stall the walk: stop at the page's end instead.
        if page.last().is_some_and(|e| e.seq <= after) {
            all.extend(page);
            break;
        }
        all.extend(page);
        if done {
            break;
        }
    }
    Ok(all)
}

/// Heads updated in `(after, through]`, of every shard, up to `limit_per_shard` each, oldest
/// first. `after = None`: from the beginning.
pub async fn heads_updated(
    table: &dyn Table,
    after: Option<DateTime<Utc>>,
    through: DateTime<Utc>,
    limit_per_shard: usize,
) -> Result<Vec<Head>, StoreError> {
    let mut heads = Vec::new();
    for shard in 0..INDEX_SHARDS {
        let mut lower = after.map(|a| Bound::Exclusive(time_bound(a + chrono::Duration::milliseconds(1))));
        loop {
            let mut query = Query::new(Index::Gsi3, heads_partition(shard), Order::Ascending, limit_per_shard);
            query.lower = lower.clone();
            query.upper = Some(Bound::Exclusive(time_bound(
                through + chrono::Duration::milliseconds(1),
            )));
            let items = table.query(&query).await?;
            let full = items.len() == limit_per_shard;
            let last_sort = items.last().and_then(|i| {
                i.indexes
                    .iter()
                    .find(|k| k.index == Index::Gsi3)
                    .map(|k| k.sort.clone())
            });
            for item in &items {
                heads.push(head_from_item(item)?);
            }
            match (full, last_sort) {
                (true, Some(sort)) => lower = Some(Bound::Exclusive(sort)),
                _ => break,
            }
        }
    }
    heads.sort_by(|a, b| (a.updated_at, &a.chain).cmp(&(b.updated_at, &b.chain)));
    Ok(heads)
}

// Digests.

pub fn digest_key(merchant: &str, seq: u64) -> String {
    format!("AUDD#{merchant}#{seq:016}")
}

pub fn digest_head_key(merchant: &str) -> String {
    format!("AUDDH#{merchant}")
}

pub const WATERMARK_KEY: &str = "AUDDW";

pub fn insert_digest(digest: &Digest) -> Write {
    let doc = serde_json::to_string(digest).unwrap_or_default();
    let item = Item::new(digest_key(&digest.merchant, digest.seq), 1, doc).with_index(
        Index::Gsi1,
        format!("AUD#D#{}", digest.merchant),
        seq_sort(digest.seq, "d"),
    );
    Write::Put {
        item,
        condition: Condition::Absent { now_epoch: 0 },
    }
}

pub fn write_digest_head(head: &DigestHead) -> Write {
    let doc = serde_json::to_string(head).unwrap_or_default();
    let item = Item::new(digest_head_key(&head.merchant), head.version + 1, doc).with_index(
        Index::Gsi3,
        "AUD#DHEADS",
        head.merchant.clone(),
    );
    let condition = match head.version {
        0 => Condition::Absent { now_epoch: 0 },
        v => Condition::VersionIs(v),
    };
    Write::Put { item, condition }
}

pub async fn digest_head(table: &dyn Table, merchant: &str) -> Result<Option<DigestHead>, StoreError> {
    match table.get(&digest_head_key(merchant)).await? {
        Some(item) => {
            let mut head: DigestHead =
                serde_json::from_str(&item.doc).map_err(|e| corrupt("audit digest head", &item.key, e))?;
            head.version = item.version;
            Ok(Some(head))
        }
        None => Ok(None),
    }
}

/// Every merchant with digests.
pub async fn digest_heads(table: &dyn Table) -> Result<Vec<DigestHead>, StoreError> {
    let mut heads = Vec::new();
    let mut lower: Option<Bound> = None;
    loop {
        let mut query = Query::new(Index::Gsi3, "AUD#DHEADS", Order::Ascending, 500);
        query.lower = lower.clone();
        let items = table.query(&query).await?;
        for item in &items {
            let mut head: DigestHead =
                serde_json::from_str(&item.doc).map_err(|e| corrupt("audit digest head", &item.key, e))?;
            head.version = item.version;
            heads.push(head);
        }
        match items.last() {
            Some(last) if items.len() == 500 => {
                lower = Some(Bound::Exclusive(
                    last.indexes
                        .iter()
                        .find(|k| k.index == Index::Gsi3)
                        .map(|k| k.sort.clone())
                        .unwrap_or_default(),
                ))
            }
            _ => break,
        }
    }
    Ok(heads)
}

/// Every digest of `merchant`, in order.
pub async fn digests(table: &dyn Table, merchant: &str) -> Result<Vec<Digest>, StoreError> {
    let mut all: Vec<Digest> = Vec::new();
    loop {
        let mut query = Query::new(Index::Gsi1, format!("AUD#D#{merchant}"), Order::Ascending, 500);
        if let Some(last) = all.last() {
            query.lower = Some(Bound::Exclusive(seq_sort(last.seq, "d")));
        }
        let items = table.query(&query).await?;
        let n = items.len();
        for item in &items {
            all.push(serde_json::from_str(&item.doc).map_err(|e| corrupt("audit digest", &item.key, e))?);
        }
        if n < 500 {
            break;
        }
    }
    Ok(all)
}

pub async fn watermark(table: &dyn Table) -> Result<Option<Watermark>, StoreError> {
    match table.get(WATERMARK_KEY).await? {
        Some(item) => {
            let mut mark: Watermark =
                serde_json::from_str(&item.doc).map_err(|e| corrupt("audit watermark", &item.key, e))?;
            mark.version = item.version;
            Ok(Some(mark))
        }
        None => Ok(None),
    }
}

pub fn write_watermark(mark: &Watermark) -> Write {
    let doc = serde_json::to_string(mark).unwrap_or_default();
    let condition = match mark.version {
        0 => Condition::Absent { now_epoch: 0 },
        v => Condition::VersionIs(v),
    };
    Write::Put {
        item: Item::new(WATERMARK_KEY, mark.version + 1, doc),
        condition,
    }
}
