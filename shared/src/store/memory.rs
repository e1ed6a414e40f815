//! In-process [`Table`] for unit tests and the dev stack, with DynamoDB's semantics.
//!
//! One `RwLock` guards plain maps; it is never held across an `.await`, so every operation is a
//! short critical section. Each index partition is a `BTreeMap` from sort key to the set of item
//! keys, so queries walk only their range.
//!
//! Transactions conflict as on DynamoDB. DynamoDB cancels a `TransactWriteItems` with
//! `TransactionConflict` when another transaction is in progress on one of its items, and refuses
//! a `PutItem`/`UpdateItem`/`DeleteItem` on such an item with `TransactionConflictException`;
//! reads are not blocked (they see the last committed state). Here a batch of more than one write
//! is prepared under the lock (conditions checked, its keys marked held), then waits a short hold
//! (one scheduler turn by default, or [`MemoryTable::with_transaction_hold`]) with the lock
//! released, then commits and releases its keys. Any batch or single write touching a held key in
//! that window is refused with [`StoreError::TransactionConflict`]. Single writes never hold, so
//! they stay one critical section. A transaction whose future is dropped during its hold still
//! commits (it was "sent"), as DynamoDB's would.
//!
//! Where DynamoDB's behaviour is a choice (limits, key-condition shapes, how a filtered query
//! pages), the rules live in [`rules`] and the DynamoDB adapter uses the same ones, so the two
//! agree even on [`StoreStats`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound as RangeBound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{Condition, Index, IndexKey, Item, Query, StoreError, StoreStats, Table, Write};

/// Source of "now" in epoch seconds, used to hide expired items from `get` and `query`.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// In-memory table. Cheap to create; share it behind an `Arc`.
pub struct MemoryTable {
    state: RwLock<State>,
    clock: Clock,
    /// How long a multi-write batch holds its items between prepare and commit (zero: one
    /// scheduler turn).
    hold: Duration,
    requests: AtomicU64,
    items_read: AtomicU64,
    conflicts: AtomicU64,
}

#[derive(Default)]
struct State {
    // Ordered maps, not hash maps: a hash map doubling under the table's lock stalls every
    // request for tens of milliseconds once a dev stack holds a few hundred thousand items.
    items: BTreeMap<String, Item>,
    /// Per index: partition -> sort key -> item keys (ties ordered by item key).
    indexes: Indexes,
    /// Keys of items a transaction in progress holds (prepared, not yet committed).
    held: BTreeSet<String>,
    /// The table's stream, as DynamoDB Streams filtered to inserts of keys with this prefix.
    stream: Option<(String, tokio::sync::mpsc::UnboundedSender<String>)>,
}

fn slot(index: Index) -> usize {
    match index {
        Index::Gsi1 => 0,
        Index::Gsi2 => 1,
        Index::Gsi3 => 2,
        Index::Gsi4 => 3,
    }
}

/// Per index: partition -> sort key -> the keys of the items with that sort key, sorted. A sorted
/// vector, not a set: a sort key almost always has one item, and a one-element set costs a whole
/// tree node per index entry.
type Indexes = [BTreeMap<String, BTreeMap<String, Vec<String>>>; 4];

fn unindex(indexes: &mut Indexes, item_key: &str, keys: &[IndexKey]) {
    for key in keys {
        let partitions = &mut indexes[slot(key.index)];
        let Some(partition) = partitions.get_mut(&key.partition) else {
            continue;
        };
        if let Some(keys) = partition.get_mut(&key.sort) {
            if let Ok(at) = keys.binary_search_by(|k| k.as_str().cmp(item_key)) {
                keys.remove(at);
            }
            if keys.is_empty() {
                partition.remove(&key.sort);
            }
        }
        if partition.is_empty() {
            partitions.remove(&key.partition);
        }
    }
}

fn index(indexes: &mut Indexes, item_key: &str, keys: &[IndexKey]) {
    for key in keys {
        let partitions = &mut indexes[slot(key.index)];
        // Look up before `entry`: an existing partition or sort key (the common case) costs no
        // allocation.
        if !partitions.contains_key(&key.partition) {
            partitions.insert(key.partition.clone(), BTreeMap::new());
        }
        let Some(partition) = partitions.get_mut(&key.partition) else {
            continue;
        };
        match partition.get_mut(&key.sort) {
            Some(keys) => {
                if let Err(at) = keys.binary_search_by(|k| k.as_str().cmp(item_key)) {
                    keys.insert(at, item_key.to_owned());
                }
            }
            None => {
                partition.insert(key.sort.clone(), vec![item_key.to_owned()]);
            }
        }
    }
}

