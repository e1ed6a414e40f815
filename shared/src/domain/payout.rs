//! A business-to-customer payout (B2C) and the state machine that moves it.
//!
//! ```text
//! awaiting_approval ──approve──▶ pending ──accepted / duplicate──▶ sent ──result──▶ completed | failed
//!        │ reject                   │ refused ─▶ failed               │ queue timeout / no result
//!        ▼                          │ result ─▶ completed | failed    ▼
//!     rejected                      └ queue timeout ─────────────▶ unknown ──Transaction Status──▶ completed | failed
//! ```
//!
//! `unknown` means money may have moved: only a result or Transaction Status settles it, never a
//! timeout, and never Transaction Status "not found" (2032): which identifier Daraja searches is
//! not reliable enough to prove that money did not move, so a payout that stays unknown past its
//! deadline is raised to operators instead ([`Payout::unresolved_at`]). A result code we do not
//! recognise makes a payout `unknown` too (Transaction Status decides), never `failed`.
//! [`decide`] is the only place transitions are chosen; it is pure, so storage only has to enforce
//! "from the version I read".
//!
//! Submissions: a worker calls B2C only while it holds the payout's [`SubmissionLease`], taken
//! with a conditional write while the payout is `pending` and no live lease exists, so two jobs
//! for one payout (a redelivery, a sweeper re-queue, two workers at once) never both call Daraja.
//! The `OriginatorConversationID` sent to Daraja is the payout id itself: a later resubmission
//! (after a crash or a lost answer, once the lease has run out) carries the same one, so Daraja
//! refuses it as a duplicate instead of paying twice.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use super::b2c_outcome::{b2c_outcome, B2cOutcome, PayoutFailureReason};
use super::client::ClientId;
use super::ids::PayoutId;
use super::msisdn::Msisdn;
use super::payment::DarajaResult;
use super::text::{Metadata, Occasion, Remarks};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Above the approval threshold: waits for a second principal.
    AwaitingApproval,
    /// Recorded and queued; Daraja has not (knowingly) accepted it yet.
    Pending,
    /// Daraja accepted it; the result comes to the ResultURL.
    Sent,
    /// A queue timeout or no result: money may have moved. Transaction Status decides.
    Unknown,
    Completed,
    Failed,
    /// Refused by an approver; never sent.
    Rejected,
}

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 7] = [
        PayoutStatus::AwaitingApproval,
        PayoutStatus::Pending,
        PayoutStatus::Sent,
        PayoutStatus::Unknown,
        PayoutStatus::Completed,
        PayoutStatus::Failed,
        PayoutStatus::Rejected,
    ];

    /// Open payouts are watched by the sweeper (re-enqueued, or asked about with Transaction Status).
    pub fn is_open(self) -> bool {
        matches!(self, PayoutStatus::Pending | PayoutStatus::Sent | PayoutStatus::Unknown)
    }

    pub fn is_settled(self) -> bool {
        matches!(
            self,
            PayoutStatus::Completed | PayoutStatus::Failed | PayoutStatus::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::AwaitingApproval => "awaiting_approval",
            PayoutStatus::Pending => "pending",
            PayoutStatus::Sent => "sent",
            PayoutStatus::Unknown => "unknown",
            PayoutStatus::Completed => "completed",
            PayoutStatus::Failed => "failed",
            PayoutStatus::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        PayoutStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Daraja's B2C `CommandID`, in the API's snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutKind {
    BusinessPayment,
    SalaryPayment,
    PromotionPayment,
}

impl PayoutKind {
    pub const ALL: [PayoutKind; 3] = [
        PayoutKind::BusinessPayment,
        PayoutKind::SalaryPayment,
        PayoutKind::PromotionPayment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutKind::BusinessPayment => "business_payment",
            PayoutKind::SalaryPayment => "salary_payment",
            PayoutKind::PromotionPayment => "promotion_payment",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        PayoutKind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// Who caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutSource {
    Api,
    Daraja,
    Callback,
    Reconciliation,
    Approval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutHistoryEntry {
    pub status: PayoutStatus,
    pub at: DateTime<Utc>,
    pub source: PayoutSource,
    /// The approver, on approval transitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<ClientId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub decision: ApprovalDecision,
    pub by: ClientId,
    pub at: DateTime<Utc>,
}

/// A worker's claim to submit a payout to Daraja. While it is live no other job submits it; it is
/// cleared when the payout leaves `pending`, or released early when the attempt provably did not
/// reach Daraja. After a lost answer or a crash it simply runs out, and the sweeper re-queues the
/// payout then (its next check is the lease's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionLease {
    /// Who holds it (the worker instance and the queue message), for logs and operators.
    pub holder: String,
    pub until: DateTime<Utc>,
}

/// Why a job may not submit a payout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRefused {
    /// Only a `pending` payout is submitted.
    NotPending { status: PayoutStatus },
    /// Another job holds the lease until then.
    Held { holder: String, until: DateTime<Utc> },
}

/// Timing rules, fixed on the payout when it is created so every component agrees on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutTimings {
    /// How long after Daraja accepted a payout we wait for its result before asking Transaction Status.
    pub result_wait_secs: i64,
    /// Spacing of Transaction Status queries (and of the "not found" answers that may fail a payout).
    pub status_interval_secs: i64,
    /// After this long from submission, repeated "not found" answers fail the payout.
    pub deadline_secs: i64,
    /// A `pending` payout not submitted after this long has its job enqueued again.
    pub requeue_secs: i64,
}

impl Default for PayoutTimings {
    fn default() -> Self {
        PayoutTimings {
            result_wait_secs: 120,
            status_interval_secs: 60,
            deadline_secs: 600,
            requeue_secs: 300,
        }
    }
}

impl PayoutTimings {
    pub fn result_wait(&self) -> Duration {
        Duration::seconds(self.result_wait_secs)
    }
    pub fn status_interval(&self) -> Duration {
        Duration::seconds(self.status_interval_secs)
    }
    pub fn deadline(&self) -> Duration {
        Duration::seconds(self.deadline_secs)
    }
    pub fn requeue(&self) -> Duration {
        Duration::seconds(self.requeue_secs)
    }
}

/// What a merchant asked for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayout {
    pub amount: Amount,
    pub phone: Msisdn,
    pub kind: PayoutKind,
    pub remarks: Remarks,
    pub occasion: Option<Occasion>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub id: PayoutId,
    /// The merchant it belongs to (the token's merchant claim; its `sub` when it has none).
    pub owner: ClientId,
    /// Who created it (the token's `sub`): the one principal who may not approve it. Payouts
    /// recorded before merchants existed were created by their owner.
    #[serde(default)]
    pub created_by: Option<ClientId>,
    pub status: PayoutStatus,
    pub amount: Amount,
    pub phone: Msisdn,
    pub kind: PayoutKind,
    pub remarks: Remarks,
    pub occasion: Option<Occasion>,
    #[serde(default)]
    pub metadata: Metadata,
    /// The paying B2C shortcode (PartyA).
    pub shortcode: String,
    pub conversation_id: Option<String>,
    pub mpesa_receipt: Option<String>,
    /// `ReceiverPartyPublicName` (or Transaction Status `CreditPartyName`) as Safaricom sent it.
    pub recipient_name: Option<String>,
    pub result: Option<DarajaResult>,
    pub failure_reason: Option<PayoutFailureReason>,
    #[serde(default)]
    pub requires_approval: bool,
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The key of the idempotency record that created it, while that record is kept until the
    /// approval decision (it gets its normal expiry once the payout is approved or rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_record: Option<String>,
    /// Submission leases taken for it: times a worker may have called Daraja (a crash between the
    /// call and our write shows here).
    #[serde(default)]
    pub submit_attempts: u32,
    /// Of those attempts, the ones known not to have reached Daraja (refused before sending, rate
    /// limited, not connected). Any other earlier attempt may have paid.
    #[serde(default)]
    pub unsent_attempts: u32,
    /// The submission lease, while a worker holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_lease: Option<SubmissionLease>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<PayoutHistoryEntry>,
    /// When Daraja accepted it (or refused it as already submitted).
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// After this instant, repeated "not found" answers from Transaction Status fail it.
    #[serde(default)]
    pub deadline_at: Option<DateTime<Utc>>,
    /// When the sweeper should next look at it; present only while open.
    pub next_check_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reconcile_attempts: u32,
    /// Transaction Status queries sent for it.
    #[serde(default)]
    pub status_queries: u32,
    /// When Transaction Status answered 2032 ("no such transaction").
    #[serde(default)]
    pub not_found_answers: Vec<DateTime<Utc>>,
    pub timings: PayoutTimings,
    /// Optimistic-concurrency version; storage writes only "from the version I read".
    #[serde(default)]
    pub version: u64,
}

