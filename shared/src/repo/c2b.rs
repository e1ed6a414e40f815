//! C2B in the table.
//!
//! - item `C2BCFG#<shortcode>`: the shortcode's [`ShortcodeConfig`] (registration, rules);
//!   `gsi1` `C2BCFG#ALL` / `<shortcode>`: every registration (the readiness check lists them).
//! - item `C2B#<TransID>`: a confirmation ([`C2bPayment`]), put only if absent, so each receipt is
//!   recorded exactly once; attrs `account`, `kind`, `match`, `verification`;
//!   `gsi1` `C2B#SC#<shortcode>#<shard>` / `<received>#<id>`: a shortcode's payments, newest first;
//!   `gsi2` `C2B#OWNER#<client>#<shard>` / `<received>#<id>`: a client's payments on all its shortcodes;
//!   `gsi3` `OPEN#C2B#<shard>` / `<next check>#<id>`: present only while unverified, so the
//!   verification sweep reads unverified confirmations only.
//! - item `C2BID#<id>`: `{trans_id}`, written with the payment, so `GET /v1/c2b/payments/{id}` is
//!   two strongly consistent reads (never an eventually consistent index).
//! - item `EXP#<id>`: an [`ExpectedPayment`]; `gsi1` `EXP#SC#<shortcode>#<shard>` / `<created>#<id>`.
//! - item `EXPACCT#<shortcode>#<ACCOUNT>`: the account number's claim, a snapshot of its expected
//!   payment (carrying `EXP#`'s version). Put only if absent (or replacing an expired one), so an
//!   account number has one live expected payment per shortcode; validation reads only this item
//!   (one GetItem); every settlement rewrites both with version conditions. Kept 90 days past
//!   expiry (TTL) so late payments are recognised as `expired`, not unknown.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::listing::{newest_first, Cursor, ListFilter};
use super::{readable, shard_of, time_bound, time_sort_key, INDEX_SHARDS};
use crate::domain::c2b::{AccountNumber, C2bPayment, Shortcode, ShortcodeConfig};
use crate::domain::c2b_verification::VerificationStatus;
use crate::domain::expected_payment::ExpectedPayment;
use crate::domain::{C2bPaymentId, ClientId, ExpectedPaymentId};
use crate::store::{Bound, Condition, Index, Item, Order, Query, StoreError, Table, Write};

/// How long an expired account claim is kept (to tell `expired` from unknown).
pub const CLAIM_RETENTION: chrono::Duration = chrono::Duration::days(90);

pub fn config_key(shortcode: &Shortcode) -> String {
    format!("C2BCFG#{shortcode}")
}

pub fn payment_key(trans_id: &str) -> String {
    format!("C2B#{trans_id}")
}

pub fn payment_id_key(id: &C2bPaymentId) -> String {
    format!("C2BID#{id}")
}

pub fn expected_key(id: &ExpectedPaymentId) -> String {
    format!("EXP#{id}")
}

pub fn claim_key(shortcode: &Shortcode, account: &AccountNumber) -> String {
    format!("EXPACCT#{shortcode}#{account}")
}

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {key}: {e}"))
}

fn doc<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Writes `item` at `read_version + 1`, or creates it when there was none.
fn versioned_put(item: Item, read_version: Option<u64>) -> Write {
    let condition = match read_version {
        Some(v) => Condition::VersionIs(v),
        None => Condition::Absent { now_epoch: 0 },
    };
    Write::Put { item, condition }
}

// ------------------------------------------------------------------ shortcode configuration

pub async fn get_config(table: &dyn Table, shortcode: &Shortcode) -> Result<Option<ShortcodeConfig>, StoreError> {
    let Some(item) = table.get(&config_key(shortcode)).await? else {
        return Ok(None);
    };
    config_from_item(&item).map(Some)
}

/// Stores `config` over the version it was read at (`config.version`, 0 = new).
pub fn put_config(config: &ShortcodeConfig) -> Write {
    let read = (config.version > 0).then_some(config.version);
    let mut stored = config.clone();
    stored.version = config.version + 1;
    versioned_put(
        Item::new(config_key(&config.shortcode), stored.version, doc(&stored)).with_index(
            Index::Gsi1,
            "C2BCFG#ALL",
            config.shortcode.as_str(),
        ),
        read,
    )
}

/// Registered shortcodes, up to `limit` (in shortcode order).
pub async fn list_configs(table: &dyn Table, limit: usize) -> Result<Vec<ShortcodeConfig>, StoreError> {
    let items = table
        .query(&Query::new(Index::Gsi1, "C2BCFG#ALL", Order::Ascending, limit))
        .await?;
    Ok(readable(items, config_from_item, "c2b_config"))
}