impl State {
    fn remove(&mut self, key: &str) {
        if let Some(old) = self.items.remove(key) {
            unindex(&mut self.indexes, &old.key, &old.indexes);
        }
    }

    fn put(&mut self, mut item: Item) {
        // Read back in index order, as DynamoDB's attributes are.
        item.indexes.sort_by_key(|k| k.index);
        if let Some(stored) = self.items.get_mut(&item.key) {
            // A replacement: only index keys that changed move (most updates keep them all).
            if stored.indexes != item.indexes {
                let gone: Vec<IndexKey> = stored
                    .indexes
                    .iter()
                    .filter(|k| !item.indexes.contains(k))
                    .cloned()
                    .collect();
                let new: Vec<IndexKey> = item
                    .indexes
                    .iter()
                    .filter(|k| !stored.indexes.contains(k))
                    .cloned()
                    .collect();
                unindex(&mut self.indexes, &item.key, &gone);
                index(&mut self.indexes, &item.key, &new);
            }
            *stored = item;
            return;
        }
        if let Some((prefix, sender)) = self.stream.as_ref() {
            if item.key.starts_with(prefix.as_str()) {
                // The receiver gone (a dev stack shutting down) loses nothing: the redrive sweep
                // delivers what a stream did not.
                let _ = sender.send(item.key.clone());
            }
        }
        index(&mut self.indexes, &item.key, &item.indexes);
        self.items.insert(item.key.clone(), item);
    }

    /// Checks every condition of the batch: the steps to commit, or why it cannot.
    fn prepare(&self, writes: Vec<Write>) -> Result<Vec<Planned>, StoreError> {
        // As DynamoDB reports it: a failed condition (the first, in batch order) wins over a
        // conflict, which is retryable.
        let mut planned = Vec::with_capacity(writes.len());
        let mut conflict = false;
        for (index, write) in writes.into_iter().enumerate() {
            if self.held.contains(write.key()) {
                conflict = true;
                continue;
            }
            match plan(self, write)? {
                Some(step) => planned.push(step),
                None => return Err(StoreError::ConditionFailed { index }),
            }
        }
        if conflict {
            return Err(StoreError::TransactionConflict);
        }
        Ok(planned)
    }

    fn commit(&mut self, planned: Vec<Planned>) {
        for step in planned {
            match step {
                Planned::Put(item) => self.put(item),
                Planned::Delete(key) => self.remove(&key),
                Planned::Add {
                    key,
                    counters,
                    expires_at,
                } => {
                    let item = self
                        .items
                        .entry(key.clone())
                        .or_insert_with(|| Item::new(key, 0, String::new()));
                    for (name, value) in counters {
                        item.counters.insert(name, value);
                    }
                    // `if_not_exists(expires_at, :e)`: set on creation, never moved later.
                    if item.expires_at.is_none() {
                        item.expires_at = expires_at;
                    }
                }
            }
        }
    }
}

/// A prepared transaction holding its keys; commits and releases them when dropped, so a
/// transaction whose caller stops waiting still lands (DynamoDB's would) and never stays held.
struct Prepared<'a> {
    state: &'a RwLock<State>,
    keys: Vec<String>,
    planned: Vec<Planned>,
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.commit(std::mem::take(&mut self.planned));
        for key in &self.keys {
            state.held.remove(key);
        }
    }
}

impl Default for MemoryTable {
    fn default() -> Self {
        MemoryTable::new()
    }
}

impl MemoryTable {
    /// A table whose notion of "now" is the system clock, like DynamoDB's adapter.
    pub fn new() -> MemoryTable {
        MemoryTable::with_clock(Arc::new(rules::now_epoch))
    }

