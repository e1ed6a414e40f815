//! C2B: payments customers start themselves on a paybill or till, and the rules a business
//! applies to them before they complete.
//!
//! - [`Shortcode`] and [`AccountNumber`] can only be built by parsing. Account numbers are
//!   matched case-insensitively: they are stored trimmed and upper-cased.
//! - [`C2bRules`] is what a business configures per shortcode; [`CompiledRules`] is the same with
//!   the account pattern compiled (bounded size), built once per cache fill.
//! - [`screen`] and [`check_expected`] are the validation decision: pure, so the handler only does
//!   the single lookup in between.
//! - [`C2bPayment`] is a confirmation as recorded (exactly once per receipt).
//!
//! Layout: this file (shortcode, account number), and in `c2b/`: `rules.rs` (a business's rules),
//! `validation.rs` (the decision), `registration.rs` (a shortcode's configuration), `payment.rs`
//! (the recorded confirmation), `matching.rs` (what it did to an expected payment).

use std::fmt;

use serde::{Deserialize, Serialize};

mod matching;
mod payment;
mod registration;
mod rules;
mod validation;

pub use matching::{MatchOutcome, UnmatchedReason};
pub use payment::{amount_anomaly, C2bKind, C2bPayment};
pub use registration::{C2bVersion, DarajaRegistration, RegistrationStatus, ResponseType, ShortcodeConfig};
pub use rules::{normalise_name, C2bRules, CompiledRules, RulesError};
pub use validation::{check_expected, screen, DefaultDecision, Rejection, Screening, ValidationInput, Verdict};

/// A paybill or till (store) number: 5 to 7 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shortcode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shortcode must be 5 to 7 digits")]
pub struct InvalidShortcode;

impl Shortcode {
    pub fn parse(value: &str) -> Result<Shortcode, InvalidShortcode> {
        let ok = (5..=7).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Shortcode(value.to_owned())).ok_or(InvalidShortcode)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Shortcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Shortcode {
    type Error = InvalidShortcode;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Shortcode::parse(&value)
    }
}

impl From<Shortcode> for String {
    fn from(s: Shortcode) -> String {
        s.0
    }
}

/// The account number a customer types (Daraja `BillRefNumber`): an invoice, an order, a meter.
/// 1-20 characters of letters, digits, space and `- _ . /`, stored trimmed and upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccountNumber {
    #[error("must be 1 to {max} characters", max = AccountNumber::MAX_CHARS)]
    Length,
    #[error("may contain only letters, digits, spaces and - _ . /")]
    Characters,
}

impl AccountNumber {
    pub const MAX_CHARS: usize = 20;

    pub fn parse(value: &str) -> Result<AccountNumber, InvalidAccountNumber> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > Self::MAX_CHARS {
            return Err(InvalidAccountNumber::Length);
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '/'))
        {
            return Err(InvalidAccountNumber::Characters);
        }
        Ok(AccountNumber(trimmed.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountNumber {
    type Error = InvalidAccountNumber;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        AccountNumber::parse(&value)
    }
}

impl From<AccountNumber> for String {
    fn from(a: AccountNumber) -> String {
        a.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcodes_and_account_numbers_parse() {
        assert!(Shortcode::parse("600984").is_ok());
        assert!(Shortcode::parse("1743790").is_ok());
        for bad in ["", "1234", "12345678", "60098a", " 600984", "600#84"] {
            assert!(Shortcode::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(AccountNumber::parse("  inv-2231 ").unwrap().as_str(), "INV-2231");
        assert_eq!(
            AccountNumber::parse("Meter 12/A.b_c").unwrap().as_str(),
            "METER 12/A.B_C"
        );
        assert_eq!(AccountNumber::parse(""), Err(InvalidAccountNumber::Length));
        assert_eq!(AccountNumber::parse("   "), Err(InvalidAccountNumber::Length));
        assert_eq!(AccountNumber::parse(&"1".repeat(21)), Err(InvalidAccountNumber::Length));
        assert_eq!(AccountNumber::parse("INV#1"), Err(InvalidAccountNumber::Characters));
        assert_eq!(AccountNumber::parse("café"), Err(InvalidAccountNumber::Characters));
    }
}
