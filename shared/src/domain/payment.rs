//! A customer payment by STK Push and the state machine that moves it.
//!
//! `pending` (recorded, Daraja not yet answered) → `sent` (prompt on the phone) → one of
//! `completed`, `failed`, `cancelled`, `timeout`. A push whose answer was lost after it may have
//! been delivered (HTTP 503/408, a timeout, a reset, an unreadable answer) is `unknown`: open, and
//! settled by its callback (whose path token names the payment) or by the deadline. A verified
//! success for a payment closed for a transport reason (`timeout`, or `failed` with
//! `daraja_unavailable`) still completes it, flagged `late`: a customer who paid is never shown
//! as unpaid. [`decide`] is the only place transitions are chosen; it is pure, so storage only has
//! to enforce "from the version I read".
//!
//! Layout: this file (status, source, history), `payment/record.rs` ([`Payment`], its timings),
//! `payment/decide.rs` (events and the state machine, with its property tests).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod decide;
mod record;

pub use decide::{decide, Decision, Ignored, PaymentEvent, StkFinalResult};
pub use record::{DarajaResult, NewPayment, Payment, PaymentTimings};

// In this top-level file, not in `payment/`: `shared/tests/template.rs` looks for the alarms'
// dimension values (`Status=completed`, from `as_str`) in `shared/src/domain/*.rs` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Sent,
    /// The push may have reached the phone but Daraja's answer was lost: no CheckoutRequestID,
    /// so only the callback (or the deadline) can settle it. Open.
    Unknown,
    Completed,
    Failed,
    Cancelled,
    Timeout,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Pending,
        PaymentStatus::Sent,
        PaymentStatus::Unknown,
        PaymentStatus::Completed,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
        PaymentStatus::Timeout,
    ];

    /// Open payments still wait for Daraja's final answer.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PaymentStatus::Pending | PaymentStatus::Sent | PaymentStatus::Unknown
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Sent => "sent",
            PaymentStatus::Unknown => "unknown",
            PaymentStatus::Completed => "completed",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Timeout => "timeout",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        PaymentStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// Who caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    Daraja,
    Callback,
    Reconciliation,
    /// The payment's C2B echo (same shortcode, reference and amount), verified with Daraja.
    C2bEcho,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: PaymentStatus,
    pub at: DateTime<Utc>,
    pub source: Source,
}