    /// A table with its own clock (a simulated one in the dev stack or a test).
    pub fn with_clock(clock: Clock) -> MemoryTable {
        MemoryTable {
            state: RwLock::new(State::default()),
            clock,
            hold: Duration::ZERO,
            requests: AtomicU64::new(0),
            items_read: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    /// Multi-write batches hold their items this long before committing (DynamoDB's own
    /// transactions take milliseconds): a wider, deterministic conflict window for tests.
    pub fn with_transaction_hold(mut self, hold: Duration) -> MemoryTable {
        self.hold = hold;
        self
    }

    /// The keys of items inserted from now on whose key starts with `prefix`, in commit order:
    /// DynamoDB Streams (new images, filtered to inserts) for the dev stack and tests. One
    /// stream per table; a new call replaces the previous one.
    pub fn stream_inserts(&self, prefix: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.stream = Some((prefix.to_owned(), sender));
        receiver
    }

    /// Writes refused with [`StoreError::TransactionConflict`] since creation.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Drops items expired at `now_epoch`, as DynamoDB's TTL sweeper eventually does; returns how
    /// many. Optional (expired items are already invisible); keeps a long-running dev stack small.
    pub fn purge_expired(&self, now_epoch: i64) -> usize {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let expired: Vec<String> = state
            .items
            .values()
            .filter(|item| item.is_expired(now_epoch) && !state.held.contains(&item.key))
            .map(|item| item.key.clone())
            .collect();
        for key in &expired {
            state.remove(key);
        }
        expired.len()
    }

    /// Stored items, expired ones included (until purged).
    pub fn len(&self) -> usize {
        self.state.read().unwrap_or_else(PoisonError::into_inner).items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn count(&self, requests: u64, items_read: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.items_read.fetch_add(items_read, Ordering::Relaxed);
    }
}

fn to_range(bound: &Option<super::Bound>) -> RangeBound<&str> {
    match bound {
        None => RangeBound::Unbounded,
        Some(super::Bound::Inclusive(s)) => RangeBound::Included(s.as_str()),
        Some(super::Bound::Exclusive(s)) => RangeBound::Excluded(s.as_str()),
    }
}

/// What a write will do once every condition in the batch has passed.
enum Planned {
    Put(Item),
    Delete(String),
    Add {
        key: String,
        counters: Vec<(String, i64)>,
        expires_at: Option<i64>,
    },
}

/// Checks one write's condition against the current state; `Ok(None)` means it failed.
fn plan(state: &State, write: Write) -> Result<Option<Planned>, StoreError> {
    let passes = |key: &str, condition: &Condition| {
        let stored = state.items.get(key);
        match condition {
            Condition::Always => true,
            Condition::Absent { now_epoch } => stored.is_none_or(|item| item.is_expired(*now_epoch)),
            // Like DynamoDB's `v = :v`: compares the stored item, expired or not.
            Condition::VersionIs(version) => stored.is_some_and(|item| item.version == *version),
        }
    };
    Ok(match write {
        Write::Put { item, condition } => passes(&item.key, &condition).then_some(Planned::Put(item)),
        Write::Delete { key, condition } => passes(&key, &condition).then_some(Planned::Delete(key)),
        Write::Add {
            key,
            counters,
            expires_at,
        } => {
            let stored = state.items.get(&key);
            let mut values = Vec::with_capacity(counters.len());
            for add in counters {
                let current = stored.and_then(|item| item.counters.get(&add.name)).copied();
                if !rules::counter_add_allowed(current, add.delta, add.max)? {
                    return Ok(None);
                }
                let next = current
                    .unwrap_or(0)
                    .checked_add(add.delta)
                    .ok_or_else(|| StoreError::Invalid(format!("counter {} would overflow", add.name)))?;
                values.push((add.name, next));
            }
            Some(Planned::Add {
                key,
                counters: values,
                expires_at,
            })
        }
    })
}

#[async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        rules::validate_key(key)?;
        let now = (self.clock)();
        let found = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .items
            .get(key)
            .cloned();
        self.count(1, u64::from(found.is_some()));
        Ok(found.filter(|item| !item.is_expired(now)))
    }

    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        rules::validate_writes(&writes)?;
        let prepared = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            self.count(1, 0);
            let single = writes.len() == 1;
            // Only a multi-write batch holds its keys (read before `prepare` consumes the writes).
            let keys: Vec<String> = if single {
                Vec::new()
            } else {
                writes.iter().map(|w| w.key().to_owned()).collect()
            };
            let planned = state.prepare(writes).inspect_err(|error| {
                if *error == StoreError::TransactionConflict {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
            })?;
            if single {
                // A single write is atomic on its own: no hold, no window.
                state.commit(planned);
                return Ok(());
            }
            state.held.extend(keys.iter().cloned());
            Prepared {
                state: &self.state,
                keys,
                planned,
            }
        };
        if self.hold.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.hold).await;
        }
        drop(prepared);
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        rules::validate_query(query)?;
        let Some(range) = rules::SortRange::plan(query) else {
            return Ok(Vec::new());
        };
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let now = (self.clock)();
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let Some(partition) = state.indexes[slot(query.index)].get(&query.partition) else {
            drop(state);
            self.count(1, 0);
            return Ok(Vec::new());
        };
        // `SortRange::plan` guarantees lower <= upper, so `range` cannot panic.
        let entries = partition.range::<str, _>((to_range(&range.lower), to_range(&range.upper)));
        let keys: Box<dyn Iterator<Item = (&String, &String)>> = match query.order {
            super::Order::Ascending => Box::new(entries.flat_map(|(sort, keys)| keys.iter().map(move |k| (sort, k)))),
            super::Order::Descending => Box::new(
                entries
                    .rev()
                    .flat_map(|(sort, keys)| keys.iter().rev().map(move |k| (sort, k))),
            ),
        };

        // Walk in the same pages DynamoDB would read, so `items_read` matches its ScannedCount.
        let filtered = !query.filters.is_empty();
        let mut found = Vec::new();
        let mut page = 0u32;
        let mut page_size = rules::page_limit(query.limit, page, filtered);
        let mut in_page = 0usize;
        let mut scanned = 0u64;
        for (sort, key) in keys {
            if in_page == page_size {
                if found.len() >= query.limit {
                    break;
                }
                page += 1;
                page_size = rules::page_limit(query.limit - found.len(), page, filtered);
                in_page = 0;
            }
            in_page += 1;
            scanned += 1;
            let Some(item) = state.items.get(key) else { continue };
            if range.keeps(sort) && !item.is_expired(now) && rules::filters_match(&query.filters, &item.attrs) {
                found.push(item.clone());
            }
        }
        drop(state);
        found.truncate(query.limit);
        self.count(u64::from(page) + 1, scanned);
        Ok(found)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            requests: self.requests.load(Ordering::Relaxed),
            items_read: self.items_read.load(Ordering::Relaxed),
        }
    }
}

