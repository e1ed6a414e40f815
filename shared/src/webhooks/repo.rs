//! Webhook endpoints and deliveries in the table.
//!
//! - item `WHE#<endpoint id>`: the endpoint; `gsi1` `WHE#OWNER#<merchant>` / `<created>#<id>`:
//!   a merchant's endpoints (at most [`super::endpoint::MAX_ENDPOINTS_PER_MERCHANT`], read whole
//!   when an event is fanned out);
//! - item `WHD#<delivery id>`: one event's delivery to one endpoint with its attempts;
//!   `gsi2` `WHD#EVT#<event id>` / `<endpoint id>`: an event's deliveries;
//!   `gsi3` `WHD#DUE#<shard>` / `<next attempt>#<id>`: present only while pending, so the sweep
//!   reads due deliveries only, however many have succeeded; `gsi4` `WHD#FAILED#<endpoint id>` /
//!   `<failed at>#<id>`: present only while failed (dead-lettered), so a redrive reads those only.

use chrono::{DateTime, Utc};

use super::delivery::{Delivery, DeliveryStatus};
use super::endpoint::WebhookEndpoint;
use crate::domain::{ClientId, WebhookEndpointId};
use crate::repo::{readable, shard_of, time_bound, time_sort_key, INDEX_SHARDS};
use crate::store::{Bound, Condition, Index, Item, Order, Query, StoreError, Table, Write};

pub fn endpoint_key(id: &WebhookEndpointId) -> String {
    format!("WHE#{id}")
}

fn owner_partition(merchant: &ClientId) -> String {
    format!("WHE#OWNER#{merchant}")
}

pub fn delivery_key(id: &str) -> String {
    format!("WHD#{id}")
}

fn event_partition(event_id: &str) -> String {
    format!("WHD#EVT#{event_id}")
}

fn failed_partition(endpoint: &WebhookEndpointId) -> String {
    format!("WHD#FAILED#{endpoint}")
}

fn due_partition(shard: u32) -> String {
    format!("WHD#DUE#{shard}")
}

fn corrupt(what: &str, key: &str, error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what} {key}: {error}"))
}

fn endpoint_item(endpoint: &WebhookEndpoint, version: u64) -> Item {
    let doc = serde_json::to_string(endpoint).unwrap_or_default();
    Item::new(endpoint_key(&endpoint.id), version, doc).with_index(
        Index::Gsi1,
        owner_partition(&endpoint.merchant),
        time_sort_key(endpoint.created_at, endpoint.id.as_str()),
    )
}

pub fn endpoint_from_item(item: &Item) -> Result<WebhookEndpoint, StoreError> {
    let mut endpoint: WebhookEndpoint =
        serde_json::from_str(&item.doc).map_err(|e| corrupt("webhook endpoint", &item.key, e))?;
    endpoint.version = item.version;
    Ok(endpoint)
}

/// Creates the endpoint; refused if the id exists.
pub fn insert_endpoint(endpoint: &WebhookEndpoint) -> Write {
    Write::Put {
        item: endpoint_item(endpoint, 1),
        condition: Condition::Absent { now_epoch: 0 },
    }
}

/// Replaces the endpoint read at `endpoint.version`.
pub fn update_endpoint(endpoint: &WebhookEndpoint) -> Write {
    Write::Put {
        item: endpoint_item(endpoint, endpoint.version + 1),
        condition: Condition::VersionIs(endpoint.version),
    }
}

/// Deletes the endpoint read at `endpoint.version`.
pub fn delete_endpoint(endpoint: &WebhookEndpoint) -> Write {
    Write::Delete {
        key: endpoint_key(&endpoint.id),
        condition: Condition::VersionIs(endpoint.version),
    }
}

pub async fn endpoint(table: &dyn Table, id: &WebhookEndpointId) -> Result<Option<WebhookEndpoint>, StoreError> {
    match table.get(&endpoint_key(id)).await? {
        Some(item) => endpoint_from_item(&item).map(Some),
        None => Ok(None),
    }
}