impl Payout {
    pub fn create(
        id: PayoutId,
        owner: ClientId,
        shortcode: String,
        request: NewPayout,
        requires_approval: bool,
        now: DateTime<Utc>,
        timings: PayoutTimings,
    ) -> Payout {
        let status = if requires_approval {
            PayoutStatus::AwaitingApproval
        } else {
            PayoutStatus::Pending
        };
        Payout {
            id,
            created_by: Some(owner.clone()),
            owner,
            status,
            amount: request.amount,
            phone: request.phone,
            kind: request.kind,
            remarks: request.remarks,
            occasion: request.occasion,
            metadata: request.metadata,
            shortcode,
            conversation_id: None,
            mpesa_receipt: None,
            recipient_name: None,
            result: None,
            failure_reason: None,
            requires_approval,
            approval: None,
            idempotency_record: None,
            submit_attempts: 0,
            unsent_attempts: 0,
            submission_lease: None,
            created_at: now,
            updated_at: now,
            history: vec![PayoutHistoryEntry {
                status,
                at: now,
                source: PayoutSource::Api,
                by: None,
            }],
            sent_at: None,
            deadline_at: None,
            next_check_at: (!requires_approval).then(|| now + timings.requeue()),
            reconcile_attempts: 0,
            status_queries: 0,
            not_found_answers: Vec::new(),
            timings,
            version: 0,
        }
    }

    /// The principal who created it (two-person approval: never its approver).
    pub fn creator(&self) -> &ClientId {
        self.created_by.as_ref().unwrap_or(&self.owner)
    }

    /// The B2C `OriginatorConversationID`: the payout id itself, the same on every submission.
    pub fn originator_conversation_id(&self) -> &str {
        self.id.as_str()
    }

    /// The payout with a submission lease for `holder` until `now + lease`, the attempt counted,
    /// and its next check moved to the lease's end (so the sweeper re-queues it only once the
    /// lease has run out). Written with a version condition, this is what lets one job, and only
    /// one, call Daraja.
    pub fn take_submission_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Payout, LeaseRefused> {
        if self.status != PayoutStatus::Pending {
            return Err(LeaseRefused::NotPending { status: self.status });
        }
        if let Some(held) = self.submission_lease.as_ref().filter(|l| l.until > now) {
            return Err(LeaseRefused::Held {
                holder: held.holder.clone(),
                until: held.until,
            });
        }
        let until = now + lease;
        let mut next = self.clone();
        next.submit_attempts = self.submit_attempts.saturating_add(1);
        next.submission_lease = Some(SubmissionLease {
            holder: holder.to_owned(),
            until,
        });
        next.next_check_at = Some(until);
        Ok(next)
    }

    /// The attempt under the current lease provably never reached Daraja: give the lease back
    /// (the job's retry may take it at once) and remember that this attempt cannot have paid.
    pub fn released_unsent(&self, now: DateTime<Utc>) -> Payout {
        let mut next = self.clone();
        if self.status == PayoutStatus::Pending && self.submission_lease.is_some() {
            next.submission_lease = None;
            next.unsent_attempts = self.unsent_attempts.saturating_add(1).min(self.submit_attempts);
            next.next_check_at = Some(now + self.timings.requeue());
        }
        next
    }

    /// Whether an attempt before the current one may have reached Daraja (so it may have paid,
    /// whatever Daraja says of this one).
    pub fn earlier_attempt_may_have_paid(&self) -> bool {
        self.submit_attempts.saturating_sub(1) > self.unsent_attempts
    }

