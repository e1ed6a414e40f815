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
#[path = "payout_tests.rs"]
mod tests;
