//! Sending events to merchants' endpoints: fan-out from the outbox, one attempt at a time under
//! a lease, retries found by the sweep.
//!
//! [`WebhookDispatcher`] is an [`EventConsumer`]: for each event it creates one delivery per
//! subscribed, enabled endpoint of the event's merchant (idempotent: the delivery's id is made of
//! the event's and the endpoint's, so a stream redelivery creates nothing new), then makes
//! attempt 1 of each at once. It is also a [`Sweep`]: the sweeper attempts every pending
//! delivery whose next attempt is due (a failed attempt's retry, or an attempt whose sender
//! crashed and whose lease ran out).
//!
//! The message: `webhook-id` is the event's id (the same for every attempt and redelivery, so a
//! receiver drops duplicates by it), `webhook-timestamp` the attempt's time, `webhook-signature`
//! one `v1,` signature per signing secret in force ([`super::signature`]); the body is
//! [`payload`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::delivery::{Attempt, AttemptOutcome, Delivery, DeliveryStatus};
use super::endpoint::{EndpointChange, WebhookEndpoint};
use super::repo;
use super::signature::{self, SigningSecret};
use super::target::{self, WebhookSender};
use crate::clock::Clock;
use crate::engine::sweep::{self, Outcome, Pacing, Sweep, SweepControl};
use crate::events::handler::EventConsumer;
use crate::events::{self, Cause, EventRecord, EventType, ResourceKind};
use crate::metrics;
use crate::secrets::SecretCache;
use crate::store::{StoreError, Table};
use crate::views::webhooks::EndpointView;

/// Due deliveries read per sweep and index shard.
pub const SWEEP_BATCH: usize = 100;

/// The sweep's pace: no Daraja queries, so the query pace and breaker never bind. No attempt
/// starts after 30 s and each waits at most the send timeout (10 s), so a sweep ends within the
/// sweeper's minute.
pub const SWEEP_PACING: Pacing = Pacing {
    concurrency: 8,
    queries_per_second: 1000,
    time_budget: std::time::Duration::from_secs(30),
    failure_threshold: u32::MAX,
};

/// The body of a webhook: the event as the merchant sees it.
#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: EventType,
    /// When the change happened (RFC 3339, UTC).
    timestamp: String,
    resource: ResourceKind,
    resource_id: &'a str,
    sequence: u64,
    cause: Cause,
    /// The resource's public view after the change (phones masked).
    data: &'a serde_json::value::RawValue,
}

/// The JSON body sent for `event`.
pub fn payload(event: &EventRecord) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        id: &event.id,
        event_type: event.event_type,
        timestamp: event.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        resource: event.resource,
        resource_id: &event.resource_id,
        sequence: event.sequence,
        cause: event.cause,
        data: &event.data,
    })
    .unwrap_or_default()
}

/// What one call of [`WebhookDispatcher::attempt`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Sent; the delivery is now in this status.
    Sent(DeliveryStatus, AttemptOutcome),
    /// Not due (done, or another sender holds its lease): nothing sent.
    NotDue,
    /// Its endpoint or its event no longer exists: closed as failed without sending.
    Abandoned,
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSweepReport {
    pub examined: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub dead_lettered: usize,
    pub errors: usize,
}

#[derive(Clone)]
pub struct WebhookDispatcher {
    pub table: Arc<dyn Table>,
    pub sender: Arc<WebhookSender>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
}

