//! The payout flow on the settle engine. The worker, the callback processor, the sweeper and
//! the approval endpoints all move payouts through [`PayoutSettler`], so an event means the same
//! thing whichever way it arrives, and every change writes its event ([`payout_event`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::payout::{decide, Payout, PayoutDecision, PayoutEvent, PayoutIgnored, PayoutSource};
use crate::domain::{b2c_outcome, B2cOutcome, FailureCategory, PayoutId, PayoutStatus};
use crate::engine::{self, Flow, IgnoreReason};
use crate::events::{Cause, EventRecord, EventType, ResourceKind};
use crate::metrics;
use crate::repo::payouts::{self as repo, PayoutRepo};
use crate::store::{StoreError, Table, Write};
use crate::views::PayoutView;

/// Payouts on the settle engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct PayoutFlow;

pub type PayoutSettler = engine::Settler<PayoutFlow>;
pub type PayoutSettled = engine::Settled<PayoutFlow>;

impl engine::Settler<PayoutFlow> {
    pub fn payouts(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> PayoutSettler {
        engine::Settler::new(PayoutFlow, table, clock)
    }
}

impl IgnoreReason for PayoutIgnored {
    fn code(&self) -> &'static str {
        PayoutIgnored::code(self)
    }

    fn is_anomaly(&self) -> bool {
        PayoutIgnored::is_anomaly(self)
    }

    fn is_duplicate(&self) -> bool {
        matches!(self, PayoutIgnored::Duplicate)
    }
}

#[async_trait]
impl Flow for PayoutFlow {
    type Id = PayoutId;
    type Entity = Payout;
    type Event = PayoutEvent;
    type Ignored = PayoutIgnored;

    const UNKNOWN_REASON: &'static str = "unknown_payout";

    async fn load(&self, table: &dyn Table, id: &PayoutId) -> Result<Option<Payout>, StoreError> {
        match table.get(&repo::key(id)).await? {
            Some(item) => repo::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    fn decide(payout: &Payout, event: &PayoutEvent, now: DateTime<Utc>) -> Result<Payout, PayoutIgnored> {
        match decide(payout, event, now) {
            PayoutDecision::Apply(next) => Ok(*next),
            PayoutDecision::Ignore(why) => Err(why),
        }
    }

    fn update(after: &Payout) -> Write {
        PayoutRepo::update(after)
    }

    fn version(payout: &Payout) -> u64 {
        payout.version
    }

    fn set_version(payout: &mut Payout, version: u64) {
        payout.version = version;
    }

    fn resource_id(payout: &Payout) -> String {
        payout.id.to_string()
    }

    fn event(before: Option<&Payout>, after: &Payout, now: DateTime<Utc>) -> Option<EventRecord> {
        match before {
            Some(before) => payout_event(before, after, now),
            None => Some(payout_created(after, now)),
        }
    }

    fn observe(outcome: &PayoutSettled) {
        observe(outcome)
    }
}

fn cause_of(source: PayoutSource) -> Cause {
    match source {
        PayoutSource::Api => Cause::Api,
        PayoutSource::Daraja => Cause::Daraja,
        PayoutSource::Callback => Cause::Callback,
        PayoutSource::Reconciliation => Cause::Sweeper,
        PayoutSource::Approval => Cause::Operator,
    }
}

fn event_of(event_type: EventType, payout: &Payout, cause: Cause, now: DateTime<Utc>) -> EventRecord {
    EventRecord::new(
        event_type,
        ResourceKind::Payout,
        payout.id.as_str(),
        payout.version,
        Some(payout.owner.to_string()),
        cause,
        now,
        crate::events::data_of(&PayoutView::from(payout)),
    )
}

/// The event of a new payout (`payout` at version 1).
pub fn payout_created(payout: &Payout, now: DateTime<Utc>) -> EventRecord {
    event_of(EventType::PayoutCreated, payout, Cause::Api, now)
}

/// The event of a change from `before` to `after` (`after` at its new version): a new status, or
/// a receipt received without one; nothing for new facts that change neither (a Transaction
/// Status "not found", a submission attempt).
pub fn payout_event(before: &Payout, after: &Payout, now: DateTime<Utc>) -> Option<EventRecord> {
    use PayoutStatus::*;
    let event_type = if before.status != after.status {
        match (before.status, after.status) {
            (AwaitingApproval, Pending) => EventType::PayoutApproved,
            (_, AwaitingApproval | Pending) => return None,
            (_, Rejected) => EventType::PayoutRejected,
            (_, Sent) => EventType::PayoutSent,
            (_, Unknown) => EventType::PayoutUnknown,
            (_, Completed) => EventType::PayoutCompleted,
            (_, Failed) => EventType::PayoutFailed,
        }
    } else if after.mpesa_receipt.is_some() && before.mpesa_receipt != after.mpesa_receipt {
        EventType::PayoutReceiptReceived
    } else {
        return None;
    };
    let cause = after.history.last().map_or(Cause::Callback, |h| cause_of(h.source));
    Some(event_of(event_type, after, cause, now))
}

/// Metrics and logs of a settled event (masked: ids and codes only, never the phone).
fn observe(outcome: &PayoutSettled) {
    match outcome {
        PayoutSettled::Applied { before, after } if before.status != after.status => {
            metrics::count("PayoutTransitions", 1, &[("Status", after.status.as_str())]);
            if after.status == PayoutStatus::Completed {
                let settle_ms = (after.updated_at - after.created_at).num_milliseconds().max(0) as u64;
                metrics::timing("PayoutSettleLatency", std::time::Duration::from_millis(settle_ms));
            }
            if let Some(reason) = after.failure_reason.filter(|_| after.status == PayoutStatus::Failed) {
                metrics::count("PayoutFailures", 1, &[("Reason", reason.as_str())]);
                if reason.category() == FailureCategory::Operator {
                    // Our configuration or float, not the customer: page someone.
                    metrics::count("PayoutOperatorAlarms", 1, &[("Reason", reason.as_str())]);
                    tracing::error!(payout_id = %after.id, reason = reason.as_str(), code = ?after.result.as_ref().map(|r| r.code.as_str()), "payout failed for an operator problem (configuration or float)");
                }
            }
            let unrecognised = after.status == PayoutStatus::Unknown
                && after
                    .result
                    .as_ref()
                    .is_some_and(|r| b2c_outcome(&r.code) == B2cOutcome::Unrecognised);
            if unrecognised {
                // Not a code we know: money may have moved. Transaction Status decides; a person
                // should add the code to the table once its meaning is known.
                metrics::count("PayoutOperatorAlarms", 1, &[("Reason", "unrecognised_result_code")]);
                tracing::error!(payout_id = %after.id, code = ?after.result.as_ref().map(|r| r.code.as_str()), "payout result code not recognised: payout is unknown until Transaction Status answers");
            }
            tracing::info!(payout_id = %after.id, from = before.status.as_str(), to = after.status.as_str(), "payout moved");
        }
        PayoutSettled::Unchanged { why, entity: payout } if why.is_anomaly() => {
            metrics::count("CallbackAnomalies", 1, &[("Reason", why.code())]);
            tracing::warn!(payout_id = %payout.id, reason = why.code(), status = payout.status.as_str(), "anomalous payout result not applied");
        }
        _ => {}
    }
}
