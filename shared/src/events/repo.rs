//! Events in the table.
//!
//! - item `EVT#<event id>`: the event document, attrs `type`, `resource_id`;
//! - `gsi1` `EVT#OWNER#<merchant>#<shard>` / `<occurred>#<id>`: a merchant's events, newest first
//!   (`GET /v1/events`); events without a merchant are in no listing;
//! - `gsi2` `EVT#RES#<resource id>#<shard>` / `<occurred>#<id>`: one resource's events (`GET
//!   /v1/events?resource_id=`), read without touching the rest of the merchant's; attr `merchant`
//!   keeps them to their merchant;
//! - `gsi3` `EVT#PENDING#<shard>` / `<occurred>#<id>`: present only until the event is handled,
//!   so the redrive sweep reads undelivered events only.
//!
//! Sharded by resource id, so the events of one resource share a shard and list in order.

use chrono::{DateTime, Utc};

use super::EventRecord;
use crate::repo::listing::{newest_first, Cursor, ListFilter};
use crate::repo::{readable, shard_of, time_bound, time_sort_key, INDEX_SHARDS};
use crate::store::{Bound, Condition, Index, Item, Order, Query, StoreError, Table, Write};

/// The key prefix of event items (the stream's filter matches it).
pub const KEY_PREFIX: &str = "EVT#";

pub fn key(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// One resource's partition: all its events share its shard (listings search every shard).
fn resource_partition(resource_id: &str, shard: u32) -> String {
    format!("EVT#RES#{resource_id}#{shard}")
}

fn pending_partition(shard: u32) -> String {
    format!("EVT#PENDING#{shard}")
}

/// Writes a new event; refused if an event of that id exists (the same change twice).
pub fn insert(event: &EventRecord) -> Write {
    Write::Put {
        item: to_item(event, 1),
        condition: Condition::Absent { now_epoch: 0 },
    }
}

/// Replaces the event read at `event.version`.
pub fn update(event: &EventRecord) -> Write {
    Write::Put {
        item: to_item(event, event.version + 1),
        condition: Condition::VersionIs(event.version),
    }
}

fn to_item(event: &EventRecord, version: u64) -> Item {
    let doc = serde_json::to_string(event).unwrap_or_default();
    let shard = shard_of(&event.resource_id);
    let sort = time_sort_key(event.occurred_at, &event.id);
    let mut item = Item::new(key(&event.id), version, doc)
        .with_attr("type", event.event_type.as_str())
        .with_attr("resource_id", event.resource_id.clone())
        .with_index(Index::Gsi2, resource_partition(&event.resource_id, shard), sort.clone());
    if let Some(merchant) = &event.merchant {
        item = item.with_attr("merchant", merchant.clone()).with_index(
            Index::Gsi1,
            format!("EVT#OWNER#{merchant}#{shard}"),
            sort.clone(),
        );
    }
    if event.handled_at.is_none() {
        item = item.with_index(Index::Gsi3, pending_partition(shard), sort);
    }
    item
}

pub fn from_item(item: &Item) -> Result<EventRecord, StoreError> {
    let mut event: EventRecord =
        serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(format!("event {}: {e}", item.key)))?;
    event.version = item.version;
    Ok(event)
}

pub async fn get(table: &dyn Table, id: &str) -> Result<Option<EventRecord>, StoreError> {
    match table.get(&key(id)).await? {
        Some(item) => from_item(&item).map(Some),
        None => Ok(None),
    }
}

/// Filters of `GET /v1/events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub merchant: String,
    pub event_type: Option<super::EventType>,
    pub resource_id: Option<String>,
}

pub struct EventPage {
    pub events: Vec<EventRecord>,
    pub next: Option<Cursor>,
}

/// A merchant's events, newest first.
pub async fn list(
    table: &dyn Table,
    filter: &EventFilter,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<EventPage, StoreError> {
    let mut attrs = Vec::new();
    if let Some(t) = filter.event_type {
        attrs.push(("type".to_owned(), t.as_str().to_owned()));
    }
    // One resource's events from its own partition (kept to the merchant); else the merchant's.
    let (index, prefix) = match &filter.resource_id {
        Some(resource) => {
            attrs.push(("merchant".to_owned(), filter.merchant.clone()));
            (Index::Gsi2, format!("EVT#RES#{resource}"))
        }
        None => (Index::Gsi1, format!("EVT#OWNER#{}", filter.merchant)),
    };
    let list_filter = ListFilter {
        attrs,
        from: None,
        to: None,
    };
    let page = newest_first(table, index, &prefix, &list_filter, limit, cursor).await?;
    let events = page.items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
    Ok(EventPage {
        events,
        next: page.next,
    })
}

/// Events not yet handled that occurred before `before`, oldest first.
pub async fn pending(
    table: &dyn Table,
    before: DateTime<Utc>,
    limit_per_shard: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut due = Vec::new();
    for shard in 0..INDEX_SHARDS {
        let mut query = Query::new(Index::Gsi3, pending_partition(shard), Order::Ascending, limit_per_shard);
        query.upper = Some(Bound::Exclusive(time_bound(before)));
        due.extend(readable(table.query(&query).await?, from_item, "event"));
    }
    due.sort_by_key(|e| e.occurred_at);
    Ok(due)
}

/// Every event of one resource, in sequence order (tests and the redrive's ordering checks).
pub async fn of_resource(table: &dyn Table, merchant: &str, resource_id: &str) -> Result<Vec<EventRecord>, StoreError> {
    let filter = EventFilter {
        merchant: merchant.to_owned(),
        event_type: None,
        resource_id: Some(resource_id.to_owned()),
    };
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(table, &filter, 100, cursor.as_ref()).await?;
        all.extend(page.events);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort_by_key(|e| e.sequence);
    Ok(all)
}
