//! Creating, approving and rejecting payouts.
//!
//! Creation is write-ahead: the idempotency claim, the payout and the limit counters are one
//! transaction (the merchant's daily caps are reserved just before it, outside it: see
//! [`crate::services::payouts::limits`]); a payout the approval rule catches, alone or through the
//! recipient's daily auto-approved total, is created `awaiting_approval` (and its idempotency
//! record kept until it is decided). Then the payout's job (`{"payout_id": "po_..."}`) goes on
//! the payout queue, and the API answers 202 (with the first response stored for replays). The
//! worker ([`crate::services::payouts::worker`]) submits it to Daraja at the queue's pace. If the queue
//! cannot take the job, the answer is still 202 (with `x-checkout-warning: enqueue-deferred`):
//! the payout is committed and will be paid, because the sweeper enqueues a `pending` payout
//! whose job was lost at its next check. A 5xx here would invite a retry with a new key, which
//! pays twice.

use std::sync::Arc;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::auth::Principal;
use crate::clock::Clock;
use crate::domain::payout::{NewPayout, Payout, PayoutEvent, PayoutIgnored, PayoutTimings};
use crate::domain::{PayoutId, PayoutStatus};
use crate::engine::{Batch, CommitError, Slot};
use crate::events::repo as events;
use crate::idempotency::{self, Claimed, Render, RequestIdentity, Retention};
use crate::metrics;
use crate::queue::{Queue, QueueError};
use crate::repo::payouts::PayoutRepo;
use crate::secrets::SecretCache;
use crate::services::idempotent::{self, conflict_pause, CreationFailure, CONFLICT_RETRIES};
use crate::services::limits::{Admission, LimitError, LimitRefusal, PhoneHasher};
use crate::services::payouts::flow::{payout_created, PayoutSettled, PayoutSettler};
use crate::services::payouts::limits::{self, PayoutLimits};
use crate::services::store_failure;
use crate::store::{StoreError, Table};

/// Why a payout was not created or reviewed: the error contract of [`PayoutsService`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayoutError {
    /// A limit refuses the payout: nothing was created. The same request may pass once the
    /// limit resets ([`LimitRefusal::resets_at`]); one above the per-payout maximum never does.
    #[error("refused by the {} limit", .0.limit)]
    LimitExceeded(LimitRefusal),
    /// No payout with this id that the caller may act for (another merchant's payout is
    /// indistinguishable from a missing one). Not retryable.
    #[error("no such payout")]
    NotFound,
    /// Two-person approval: the payout's creator may not approve or reject it. Not retryable
    /// by the same principal.
    #[error("the creator of a payout may not review it")]
    SelfApproval,
    /// Only a payout awaiting approval can be approved or rejected; this one is `status`
    /// (already decided, or never needed a decision). Not retryable.
    #[error("the payout is {}", .status.as_str())]
    NotAwaitingApproval { status: PayoutStatus },
    /// A dependency (the store, the secrets, the B2C configuration) is unavailable: nothing
    /// was created or decided. Retryable (with the same key, for a creation).
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A bug: a corrupt item, a colliding generated id, a record naming no payout. Not
    /// retryable as is.
    #[error("internal error")]
    Internal,
}

impl From<LimitRefusal> for PayoutError {
    fn from(refusal: LimitRefusal) -> PayoutError {
        PayoutError::LimitExceeded(refusal)
    }
}

impl From<LimitError> for PayoutError {
    fn from(error: LimitError) -> PayoutError {
        match error {
            LimitError::Refused(refusal) => PayoutError::LimitExceeded(refusal),
            LimitError::Unavailable => PayoutError::Unavailable,
            LimitError::Internal => PayoutError::Internal,
        }
    }
}

impl From<StoreError> for PayoutError {
    fn from(error: StoreError) -> PayoutError {
        if store_failure::is_retryable(&error) {
            PayoutError::Unavailable
        } else {
            PayoutError::Internal
        }
    }
}

/// A payout as a creation or a review leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRecorded {
    pub payout: Payout,
    /// The payout is to be paid but its job is not on the queue: the sweeper queues it at its
    /// next check. (Never a reason to create it again: it is committed.)
    pub enqueue_deferred: bool,
}

/// The payout queue's message: only the id; the worker reads everything else from the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutJob {
    pub payout_id: String,
}

