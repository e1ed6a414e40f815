//! Registering expected payments (invoices) for C2B.
//!
//! Creation claims the idempotency key, writes the expected payment and claims its account
//! number on the shortcode in one transaction: an account number has one live expected payment
//! per shortcode (an expired one is replaced). The first response is stored for replays.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::StatusCode;

use crate::api::c2b::ExpectedPaymentView;
use crate::api::problem::{ApiError, FieldError};
use crate::api::ApiResponse;
use crate::clock::Clock;
use crate::domain::c2b::{AccountNumber, Shortcode};
use crate::domain::expected_payment::{ExpectedAmount, ExpectedPayment};
use crate::domain::{ClientId, ExpectedPaymentId, Metadata};
use crate::idempotency::{self, IdempotencyKey, Operation};
use crate::metrics;
use crate::repo::c2b as repo;
use crate::services::idempotent::{self, conflict_pause, Resumed, CONFLICT_RETRIES};
use crate::services::payments::store_error;
use crate::store::{StoreError, Table};

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

fn field(name: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(name, code, message)])
}

fn canonical(request: &NewExpectedPayment) -> serde_json::Value {
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

    pub async fn create(
        &self,
        client: &ClientId,
        key: &IdempotencyKey,
        request: NewExpectedPayment,
    ) -> Result<ApiResponse, ApiError> {
        let now = self.clock.now();
        let expires_at = request.expires_at.unwrap_or(now + Self::DEFAULT_LIFETIME);
        if expires_at <= now {
            return Err(field("expires_at", "in_the_past", "expires_at must be in the future"));
        }
        if expires_at > now + Self::MAX_LIFETIME {
            return Err(field(
                "expires_at",
                "out_of_range",
                "expires_at must be within 366 days",
            ));
        }
        // Only the shortcode's owner registers what it expects; another's looks unknown.
        let config = repo::get_config(self.table.as_ref(), &request.shortcode)
            .await
            .map_err(store_error)?;
        let Some(config) = config.filter(|c| c.owner == *client) else {
            return Err(field(
                "shortcode",
                "unknown_shortcode",
                "no C2B registration of yours for this shortcode",
            ));
        };
        if config
            .rules
            .compile()
            .is_ok_and(|rules| !rules.pattern_matches(&request.account_number))
        {
            return Err(field(
                "account_number",
                "pattern_mismatch",
                "account_number does not match the shortcode's account_pattern",
            ));
        }

        let hash = idempotency::request_hash(&canonical(&request));
        let record_key = idempotency::record_key(client, Operation::CreateExpectedPayment, key);
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
                &record_key,
                hash.clone(),
                expected.id.as_str(),
                now,
                self.idempotency_lock,
            )];
            writes.extend(repo::insert_expected(&expected, replacing.as_ref(), now));
            match self.table.write(writes).await {
                Ok(()) => break,
                Err(StoreError::ConditionFailed { index: 0 }) => return self.resume(&record_key, &hash).await,
                Err(StoreError::ConditionFailed { index: 2 }) if attempt < 3 => {
                    let claim = repo::get_claim(self.table.as_ref(), &expected.shortcode, &expected.account_number)
                        .await
                        .map_err(store_error)?;
                    match claim {
                        Some(live) if !live.expected.is_expired(now) => {
                            return Err(ApiError::Conflict {
                                code: "account_number_in_use",
                                detail: format!(
                                    "account number {} already has an open expected payment ({}) on shortcode {} until {}",
                                    expected.account_number,
                                    live.expected.id,
                                    expected.shortcode,
                                    live.expected.expires_at.to_rfc3339()
                                ),
                            });
                        }
                        // Expired: replace it. Gone meanwhile: claim afresh.
                        other => replacing = other,
                    }
                }
                Err(StoreError::ConditionFailed { .. }) => {
                    return Err(ApiError::Conflict {
                        code: "account_number_in_use",
                        detail: "the account number is being claimed by another request; retry".into(),
                    })
                }
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
                Err(error) => return Err(store_error(error)),
            }
        }
        metrics::count("ExpectedPaymentsCreated", 1, &[("Rule", expected.amount.rule())]);
        let stored = ExpectedPayment { version: 1, ..expected };
        let response = ApiResponse::json(StatusCode::CREATED, &ExpectedPaymentView::new(&stored, now));
        let record = idempotent::claimed(hash, stored.id.as_str(), now, self.idempotency_lock);
        // Created; if storing the answer fails, a retry with the same key finishes the record.
        idempotent::store_first_response(self.table.as_ref(), &record_key, &record, &response).await;
        Ok(response)
    }

    /// A key that already has a record: replay, refuse, or finish an abandoned request.
    async fn resume(&self, record_key: &str, hash: &str) -> Result<ApiResponse, ApiError> {
        let now = self.clock.now();
        match idempotent::resume(self.table.as_ref(), record_key, hash, now).await? {
            Resumed::Answer(response) => Ok(response),
            Resumed::Abandoned(record) => {
                // The resource was written with the claim; answer from it and store the answer.
                let id = ExpectedPaymentId::parse(&record.resource_id).map_err(|_| ApiError::Internal)?;
                let stored = repo::get_expected(self.table.as_ref(), &id)
                    .await
                    .map_err(store_error)?
                    .ok_or(ApiError::Internal)?;
                let response = ApiResponse::json(StatusCode::CREATED, &ExpectedPaymentView::new(&stored, now));
                idempotent::finish_abandoned(self.table.as_ref(), record_key, &record, response).await
            }
        }
    }
}
