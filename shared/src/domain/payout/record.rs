//! The payout record: what a merchant asked for, what we learned of it since, and its timings.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Approval, PayoutHistoryEntry, PayoutKind, PayoutSource, PayoutStatus, SubmissionLease};
use crate::domain::amount::Amount;
use crate::domain::b2c_outcome::PayoutFailureReason;
use crate::domain::client::ClientId;
use crate::domain::ids::PayoutId;
use crate::domain::msisdn::Msisdn;
use crate::domain::payment::DarajaResult;
use crate::domain::text::{Metadata, Occasion, Remarks};

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

    /// The B2C `OriginatorConversationID`: the payout id itself, the same on every submission.
    pub fn originator_conversation_id(&self) -> &str {
        self.id.as_str()
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

    pub(super) fn moved_to(
        &self,
        status: PayoutStatus,
        source: PayoutSource,
        by: Option<ClientId>,
        now: DateTime<Utc>,
    ) -> Payout {
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
    pub(super) fn submitted(&self, now: DateTime<Utc>) -> Payout {
        let mut next = self.moved_to(PayoutStatus::Sent, PayoutSource::Daraja, None, now);
        next.sent_at = Some(now);
        next.deadline_at = Some(now + self.timings.deadline());
        next.next_check_at = Some(now + self.timings.result_wait());
        next
    }

    /// Money may have moved: ask Transaction Status at the next sweep.
    pub(super) fn became_unknown(&self, source: PayoutSource, now: DateTime<Utc>) -> Payout {
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
