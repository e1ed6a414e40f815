//! The one table that maps an STK Push result code to what it means for a payment.

use serde::{Deserialize, Serialize};

use super::result_code::ResultCode;

/// Why a payment did not complete. Stable API values: integrators branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    CancelledByCustomer,
    CustomerUnreachable,
    InsufficientFunds,
    LimitExceeded,
    DuplicateTooSoon,
    SubscriberBusy,
    Expired,
    PushFailed,
    NetworkError,
    WrongPin,
    PinLocked,
    MerchantMisconfigured,
    Unknown,
    DarajaRejected,
    /// Daraja could not be reached or rate-limited us: nothing was sent.
    DarajaUnavailable,
    NoFinalResult,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::CancelledByCustomer => "cancelled_by_customer",
            FailureReason::CustomerUnreachable => "customer_unreachable",
            FailureReason::InsufficientFunds => "insufficient_funds",
            FailureReason::LimitExceeded => "limit_exceeded",
            FailureReason::DuplicateTooSoon => "duplicate_too_soon",
            FailureReason::SubscriberBusy => "subscriber_busy",
            FailureReason::Expired => "expired",
            FailureReason::PushFailed => "push_failed",
            FailureReason::NetworkError => "network_error",
            FailureReason::WrongPin => "wrong_pin",
            FailureReason::PinLocked => "pin_locked",
            FailureReason::MerchantMisconfigured => "merchant_misconfigured",
            FailureReason::Unknown => "unknown",
            FailureReason::DarajaRejected => "daraja_rejected",
            FailureReason::DarajaUnavailable => "daraja_unavailable",
            FailureReason::NoFinalResult => "no_final_result",
        }
    }
}

/// What a final STK result code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StkOutcome {
    Completed,
    Cancelled(FailureReason),
    Timeout(FailureReason),
    Failed(FailureReason),
}

/// Daraja's final STK result code → outcome. Unknown codes are failures, never successes.
pub fn stk_outcome(code: &ResultCode) -> StkOutcome {
    use FailureReason::*;
    if code.is_success() {
        return StkOutcome::Completed;
    }
    if code.as_str() == "SFC_IC0003" {
        return StkOutcome::Failed(MerchantMisconfigured);
    }
    match code.numeric() {
        Some(1032) => StkOutcome::Cancelled(CancelledByCustomer),
        Some(1037) => StkOutcome::Timeout(CustomerUnreachable),
        Some(1) => StkOutcome::Failed(InsufficientFunds),
        Some(2 | 3 | 4 | 8) => StkOutcome::Failed(LimitExceeded),
        Some(17) => StkOutcome::Failed(DuplicateTooSoon),
        Some(1001) => StkOutcome::Failed(SubscriberBusy),
        Some(1019) => StkOutcome::Failed(Expired),
        Some(1025 | 9999) => StkOutcome::Failed(PushFailed),
        Some(1036) => StkOutcome::Failed(NetworkError),
        Some(2001) => StkOutcome::Failed(WrongPin),
        Some(8006) => StkOutcome::Failed(PinLocked),
        Some(2028) => StkOutcome::Failed(MerchantMisconfigured),
        _ => StkOutcome::Failed(Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureReason::*;

    #[test]
    fn the_mapping_table() {
        let table: &[(&str, StkOutcome)] = &[
            ("0", StkOutcome::Completed),
            ("1032", StkOutcome::Cancelled(CancelledByCustomer)),
            ("1037", StkOutcome::Timeout(CustomerUnreachable)),
            ("1", StkOutcome::Failed(InsufficientFunds)),
            ("2", StkOutcome::Failed(LimitExceeded)),
            ("3", StkOutcome::Failed(LimitExceeded)),
            ("4", StkOutcome::Failed(LimitExceeded)),
            ("8", StkOutcome::Failed(LimitExceeded)),
            ("17", StkOutcome::Failed(DuplicateTooSoon)),
            ("1001", StkOutcome::Failed(SubscriberBusy)),
            ("1019", StkOutcome::Failed(Expired)),
            ("1025", StkOutcome::Failed(PushFailed)),
            ("9999", StkOutcome::Failed(PushFailed)),
            ("1036", StkOutcome::Failed(NetworkError)),
            ("2001", StkOutcome::Failed(WrongPin)),
            ("8006", StkOutcome::Failed(PinLocked)),
            ("2028", StkOutcome::Failed(MerchantMisconfigured)),
            ("SFC_IC0003", StkOutcome::Failed(MerchantMisconfigured)),
            ("5", StkOutcome::Failed(Unknown)),
            ("1033", StkOutcome::Failed(Unknown)),
            ("SFC_IC9999", StkOutcome::Failed(Unknown)),
            ("-1", StkOutcome::Failed(Unknown)),
        ];
        for (code, expected) in table {
            assert_eq!(stk_outcome(&ResultCode::new(*code)), *expected, "code {code}");
        }
    }

    #[test]
    fn reasons_serialise_as_their_stable_names() {
        for reason in [
            CancelledByCustomer,
            NoFinalResult,
            DarajaRejected,
            MerchantMisconfigured,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(reason.as_str())
            );
        }
    }
}
