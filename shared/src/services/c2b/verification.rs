//! Verifying C2B confirmations with Daraja (runs in the timeout sweeper next to the payment and
//! payout sweeps), and applying Daraja's answers (from the callback queue).
//!
//! - The sweep reads unverified confirmations whose check is due through the sparse open index
//!   (`OPEN#C2B#<shard>`), claims each with a conditional write that moves its next check one
//!   interval on (so overlapping sweeps never ask twice), and asks Transaction Status by
//!   `TransID` with the C2B initiator (`c2b_initiator_name` / `_password` in the secret) on the
//!   confirmation's shortcode (`IdentifierType` 4). Queries are paced and the sweep stops asking on
//!   Spike Arrest or when Daraja keeps failing ([`crate::engine::sweep`]).
//! - Without a C2B initiator nothing can be verified: the confirmation stays `unverified`, looked
//!   at again every [`C2bVerifyConfig::unavailable_recheck`], and operators are alarmed
//!   (`C2bVerificationUnavailable`); the registration answer and `/v1/ready` say so too.
//! - The answer arrives at `/callbacks/c2b/status/{token}` (token: the receipt, MACed) and
//!   [`C2bStatusHandler`] decides with [`decide_verification`]: verified ones are settled
//!   ([`crate::services::c2b::effects`]) in the same transaction as the callback record; rejected ones
//!   are anomalies that settle nothing (`C2bVerificationRejected{Reason}`, alarmed).

use crate::engine::{self, Settle};
use crate::services::c2b::flow::{C2bEvent, C2bSettled};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::callbacks::{parse_transaction_status_result, TransactionStatusResult};
use crate::daraja::errors::redact_id;
use crate::daraja::transaction_status::IDENTIFIER_TYPE_SHORTCODE;
use crate::daraja::{Daraja, TransactionStatusRequest};
use crate::domain::c2b::C2bPayment;
use crate::domain::c2b_verification::{StatusAnswer, VerificationTimings};
use crate::engine::sweep::{self, AfterFailure, Pacing, Sweep, SweepControl};
use crate::metrics;
use crate::repo::c2b as repo;
use crate::repo::callbacks::Verdict;
use crate::secrets::SecretCache;
use crate::services::c2b::callback_context::C2bCallbackContext;
use crate::services::callback_intake::{CallbackEnvelope, CallbackKind};
use crate::services::callback_processor::{CallbackHandler, Retry};
use crate::services::payouts::credential::SecurityCredentials;
use crate::store::{StoreError, Table};

#[derive(Debug, Clone, Copy)]
pub struct C2bVerifyConfig {
    /// Due confirmations read per index shard per sweep.
    pub batch_per_shard: usize,
    /// Confirmations checked at once, Transaction Status queries per second at most, the
    /// consecutive Daraja failures after which the sweep stops asking, and the time after which
    /// no check starts.
    pub pacing: Pacing,
    pub timings: VerificationTimings,
    /// How often a confirmation that cannot be asked about (no C2B initiator), or that Daraja
    /// never answered about past its deadline, is looked at again.
    pub unavailable_recheck: chrono::Duration,
}

impl Default for C2bVerifyConfig {
    fn default() -> Self {
        C2bVerifyConfig {
            batch_per_shard: 100,
            pacing: Pacing::default(),
            timings: VerificationTimings::default(),
            unavailable_recheck: chrono::Duration::hours(1),
        }
    }
}

/// What one verification sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct C2bVerifySweepReport {
    pub due: usize,
    /// Transaction Status queries Daraja acknowledged.
    pub queried: usize,
    /// Confirmations that could not be asked about (no C2B initiator configured).
    pub unverifiable: usize,
    pub skipped: usize,
    pub errors: usize,
    pub stopped_early: bool,
}

pub struct C2bVerifier {
    pub table: Arc<dyn Table>,
    /// A client without retries of its own: the sweep paces and backs off itself.
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub credentials: Arc<SecurityCredentials>,
    pub clock: Arc<dyn Clock>,
    pub config: C2bVerifyConfig,
    /// Public base URL of the API; Transaction Status result URLs are built on it.
    pub public_base_url: String,
}

#[derive(Default)]
pub struct Checked {
    queried: bool,
    unverifiable: bool,
    skipped: bool,
    failed: bool,
}

#[async_trait]
impl Sweep for C2bVerifier {
    type Item = C2bPayment;
    type Checked = Checked;

    const ITEM: &'static str = "C2B confirmation";

    fn pacing(&self) -> Pacing {
        self.config.pacing
    }