fn config_from_item(item: &Item) -> Result<ShortcodeConfig, StoreError> {
    let mut config: ShortcodeConfig = serde_json::from_str(&item.doc).map_err(|e| corrupt("config", &item.key, e))?;
    config.version = item.version;
    Ok(config)
}

// ------------------------------------------------------------------ C2B payments

#[derive(Serialize, Deserialize)]
struct IdPointer {
    trans_id: String,
}

fn payment_item(payment: &C2bPayment, version: u64) -> Item {
    let mut stored = payment.clone();
    stored.version = version;
    let id = payment.id.as_str();
    let shard = shard_of(id);
    let sort = time_sort_key(payment.received_at, id);
    let mut item = Item::new(payment_key(&payment.trans_id), version, doc(&stored))
        .with_index(
            Index::Gsi1,
            format!("C2B#SC#{}#{shard}", payment.shortcode),
            sort.clone(),
        )
        .with_attr("kind", payment.kind.as_str())
        .with_attr("match", payment.matched.status())
        .with_attr("verification", payment.verification.status.as_str());
    if let (VerificationStatus::Unverified, Some(next)) =
        (payment.verification.status, payment.verification.next_check_at)
    {
        item = item.with_index(Index::Gsi3, format!("OPEN#C2B#{shard}"), time_sort_key(next, id));
    }
    if let Some(owner) = &payment.owner {
        item = item.with_index(Index::Gsi2, format!("C2B#OWNER#{owner}#{shard}"), sort);
    }
    if let Some(account) = &payment.account_number {
        item = item.with_attr("account", account.as_str());
    }
    item
}

/// Records a confirmation: fails (write 0) if its receipt was recorded before.
pub fn insert_payment(payment: &C2bPayment) -> [Write; 2] {
    let pointer = doc(&IdPointer {
        trans_id: payment.trans_id.clone(),
    });
    [
        Write::Put {
            item: payment_item(payment, 1),
            condition: Condition::Absent { now_epoch: 0 },
        },
        Write::Put {
            item: Item::new(payment_id_key(&payment.id), 1, pointer),
            condition: Condition::Absent { now_epoch: 0 },
        },
    ]
}

/// Replaces the payment read at `payment.version`.
pub fn update_payment(payment: &C2bPayment) -> Write {
    versioned_put(payment_item(payment, payment.version + 1), Some(payment.version))
}

pub async fn get_payment_by_trans_id(table: &dyn Table, trans_id: &str) -> Result<Option<C2bPayment>, StoreError> {
    let Some(item) = table.get(&payment_key(trans_id)).await? else {
        return Ok(None);
    };
    payment_from_item(&item).map(Some)
}

fn payment_from_item(item: &Item) -> Result<C2bPayment, StoreError> {
    let mut payment: C2bPayment = serde_json::from_str(&item.doc).map_err(|e| corrupt("C2B payment", &item.key, e))?;
    payment.version = item.version;
    Ok(payment)
}

/// Unverified confirmations whose next check is due at `now`, oldest first (a corrupt item is
/// logged, alarmed and skipped).
pub async fn due_for_verification(
    table: &dyn Table,
    now: DateTime<Utc>,
    limit_per_shard: usize,
) -> Result<Vec<C2bPayment>, StoreError> {
    let mut due = Vec::new();
    for shard in 0..INDEX_SHARDS {
        let mut query = Query::new(
            Index::Gsi3,
            format!("OPEN#C2B#{shard}"),
            Order::Ascending,
            limit_per_shard,
        );
        query.upper = Some(Bound::Exclusive(time_bound(now + chrono::Duration::milliseconds(1))));
        due.extend(readable(table.query(&query).await?, payment_from_item, "c2b_payment"));
    }
    due.sort_by_key(|p| p.verification.next_check_at);
    Ok(due)
}

pub async fn get_payment(table: &dyn Table, id: &C2bPaymentId) -> Result<Option<C2bPayment>, StoreError> {
    let Some(item) = table.get(&payment_id_key(id)).await? else {
        return Ok(None);
    };
    let pointer: IdPointer = serde_json::from_str(&item.doc).map_err(|e| corrupt("C2B id pointer", &item.key, e))?;
    get_payment_by_trans_id(table, &pointer.trans_id).await
}

/// Filters of `GET /v1/c2b/payments`.
#[derive(Debug, Clone)]
pub enum C2bScope {
    Shortcode(Shortcode),
    Owner(ClientId),
}

