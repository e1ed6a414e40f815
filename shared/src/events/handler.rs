//! The events function: the one place consumers of state changes plug in.
//!
//! Every event reaches [`EventHandler::deliver`] at least once: from the table's stream (the
//! `events` Lambda function on DynamoDB Streams; the in-memory table's stream in the dev stack),
//! and, for any event still unhandled [`REDRIVE_AFTER_SECONDS`] after it occurred, from
//! [`EventHandler::redrive`] (run by the sweeper). Delivery is idempotent: an event already
//! marked handled is skipped, so a stream retry and a redrive of the same event do the work once.
//! Consumers must be idempotent by event id too (a crash between a consumer and the mark
//! delivers again).

use std::sync::Arc;

use async_trait::async_trait;

use super::{repo, EventRecord};
use crate::clock::Clock;
use crate::engine::sweep::{self, Outcome, Pacing, Sweep, SweepControl};
use crate::metrics;
use crate::store::{StoreError, Table};

/// An event not handled this long after it occurred is delivered again by the sweep. Streams
/// deliver within a second; this leaves room for the stream's own retries.
pub const REDRIVE_AFTER_SECONDS: i64 = 120;

/// Events redriven per sweep at most (per index shard).
pub const REDRIVE_BATCH: usize = 100;

/// How hard the redrive pushes. No Daraja queries: the pace and breaker never apply; the budget
/// bounds one sweep.
pub const REDRIVE_PACING: Pacing = Pacing {
    concurrency: 8,
    queries_per_second: 1000,
    time_budget: std::time::Duration::from_secs(30),
    failure_threshold: u32::MAX,
};

/// Something that acts on events (webhooks, audit, live status).
#[async_trait]
pub trait EventConsumer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Acts on `event`; an error leaves the event unhandled, to be delivered again.
    async fn consume(&self, event: &EventRecord) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Every consumer took it; it is marked handled.
    Handled,
    /// It was handled before (a stream retry, or the stream after a redrive).
    AlreadyHandled,
    /// No such event (a record of another table, or a test's stray key).
    Unknown,
    /// A consumer failed: left unhandled, delivered again later.
    Failed { consumer: &'static str, error: String },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RedriveReport {
    pub examined: usize,
    pub handled: usize,
    pub failed: usize,
}

/// What the redrive did with one event.
pub enum Redriven {
    Handled,
    Failed,
}

#[async_trait]
impl Sweep for EventHandler {
    type Item = EventRecord;
    type Checked = Redriven;

    const ITEM: &'static str = "event";

    fn pacing(&self) -> Pacing {
        REDRIVE_PACING
    }

    async fn due(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<EventRecord>, StoreError> {
        let before = now - chrono::Duration::seconds(REDRIVE_AFTER_SECONDS);
        repo::pending(self.table.as_ref(), before, REDRIVE_BATCH).await
    }

    async fn check(&self, event: EventRecord, _control: &SweepControl) -> Result<Redriven, StoreError> {
        Ok(match self.deliver(&event.id).await? {
            Delivery::Handled | Delivery::AlreadyHandled => Redriven::Handled,
            Delivery::Unknown | Delivery::Failed { .. } => Redriven::Failed,
        })
    }
}

#[derive(Clone)]
pub struct EventHandler {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    pub consumers: Vec<Arc<dyn EventConsumer>>,
}

impl EventHandler {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> EventHandler {
        EventHandler {
            table,
            clock,
            consumers: Vec::new(),
        }
    }

    pub fn with_consumer(mut self, consumer: Arc<dyn EventConsumer>) -> EventHandler {
        self.consumers.push(consumer);
        self
    }

    /// Delivers the event `id` to every consumer and marks it handled.
    pub async fn deliver(&self, id: &str) -> Result<Delivery, StoreError> {
        for _ in 0..crate::engine::MAX_ATTEMPTS {
            let Some(event) = repo::get(self.table.as_ref(), id).await? else {
                return Ok(Delivery::Unknown);
            };
            if event.handled_at.is_some() {
                return Ok(Delivery::AlreadyHandled);
            }
            for consumer in &self.consumers {
                if let Err(error) = consumer.consume(&event).await {
                    metrics::count("EventDeliveryFailures", 1, &[("Consumer", consumer.name())]);
                    tracing::warn!(event_id = %event.id, consumer = consumer.name(), %error, "event consumer failed; the event will be delivered again");
                    return Ok(Delivery::Failed {
                        consumer: consumer.name(),
                        error,
                    });
                }
            }
            let now = self.clock.now();
            let mut handled = event.clone();
            handled.handled_at = Some(now);
            handled.deliveries += 1;
            match self.table.write(vec![repo::update(&handled)]).await {
                Ok(()) => {
                    let lag = (now - event.occurred_at).num_milliseconds().max(0) as u64;
                    metrics::count("EventsHandled", 1, &[("Type", event.event_type.as_str())]);
                    metrics::timing("EventHandleLag", std::time::Duration::from_millis(lag));
                    return Ok(Delivery::Handled);
                }
                // Marked by a concurrent delivery (the stream and a redrive at once): read again.
                Err(StoreError::ConditionFailed { .. } | StoreError::TransactionConflict) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Unavailable("event kept changing under us".into()))
    }

    /// Delivers the events still unhandled [`REDRIVE_AFTER_SECONDS`] after they occurred (the
    /// one sweep loop, [`crate::engine::sweep::run`]).
    pub async fn redrive(&self) -> RedriveReport {
        let swept = sweep::run(self, self.clock.now()).await;
        let mut report = RedriveReport::default();
        for outcome in swept.outcomes {
            report.examined += 1;
            match outcome {
                Outcome::Checked(Redriven::Handled) => report.handled += 1,
                // Not delivered, not started, or its delivery hit a store error: all left for
                // the next redrive.
                Outcome::Checked(Redriven::Failed) | Outcome::Skipped | Outcome::Failed => report.failed += 1,
            }
        }
        if report.examined > 0 {
            metrics::count("EventsRedriven", report.examined as u64, &[]);
            tracing::warn!(
                examined = report.examined,
                handled = report.handled,
                failed = report.failed,
                "redrove events the stream had not delivered"
            );
        }
        report
    }
}