impl WebhookDispatcher {
    /// Creates the deliveries of `event` (one per endpoint that receives it); the ones that
    /// exist already (a redelivered event) are returned too, so their attempt is not lost.
    pub async fn fan_out(&self, event: &EventRecord) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for endpoint in self.receivers(event, None).await? {
            let delivery = self.new_delivery(event, &endpoint);
            match self.table.write(vec![repo::insert_delivery(&delivery)]).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => ids.push(delivery.id),
                Err(error) => return Err(error),
            }
        }
        Ok(ids)
    }

    /// The merchant's endpoints that receive `event` now (`only` that one, if given).
    async fn receivers(
        &self,
        event: &EventRecord,
        only: Option<&crate::domain::WebhookEndpointId>,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let Some(merchant) = event
            .merchant
            .as_deref()
            .and_then(|m| crate::domain::ClientId::parse(m).ok())
        else {
            return Ok(Vec::new());
        };
        Ok(repo::endpoints_of(self.table.as_ref(), &merchant)
            .await?
            .into_iter()
            .filter(|e| e.receives(event.event_type) && only.is_none_or(|only| *only == e.id))
            .collect())
    }

    fn new_delivery(&self, event: &EventRecord, endpoint: &WebhookEndpoint) -> Delivery {
        Delivery::new(
            &event.id,
            event.event_type,
            &endpoint.id,
            &endpoint.merchant,
            self.clock.now(),
        )
    }

    /// Makes the next attempt of delivery `id` if it is due: lease, sign, send, record.
    pub async fn attempt(&self, id: &str) -> Result<Attempted, StoreError> {
        let table = self.table.as_ref();
        let now = self.clock.now();
        let Some(delivery) = repo::delivery(table, id).await? else {
            return Ok(Attempted::NotDue);
        };
        if !delivery.is_due(now) {
            return Ok(Attempted::NotDue);
        }
        let endpoint = repo::endpoint(table, &delivery.endpoint_id).await?;
        let event = events::repo::get(table, &delivery.event_id).await?;
        let (Some(endpoint), Some(event)) = (endpoint, event) else {
            let closed = delivery.abandoned(now);
            return match table.write(vec![repo::update_delivery(&closed)]).await {
                Ok(()) => Ok(Attempted::Abandoned),
                Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => Ok(Attempted::NotDue),
                Err(error) => Err(error),
            };
        };
        // The lease: only the sender whose write lands sends this attempt.
        let mut leased = delivery.leased(now);
        match table.write(vec![repo::update_delivery(&leased)]).await {
            Ok(()) => leased.version = delivery.version + 1,
            Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => return Ok(Attempted::NotDue),
            Err(error) => return Err(error),
        }
        let attempt = self.send(&endpoint, &event, leased.next_attempt_number(), now).await?;
        let outcome = attempt.outcome;
        let after = leased.after_attempt(attempt, self.clock.now());
        observe(&endpoint, &after, outcome);
        // If this write fails the lease runs out and the attempt is made again: at least once.
        table.write(vec![repo::update_delivery(&after)]).await?;
        self.note_outcome(
            &endpoint,
            outcome == AttemptOutcome::Delivered,
            after.status == DeliveryStatus::Failed,
        )
        .await;
        Ok(Attempted::Sent(after.status, outcome))
    }

    /// Records on the endpoint what the attempt says of it (a failing spell starting or ending,
    /// or its disabling, with its event in the same transaction). Best effort: a concurrent
    /// change of the endpoint wins, and the next attempt's outcome tries again.
    async fn note_outcome(&self, endpoint: &WebhookEndpoint, delivered: bool, dead_lettered: bool) {
        let now = self.clock.now();
        let Some(change) = endpoint.after_outcome(delivered, dead_lettered, now) else {
            return;
        };
        let mut writes = Vec::with_capacity(2);
        match &change {
            EndpointChange::Failing(next) | EndpointChange::Recovered(next) => {
                writes.push(repo::update_endpoint(next));
            }
            EndpointChange::Disabled(next) => {
                writes.push(repo::update_endpoint(next));
                let stored = WebhookEndpoint {
                    version: next.version + 1,
                    ..next.clone()
                };
                writes.push(events::repo::insert(&EventRecord::new(
                    EventType::WebhookEndpointDisabled,
                    ResourceKind::WebhookEndpoint,
                    next.id.as_str(),
                    stored.version,
                    Some(next.merchant.to_string()),
                    Cause::Sweeper,
                    now,
                    events::data_of(&EndpointView::from(&stored)),
                )));
            }
        }
        match self.table.write(writes).await {
            Ok(()) => {
                if let EndpointChange::Disabled(next) = &change {
                    metrics::count("WebhookEndpointsDisabled", 1, &[]);
                    tracing::warn!(endpoint_id = %next.id, merchant = %next.merchant, failing_since = ?next.failing_since, "webhook endpoint failing for days; disabled");
                }
            }
            Err(error) => {
                tracing::info!(endpoint_id = %endpoint.id, %error, "webhook endpoint state not recorded; the next attempt tries again")
            }
        }
    }

    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        event: &EventRecord,
        number: u32,
        now: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let master = self
            .secrets
            .get()
            .await
            .and_then(|s| s.webhook_signing_key())
            .map_err(|e| StoreError::Unavailable(format!("webhook signing key: {e}")))?;
        let secrets: Vec<SigningSecret> = endpoint
            .signing_generations(now)
            .into_iter()
            .map(|generation| SigningSecret::derive(master.expose().as_bytes(), endpoint.id.as_str(), generation))
            .collect();
        let secret_refs: Vec<&SigningSecret> = secrets.iter().collect();
        let body = payload(event);
        let headers = signature::headers(&secret_refs, &event.id, now.timestamp(), &body);
        let result = self
            .sender
            .send(&endpoint.url, &headers, bytes::Bytes::from(body))
            .await;
        // Without an answer, the reason is what the merchant sees in the attempt's log.
        let (outcome, response) = match result.outcome {
            target::AttemptOutcome::Delivered => (AttemptOutcome::Delivered, result.response_excerpt),
            target::AttemptOutcome::Rejected => (AttemptOutcome::Rejected, result.response_excerpt),
            target::AttemptOutcome::Unreachable { reason } => (AttemptOutcome::Unreachable, reason),
            target::AttemptOutcome::Forbidden { reason } => (AttemptOutcome::Forbidden, reason),
        };
        Ok(Attempt {
            number,
            at: now,
            outcome,
            status: result.status,
            latency_ms: result.latency_ms,
            response,
        })
    }

    /// Marks the delivery of `event` to each endpoint that receives it (or to `only`) to be sent
    /// again from the start of the schedule, creating the missing ones; the ids, to attempt at
    /// once. A delivery another sender is changing right now is left to it (it is being sent).
    pub async fn redeliver(
        &self,
        event: &EventRecord,
        only: Option<&crate::domain::WebhookEndpointId>,
    ) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        let mut ids = Vec::new();
        for endpoint in self.receivers(event, only).await? {
            let fresh = self.new_delivery(event, &endpoint);
            let write = match repo::delivery(self.table.as_ref(), &fresh.id).await? {
                None => repo::insert_delivery(&fresh),
                Some(existing) => repo::update_delivery(&existing.redelivered(now)),
            };
            match self.table.write(vec![write]).await {
                Ok(()) | Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => {
                    ids.push(fresh.id)
                }
                Err(error) => return Err(error),
            }
        }
        Ok(ids)
    }

    /// Attempts each of `ids` at once (concurrently); failures are left to the sweep.
    pub async fn attempt_all(&self, ids: &[String]) {
        let attempts = ids.iter().map(|id| async move {
            if let Err(error) = self.attempt(id).await {
                tracing::warn!(delivery_id = %id, %error, "webhook attempt not recorded; the sweep retries it");
            }
        });
        futures::future::join_all(attempts).await;
    }

    /// Attempts every due delivery (the one sweep loop).
    pub async fn sweep(&self) -> WebhookSweepReport {
        let swept = sweep::run(self, self.clock.now()).await;
        let mut report = WebhookSweepReport::default();
        for outcome in swept.outcomes {
            report.examined += 1;
            match outcome {
                Outcome::Checked(Attempted::Sent(DeliveryStatus::Succeeded, _)) => report.delivered += 1,
                Outcome::Checked(Attempted::Sent(DeliveryStatus::Pending, _)) => report.retrying += 1,
                Outcome::Checked(Attempted::Sent(DeliveryStatus::Failed, _) | Attempted::Abandoned) => {
                    report.dead_lettered += 1
                }
                Outcome::Checked(Attempted::NotDue) => {}
                Outcome::Skipped | Outcome::Failed => report.errors += 1,
            }
        }
        report
    }
}

