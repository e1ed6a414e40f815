//! Checkout sessions: the shop's operations (create, read, list, expire) and the page's (start
//! an attempt, refresh, go back to the shop). HTTP-free: `api/checkout/` maps these results and
//! errors to HTTP and pages.
//!
//! Starting an attempt is write-ahead: the session records the attempt and the id its payment
//! will have (a conditional write that also enforces one open attempt and the attempts left)
//! before the payment is initiated, under an idempotency key derived from the session and the
//! attempt number. A crash in between leaves an open attempt naming a payment that does not
//! exist; [`CheckoutService::refresh`] ends it once it is [`ABANDONED_AFTER`] old (a payment
//! written later still completes the session: see `domain::checkout_session::decide`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::flow::{session_created, SessionSettled, SessionSettler};
use crate::clock::Clock;
use crate::domain::checkout_session::{
    AttemptEnd, CheckoutSession, CheckoutSessionId, ClosedBy, NewSession, SessionEvent, SessionIgnored, SessionStatus,
    ABANDONED_AFTER,
};
use crate::domain::{ClientId, Msisdn, NewPayment, Payment, PaymentId, PaymentStatus};
use crate::engine::{Batch, CommitError, Settle, Slot};
use crate::events::repo as events;
use crate::idempotency::{self, Claimed, IdempotencyKey, Operation, Render, RequestIdentity, StoredResponse};
use crate::metrics;
use crate::repo::checkout_sessions::{SessionListFilter, SessionPage, SessionRepo};
use crate::repo::listing::Cursor;
use crate::repo::payments::PaymentRepo;
use crate::services::idempotent::{self, conflict_pause, CONFLICT_RETRIES};
use crate::services::payments::{self as payments, PaymentError, PaymentsService};
use crate::services::store_failure;
use crate::store::{StoreError, Table};
use crate::views::PaymentView;

/// Why a session operation did nothing: the error contract of [`CheckoutService`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckoutError {
    /// No such session that the caller may act for (another merchant's is indistinguishable
    /// from a missing one). Not retryable.
    #[error("no such checkout session")]
    NotFound,
    /// Completed or expired: nothing more can happen to it. Not retryable.
    #[error("the checkout session is {}", .status.as_str())]
    NotOpen { status: SessionStatus },
    /// Its expiry passed: no new attempt. Not retryable.
    #[error("the checkout session has expired")]
    PastExpiry,
    /// A prompt is open on the customer's phone; retry once it has ended.
    #[error("an attempt is in progress")]
    AttemptInProgress,
    /// The payment of an attempt was refused before any prompt (a limit): the attempt ended.
    #[error("the payment was refused: {0}")]
    PaymentRefused(PaymentError),
    /// A dependency is unavailable; retryable.
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A bug (a corrupt item, a colliding id). Not retryable as is.
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for CheckoutError {
    fn from(error: StoreError) -> CheckoutError {
        if store_failure::is_retryable(&error) {
            CheckoutError::Unavailable
        } else {
            CheckoutError::Internal
        }
    }
}

