//! Registering expected payments (invoices) for C2B.
//!
//! Creation claims the idempotency key, writes the expected payment and claims its account
//! number on the shortcode in one transaction: an account number has one live expected payment
//! per shortcode (an expired one is replaced). The first response is stored for replays.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::c2b::{AccountNumber, Shortcode};
use crate::domain::expected_payment::{ExpectedAmount, ExpectedPayment};
use crate::domain::{ClientId, ExpectedPaymentId, Metadata};
use crate::idempotency::{self, Claimed, Render, RequestIdentity};
use crate::metrics;
use crate::repo::c2b as repo;
use crate::services::idempotent::{self, conflict_pause, CONFLICT_RETRIES};
use crate::services::store_failure;
use crate::store::{StoreError, Table};

/// Why an expected payment was not created: the error contract of
/// [`ExpectedPaymentsService::create`] and [`ExpectedPaymentsService::recover`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectedPaymentError {
    /// `expires_at` is not in the future. Not retryable as is.
    #[error("expires_at must be in the future")]
    ExpiresInThePast,
    /// `expires_at` is further than [`ExpectedPaymentsService::MAX_LIFETIME`] away. Not
    /// retryable as is.
    #[error("expires_at must be within 366 days")]
    ExpiresTooLate,
    /// The caller has no C2B registration for the shortcode (another merchant's shortcode
    /// looks the same). Not retryable until the caller registers it.
    #[error("no C2B registration of yours for this shortcode")]
    UnknownShortcode,
    /// The account number does not match the shortcode's `account_pattern`. Not retryable as is.
    #[error("account_number does not match the shortcode's account_pattern")]
    PatternMismatch,
    /// The account number has a live expected payment (`open`, until `until`) on the
    /// shortcode. Retryable once that one expires.
    #[error(
        "account number {account_number} already has an open expected payment ({open}) on shortcode {shortcode} until {}",
        .until.to_rfc3339()
    )]
    AccountNumberInUse {
        account_number: AccountNumber,
        shortcode: Shortcode,
        open: ExpectedPaymentId,
        until: DateTime<Utc>,
    },
    /// Other requests kept claiming the account number at the same moment: nothing was
    /// created. Retryable at once.
    #[error("the account number is being claimed by another request; retry")]
    AccountNumberContended,
    /// The store is unavailable: nothing was created, or a retry with the same key finds it.
    /// Retryable with the same key.
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A bug: a corrupt item, a record naming no expected payment. Not retryable as is.
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for ExpectedPaymentError {
    fn from(error: StoreError) -> ExpectedPaymentError {
        if store_failure::is_retryable(&error) {
            ExpectedPaymentError::Unavailable
        } else {
            ExpectedPaymentError::Internal
        }
    }
}

/// An expected payment as created (or recovered), and the instant it is shown as of (its
/// view depends on whether it has expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPaymentCreated {
    pub expected: ExpectedPayment,
    pub as_of: DateTime<Utc>,
}

/// What a merchant asked for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExpectedPayment {
    pub shortcode: Shortcode,
    pub account_number: AccountNumber,
    pub amount: ExpectedAmount,
    /// `None`: [`ExpectedPaymentsService::DEFAULT_LIFETIME`] from now.
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
}

pub struct ExpectedPaymentsService {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// How long an in-progress idempotency record blocks a duplicate before it is taken over.
    pub idempotency_lock: chrono::Duration,
}

/// The request as the idempotency hash sees it: parsed values, canonical forms.
pub fn canonical(request: &NewExpectedPayment) -> serde_json::Value {
    serde_json::json!({
        "shortcode": request.shortcode,
        "account_number": request.account_number,
        "amount": request.amount,
        "expires_at": request.expires_at,
        "metadata": request.metadata,
    })
}

impl ExpectedPaymentsService {
    pub const DEFAULT_LIFETIME: chrono::Duration = chrono::Duration::days(30);
    pub const MAX_LIFETIME: chrono::Duration = chrono::Duration::days(366);

