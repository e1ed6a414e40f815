//! What the API (and the events' `data`) shows of webhook endpoints and deliveries. Never a
//! signing secret, except the one a creation or a rotation answers with (`secret`).

use serde::Serialize;

use super::timestamp;
use crate::webhooks::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus};
use crate::webhooks::endpoint::{EndpointStatus, WebhookEndpoint};

#[derive(Serialize)]
pub struct EndpointView {
    pub id: String,
    pub object: &'static str,
    pub url: String,
    pub enabled_events: Vec<&'static str>,
    pub description: Option<String>,
    pub status: EndpointStatus,
    pub created_at: String,
    pub updated_at: String,
    /// Until when the previous secret also signs (after a rotation).
    pub previous_secret_expires_at: Option<String>,
    /// Since when every attempt has failed (`null` while healthy).
    pub failing_since: Option<String>,
    /// When it was disabled for failing for days (`null` otherwise).
    pub auto_disabled_at: Option<String>,
    /// Only in the answer of a creation or a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&WebhookEndpoint> for EndpointView {
    fn from(e: &WebhookEndpoint) -> Self {
        EndpointView {
            id: e.id.to_string(),
            object: "webhook_endpoint",
            url: e.url.as_str().to_owned(),
            enabled_events: e.events.names(),
            description: e.description.clone(),
            status: e.status,
            created_at: timestamp(e.created_at),
            updated_at: timestamp(e.updated_at),
            previous_secret_expires_at: e.previous_secret_until.map(timestamp),
            failing_since: e.failing_since.map(timestamp),
            auto_disabled_at: e.auto_disabled_at.map(timestamp),
            secret: None,
        }
    }
}

#[derive(Serialize)]
pub struct AttemptView {
    pub number: u32,
    pub at: String,
    pub outcome: AttemptOutcome,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// The first 1 KiB of the endpoint's answer, or why there was none.
    pub response: String,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        AttemptView {
            number: a.number,
            at: timestamp(a.at),
            outcome: a.outcome,
            http_status: a.status,
            latency_ms: a.latency_ms,
            response: a.response.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub object: &'static str,
    pub event_id: String,
    pub event_type: &'static str,
    pub endpoint_id: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.id.clone(),
            object: "webhook_delivery",
            event_id: d.event_id.clone(),
            event_type: d.event_type.as_str(),
            endpoint_id: d.endpoint_id.to_string(),
            status: d.status,
            next_attempt_at: d.next_attempt_at.map(timestamp),
            attempts: d.attempts.iter().map(AttemptView::from).collect(),
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
        }
    }
}
