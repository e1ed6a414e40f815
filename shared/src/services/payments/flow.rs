//! The payment flow on the settle engine: callbacks, Daraja's answers, reconciliation and C2B
//! echoes all settle payments through [`PaymentSettler`], so a result means the same thing
//! whichever way it arrives, and every change writes its event ([`payment_event`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{decide, Decision, Ignored, Payment, PaymentEvent, PaymentId, PaymentStatus, Source};
use crate::engine::{self, Flow, IgnoreReason, Slot};
use crate::events::{Cause, EventRecord, EventType, ResourceKind};
use crate::metrics;
use crate::repo::payments::{self as repo, PaymentRepo};
use crate::services::c2b::receipt_links;
use crate::store::{StoreError, Table, Write};
use crate::views::PaymentView;

/// Payments on the settle engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentFlow;

pub type PaymentSettler = engine::Settler<PaymentFlow>;
pub type Settled = engine::Settled<PaymentFlow>;

impl IgnoreReason for Ignored {
    fn code(&self) -> &'static str {
        Ignored::code(self)
    }

    fn is_anomaly(&self) -> bool {
        Ignored::is_anomaly(self)
    }

    fn is_duplicate(&self) -> bool {
        matches!(self, Ignored::Duplicate)
    }
}

#[async_trait]
impl Flow for PaymentFlow {
    type Id = PaymentId;
    type Entity = Payment;
    type Event = PaymentEvent;
    type Ignored = Ignored;

    const UNKNOWN_REASON: &'static str = "unknown_payment";

    async fn load(&self, table: &dyn Table, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        match table.get(&repo::key(id)).await? {
            Some(item) => repo::from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    fn decide(payment: &Payment, event: &PaymentEvent, now: DateTime<Utc>) -> Result<Payment, Ignored> {
        match decide(payment, event, now) {
            Decision::Apply(next) => Ok(*next),
            Decision::Ignore(why) => Err(why),
        }
    }

    fn update(after: &Payment) -> Write {
        PaymentRepo::update(after)
    }

    fn version(payment: &Payment) -> u64 {
        payment.version
    }

    fn set_version(payment: &mut Payment, version: u64) {
        payment.version = version;
    }

    /// A completion that brings a receipt registers it in the same transaction, linking the C2B
    /// confirmation of that receipt (the C2B echo of a paybill STK payment).
    async fn effects(
        &self,
        table: &dyn Table,
        before: Option<&Payment>,
        after: &mut Payment,
        now: DateTime<Utc>,
        attempt: u32,
    ) -> Result<Vec<(Slot, Write)>, StoreError> {
        let new_receipt = after
            .mpesa_receipt
            .as_deref()
            .filter(|r| before.and_then(|b| b.mpesa_receipt.as_deref()) != Some(*r));
        let (Some(receipt), PaymentStatus::Completed) = (new_receipt, after.status) else {
            return Ok(Vec::new());
        };
        // First attempt without a read (usually nothing is registered yet).
        let optimistic = attempt == 0;
        let writes = receipt_links::stk_completion_writes(table, &after.id, receipt, now, optimistic).await?;
        Ok(writes.into_iter().map(|w| (Slot::ReceiptLink, w)).collect())
    }

    fn resource_id(payment: &Payment) -> String {
        payment.id.to_string()
    }

    fn event(before: Option<&Payment>, after: &Payment, now: DateTime<Utc>) -> Option<EventRecord> {
        match before {
            Some(before) => payment_event(before, after, now),
            None => Some(payment_created(after, now)),
        }
    }

    fn observe(outcome: &Settled) {
        observe(outcome)
    }
}

/// What caused a payment's latest transition.
fn cause_of(source: Source) -> Cause {
    match source {
        Source::Api => Cause::Api,
        Source::Daraja => Cause::Daraja,
        Source::Callback | Source::C2bEcho => Cause::Callback,
        Source::Reconciliation => Cause::Sweeper,
    }
}

fn event_of(event_type: EventType, payment: &Payment, cause: Cause, now: DateTime<Utc>) -> EventRecord {
    EventRecord::new(
        event_type,
        ResourceKind::Payment,
        payment.id.as_str(),
        payment.version,
        Some(payment.owner.to_string()),
        cause,
        now,
        crate::events::data_of(&PaymentView::from(payment)),
    )
}

/// The event of a new payment (`payment` at version 1).
pub fn payment_created(payment: &Payment, now: DateTime<Utc>) -> EventRecord {
    event_of(EventType::PaymentCreated, payment, Cause::Api, now)
}

/// The event of a change from `before` to `after` (`after` at its new version): a new status,
/// or a receipt received without one; nothing for bookkeeping (a sweep's next check).
pub fn payment_event(before: &Payment, after: &Payment, now: DateTime<Utc>) -> Option<EventRecord> {
    use PaymentStatus::*;
    let event_type = if before.status != after.status {
        match after.status {
            Pending => return None,
            Sent => EventType::PaymentSent,
            Unknown => EventType::PaymentUnknown,
            Completed => EventType::PaymentCompleted,
            Failed => EventType::PaymentFailed,
            Cancelled => EventType::PaymentCancelled,
            Timeout => EventType::PaymentTimedOut,
        }
    } else if after.mpesa_receipt.is_some() && before.mpesa_receipt != after.mpesa_receipt {
        EventType::PaymentReceiptReceived
    } else {
        return None;
    };
    let cause = after.history.last().map_or(Cause::Callback, |h| cause_of(h.source));
    Some(event_of(event_type, after, cause, now))
}

fn observe(outcome: &Settled) {
    match outcome {
        Settled::Applied { before, after: next } => {
            metrics::count("PaymentTransitions", 1, &[("Status", next.status.as_str())]);
            if next.status == PaymentStatus::Completed {
                let settle_ms = (next.updated_at - next.created_at).num_milliseconds().max(0) as u64;
                metrics::timing("PaymentSettleLatency", std::time::Duration::from_millis(settle_ms));
            }
            if next.late && !before.late {
                metrics::count("LateSuccesses", 1, &[]);
                tracing::warn!(payment_id = %next.id, "success arrived after timeout: completed late");
            }
            tracing::info!(payment_id = %next.id, from = before.status.as_str(), to = next.status.as_str(), "payment settled");
        }
        Settled::Unchanged { why, entity: payment } if why.is_anomaly() => {
            metrics::count("CallbackAnomalies", 1, &[("Reason", why.code())]);
            tracing::warn!(payment_id = %payment.id, reason = why.code(), status = payment.status.as_str(), "anomalous result not applied");
        }
        _ => {}
    }
}
