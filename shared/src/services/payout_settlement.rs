//! Applying a payout event with a conditional write, re-deciding on conflict. The worker, the
//! callback processor, the sweeper and the approval endpoints all move payouts through here, so
//! an event means the same thing whichever way it arrives.

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::payout::{decide, Payout, PayoutDecision, PayoutEvent, PayoutIgnored};
use crate::domain::{b2c_outcome, B2cOutcome, FailureCategory, PayoutId, PayoutStatus};
use crate::metrics;
use crate::repo::callbacks::{self, CallbackRecord, Verdict};
use crate::repo::payouts::PayoutRepo;
use crate::store::{StoreError, Table};

#[derive(Debug)]
pub enum PayoutSettled {
    Applied {
        before: Box<Payout>,
        after: Box<Payout>,
    },
    Unchanged {
        payout: Box<Payout>,
        why: PayoutIgnored,
    },
    /// The callback record was already written: this exact message was processed before.
    AlreadyProcessed,
    UnknownPayout,
}

impl PayoutSettled {
    pub fn verdict(&self) -> Verdict {
        match self {
            PayoutSettled::Applied { .. } => Verdict::Applied,
            PayoutSettled::Unchanged {
                why: PayoutIgnored::Duplicate,
                ..
            }
            | PayoutSettled::AlreadyProcessed => Verdict::Duplicate,
            PayoutSettled::Unchanged { why, .. } if !why.is_anomaly() => Verdict::Ignored,
            PayoutSettled::Unchanged { .. } | PayoutSettled::UnknownPayout => Verdict::Anomaly,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            PayoutSettled::Applied { .. } => "applied",
            PayoutSettled::Unchanged { why, .. } => why.code(),
            PayoutSettled::AlreadyProcessed => "already_processed",
            PayoutSettled::UnknownPayout => "unknown_payout",
        }
    }

    /// The payout as stored after this event, when it exists.
    pub fn payout(&self) -> Option<&Payout> {
        match self {
            PayoutSettled::Applied { after, .. } => Some(after),
            PayoutSettled::Unchanged { payout, .. } => Some(payout),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct PayoutSettler {
    pub repo: PayoutRepo,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

impl PayoutSettler {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> PayoutSettler {
        PayoutSettler {
            repo: PayoutRepo::new(table.clone()),
            table,
            clock,
        }
    }

    /// Applies `event` to the payout (read fresh, or `known` when the caller just read it). When
    /// `record` is given it is written in the same transaction with its verdict filled in, so a
    /// callback is recorded exactly once and together with its effect.
    pub async fn apply(
        &self,
        payout_id: &PayoutId,
        event: &PayoutEvent,
        mut known: Option<Payout>,
        mut record: Option<CallbackRecord>,
    ) -> Result<PayoutSettled, StoreError> {
        for _ in 0..8 {
            let payout = match known.take() {
                Some(payout) => payout,
                None => match self.repo.get(payout_id).await? {
                    Some(payout) => payout,
                    None => {
                        if let Some(record) = record.as_mut() {
                            record.verdict = Verdict::Anomaly;
                            record.reason = "unknown_payout".into();
                            return match self.table.write(vec![callbacks::insert(record)]).await {
                                Ok(()) => Ok(PayoutSettled::UnknownPayout),
                                Err(StoreError::ConditionFailed { .. }) => Ok(PayoutSettled::AlreadyProcessed),
                                Err(e) => Err(e),
                            };
                        }
                        return Ok(PayoutSettled::UnknownPayout);
                    }
                },
            };
            let now = self.clock.now();
            let outcome = match decide(&payout, event, now) {
                PayoutDecision::Apply(next) => PayoutSettled::Applied {
                    before: Box::new(payout.clone()),
                    after: next,
                },
                PayoutDecision::Ignore(why) => PayoutSettled::Unchanged {
                    payout: Box::new(payout.clone()),
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
            if let PayoutSettled::Applied { after, .. } = &outcome {
                writes.push(PayoutRepo::update(after));
            }
            if writes.is_empty() {
                return Ok(outcome);
            }
            match self.table.write(writes).await {
                Ok(()) => {
                    observe(&outcome);
                    return Ok(match outcome {
                        PayoutSettled::Applied { before, mut after } => {
                            after.version += 1;
                            PayoutSettled::Applied { before, after }
                        }
                        other => other,
                    });
                }
                Err(StoreError::ConditionFailed { index }) if index == update_index => continue,
                Err(StoreError::ConditionFailed { .. }) => return Ok(PayoutSettled::AlreadyProcessed),
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable("payout kept changing under us".into()))
    }
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
        PayoutSettled::Unchanged { why, payout } if why.is_anomaly() => {
            metrics::count("CallbackAnomalies", 1, &[("Reason", why.code())]);
            tracing::warn!(payout_id = %payout.id, reason = why.code(), status = payout.status.as_str(), "anomalous payout result not applied");
        }
        _ => {}
    }
}