fn observe(endpoint: &WebhookEndpoint, after: &Delivery, outcome: AttemptOutcome) {
    let outcome_name = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Rejected => "rejected",
        AttemptOutcome::Unreachable => "unreachable",
        AttemptOutcome::Forbidden => "forbidden",
    };
    metrics::count("WebhookAttempts", 1, &[("Outcome", outcome_name)]);
    if let Some(last) = after.attempts.last() {
        metrics::timing(
            "WebhookAttemptLatency",
            std::time::Duration::from_millis(last.latency_ms),
        );
    }
    match after.status {
        DeliveryStatus::Failed => {
            metrics::count("WebhookDeliveriesDeadLettered", 1, &[]);
            tracing::warn!(delivery_id = %after.id, endpoint_id = %endpoint.id, attempts = after.run_attempts, "webhook delivery failed every attempt; dead-lettered");
        }
        DeliveryStatus::Pending => {
            tracing::info!(delivery_id = %after.id, endpoint_id = %endpoint.id, outcome = outcome_name, next_attempt_at = ?after.next_attempt_at, "webhook attempt failed; retry scheduled");
        }
        DeliveryStatus::Succeeded => {}
    }
}

#[async_trait]
impl EventConsumer for WebhookDispatcher {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    /// Fans the event out (a store error leaves the event unhandled, to be delivered again),
    /// then makes attempt 1 of each delivery (whose failures the sweep retries).
    async fn consume(&self, event: &EventRecord) -> Result<(), String> {
        let ids = self.fan_out(event).await.map_err(|e| e.to_string())?;
        self.attempt_all(&ids).await;
        Ok(())
    }
}

