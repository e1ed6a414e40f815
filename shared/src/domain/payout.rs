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
//!
//! Layout: this file (status, kind, source, history), and in `payout/`: `record.rs` ([`Payout`],
//! its timings), `approval.rs`, `lease.rs` (the submission lease), `decide.rs` (events and the
//! state machine), `result.rs` (interpreting a B2C result), `tests.rs` (all of them, with the
//! state machine's property tests).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::ClientId;

mod approval;
mod decide;
mod lease;
mod record;
mod result;

pub use approval::{Approval, ApprovalDecision};
pub use decide::{decide, PayoutDecision, PayoutEvent, PayoutIgnored};
pub use lease::{LeaseRefused, SubmissionLease};
pub use record::{NewPayout, Payout, PayoutTimings};
pub use result::B2cFinalResult;

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

#[cfg(test)]
mod tests;