    async fn due(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<C2bPayment>, StoreError> {
        repo::due_for_verification(self.table.as_ref(), now, self.config.batch_per_shard).await
    }

    async fn check(&self, payment: C2bPayment, control: &SweepControl) -> Result<Checked, StoreError> {
        self.check_one(payment, control).await
    }
}

impl C2bVerifier {
    pub async fn sweep(&self) -> C2bVerifySweepReport {
        let swept = sweep::run(self, self.clock.now()).await;
        let mut report = C2bVerifySweepReport {
            due: swept.due,
            errors: usize::from(swept.read_failed),
            ..C2bVerifySweepReport::default()
        };
        // Nothing due, or what is due could not be read (one error): nothing to count or log.
        if swept.due == 0 {
            return report;
        }
        for outcome in swept.outcomes {
            if let Some(checked) = outcome.checked_or_count(&mut report.skipped, &mut report.errors) {
                report.queried += usize::from(checked.queried);
                report.unverifiable += usize::from(checked.unverifiable);
                report.skipped += usize::from(checked.skipped);
                report.errors += usize::from(checked.failed);
            }
        }
        report.stopped_early = swept.stopped_early;
        metrics::count("C2bVerificationQueries", report.queried as u64, &[]);
        if report.unverifiable > 0 {
            metrics::count("C2bVerificationUnavailable", report.unverifiable as u64, &[]);
        }
        tracing::info!(?report, "C2B verification sweep finished");
        report
    }

    async fn check_one(&self, payment: C2bPayment, control: &SweepControl) -> Result<Checked, StoreError> {
        let now = self.clock.now();
        let secrets = match self.secrets.get().await {
            Ok(secrets) => secrets,
            Err(error) => {
                tracing::error!(%error, "secrets unavailable to the verification sweep");
                return Ok(Checked {
                    failed: true,
                    ..Checked::default()
                });
            }
        };
        let initiator = secrets
            .c2b_initiator_name
            .clone()
            .zip(secrets.c2b_initiator_password.clone());
        let past_deadline = payment.verification.deadline_at.is_none_or(|d| now >= d);
        let wait = if initiator.is_none() || past_deadline {
            self.config.unavailable_recheck
        } else {
            self.config.timings.interval
        };
        // Claim: move the next check on and count the query, before asking.
        let mut claimed = payment.clone();
        claimed.verification.next_check_at = Some(now + wait);
        if initiator.is_some() {
            claimed.verification.queries = claimed.verification.queries.saturating_add(1);
        }
        match self.table.write(vec![repo::update_payment(&claimed)]).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed { .. }) => {
                return Ok(Checked {
                    skipped: true,
                    ..Checked::default()
                })
            }
            Err(e) => return Err(e),
        }
        let Some((name, password)) = initiator else {
            tracing::error!(c2b_payment_id = %payment.id, shortcode = %payment.shortcode, "C2B confirmation cannot be verified: the secret has no c2b_initiator_name / c2b_initiator_password");
            return Ok(Checked {
                unverifiable: true,
                ..Checked::default()
            });
        };
        if control.stopped() {
            return Ok(Checked {
                skipped: true,
                ..Checked::default()
            });
        }
        let credential = match self.credentials.for_password(&password) {
            Ok(c) => c,
            Err(error) => {
                metrics::count("C2bVerificationUnavailable", 1, &[]);
                tracing::error!(%error, "C2B verification cannot be asked: SecurityCredential failed");
                return Ok(Checked {
                    unverifiable: true,
                    ..Checked::default()
                });
            }
        };
        if !control.take_turn().await {
            return Ok(Checked {
                skipped: true,
                ..Checked::default()
            });
        }
        let tokens = CallbackTokens::from_secrets(&secrets);
        let base = self.public_base_url.trim_end_matches('/');
        let result_url = format!(
            "{base}/callbacks/c2b/status/{}",
            tokens.token_for(TokenPurpose::C2bStatusResult, &payment.trans_id)
        );
        let timeout_url = format!(
            "{base}/callbacks/c2b/status-timeout/{}",
            tokens.token_for(TokenPurpose::C2bStatusTimeout, &payment.trans_id)
        );
        let api = match secrets.api_credentials() {
            Ok(api) => api,
            Err(error) => {
                tracing::error!(%error, "C2B verification cannot be asked: the Daraja app secret is not loaded");
                return Ok(Checked {
                    unverifiable: true,
                    ..Checked::default()
                });
            }
        };
        let request = TransactionStatusRequest {
            credentials: &api,
            initiator: &name,
            security_credential: credential.expose(),
            party_a: payment.shortcode.as_str(),
            identifier_type: IDENTIFIER_TYPE_SHORTCODE,
            transaction_id: Some(&payment.trans_id),
            original_conversation_id: None,
            result_url: &result_url,
            queue_timeout_url: &timeout_url,
            remarks: "C2B receipt check",
            occasion: None,
        };
        match self.daraja.transaction_status(&request).await {
            Ok(_) => {
                control.answered();
                Ok(Checked {
                    queried: true,
                    ..Checked::default()
                })
            }
            Err(error) => {
                match control.failed(&error) {
                    AfterFailure::StopAsking { consecutive_failures } => {
                        tracing::warn!(%error, consecutive_failures, "Daraja is refusing or failing; the verification sweep stops asking");
                    }
                    AfterFailure::GoOn { .. } => {
                        tracing::warn!(%error, c2b_payment_id = %payment.id, "Transaction Status failed; will ask again");
                    }
                }
                Ok(Checked::default())
            }
        }
    }
}

