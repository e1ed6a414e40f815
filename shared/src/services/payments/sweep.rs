//! The timeout sweeper: finds open payments whose next check is due (through the sparse open
//! index, so its cost follows the number of open payments, not the table), asks Daraja with STK
//! Query, and settles them exactly as a callback would (source `reconciliation`).
//!
//! - "Being processed" / "does not Exist" mean *not known yet*: back off and ask again.
//! - Past the deadline with no final answer the payment becomes `timeout` (never `failed`); a
//!   late success callback still completes it. A payment without a CheckoutRequestID (the push's
//!   answer was lost, or we crashed around the push) cannot be asked about: it stays `unknown`
//!   (never a guessed `timeout`) for its callback, is counted in `OpenPayments{past_deadline}`,
//!   and is looked at again only every [`ReconcileConfig::unaskable_recheck`].
//! - When Daraja could not be asked (down, rate-limited), nothing changes: the payment is
//!   rescheduled, even past its deadline, because "we could not ask" is not "no answer". Past
//!   the deadline it is rescheduled from now (not capped at the deadline), so payments that
//!   cannot be asked about move to the back of the queue and never starve the others.
//! - A definitive refusal of the query (wrong credentials, unknown merchant: our configuration)
//!   is an answer for the circuit breaker (Daraja is up) and an operator alarm
//!   (`PaymentOperatorAlarms{Reason}`); the payment is rescheduled.
//! - Each check first *claims* the payment by moving its next check forward with a conditional
//!   write, so overlapping sweeps never query or change the same payment twice.
//! - Queries are paced (a global rate), run with bounded concurrency, and the sweep stops
//!   asking on Spike Arrest or when Daraja keeps failing; one payment's failure never stops the
//!   others, and one corrupt stored item is logged, alarmed and skipped.

use std::sync::Arc;

