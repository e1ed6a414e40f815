//! Initiating STK Push payments.
//!
//! Initiation is write-ahead: the idempotency claim and the `pending` payment (with the phone's
//! limits; the merchant's daily caps are reserved just before, see [`crate::services::limits`]) are
//! written in one transaction before Daraja is called; Daraja's answer then moves the payment
//! on with a conditional write that also stores the first response for replays (rendered by
//! the caller: see [`Render`]), so the payment's state and its replayed answer never disagree.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::{Daraja, DarajaError, StkPushRequest, StkTransactionType};
use crate::domain::{
    CheckoutSessionId, ClientId, DarajaResult, NewPayment, Payment, PaymentEvent, PaymentId, PaymentTimings, ResultCode,
};
use crate::engine::{Batch, CommitError, Flow, Settle, Slot};
use crate::events::repo as events;
use crate::idempotency::{self, Claimed, IdempotencyRecord, Render, RequestIdentity};
use crate::metrics;
use crate::repo::payments::PaymentRepo;
use crate::secrets::{AppSecrets, SecretCache};
use crate::services::idempotent::{self, conflict_pause, CreationFailure, CONFLICT_RETRIES};
use crate::services::limits::{Admission, AdmissionControl, LimitError, LimitRefusal, PhoneHasher};
use crate::services::payments::flow::{payment_created, PaymentFlow, PaymentSettler, Settled};
use crate::services::store_failure;
use crate::store::{StoreError, Table, Write};

/// Why a payment was not initiated: the error contract of [`PaymentsService::initiate`] and
/// [`PaymentsService::recover`]. Daraja refusing or failing is not among them: the payment
/// exists then (failed, or with an unknown outcome), and that is the use case's outcome
/// ([`Initiated`]), not its error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    /// A limit refuses the payment: nothing was created or pushed. The same request may pass
    /// once the limit resets ([`LimitRefusal::resets_at`]); one outside a per-payment bound
    /// never does.
    #[error("refused by the {} limit", .0.limit)]
    LimitExceeded(LimitRefusal),
    /// Requests for this phone kept racing for its prompt window: nothing was created.
    /// Retryable at once.
    #[error("too many simultaneous requests for this phone")]
    TooManyConcurrentRequests,
    /// A dependency (the store, the secrets) is unavailable: nothing was pushed. Retryable with
    /// the same key (which is free, or held by a record the retry resolves).
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A bug: a corrupt item, a colliding generated id, a record naming no payment. Not
    /// retryable as is.
    #[error("internal error")]
    Internal,
}

impl From<LimitError> for PaymentError {
    fn from(error: LimitError) -> PaymentError {
        match error {
            LimitError::Refused(refusal) => PaymentError::LimitExceeded(refusal),
            LimitError::Unavailable => PaymentError::Unavailable,
            LimitError::Internal => PaymentError::Internal,
        }
    }
}

impl From<StoreError> for PaymentError {
    fn from(error: StoreError) -> PaymentError {
        if store_failure::is_retryable(&error) {
            PaymentError::Unavailable
        } else {
            PaymentError::Internal
        }
    }
}

/// A payment after its initiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiated {
    /// The payment as Daraja's answer left it (or would have, when that was not recorded).
    pub payment: Payment,
    /// Whether that state, and the first response with it, were recorded. When not, the
    /// callback or the sweeper settles the payment, and a retry with the key takes the
    /// request over (see [`PaymentsService::recover`]).
    pub recorded: bool,
}

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

impl PaymentsService {
    fn settler(&self) -> PaymentSettler {
        PaymentSettler::new(PaymentFlow, self.table.clone(), self.clock.clone())
    }

    /// Initiates `request` for `client` under the idempotency `identity`: claims the key with
    /// the payment, pushes the prompt, and stores `render` of the resulting payment as the
    /// first response, in the transaction that records Daraja's answer.
    pub async fn initiate(
        &self,
        client: &ClientId,
        identity: &RequestIdentity,
        request: NewPayment,
        render: Render<'_, Payment>,
    ) -> Result<Claimed<Initiated>, PaymentError> {
        self.initiate_as(client, identity, request, PaymentId::generate(), None, render)
            .await
    }

