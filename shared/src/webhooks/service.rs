//! Webhook endpoints and event deliveries, as a merchant manages them (`/v1/webhook-endpoints`,
//! `/v1/events/{id}/deliveries`, `/v1/events/{id}/redeliver`). HTTP-free: inputs are parsed
//! values, answers are domain records, failures are [`WebhookError`] (mapped to HTTP in
//! `api/errors.rs`).
//!
//! Every operation acts for one merchant: another merchant's endpoint or event is `NotFound`,
//! indistinguishable from a missing one. Endpoint creation takes no `Idempotency-Key`: its answer
//! carries the signing secret, which must never be stored to be replayed; a retried creation
//! makes a second endpoint, which the merchant can see in the list and delete.

use std::sync::Arc;

use super::delivery::Delivery;
use super::dispatch::WebhookDispatcher;
use super::endpoint::{EndpointStatus, EventSelection, WebhookEndpoint, MAX_ENDPOINTS_PER_MERCHANT};
use super::repo;
use super::signature::SigningSecret;
use super::target::{TargetPolicy, WebhookUrl};
use crate::domain::{ClientId, WebhookEndpointId};
use crate::events::{self, EventRecord};
use crate::store::StoreError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no {0} with this id")]
    NotFound(&'static str),
    #[error("a merchant has at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints")]
    TooManyEndpoints,
    #[error("the endpoint changed while this request ran; send it again")]
    ChangedConcurrently,
    #[error("the signing key is unavailable")]
    SigningKeyUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new endpoint, parsed.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: WebhookUrl,
    pub events: EventSelection,
    pub description: Option<String>,
}

/// Changes to an endpoint, parsed; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<WebhookUrl>,
    pub events: Option<EventSelection>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    pub status: Option<EndpointStatus>,
}

/// Failed deliveries one redrive sends again at most (call it again for the rest).
pub const REDRIVE_BATCH: usize = 500;

/// What a redrive of an endpoint's failed deliveries did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    /// Deliveries due again now (the sweep sends them within its next run).
    pub redriven: usize,
    /// More failed deliveries remain (the batch was full).
    pub more: bool,
}

/// An endpoint with the signing secret in force, shown once (creation and rotation).
pub struct WithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: SigningSecret,
}

#[derive(Clone)]
pub struct WebhookEndpoints {
    pub dispatcher: WebhookDispatcher,
    /// Where endpoints may point (production: public `https` only).
    pub policy: TargetPolicy,
}

impl WebhookEndpoints {
    fn table(&self) -> &Arc<dyn crate::store::Table> {
        &self.dispatcher.table
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.dispatcher.clock.now()
    }

    async fn secret_of(&self, endpoint: &WebhookEndpoint) -> Result<SigningSecret, WebhookError> {
        let master = self
            .dispatcher
            .secrets
            .get()
            .await
            .and_then(|s| s.webhook_signing_key())
            .map_err(|_| WebhookError::SigningKeyUnavailable)?;
        Ok(SigningSecret::derive(
            master.expose().as_bytes(),
            endpoint.id.as_str(),
            endpoint.secret_generation,
        ))
    }

    pub async fn create(&self, merchant: &ClientId, new: NewEndpoint) -> Result<WithSecret, WebhookError> {
        // A soft cap: two creations racing may both pass it; fan-out reads every endpoint anyway.
        if repo::endpoints_of(self.table().as_ref(), merchant).await?.len() >= MAX_ENDPOINTS_PER_MERCHANT {
            return Err(WebhookError::TooManyEndpoints);
        }
        let now = self.now();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            merchant: merchant.clone(),
            url: new.url,
            events: new.events,
            description: new.description,
            status: EndpointStatus::Enabled,
            secret_generation: 1,
            previous_secret_until: None,
            failing_since: None,
            auto_disabled_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let secret = self.secret_of(&endpoint).await?;
        self.table().write(vec![repo::insert_endpoint(&endpoint)]).await?;
        tracing::info!(endpoint_id = %endpoint.id, merchant = %merchant, "webhook endpoint created");
        Ok(WithSecret { endpoint, secret })
    }