use crate::clock::Clock;
use crate::daraja::{Daraja, DarajaError, StkQueryAnswer, StkQueryRequest};
use crate::domain::{Payment, PaymentEvent, PaymentStatus, Source, StkFinalResult};
use crate::engine::sweep::{self, AfterFailure, Outcome, Pacing, Sweep, SweepControl};
use crate::metrics;
use crate::repo::payments::PaymentRepo;
use crate::secrets::SecretCache;
use crate::services::payments::flow::{PaymentSettler, Settled};
use crate::store::{StoreError, Table};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct ReconcileConfig {
    /// Due payments read per index shard per sweep.
    pub batch_per_shard: usize,
    /// Payments checked at once, STK Queries per second at most (Daraja publishes no limit; be
    /// gentle), the consecutive Daraja failures after which the sweep stops asking (Daraja is
    /// down), and the time after which no check starts.
    pub pacing: Pacing,
    /// How long a claimed payment is left alone by other sweeps.
    pub lease: chrono::Duration,
    /// Backoff after "not known yet": `base * 2^attempts`, capped.
    pub backoff_base: chrono::Duration,
    pub backoff_max: chrono::Duration,
    /// How often a payment that cannot be asked about (no CheckoutRequestID) is looked at again
    /// once past its deadline.
    pub unaskable_recheck: chrono::Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            batch_per_shard: 100,
            pacing: Pacing {
                queries_per_second: 10,
                ..Pacing::default()
            },
            lease: chrono::Duration::seconds(60),
            backoff_base: chrono::Duration::seconds(15),
            backoff_max: chrono::Duration::seconds(120),
            unaskable_recheck: chrono::Duration::hours(1),
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

pub enum Checked {
    Settled {
        timed_out: bool,
    },
    Rescheduled,
    /// Not acted on: another sweep claimed it first, or settling it changed nothing.
    Skipped,
}

enum Answer {
    Final(crate::domain::DarajaResult),
    NotKnownYet,
    NoCheckoutId,
    /// Daraja refused the query itself (our credentials or shortcode): ask again later.
    Refused,
    /// Asked, and the question failed (down, rate-limited, timed out).
    CouldNotAsk,
    /// Not asked at all: the sweep stopped asking, or ran out of turns, or has no credentials.
    NotAsked,
}

#[async_trait::async_trait]
impl Sweep for Reconciler {
    type Item = Payment;
    type Checked = Checked;

    const ITEM: &'static str = "payment";

    fn pacing(&self) -> Pacing {
        self.config.pacing
    }

    async fn due(&self, now: DateTime<Utc>) -> Result<Vec<Payment>, StoreError> {
        self.repo.due_for_check(now, self.config.batch_per_shard).await
    }

    async fn check(&self, payment: Payment, control: &SweepControl) -> Result<Checked, StoreError> {
        self.check_one(payment, control).await
    }
}

impl Reconciler {
    pub async fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        let swept = sweep::run(self, self.clock.now()).await;
        if swept.read_failed {
            report.errors += 1;
            return report;
        }
        report.due = swept.due;
        for outcome in swept.outcomes {
            match outcome {
                Outcome::Checked(Checked::Settled { timed_out }) => {
                    report.claimed += 1;
                    report.settled += 1;
                    report.timed_out += usize::from(timed_out);
                }
                Outcome::Checked(Checked::Rescheduled) => {
                    report.claimed += 1;
                    report.rescheduled += 1;
                }
                // Claim lost to another sweep, or not started.
                Outcome::Checked(Checked::Skipped) | Outcome::Skipped => report.skipped += 1,
                Outcome::Failed => report.errors += 1,
            }
        }
        report.queried = swept.queries;
        report.stopped_early = swept.stopped_early;
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

    async fn check_one(&self, payment: Payment, control: &SweepControl) -> Result<Checked, StoreError> {
        let now = self.clock.now();
        // Claim it: other sweeps now see it as not due for `lease`.
        let claimed = payment.not_before(now, self.config.lease);
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
            match self.settler.apply(&claimed.id, &event, None).await? {
                Settled::Applied { after: next, .. } if next.status == PaymentStatus::Unknown => {
                    tracing::warn!(payment_id = %next.id, "past its deadline without a CheckoutRequestID: unknown until its callback comes");
                    return self.reschedule(&next, self.config.unaskable_recheck).await;
                }
                Settled::Applied { after: next, .. } => {
                    if next.status == PaymentStatus::Timeout {
                        tracing::info!(payment_id = %next.id, reason = ?next.failure_reason, "payment timed out");
                    }
                    return Ok(Checked::Settled {
                        timed_out: next.status == PaymentStatus::Timeout,
                    });
                }
                // Already unknown past its deadline: nothing can be asked; look again much later.
                Settled::Unchanged { entity: payment, .. } if payment.status == PaymentStatus::Unknown => {
                    return self.reschedule(&payment, self.config.unaskable_recheck).await;
                }
                _ => return Ok(Checked::Skipped),
            }
        }
        let next = match answer {
            // This sweep stopped before asking (Daraja refusing, out of time or turns): hand the
            // payment back for the next sweep, no attempt counted, so a busy sweep's early stop
            // never lengthens the backoff of payments it did not ask about.
            Answer::NotAsked => claimed.not_before(self.clock.now(), self.config.backoff_base),
            // Asked, nothing final (or the question failed): back off; before the deadline never
            // past it, after it from now (to the back of the queue).
            _ => claimed.check_again(self.clock.now(), self.backoff(claimed.reconcile_attempts)),
        };
        self.save_next_check(&next).await
    }

    async fn reschedule(&self, payment: &Payment, after: chrono::Duration) -> Result<Checked, StoreError> {
        self.save_next_check(&payment.check_again(self.clock.now(), after))
            .await
    }

    async fn save_next_check(&self, next: &Payment) -> Result<Checked, StoreError> {
        match self.table.write(vec![PaymentRepo::update(next)]).await {
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
            return Answer::NotAsked;
        }
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "secrets unavailable to reconciliation");
                return Answer::NotAsked;
            }
        };
        if !control.take_turn().await {
            return Answer::NotAsked;
        }
        let app = match secrets.daraja_app() {
            Ok(app) => app,
            Err(error) => {
                tracing::error!(%error, "reconciliation cannot ask Daraja");
                return Answer::NotAsked;
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
            Err(error @ (DarajaError::Rejected { .. } | DarajaError::Auth { .. })) => {
                // Daraja answered, definitively: our credentials or shortcode are wrong (e.g. a
                // changed passkey). Daraja is up, so the breaker is not tripped by it; a person
                // must fix the configuration.
                control.answered();
                metrics::count("ReconciliationQueries", 1, &[("Answer", "refused")]);
                let reason = if error.is_wrong_credentials() {
                    "stk_query_wrong_credentials"
                } else if error.is_merchant_unknown() {
                    "stk_query_merchant_unknown"
                } else {
                    "stk_query_refused"
                };
                metrics::count("PaymentOperatorAlarms", 1, &[("Reason", reason)]);
                tracing::error!(%error, payment_id = %payment.id, reason, "STK Query refused: reconciliation needs a configuration fix");
                Answer::Refused
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::daraja::{
        Acknowledgement, B2cAccepted, B2cPaymentRequest, C2bRegisterRequest, C2bRegistered, StkPushAccepted,
        StkPushRequest, TransactionStatusRequest,
    };
    use crate::domain::{
        decide, Amount, ClientId, DarajaResult, Decision, Metadata, Msisdn, NewPayment, PaymentId, PaymentTimings,
        Reference, ResultCode,
    };
    use crate::secrets::StaticSecret;
    use crate::services::payments::flow::PaymentFlow;
    use crate::store::memory::MemoryTable;
    use crate::store::{Condition, Index, Item, Write};
    use async_trait::async_trait;
    use std::collections::HashSet;
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T11:30:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// STK Query answers: success, except for the CheckoutRequestIDs that fail or are refused.
    struct FakeDaraja {
        failing: HashSet<String>,
        refused: HashSet<String>,
    }

    #[async_trait]
    impl Daraja for FakeDaraja {
        async fn stk_push(&self, _: &StkPushRequest<'_>) -> Result<StkPushAccepted, DarajaError> {
            unreachable!("the sweeper never pushes")
        }
        async fn stk_query(&self, request: &StkQueryRequest<'_>) -> Result<StkQueryAnswer, DarajaError> {
            if self.failing.contains(request.checkout_request_id) {
                return Err(DarajaError::OutcomeUnknown {
                    detail: "HTTP 503".into(),
                });
            }
            if self.refused.contains(request.checkout_request_id) {
                return Err(DarajaError::Rejected {
                    http_status: 500,
                    code: "500.001.1001".into(),
                    message: "Wrong credentials".into(),
                });
            }
            Ok(StkQueryAnswer::Final(DarajaResult {
                code: ResultCode::new("0"),
                description: "The service request is processed successfully.".into(),
            }))
        }
        async fn b2c_payment(&self, _: &B2cPaymentRequest<'_>) -> Result<B2cAccepted, DarajaError> {
            unreachable!()
        }
        async fn transaction_status(&self, _: &TransactionStatusRequest<'_>) -> Result<Acknowledgement, DarajaError> {
            unreachable!()
        }
        async fn register_c2b_urls(&self, _: &C2bRegisterRequest<'_>) -> Result<C2bRegistered, DarajaError> {
            unreachable!()
        }
    }

    struct Fixture {
        table: Arc<dyn Table>,
        clock: Arc<ManualClock>,
        reconciler: Reconciler,
    }

    fn fixture(failing: &[String], refused: &[String]) -> Fixture {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let manual = Arc::new(ManualClock::new(t0()));
        let clock: Arc<dyn Clock> = manual.clone();
        let secrets = Arc::new(SecretCache::new(
            Arc::new(StaticSecret(
                serde_json::json!({
                    "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
                    "stk_passkey": "p", "callback_hmac_key": "reconciliation-test-key-0123456789abcdef",
                })
                .to_string(),
            )),
            Duration::from_secs(3600),
        ));
        let reconciler = Reconciler {
            repo: PaymentRepo::new(table.clone()),
            table: table.clone(),
            settler: PaymentSettler::new(PaymentFlow, table.clone(), clock.clone()),
            daraja: Arc::new(FakeDaraja {
                failing: failing.iter().cloned().collect(),
                refused: refused.iter().cloned().collect(),
            }),
            secrets,
            clock,
            config: ReconcileConfig {
                pacing: Pacing {
                    queries_per_second: 10_000,
                    ..Pacing::default()
                },
                ..ReconcileConfig::default()
            },
        };
        Fixture {
            table,
            clock: manual,
            reconciler,
        }
    }

    /// A `sent` payment created `age` before t0, with CheckoutRequestID `checkout`.
    async fn sent_payment(table: &Arc<dyn Table>, checkout: &str, age: chrono::Duration) -> PaymentId {
        let payment = Payment::create(
            PaymentId::generate(),
            ClientId::parse("merchant-1").unwrap(),
            "174379".into(),
            NewPayment {
                amount: Amount::new(100).unwrap(),
                phone: Msisdn::parse("0712345678").unwrap(),
                reference: Reference::parse("ORDER1").unwrap(),
                description: None,
                metadata: Metadata::default(),
            },
            t0() - age,
            PaymentTimings::default(),
        );
        let accepted = PaymentEvent::DarajaAccepted {
            checkout_request_id: checkout.into(),
            merchant_request_id: "m".into(),
        };
        let Decision::Apply(sent) = decide(&payment, &accepted, t0() - age) else {
            panic!("accepted")
        };
        table.write(vec![PaymentRepo::insert(&sent)]).await.unwrap();
        sent.id.clone()
    }

    async fn completed(table: &Arc<dyn Table>, ids: &[PaymentId]) -> usize {
        let repo = PaymentRepo::new(table.clone());
        let mut n = 0;
        for id in ids {
            if repo.get(id).await.unwrap().unwrap().status == PaymentStatus::Completed {
                n += 1;
            }
        }
        n
    }

    /// Five payments past their deadline whose queries always fail, a corrupt open item, and
    /// fifty healthy payments: the failing ones move to the back of the queue and the corrupt one
    /// is skipped, so every healthy payment settles.
    #[tokio::test]
    async fn payments_that_cannot_be_asked_about_never_starve_the_others() {
        let failing: Vec<String> = (0..5).map(|i| format!("ws_CO_failing_{i}")).collect();
        let f = fixture(&failing, &[]);
        for checkout in &failing {
            sent_payment(&f.table, checkout, chrono::Duration::minutes(20)).await;
        }
        let mut healthy = Vec::new();
        for i in 0..50 {
            healthy.push(sent_payment(&f.table, &format!("ws_CO_ok_{i}"), chrono::Duration::minutes(2)).await);
        }
        // A stored open item that does not read back (a bug or a manual edit).
        let corrupt = Item::new("PAY#pay_corrupt", 1, "{not json".into()).with_index(
            Index::Gsi3,
            "OPEN#PAY#0",
            "0000000000000001#pay_corrupt",
        );
        f.table
            .write(vec![Write::Put {
                item: corrupt,
                condition: Condition::Always,
            }])
            .await
            .unwrap();
        // Sweeps a minute apart, as the scheduled sweeper runs.
        for _ in 0..3 {
            f.reconciler.sweep().await;
            f.clock.advance(chrono::Duration::seconds(61));
        }
        assert_eq!(completed(&f.table, &healthy).await, 50, "every healthy payment settles");
    }

    /// A definitive refusal of the query (our configuration) is an answer: it does not trip the
    /// breaker, so one sweep still settles everything else.
    #[tokio::test]
    async fn a_refused_query_does_not_trip_the_breaker() {
        let refused: Vec<String> = (0..8).map(|i| format!("ws_CO_refused_{i}")).collect();
        let f = fixture(&[], &refused);
        for checkout in &refused {
            sent_payment(&f.table, checkout, chrono::Duration::minutes(3)).await;
        }
        let mut healthy = Vec::new();
        for i in 0..20 {
            healthy.push(sent_payment(&f.table, &format!("ws_CO_ok_{i}"), chrono::Duration::minutes(2)).await);
        }
        let report = f.reconciler.sweep().await;
        assert!(!report.stopped_early, "{report:?}");
        assert_eq!(completed(&f.table, &healthy).await, 20);
    }

    /// A sweep that stops asking (Daraja failing) leaves the payments it never asked about due
    /// for the next sweep with no attempt counted, those in flight when it stopped included;
    /// the ones it asked back off.
    #[tokio::test]
    async fn a_sweep_that_stops_early_does_not_lengthen_the_backoff_of_payments_it_never_asked() {
        let failing: Vec<String> = (0..2).map(|i| format!("ws_CO_failing_{i}")).collect();
        let mut f = fixture(&failing, &[]);
        f.reconciler.config.pacing.concurrency = 4;
        f.reconciler.config.pacing.failure_threshold = 1;
        let mut asked = Vec::new();
        for checkout in &failing {
            asked.push(sent_payment(&f.table, checkout, chrono::Duration::minutes(20)).await);
        }
        let mut others = Vec::new();
        for i in 0..8 {
            others.push(sent_payment(&f.table, &format!("ws_CO_ok_{i}"), chrono::Duration::minutes(2)).await);
        }
        let report = f.reconciler.sweep().await;
        assert!(report.stopped_early, "{report:?}");
        let repo = PaymentRepo::new(f.table.clone());
        let base = f.reconciler.config.backoff_base;
        for id in &asked {
            let p = repo.get(id).await.unwrap().unwrap();
            assert!(
                p.reconcile_attempts <= 1,
                "asked at most once: {}",
                p.reconcile_attempts
            );
        }
        let mut unasked = 0;
        for id in &others {
            let p = repo.get(id).await.unwrap().unwrap();
            if p.status == PaymentStatus::Sent {
                unasked += 1;
                assert_eq!(p.reconcile_attempts, 0, "never asked: no attempt counted");
                assert!(
                    p.next_check_at <= Some(t0() + base),
                    "due at the next sweep: {:?}",
                    p.next_check_at
                );
            }
        }
        assert!(unasked > 0, "the sweep stopped before asking about some");
        // The next sweep (Daraja failing less) asks them and settles them.
        f.clock.advance(base);
        f.reconciler.config.pacing.failure_threshold = 100;
        f.reconciler.sweep().await;
        assert_eq!(completed(&f.table, &others).await, 8);
    }
}
