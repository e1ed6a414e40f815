//! The payout queue's consumer (the `b2c-payout` function): submits `pending` payouts to Daraja.
//!
//! It is idempotent: it loads the payout and acts on its state. Only a `pending` payout is
//! submitted, and only by the job that holds its submission lease (a conditional write on the
//! payout: status `pending`, no live lease). Two jobs for one payout (an SQS redelivery, a
//! sweeper re-queue, an approval, two workers at once) can therefore never both call B2C; the
//! one that cannot take the lease leaves. Every submission carries the same
//! `OriginatorConversationID` (the payout id), so a resubmission after a lost answer or a crash
//! (once the lease has run out) is refused by Daraja as a duplicate instead of paying twice, and
//! the refusal tells us the first one was accepted. The client never resends a B2C request by
//! itself after an answer that may follow delivery (HTTP 503/408, a timeout, a reset).
//!
//! | Daraja's answer | payout | lease | message |
//! |---|---|---|---|
//! | accepted | `sent` (+ ConversationID) | cleared | done |
//! | `500.002.1001` duplicate | `sent` (an earlier submission was accepted) | cleared | done |
//! | definitive refusal (`400.002.02`, ...) | `failed`, or `unknown` if an earlier attempt may have paid | cleared | done |
//! | rate limited, not connected, auth/config problem (nothing reached Daraja) | stays `pending` | given back | back to the queue |
//! | outcome unknown (503/408, timeout, reset, unreadable 2xx) | stays `pending` | kept until it runs out | done: the sweeper re-queues it at the lease's end |
//!
//! The attempt is counted when the lease is taken, before Daraja is called, so a crash between
//! Daraja's acceptance and our write leaves `submit_attempts > 0` and a lease that runs out; the
//! sweeper then re-queues the payout and the resubmission gets the duplicate refusal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::{ApiCredentials, B2cCommand, B2cPaymentRequest, Daraja, DarajaError};
use crate::domain::payout::{LeaseRefused, Payout, PayoutEvent};
use crate::domain::{DarajaResult, PayoutId, PayoutKind, PayoutStatus, ResultCode};
use crate::metrics;
use crate::queue::consumer::{BatchHandler, Delivery};
use crate::repo::payouts::PayoutRepo;
use crate::secrets::SecretCache;
use crate::services::payouts::credential::SecurityCredentials;
use crate::services::payouts::flow::PayoutSettler;
use crate::services::payouts::PayoutJob;
use crate::store::StoreError;

/// Daraja's `CommandID` for a payout kind.
pub fn command_for(kind: PayoutKind) -> B2cCommand {
    match kind {
        PayoutKind::BusinessPayment => B2cCommand::BusinessPayment,
        PayoutKind::SalaryPayment => B2cCommand::SalaryPayment,
        PayoutKind::PromotionPayment => B2cCommand::PromotionPayment,
    }
}

#[derive(Debug, Clone)]
pub struct PayoutWorkerConfig {
    /// Public base URL of the API; result and timeout URLs are built on it.
    pub public_base_url: String,
    /// Payouts of one batch submitted at once.
    pub concurrency: usize,
    /// How long a job holds a payout's submission lease. Longer than one submission can take
    /// (the `b2c-payout` function's timeout), so a lease never runs out under a call in flight.
    pub submission_lease: chrono::Duration,
}

impl PayoutWorkerConfig {
    /// Five minutes: well above the function's timeout, and equal to the payout's re-queue time.
    pub const DEFAULT_SUBMISSION_LEASE: chrono::Duration = chrono::Duration::seconds(300);
}

/// This process's name in submission leases (with the queue message id), for logs and operators.
fn instance() -> &'static str {
    static INSTANCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(|| format!("worker-{}", ulid::Ulid::new()))
}

pub struct PayoutWorker {
    pub repo: PayoutRepo,
    pub settler: PayoutSettler,
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub credentials: Arc<SecurityCredentials>,
    pub clock: Arc<dyn Clock>,
    pub config: PayoutWorkerConfig,
}