    /// Since when the payout is past its deadline with no answer that settles it (only `unknown`
    /// and `sent` payouts can be): operators must look at it (money may have moved).
    pub fn unresolved_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let deadline = self.deadline_at?;
        (matches!(self.status, PayoutStatus::Unknown | PayoutStatus::Sent) && now >= deadline).then_some(deadline)
    }

    /// The sweeper looks again at `at`. Not a transition: status and history stay as they are.
    pub fn check_again_at(&self, at: DateTime<Utc>) -> Payout {
        let mut next = self.clone();
        if self.status.is_open() {
            next.next_check_at = Some(at);
            next.reconcile_attempts = self.reconcile_attempts.saturating_add(1);
        }
        next
    }

    /// A Transaction Status query was sent; the next one no sooner than the status interval.
    pub fn status_query_sent(&self, now: DateTime<Utc>) -> Payout {
        let mut next = self.check_again_at(now + self.timings.status_interval());
        next.status_queries = self.status_queries.saturating_add(1);
        next
    }

    fn moved_to(&self, status: PayoutStatus, source: PayoutSource, by: Option<ClientId>, now: DateTime<Utc>) -> Payout {
        let mut next = self.clone();
        next.status = status;
        next.updated_at = now;
        next.history.push(PayoutHistoryEntry {
            status,
            at: now,
            source,
            by,
        });
        if !status.is_open() {
            next.next_check_at = None;
        }
        if status != PayoutStatus::Pending {
            next.submission_lease = None;
        }
        next
    }

    /// Daraja has it (accepted, or refused as a duplicate of an accepted one).
    fn submitted(&self, now: DateTime<Utc>) -> Payout {
        let mut next = self.moved_to(PayoutStatus::Sent, PayoutSource::Daraja, None, now);
        next.sent_at = Some(now);
        next.deadline_at = Some(now + self.timings.deadline());
        next.next_check_at = Some(now + self.timings.result_wait());
        next
    }

    /// Money may have moved: ask Transaction Status at the next sweep.
    fn became_unknown(&self, source: PayoutSource, now: DateTime<Utc>) -> Payout {
        let mut next = self.moved_to(PayoutStatus::Unknown, source, None, now);
        next.sent_at = self.sent_at.or(Some(now));
        next.deadline_at = self.deadline_at.or(Some(now + self.timings.deadline()));
        next.next_check_at = Some(now);
        next
    }

    /// Two "not found" answers at least the status interval apart (raised to operators past the
    /// deadline; never a reason to fail).
    pub fn not_found_confirmed(&self) -> bool {
        match (self.not_found_answers.iter().min(), self.not_found_answers.iter().max()) {
            (Some(first), Some(last)) => *last - *first >= self.timings.status_interval(),
            _ => false,
        }
    }
}

/// A B2C result as Safaricom POSTed it to our ResultURL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2cFinalResult {
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub result: DarajaResult,
    pub receipt: Option<String>,
    /// `None` when absent or not a whole amount (it then cannot match ours).
    pub amount: Option<Amount>,
    pub recipient_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutEvent {
    Approve {
        by: ClientId,
    },
    Reject {
        by: ClientId,
    },
    /// Daraja accepted the submission.
    DarajaAccepted {
        conversation_id: String,
    },
    /// Daraja refused the submission as a duplicate OriginatorConversationID: an earlier
    /// submission of this payout was accepted (its answer was lost).
    AlreadySubmitted,
    /// Daraja refused the submission definitively; nothing was sent.
    DarajaRefused {
        result: DarajaResult,
    },
    /// The final result POSTed to the ResultURL.
    Result(B2cFinalResult),
    /// Daraja's queue timeout POSTed to the QueueTimeOutURL: money may have moved.
    QueueTimeout,
    /// The sweeper found a `sent` payout with no result past its wait.
    NoResult,
    /// Transaction Status: the payout is `Completed`.
    StatusCompleted {
        result: DarajaResult,
        receipt: Option<String>,
        amount: Option<Amount>,
        recipient_name: Option<String>,
    },
    /// Transaction Status: Daraja does not know it (2032).
    StatusNotFound {
        result: DarajaResult,
    },
    /// Transaction Status: declined, cancelled or expired (money did not move).
    StatusDeclined {
        result: DarajaResult,
    },
}

/// Why an event changed nothing. `is_anomaly` separates harmless repeats from things to alert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutIgnored {
    Duplicate,
    NotApplicable {
        status: PayoutStatus,
    },
    /// A result that contradicts the payout's settled state (e.g. money moved after `failed`).
    ConflictingResult {
        status: PayoutStatus,
        reported: String,
    },
    /// The result names another OriginatorConversationID or ConversationID.
    ConversationMismatch {
        expected: String,
        reported: String,
    },
    /// A success whose amount differs from the payout's (or is missing).
    AmountMismatch {
        expected: Amount,
        reported: Option<Amount>,
    },
    /// A success result without a receipt.
    MissingReceipt,
    /// The creator tried to approve or reject its own payout.
    SelfApproval,
}

