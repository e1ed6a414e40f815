//! Initiating, reading and listing STK Push payments.
//!
//! Initiation is write-ahead: the idempotency claim and the `pending` payment (with the phone's
//! limits; the merchant's daily caps are reserved just before, see [`super::limits`]) are
//! written in one transaction before Daraja is called; Daraja's answer then moves the payment
//! on with a conditional write that also stores the first response for replays.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::StatusCode;

use crate::api::problem::ApiError;
use crate::api::views::PaymentView;
use crate::api::ApiResponse;
use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::errors::{QUOTA_VIOLATION, SPIKE_ARREST};
use crate::daraja::{Daraja, DarajaError, StkPushRequest, StkTransactionType};
use crate::domain::{ClientId, DarajaResult, NewPayment, Payment, PaymentEvent, PaymentId, PaymentTimings, ResultCode};
use crate::engine::{Batch, CommitError, Flow, Settle, Slot};
use crate::events::repo as events;
use crate::idempotency::{self, IdempotencyKey, IdempotencyRecord, Operation};
use crate::metrics;
use crate::repo::payments::PaymentRepo;
use crate::secrets::{AppSecrets, SecretCache};
use crate::services::idempotent::{self, body_text, conflict_pause, CreationFailure, Resumed, CONFLICT_RETRIES};
use crate::services::limits::{Admission, AdmissionControl, PhoneHasher};
use crate::services::settlement::{payment_created, PaymentFlow, PaymentSettler, Settled};
use crate::store::{StoreError, Table, Write};

#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Public base URL of the API; callback URLs are built on it.
    pub public_base_url: String,
    pub transaction_type: StkTransactionType,
    /// Till number for Buy Goods; the shortcode itself for paybills.
    pub party_b: Option<String>,
    pub timings: PaymentTimings,
    /// How long an in-progress idempotency record blocks a duplicate before it is taken over.
    pub idempotency_lock: chrono::Duration,
}

pub struct PaymentsService {
    pub repo: PaymentRepo,
    pub table: Arc<dyn Table>,
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
    pub config: PaymentsConfig,
    pub admission: Option<Arc<dyn AdmissionControl>>,
}

/// The outcome of one push attempt, as a state-machine event.
fn push_event(result: Result<crate::daraja::StkPushAccepted, DarajaError>) -> PaymentEvent {
    match result {
        Ok(accepted) => PaymentEvent::DarajaAccepted {
            checkout_request_id: accepted.checkout_request_id,
            merchant_request_id: accepted.merchant_request_id,
        },
        Err(error) if error.may_have_been_acted_on() => {
            // Never guess: the prompt may be on the phone. The payment is `unknown` (open); its
            // callback, whose path token names it, settles it.
            tracing::warn!(%error, "STK push outcome unknown; payment left open as unknown");
            metrics::count("StkPushOutcomeUnknown", 1, &[]);
            PaymentEvent::PushOutcomeUnknown
        }
        Err(DarajaError::Rejected { code, message, .. }) | Err(DarajaError::Auth { code, message }) => {
            PaymentEvent::DarajaRejected {
                result: DarajaResult {
                    code: ResultCode::new(code),
                    description: message,
                },
            }
        }
        Err(DarajaError::RateLimited { code, message }) => PaymentEvent::DarajaUnavailable {
            result: Some(DarajaResult {
                code: ResultCode::new(code),
                description: message,
            }),
        },
        Err(error) => {
            tracing::warn!(%error, "Daraja unavailable; nothing sent");
            PaymentEvent::DarajaUnavailable { result: None }
        }
    }
}

/// The HTTP answer for a payment after initiation.
fn initiation_response(payment: &Payment, request_id: &str) -> ApiResponse {
    use crate::domain::{FailureReason, PaymentStatus};
    match (payment.status, payment.failure_reason) {
        (PaymentStatus::Failed, Some(FailureReason::DarajaRejected)) => {
            let (code, message) = payment
                .result
                .as_ref()
                .map(|r| (r.code.as_str().to_owned(), r.description.clone()))
                .unwrap_or_default();
            ApiError::DarajaRejected {
                resource_id: payment.id.to_string(),
                code,
                message,
            }
            .to_response(request_id)
        }
        (PaymentStatus::Failed, Some(FailureReason::DarajaUnavailable)) => {
            let resource_id = payment.id.to_string();
            let rate_limited = payment
                .result
                .as_ref()
                .is_some_and(|r| [SPIKE_ARREST, QUOTA_VIOLATION].contains(&r.code.as_str()));
            if rate_limited {
                ApiError::DarajaRateLimited { resource_id }.to_response(request_id)
            } else {
                ApiError::DarajaUnavailable { resource_id }.to_response(request_id)
            }
        }
        // `pending`, `sent`, and `unknown` (the push may have reached the phone: 202, never 5xx,
        // so the merchant waits for the outcome instead of prompting again).
        _ => ApiResponse::json(StatusCode::ACCEPTED, &PaymentView::from(payment)),
    }
}

