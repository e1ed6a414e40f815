//! Payouts in the table, and the latest known B2C float.
//!
//! - item `PO#<id>`: the payout document, attrs `status`, `kind`;
//! - `gsi1` `PO#OWNER#<client>#<shard>` / `<created>#<id>`: a merchant's payouts, newest first;
//! - `gsi2` `PO#ALL#<shard>` / `<created>#<id>`: every payout (approvers, staff tools);
//! - `gsi3` `OPEN#PO#<shard>` / `<next check>#<id>`: present only while the payout is `pending`,
//!   `sent` or `unknown`, so the payout sweeper reads open payouts only, however large the table grows;
//! - item `FLOAT#<shortcode>`: the utility/working/charges-paid balances of the latest B2C result
//!   (exact cents), replaced only by a result that completed later.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::listing::{newest_first, Cursor, ListFilter};
use super::{shard_of, time_sort_key};
use crate::domain::payout::Payout;
use crate::domain::{ClientId, PayoutId, PayoutKind, PayoutStatus};
use crate::store::{Condition, Index, Item, StoreError, Table, Write};

#[derive(Clone)]
pub struct PayoutRepo {
    table: Arc<dyn Table>,
}

/// Filters of `GET /v1/payouts`.
#[derive(Debug, Clone, Default)]
pub struct PayoutListFilter {
    /// `None` lists every client's payouts (scope `payouts:approve`).
    pub owner: Option<ClientId>,
    pub status: Option<PayoutStatus>,
    pub kind: Option<PayoutKind>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub struct PayoutPage {
    pub payouts: Vec<Payout>,
    pub next: Option<Cursor>,
}

pub fn key(id: &PayoutId) -> String {
    format!("PO#{id}")
}

const OPEN_PREFIX: &str = "OPEN#PO";

fn open_partition(shard: u32) -> String {
    format!("{OPEN_PREFIX}#{shard}")
}

impl PayoutRepo {
    pub fn new(table: Arc<dyn Table>) -> PayoutRepo {
        PayoutRepo { table }
    }

    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    pub async fn get(&self, id: &PayoutId) -> Result<Option<Payout>, StoreError> {
        match self.table.get(&key(id)).await? {
            Some(item) => from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Creates the payout; fails if the id exists.
    pub fn insert(payout: &Payout) -> Write {
        Write::Put {
            item: to_item(payout, 1),
            condition: Condition::Absent { now_epoch: 0 },
        }
    }

    /// Replaces the payout read at `payout.version`.
    pub fn update(payout: &Payout) -> Write {
        Write::Put {
            item: to_item(payout, payout.version + 1),
            condition: Condition::VersionIs(payout.version),
        }
    }

    /// Writes `payout` (read at its version) and returns it at its new version.
    pub async fn save(&self, payout: &Payout) -> Result<Payout, StoreError> {
        self.table.write(vec![PayoutRepo::update(payout)]).await?;
        let mut saved = payout.clone();
        saved.version += 1;
        Ok(saved)
    }

    pub async fn list(
        &self,
        filter: &PayoutListFilter,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<PayoutPage, StoreError> {
        let (index, prefix) = match &filter.owner {
            Some(owner) => (Index::Gsi1, format!("PO#OWNER#{owner}")),
            None => (Index::Gsi2, "PO#ALL".to_owned()),
        };
        let mut attrs = Vec::new();
        if let Some(status) = filter.status {
            attrs.push(("status".to_owned(), status.as_str().to_owned()));
        }
        if let Some(kind) = filter.kind {
            attrs.push(("kind".to_owned(), kind.as_str().to_owned()));
        }
        let list_filter = ListFilter {
            attrs,
            from: filter.from,
            to: filter.to,
        };
        let page = newest_first(self.table.as_ref(), index, &prefix, &list_filter, limit, cursor).await?;
        let payouts = page.items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(PayoutPage {
            payouts,
            next: page.next,
        })
    }

    /// Open payouts whose next check is due at `now`, oldest first; reads only open items (a
    /// corrupt one is logged, alarmed and skipped: one bad item never stops a sweep).
    pub async fn due_for_check(&self, now: DateTime<Utc>, limit_per_shard: usize) -> Result<Vec<Payout>, StoreError> {
        let mut due = super::due_across_shards(
            self.table.as_ref(),
            OPEN_PREFIX,
            now,
            limit_per_shard,
            from_item,
            "payout",
        )
        .await?;
        due.sort_by_key(|p| p.next_check_at);
        Ok(due)
    }
}

fn to_item(payout: &Payout, version: u64) -> Item {
    let mut stored = payout.clone();
    stored.version = version;
    let doc = serde_json::to_string(&stored).unwrap_or_default();
    let id = payout.id.as_str();
    let shard = shard_of(id);
    let created = time_sort_key(payout.created_at, id);
    let mut item = Item::new(key(&payout.id), version, doc)
        .with_index(
            Index::Gsi1,
            format!("PO#OWNER#{}#{shard}", payout.owner),
            created.clone(),
        )
        .with_index(Index::Gsi2, format!("PO#ALL#{shard}"), created)
        .with_attr("status", payout.status.as_str())
        .with_attr("kind", payout.kind.as_str());
    if let (true, Some(next_check)) = (payout.status.is_open(), payout.next_check_at) {
        item = item.with_index(Index::Gsi3, open_partition(shard), time_sort_key(next_check, id));
    }
    item
}

pub fn from_item(item: &Item) -> Result<Payout, StoreError> {
    let mut payout: Payout =
        serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(format!("payout {}: {e}", item.key)))?;
    payout.version = item.version;
    Ok(payout)
}

/// The B2C account balances a result reported, exact to the cent (charges-paid may be negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatBalance {
    pub shortcode: String,
    pub utility_cents: Option<i64>,
    pub working_cents: Option<i64>,
    pub charges_paid_cents: Option<i64>,
    /// The result's `TransactionCompletedDateTime` (as an instant).
    pub as_of: DateTime<Utc>,
    /// The payout whose result reported it.
    pub payout_id: String,
}

pub fn float_key(shortcode: &str) -> String {
    format!("FLOAT#{shortcode}")
}

/// The latest known float of a shortcode.
pub async fn latest_float(table: &dyn Table, shortcode: &str) -> Result<Option<FloatBalance>, StoreError> {
    match table.get(&float_key(shortcode)).await? {
        Some(item) => serde_json::from_str(&item.doc)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("float {}: {e}", item.key))),
        None => Ok(None),
    }
}

