//! Applying a payment event with a conditional write, re-deciding on conflict. Callbacks and
//! reconciliation both settle payments through here, so a result means the same thing whichever
//! way it arrives.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::{decide, Decision, Ignored, Payment, PaymentEvent, PaymentId, PaymentStatus};
use crate::metrics;
use crate::repo::callbacks::{self, CallbackRecord, Verdict};
use crate::repo::payments::PaymentRepo;
use crate::services::receipt_links;
use crate::store::{StoreError, Table};

#[derive(Debug)]
pub enum Settled {
    Applied(Box<Payment>),
    Unchanged {
        payment: Box<Payment>,
        why: Ignored,
    },
    /// The record was already written: this exact message was processed before.
    AlreadyProcessed,
    UnknownPayment,
}

impl Settled {
    pub fn verdict(&self) -> Verdict {
        match self {
            Settled::Applied(_) => Verdict::Applied,
            Settled::Unchanged {
                why: Ignored::Duplicate,
                ..
            }
            | Settled::AlreadyProcessed => Verdict::Duplicate,
            Settled::Unchanged { why, .. } if !why.is_anomaly() => Verdict::Ignored,
            Settled::Unchanged { .. } | Settled::UnknownPayment => Verdict::Anomaly,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Settled::Applied(_) => "applied",
            Settled::Unchanged { why, .. } => why.code(),
            Settled::AlreadyProcessed => "already_processed",
            Settled::UnknownPayment => "unknown_payment",
        }
    }
}

pub struct PaymentSettler {
    pub repo: PaymentRepo,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

impl PaymentSettler {
    /// Applies `event` to the payment. When `record` is given it is written in the same
    /// transaction (with its verdict filled in), so a callback is recorded exactly once and
    /// together with its effect.
    pub async fn apply(
        &self,
        payment_id: &PaymentId,
        event: &PaymentEvent,
        mut record: Option<CallbackRecord>,
    ) -> Result<Settled, StoreError> {
        for attempt in 0..8 {
            let Some(payment) = self.repo.get(payment_id).await? else {
                if let Some(record) = record.as_mut() {
                    record.verdict = Verdict::Anomaly;
                    record.reason = "unknown_payment".into();
                    return match self.table.write(vec![callbacks::insert(record)]).await {
                        Ok(()) => Ok(Settled::UnknownPayment),
                        Err(StoreError::ConditionFailed { .. }) => Ok(Settled::AlreadyProcessed),
                        Err(e) => Err(e),
                    };
                }
                return Ok(Settled::UnknownPayment);
            };
            let now = self.clock.now();
            let outcome = match decide(&payment, event, now) {
                Decision::Apply(next) => Settled::Applied(next),
                Decision::Ignore(why) => Settled::Unchanged {
                    payment: Box::new(payment.clone()),
                    why,
                },
            };
            let mut writes = Vec::with_capacity(2);
            if let Some(record) = record.as_mut() {
                record.verdict = outcome.verdict();
                record.reason = outcome.reason().to_owned();
                record.processed_at = now;
                writes.push(callbacks::insert(record));
            }
            let update_index = writes.len();
            if let Settled::Applied(next) = &outcome {
                writes.push(PaymentRepo::update(next));
                // A completion that brings a receipt registers it in the same transaction, linking
                // the C2B confirmation of that receipt (C2B echo of a paybill STK payment).
                if let Some(receipt) = next
                    .mpesa_receipt
                    .as_deref()
                    .filter(|r| payment.mpesa_receipt.as_deref() != Some(*r))
                {
                    if next.status == PaymentStatus::Completed {
                        // First attempt without a read (usually nothing is registered yet).
                        let optimistic = attempt == 0;
                        writes.extend(
                            receipt_links::stk_completion_writes(
                                self.table.as_ref(),
                                &next.id,
                                receipt,
                                now,
                                optimistic,
                            )
                            .await?,
                        );
                    }
                }
            }
            if writes.is_empty() {
                return Ok(outcome);
            }
            match self.table.write(writes).await {
                Ok(()) => {
                    observe(&payment, &outcome);
                    return Ok(match outcome {
                        Settled::Applied(mut next) => {
                            next.version += 1;
                            Settled::Applied(next)
                        }
                        other => other,
                    });
                }
                // The payment (or the receipt registry written with it) moved: decide again.
                Err(StoreError::ConditionFailed { index }) if index >= update_index => continue,
                Err(StoreError::ConditionFailed { .. }) => return Ok(Settled::AlreadyProcessed),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable("payment kept changing under us".into()))
    }
}

fn observe(before: &Payment, outcome: &Settled) {
    match outcome {
        Settled::Applied(next) => {
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
        Settled::Unchanged { why, payment } if why.is_anomaly() => {
            metrics::count("CallbackAnomalies", 1, &[("Reason", why.code())]);
            tracing::warn!(payment_id = %payment.id, reason = why.code(), status = payment.status.as_str(), "anomalous result not applied");
        }
        _ => {}
    }
}