/// The message must come back (the payout stays `pending`).
#[derive(Debug)]
struct Retry(String);

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Retry {
        Retry(e.to_string())
    }
}

fn alarm(reason: &'static str, detail: &str) {
    metrics::count("PayoutOperatorAlarms", 1, &[("Reason", reason)]);
    tracing::error!(reason, detail, "payouts cannot be submitted: operator action needed");
}

/// What to do with a submission Daraja did not settle.
#[derive(Debug, PartialEq, Eq)]
enum NotSettled {
    /// Nothing reached Daraja: give the lease back and retry the job (`true`: rate limited,
    /// the rest of the batch backs off too).
    Unsent { rate_limited: bool },
    /// Daraja may have taken it: keep the lease until it runs out, then the sweeper re-queues the
    /// payout and the resubmission learns the outcome (a duplicate refusal, or an acceptance).
    MayHaveArrived,
}

/// Daraja's answer as a payout event; `Err` when the payout stays `pending`.
fn submission_event(
    result: Result<crate::daraja::B2cAccepted, DarajaError>,
) -> Result<PayoutEvent, (DarajaError, NotSettled)> {
    match result {
        Ok(accepted) => Ok(PayoutEvent::DarajaAccepted {
            conversation_id: accepted.conversation_id,
        }),
        Err(error) if error.is_duplicate_originator_conversation_id() => Ok(PayoutEvent::AlreadySubmitted),
        Err(DarajaError::Rejected { code, message, .. }) => Ok(PayoutEvent::DarajaRefused {
            result: DarajaResult {
                code: ResultCode::new(code),
                description: message,
            },
        }),
        Err(DarajaError::InvalidRequest { detail }) => Ok(PayoutEvent::DarajaRefused {
            result: DarajaResult {
                code: ResultCode::new("invalid_request"),
                description: detail,
            },
        }),
        Err(error @ DarajaError::RateLimited { .. }) => Err((error, NotSettled::Unsent { rate_limited: true })),
        Err(error) if error.may_have_been_acted_on() => Err((error, NotSettled::MayHaveArrived)),
        // Not connected, or refused for our credentials: Daraja did nothing.
        Err(error) => Err((error, NotSettled::Unsent { rate_limited: false })),
    }
}

impl PayoutWorker {
    async fn process_owned(&self, delivery: Delivery, stop: &AtomicBool) -> (String, Result<(), Retry>) {
        let result = self.process(&delivery, stop).await;
        (delivery.id, result)
    }

