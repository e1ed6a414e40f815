//! Money: whole Kenyan shillings, integers only.
//!
//! M-Pesa moves whole shillings. Every amount in the system is an [`Amount`], which can only be
//! built by parsing, so a fractional, negative or out-of-range value cannot exist past the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A positive whole number of Kenyan shillings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Amount(u64);

/// The largest amount any M-Pesa product moves in one transaction.
pub const MAX_TRANSACTION_KES: u64 = 250_000;

/// Inclusive bounds for one product (STK Push 1..=250 000, B2C 10..=250 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountLimits {
    pub min: u64,
    pub max: u64,
}

impl AmountLimits {
    pub const STK_PUSH: AmountLimits = AmountLimits {
        min: 1,
        max: MAX_TRANSACTION_KES,
    };
    pub const B2C: AmountLimits = AmountLimits {
        min: 10,
        max: MAX_TRANSACTION_KES,
    };

    pub fn contains(&self, amount: Amount) -> bool {
        (self.min..=self.max).contains(&amount.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a JSON integer, not a string or other type")]
    NotANumber,
    #[error("amount must be a whole number of shillings (no decimal point or exponent)")]
    NotWhole,
    #[error("amount must be positive")]
    NotPositive,
    #[error("amount must be between {min} and {max} KES")]
    OutOfRange { min: u64, max: u64 },
}

impl Amount {
    /// Builds an amount from a count of shillings; zero is not an amount.
    pub fn new(shillings: u64) -> Result<Self, AmountError> {
        if shillings == 0 {
            return Err(AmountError::NotPositive);
        }
        Ok(Amount(shillings))
    }

    pub fn shillings(self) -> u64 {
        self.0
    }

    /// Parses the literal text of a JSON value from *our* API: it must be a JSON integer
    /// (`1500`), never `"1500"`, `1500.0` or `1.5e3`, and lie within `limits`.
    pub fn parse_api_literal(raw_json: &str, limits: AmountLimits) -> Result<Self, AmountError> {
        let text = raw_json.trim();
        let digits = match text.strip_prefix('-') {
            Some(rest) if rest.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty() => {
                return Err(AmountError::NotPositive);
            }
            Some(_) => return Err(classify_non_integer(text)),
            None => text,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(classify_non_integer(digits));
        }
        let value = parse_bounded_digits(digits).ok_or(AmountError::OutOfRange {
            min: limits.min,
            max: limits.max,
        })?;
        let amount = Amount::new(value)?;
        if !limits.contains(amount) {
            return Err(AmountError::OutOfRange {
                min: limits.min,
                max: limits.max,
            });
        }
        Ok(amount)
    }

    /// Parses an amount as *Safaricom* sends it: a JSON number or string such as `100`, `100.0`,
    /// `"500.00"`. Exact decimal parsing (never through a float): a non-zero fractional part is
    /// reported as [`DarajaAmountError::Fractional`] so the caller can record an anomaly.
    pub fn parse_daraja_literal(raw_json: &str) -> Result<Self, DarajaAmountError> {
        let text = raw_json.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text)
            .trim();
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DarajaAmountError::Malformed);
        }
        if fraction.bytes().any(|b| b != b'0') {
            return Err(DarajaAmountError::Fractional);
        }
        let value = parse_bounded_digits(whole).ok_or(DarajaAmountError::Malformed)?;
        Amount::new(value).map_err(|_| DarajaAmountError::NotPositive)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DarajaAmountError {
    #[error("amount is not a decimal number")]
    Malformed,
    #[error("amount has a fractional part")]
    Fractional,
    #[error("amount is not positive")]
    NotPositive,
}

fn classify_non_integer(text: &str) -> AmountError {
    let looks_numeric = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        AmountError::NotWhole
    } else {
        AmountError::NotANumber
    }
}

/// Parses ASCII digits; `None` when the value exceeds what any amount could be (avoids overflow).
fn parse_bounded_digits(digits: &str) -> Option<u64> {
    let significant = digits.trim_start_matches('0');
    if significant.len() > 15 {
        return None;
    }
    if significant.is_empty() {
        return Some(0);
    }
    significant.parse().ok()
}

impl TryFrom<u64> for Amount {
    type Error = AmountError;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Amount::new(value)
    }
}