#[async_trait]
impl Sweep for WebhookDispatcher {
    type Item = Delivery;
    type Checked = Attempted;

    const ITEM: &'static str = "webhook delivery";

    fn pacing(&self) -> Pacing {
        SWEEP_PACING
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Delivery>, StoreError> {
        repo::due_deliveries(self.table.as_ref(), now, SWEEP_BATCH).await
    }

    async fn check(&self, delivery: Delivery, _control: &SweepControl) -> Result<Attempted, StoreError> {
        self.attempt(&delivery.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::{ClientId, WebhookEndpointId};
    use crate::secrets::StaticSecret;
    use crate::store::memory::MemoryTable;
    use crate::webhooks::endpoint::{EndpointStatus, EventSelection};
    use crate::webhooks::target::{TargetPolicy, WebhookUrl};
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    struct Fixture {
        dispatcher: WebhookDispatcher,
        clock: Arc<ManualClock>,
        server: MockServer,
        endpoint: WebhookEndpoint,
    }

    async fn fixture(status: u16) -> Fixture {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let json = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": "dispatch-test-callback-key-0123456789abcdef",
        });
        let secrets = Arc::new(SecretCache::new(
            Arc::new(StaticSecret(json.to_string())),
            std::time::Duration::from_secs(60),
        ));
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let now = clock.now();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            merchant: ClientId::parse("shop").unwrap(),
            url: WebhookUrl::parse(&format!("{}/hook", server.uri()), TargetPolicy::local_development()).unwrap(),
            events: EventSelection::All,
            description: None,
            status: EndpointStatus::Enabled,
            secret_generation: 1,
            previous_secret_until: None,
            failing_since: None,
            auto_disabled_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        table.write(vec![repo::insert_endpoint(&endpoint)]).await.unwrap();
        let dispatcher = WebhookDispatcher {
            table,
            sender: Arc::new(WebhookSender::new(TargetPolicy::local_development()).unwrap()),
            secrets,
            clock: clock.clone(),
        };
        Fixture {
            dispatcher,
            clock,
            server,
            endpoint,
        }
    }

    async fn stored_event(f: &Fixture, merchant: Option<&str>) -> EventRecord {
        let event = EventRecord::new(
            EventType::PaymentCompleted,
            ResourceKind::Payment,
            crate::domain::PaymentId::generate().as_str(),
            3,
            merchant.map(str::to_owned),
            Cause::Callback,
            f.clock.now(),
            events::empty_data(),
        );
        f.dispatcher
            .table
            .write(vec![events::repo::insert(&event)])
            .await
            .unwrap();
        event
    }

    async fn requests(f: &Fixture) -> usize {
        f.server.received_requests().await.unwrap().len()
    }

    #[tokio::test]
    async fn an_event_delivered_twice_makes_one_delivery_and_one_request() {
        let f = fixture(200).await;
        let event = stored_event(&f, Some("shop")).await;
        f.dispatcher.consume(&event).await.unwrap();
        f.dispatcher.consume(&event).await.unwrap();
        assert_eq!(requests(&f).await, 1);
        let deliveries = repo::deliveries_of_event(f.dispatcher.table.as_ref(), &event.id)
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].status, DeliveryStatus::Succeeded);
        assert_eq!(deliveries[0].endpoint_id, f.endpoint.id);
    }

    #[tokio::test]
    async fn another_merchants_event_or_one_without_a_merchant_goes_nowhere() {
        let f = fixture(200).await;
        for merchant in [Some("other-shop"), None] {
            let event = stored_event(&f, merchant).await;
            assert!(f.dispatcher.fan_out(&event).await.unwrap().is_empty());
        }
        assert_eq!(requests(&f).await, 0);
    }

    #[tokio::test]
    async fn concurrent_attempts_of_one_delivery_send_once() {
        let f = fixture(500).await;
        let event = stored_event(&f, Some("shop")).await;
        let ids = f.dispatcher.fan_out(&event).await.unwrap();
        let (a, b) = tokio::join!(f.dispatcher.attempt(&ids[0]), f.dispatcher.attempt(&ids[0]));
        let sent = [a.unwrap(), b.unwrap()]
            .into_iter()
            .filter(|r| matches!(r, Attempted::Sent(..)))
            .count();
        assert_eq!((sent, requests(&f).await), (1, 1));
        // Not due before the schedule's first delay; due after it.
        assert_eq!(f.dispatcher.sweep().await.examined, 0);
        f.clock.advance(chrono::Duration::seconds(5));
        let report = f.dispatcher.sweep().await;
        assert_eq!((report.examined, report.retrying), (1, 1));
        assert_eq!(requests(&f).await, 2);
    }

    #[tokio::test]
    async fn a_crash_after_the_lease_is_retried_when_the_lease_runs_out() {
        let f = fixture(200).await;
        let event = stored_event(&f, Some("shop")).await;
        let ids = f.dispatcher.fan_out(&event).await.unwrap();
        // A sender took the lease and died before sending or recording.
        let table = f.dispatcher.table.as_ref();
        let delivery = repo::delivery(table, &ids[0]).await.unwrap().unwrap();
        table
            .write(vec![repo::update_delivery(&delivery.leased(f.clock.now()))])
            .await
            .unwrap();
        assert_eq!(f.dispatcher.sweep().await.examined, 0, "the lease holds it");
        f.clock
            .advance(chrono::Duration::seconds(super::super::delivery::LEASE_SECONDS));
        assert_eq!(f.dispatcher.sweep().await.delivered, 1);
        assert_eq!(requests(&f).await, 1);
    }

    #[tokio::test]
    async fn a_delivery_to_a_deleted_endpoint_closes_without_sending() {
        let f = fixture(200).await;
        let event = stored_event(&f, Some("shop")).await;
        let ids = f.dispatcher.fan_out(&event).await.unwrap();
        let table = f.dispatcher.table.as_ref();
        table.write(vec![repo::delete_endpoint(&f.endpoint)]).await.unwrap();
        assert_eq!(f.dispatcher.attempt(&ids[0]).await.unwrap(), Attempted::Abandoned);
        let closed = repo::delivery(table, &ids[0]).await.unwrap().unwrap();
        assert_eq!(closed.status, DeliveryStatus::Failed);
        assert_eq!(requests(&f).await, 0);
    }

    #[tokio::test]
    async fn redelivering_to_one_endpoint_sends_to_that_one_only() {
        let f = fixture(200).await;
        let event = stored_event(&f, Some("shop")).await;
        // A second endpoint, created after the event was fanned out to the first.
        f.dispatcher.consume(&event).await.unwrap();
        let mut second = f.endpoint.clone();
        second.id = WebhookEndpointId::generate();
        let table = f.dispatcher.table.as_ref();
        table.write(vec![repo::insert_endpoint(&second)]).await.unwrap();
        let ids = f.dispatcher.redeliver(&event, Some(&f.endpoint.id)).await.unwrap();
        assert_eq!(ids, vec![Delivery::id_for(&event.id, &f.endpoint.id)]);
        f.dispatcher.attempt_all(&ids).await;
        assert_eq!(requests(&f).await, 2, "the first endpoint, twice");
        let deliveries = repo::deliveries_of_event(table, &event.id).await.unwrap();
        assert_eq!(deliveries.len(), 1, "nothing created for the second endpoint");
        // Redelivering to all creates the second's.
        let ids = f.dispatcher.redeliver(&event, None).await.unwrap();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn the_payload_is_the_event_with_its_view() {
        let event = EventRecord::new(
            EventType::PaymentCompleted,
            ResourceKind::Payment,
            "pay_1",
            3,
            Some("shop".into()),
            Cause::Callback,
            Utc::now(),
            events::data_of(&serde_json::json!({"id": "pay_1", "amount": 1250})),
        );
        let body: serde_json::Value = serde_json::from_slice(&payload(&event)).unwrap();
        assert_eq!(body["id"], event.id.as_str());
        assert_eq!(body["type"], "payment.completed");
        assert_eq!(body["sequence"], 3);
        assert_eq!(body["data"]["amount"], 1250);
        assert!(body.get("merchant").is_none(), "the receiver is the merchant");
    }
}