impl From<SessionIgnored> for CheckoutError {
    fn from(why: SessionIgnored) -> CheckoutError {
        match why {
            SessionIgnored::NotOpen { status } => CheckoutError::NotOpen { status },
            SessionIgnored::PastExpiry | SessionIgnored::NoAttemptsLeft => CheckoutError::PastExpiry,
            SessionIgnored::AttemptInProgress => CheckoutError::AttemptInProgress,
            SessionIgnored::UnknownAttempt | SessionIgnored::NotDue | SessionIgnored::Duplicate => {
                CheckoutError::Internal
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// Public base URL of the API: pages are `<base>/pay/<id>`.
    pub public_base_url: String,
    /// The shop's name on the page and in the prompt sentence.
    pub display_name: String,
    /// Origins allowed to frame the page (the modal): `frame-ancestors` and `postMessage`.
    pub allowed_origins: Vec<String>,
    /// How long an in-progress idempotency record blocks a duplicate before it is taken over.
    pub idempotency_lock: Duration,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        CheckoutConfig {
            public_base_url: "http://127.0.0.1:3000".into(),
            display_name: "Shop".into(),
            allowed_origins: Vec::new(),
            idempotency_lock: Duration::seconds(60),
        }
    }
}

/// What starting an attempt did.
#[derive(Debug, Clone)]
pub struct StartedAttempt {
    /// The session after it (the attempt open, or already ended when the payment failed at once).
    pub session: CheckoutSession,
    pub payment: Option<Payment>,
}

pub struct CheckoutService {
    pub repo: SessionRepo,
    pub payment_repo: PaymentRepo,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    pub config: CheckoutConfig,
}

/// The request as the idempotency hash sees it: parsed values, canonical forms.
pub fn canonical(request: &NewSession) -> serde_json::Value {
    serde_json::json!({
        "amount": request.amount.shillings(),
        "reference": request.reference.as_str(),
        "description": request.description.as_ref().map(|d| d.as_str()),
        "phone": request.phone.as_ref().map(|p| p.as_str()),
        "success_url": request.success_url.as_str(),
        "cancel_url": request.cancel_url.as_str(),
        "expires_in": request.expires_in.num_seconds(),
        "max_attempts": request.max_attempts,
        "metadata": request.metadata,
    })
}

/// How an attempt's payment ended, or `None` while it is open.
pub fn attempt_end(payment: &Payment) -> Option<AttemptEnd> {
    match payment.status {
        PaymentStatus::Completed => Some(AttemptEnd::Completed {
            receipt: payment.mpesa_receipt.clone(),
        }),
        PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Timeout => Some(AttemptEnd::Failed {
            reason: payment.failure_reason,
        }),
        PaymentStatus::Pending | PaymentStatus::Sent | PaymentStatus::Unknown => None,
    }
}

/// The first response stored for an attempt's payment (replayed only to this service).
fn attempt_response(payment: &Payment) -> StoredResponse {
    StoredResponse {
        status: 202,
        body: serde_json::to_string(&PaymentView::from(payment)).unwrap_or_default(),
    }
}

impl CheckoutService {
    pub fn settler(&self) -> SessionSettler {
        SessionSettler::sessions(self.table.clone(), self.clock.clone())
    }

    /// Creates a session for `client` under the idempotency `identity`, storing `render` of it
    /// as the first response.
    pub async fn create(
        &self,
        client: &ClientId,
        identity: &RequestIdentity,
        request: NewSession,
        render: Render<'_, CheckoutSession>,
    ) -> Result<Claimed<CheckoutSession>, CheckoutError> {
        let now = self.clock.now();
        let mut session = CheckoutSession::create(
            CheckoutSessionId::generate(),
            client.clone(),
            request,
            &self.config.public_base_url,
            now,
        );
        let mut conflicts = 0;
        loop {
            let mut created = session.clone();
            created.version = 1;
            let mut batch = Batch::new();
            batch
                .push(
                    Slot::IdempotencyClaim,
                    idempotency::claim(
                        &identity.record_key,
                        identity.request_hash.clone(),
                        session.id.as_str(),
                        now,
                        self.config.idempotency_lock,
                    ),
                )
                .push(Slot::Entity, SessionRepo::insert(&session))
                .push(Slot::Event, events::insert(&session_created(&created, now)));
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => break,
                Err(CommitError::Refused {
                    slot: Slot::IdempotencyClaim,
                }) => return Ok(Claimed::Taken),
                Err(CommitError::Store(StoreError::TransactionConflict)) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    tokio::time::sleep(conflict_pause(conflicts)).await;
                }
                Err(CommitError::Refused { slot }) => {
                    tracing::error!(slot = slot.as_str(), "checkout session creation refused on a new item");
                    return Err(CheckoutError::Internal);
                }
                Err(CommitError::Store(error)) => return Err(error.into()),
            }
        }
        session.version = 1;
        metrics::count("CheckoutSessionsCreated", 1, &[]);
        let record = idempotent::claimed(
            identity.request_hash.clone(),
            session.id.as_str(),
            now,
            self.config.idempotency_lock,
        );
        idempotent::store_first_response(self.table.as_ref(), &identity.record_key, &record, &render(&session)).await;
        Ok(Claimed::Ran(session))
    }