/// Records `balance` unless a result that completed at the same time or later is already
/// stored (results arrive out of order). Conditional on the version read; retried on a race.
/// Returns whether it was written.
pub async fn record_float(table: &dyn Table, balance: &FloatBalance) -> Result<bool, StoreError> {
    let key = float_key(&balance.shortcode);
    for _ in 0..5 {
        let stored = table.get(&key).await?;
        let (condition, version) = match &stored {
            Some(item) => {
                let current: Option<FloatBalance> = serde_json::from_str(&item.doc).ok();
                if current.is_some_and(|c| c.as_of >= balance.as_of) {
                    return Ok(false);
                }
                (Condition::VersionIs(item.version), item.version + 1)
            }
            None => (Condition::Absent { now_epoch: 0 }, 1),
        };
        let doc = serde_json::to_string(balance).unwrap_or_default();
        match table
            .write(vec![Write::Put {
                item: Item::new(key.clone(), version, doc),
                condition,
            }])
            .await
        {
            Ok(()) => return Ok(true),
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable("float kept changing under us".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryTable;

    fn balance(minute: u32, utility_cents: i64) -> FloatBalance {
        FloatBalance {
            shortcode: "600992".into(),
            utility_cents: Some(utility_cents),
            working_cents: Some(90_000_000),
            charges_paid_cents: Some(-11_000),
            as_of: DateTime::parse_from_rfc3339(&format!("2026-11-21T11:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            payout_id: format!("po_{minute}"),
        }
    }

    #[tokio::test]
    async fn the_float_only_moves_forward_in_time() {
        let table = MemoryTable::new();
        assert_eq!(latest_float(&table, "600992").await.unwrap(), None);
        assert!(record_float(&table, &balance(10, 1_011_600)).await.unwrap());
        // An older result arriving late does not overwrite the newer balance...
        assert!(!record_float(&table, &balance(5, 2_000_000)).await.unwrap());
        // ...nor does a repeat of the same one.
        assert!(!record_float(&table, &balance(10, 1)).await.unwrap());
        assert_eq!(
            latest_float(&table, "600992").await.unwrap().unwrap().utility_cents,
            Some(1_011_600)
        );
        assert!(record_float(&table, &balance(11, 900_000)).await.unwrap());
        let latest = latest_float(&table, "600992").await.unwrap().unwrap();
        assert_eq!(latest.utility_cents, Some(900_000));
        assert_eq!(latest.charges_paid_cents, Some(-11_000));
        assert_eq!(latest_float(&table, "600984").await.unwrap(), None);
    }
}
