//! The payout sweep (runs in the timeout sweeper next to the payment sweep): finds open payouts
//! whose next check is due through the sparse open index, so its cost follows the number of open
//! payouts, not the table.
//!
//! - `pending` past its requeue time (its job was lost, Daraja was down for longer than the
//!   queue's retries, or a submission's lease ran out after a lost answer or a crash): the job is
//!   enqueued again. Safe: the worker submits only under the payout's submission lease, skips
//!   what is no longer pending, and Daraja refuses a second submission as a duplicate.
//! - `sent` with no result past its wait: becomes `unknown` (money may have moved).
//! - `unknown`: Transaction Status is asked with the best identifier we have: the receipt if a
//!   result brought one, else the ConversationID Daraja gave on acceptance (`AG_...`), else our
//!   OriginatorConversationID (the payout id). Safaricom's Transaction Status page says a query
//!   needs "either an M-Pesa Receipt number or an Originator Conversation ID", and its published
//!   example of `OriginalConversationID` is a ConversationID (`AG_20190826_0000777ab7d848b9e721`),
//!   so the one Daraja assigned is sent when we have it. The answer arrives at
//!   `/callbacks/b2c/status/{token}` and is applied by the callback processor.
//!   The sweeper never re-sends a payout and never fails one by itself; an `unknown` payout past
//!   its deadline is raised to operators on every sweep (`PayoutOperatorAlarms{Reason=unresolved_payout}`).
//! - Each check first *claims* the payout with a conditional write that moves its next check
//!   forward (and counts the query), so overlapping sweeps never act on the same payout twice.
//! - Queries are paced (a global rate), run with bounded concurrency, and the sweep stops asking
//!   on Spike Arrest or when Daraja keeps failing; one payout's failure never stops the others.

use std::sync::Arc;

use serde::Serialize;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::transaction_status::IDENTIFIER_TYPE_SHORTCODE;
use crate::daraja::{Daraja, TransactionStatusRequest};
use crate::domain::payout::{Payout, PayoutEvent};
use crate::domain::PayoutStatus;
use crate::engine::sweep::{self, AfterFailure, Pacing, Sweep, SweepControl};
use crate::metrics;
use crate::queue::Queue;
use crate::repo::payouts::PayoutRepo;
use crate::secrets::SecretCache;
use crate::services::payouts::credential::SecurityCredentials;
use crate::services::payouts::enqueue;
use crate::services::payouts::flow::{PayoutSettled, PayoutSettler};
use crate::store::StoreError;

#[derive(Debug, Clone, Copy)]
pub struct PayoutReconcileConfig {
    /// Due payouts read per index shard per sweep.
    pub batch_per_shard: usize,
    /// Payouts checked at once, Transaction Status queries per second at most, the consecutive
    /// Daraja failures after which the sweep stops asking, and the time after which no check
    /// starts.
    pub pacing: Pacing,
    /// How long a payout whose check could not finish is left alone.
    pub lease: chrono::Duration,
}

impl Default for PayoutReconcileConfig {
    fn default() -> Self {
        PayoutReconcileConfig {
            batch_per_shard: 100,
            pacing: Pacing::default(),
            lease: chrono::Duration::seconds(60),
        }
    }
}

/// What one payout sweep did (logged, returned by the Lambda, asserted by tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PayoutSweepReport {
    pub due: usize,
    /// `pending` payouts whose job was enqueued again.
    pub requeued: usize,
    /// `sent` payouts with no result that became `unknown`.
    pub marked_unknown: usize,
    /// Transaction Status queries Daraja acknowledged.
    pub queried: usize,
    pub skipped: usize,
    pub errors: usize,
    pub stopped_early: bool,
}

pub struct PayoutReconciler {
    pub repo: PayoutRepo,
    pub settler: PayoutSettler,
    /// A client without retries of its own: the sweep paces and backs off itself.
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub credentials: Arc<SecurityCredentials>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub config: PayoutReconcileConfig,
    /// Public base URL of the API; Transaction Status result URLs are built on it.
    pub public_base_url: String,
}

#[derive(Default)]
pub struct Checked {
    requeued: bool,
    marked_unknown: bool,
    queried: bool,
    skipped: bool,
    failed: bool,
}