    /// The session of a creation whose first runner died after committing it.
    pub async fn recover(&self, resource_id: &str) -> Result<CheckoutSession, CheckoutError> {
        let id = CheckoutSessionId::parse(resource_id).map_err(|_| CheckoutError::Internal)?;
        self.repo.get(&id).await?.ok_or(CheckoutError::Internal)
    }

    /// The session as stored, if `client` may see it (`None`: any merchant, for the page).
    pub async fn get(
        &self,
        client: Option<&ClientId>,
        id: &CheckoutSessionId,
    ) -> Result<CheckoutSession, CheckoutError> {
        let session = self.repo.get(id).await?.ok_or(CheckoutError::NotFound)?;
        match client {
            Some(client) if &session.owner != client => Err(CheckoutError::NotFound),
            _ => Ok(session),
        }
    }

    pub async fn list(
        &self,
        filter: &SessionListFilter,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<SessionPage, CheckoutError> {
        Ok(self.repo.list(filter, limit, cursor).await?)
    }

    /// The shop closes its session unpaid. Refused while a prompt is open (it could still be
    /// paid a second later): the shop retries after it ends.
    pub async fn expire(&self, client: &ClientId, id: &CheckoutSessionId) -> Result<CheckoutSession, CheckoutError> {
        let session = self.get(Some(client), id).await?;
        let session = self.refresh(session).await?;
        self.close(session, ClosedBy::Merchant).await
    }

    /// The customer goes back to the shop without paying (the page's cancel button). Refused
    /// while a prompt is open.
    pub async fn cancel_by_customer(&self, id: &CheckoutSessionId) -> Result<CheckoutSession, CheckoutError> {
        let session = self.get(None, id).await?;
        let session = self.refresh(session).await?;
        self.close(session, ClosedBy::Customer).await
    }

    async fn close(&self, session: CheckoutSession, by: ClosedBy) -> Result<CheckoutSession, CheckoutError> {
        let event = SessionEvent::Close { by };
        match self.settle(session, &event).await? {
            SessionSettled::Applied { after, .. } => Ok(*after),
            SessionSettled::Unchanged {
                entity,
                why: SessionIgnored::Duplicate,
            } => Ok(*entity),
            SessionSettled::Unchanged { why, .. } => Err(why.into()),
            _ => Err(CheckoutError::Internal),
        }
    }

    async fn settle(&self, session: CheckoutSession, event: &SessionEvent) -> Result<SessionSettled, CheckoutError> {
        let id = session.id.clone();
        Ok(self.settler().settle(Settle::new(&id, event).known(session)).await?)
    }

    /// The session as the customer should see it now: read, then [`Self::refresh`]ed.
    pub async fn current(&self, id: &CheckoutSessionId) -> Result<CheckoutSession, CheckoutError> {
        let session = self.get(None, id).await?;
        self.refresh(session).await
    }

    /// The session with its open attempt ended if its payment has (the events consumer does
    /// the same from the event stream; whichever comes first applies it, the other finds it
    /// done), or if its payment was never written and never will be.
    pub async fn refresh(&self, session: CheckoutSession) -> Result<CheckoutSession, CheckoutError> {
        let Some(attempt) = session.open_attempt() else {
            return Ok(session);
        };
        let (payment_id, started_at) = (attempt.payment_id.clone(), attempt.started_at);
        let payment = self.payment_repo.get(&payment_id).await?;
        let end = match &payment {
            Some(payment) => attempt_end(payment),
            None if self.clock.now() - started_at >= ABANDONED_AFTER => Some(AttemptEnd::Failed { reason: None }),
            None => None,
        };
        match end {
            Some(end) => self.end_attempt(session, end_event(&payment_id, end)).await,
            None => Ok(session),
        }
    }

    async fn end_attempt(
        &self,
        session: CheckoutSession,
        event: SessionEvent,
    ) -> Result<CheckoutSession, CheckoutError> {
        match self.settle(session, &event).await? {
            SessionSettled::Applied { after, .. } => Ok(*after),
            SessionSettled::Unchanged { entity, .. } => Ok(*entity),
            _ => Err(CheckoutError::Internal),
        }
    }

    /// The customer asks for a prompt on `phone` (initiated through `payments`): records the attempt, then initiates its
    /// payment (see the module's write-ahead). A payment refused or failed at once ends the
    /// attempt right away, so the page can offer another.
    pub async fn start_attempt(
        &self,
        payments: &PaymentsService,
        id: &CheckoutSessionId,
        phone: Msisdn,
    ) -> Result<StartedAttempt, CheckoutError> {
        let session = self.get(None, id).await?;
        let session = self.refresh(session).await?;
        let payment_id = PaymentId::generate();
        let event = SessionEvent::StartAttempt {
            payment_id: payment_id.clone(),
            phone: phone.clone(),
        };
        let session = match self.settle(session, &event).await? {
            SessionSettled::Applied { after, .. } => *after,
            SessionSettled::Unchanged { why, .. } => return Err(why.into()),
            _ => return Err(CheckoutError::Internal),
        };
        let number = session.attempts.len();
        let key = IdempotencyKey::parse(&format!("{}-{number}", session.id)).ok_or(CheckoutError::Internal)?;
        let request = NewPayment {
            amount: session.amount,
            phone,
            reference: session.reference.clone(),
            description: session.description.clone(),
            metadata: session.metadata.clone(),
        };
        let identity = RequestIdentity::new(
            &session.owner,
            Operation::CheckoutAttempt,
            &key,
            &payments::canonical(&request),
        );
        let initiated = payments
            .initiate_as(
                &session.owner,
                &identity,
                request,
                payment_id.clone(),
                Some(session.id.clone()),
                &attempt_response,
            )
            .await;
        match initiated {
            Ok(Claimed::Ran(initiated)) => {
                let payment = initiated.payment;
                let session = match attempt_end(&payment) {
                    Some(end) => self.end_attempt(session, end_event(&payment_id, end)).await?,
                    None => session,
                };
                Ok(StartedAttempt {
                    session,
                    payment: Some(payment),
                })
            }
            // A fresh attempt's key cannot be taken unless this very attempt ran before.
            Ok(Claimed::Taken) => Ok(StartedAttempt {
                session,
                payment: self.payment_repo.get(&payment_id).await?,
            }),
            Err(error) => {
                // Nothing else will write this payment: if it is not there now, it never will
                // be, and the attempt ends without a prompt.
                tracing::warn!(%error, session = ?session.id, "checkout attempt's payment not initiated");
                let written = self.payment_repo.get(&payment_id).await?;
                let end = match &written {
                    Some(payment) => attempt_end(payment),
                    None => Some(AttemptEnd::Failed {
                        reason: match &error {
                            PaymentError::LimitExceeded(_) => Some(crate::domain::FailureReason::LimitExceeded),
                            _ => Some(crate::domain::FailureReason::DarajaUnavailable),
                        },
                    }),
                };
                if let Some(end) = end {
                    self.end_attempt(session, end_event(&payment_id, end)).await?;
                }
                match error {
                    PaymentError::LimitExceeded(_) => Err(CheckoutError::PaymentRefused(error)),
                    _ => Err(CheckoutError::Unavailable),
                }
            }
        }
    }

    /// Closes the sessions past their expiry with no prompt open (the sweeper's work).
    pub async fn close_if_past_expiry(&self, session: CheckoutSession) -> Result<SessionSettled, CheckoutError> {
        let session = self.refresh(session).await?;
        self.settle(session, &SessionEvent::Close { by: ClosedBy::Deadline })
            .await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

fn end_event(payment_id: &PaymentId, end: AttemptEnd) -> SessionEvent {
    SessionEvent::AttemptEnded {
        payment_id: payment_id.clone(),
        end,
    }
}
