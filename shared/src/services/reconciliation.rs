//! The timeout sweeper: finds open payments whose next check is due (through the sparse open
//! index, so its cost follows the number of open payments, not the table), asks Daraja with STK
//! Query, and settles them exactly as a callback would (source `reconciliation`).
//!
//! - "Being processed" / "does not Exist" mean *not known yet*: back off and ask again.
//! - Past the deadline with no final answer the payment becomes `timeout` (never `failed`); a
//!   late success callback still completes it. A payment without a CheckoutRequestID (its
//!   initiation outcome was unknown) can only be settled by its callback or the deadline.
//! - When Daraja could not be asked (down, rate-limited), nothing changes: the payment is
//!   rescheduled, even past its deadline, because "we could not ask" is not "no answer".
//! - Each check first *claims* the payment by moving its next check forward with a conditional
//!   write, so overlapping sweeps never query or change the same payment twice.
//! - Queries are paced (a global rate), run with bounded concurrency, and the sweep stops
//!   asking on Spike Arrest or when Daraja keeps failing; one payment's failure never stops the others.

use std::sync::Arc;
use std::time::Duration;

use super::settlement::{PaymentSettler, Settled};
use super::sweep_control::{AfterFailure, SweepControl};
use crate::clock::Clock;
use crate::daraja::{Daraja, StkQueryAnswer, StkQueryRequest};
use crate::domain::{Payment, PaymentEvent, PaymentStatus, Source, StkFinalResult};
use crate::metrics;
use crate::repo::payments::PaymentRepo;
use crate::secrets::SecretCache;
use crate::store::{StoreError, Table};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct ReconcileConfig {
    /// Due payments read per index shard per sweep.
    pub batch_per_shard: usize,
    /// Payments checked at once.
    pub concurrency: usize,
    /// STK Queries per second, at most (Daraja publishes no limit; be gentle).
    pub queries_per_second: u32,
    /// How long a claimed payment is left alone by other sweeps.
    pub lease: chrono::Duration,
    /// Backoff after "not known yet": `base * 2^attempts`, capped.
    pub backoff_base: chrono::Duration,
    pub backoff_max: chrono::Duration,
    /// Consecutive Daraja failures after which the sweep stops asking (Daraja is down).
    pub failure_threshold: u32,
    /// Stop starting new checks after this long (the Lambda's timeout minus a margin).
    pub time_budget: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            batch_per_shard: 100,
            concurrency: 4,
            queries_per_second: 10,
            lease: chrono::Duration::seconds(60),
            backoff_base: chrono::Duration::seconds(15),
            backoff_max: chrono::Duration::seconds(120),
            failure_threshold: 5,
            time_budget: Duration::from_secs(50),
        }
    }
}

/// What one sweep did (logged, returned by the Lambda, asserted by tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub due: usize,
    pub claimed: usize,
    pub queried: usize,
    pub settled: usize,
    pub timed_out: usize,
    pub rescheduled: usize,
    pub skipped: usize,
    pub errors: usize,
    /// The sweep stopped asking Daraja early (rate limited, Daraja down, or out of time).
    pub stopped_early: bool,
}

/// The sweeper paces and backs off itself, so give it a Daraja client without retries of its
/// own: a retried query after Spike Arrest is exactly the hammering the sweep avoids.
pub struct Reconciler {
    pub repo: PaymentRepo,
    pub table: Arc<dyn Table>,
    pub settler: PaymentSettler,
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
    pub config: ReconcileConfig,
}

enum Checked {
    Settled { timed_out: bool },
    Rescheduled,
    Skipped,
    Failed,
}

enum Answer {
    Final(crate::domain::DarajaResult),
    NotKnownYet,
    NoCheckoutId,
    CouldNotAsk,
}

