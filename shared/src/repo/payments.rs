//! Payments in the table.
//!
//! - item `PAY#<id>`: the payment document, attrs `status`, `reference`;
//! - `gsi1` `PAY#OWNER#<client>#<shard>` / `<created>#<id>`: a merchant's payments, newest first;
//! - `gsi2` `PAY#ALL#<shard>` / `<created>#<id>`: every payment (staff tools);
//! - `gsi3` `OPEN#PAY#<shard>` / `<next check>#<id>`: present only while the payment is open, so
//!   the sweeper reads open payments only, however large the table grows;
//! - `gsi4` `STKREF#<shortcode>#<REFERENCE>` / `<created>#<id>`: present only while the payment
//!   may still be paid but has no receipt (open, timed out, closed for a transport reason, or
//!   completed by STK Query, which carries none), so a C2B echo of it can find it by shortcode,
//!   reference and time when it cannot by receipt ([`PaymentRepo::echo_candidates`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::listing::{newest_first, Cursor, ListFilter};
use super::{shard_of, time_bound, time_sort_key, INDEX_SHARDS};
use crate::domain::{ClientId, Payment, PaymentId, PaymentStatus, Reference};
use crate::store::{Bound, Condition, Index, Item, Order, Query, StoreError, Table, Write};

#[derive(Clone)]
pub struct PaymentRepo {
    table: Arc<dyn Table>,
}

/// Filters of `GET /v1/payments`.
#[derive(Debug, Clone, Default)]
pub struct PaymentListFilter {
    /// `None` lists every client's payments (scope `payments:read_all`).
    pub owner: Option<ClientId>,
    pub status: Option<PaymentStatus>,
    pub reference: Option<Reference>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub struct PaymentPage {
    pub payments: Vec<Payment>,
    pub next: Option<Cursor>,
}

pub fn key(id: &PaymentId) -> String {
    format!("PAY#{id}")
}

fn open_partition(shard: u32) -> String {
    format!("OPEN#PAY#{shard}")
}

impl PaymentRepo {
    pub fn new(table: Arc<dyn Table>) -> PaymentRepo {
        PaymentRepo { table }
    }

    pub fn table(&self) -> &Arc<dyn Table> {
        &self.table
    }

    pub async fn get(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        match self.table.get(&key(id)).await? {
            Some(item) => from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Creates the payment; fails if the id exists.
    pub fn insert(payment: &Payment) -> Write {
        Write::Put {
            item: to_item(payment, 1),
            condition: Condition::Absent { now_epoch: 0 },
        }
    }

    /// Replaces the payment read at `payment.version` (the version it was read at).
    pub fn update(payment: &Payment) -> Write {
        Write::Put {
            item: to_item(payment, payment.version + 1),
            condition: Condition::VersionIs(payment.version),
        }
    }

    pub async fn list(
        &self,
        filter: &PaymentListFilter,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<PaymentPage, StoreError> {
        let (index, prefix) = match &filter.owner {
            Some(owner) => (Index::Gsi1, format!("PAY#OWNER#{owner}")),
            None => (Index::Gsi2, "PAY#ALL".to_owned()),
        };
        let mut attrs = Vec::new();
        if let Some(status) = filter.status {
            attrs.push(("status".to_owned(), status.as_str().to_owned()));
        }
        if let Some(reference) = &filter.reference {
            attrs.push(("reference".to_owned(), reference.as_str().to_owned()));
        }
        let list_filter = ListFilter {
            attrs,
            from: filter.from,
            to: filter.to,
        };
        let page = newest_first(self.table.as_ref(), index, &prefix, &list_filter, limit, cursor).await?;
        let payments = page.items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(PaymentPage {
            payments,
            next: page.next,
        })
    }

    /// Payments without a receipt on `shortcode` whose reference is `reference` (compared
    /// trimmed and case-insensitively), created in `[from, to]`, oldest first.
    pub async fn echo_candidates(
        &self,
        shortcode: &str,
        reference: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut query = Query::new(
            Index::Gsi4,
            reference_partition(shortcode, reference),
            Order::Ascending,
            limit,
        );
        query.lower = Some(Bound::Inclusive(time_bound(from)));
        query.upper = Some(Bound::Exclusive(time_bound(to + chrono::Duration::milliseconds(1))));
        Ok(super::readable(self.table.query(&query).await?, from_item, "payment"))
    }

    /// Open payments whose next check is due at `now`, oldest first; reads only open items. An
    /// item that cannot be read back is logged, alarmed and skipped: one corrupt item never stops
    /// a sweep.
    pub async fn due_for_check(&self, now: DateTime<Utc>, limit_per_shard: usize) -> Result<Vec<Payment>, StoreError> {
        let mut due = Vec::new();
        for shard in 0..INDEX_SHARDS {
            let mut query = Query::new(Index::Gsi3, open_partition(shard), Order::Ascending, limit_per_shard);
            query.upper = Some(Bound::Exclusive(time_bound(now + chrono::Duration::milliseconds(1))));
            due.extend(super::readable(self.table.query(&query).await?, from_item, "payment"));
        }
        due.sort_by_key(|p| p.next_check_at);
        Ok(due)
    }
}

fn to_item(payment: &Payment, version: u64) -> Item {
    let mut stored = payment.clone();
    stored.version = version;
    let doc = serde_json::to_string(&stored).unwrap_or_default();
    let id = payment.id.as_str();
    let shard = shard_of(id);
    let created = time_sort_key(payment.created_at, id);
    let mut item = Item::new(key(&payment.id), version, doc)
        .with_index(
            Index::Gsi1,
            format!("PAY#OWNER#{}#{shard}", payment.owner),
            created.clone(),
        )
        .with_index(Index::Gsi2, format!("PAY#ALL#{shard}"), created)
        .with_attr("status", payment.status.as_str())
        .with_attr("reference", payment.reference.as_str());
    if let (true, Some(next_check)) = (payment.status.is_open(), payment.next_check_at) {
        item = item.with_index(Index::Gsi3, open_partition(shard), time_sort_key(next_check, id));
    }
    if awaits_receipt(payment) {
        item = item.with_index(
            Index::Gsi4,
            reference_partition(&payment.shortcode, payment.reference.as_str()),
            time_sort_key(payment.created_at, id),
        );
    }
    item
}

/// Whether money may have moved for the payment but we hold no receipt for it.
fn awaits_receipt(payment: &Payment) -> bool {
    payment.mpesa_receipt.is_none()
        && (payment.status.is_open()
            || payment.status == PaymentStatus::Completed
            || payment.closed_for_transport_reason())
}

/// References compare as C2B account numbers do: trimmed, upper-case.
fn reference_partition(shortcode: &str, reference: &str) -> String {
    format!("STKREF#{shortcode}#{}", reference.trim().to_ascii_uppercase())
}

pub fn from_item(item: &Item) -> Result<Payment, StoreError> {
    let mut payment: Payment =
        serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(format!("payment {}: {e}", item.key)))?;
    payment.version = item.version;
    Ok(payment)
}