impl PayoutIgnored {
    pub fn is_anomaly(&self) -> bool {
        matches!(
            self,
            PayoutIgnored::ConflictingResult { .. }
                | PayoutIgnored::ConversationMismatch { .. }
                | PayoutIgnored::AmountMismatch { .. }
                | PayoutIgnored::MissingReceipt
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            PayoutIgnored::Duplicate => "duplicate",
            PayoutIgnored::NotApplicable { .. } => "not_applicable",
            PayoutIgnored::ConflictingResult { .. } => "conflicting_result",
            PayoutIgnored::ConversationMismatch { .. } => "conversation_mismatch",
            PayoutIgnored::AmountMismatch { .. } => "amount_mismatch",
            PayoutIgnored::MissingReceipt => "missing_receipt",
            PayoutIgnored::SelfApproval => "self_approval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutDecision {
    /// Store this (a transition, or new facts without one, e.g. a receipt or a "not found" answer).
    Apply(Box<Payout>),
    Ignore(PayoutIgnored),
}

fn apply(next: Payout) -> PayoutDecision {
    PayoutDecision::Apply(Box::new(next))
}

fn ignore(why: PayoutIgnored) -> PayoutDecision {
    PayoutDecision::Ignore(why)
}

fn not_applicable(payout: &Payout) -> PayoutDecision {
    ignore(PayoutIgnored::NotApplicable { status: payout.status })
}

/// The payout state machine: what `event` does to `payout` at `now`.
pub fn decide(payout: &Payout, event: &PayoutEvent, now: DateTime<Utc>) -> PayoutDecision {
    use PayoutStatus::*;
    match event {
        PayoutEvent::Approve { by } | PayoutEvent::Reject { by } => {
            if payout.status != AwaitingApproval {
                return not_applicable(payout);
            }
            if by == payout.creator() {
                return ignore(PayoutIgnored::SelfApproval);
            }
            let approved = matches!(event, PayoutEvent::Approve { .. });
            let (status, decision) = if approved {
                (Pending, ApprovalDecision::Approved)
            } else {
                (Rejected, ApprovalDecision::Rejected)
            };
            let mut next = payout.moved_to(status, PayoutSource::Approval, Some(by.clone()), now);
            next.approval = Some(Approval {
                decision,
                by: by.clone(),
                at: now,
            });
            if approved {
                next.next_check_at = Some(now + payout.timings.requeue());
            }
            apply(next)
        }
        PayoutEvent::DarajaAccepted { conversation_id } => match payout.status {
            Pending => {
                let mut next = payout.submitted(now);
                next.conversation_id = Some(conversation_id.clone());
                apply(next)
            }
            // A concurrent duplicate submission recorded `sent` first: keep the id it lacked.
            Sent | Unknown | Completed if payout.conversation_id.is_none() => {
                let mut next = payout.clone();
                next.conversation_id = Some(conversation_id.clone());
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::AlreadySubmitted => match payout.status {
            Pending => apply(payout.submitted(now)),
            _ => not_applicable(payout),
        },
        PayoutEvent::DarajaRefused { result } => match payout.status {
            // An earlier submission may have reached Daraja (its answer was lost, or we crashed),
            // so it may have been paid: a refusal of this one proves nothing about that one.
            // Transaction Status decides, never a guess.
            Pending if payout.earlier_attempt_may_have_paid() => {
                let mut next = payout.became_unknown(PayoutSource::Daraja, now);
                next.result = Some(result.clone());
                apply(next)
            }
            Pending => {
                let mut next = payout.moved_to(Failed, PayoutSource::Daraja, None, now);
                next.result = Some(result.clone());
                next.failure_reason = Some(PayoutFailureReason::DarajaRejected);
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::QueueTimeout => match payout.status {
            Pending | Sent => apply(payout.became_unknown(PayoutSource::Callback, now)),
            Unknown => ignore(PayoutIgnored::Duplicate),
            _ => not_applicable(payout),
        },
        PayoutEvent::NoResult => match payout.status {
            Sent => apply(payout.became_unknown(PayoutSource::Reconciliation, now)),
            _ => not_applicable(payout),
        },
        PayoutEvent::Result(reported) => decide_result(payout, reported, now),
        PayoutEvent::StatusCompleted {
            result,
            receipt,
            amount,
            recipient_name,
        } => {
            if let Some(reported) = amount {
                if *reported != payout.amount {
                    return ignore(PayoutIgnored::AmountMismatch {
                        expected: payout.amount,
                        reported: Some(*reported),
                    });
                }
            }
            match payout.status {
                Pending | Sent | Unknown => {
                    let mut next = payout.moved_to(Completed, PayoutSource::Reconciliation, None, now);
                    next.result = Some(result.clone());
                    next.mpesa_receipt = receipt.clone();
                    next.recipient_name = recipient_name.clone().or_else(|| payout.recipient_name.clone());
                    next.failure_reason = None;
                    apply(next)
                }
                Completed => same_success(payout, receipt.as_deref(), recipient_name.as_deref(), result, now),
                // Failed by "not found" (older releases did that): the money did move after all.
                Failed if payout.failure_reason == Some(PayoutFailureReason::NotFoundAtDaraja) => {
                    let mut next = payout.moved_to(Completed, PayoutSource::Reconciliation, None, now);
                    next.result = Some(result.clone());
                    next.mpesa_receipt = receipt.clone();
                    next.recipient_name = recipient_name.clone().or_else(|| payout.recipient_name.clone());
                    next.failure_reason = None;
                    apply(next)
                }
                status => ignore(PayoutIgnored::ConflictingResult {
                    status,
                    reported: result.code.to_string(),
                }),
            }
        }
        // Recorded, never a failure: Daraja may not search by the identifier we could give it,
        // and a payout it accepted may still have paid. Past the deadline operators are alarmed.
        PayoutEvent::StatusNotFound { result } => match payout.status {
            Sent | Unknown => {
                let mut next = payout.clone();
                next.not_found_answers.push(now);
                next.result = Some(result.clone());
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::StatusDeclined { result } => match payout.status {
            Sent | Unknown => {
                let mut next = payout.moved_to(Failed, PayoutSource::Reconciliation, None, now);
                next.result = Some(result.clone());
                next.failure_reason = Some(PayoutFailureReason::DeclinedAtDaraja);
                apply(next)
            }
            Failed => ignore(PayoutIgnored::Duplicate),
            Completed => ignore(PayoutIgnored::ConflictingResult {
                status: Completed,
                reported: result.code.to_string(),
            }),
            _ => not_applicable(payout),
        },
    }
}

/// A success for a payout already `completed`: a duplicate, the receipt it lacked, or a conflict.
fn same_success(
    payout: &Payout,
    receipt: Option<&str>,
    recipient_name: Option<&str>,
    result: &DarajaResult,
    now: DateTime<Utc>,
) -> PayoutDecision {
    match (payout.mpesa_receipt.as_deref(), receipt) {
        (None, Some(receipt)) => {
            let mut next = payout.clone();
            next.mpesa_receipt = Some(receipt.to_owned());
            if next.recipient_name.is_none() {
                next.recipient_name = recipient_name.map(str::to_owned);
            }
            next.updated_at = now;
            apply(next)
        }
        (_, None) => ignore(PayoutIgnored::Duplicate),
        (Some(ours), Some(theirs)) if ours == theirs => ignore(PayoutIgnored::Duplicate),
        _ => ignore(PayoutIgnored::ConflictingResult {
            status: PayoutStatus::Completed,
            reported: result.code.to_string(),
        }),
    }
}

fn decide_result(payout: &Payout, reported: &B2cFinalResult, now: DateTime<Utc>) -> PayoutDecision {
    use PayoutStatus::*;
    if let Some(ocid) = &reported.originator_conversation_id {
        if ocid != payout.originator_conversation_id() {
            return ignore(PayoutIgnored::ConversationMismatch {
                expected: payout.originator_conversation_id().to_owned(),
                reported: ocid.clone(),
            });
        }
    }
    if let (Some(ours), Some(theirs)) = (&payout.conversation_id, &reported.conversation_id) {
        if ours != theirs {
            return ignore(PayoutIgnored::ConversationMismatch {
                expected: ours.clone(),
                reported: theirs.clone(),
            });
        }
    }
    let outcome = b2c_outcome(&reported.result.code);
    if outcome == B2cOutcome::Completed {
        // A result is untrusted input: a success must carry our amount and a receipt.
        if reported.amount != Some(payout.amount) {
            return ignore(PayoutIgnored::AmountMismatch {
                expected: payout.amount,
                reported: reported.amount,
            });
        }
        if reported.receipt.as_deref().is_none_or(str::is_empty) {
            return ignore(PayoutIgnored::MissingReceipt);
        }
    }
    let conflicting = || {
        ignore(PayoutIgnored::ConflictingResult {
            status: payout.status,
            reported: reported.result.code.to_string(),
        })
    };
    let revived = payout.status == Failed && payout.failure_reason == Some(PayoutFailureReason::NotFoundAtDaraja);
    match (payout.status, outcome) {
        // Not a code we know: money may have moved. Transaction Status decides.
        (Unknown, B2cOutcome::Unrecognised) => {
            let same = payout.result.as_ref().map(|r| &r.code) == Some(&reported.result.code);
            return if same {
                ignore(PayoutIgnored::Duplicate)
            } else {
                let mut next = payout.clone();
                next.result = Some(reported.result.clone());
                next.updated_at = now;
                apply(next)
            };
        }
        (Pending | Sent | Unknown, _) => {}
        // Failed by "not found" (older releases did that): a genuine success shows money moved.
        (Failed, B2cOutcome::Completed) if revived => {}
        (Completed, B2cOutcome::Completed) => {
            return same_success(
                payout,
                reported.receipt.as_deref(),
                reported.recipient_name.as_deref(),
                &reported.result,
                now,
            )
        }
        (Failed, B2cOutcome::Failed(_)) => {
            let same = payout.result.as_ref().map(|r| &r.code) == Some(&reported.result.code);
            return if same {
                ignore(PayoutIgnored::Duplicate)
            } else {
                not_applicable(payout)
            };
        }
        _ => return conflicting(),
    }
    let mut next = match outcome {
        B2cOutcome::Completed => {
            let mut next = payout.moved_to(Completed, PayoutSource::Callback, None, now);
            next.mpesa_receipt = reported.receipt.clone();
            next.recipient_name = reported.recipient_name.clone();
            next.failure_reason = None;
            next
        }
        B2cOutcome::Failed(reason) => {
            let mut next = payout.moved_to(Failed, PayoutSource::Callback, None, now);
            next.failure_reason = Some(reason);
            next
        }
        B2cOutcome::Unrecognised => payout.became_unknown(PayoutSource::Callback, now),
    };
    next.result = Some(reported.result.clone());
    if next.conversation_id.is_none() {
        next.conversation_id = reported.conversation_id.clone();
    }
    apply(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResultCode;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T11:30:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn owner() -> ClientId {
        ClientId::parse("merchant-1").unwrap()
    }

    fn approver() -> ClientId {
        ClientId::parse("approver-1").unwrap()
    }

    fn new_payout(requires_approval: bool) -> Payout {
        Payout::create(
            PayoutId::generate(),
            owner(),
            "600992".into(),
            NewPayout {
                amount: Amount::new(2500).unwrap(),
                phone: Msisdn::parse("0712345678").unwrap(),
                kind: PayoutKind::BusinessPayment,
                remarks: Remarks::parse("Refund ORDER1234").unwrap(),
                occasion: None,
                metadata: Metadata::default(),
            },
            requires_approval,
            t0(),
            PayoutTimings::default(),
        )
    }

    fn res(code: &str) -> DarajaResult {
        DarajaResult {
            code: ResultCode::new(code),
            description: "desc".into(),
        }
    }

    fn result(p: &Payout, code: &str, amount: Option<u64>, receipt: Option<&str>) -> PayoutEvent {
        PayoutEvent::Result(B2cFinalResult {
            originator_conversation_id: Some(p.id.to_string()),
            conversation_id: Some("AG_1".into()),
            result: res(code),
            receipt: receipt.map(str::to_owned),
            amount: amount.map(|a| Amount::new(a).unwrap()),
            recipient_name: Some("254712345678 - JANE DOE".into()),
        })
    }

    fn accepted() -> PayoutEvent {
        PayoutEvent::DarajaAccepted {
            conversation_id: "AG_1".into(),
        }
    }

    fn apply_at(p: &Payout, e: &PayoutEvent, now: DateTime<Utc>) -> Payout {
        match decide(p, e, now) {
            PayoutDecision::Apply(next) => *next,
            PayoutDecision::Ignore(why) => panic!("expected a change, got {why:?}"),
        }
    }

    fn step(p: &Payout, e: &PayoutEvent) -> Payout {
        apply_at(p, e, t0())
    }

    fn ignored(p: &Payout, e: &PayoutEvent) -> PayoutIgnored {
        match decide(p, e, t0()) {
            PayoutDecision::Apply(next) => panic!("expected no change, got {:?}", next.status),
            PayoutDecision::Ignore(why) => why,
        }
    }

    #[test]
    fn happy_path_and_duplicate_results() {
        let p = new_payout(false);
        assert_eq!(p.status, PayoutStatus::Pending);
        assert_eq!(p.originator_conversation_id(), p.id.as_str());
        assert!(p.next_check_at.is_some(), "a pending payout is watched for a lost job");
        let sent = step(&p, &accepted());
        assert_eq!(sent.status, PayoutStatus::Sent);
        assert_eq!(sent.conversation_id.as_deref(), Some("AG_1"));
        assert_eq!(sent.deadline_at, Some(t0() + PayoutTimings::default().deadline()));
        let done = step(&sent, &result(&p, "0", Some(2500), Some("TKL632NMUA")));
        assert_eq!(done.status, PayoutStatus::Completed);
        assert_eq!(done.mpesa_receipt.as_deref(), Some("TKL632NMUA"));
        assert_eq!(done.recipient_name.as_deref(), Some("254712345678 - JANE DOE"));
        assert_eq!(done.next_check_at, None);
        let sources: Vec<_> = done.history.iter().map(|h| h.source).collect();
        assert_eq!(
            sources,
            [PayoutSource::Api, PayoutSource::Daraja, PayoutSource::Callback]
        );
        assert_eq!(
            ignored(&done, &result(&p, "0", Some(2500), Some("TKL632NMUA"))),
            PayoutIgnored::Duplicate
        );
        assert!(ignored(&done, &result(&p, "0", Some(2500), Some("OTHER"))).is_anomaly());
        assert!(ignored(&done, &result(&p, "1", None, None)).is_anomaly());
        // The acceptance arriving after the result changes nothing.
        assert!(matches!(
            ignored(&done, &PayoutEvent::AlreadySubmitted),
            PayoutIgnored::NotApplicable { .. }
        ));
    }

    #[test]
    fn failure_results_map_through_the_table() {
        let p = new_payout(false);
        let sent = step(&p, &accepted());
        let failed = step(&sent, &result(&p, "2001", None, None));
        assert_eq!(failed.status, PayoutStatus::Failed);
        assert_eq!(
            failed.failure_reason,
            Some(PayoutFailureReason::InitiatorCredentialsInvalid)
        );
        assert_eq!(failed.result.as_ref().unwrap().code.as_str(), "2001");
        assert_eq!(
            ignored(&failed, &result(&p, "2001", None, None)),
            PayoutIgnored::Duplicate
        );
        let late_money = ignored(&failed, &result(&p, "0", Some(2500), Some("R1")));
        assert!(late_money.is_anomaly(), "money after a failure must be flagged");
    }

    #[test]
    fn results_that_do_not_match_are_anomalies() {
        let p = new_payout(false);
        let sent = step(&p, &accepted());
        assert!(matches!(
            ignored(&sent, &result(&p, "0", Some(2499), Some("R"))),
            PayoutIgnored::AmountMismatch { .. }
        ));
        assert!(matches!(
            ignored(&sent, &result(&p, "0", None, Some("R"))),
            PayoutIgnored::AmountMismatch { .. }
        ));
        assert_eq!(
            ignored(&sent, &result(&p, "0", Some(2500), None)),
            PayoutIgnored::MissingReceipt
        );
        let mut other = result(&p, "0", Some(2500), Some("R"));
        if let PayoutEvent::Result(r) = &mut other {
            r.originator_conversation_id = Some("po_other".into());
        }
        assert!(matches!(
            ignored(&sent, &other),
            PayoutIgnored::ConversationMismatch { .. }
        ));
        let mut other_conversation = result(&p, "0", Some(2500), Some("R"));
        if let PayoutEvent::Result(r) = &mut other_conversation {
            r.conversation_id = Some("AG_2".into());
        }
        assert!(matches!(
            ignored(&sent, &other_conversation),
            PayoutIgnored::ConversationMismatch { .. }
        ));
    }

    #[test]
    fn a_duplicate_refusal_means_sent_and_a_result_can_settle_a_pending_payout() {
        let p = new_payout(false);
        let sent = step(&p, &PayoutEvent::AlreadySubmitted);
        assert_eq!(sent.status, PayoutStatus::Sent);
        assert_eq!(sent.conversation_id, None);
        // The result names the conversation; we keep it.
        let done = step(&sent, &result(&p, "0", Some(2500), Some("R1")));
        assert_eq!(done.conversation_id.as_deref(), Some("AG_1"));
        // A crash lost the acceptance entirely: the result still settles the pending payout.
        let done = step(&p, &result(&p, "0", Some(2500), Some("R1")));
        assert_eq!(done.status, PayoutStatus::Completed);
    }

    #[test]
    fn a_queue_timeout_is_never_a_failure() {
        let p = new_payout(false);
        let sent = step(&p, &accepted());
        let unknown = step(&sent, &PayoutEvent::QueueTimeout);
        assert_eq!(unknown.status, PayoutStatus::Unknown);
        assert_eq!(unknown.failure_reason, None);
        assert_eq!(unknown.next_check_at, Some(t0()), "ask Transaction Status at once");
        assert_eq!(ignored(&unknown, &PayoutEvent::QueueTimeout), PayoutIgnored::Duplicate);
        let done = step(
            &unknown,
            &PayoutEvent::StatusCompleted {
                result: res("0"),
                receipt: Some("R1".into()),
                amount: Some(Amount::new(2500).unwrap()),
                recipient_name: None,
            },
        );
        assert_eq!(done.status, PayoutStatus::Completed);
        assert_eq!(done.history.last().unwrap().source, PayoutSource::Reconciliation);
        // The late result with the same receipt is a duplicate.
        assert_eq!(
            ignored(&done, &result(&p, "0", Some(2500), Some("R1"))),
            PayoutIgnored::Duplicate
        );
        let wrong_amount = PayoutEvent::StatusCompleted {
            result: res("0"),
            receipt: Some("R1".into()),
            amount: Some(Amount::new(10).unwrap()),
            recipient_name: None,
        };
        assert!(ignored(&unknown, &wrong_amount).is_anomaly());
    }

    #[test]
    fn not_found_never_fails_a_payout_and_is_raised_past_the_deadline() {
        let p = new_payout(false);
        let unknown = step(&step(&p, &accepted()), &PayoutEvent::QueueTimeout);
        let not_found = PayoutEvent::StatusNotFound { result: res("2032") };
        let timings = PayoutTimings::default();
        let deadline = unknown.deadline_at.unwrap();
        let mut q = unknown.clone();
        for at in [t0(), deadline, deadline + timings.status_interval() * 3] {
            q = apply_at(&q, &not_found, at);
            assert_eq!(
                q.status,
                PayoutStatus::Unknown,
                "2032 at {at} is recorded, never a failure"
            );
            assert_eq!(q.failure_reason, None);
        }
        assert_eq!(q.not_found_answers.len(), 3);
        assert!(q.not_found_confirmed());
        assert_eq!(
            q.history.len(),
            unknown.history.len(),
            "recording an answer is not a transition"
        );
        assert_eq!(q.unresolved_at(t0()), None, "before the deadline it is simply open");
        assert_eq!(q.unresolved_at(deadline), Some(deadline), "past it operators must look");
        // The genuine result that arrives late still settles it.
        let done = step(&q, &result(&p, "0", Some(2500), Some("TKL632NMUA")));
        assert_eq!(done.status, PayoutStatus::Completed);
        assert_eq!(done.unresolved_at(deadline), None);
    }

    #[test]
    fn a_payout_failed_as_not_found_by_an_older_release_completes_on_a_genuine_success() {
        let p = new_payout(false);
        let sent = step(&p, &accepted());
        let mut failed = sent.clone();
        failed.status = PayoutStatus::Failed;
        failed.failure_reason = Some(PayoutFailureReason::NotFoundAtDaraja);
        failed.next_check_at = None;
        let done = step(&failed, &result(&p, "0", Some(2500), Some("R1")));
        assert_eq!((done.status, done.failure_reason), (PayoutStatus::Completed, None));
        let by_status = step(
            &failed,
            &PayoutEvent::StatusCompleted {
                result: res("0"),
                receipt: Some("R1".into()),
                amount: Some(Amount::new(2500).unwrap()),
                recipient_name: None,
            },
        );
        assert_eq!(by_status.status, PayoutStatus::Completed);
        // Any other failure stays failed: a success after it is an anomaly.
        let mut refused = failed.clone();
        refused.failure_reason = Some(PayoutFailureReason::DarajaRejected);
        assert!(ignored(&refused, &result(&p, "0", Some(2500), Some("R1"))).is_anomaly());
    }

    #[test]
    fn an_unrecognised_result_code_makes_a_payout_unknown_not_failed() {
        let p = new_payout(false);
        let sent = step(&p, &accepted());
        let unknown = step(&sent, &result(&p, "4242", None, None));
        assert_eq!(unknown.status, PayoutStatus::Unknown);
        assert_eq!(unknown.failure_reason, None);
        assert_eq!(unknown.result.as_ref().unwrap().code.as_str(), "4242");
        assert_eq!(unknown.next_check_at, Some(t0()), "ask Transaction Status at once");
        assert_eq!(
            ignored(&unknown, &result(&p, "4242", None, None)),
            PayoutIgnored::Duplicate
        );
        // A documented failure code still fails it.
        let failed = step(&unknown, &result(&p, "2040", None, None));
        assert_eq!(failed.failure_reason, Some(PayoutFailureReason::RecipientNotRegistered));
    }

    #[test]
    fn approval_needs_another_principal() {
        let p = new_payout(true);
        assert_eq!(p.status, PayoutStatus::AwaitingApproval);
        assert_eq!(p.next_check_at, None, "not watched until approved");
        assert_eq!(
            ignored(&p, &PayoutEvent::Approve { by: owner() }),
            PayoutIgnored::SelfApproval
        );
        assert_eq!(
            ignored(&p, &PayoutEvent::Reject { by: owner() }),
            PayoutIgnored::SelfApproval
        );
        assert!(matches!(ignored(&p, &accepted()), PayoutIgnored::NotApplicable { .. }));
        let approved = step(&p, &PayoutEvent::Approve { by: approver() });
        assert_eq!(approved.status, PayoutStatus::Pending);
        assert_eq!(approved.approval.as_ref().unwrap().by, approver());
        assert_eq!(approved.history.last().unwrap().by, Some(approver()));
        assert!(approved.next_check_at.is_some());
        assert!(matches!(
            ignored(&approved, &PayoutEvent::Approve { by: approver() }),
            PayoutIgnored::NotApplicable { .. }
        ));
        let rejected = step(&p, &PayoutEvent::Reject { by: approver() });
        assert_eq!(rejected.status, PayoutStatus::Rejected);
        assert_eq!(rejected.approval.unwrap().decision, ApprovalDecision::Rejected);
        assert_eq!(rejected.next_check_at, None);
    }

    fn leased(p: &Payout) -> Payout {
        p.take_submission_lease("worker-a", t0(), Duration::seconds(120))
            .unwrap()
    }

    #[test]
    fn a_refusal_after_an_attempt_that_may_have_reached_daraja_is_not_a_failure() {
        let first = leased(&new_payout(false));
        let refused = PayoutEvent::DarajaRefused {
            result: res("400.002.02"),
        };
        assert_eq!(
            step(&first, &refused).status,
            PayoutStatus::Failed,
            "a first refusal is definitive"
        );
        // The first attempt's answer was lost (or we crashed): its lease runs out, a second job
        // takes one, and Daraja refuses that one. The first may have paid.
        let later = t0() + Duration::seconds(121);
        let retried = first
            .take_submission_lease("worker-b", later, Duration::seconds(120))
            .unwrap();
        let unknown = step(&retried, &refused);
        assert_eq!(unknown.status, PayoutStatus::Unknown, "the first attempt may have paid");
        assert_eq!(unknown.failure_reason, None);
        assert_eq!(unknown.submission_lease, None);
        // An attempt that provably never left does not count: the refusal is definitive.
        let unsent = first.released_unsent(t0());
        let retried = unsent
            .take_submission_lease("worker-b", t0(), Duration::seconds(120))
            .unwrap();
        assert!(!retried.earlier_attempt_may_have_paid());
        assert_eq!(step(&retried, &refused).status, PayoutStatus::Failed);
    }

    #[test]
    fn one_submission_lease_at_a_time() {
        let p = new_payout(false);
        let lease = Duration::seconds(120);
        let a = p.take_submission_lease("worker-a", t0(), lease).unwrap();
        assert_eq!(a.submit_attempts, 1);
        assert_eq!(a.history, p.history, "taking a lease is not a transition");
        assert_eq!(
            a.next_check_at,
            Some(t0() + lease),
            "the sweeper waits for the lease to end"
        );
        assert_eq!(
            a.take_submission_lease("worker-b", t0() + Duration::seconds(119), lease),
            Err(LeaseRefused::Held {
                holder: "worker-a".into(),
                until: t0() + lease
            })
        );
        // Run out (a crash): another job may take it.
        let b = a
            .take_submission_lease("worker-b", t0() + lease, lease)
            .expect("an expired lease is free");
        assert_eq!(b.submit_attempts, 2);
        // Given back early because nothing was sent: free at once.
        let released = a.released_unsent(t0());
        assert_eq!(
            (released.submission_lease.as_ref(), released.unsent_attempts),
            (None, 1)
        );
        assert!(released.take_submission_lease("worker-b", t0(), lease).is_ok());
        // Leaving `pending` clears it; only a pending payout is submitted.
        let sent = step(&a, &accepted());
        assert_eq!(sent.submission_lease, None);
        assert_eq!(
            sent.take_submission_lease("worker-b", t0(), lease),
            Err(LeaseRefused::NotPending {
                status: PayoutStatus::Sent
            })
        );
        assert!(matches!(
            new_payout(true).take_submission_lease("w", t0(), lease),
            Err(LeaseRefused::NotPending { .. })
        ));
    }

    fn any_event(p: &Payout) -> impl Strategy<Value = (PayoutEvent, i64)> {
        let codes = prop::sample::select(vec!["0", "1", "2001", "2040", "SFC_IC0003", "4242"]);
        let id = p.id.to_string();
        let event = prop_oneof![
            Just(accepted()),
            Just(PayoutEvent::AlreadySubmitted),
            Just(PayoutEvent::DarajaRefused {
                result: res("400.002.02")
            }),
            Just(PayoutEvent::QueueTimeout),
            Just(PayoutEvent::NoResult),
            Just(PayoutEvent::Approve { by: approver() }),
            Just(PayoutEvent::Approve { by: owner() }),
            Just(PayoutEvent::Reject { by: approver() }),
            Just(PayoutEvent::StatusNotFound { result: res("2032") }),
            Just(PayoutEvent::StatusDeclined { result: res("0") }),
            (
                prop::option::of(prop::sample::select(vec![2500u64, 10])),
                prop::option::of(prop::sample::select(vec!["R1", "R2"]))
            )
                .prop_map(|(amount, receipt)| PayoutEvent::StatusCompleted {
                    result: res("0"),
                    receipt: receipt.map(str::to_owned),
                    amount: amount.map(|a| Amount::new(a).unwrap()),
                    recipient_name: None,
                }),
            (
                codes,
                prop::option::of(prop::sample::select(vec![2500u64, 99])),
                prop::option::of(prop::sample::select(vec!["R1", "R2"]))
            )
                .prop_map(move |(code, amount, receipt)| PayoutEvent::Result(B2cFinalResult {
                    originator_conversation_id: Some(id.clone()),
                    conversation_id: None,
                    result: res(code),
                    receipt: receipt.map(str::to_owned),
                    amount: amount.map(|a| Amount::new(a).unwrap()),
                    recipient_name: None,
                })),
        ];
        (event, 0i64..400)
    }

    fn allowed(from: PayoutStatus, to: PayoutStatus) -> bool {
        use PayoutStatus::*;
        match from {
            AwaitingApproval => matches!(to, Pending | Rejected),
            Pending => matches!(to, Sent | Unknown | Completed | Failed),
            Sent => matches!(to, Unknown | Completed | Failed),
            Unknown => matches!(to, Completed | Failed),
            Completed | Failed | Rejected => false,
        }
    }

    proptest! {
        /// Whatever order, repetition and timing results, timeouts, Transaction Status answers and
        /// approvals arrive in: every transition is allowed; settled payouts never move; a completed
        /// payout keeps its receipt; a timeout never fails a payout; "not found" fails one only
        /// after the deadline with two spaced answers; history grows exactly with transitions.
        #[test]
        fn state_machine_invariants(requires_approval in prop::bool::ANY, seed_events in prop::collection::vec(any_event(&new_payout(false)), 0..14)) {
            let mut payout = new_payout(requires_approval);
            // Results carry the id of the payout they were generated for: rebind them to ours.
            let events: Vec<(PayoutEvent, i64)> = seed_events.into_iter().map(|(e, dt)| match e {
                PayoutEvent::Result(mut r) => { r.originator_conversation_id = Some(payout.id.to_string()); (PayoutEvent::Result(r), dt) }
                other => (other, dt),
            }).collect();
            let mut now = t0();
            for (event, dt) in &events {
                now += Duration::seconds(*dt);
                let before = payout.clone();
                if let PayoutDecision::Apply(next) = decide(&payout, event, now) {
                    let next = *next;
                    if next.status != before.status {
                        prop_assert!(allowed(before.status, next.status), "{:?} -> {:?} on {:?}", before.status, next.status, event);
                        prop_assert_eq!(next.history.len(), before.history.len() + 1);
                        prop_assert_eq!(next.history.last().unwrap().status, next.status);
                    } else {
                        prop_assert_eq!(&next.history, &before.history);
                    }
                    prop_assert_eq!(next.next_check_at.is_some(), next.status.is_open(), "{:?}", next.status);
                    if matches!(event, PayoutEvent::QueueTimeout | PayoutEvent::NoResult | PayoutEvent::StatusNotFound { .. }) {
                        prop_assert_ne!(next.status, PayoutStatus::Failed, "{:?} never fails a payout", event);
                    }
                    if let PayoutEvent::Result(r) = event {
                        if b2c_outcome(&r.result.code) == B2cOutcome::Unrecognised {
                            prop_assert_ne!(next.status, PayoutStatus::Failed, "an unrecognised code never fails a payout");
                        }
                    }
                    if next.status == PayoutStatus::Failed && before.status != PayoutStatus::Failed {
                        prop_assert!(next.failure_reason.is_some());
                    }
                    if next.status != PayoutStatus::Pending {
                        prop_assert!(next.submission_lease.is_none());
                    }
                    if next.status == PayoutStatus::Completed {
                        prop_assert_eq!(next.failure_reason, None);
                    }
                    if before.status.is_settled() {
                        prop_assert_eq!(next.status, before.status, "settled payouts never move");
                        if before.mpesa_receipt.is_some() {
                            prop_assert_eq!(&next.mpesa_receipt, &before.mpesa_receipt);
                        }
                    }
                    if matches!(event, PayoutEvent::Approve { by } | PayoutEvent::Reject { by } if by == payout.creator()) {
                        prop_assert!(false, "self approval applied");
                    }
                    payout = next;
                }
            }
        }
    }
}