/// DynamoDB's rules and limits, shared by both adapters so they refuse and page alike.
pub(crate) mod rules {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::{SystemTime, UNIX_EPOCH};

    use crate::store::{validate_batch, Bound, Item, Query, StoreError, Write};

    /// DynamoDB's item size limit.
    pub const MAX_ITEM_BYTES: usize = 400 * 1024;
    /// DynamoDB's limits on partition and sort key values.
    pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
    pub const MAX_SORT_KEY_BYTES: usize = 1024;
    /// A filtered query reads at least this many items per page (fewer round trips when the
    /// filter is selective), doubling on each further page up to [`MAX_PAGE`].
    pub const MIN_FILTERED_PAGE: usize = 25;
    pub const MAX_PAGE: usize = 1000;

    pub fn now_epoch() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// Items to ask for on page `page` of a query that still needs `remaining` matches.
    /// Unfiltered first pages ask for exactly what is needed; later pages (expired items were
    /// skipped) and filtered pages read more, growing geometrically.
    pub fn page_limit(remaining: usize, page: u32, filtered: bool) -> usize {
        let wanted = if page == 0 && !filtered {
            remaining
        } else {
            remaining.max(MIN_FILTERED_PAGE).saturating_mul(1usize << page.min(5))
        };
        wanted.clamp(1, MAX_PAGE)
    }

