//! The storage port: one table of versioned JSON documents with conditional, atomic writes.
//!
//! Every repository (payments, idempotency records, limits, ...) is built on this small port, so
//! the in-memory and DynamoDB adapters only have to agree on these semantics, and one contract
//! suite (`tests/store_contract.rs`) checks both.
//!
//! Layout (DynamoDB): partition key `pk` (S); `v` (N) version; `doc` (S) the JSON document;
//! `gsi1pk`/`gsi1sk` ... `gsi4pk`/`gsi4sk` (S) sparse index keys; `a_<name>` (S)
//! filterable attributes; `c_<name>` (N) atomic counters; `expires_at` (N) TTL in epoch seconds.

pub mod dynamo;
pub mod memory;

use std::collections::BTreeMap;

use async_trait::async_trait;

/// A secondary index. Each is sparse: an item is in it only if it carries that index's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Index {
    Gsi1,
    Gsi2,
    Gsi3,
    Gsi4,
}

impl Index {
    pub const ALL: [Index; 4] = [Index::Gsi1, Index::Gsi2, Index::Gsi3, Index::Gsi4];

    pub fn name(self) -> &'static str {
        match self {
            Index::Gsi1 => "gsi1",
            Index::Gsi2 => "gsi2",
            Index::Gsi3 => "gsi3",
            Index::Gsi4 => "gsi4",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub index: Index,
    pub partition: String,
    pub sort: String,
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    /// Incremented by the writer on every update; conditions compare against it.
    pub version: u64,
    /// The JSON document.
    pub doc: String,
    pub indexes: Vec<IndexKey>,
    /// String attributes that queries can filter on (e.g. `status`, `reference`).
    pub attrs: BTreeMap<String, String>,
    /// Atomic counters (written with [`Write::Add`]); read back here.
    pub counters: BTreeMap<String, i64>,
    /// Epoch seconds after which the item is treated as absent (DynamoDB TTL deletes it later).
    pub expires_at: Option<i64>,
}

impl Item {
    pub fn new(key: impl Into<String>, version: u64, doc: String) -> Item {
        Item {
            key: key.into(),
            version,
            doc,
            indexes: Vec::new(),
            attrs: BTreeMap::new(),
            counters: BTreeMap::new(),
            expires_at: None,
        }
    }

    pub fn with_index(mut self, index: Index, partition: impl Into<String>, sort: impl Into<String>) -> Item {
        self.indexes.push(IndexKey {
            index,
            partition: partition.into(),
            sort: sort.into(),
        });
        self
    }

    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Item {
        self.attrs.insert(name.to_owned(), value.into());
        self
    }

    pub fn expiring_at(mut self, epoch_seconds: i64) -> Item {
        self.expires_at = Some(epoch_seconds);
        self
    }

    pub fn is_expired(&self, now_epoch: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_epoch)
    }
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// No live item under the key (an expired one counts as absent).
    Absent {
        now_epoch: i64,
    },
    /// The stored item has exactly this version.
    VersionIs(u64),
}

/// A counter increment that fails the write if the counter would exceed `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterAdd {
    pub name: String,
    pub delta: i64,
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Replace the whole item (counters are kept only if the item carries them).
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: String,
        condition: Condition,
    },
    /// Add to counters atomically, creating the item if needed. `expires_at` is set when the
    /// item is created (a rolling bucket's end), never moved later.
    Add {
        key: String,
        counters: Vec<CounterAdd>,
        expires_at: Option<i64>,
    },
}

impl Write {
    pub fn key(&self) -> &str {
        match self {
            Write::Put { item, .. } => &item.key,
            Write::Delete { key, .. } | Write::Add { key, .. } => key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Inclusive(String),
    Exclusive(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    /// Lower and upper bounds on the sort key.
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
    pub order: Order,
    /// Equality filters on `attrs`; all must match.
    pub filters: Vec<(String, String)>,
    /// At most this many matching items are returned.
    pub limit: usize,
}

impl Query {
    pub fn new(index: Index, partition: impl Into<String>, order: Order, limit: usize) -> Query {
        Query {
            index,
            partition: partition.into(),
            lower: None,
            upper: None,
            order,
            filters: Vec::new(),
            limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write at this position of the batch had its condition fail; nothing was written.
    #[error("condition failed on write {index}")]
    ConditionFailed { index: usize },
    /// The store could not be reached or refused for capacity; safe to retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another transaction was in progress on one of the items (DynamoDB's
    /// `TransactionConflict`); nothing was written, so the same writes may be sent again.
    #[error("conflict with a transaction in progress on one of the items")]
    TransactionConflict,
    /// A stored item could not be read back (a bug or a manual edit).
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid request to the store: {0}")]
    Invalid(String),
}

/// Counts of work done, so tests and benchmarks can assert costs (e.g. items read by a sweep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub requests: u64,
    pub items_read: u64,
}

#[async_trait]
pub trait Table: Send + Sync {
    /// The live item under `key` (expired items are absent).
    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError>;

    /// All writes happen, or none (a transaction when there is more than one).
    /// At most 25 writes, each to a different key. While a transaction is in progress on an
    /// item, any other write to that item (single or in a transaction) is refused with
    /// [`StoreError::TransactionConflict`], as DynamoDB does: hot items belong outside
    /// transactions.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Items of one index partition within the bounds, in sort order, filtered; expired items are skipped.
    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError>;

    /// Requests made and items read since creation.
    fn stats(&self) -> StoreStats;
}

pub const MAX_WRITES_PER_BATCH: usize = 25;

/// Checks the batch rules shared by every adapter.
pub fn validate_batch(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_WRITES_PER_BATCH {
        return Err(StoreError::Invalid(format!(
            "a batch holds 1-{MAX_WRITES_PER_BATCH} writes"
        )));
    }
    let mut keys: Vec<&str> = writes.iter().map(Write::key).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid("two writes to one key in a batch".into()));
    }
    Ok(())
}