impl Reconciler {
    pub async fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        let now = self.clock.now();
        let due = match self.repo.due_for_check(now, self.config.batch_per_shard).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "sweep could not read due payments");
                report.errors += 1;
                return report;
            }
        };
        report.due = due.len();
        let control = SweepControl::new(
            self.config.queries_per_second,
            self.config.time_budget,
            self.config.failure_threshold,
        );
        let results: Vec<Checked> = futures::stream::iter(due)
            .map(|payment| self.check(payment, &control))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        for result in results {
            match result {
                Checked::Settled { timed_out } => {
                    report.claimed += 1;
                    report.settled += 1;
                    report.timed_out += usize::from(timed_out);
                }
                Checked::Rescheduled => {
                    report.claimed += 1;
                    report.rescheduled += 1;
                }
                Checked::Skipped => report.skipped += 1,
                Checked::Failed => report.errors += 1,
            }
        }
        report.queried = control.queries();
        report.stopped_early = control.stopped();
        metrics::count("Reconciliations", report.settled as u64, &[("Result", "settled")]);
        metrics::count(
            "Reconciliations",
            report.rescheduled as u64,
            &[("Result", "rescheduled")],
        );
        metrics::count("PaymentTimeouts", report.timed_out as u64, &[]);
        // Counted after the sweep, so `past_deadline` is what this sweep could not close (Daraja
        // could not be asked, or more were due than one sweep takes): the alarm's signal.
        self.observe_open(self.clock.now()).await;
        tracing::info!(?report, "sweep finished");
        report
    }

    /// Open payments by age (`OpenPayments{Age}`: `under_1m`, `1m_to_5m`, `over_5m`,
    /// `past_deadline`), for the dashboard and the "open past the deadline" alarm.
    async fn observe_open(&self, now: DateTime<Utc>) {
        let far_future = now + chrono::Duration::days(3650);
        match self.repo.due_for_check(far_future, 1000).await {
            Ok(open) => {
                let mut buckets = [0u64; 4];
                for p in &open {
                    let age = now - p.created_at;
                    let bucket = if now >= p.deadline_at {
                        3
                    } else if age < chrono::Duration::minutes(1) {
                        0
                    } else if age < chrono::Duration::minutes(5) {
                        1
                    } else {
                        2
                    };
                    buckets[bucket] += 1;
                }
                for (label, count) in ["under_1m", "1m_to_5m", "over_5m", "past_deadline"].iter().zip(buckets) {
                    metrics::gauge("OpenPayments", count as f64, &[("Age", label)]);
                }
            }
            Err(error) => tracing::warn!(%error, "could not count open payments"),
        }
    }

    async fn check(&self, payment: Payment, control: &SweepControl) -> Checked {
        if !control.may_start() {
            return Checked::Skipped;
        }
        match self.check_one(payment, control).await {
            Ok(checked) => checked,
            Err(error) => {
                tracing::warn!(%error, "reconciliation of one payment failed; the others go on");
                Checked::Failed
            }
        }
    }

    async fn check_one(&self, payment: Payment, control: &SweepControl) -> Result<Checked, StoreError> {
        let now = self.clock.now();
        // Claim it: other sweeps now see it as not due for `lease`.
        let claimed = payment.check_again_at(now + self.config.lease);
        match self.table.write(vec![PaymentRepo::update(&claimed)]).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => return Ok(Checked::Skipped),
            Err(e) => return Err(e),
        }
        let mut claimed = claimed;
        claimed.version += 1;

        let answer = self.ask(&claimed, control).await;
        let past_deadline = self.clock.now() >= claimed.deadline_at;
        let event = match (&answer, past_deadline) {
            (Answer::Final(result), _) => Some(PaymentEvent::Final {
                outcome: StkFinalResult {
                    checkout_request_id: claimed.checkout_request_id.clone().unwrap_or_default(),
                    result: result.clone(),
                    receipt: None,
                    amount: None,
                },
                source: Source::Reconciliation,
            }),
            (Answer::NotKnownYet | Answer::NoCheckoutId, true) => Some(PaymentEvent::DeadlinePassed),
            _ => None,
        };
        if let Some(event) = event {
            let timed_out = matches!(event, PaymentEvent::DeadlinePassed);
            return match self.settler.apply(&claimed.id, &event, None).await? {
                Settled::Applied(next) => {
                    if next.status == PaymentStatus::Timeout {
                        tracing::info!(payment_id = %next.id, reason = ?next.failure_reason, "payment timed out");
                    }
                    Ok(Checked::Settled {
                        timed_out: timed_out || next.status == PaymentStatus::Timeout,
                    })
                }
                _ => Ok(Checked::Skipped),
            };
        }
        // Not known yet (or Daraja could not be asked): back off, never past the deadline.
        let backoff = self.backoff(claimed.reconcile_attempts);
        let next = claimed.check_again_at(self.clock.now() + backoff);
        match self.table.write(vec![PaymentRepo::update(&next)]).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(Checked::Rescheduled),
            Err(e) => Err(e),
        }
    }

    fn backoff(&self, attempts: u32) -> chrono::Duration {
        let factor = 1i32 << attempts.min(10);
        let delay = self.config.backoff_base * factor;
        delay.min(self.config.backoff_max)
    }

    async fn ask(&self, payment: &Payment, control: &SweepControl) -> Answer {
        let Some(checkout_request_id) = payment.checkout_request_id.as_deref() else {
            return Answer::NoCheckoutId;
        };
        if control.stopped() {
            return Answer::CouldNotAsk;
        }
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "secrets unavailable to reconciliation");
                return Answer::CouldNotAsk;
            }
        };
        if !control.take_turn().await {
            return Answer::CouldNotAsk;
        }
        let app = match secrets.daraja_app() {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(%error, "reconciliation cannot ask Daraja");
                return Answer::CouldNotAsk;
            }
        };
        let credentials = app.credentials();
        let request = StkQueryRequest {
            credentials: &credentials,
            shortcode: &payment.shortcode,
            passkey: &app.stk_passkey,
            checkout_request_id,
            now: self.clock.now(),
        };
        match self.daraja.stk_query(&request).await {
            Ok(StkQueryAnswer::Final(result)) => {
                control.answered();
                metrics::count("ReconciliationQueries", 1, &[("Answer", "final")]);
                Answer::Final(result)
            }
            Ok(StkQueryAnswer::NotKnownYet { .. }) => {
                control.answered();
                metrics::count("ReconciliationQueries", 1, &[("Answer", "not_known_yet")]);
                Answer::NotKnownYet
            }
            Err(error) => {
                metrics::count("ReconciliationQueries", 1, &[("Answer", "error")]);
                match control.failed(&error) {
                    AfterFailure::StopAsking { consecutive_failures } => {
                        tracing::warn!(%error, consecutive_failures, "Daraja is refusing or failing; the sweep stops asking");
                    }
                    AfterFailure::GoOn { .. } => {
                        tracing::warn!(%error, payment_id = %payment.id, "STK Query failed; will ask again");
                    }
                }
                Answer::CouldNotAsk
            }
        }
    }
}
