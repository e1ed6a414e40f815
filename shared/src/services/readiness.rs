//! The readiness check behind `GET /v1/ready`: can this deployment take a payment right now?
//!
//! Each dependency is checked at once, each under its own time limit, and reported with its
//! status and latency; nothing it reports carries a secret value, a key, a token or an ARN.
//! - `secrets`: the function's secrets load and parse (the warm function's cache counts, as for payments);
//! - `table`: one GetItem of a key that never exists;
//! - `callback_queue`, `payout_queue`: GetQueueAttributes (no message is read);
//! - `daraja`: an OAuth token for the app's credentials (the cached token counts).
//!
//! Notices do not make a deployment not ready but need a person: `c2b_verification` lists the
//! registered C2B shortcodes whose confirmations cannot be verified (Transaction Status needs a
//! C2B initiator in the secret): their confirmations stay `unverified` and move no money.
//!
//! It changes nothing, so it is safe to call as often as the route's throttle allows.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::daraja::Daraja;
use crate::queue::Queue;
use crate::secrets::SecretCache;
use crate::store::Table;

/// The key the table check reads: no item ever has it.
pub const PROBE_KEY: &str = "READY#probe";

/// Each check's time limit in the deployed function (the checks run at once).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Readiness {
    pub secrets: Arc<SecretCache>,
    pub table: Arc<dyn Table>,
    /// Named queues (`callback_queue`, `payout_queue`).
    pub queues: Vec<(&'static str, Arc<dyn Queue>)>,
    pub daraja: Arc<dyn Daraja>,
    /// Each check's time limit.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub latency_ms: f64,
    /// What failed, in words that carry no secret (never an error's raw text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
    /// Messages waiting, for a queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_messages: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub name: &'static str,
    pub detail: &'static str,
    /// The shortcodes concerned.
    pub shortcodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadinessReport {
    /// `ready` when every check passed, else `not_ready`.
    pub status: &'static str,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|c| c.status == CheckStatus::Ok)
    }
}

impl Readiness {
    pub async fn check(&self) -> ReadinessReport {
        let secrets = self.timed("secrets", async {
            self.secrets
                .get()
                .await
                .map(|_| None)
                .map_err(|_| "the app secret could not be loaded or parsed")
        });
        let table = self.timed("table", async {
            self.table
                .get(PROBE_KEY)
                .await
                .map(|_| None)
                .map_err(|_| "the table did not answer a GetItem")
        });
        let daraja = self.timed("daraja", async {
            let secrets = self
                .secrets
                .get()
                .await
                .map_err(|_| "no credentials: the app secret could not be loaded")?;
            let credentials = secrets
                .api_credentials()
                .map_err(|_| "no credentials: the daraja-app secret is not loaded")?;
            self.daraja
                .check_access(&credentials)
                .await
                .map(|_| None)
                .map_err(|_| "no Daraja access token for the app's credentials")
        });
        let queues = futures::future::join_all(self.queues.iter().map(|(name, queue)| {
            self.timed(name, async move {
                queue
                    .depth()
                    .await
                    .map(Some)
                    .map_err(|_| "the queue did not answer GetQueueAttributes")
            })
        }));
        let notices = self.c2b_notices();
        let (secrets, table, daraja, queues, notices) = tokio::join!(secrets, table, daraja, queues, notices);
        let mut checks = vec![secrets, table];
        checks.extend(queues);
        checks.push(daraja);
        let mut report = ReadinessReport {
            status: "ready",
            checks,
            notices,
        };
        if !report.is_ready() {
            report.status = "not_ready";
            for failed in report.checks.iter().filter(|c| c.status == CheckStatus::Failed) {
                tracing::warn!(check = failed.name, detail = failed.detail, "readiness check failed");
            }
        }
        report
    }

