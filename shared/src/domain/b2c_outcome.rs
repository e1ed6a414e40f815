//! The one table that maps a B2C result code to what it means for a payout.

use serde::{Deserialize, Serialize};

use super::result_code::ResultCode;

/// Why a payout did not complete. Stable API values: integrators branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutFailureReason {
    /// 1: the B2C utility account cannot cover the payout (top up the float).
    InsufficientFloat,
    /// 2, 3, 4, 8: an M-Pesa limit rule (below minimum, above maximum, daily limit, maximum balance).
    LimitExceeded,
    /// 11, 2006: an account in the transaction is not active.
    AccountInactive,
    /// 21: the initiator lacks the permission for this command.
    InitiatorNotPermitted,
    /// 2001: the initiator name or SecurityCredential is wrong (our configuration).
    InitiatorCredentialsInvalid,
    /// 2028: the request is not permitted for this shortcode/product.
    NotPermitted,
    /// 2040: the recipient is not a registered M-Pesa customer.
    RecipientNotRegistered,
    /// 8006: the initiator is locked after repeated credential failures.
    InitiatorLocked,
    /// SFC_IC0003: the recipient is not on M-Pesa.
    RecipientInvalid,
    /// Any other result code (kept verbatim in `result`). Older releases failed payouts with it;
    /// an unrecognised code now makes a payout `unknown` instead ([`B2cOutcome::Unrecognised`]).
    Unknown,
    /// Daraja refused the request synchronously (e.g. `400.002.02`): nothing was sent.
    DarajaRejected,
    /// Transaction Status said, repeatedly and after the deadline, that it has no such payout.
    NotFoundAtDaraja,
    /// Transaction Status reported the payout as declined, cancelled or expired.
    DeclinedAtDaraja,
}

/// Who has to act on a failure: the merchant's operators (configuration, float), the recipient,
/// or nobody can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    /// Our configuration or float: never the customer's fault; alarmed.
    Operator,
    /// Something about the recipient's M-Pesa account.
    Recipient,
    Unknown,
}

impl PayoutFailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutFailureReason::InsufficientFloat => "insufficient_float",
            PayoutFailureReason::LimitExceeded => "limit_exceeded",
            PayoutFailureReason::AccountInactive => "account_inactive",
            PayoutFailureReason::InitiatorNotPermitted => "initiator_not_permitted",
            PayoutFailureReason::InitiatorCredentialsInvalid => "initiator_credentials_invalid",
            PayoutFailureReason::NotPermitted => "not_permitted",
            PayoutFailureReason::RecipientNotRegistered => "recipient_not_registered",
            PayoutFailureReason::InitiatorLocked => "initiator_locked",
            PayoutFailureReason::RecipientInvalid => "recipient_invalid",
            PayoutFailureReason::Unknown => "unknown",
            PayoutFailureReason::DarajaRejected => "daraja_rejected",
            PayoutFailureReason::NotFoundAtDaraja => "not_found_at_daraja",
            PayoutFailureReason::DeclinedAtDaraja => "declined_at_daraja",
        }
    }

    pub fn category(self) -> FailureCategory {
        use PayoutFailureReason::*;
        match self {
            InsufficientFloat
            | InitiatorNotPermitted
            | InitiatorCredentialsInvalid
            | NotPermitted
            | InitiatorLocked
            | DarajaRejected => FailureCategory::Operator,
            LimitExceeded | RecipientNotRegistered | RecipientInvalid => FailureCategory::Recipient,
            AccountInactive | Unknown | NotFoundAtDaraja | DeclinedAtDaraja => FailureCategory::Unknown,
        }
    }
}

/// What a final B2C result code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B2cOutcome {
    Completed,
    Failed(PayoutFailureReason),
    /// A code we do not know: never a success, and not proof of failure either (money may have
    /// moved). The payout becomes `unknown`, operators are alarmed, Transaction Status decides.
    Unrecognised,
}

/// Daraja's final B2C result code → outcome. Only the documented failure codes fail a payout.
pub fn b2c_outcome(code: &ResultCode) -> B2cOutcome {
    use PayoutFailureReason::*;
    if code.is_success() {
        return B2cOutcome::Completed;
    }
    if code.as_str().eq_ignore_ascii_case("SFC_IC0003") {
        return B2cOutcome::Failed(RecipientInvalid);
    }
    B2cOutcome::Failed(match code.numeric() {
        Some(1) => InsufficientFloat,
        Some(2 | 3 | 4 | 8) => LimitExceeded,
        Some(11 | 2006) => AccountInactive,
        Some(21) => InitiatorNotPermitted,
        Some(2001) => InitiatorCredentialsInvalid,
        Some(2028) => NotPermitted,
        Some(2040) => RecipientNotRegistered,
        Some(8006) => InitiatorLocked,
        _ => return B2cOutcome::Unrecognised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use B2cOutcome::{Completed, Failed, Unrecognised};
    use PayoutFailureReason::*;

    #[test]
    fn the_failure_reason_table() {
        let table: &[(&str, B2cOutcome)] = &[
            ("0", Completed),
            ("00", Completed),
            ("1", Failed(InsufficientFloat)),
            ("2", Failed(LimitExceeded)),
            ("3", Failed(LimitExceeded)),
            ("4", Failed(LimitExceeded)),
            ("8", Failed(LimitExceeded)),
            ("11", Failed(AccountInactive)),
            ("2006", Failed(AccountInactive)),
            ("21", Failed(InitiatorNotPermitted)),
            ("2001", Failed(InitiatorCredentialsInvalid)),
            ("2028", Failed(NotPermitted)),
            ("2040", Failed(RecipientNotRegistered)),
            ("8006", Failed(InitiatorLocked)),
            ("SFC_IC0003", Failed(RecipientInvalid)),
            ("5", Unrecognised),
            ("17", Unrecognised),
            ("1032", Unrecognised),
            ("1037", Unrecognised),
            ("2032", Unrecognised),
            ("SFC_IC9999", Unrecognised),
            ("-1", Unrecognised),
        ];
        for (code, expected) in table {
            assert_eq!(b2c_outcome(&ResultCode::new(*code)), *expected, "code {code}");
        }
    }

    #[test]
    fn credential_and_float_problems_are_the_operators_never_the_recipients() {
        for reason in [
            InitiatorCredentialsInvalid,
            InitiatorLocked,
            InitiatorNotPermitted,
            InsufficientFloat,
        ] {
            assert_eq!(reason.category(), FailureCategory::Operator, "{reason:?}");
        }
        for reason in [RecipientInvalid, RecipientNotRegistered, LimitExceeded] {
            assert_eq!(reason.category(), FailureCategory::Recipient, "{reason:?}");
        }
    }

    #[test]
    fn reasons_serialise_as_their_stable_names() {
        for reason in [
            InsufficientFloat,
            LimitExceeded,
            AccountInactive,
            InitiatorNotPermitted,
            InitiatorCredentialsInvalid,
            NotPermitted,
            RecipientNotRegistered,
            InitiatorLocked,
            RecipientInvalid,
            Unknown,
            DarajaRejected,
            NotFoundAtDaraja,
            DeclinedAtDaraja,
        ] {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(reason.as_str())
            );
        }
    }
}