impl PaymentsService {
    fn settler(&self) -> PaymentSettler {
        PaymentSettler::new(PaymentFlow, self.table.clone(), self.clock.clone())
    }

    pub async fn initiate(
        &self,
        client: &ClientId,
        key: &IdempotencyKey,
        request: NewPayment,
        request_id: &str,
    ) -> Result<ApiResponse, ApiError> {
        let secrets = self.secrets.get().await.map_err(|error| {
            tracing::error!(%error, "secrets unavailable");
            ApiError::Unavailable
        })?;
        let now = self.clock.now();
        let hash = idempotency::request_hash(&canonical(&request));
        let record_key = idempotency::record_key(client, Operation::CreatePayment, key);
        let app = secrets.daraja_app().map_err(|error| {
            tracing::error!(%error, "secrets incomplete");
            ApiError::Unavailable
        })?;
        let payment = Payment::create(
            PaymentId::generate(),
            client.clone(),
            app.stk_shortcode.clone(),
            request,
            now,
            self.config.timings,
        );
        // Limits: the phone's are conditional writes in the creation transaction; the merchant's
        // daily caps are reserved before it (a hot item: see `services::limits`) and given back
        // if the payment was definitely not created.
        let phones = PhoneHasher::from_secrets(&secrets).map_err(|error| {
            tracing::error!(%error, "the limits key is not loaded");
            ApiError::Unavailable
        })?;
        let control = self.admission.as_deref();
        let mut admission = match control {
            Some(control) => Some(
                control
                    .admit(&payment, &phones, now)
                    .await
                    .inspect_err(|refusal| refused(client, &payment, refusal))?,
            ),
            None => None,
        };
        let reservation = match control {
            Some(control) => control
                .reserve(&payment, now)
                .await
                .inspect_err(|refusal| refused(client, &payment, refusal))?,
            None => None,
        };
        let created = self
            .write_creation(&record_key, &hash, &payment, &mut admission, &phones, now)
            .await;
        if let (Err(failure), Some(control), Some(reservation)) = (&created, control, &reservation) {
            if failure.nothing_written() {
                control.release(reservation).await;
            }
        }
        match created {
            Ok(()) => {}
            Err(CreationFailure::KeyTaken) => return self.resume(&record_key, &hash, request_id).await,
            Err(CreationFailure::Refused(refusal)) => {
                if matches!(refusal, ApiError::LimitExceeded(_)) {
                    refused(client, &payment, &refusal);
                }
                return Err(refusal);
            }
            Err(CreationFailure::Store { error, .. }) => return Err(store_error(error)),
        }
        let mut payment = payment;
        payment.version = 1;
        let record = idempotent::claimed(hash, payment.id.as_str(), now, self.config.idempotency_lock);
        metrics::count("PaymentsInitiated", 1, &[]);

        let push = self.push(&secrets, &payment, now).await;
        let event = push_event(push);
        self.settle_initiation(payment, event, &record_key, &record, request_id)
            .await
    }