impl From<Amount> for u64 {
    fn from(a: Amount) -> u64 {
        a.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STK: AmountLimits = AmountLimits::STK_PUSH;

    #[test]
    fn api_accepts_json_integers_in_range() {
        assert_eq!(Amount::parse_api_literal("1500", STK).unwrap().shillings(), 1500);
        assert_eq!(Amount::parse_api_literal("1", STK).unwrap().shillings(), 1);
        assert_eq!(Amount::parse_api_literal("250000", STK).unwrap().shillings(), 250_000);
    }

    #[test]
    fn api_rejects_fractions_strings_negatives_and_out_of_range() {
        assert_eq!(Amount::parse_api_literal("1500.5", STK), Err(AmountError::NotWhole));
        assert_eq!(Amount::parse_api_literal("1500.0", STK), Err(AmountError::NotWhole));
        assert_eq!(Amount::parse_api_literal("1.5e3", STK), Err(AmountError::NotWhole));
        assert_eq!(Amount::parse_api_literal("\"1500\"", STK), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse_api_literal("true", STK), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse_api_literal("null", STK), Err(AmountError::NotANumber));
        assert_eq!(Amount::parse_api_literal("-5", STK), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse_api_literal("-5.5", STK), Err(AmountError::NotWhole));
        assert_eq!(Amount::parse_api_literal("0", STK), Err(AmountError::NotPositive));
        assert_eq!(
            Amount::parse_api_literal("250001", STK),
            Err(AmountError::OutOfRange { min: 1, max: 250_000 })
        );
        assert_eq!(
            Amount::parse_api_literal("99999999999999999999999999", STK),
            Err(AmountError::OutOfRange { min: 1, max: 250_000 })
        );
        assert_eq!(
            Amount::parse_api_literal("9", AmountLimits::B2C),
            Err(AmountError::OutOfRange { min: 10, max: 250_000 })
        );
    }

    #[test]
    fn daraja_amounts_parse_exactly() {
        for text in ["100", "100.0", "100.00", "\"100\"", "\"100.00\"", " 100 "] {
            assert_eq!(Amount::parse_daraja_literal(text).unwrap().shillings(), 100, "{text}");
        }
        assert_eq!(
            Amount::parse_daraja_literal("100.50"),
            Err(DarajaAmountError::Fractional)
        );
        assert_eq!(
            Amount::parse_daraja_literal("\"500.01\""),
            Err(DarajaAmountError::Fractional)
        );
        assert_eq!(Amount::parse_daraja_literal("\"\""), Err(DarajaAmountError::Malformed));
        assert_eq!(Amount::parse_daraja_literal("null"), Err(DarajaAmountError::Malformed));
        assert_eq!(Amount::parse_daraja_literal("1e2"), Err(DarajaAmountError::Malformed));
        assert_eq!(Amount::parse_daraja_literal("-100"), Err(DarajaAmountError::Malformed));
        assert_eq!(
            Amount::parse_daraja_literal("0.00"),
            Err(DarajaAmountError::NotPositive)
        );
    }

    proptest! {
        #[test]
        fn every_integer_in_range_round_trips(n in 1u64..=250_000) {
            let parsed = Amount::parse_api_literal(&n.to_string(), STK).unwrap();
            prop_assert_eq!(parsed.shillings(), n);
            prop_assert_eq!(Amount::parse_daraja_literal(&format!("{n}.00")).unwrap(), parsed);
            prop_assert_eq!(Amount::parse_daraja_literal(&format!("\"{n}\"")).unwrap(), parsed);
        }

        #[test]
        fn integers_above_the_limit_are_refused(n in 250_001u64..u64::MAX) {
            let refused = matches!(Amount::parse_api_literal(&n.to_string(), STK), Err(AmountError::OutOfRange { .. }));
            prop_assert!(refused);
        }

        #[test]
        fn any_non_zero_fraction_is_refused(n in 0u64..=250_000, frac in 1u32..100) {
            let text = format!("{n}.{frac:02}");
            prop_assert_eq!(Amount::parse_api_literal(&text, STK), Err(AmountError::NotWhole));
            prop_assert_eq!(Amount::parse_daraja_literal(&text), Err(DarajaAmountError::Fractional));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,40}") {
            let _ = Amount::parse_api_literal(&text, STK);
            let _ = Amount::parse_daraja_literal(&text);
        }
    }
}