    pub fn validate_key(key: &str) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::Invalid("an item key cannot be empty".into()));
        }
        if key.len() > MAX_PARTITION_KEY_BYTES {
            return Err(StoreError::Invalid(format!(
                "an item key is at most {MAX_PARTITION_KEY_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn validate_name(kind: &str, name: &str) -> Result<(), StoreError> {
        if name.is_empty() || name.len() > 255 {
            return Err(StoreError::Invalid(format!("{kind} names are 1-255 bytes")));
        }
        Ok(())
    }

    /// Rough DynamoDB item size: attribute names plus values (numbers counted generously).
    fn item_bytes(item: &Item) -> usize {
        const NUMBER: usize = 21;
        let mut size = "pk".len() + item.key.len() + "v".len() + NUMBER + "doc".len() + item.doc.len();
        size += item
            .indexes
            .iter()
            .map(|k| 12 + k.partition.len() + k.sort.len())
            .sum::<usize>();
        size += item.attrs.iter().map(|(n, v)| 2 + n.len() + v.len()).sum::<usize>();
        size += item.counters.keys().map(|n| 2 + n.len() + NUMBER).sum::<usize>();
        size + item.expires_at.map_or(0, |_| "expires_at".len() + NUMBER)
    }

    pub fn validate_item(item: &Item) -> Result<(), StoreError> {
        validate_key(&item.key)?;
        let mut seen = BTreeSet::new();
        for key in &item.indexes {
            if !seen.insert(key.index) {
                return Err(StoreError::Invalid(format!(
                    "item carries two keys for {}",
                    key.index.name()
                )));
            }
            if key.partition.is_empty() || key.sort.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "{} key values cannot be empty",
                    key.index.name()
                )));
            }
            if key.partition.len() > MAX_PARTITION_KEY_BYTES || key.sort.len() > MAX_SORT_KEY_BYTES {
                return Err(StoreError::Invalid(format!(
                    "{} key values are too long",
                    key.index.name()
                )));
            }
        }
        for name in item.attrs.keys() {
            validate_name("attribute", name)?;
        }
        for name in item.counters.keys() {
            validate_name("counter", name)?;
        }
        if item_bytes(item) > MAX_ITEM_BYTES {
            return Err(StoreError::Invalid(format!(
                "item {} exceeds {MAX_ITEM_BYTES} bytes",
                item.key
            )));
        }
        Ok(())
    }

    /// The batch rules of the port plus DynamoDB's per-item limits.
    pub fn validate_writes(writes: &[Write]) -> Result<(), StoreError> {
        validate_batch(writes)?;
        for write in writes {
            match write {
                Write::Put { item, .. } => validate_item(item)?,
                Write::Delete { key, .. } => validate_key(key)?,
                Write::Add { key, counters, .. } => {
                    validate_key(key)?;
                    let mut names = BTreeSet::new();
                    for add in counters {
                        validate_name("counter", &add.name)?;
                        if !names.insert(add.name.as_str()) {
                            return Err(StoreError::Invalid(format!(
                                "counter {} added twice in one write",
                                add.name
                            )));
                        }
                        max_minus_delta(add.max, add.delta, &add.name)?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn validate_query(query: &Query) -> Result<(), StoreError> {
        if query.partition.is_empty() || query.partition.len() > MAX_PARTITION_KEY_BYTES {
            return Err(StoreError::Invalid("a query partition is 1-2048 bytes".into()));
        }
        for (name, _) in &query.filters {
            validate_name("filter attribute", name)?;
        }
        Ok(())
    }

    /// `max - delta`: the highest stored counter the add may start from.
    pub fn max_minus_delta(max: Option<i64>, delta: i64, name: &str) -> Result<Option<i64>, StoreError> {
        max.map(|max| {
            max.checked_sub(delta)
                .ok_or_else(|| StoreError::Invalid(format!("counter {name}: max - delta overflows")))
        })
        .transpose()
    }

    /// Whether adding `delta` to a counter currently at `current` (absent = 0) stays within `max`.
    pub fn counter_add_allowed(current: Option<i64>, delta: i64, max: Option<i64>) -> Result<bool, StoreError> {
        Ok(match max_minus_delta(max, delta, "")? {
            None => true,
            Some(limit) => current.unwrap_or(0) <= limit,
        })
    }

    pub fn filters_match(filters: &[(String, String)], attrs: &BTreeMap<String, String>) -> bool {
        filters.iter().all(|(name, value)| attrs.get(name) == Some(value))
    }

    /// The sort-key range a query reads. DynamoDB's key condition takes one comparison or a
    /// BETWEEN (inclusive), so two bounds are read inclusively and an exclusive end is dropped
    /// after reading (it still counts as read).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SortRange {
        pub lower: Option<Bound>,
        pub upper: Option<Bound>,
        pub drop_lower: Option<String>,
        pub drop_upper: Option<String>,
    }

    impl SortRange {
        /// `None` when nothing can match (no request is needed).
        pub fn plan(query: &Query) -> Option<SortRange> {
            let value = |b: &Bound| match b {
                Bound::Inclusive(s) | Bound::Exclusive(s) => s.clone(),
            };
            // Sort keys are never empty: a lower bound of "" is no bound; an upper one excludes all.
            let lower = query.lower.clone().filter(|b| !value(b).is_empty());
            let upper = query.upper.clone();
            if upper.as_ref().is_some_and(|b| value(b).is_empty()) {
                return None;
            }
            match (lower, upper) {
                (Some(lower), Some(upper)) => {
                    let (lo, hi) = (value(&lower), value(&upper));
                    let exclusive = |b: &Bound| matches!(b, Bound::Exclusive(_));
                    if lo > hi || (lo == hi && (exclusive(&lower) || exclusive(&upper))) {
                        return None;
                    }
                    Some(SortRange {
                        drop_lower: exclusive(&lower).then(|| lo.clone()),
                        drop_upper: exclusive(&upper).then(|| hi.clone()),
                        lower: Some(Bound::Inclusive(lo)),
                        upper: Some(Bound::Inclusive(hi)),
                    })
                }
                (lower, upper) => Some(SortRange {
                    lower,
                    upper,
                    drop_lower: None,
                    drop_upper: None,
                }),
            }
        }

        /// Whether an item read with this sort key is kept.
        pub fn keeps(&self, sort: &str) -> bool {
            self.drop_lower.as_deref() != Some(sort) && self.drop_upper.as_deref() != Some(sort)
        }
    }
}