#[derive(Debug, Clone)]
pub struct C2bListFilter {
    pub scope: C2bScope,
    pub account: Option<AccountNumber>,
    pub verification: Option<VerificationStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub struct C2bPage {
    pub payments: Vec<C2bPayment>,
    pub next: Option<Cursor>,
}

pub async fn list_payments(
    table: &Arc<dyn Table>,
    filter: &C2bListFilter,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<C2bPage, StoreError> {
    let (index, prefix) = match &filter.scope {
        C2bScope::Shortcode(shortcode) => (Index::Gsi1, format!("C2B#SC#{shortcode}")),
        C2bScope::Owner(owner) => (Index::Gsi2, format!("C2B#OWNER#{owner}")),
    };
    let mut attrs: Vec<(String, String)> = filter
        .account
        .iter()
        .map(|a| ("account".to_owned(), a.as_str().to_owned()))
        .collect();
    if let Some(status) = filter.verification {
        attrs.push(("verification".to_owned(), status.as_str().to_owned()));
    }
    let list_filter = ListFilter {
        attrs,
        from: filter.from,
        to: filter.to,
    };
    let page = newest_first(table.as_ref(), index, &prefix, &list_filter, limit, cursor).await?;
    let mut payments = Vec::with_capacity(page.items.len());
    for item in &page.items {
        payments.push(payment_from_item(item)?);
    }
    Ok(C2bPage {
        payments,
        next: page.next,
    })
}

// ------------------------------------------------------------------ expected payments

/// An account number's claim as read: the snapshot of its expected payment and the claim's
/// own item version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub item_version: u64,
    /// Its `version` is the version of the `EXP#` item it mirrors.
    pub expected: ExpectedPayment,
}

fn expected_item(expected: &ExpectedPayment, version: u64) -> Item {
    let mut stored = expected.clone();
    stored.version = version;
    let id = expected.id.as_str();
    Item::new(expected_key(&expected.id), version, doc(&stored))
        .with_index(
            Index::Gsi1,
            format!("EXP#SC#{}#{}", expected.shortcode, shard_of(id)),
            time_sort_key(expected.created_at, id),
        )
        .with_attr("status", expected.status.as_str())
        .with_attr("account", expected.account_number.as_str())
}

fn claim_item(expected_at_version: &ExpectedPayment, item_version: u64) -> Item {
    Item::new(
        claim_key(&expected_at_version.shortcode, &expected_at_version.account_number),
        item_version,
        doc(expected_at_version),
    )
    .expiring_at((expected_at_version.expires_at + CLAIM_RETENTION).timestamp())
}

/// Creates the expected payment and claims its account number: fails on write 1 when another
/// claim is live (`replacing` is an expired claim read just before, to be replaced).
pub fn insert_expected(expected: &ExpectedPayment, replacing: Option<&Claim>, now: DateTime<Utc>) -> [Write; 2] {
    let mut snapshot = expected.clone();
    snapshot.version = 1;
    let claim = match replacing {
        Some(old) => Write::Put {
            item: claim_item(&snapshot, old.item_version + 1),
            condition: Condition::VersionIs(old.item_version),
        },
        // A claim past its retention (TTL) counts as absent.
        None => Write::Put {
            item: claim_item(&snapshot, 1),
            condition: Condition::Absent {
                now_epoch: now.timestamp(),
            },
        },
    };
    [
        Write::Put {
            item: expected_item(expected, 1),
            condition: Condition::Absent { now_epoch: 0 },
        },
        claim,
    ]
}

/// Writes `next` (derived from `claim.expected`) to both the expected payment and its claim,
/// each over the version read.
pub fn update_expected(next: &ExpectedPayment, claim: &Claim) -> [Write; 2] {
    let read = claim.expected.version;
    let mut snapshot = next.clone();
    snapshot.version = read + 1;
    [
        versioned_put(expected_item(next, read + 1), Some(read)),
        versioned_put(claim_item(&snapshot, claim.item_version + 1), Some(claim.item_version)),
    ]
}

pub async fn get_claim(
    table: &dyn Table,
    shortcode: &Shortcode,
    account: &AccountNumber,
) -> Result<Option<Claim>, StoreError> {
    let Some(item) = table.get(&claim_key(shortcode, account)).await? else {
        return Ok(None);
    };
    let expected: ExpectedPayment =
        serde_json::from_str(&item.doc).map_err(|e| corrupt("account claim", &item.key, e))?;
    Ok(Some(Claim {
        item_version: item.version,
        expected,
    }))
}

pub async fn get_expected(table: &dyn Table, id: &ExpectedPaymentId) -> Result<Option<ExpectedPayment>, StoreError> {
    let Some(item) = table.get(&expected_key(id)).await? else {
        return Ok(None);
    };
    let mut expected: ExpectedPayment =
        serde_json::from_str(&item.doc).map_err(|e| corrupt("expected payment", &item.key, e))?;
    expected.version = item.version;
    Ok(Some(expected))
}