    /// Creates `request` for `client` under the idempotency `identity`, and stores `render`
    /// of it as the first response.
    pub async fn create(
        &self,
        client: &ClientId,
        identity: &RequestIdentity,
        request: NewExpectedPayment,
        render: Render<'_, ExpectedPaymentCreated>,
    ) -> Result<Claimed<ExpectedPaymentCreated>, ExpectedPaymentError> {
        let now = self.clock.now();
        let expires_at = request.expires_at.unwrap_or(now + Self::DEFAULT_LIFETIME);
        if expires_at <= now {
            return Err(ExpectedPaymentError::ExpiresInThePast);
        }
        if expires_at > now + Self::MAX_LIFETIME {
            return Err(ExpectedPaymentError::ExpiresTooLate);
        }
        // Only the shortcode's owner registers what it expects; another's looks unknown.
        let config = repo::get_config(self.table.as_ref(), &request.shortcode).await?;
        let Some(config) = config.filter(|c| c.owner == *client) else {
            return Err(ExpectedPaymentError::UnknownShortcode);
        };
        if config
            .rules
            .compile()
            .is_ok_and(|rules| !rules.pattern_matches(&request.account_number))
        {
            return Err(ExpectedPaymentError::PatternMismatch);
        }

        let record_key = &identity.record_key;
        let expected = ExpectedPayment::create(
            ExpectedPaymentId::generate(),
            client.clone(),
            request.shortcode,
            request.account_number,
            request.amount,
            expires_at,
            request.metadata,
            now,
        );
        let mut replacing = None;
        let mut conflicts = 0;
        for attempt in 0.. {
            let mut writes = vec![idempotency::claim(
                record_key,
                identity.request_hash.clone(),
                expected.id.as_str(),
                now,
                self.idempotency_lock,
            )];
            writes.extend(repo::insert_expected(&expected, replacing.as_ref(), now));
            match self.table.write(writes).await {
                Ok(()) => break,
                Err(StoreError::ConditionFailed { index: 0 }) => return Ok(Claimed::Taken),
                Err(StoreError::ConditionFailed { index: 2 }) if attempt < 3 => {
                    let claim =
                        repo::get_claim(self.table.as_ref(), &expected.shortcode, &expected.account_number).await?;
                    match claim {
                        Some(live) if !live.expected.is_expired(now) => {
                            return Err(ExpectedPaymentError::AccountNumberInUse {
                                account_number: expected.account_number.clone(),
                                shortcode: expected.shortcode.clone(),
                                open: live.expected.id.clone(),
                                until: live.expected.expires_at,
                            });
                        }
                        // Expired: replace it. Gone meanwhile: claim afresh.
                        other => replacing = other,
                    }
                }
                Err(StoreError::ConditionFailed { .. }) => return Err(ExpectedPaymentError::AccountNumberContended),
                // Cancelled by a concurrent transaction on the same key or account (a retry of
                // this request racing it): nothing was written, and the claim makes sending it
                // again safe, so pause (with jitter) and try again.
                Err(StoreError::TransactionConflict) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    metrics::count(
                        "TransactionConflictRetries",
                        1,
                        &[("Operation", "CreateExpectedPayment")],
                    );
                    tokio::time::sleep(conflict_pause(conflicts)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        metrics::count("ExpectedPaymentsCreated", 1, &[("Rule", expected.amount.rule())]);
        let created = ExpectedPaymentCreated {
            expected: ExpectedPayment { version: 1, ..expected },
            as_of: now,
        };
        let record = idempotent::claimed(
            identity.request_hash.clone(),
            created.expected.id.as_str(),
            now,
            self.idempotency_lock,
        );
        // Created; if storing the answer fails, a retry with the same key finishes the record.
        idempotent::store_first_response(self.table.as_ref(), record_key, &record, &render(&created)).await;
        Ok(Claimed::Ran(created))
    }

    /// The expected payment of a request whose first runner died mid-way (`resource_id` of its
    /// idempotency record): it was written with the claim, so the caller answers from it.
    pub async fn recover(&self, resource_id: &str) -> Result<ExpectedPaymentCreated, ExpectedPaymentError> {
        let now = self.clock.now();
        let id = ExpectedPaymentId::parse(resource_id).map_err(|_| ExpectedPaymentError::Internal)?;
        let expected = repo::get_expected(self.table.as_ref(), &id)
            .await?
            .ok_or(ExpectedPaymentError::Internal)?;
        Ok(ExpectedPaymentCreated { expected, as_of: now })
    }
}