/// Handles [`CallbackKind::C2bStatusResult`] and [`CallbackKind::C2bStatusTimeout`].
pub struct C2bStatusHandler {
    pub context: C2bCallbackContext,
}

impl C2bStatusHandler {
    pub fn new(table: Arc<dyn Table>, secrets: Arc<SecretCache>, clock: Arc<dyn Clock>) -> C2bStatusHandler {
        C2bStatusHandler {
            context: C2bCallbackContext::new("c2b_status_result", table, secrets, clock),
        }
    }
}

/// What a Transaction Status result says about the receipt; `Err(reason)` when it says nothing.
fn status_answer(status: &TransactionStatusResult) -> Result<StatusAnswer, &'static str> {
    if status.is_not_found() {
        return Ok(StatusAnswer::NotFound);
    }
    if !status.result.code.is_success() {
        // The query itself failed (e.g. our initiator lacks the role): says nothing of the receipt.
        metrics::count("C2bVerificationUnavailable", 1, &[]);
        tracing::error!(
            code = status.result.code.as_str(),
            "C2B Transaction Status refused: check the C2B initiator"
        );
        return Err("status_query_failed");
    }
    if status.is_completed() {
        return Ok(StatusAnswer::Completed {
            // A fractional or unreadable amount cannot be checked: treated as absent.
            amount: status.params.amount.and_then(Result::ok),
            receipt: status.params.receipt.clone(),
        });
    }
    let reported = status
        .params
        .status
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if matches!(reported.as_str(), "declined" | "cancelled" | "expired" | "failed") {
        return Ok(StatusAnswer::Declined);
    }
    Err("not_final")
}

#[async_trait]
impl CallbackHandler for C2bStatusHandler {
    async fn handle(&self, message_id: &str, envelope: &CallbackEnvelope) -> Result<Verdict, Retry> {
        let context = &self.context;
        let (secrets, record) = context.begin(message_id, envelope).await?;
        let tokens = CallbackTokens::from_secrets(&secrets);
        let purpose = match envelope.kind {
            CallbackKind::C2bStatusTimeout => TokenPurpose::C2bStatusTimeout,
            _ => TokenPurpose::C2bStatusResult,
        };
        let Some(trans_id) = tokens.verify(purpose, &envelope.token).map(str::to_owned) else {
            return context.finish(record, Verdict::Anomaly, "invalid_token").await;
        };
        if envelope.kind == CallbackKind::C2bStatusTimeout {
            // The sweep asks again at the confirmation's next check.
            return context.finish(record, Verdict::Ignored, "status_query_timeout").await;
        }
        let status = match parse_transaction_status_result(&envelope.body_bytes()) {
            Ok(status) => status,
            Err(error) => {
                tracing::warn!(%error, trans_id = %redact_id(&trans_id), "malformed C2B Transaction Status result");
                return context.finish(record, Verdict::Anomaly, "malformed").await;
            }
        };
        let answer = match status_answer(&status) {
            Ok(answer) => answer,
            Err(reason) => return context.finish(record, Verdict::Ignored, reason).await,
        };
        let event = C2bEvent::StatusAnswer {
            answer,
            timings: context.timings,
        };
        let settled = context
            .settler()
            .settle(Settle::new(trans_id.as_str(), &event).recording(Some(record)))
            .await?;
        if matches!(settled, C2bSettled::Unknown) {
            metrics::count(
                "CallbackAnomalies",
                1,
                &[("Reason", "unknown_receipt"), ("Kind", "c2b_status_result")],
            );
        }
        Ok(engine::verdict_of(&event, &settled).0)
    }
}
