//! The payout queue's consumer (the `b2c-payout` function): submits `pending` payouts to Daraja.
//!
//! It is idempotent: it loads the payout and acts on its state. Only a `pending` payout is
//! submitted; `sent`, `unknown` and settled ones are acknowledged and skipped. Every submission of
//! one payout carries the same `OriginatorConversationID` (the payout id), so a retry after a
//! lost answer or a crash is refused by Daraja as a duplicate instead of paying twice, and the
//! refusal tells us the first one was accepted:
//!
//! | Daraja's answer | payout | message |
//! |---|---|---|
//! | accepted | `sent` (+ ConversationID) | done |
//! | `500.002.1001` duplicate | `sent` (an earlier submission was accepted) | done |
//! | definitive refusal (`400.002.02`, ...) | `failed` with Daraja's code | done |
//! | rate limited | stays `pending` | back to the queue, with the rest of the batch |
//! | unavailable, outcome unknown, auth/config problem | stays `pending` | back to the queue |
//!
//! The attempt is counted (conditionally) before Daraja is called, so a crash between Daraja's
//! acceptance and our write leaves `submit_attempts > 0` on a `pending` payout, and the
//! redelivered message resubmits it and gets the duplicate refusal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use super::b2c_credential::SecurityCredentials;
use super::payout_settlement::PayoutSettler;
use super::payouts::PayoutJob;
use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::{B2cCommand, B2cPaymentRequest, Daraja, DarajaError};
use crate::domain::payout::{Payout, PayoutEvent};
use crate::domain::{DarajaResult, PayoutId, PayoutKind, PayoutStatus, ResultCode};
use crate::metrics;
use crate::queue::consumer::{BatchHandler, Delivery};
use crate::repo::payouts::PayoutRepo;
use crate::secrets::SecretCache;
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

/// Daraja's answer as a payout event; `Err` when the payout must stay `pending` and be retried.
fn submission_event(
    result: Result<crate::daraja::B2cAccepted, DarajaError>,
) -> Result<PayoutEvent, (DarajaError, bool)> {
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
        Err(error @ DarajaError::RateLimited { .. }) => Err((error, true)),
        Err(error) => Err((error, false)),
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
            // Count the attempt before calling Daraja (conditional: one runner per version).
            let Some(attempt) = payout.with_submit_attempt() else {
                return Ok(());
            };
            let attempt = match self.repo.save(&attempt).await {
                Ok(saved) => saved,
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            return self.submit(attempt, stop).await;
        }
        Err(Retry("the payout kept changing under us".into()))
    }

    async fn submit(&self, payout: Payout, stop: &AtomicBool) -> Result<(), Retry> {
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
        let result_url = format!(
            "{base}/callbacks/b2c/result/{}",
            tokens.token_for(TokenPurpose::B2cResult, payout.id.as_str())
        );
        let timeout_url = format!(
            "{base}/callbacks/b2c/timeout/{}",
            tokens.token_for(TokenPurpose::B2cTimeout, payout.id.as_str())
        );
        let api = secrets.api_credentials().map_err(|e| Retry(e.to_string()))?;
        let request = B2cPaymentRequest {
            credentials: &api,
            initiator_name: initiator,
            security_credential: credential.expose(),
            command: command_for(payout.kind),
            amount: payout.amount,
            party_a: &payout.shortcode,
            party_b: &payout.phone,
            remarks: payout.remarks.as_str(),
            occasion: payout.occasion.as_ref().map(|o| o.as_str()),
            originator_conversation_id: payout.originator_conversation_id(),
            result_url: &result_url,
            queue_timeout_url: &timeout_url,
        };
        let started = std::time::Instant::now();
        let result = self.daraja.b2c_payment(&request).await;
        metrics::timing("DarajaB2cLatency", started.elapsed());
        let event = match submission_event(result) {
            Ok(event) => event,
            Err((error, rate_limited)) => {
                metrics::count("PayoutSubmissions", 1, &[("Outcome", "retry"), ("Kind", error.kind())]);
                if rate_limited {
                    stop.store(true, Ordering::Relaxed);
                }
                if matches!(error, DarajaError::Auth { .. }) {
                    alarm("daraja_auth", &error.to_string());
                }
                tracing::warn!(%error, payout_id = %payout.id, attempts = payout.submit_attempts, "payout submission not settled; it stays pending and comes back");
                return Err(Retry(error.to_string()));
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
        // If this write fails the message comes back: the resubmission is refused as a
        // duplicate, which moves the payout to `sent` then.
        self.settler
            .apply(&payout.id, &event, Some(payout.clone()), None)
            .await?;
        Ok(())
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
        assert!(matches!(submission_event(Err(limited)), Err((_, true))));
        for retryable in [
            DarajaError::OutcomeUnknown {
                detail: "timeout".into(),
            },
            DarajaError::Unavailable {
                detail: "refused".into(),
            },
            DarajaError::Auth {
                code: "400.008.01".into(),
                message: "Invalid Authentication passed".into(),
            },
            DarajaError::Protocol { detail: "?".into() },
        ] {
            assert!(matches!(submission_event(Err(retryable)), Err((_, false))));
        }
        assert_eq!(command_for(PayoutKind::SalaryPayment).as_str(), "SalaryPayment");
    }
}