    async fn process(&self, delivery: &Delivery, stop: &AtomicBool) -> Result<(), Retry> {
        let id = match serde_json::from_str::<PayoutJob>(&delivery.body).map(|job| PayoutId::parse(&job.payout_id)) {
            Ok(Ok(id)) => id,
            _ => {
                // Not something we enqueued: it can never succeed. Drop it, loudly.
                metrics::count("PayoutJobsMalformed", 1, &[]);
                tracing::error!(message_id = %delivery.id, "malformed message on the payout queue; dropped");
                return Ok(());
            }
        };
        let holder = format!("{}/{}", instance(), delivery.id);
        for _ in 0..5 {
            let Some(payout) = self.repo.get(&id).await? else {
                metrics::count("PayoutJobsSkipped", 1, &[("Reason", "unknown_payout")]);
                tracing::warn!(payout_id = %id, "payout job for a payout that does not exist; dropped");
                return Ok(());
            };
            if payout.status != PayoutStatus::Pending {
                metrics::count("PayoutJobsSkipped", 1, &[("Reason", payout.status.as_str())]);
                return Ok(());
            }
            if stop.load(Ordering::Relaxed) {
                return Err(Retry("Daraja is rate limiting; backing off".into()));
            }
            // Take the submission lease (conditional: one job per version, and none while
            // another job's lease is live). Only then may Daraja be called.
            let now = self.clock.now();
            let leased = match payout.take_submission_lease(&holder, now, self.config.submission_lease) {
                Ok(leased) => leased,
                Err(LeaseRefused::NotPending { status }) => {
                    metrics::count("PayoutJobsSkipped", 1, &[("Reason", status.as_str())]);
                    return Ok(());
                }
                Err(LeaseRefused::Held { holder, until }) => {
                    // Another job is submitting it (or its answer was lost): this job leaves.
                    // If that job dies, the sweeper re-queues the payout when the lease runs out.
                    metrics::count("PayoutJobsSkipped", 1, &[("Reason", "lease_held")]);
                    tracing::info!(payout_id = %id, lease_holder = %holder, lease_until = %until, "another job holds the submission lease; leaving");
                    return Ok(());
                }
            };
            let leased = match self.repo.save(&leased).await {
                Ok(saved) => saved,
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            return self.submit(leased, stop).await;
        }
        Err(Retry("the payout kept changing under us".into()))
    }

    /// Gives the lease back: this attempt provably never reached Daraja. Best effort (if the
    /// payout moved meanwhile, or the write fails, the lease simply runs out).
    async fn release_unsent(&self, payout: &Payout) {
        let released = payout.released_unsent(self.clock.now());
        if let Err(error) = self.repo.save(&released).await {
            tracing::debug!(%error, payout_id = %payout.id, "could not give the submission lease back; it runs out");
        }
    }

    /// Calls Daraja under the lease `payout` holds (as stored at `payout.version`).
    async fn submit(&self, payout: Payout, stop: &AtomicBool) -> Result<(), Retry> {
        let request = match self.prepare(&payout).await {
            Ok(prepared) => prepared,
            Err(retry) => {
                self.release_unsent(&payout).await;
                return Err(retry);
            }
        };
        let started = std::time::Instant::now();
        let result = self.daraja.b2c_payment(&request.as_request(&payout)).await;
        metrics::timing("DarajaB2cLatency", started.elapsed());
        let event = match submission_event(result) {
            Ok(event) => event,
            Err((error, not_settled)) => {
                metrics::count("PayoutSubmissions", 1, &[("Outcome", "retry"), ("Kind", error.kind())]);
                if matches!(error, DarajaError::Auth { .. }) {
                    alarm("daraja_auth", &error.to_string());
                }
                return match not_settled {
                    NotSettled::Unsent { rate_limited } => {
                        if rate_limited {
                            stop.store(true, Ordering::Relaxed);
                        }
                        tracing::warn!(%error, payout_id = %payout.id, attempts = payout.submit_attempts, "payout not submitted (nothing reached Daraja); it stays pending and comes back");
                        self.release_unsent(&payout).await;
                        Err(Retry(error.to_string()))
                    }
                    NotSettled::MayHaveArrived => {
                        tracing::warn!(%error, payout_id = %payout.id, attempts = payout.submit_attempts, "payout submission outcome unknown; the lease runs out, then the sweeper resubmits it (Daraja refuses a duplicate)");
                        Ok(())
                    }
                };
            }
        };
        let outcome = match &event {
            PayoutEvent::DarajaAccepted { .. } => "accepted",
            PayoutEvent::AlreadySubmitted => "duplicate",
            _ => "refused",
        };
        metrics::count("PayoutSubmissions", 1, &[("Outcome", outcome)]);
        if outcome == "duplicate" {
            tracing::info!(payout_id = %payout.id, attempts = payout.submit_attempts, "Daraja already has this payout (duplicate OriginatorConversationID): not paid twice");
        }
        // If this write fails the lease runs out and the sweeper re-queues the payout: the
        // resubmission is refused as a duplicate, which moves the payout to `sent` then.
        self.settler.apply(&payout.id, &event, Some(payout.clone())).await?;
        Ok(())
    }

    /// Everything the B2C request needs besides the payout; `Err` before anything is sent.
    async fn prepare(&self, payout: &Payout) -> Result<Prepared, Retry> {
        let secrets = self.secrets.get().await.map_err(|e| Retry(e.to_string()))?;
        let (Some(initiator), Some(password)) = (&secrets.b2c_initiator_name, &secrets.b2c_initiator_password) else {
            alarm(
                "b2c_not_configured",
                "the secret has no b2c_initiator_name / b2c_initiator_password",
            );
            return Err(Retry("B2C initiator not configured".into()));
        };
        let credential = self.credentials.for_password(password).map_err(|error| {
            alarm("b2c_certificate_invalid", &error.to_string());
            Retry(error.to_string())
        })?;
        let tokens = CallbackTokens::from_secrets(&secrets);
        let base = self.config.public_base_url.trim_end_matches('/');
        Ok(Prepared {
            result_url: format!(
                "{base}/callbacks/b2c/result/{}",
                tokens.token_for(TokenPurpose::B2cResult, payout.id.as_str())
            ),
            timeout_url: format!(
                "{base}/callbacks/b2c/timeout/{}",
                tokens.token_for(TokenPurpose::B2cTimeout, payout.id.as_str())
            ),
            api: secrets.api_credentials().map_err(|e| Retry(e.to_string()))?,
            initiator: initiator.clone(),
            credential: credential.expose().to_owned(),
        })
    }
}

/// The parts of a B2C request that come from secrets and configuration.
struct Prepared {
    result_url: String,
    timeout_url: String,
    api: ApiCredentials,
    initiator: String,
    credential: String,
}

impl Prepared {
    fn as_request<'a>(&'a self, payout: &'a Payout) -> B2cPaymentRequest<'a> {
        B2cPaymentRequest {
            credentials: &self.api,
            initiator_name: &self.initiator,
            security_credential: &self.credential,
            command: command_for(payout.kind),
            amount: payout.amount,
            party_a: &payout.shortcode,
            party_b: &payout.phone,
            remarks: payout.remarks.as_str(),
            occasion: payout.occasion.as_ref().map(|o| o.as_str()),
            originator_conversation_id: payout.originator_conversation_id(),
            result_url: &self.result_url,
            queue_timeout_url: &self.timeout_url,
        }
    }
}

#[async_trait]
impl BatchHandler for PayoutWorker {
    async fn handle(&self, batch: Vec<Delivery>) -> Vec<String> {
        let stop = AtomicBool::new(false);
        let results: Vec<(String, Result<(), Retry>)> = futures::stream::iter(batch)
            .map(|delivery| self.process_owned(delivery, &stop))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        results
            .into_iter()
            .filter_map(|(id, result)| match result {
                Ok(()) => None,
                Err(Retry(why)) => {
                    tracing::debug!(message_id = %id, why, "payout job will be retried");
                    Some(id)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: &str, message: &str) -> DarajaError {
        DarajaError::Rejected {
            http_status: 500,
            code: code.into(),
            message: message.into(),
        }
    }

    #[test]
    fn submission_outcomes() {
        assert!(matches!(
            submission_event(Err(rejected("500.002.1001", "Duplicate OriginatorConversationID"))),
            Ok(PayoutEvent::AlreadySubmitted)
        ));
        assert!(matches!(
            submission_event(Err(rejected("400.002.02", "Bad Request - Invalid PartyB"))),
            Ok(PayoutEvent::DarajaRefused { .. })
        ));
        let limited = DarajaError::RateLimited {
            code: "500.003.02".into(),
            message: "Spike Arrest Violation".into(),
        };
        assert!(matches!(
            submission_event(Err(limited)),
            Err((_, NotSettled::Unsent { rate_limited: true }))
        ));
        for unsent in [
            DarajaError::Unavailable {
                detail: "refused".into(),
            },
            DarajaError::Auth {
                code: "400.008.01".into(),
                message: "Invalid Authentication passed".into(),
            },
        ] {
            assert!(matches!(
                submission_event(Err(unsent)),
                Err((_, NotSettled::Unsent { rate_limited: false }))
            ));
        }
        for ambiguous in [
            DarajaError::OutcomeUnknown {
                detail: "HTTP 503".into(),
            },
            DarajaError::Protocol { detail: "?".into() },
        ] {
            assert!(matches!(
                submission_event(Err(ambiguous)),
                Err((_, NotSettled::MayHaveArrived))
            ));
        }
        assert_eq!(command_for(PayoutKind::SalaryPayment).as_str(), "SalaryPayment");
    }
}