impl PayoutJob {
    pub fn for_payout(id: &PayoutId) -> PayoutJob {
        PayoutJob {
            payout_id: id.to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Puts a payout's job on the queue, trying a few times (the job is tiny; a failure is the queue's).
pub async fn enqueue(queue: &dyn Queue, id: &PayoutId) -> Result<String, QueueError> {
    let body = PayoutJob::for_payout(id).to_json();
    let mut last = None;
    for attempt in 0..3u64 {
        match queue.send(&body).await {
            Ok(message_id) => return Ok(message_id),
            Err(error) => {
                tracing::warn!(%error, payout_id = %id, attempt, "could not enqueue the payout job");
                last = Some(error);
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| QueueError::Unavailable("no attempt made".into())))
}

#[derive(Debug, Clone)]
pub struct PayoutsConfig {
    /// Payouts above this many KES wait for a second principal's approval; `None`: no approval.
    pub approval_threshold: Option<u64>,
    pub timings: PayoutTimings,
    /// How long an in-progress idempotency record blocks a duplicate before it is taken over.
    pub idempotency_lock: Duration,
}

impl Default for PayoutsConfig {
    fn default() -> Self {
        PayoutsConfig {
            approval_threshold: None,
            timings: PayoutTimings::default(),
            idempotency_lock: Duration::seconds(60),
        }
    }
}

pub struct PayoutsService {
    pub repo: PayoutRepo,
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
    pub config: PayoutsConfig,
    pub limits: Option<Arc<PayoutLimits>>,
}

/// The request as the idempotency hash sees it: parsed values, canonical forms (so the same
/// request typed differently is the same request).
pub fn canonical(request: &NewPayout) -> serde_json::Value {
    serde_json::json!({
        "amount": request.amount.shillings(),
        "phone": request.phone.as_str(),
        "kind": request.kind.as_str(),
        "remarks": request.remarks.as_str(),
        "occasion": request.occasion.as_ref().map(|o| o.as_str()),
        "metadata": request.metadata,
    })
}

/// A payout awaiting approval may wait for days: its idempotency record is kept until the
/// decision, so a retry with the key still finds it (and never creates a second payout).
fn retention(payout: &Payout) -> Retention {
    if payout.status == PayoutStatus::AwaitingApproval {
        Retention::UntilDecided
    } else {
        Retention::FromCreation
    }
}

impl PayoutsService {
    pub fn settler(&self) -> PayoutSettler {
        PayoutSettler::payouts(self.table.clone(), self.clock.clone())
    }

    /// Creates a payout for the caller's merchant, created by the caller, under the
    /// idempotency `identity`; stores `render` of the payout as the first response once it is
    /// recorded and queued.
    pub async fn create(
        &self,
        principal: &Principal,
        identity: &RequestIdentity,
        request: NewPayout,
        render: Render<'_, Payout>,
    ) -> Result<Claimed<PayoutRecorded>, PayoutError> {
        let client = &principal.merchant;
        let secrets = self.secrets.get().await.map_err(|error| {
            tracing::error!(%error, "secrets unavailable");
            PayoutError::Unavailable
        })?;
        let Some(shortcode) = secrets.b2c_shortcode.clone() else {
            tracing::error!("payouts are not configured: the secret has no b2c_shortcode");
            metrics::count("PayoutOperatorAlarms", 1, &[("Reason", "b2c_not_configured")]);
            return Err(PayoutError::Unavailable);
        };
        let now = self.clock.now();
        let phones = PhoneHasher::from_secrets(&secrets).map_err(|error| {
            tracing::error!(%error, "the limits key is not loaded");
            PayoutError::Unavailable
        })?;
        let record_key = &identity.record_key;
        let threshold = self.config.approval_threshold;
        let create = |requires_approval: bool, id: PayoutId| {
            let mut payout = Payout::create(
                id,
                client.clone(),
                shortcode.clone(),
                request.clone(),
                requires_approval,
                now,
                self.config.timings,
            );
            if requires_approval {
                payout.idempotency_record = Some(record_key.clone());
            }
            payout.created_by = Some(principal.client.clone());
            payout
        };
        let mut payout = create(
            threshold.is_some_and(|t| request.amount.shillings() > t),
            PayoutId::generate(),
        );
        let admission = match &self.limits {
            Some(limits) => Some(
                limits
                    .admit(&payout, &phones, now)
                    .inspect_err(|r| refused(&payout, &r.limit))?,
            ),
            None => None,
        };
        let reservation = match &self.limits {
            Some(limits) => limits
                .reserve(&payout, now)
                .await
                .inspect_err(|e| refused(&payout, e.limit()))?,
            None => None,
        };
        let created = self
            .write_creation(identity, &mut payout, admission.as_ref(), &phones, now, create)
            .await;
        if let Err(failure) = &created {
            if let (Some(limits), Some(reservation), true) = (&self.limits, &reservation, failure.nothing_written()) {
                limits.release(reservation).await;
            }
        }
        match created {
            Ok(()) => {}
            Err(CreationFailure::KeyTaken) => return Ok(Claimed::Taken),
            Err(CreationFailure::Refused(refusal)) => {
                refused(&payout, &refusal.limit);
                return Err(refusal.into());
            }
            Err(CreationFailure::Store { error, .. }) => return Err(error.into()),
        }
        payout.version = 1;
        let requires_approval = payout.requires_approval;
        metrics::count(
            "PayoutsCreated",
            1,
            &[("Approval", if requires_approval { "required" } else { "none" })],
        );
        tracing::info!(payout_id = %payout.id, phone = %payout.phone, amount = payout.amount.shillings(), status = payout.status.as_str(), "payout recorded");
        let queued = payout.status != PayoutStatus::Pending || self.enqueue_or_defer(&payout).await;
        let record = idempotent::claimed_kept(
            identity.request_hash.clone(),
            payout.id.as_str(),
            now,
            self.config.idempotency_lock,
            retention(&payout),
        );
        // Queued already; if storing the answer fails, a retry with the key resumes the payout.
        idempotent::store_first_response(self.table.as_ref(), record_key, &record, &render(&payout)).await;
        Ok(Claimed::Ran(PayoutRecorded {
            payout,
            enqueue_deferred: !queued,
        }))
    }

    /// Puts the payout's job on the queue; when the queue cannot take it, the payout is still
    /// committed and the sweeper enqueues it at its next check (false: deferred).
    async fn enqueue_or_defer(&self, payout: &Payout) -> bool {
        match enqueue(self.queue.as_ref(), &payout.id).await {
            Ok(_) => true,
            Err(error) => {
                metrics::count("PayoutEnqueueDeferred", 1, &[]);
                tracing::error!(%error, payout_id = %payout.id, next_check_at = ?payout.next_check_at, "payout recorded but not queued; the sweeper will queue it");
                false
            }
        }
    }

    /// The creation transaction: idempotency claim, payout, recipient cap and (for a payout
    /// that needs no approval) the auto-approved daily total. A payout that would pass that
    /// total is made one awaiting approval (`create(true, id)`) and written again; a conflict
    /// with another transaction is retried with jitter (the claim makes a retry safe: at most
    /// one request ever writes the key), a bounded number of times.
    #[allow(clippy::too_many_arguments)]
    async fn write_creation(
        &self,
        identity: &RequestIdentity,
        payout: &mut Payout,
        admission: Option<&Admission>,
        phones: &PhoneHasher,
        now: chrono::DateTime<chrono::Utc>,
        create: impl Fn(bool, PayoutId) -> Payout,
    ) -> Result<(), CreationFailure<LimitRefusal>> {
        let mut conflicts = 0;
        loop {
            let mut created = payout.clone();
            created.version = 1;
            let mut batch = Batch::new();
            batch
                .push(
                    Slot::IdempotencyClaim,
                    idempotency::claim_kept(
                        &identity.record_key,
                        identity.request_hash.clone(),
                        payout.id.as_str(),
                        now,
                        self.config.idempotency_lock,
                        retention(payout),
                    ),
                )
                .push(Slot::Entity, PayoutRepo::insert(payout))
                .push(Slot::Event, events::insert(&payout_created(&created, now)));
            if let Some(admission) = admission {
                batch.append(
                    admission
                        .writes
                        .iter()
                        .cloned()
                        .enumerate()
                        .map(|(i, w)| (Slot::Limit(i), w)),
                );
            }
            if let Some(threshold) = self.config.approval_threshold.filter(|_| !payout.requires_approval) {
                batch.push(
                    Slot::ApprovalTotal,
                    limits::auto_approval(payout, phones, threshold, now),
                );
            }
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => return Ok(()),
                Err(CommitError::Refused {
                    slot: Slot::IdempotencyClaim,
                }) => return Err(CreationFailure::KeyTaken),
                Err(CommitError::Refused {
                    slot: Slot::ApprovalTotal,
                }) => {
                    // Under the threshold alone, but not with what this recipient was already
                    // paid today without approval: a second principal decides this one.
                    metrics::count("PayoutApprovalsByDailyTotal", 1, &[]);
                    *payout = create(true, payout.id.clone());
                }
                Err(CommitError::Refused {
                    slot: Slot::Limit(index),
                }) => {
                    let (Some(limits), Some(admission)) = (&self.limits, admission) else {
                        return Err(CreationFailure::Store {
                            error: StoreError::Invalid(format!("limit {index} of a payout creation failed")),
                            nothing_written: true,
                        });
                    };
                    return Err(CreationFailure::Refused(limits.explain(admission, index, now)));
                }
                Err(CommitError::Refused { slot }) => {
                    // The new payout's id (or its event's) exists: a generated id collided.
                    tracing::error!(slot = slot.as_str(), "payout creation refused on a new item");
                    return Err(CreationFailure::Store {
                        error: StoreError::Invalid(format!("{} exists", slot.as_str())),
                        nothing_written: true,
                    });
                }
                Err(CommitError::Store(StoreError::TransactionConflict)) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    metrics::count("TransactionConflictRetries", 1, &[("Operation", "CreatePayout")]);
                    tokio::time::sleep(conflict_pause(conflicts)).await;
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

    /// The payout of a request whose first runner died after recording it (`resource_id` of
    /// its idempotency record), before or after queueing its job: queued (again: the worker
    /// skips what is no longer pending) so the caller can be answered.
    pub async fn recover(&self, resource_id: &str) -> Result<PayoutRecorded, PayoutError> {
        let id = PayoutId::parse(resource_id).map_err(|_| PayoutError::Internal)?;
        let payout = self.repo.get(&id).await?.ok_or(PayoutError::Internal)?;
        let queued = payout.status != PayoutStatus::Pending || self.enqueue_or_defer(&payout).await;
        Ok(PayoutRecorded {
            payout,
            enqueue_deferred: !queued,
        })
    }

    /// Approves (`approve`) or rejects a payout awaiting approval, as `principal`: a payout of
    /// its own merchant (any merchant's for an operator), created by someone else. Conditional on
    /// the version read; an approved payout's job is queued (or re-queued by the sweeper).
    pub async fn review(
        &self,
        principal: &Principal,
        id: &PayoutId,
        approve: bool,
    ) -> Result<PayoutRecorded, PayoutError> {
        let by = &principal.client;
        // Another merchant's payout is indistinguishable from a missing one.
        let payout = self.repo.get(id).await?;
        if !payout.as_ref().is_some_and(|p| principal.may_act_for(&p.owner)) {
            return Err(PayoutError::NotFound);
        }
        let event = if approve {
            PayoutEvent::Approve { by: by.clone() }
        } else {
            PayoutEvent::Reject { by: by.clone() }
        };
        match self.settler().apply(id, &event, None).await? {
            PayoutSettled::Applied { after, .. } => {
                if let Some(record_key) = &after.idempotency_record {
                    // Decided: from now on its idempotency record expires as any other.
                    idempotent::start_retention_at_decision(self.table.as_ref(), record_key, after.updated_at).await;
                }
                metrics::count(
                    "PayoutReviews",
                    1,
                    &[("Decision", if approve { "approved" } else { "rejected" })],
                );
                tracing::info!(payout_id = %after.id, approver = %by, approved = approve, "payout reviewed");
                let mut enqueue_deferred = false;
                if approve {
                    if let Err(error) = enqueue(self.queue.as_ref(), &after.id).await {
                        tracing::error!(%error, payout_id = %after.id, "approved payout not queued; the sweeper will queue it");
                        enqueue_deferred = true;
                    }
                }
                Ok(PayoutRecorded {
                    payout: *after,
                    enqueue_deferred,
                })
            }
            PayoutSettled::Unchanged {
                why: PayoutIgnored::SelfApproval,
                entity: payout,
            } => {
                metrics::count("PayoutSelfApprovalAttempts", 1, &[]);
                tracing::warn!(payout_id = %payout.id, principal = %by, "self-approval refused");
                Err(PayoutError::SelfApproval)
            }
            PayoutSettled::Unchanged { entity: payout, .. } => {
                Err(PayoutError::NotAwaitingApproval { status: payout.status })
            }
            PayoutSettled::Unknown => Err(PayoutError::NotFound),
            PayoutSettled::AlreadyProcessed | PayoutSettled::Refused { .. } | PayoutSettled::Created { .. } => {
                Err(PayoutError::Internal)
            }
        }
    }
}

/// Counts and logs (masked) a payout refused by `limit` ("other": not by a limit): never
/// dropped silently.
fn refused(payout: &Payout, limit: &str) {
    metrics::count("LimitRefusals", 1, &[("Limit", limit)]);
    tracing::info!(client = %payout.owner, phone = %payout.phone, amount = payout.amount.shillings(), limit, "payout refused by a limit");
}