#[async_trait::async_trait]
impl Sweep for PayoutReconciler {
    type Item = Payout;
    type Checked = Checked;

    const ITEM: &'static str = "payout";

    fn pacing(&self) -> Pacing {
        self.config.pacing
    }

    async fn due(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Payout>, StoreError> {
        self.repo.due_for_check(now, self.config.batch_per_shard).await
    }

    async fn check(&self, payout: Payout, control: &SweepControl) -> Result<Checked, StoreError> {
        self.check_one(payout, control).await
    }
}

impl PayoutReconciler {
    pub async fn sweep(&self) -> PayoutSweepReport {
        let swept = sweep::run(self, self.clock.now()).await;
        let mut report = PayoutSweepReport {
            due: swept.due,
            errors: usize::from(swept.read_failed),
            ..PayoutSweepReport::default()
        };
        // Nothing due, or what is due could not be read (one error): nothing to count or log.
        if swept.due == 0 {
            return report;
        }
        for outcome in swept.outcomes {
            if let Some(checked) = outcome.checked_or_count(&mut report.skipped, &mut report.errors) {
                report.requeued += usize::from(checked.requeued);
                report.marked_unknown += usize::from(checked.marked_unknown);
                report.queried += usize::from(checked.queried);
                report.skipped += usize::from(checked.skipped);
                report.errors += usize::from(checked.failed);
            }
        }
        report.stopped_early = swept.stopped_early;
        metrics::count(
            "PayoutReconciliations",
            report.requeued as u64,
            &[("Action", "requeued")],
        );
        metrics::count(
            "PayoutReconciliations",
            report.marked_unknown as u64,
            &[("Action", "marked_unknown")],
        );
        metrics::count(
            "PayoutReconciliations",
            report.queried as u64,
            &[("Action", "status_query")],
        );
        tracing::info!(?report, "payout sweep finished");
        report
    }

    async fn check_one(&self, payout: Payout, control: &SweepControl) -> Result<Checked, StoreError> {
        let now = self.clock.now();
        let mut checked = Checked::default();
        let payout = match payout.status {
            PayoutStatus::Pending => {
                if payout.submission_lease.as_ref().is_some_and(|l| l.until > now) {
                    // A job is submitting it (its check moved to the lease's end when it took it).
                    return Ok(Checked {
                        skipped: true,
                        ..Checked::default()
                    });
                }
                return self.requeue(payout).await;
            }
            PayoutStatus::Sent => match self
                .settler
                .apply(&payout.id.clone(), &PayoutEvent::NoResult, Some(payout))
                .await?
            {
                PayoutSettled::Applied { after, .. } if after.status == PayoutStatus::Unknown => {
                    tracing::info!(payout_id = %after.id, "no result for a sent payout: now unknown, asking Transaction Status");
                    checked.marked_unknown = true;
                    *after
                }
                _ => {
                    return Ok(Checked {
                        skipped: true,
                        ..Checked::default()
                    })
                }
            },
            PayoutStatus::Unknown => {
                if payout.unresolved_at(now).is_some() {
                    // Past its deadline with no settling answer: money may have moved; a person
                    // must look (the statement, or Safaricom). Raised on every sweep until settled.
                    metrics::count("PayoutOperatorAlarms", 1, &[("Reason", "unresolved_payout")]);
                    tracing::error!(payout_id = %payout.id, not_found_answers = payout.not_found_answers.len(), "payout still unknown past its deadline: operator action needed");
                }
                payout
            }
            _ => {
                return Ok(Checked {
                    skipped: true,
                    ..Checked::default()
                })
            }
        };
        // Claim: count the query and move the next check one interval on, before asking.
        let claimed = match self.repo.save(&payout.status_query_sent(now)).await {
            Ok(claimed) => claimed,
            Err(StoreError::ConditionFailed { .. }) => {
                checked.skipped = !checked.marked_unknown;
                return Ok(checked);
            }
            Err(e) => return Err(e),
        };
        checked.queried = self.ask(&claimed, control).await;
        Ok(checked)
    }