/// Every endpoint of the merchant, oldest first.
pub async fn endpoints_of(table: &dyn Table, merchant: &ClientId) -> Result<Vec<WebhookEndpoint>, StoreError> {
    // One more than the cap, so a merchant over it (a race of creations) is still listed whole.
    let query = Query::new(
        Index::Gsi1,
        owner_partition(merchant),
        Order::Ascending,
        super::endpoint::MAX_ENDPOINTS_PER_MERCHANT * 2,
    );
    Ok(readable(
        table.query(&query).await?,
        endpoint_from_item,
        "webhook endpoint",
    ))
}

fn delivery_item(delivery: &Delivery, version: u64) -> Item {
    let doc = serde_json::to_string(delivery).unwrap_or_default();
    let mut item = Item::new(delivery_key(&delivery.id), version, doc)
        .with_attr("status", delivery.status.as_str())
        .with_index(
            Index::Gsi2,
            event_partition(&delivery.event_id),
            delivery.endpoint_id.to_string(),
        );
    if let (DeliveryStatus::Pending, Some(due)) = (delivery.status, delivery.next_attempt_at) {
        item = item.with_index(
            Index::Gsi3,
            due_partition(shard_of(&delivery.id)),
            time_sort_key(due, &delivery.id),
        );
    }
    if delivery.status == DeliveryStatus::Failed {
        item = item.with_index(
            Index::Gsi4,
            failed_partition(&delivery.endpoint_id),
            time_sort_key(delivery.updated_at, &delivery.id),
        );
    }
    item
}

pub fn delivery_from_item(item: &Item) -> Result<Delivery, StoreError> {
    let mut delivery: Delivery =
        serde_json::from_str(&item.doc).map_err(|e| corrupt("webhook delivery", &item.key, e))?;
    delivery.version = item.version;
    Ok(delivery)
}

/// Creates the delivery; refused if it exists (the event was fanned out before).
pub fn insert_delivery(delivery: &Delivery) -> Write {
    Write::Put {
        item: delivery_item(delivery, 1),
        condition: Condition::Absent { now_epoch: 0 },
    }
}

/// Replaces the delivery read at `delivery.version`.
pub fn update_delivery(delivery: &Delivery) -> Write {
    Write::Put {
        item: delivery_item(delivery, delivery.version + 1),
        condition: Condition::VersionIs(delivery.version),
    }
}

pub async fn delivery(table: &dyn Table, id: &str) -> Result<Option<Delivery>, StoreError> {
    match table.get(&delivery_key(id)).await? {
        Some(item) => delivery_from_item(&item).map(Some),
        None => Ok(None),
    }
}

/// The deliveries of one event (one per endpoint it was fanned out to).
pub async fn deliveries_of_event(table: &dyn Table, event_id: &str) -> Result<Vec<Delivery>, StoreError> {
    let query = Query::new(Index::Gsi2, event_partition(event_id), Order::Ascending, 100);
    Ok(readable(
        table.query(&query).await?,
        delivery_from_item,
        "webhook delivery",
    ))
}

/// Pending deliveries due at `now` (leases that ran out included), soonest first.
pub async fn due_deliveries(
    table: &dyn Table,
    now: DateTime<Utc>,
    limit_per_shard: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let mut due = Vec::new();
    for shard in 0..INDEX_SHARDS {
        let mut query = Query::new(Index::Gsi3, due_partition(shard), Order::Ascending, limit_per_shard);
        query.upper = Some(Bound::Exclusive(time_bound(now + chrono::Duration::milliseconds(1))));
        due.extend(readable(
            table.query(&query).await?,
            delivery_from_item,
            "webhook delivery",
        ));
    }
    due.sort_by_key(|d| d.next_attempt_at);
    Ok(due)
}

/// The endpoint's failed (dead-lettered) deliveries, oldest first, at most `limit`.
pub async fn failed_deliveries(
    table: &dyn Table,
    endpoint: &WebhookEndpointId,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let query = Query::new(Index::Gsi4, failed_partition(endpoint), Order::Ascending, limit);
    Ok(readable(
        table.query(&query).await?,
        delivery_from_item,
        "webhook delivery",
    ))
}