    /// Registered shortcodes whose confirmations cannot be verified (best effort, bounded).
    async fn c2b_notices(&self) -> Vec<Notice> {
        let read = async {
            let secrets = self.secrets.get().await.ok()?;
            let configs = crate::repo::c2b::list_configs(self.table.as_ref(), 200).await.ok()?;
            let shortcodes: Vec<String> = configs
                .iter()
                .filter(|c| {
                    crate::services::c2b::registration::verification_available(c.verification.method, &secrets).is_err()
                })
                .map(|c| c.shortcode.to_string())
                .collect();
            Some(shortcodes)
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Some(shortcodes)) if !shortcodes.is_empty() => vec![Notice {
                name: "c2b_verification",
                detail: "no C2B initiator is configured: confirmations of these shortcodes stay unverified and move no money",
                shortcodes,
            }],
            _ => Vec::new(),
        }
    }

    async fn timed<F>(&self, name: &'static str, check: F) -> Check
    where
        F: Future<Output = Result<Option<u64>, &'static str>>,
    {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, check).await;
        let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let (status, detail, approximate_messages) = match outcome {
            Ok(Ok(depth)) => (CheckStatus::Ok, None, depth),
            Ok(Err(detail)) => (CheckStatus::Failed, Some(detail), None),
            Err(_) => (CheckStatus::Failed, Some("no answer within the time limit"), None),
        };
        Check {
            name,
            status,
            latency_ms,
            detail,
            approximate_messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::memory::{MemoryQueue, MemoryQueueOptions};
    use crate::secrets::{SecretSource, SecretsError, StaticSecret};
    use crate::store::memory::MemoryTable;

    struct Broken;

    #[async_trait::async_trait]
    impl SecretSource for Broken {
        async fn fetch(&self) -> Result<String, SecretsError> {
            Err(SecretsError::Unavailable(
                "arn:aws:secretsmanager:...:secret:hidden".into(),
            ))
        }
    }

    struct NoDaraja;

    #[async_trait::async_trait]
    impl Daraja for NoDaraja {
        async fn stk_push(
            &self,
            _: &crate::daraja::StkPushRequest<'_>,
        ) -> Result<crate::daraja::StkPushAccepted, crate::daraja::DarajaError> {
            unreachable!()
        }
        async fn stk_query(
            &self,
            _: &crate::daraja::StkQueryRequest<'_>,
        ) -> Result<crate::daraja::StkQueryAnswer, crate::daraja::DarajaError> {
            unreachable!()
        }
        async fn b2c_payment(
            &self,
            _: &crate::daraja::B2cPaymentRequest<'_>,
        ) -> Result<crate::daraja::B2cAccepted, crate::daraja::DarajaError> {
            unreachable!()
        }
        async fn transaction_status(
            &self,
            _: &crate::daraja::TransactionStatusRequest<'_>,
        ) -> Result<crate::daraja::Acknowledgement, crate::daraja::DarajaError> {
            unreachable!()
        }
        async fn register_c2b_urls(
            &self,
            _: &crate::daraja::C2bRegisterRequest<'_>,
        ) -> Result<crate::daraja::C2bRegistered, crate::daraja::DarajaError> {
            unreachable!()
        }
    }

    fn readiness(secrets: Arc<dyn SecretSource>) -> Readiness {
        let queue = Arc::new(MemoryQueue::new(MemoryQueueOptions {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
        }));
        Readiness {
            secrets: Arc::new(SecretCache::new(secrets, Duration::from_secs(60))),
            table: Arc::new(MemoryTable::new()),
            queues: vec![("callback_queue", queue)],
            daraja: Arc::new(NoDaraja),
            timeout: Duration::from_secs(2),
        }
    }

    #[tokio::test]
    async fn every_check_passes_with_working_dependencies() {
        let json = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": "0123456789abcdef0123456789abcdef",
        });
        let report = readiness(Arc::new(StaticSecret(json.to_string()))).check().await;
        assert!(report.is_ready(), "{report:?}");
        let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["secrets", "table", "callback_queue", "daraja"]);
        assert_eq!(report.checks[2].approximate_messages, Some(0));
    }

    #[tokio::test]
    async fn a_failure_is_named_without_the_error_text() {
        let report = readiness(Arc::new(Broken)).check().await;
        assert_eq!(report.status, "not_ready");
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("arn:"), "{text}");
        let failed: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, ["secrets", "daraja"]);
    }
}