    pub async fn list(&self, merchant: &ClientId) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        Ok(repo::endpoints_of(self.table().as_ref(), merchant).await?)
    }

    pub async fn get(&self, merchant: &ClientId, id: &WebhookEndpointId) -> Result<WebhookEndpoint, WebhookError> {
        match repo::endpoint(self.table().as_ref(), id).await? {
            Some(endpoint) if endpoint.merchant == *merchant => Ok(endpoint),
            _ => Err(WebhookError::NotFound("webhook endpoint")),
        }
    }

    pub async fn update(
        &self,
        merchant: &ClientId,
        id: &WebhookEndpointId,
        changes: EndpointChanges,
    ) -> Result<WebhookEndpoint, WebhookError> {
        let mut endpoint = self.get(merchant, id).await?;
        if let Some(url) = changes.url {
            endpoint.url = url;
        }
        if let Some(events) = changes.events {
            endpoint.events = events;
        }
        if let Some(description) = changes.description {
            endpoint.description = description;
        }
        if let Some(status) = changes.status {
            // Enabled again by the merchant: a fresh start, whatever it failed before.
            if status == EndpointStatus::Enabled && endpoint.status == EndpointStatus::Disabled {
                endpoint.failing_since = None;
                endpoint.auto_disabled_at = None;
            }
            endpoint.status = status;
        }
        endpoint.updated_at = self.now();
        self.replace(endpoint).await
    }

    /// The next signing secret; the current one keeps signing for the rotation's overlap.
    pub async fn rotate_secret(&self, merchant: &ClientId, id: &WebhookEndpointId) -> Result<WithSecret, WebhookError> {
        let endpoint = self.get(merchant, id).await?;
        let rotated = self.replace(endpoint.rotated(self.now())).await?;
        let secret = self.secret_of(&rotated).await?;
        tracing::info!(endpoint_id = %rotated.id, generation = rotated.secret_generation, "webhook signing secret rotated");
        Ok(WithSecret {
            endpoint: rotated,
            secret,
        })
    }

    /// Deletes the endpoint; its pending deliveries close as failed when next due.
    pub async fn delete(&self, merchant: &ClientId, id: &WebhookEndpointId) -> Result<(), WebhookError> {
        let endpoint = self.get(merchant, id).await?;
        match self.table().write(vec![repo::delete_endpoint(&endpoint)]).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => {
                Err(WebhookError::ChangedConcurrently)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn replace(&self, endpoint: WebhookEndpoint) -> Result<WebhookEndpoint, WebhookError> {
        match self.table().write(vec![repo::update_endpoint(&endpoint)]).await {
            Ok(()) => Ok(WebhookEndpoint {
                version: endpoint.version + 1,
                ..endpoint
            }),
            Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => {
                Err(WebhookError::ChangedConcurrently)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn event_of(&self, merchant: &ClientId, event_id: &str) -> Result<EventRecord, WebhookError> {
        match events::repo::get(self.table().as_ref(), event_id).await? {
            Some(event) if event.merchant.as_deref() == Some(merchant.as_str()) => Ok(event),
            _ => Err(WebhookError::NotFound("event")),
        }
    }

    /// The deliveries of one of the merchant's events, with their attempts.
    pub async fn deliveries(&self, merchant: &ClientId, event_id: &str) -> Result<Vec<Delivery>, WebhookError> {
        self.event_of(merchant, event_id).await?;
        Ok(repo::deliveries_of_event(self.table().as_ref(), event_id).await?)
    }

    /// Sends the event again, to one endpoint or to every endpoint that receives it, from the
    /// start of the retry schedule (dead-lettered deliveries included); attempts at once and
    /// answers the deliveries as they are after that attempt.
    pub async fn redeliver(
        &self,
        merchant: &ClientId,
        event_id: &str,
        only: Option<&WebhookEndpointId>,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let event = self.event_of(merchant, event_id).await?;
        if let Some(only) = only {
            let endpoint = self.get(merchant, only).await?;
            if !endpoint.receives(event.event_type) {
                return Err(WebhookError::NotFound("webhook endpoint receiving this event"));
            }
        }
        let ids = self.dispatcher.redeliver(&event, only).await?;
        self.dispatcher.attempt_all(&ids).await;
        let mut deliveries = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(delivery) = repo::delivery(self.table().as_ref(), id).await? {
                deliveries.push(delivery);
            }
        }
        Ok(deliveries)
    }

    /// Sends every failed (dead-lettered) delivery of the endpoint again from the start of the
    /// schedule (at most [`REDRIVE_BATCH`] per call): each becomes due now, and the sweep makes
    /// the attempts. A delivery changing concurrently is left as it is.
    pub async fn redrive(&self, merchant: &ClientId, id: &WebhookEndpointId) -> Result<Redriven, WebhookError> {
        let endpoint = self.get(merchant, id).await?;
        let table = self.table().as_ref();
        let failed = repo::failed_deliveries(table, &endpoint.id, REDRIVE_BATCH + 1).await?;
        let more = failed.len() > REDRIVE_BATCH;
        let now = self.now();
        let mut redriven = 0;
        for delivery in failed.iter().take(REDRIVE_BATCH) {
            match table
                .write(vec![repo::update_delivery(&delivery.redelivered(now))])
                .await
            {
                Ok(()) => redriven += 1,
                Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => {}
                Err(error) => return Err(error.into()),
            }
        }
        tracing::info!(endpoint_id = %endpoint.id, redriven, more, "failed webhook deliveries redriven");
        Ok(Redriven { redriven, more })
    }
}