    /// The creation transaction: idempotency claim, payment and the phone's limits. A race on
    /// the phone's rolling window is decided again from fresh state; a conflict with another
    /// transaction is retried with jitter (the claim makes a retry safe: at most one request
    /// ever writes the key); both a bounded number of times.
    async fn write_creation(
        &self,
        record_key: &str,
        hash: &str,
        payment: &Payment,
        admission: &mut Option<Admission>,
        phones: &PhoneHasher,
        now: DateTime<Utc>,
    ) -> Result<(), CreationFailure> {
        let mut window_races = 0;
        let mut conflicts = 0;
        let mut created = payment.clone();
        created.version = 1;
        loop {
            let mut batch = Batch::new();
            batch
                .push(
                    Slot::IdempotencyClaim,
                    idempotency::claim(
                        record_key,
                        hash.to_owned(),
                        payment.id.as_str(),
                        now,
                        self.config.idempotency_lock,
                    ),
                )
                .push(Slot::Entity, PaymentRepo::insert(payment))
                .push(Slot::Event, events::insert(&payment_created(&created, now)));
            if let Some(admission) = admission.as_ref() {
                batch.append(
                    admission
                        .writes
                        .iter()
                        .cloned()
                        .enumerate()
                        .map(|(i, w)| (Slot::Limit(i), w)),
                );
            }
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => return Ok(()),
                Err(CommitError::Refused {
                    slot: Slot::IdempotencyClaim,
                }) => return Err(CreationFailure::KeyTaken),
                Err(CommitError::Refused {
                    slot: Slot::Limit(index),
                }) => {
                    let (Some(control), Some(current)) = (&self.admission, admission.as_ref()) else {
                        return Err(CreationFailure::Refused(ApiError::Internal));
                    };
                    if let Some(refusal) = control.explain(current, index, payment, now).await {
                        return Err(CreationFailure::Refused(refusal));
                    }
                    window_races += 1;
                    if window_races >= 10 {
                        return Err(CreationFailure::Refused(ApiError::Conflict {
                            code: "too_many_concurrent_requests",
                            detail: "too many simultaneous requests for this phone; retry".into(),
                        }));
                    }
                    let pause = rand::random::<u64>() % (2 * window_races);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    *admission = Some(
                        control
                            .admit(payment, phones, now)
                            .await
                            .map_err(CreationFailure::Refused)?,
                    );
                }
                Err(CommitError::Store(StoreError::TransactionConflict)) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    metrics::count("TransactionConflictRetries", 1, &[("Operation", "CreatePayment")]);
                    tokio::time::sleep(conflict_pause(conflicts)).await;
                }
                Err(CommitError::Refused { slot }) => {
                    // The new payment's id (or its event's) exists: a generated id collided.
                    tracing::error!(slot = slot.as_str(), "payment creation refused on a new item");
                    return Err(CreationFailure::Store {
                        error: StoreError::Invalid(format!("{} exists", slot.as_str())),
                        nothing_written: true,
                    });
                }
                Err(CommitError::Store(error)) => {
                    // A conflict that outlived its retries, or a failed condition, wrote nothing;
                    // any other failure (a timeout) may have committed.
                    let nothing_written = matches!(
                        error,
                        StoreError::TransactionConflict | StoreError::ConditionFailed { .. } | StoreError::Invalid(_)
                    );
                    return Err(CreationFailure::Store { error, nothing_written });
                }
            }
        }
    }

    async fn push(
        &self,
        secrets: &AppSecrets,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Result<crate::daraja::StkPushAccepted, DarajaError> {
        let tokens = CallbackTokens::from_secrets(secrets);
        let callback_url = format!(
            "{}/callbacks/stk/{}",
            self.config.public_base_url.trim_end_matches('/'),
            tokens.token_for(TokenPurpose::StkCallback, payment.id.as_str())
        );
        // Loaded: `initiate` checked it before writing the payment.
        let app = secrets
            .daraja_app()
            .map_err(|e| DarajaError::InvalidRequest { detail: e.to_string() })?;
        let credentials = app.credentials();
        let party_b = self.config.party_b.clone().unwrap_or_else(|| app.stk_shortcode.clone());
        let description = payment
            .description
            .as_ref()
            .map(|d| d.as_str())
            .unwrap_or(payment.reference.as_str());
        let request = StkPushRequest {
            credentials: &credentials,
            shortcode: &app.stk_shortcode,
            passkey: &app.stk_passkey,
            transaction_type: self.config.transaction_type,
            party_b: &party_b,
            amount: payment.amount,
            phone: &payment.phone,
            callback_url: &callback_url,
            account_reference: payment.reference.as_str(),
            transaction_desc: description,
            now,
        };
        let started = std::time::Instant::now();
        let result = self.daraja.stk_push(&request).await;
        metrics::timing("DarajaStkPushLatency", started.elapsed());
        // Failures are counted by the client (`DarajaErrors{Operation,Kind,Code}`).
        result
    }

    /// Applies Daraja's answer and stores the first response in the same transaction, through
    /// the settle engine (which decides again if a callback raced us).
    async fn settle_initiation(
        &self,
        payment: Payment,
        event: PaymentEvent,
        record_key: &str,
        record: &IdempotencyRecord,
        request_id: &str,
    ) -> Result<ApiResponse, ApiError> {
        let payment_id = payment.id.clone();
        // The first response is what the caller sees now: the payment as the engine leaves it.
        let store_response = |outcome: &Settled| -> Vec<(Slot, Write)> {
            let Some(shown) = outcome.entity() else {
                return Vec::new();
            };
            let response = initiation_response(shown, request_id);
            vec![(
                Slot::IdempotencyResponse,
                idempotency::complete(record_key, record, response.status.as_u16(), body_text(&response)),
            )]
        };
        let settled = self
            .settler()
            .settle(
                Settle::new(&payment_id, &event)
                    .known(payment.clone())
                    .also(&store_response),
            )
            .await;
        match settled {
            Ok(outcome) => match outcome.entity() {
                Some(shown) => Ok(initiation_response(shown, request_id)),
                None => {
                    // The idempotency record moved (taken over as abandoned): Daraja has answered
                    // but we could not record it; the callback or the sweeper settles the payment.
                    tracing::error!(payment_id = %payment_id, reason = outcome.reason(), "could not record Daraja's answer");
                    Ok(initiation_response(&payment, request_id)
                        .with_header("x-checkout-warning", "state-not-recorded"))
                }
            },
            Err(error) => {
                // Daraja has answered but we could not record it: the callback (or the sweeper)
                // will settle the payment. Tell the caller what Daraja said.
                tracing::error!(%error, payment_id = %payment_id, "could not record Daraja's answer");
                let shown = match <PaymentFlow as Flow>::decide(&payment, &event, self.clock.now()) {
                    Ok(next) => next,
                    Err(_) => payment,
                };
                Ok(initiation_response(&shown, request_id).with_header("x-checkout-warning", "state-not-recorded"))
            }
        }
    }

    /// A key that already has a record: replay, refuse, or finish an abandoned request.
    async fn resume(&self, record_key: &str, hash: &str, request_id: &str) -> Result<ApiResponse, ApiError> {
        match idempotent::resume(self.table.as_ref(), record_key, hash, self.clock.now()).await? {
            Resumed::Answer(response) => Ok(response),
            Resumed::Abandoned(record) => {
                // The first runner died mid-request. Daraja may or may not have been called, so
                // the payment is never pushed again: answer with what is stored and let the
                // callback or reconciliation settle it.
                let id = PaymentId::parse(&record.resource_id).map_err(|_| ApiError::Internal)?;
                let payment = self
                    .repo
                    .get(&id)
                    .await
                    .map_err(store_error)?
                    .ok_or(ApiError::Internal)?;
                let response = initiation_response(&payment, request_id);
                idempotent::finish_abandoned(self.table.as_ref(), record_key, &record, response).await
            }
        }
    }
}

