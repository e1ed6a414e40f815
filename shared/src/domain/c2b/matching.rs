//! What a confirmation did to the expected payment of its account number.

use serde::{Deserialize, Serialize};

use crate::domain::expected_payment::ExpectedStatus;
use crate::domain::ids::ExpectedPaymentId;

/// Why a confirmation settled no expected payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// No BillRefNumber, or one that is not an account number.
    NoAccountNumber,
    /// No expected payment for this account number on this shortcode.
    UnknownAccount,
    /// The account's expected payment expired before the payment was received.
    Expired,
    /// The amount is fractional or unreadable: never applied to what is owed.
    AmountAnomaly,
    /// Not yet confirmed with Daraja: applied once it is (see [`crate::domain::c2b_verification`]).
    Unverified,
    /// Daraja did not confirm it: applied to nothing.
    VerificationFailed,
}

/// What a confirmation did to the expected payment of its account number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MatchOutcome {
    Matched {
        expected_payment_id: ExpectedPaymentId,
        /// The expected payment's status right after this payment.
        resulting_status: ExpectedStatus,
        amount_paid_after: u64,
    },
    Unmatched {
        reason: UnmatchedReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_payment_id: Option<ExpectedPaymentId>,
    },
}

impl MatchOutcome {
    pub fn status(&self) -> &'static str {
        match self {
            MatchOutcome::Matched { .. } => "matched",
            MatchOutcome::Unmatched { .. } => "unmatched",
        }
    }
}