    async fn requeue(&self, payout: Payout) -> Result<Checked, StoreError> {
        let now = self.clock.now();
        let claimed = match self
            .repo
            .save(&payout.check_again_at(now + payout.timings.requeue()))
            .await
        {
            Ok(claimed) => claimed,
            Err(StoreError::ConditionFailed { .. }) => {
                return Ok(Checked {
                    skipped: true,
                    ..Checked::default()
                })
            }
            Err(e) => return Err(e),
        };
        match enqueue(self.queue.as_ref(), &claimed.id).await {
            Ok(_) => {
                tracing::info!(payout_id = %claimed.id, attempts = claimed.submit_attempts, "pending payout enqueued again");
                Ok(Checked {
                    requeued: true,
                    ..Checked::default()
                })
            }
            Err(error) => {
                tracing::warn!(%error, payout_id = %claimed.id, "could not enqueue a pending payout; next sweep tries again");
                let sooner = claimed.check_again_at(now + self.config.lease);
                let _ = self.repo.save(&sooner).await;
                Ok(Checked {
                    failed: true,
                    ..Checked::default()
                })
            }
        }
    }

    /// Asks Transaction Status about the payout; true when Daraja acknowledged the query.
    /// (The receipt goes in `TransactionID` when a result brought one.)
    async fn ask(&self, payout: &Payout, control: &SweepControl) -> bool {
        if control.stopped() {
            return false;
        }
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "secrets unavailable to the payout sweep");
                return false;
            }
        };
        let (Some(initiator), Some(password)) = (&secrets.b2c_initiator_name, &secrets.b2c_initiator_password) else {
            metrics::count("PayoutOperatorAlarms", 1, &[("Reason", "b2c_not_configured")]);
            tracing::error!("Transaction Status cannot be asked: the secret has no B2C initiator");
            return false;
        };
        let credential = match self.credentials.for_password(password) {
            Ok(c) => c,
            Err(error) => {
                metrics::count("PayoutOperatorAlarms", 1, &[("Reason", "b2c_certificate_invalid")]);
                tracing::error!(%error, "Transaction Status cannot be asked: SecurityCredential failed");
                return false;
            }
        };
        if !control.take_turn().await {
            return false;
        }
        let tokens = CallbackTokens::from_secrets(&secrets);
        let base = self.public_base_url.trim_end_matches('/');
        let id = payout.id.as_str();
        let result_url = format!(
            "{base}/callbacks/b2c/status/{}",
            tokens.token_for(TokenPurpose::TransactionStatusResult, id)
        );
        let timeout_url = format!(
            "{base}/callbacks/b2c/status-timeout/{}",
            tokens.token_for(TokenPurpose::TransactionStatusTimeout, id)
        );
        let api = match secrets.api_credentials() {
            Ok(api) => api,
            Err(error) => {
                tracing::error!(%error, "Transaction Status cannot be asked");
                return false;
            }
        };
        let request = TransactionStatusRequest {
            credentials: &api,
            initiator,
            security_credential: credential.expose(),
            party_a: &payout.shortcode,
            identifier_type: IDENTIFIER_TYPE_SHORTCODE,
            transaction_id: payout.mpesa_receipt.as_deref(),
            original_conversation_id: Some(status_query_id(payout)),
            result_url: &result_url,
            queue_timeout_url: &timeout_url,
            remarks: "Payout status check",
            occasion: None,
        };
        match self.daraja.transaction_status(&request).await {
            Ok(_) => {
                control.answered();
                metrics::count("PayoutStatusQueries", 1, &[("Answer", "acknowledged")]);
                true
            }
            Err(error) => {
                metrics::count("PayoutStatusQueries", 1, &[("Answer", "error")]);
                match control.failed(&error) {
                    AfterFailure::StopAsking { consecutive_failures } => {
                        tracing::warn!(%error, consecutive_failures, "Daraja is refusing or failing; the payout sweep stops asking");
                    }
                    AfterFailure::GoOn { .. } => {
                        tracing::warn!(%error, payout_id = %payout.id, "Transaction Status failed; will ask again");
                    }
                }
                false
            }
        }
    }
}

/// The `OriginalConversationID` of a payout's Transaction Status query: the ConversationID Daraja
/// gave on acceptance when we have it, else our OriginatorConversationID (see the module docs).
pub fn status_query_id(payout: &Payout) -> &str {
    payout
        .conversation_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| payout.originator_conversation_id())
}