/// Counts and logs (masked) a refused payment: never dropped silently.
fn refused(client: &ClientId, payment: &Payment, refusal: &ApiError) {
    let limit = match refusal {
        ApiError::LimitExceeded(r) => r.limit.as_str(),
        _ => "other",
    };
    metrics::count("LimitRefusals", 1, &[("Limit", limit)]);
    tracing::info!(client = %client, phone = %payment.phone, amount = payment.amount.shillings(), limit, "payment refused by a limit");
}

/// The request as the idempotency hash sees it: parsed values, canonical forms.
fn canonical(request: &NewPayment) -> serde_json::Value {
    serde_json::json!({
        "amount": request.amount.shillings(),
        "phone": request.phone.as_str(),
        "reference": request.reference.as_str(),
        "description": request.description.as_ref().map(|d| d.as_str()),
        "metadata": request.metadata,
    })
}

pub fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(detail) => {
            tracing::warn!(%detail, "store unavailable");
            ApiError::Unavailable
        }
        // Nothing was written and the request may be sent again: a 503 the client retries.
        StoreError::TransactionConflict => {
            tracing::warn!("transaction conflict");
            ApiError::Unavailable
        }
        other => {
            tracing::error!(error = %other, "store error");
            ApiError::Internal
        }
    }
}