    /// [`PaymentsService::initiate`] of a payment whose id the caller chose, as an attempt of
    /// `checkout_session` (a session records the attempt's payment id before the payment
    /// exists, so that a crash in between leaves a record of what may have been started).
    pub async fn initiate_as(
        &self,
        client: &ClientId,
        identity: &RequestIdentity,
        request: NewPayment,
        id: PaymentId,
        checkout_session: Option<CheckoutSessionId>,
        render: Render<'_, Payment>,
    ) -> Result<Claimed<Initiated>, PaymentError> {
        let secrets = self.secrets.get().await.map_err(|error| {
            tracing::error!(%error, "secrets unavailable");
            PaymentError::Unavailable
        })?;
        let now = self.clock.now();
        let app = secrets.daraja_app().map_err(|error| {
            tracing::error!(%error, "secrets incomplete");
            PaymentError::Unavailable
        })?;
        let mut payment = Payment::create(
            id,
            client.clone(),
            app.stk_shortcode.clone(),
            request,
            now,
            self.config.timings,
        );
        payment.checkout_session = checkout_session;
        // Limits: the phone's are conditional writes in the creation transaction; the merchant's
        // daily caps are reserved before it (a hot item: see `services::limits`) and given back
        // if the payment was definitely not created.
        let phones = PhoneHasher::from_secrets(&secrets).map_err(|error| {
            tracing::error!(%error, "the limits key is not loaded");
            PaymentError::Unavailable
        })?;
        let control = self.admission.as_deref();
        let mut admission = match control {
            Some(control) => Some(
                control
                    .admit(&payment, &phones, now)
                    .await
                    .inspect_err(|error| refused(client, &payment, error.limit()))?,
            ),
            None => None,
        };
        let reservation = match control {
            Some(control) => control
                .reserve(&payment, now)
                .await
                .inspect_err(|error| refused(client, &payment, error.limit()))?,
            None => None,
        };
        let created = self
            .write_creation(identity, &payment, &mut admission, &phones, now)
            .await;
        if let (Err(failure), Some(control), Some(reservation)) = (&created, control, &reservation) {
            if failure.nothing_written() {
                control.release(reservation).await;
            }
        }
        match created {
            Ok(()) => {}
            Err(CreationFailure::KeyTaken) => return Ok(Claimed::Taken),
            Err(CreationFailure::Refused(refusal)) => {
                if let PaymentError::LimitExceeded(limit) = &refusal {
                    refused(client, &payment, &limit.limit);
                }
                return Err(refusal);
            }
            Err(CreationFailure::Store { error, .. }) => return Err(error.into()),
        }
        payment.version = 1;
        let record = idempotent::claimed(
            identity.request_hash.clone(),
            payment.id.as_str(),
            now,
            self.config.idempotency_lock,
        );
        metrics::count("PaymentsInitiated", 1, &[]);

        let push = self.push(&secrets, &payment, now).await;
        let event = push_event(push);
        let initiated = self
            .settle_initiation(payment, event, &identity.record_key, &record, render)
            .await;
        Ok(Claimed::Ran(initiated))
    }

    /// The creation transaction: idempotency claim, payment and the phone's limits. A race on
    /// the phone's rolling window is decided again from fresh state; a conflict with another
    /// transaction is retried with jitter (the claim makes a retry safe: at most one request
    /// ever writes the key); both a bounded number of times.
    async fn write_creation(
        &self,
        identity: &RequestIdentity,
        payment: &Payment,
        admission: &mut Option<Admission>,
        phones: &PhoneHasher,
        now: DateTime<Utc>,
    ) -> Result<(), CreationFailure<PaymentError>> {
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
                        &identity.record_key,
                        identity.request_hash.clone(),
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
                        return Err(CreationFailure::Refused(PaymentError::Internal));
                    };
                    if let Some(refusal) = control.explain(current, index, payment, now).await {
                        return Err(CreationFailure::Refused(PaymentError::LimitExceeded(refusal)));
                    }
                    window_races += 1;
                    if window_races >= 10 {
                        return Err(CreationFailure::Refused(PaymentError::TooManyConcurrentRequests));
                    }
                    let pause = rand::random::<u64>() % (2 * window_races);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    *admission = Some(
                        control
                            .admit(payment, phones, now)
                            .await
                            .map_err(|error| CreationFailure::Refused(error.into()))?,
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

    /// Applies Daraja's answer and stores `render` of the payment it leaves as the first
    /// response, in the same transaction, through the settle engine (which decides again if a
    /// callback raced us).
    async fn settle_initiation(
        &self,
        payment: Payment,
        event: PaymentEvent,
        record_key: &str,
        record: &IdempotencyRecord,
        render: Render<'_, Payment>,
    ) -> Initiated {
        let payment_id = payment.id.clone();
        // The first response is what the caller sees now: the payment as the engine leaves it.
        let store_response = |outcome: &Settled| -> Vec<(Slot, Write)> {
            let Some(shown) = outcome.entity() else {
                return Vec::new();
            };
            vec![(
                Slot::IdempotencyResponse,
                idempotency::complete_with(record_key, record, &render(shown)),
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
                Some(shown) => Initiated {
                    payment: shown.clone(),
                    recorded: true,
                },
                None => {
                    // The idempotency record moved (taken over as abandoned): Daraja has answered
                    // but we could not record it; the callback or the sweeper settles the payment.
                    tracing::error!(payment_id = %payment_id, reason = outcome.reason(), "could not record Daraja's answer");
                    Initiated {
                        payment,
                        recorded: false,
                    }
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
                Initiated {
                    payment: shown,
                    recorded: false,
                }
            }
        }
    }

    /// The payment of a request whose first runner died mid-way (`resource_id` of its
    /// idempotency record), as stored. Daraja may or may not have been called, so the payment
    /// is never pushed again: the caller answers with what is stored and the callback or
    /// reconciliation settles it.
    pub async fn recover(&self, resource_id: &str) -> Result<Payment, PaymentError> {
        let id = PaymentId::parse(resource_id).map_err(|_| PaymentError::Internal)?;
        self.repo.get(&id).await?.ok_or(PaymentError::Internal)
    }
}

/// Counts and logs (masked) a payment refused by `limit` ("other": not by a limit): never
/// dropped silently.
fn refused(client: &ClientId, payment: &Payment, limit: &str) {
    metrics::count("LimitRefusals", 1, &[("Limit", limit)]);
    tracing::info!(client = %client, phone = %payment.phone, amount = payment.amount.shillings(), limit, "payment refused by a limit");
}

/// The request as the idempotency hash sees it: parsed values, canonical forms (so the same
/// request typed differently is the same request).
pub fn canonical(request: &NewPayment) -> serde_json::Value {
    serde_json::json!({
        "amount": request.amount.shillings(),
        "phone": request.phone.as_str(),
        "reference": request.reference.as_str(),
        "description": request.description.as_ref().map(|d| d.as_str()),
        "metadata": request.metadata,
    })
}
