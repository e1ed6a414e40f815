//! Exact decimal shillings for the balances Daraja reports (`10116.0`, `-110.0`, `"900000.00"`).
//!
//! Payment amounts are whole shillings ([`crate::domain::Amount`]); balances have cents and may
//! be negative. Parsed from the literal text, never through `f64`.

use std::fmt;

use serde::{Serialize, Serializer};

/// A signed amount of Kenyan shillings, exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KesDecimal {
    cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number")]
    Malformed,
    #[error("more precise than a cent")]
    SubCent,
    #[error("too large")]
    TooLarge,
}

/// More than any M-Pesa account holds; keeps the arithmetic far from `i64` overflow.
const MAX_WHOLE_DIGITS: usize = 15;

impl KesDecimal {
    pub const fn from_cents(cents: i64) -> KesDecimal {
        KesDecimal { cents }
    }

    pub const fn cents(self) -> i64 {
        self.cents
    }

    /// Parses the literal text of a JSON number or string: `100`, `-110.0`, `"900000.00"`.
    /// Digits past the cents must be zeros; exponents, signs other than a leading `-`, and
    /// thousands separators are refused.
    pub fn parse_literal(raw: &str) -> Result<KesDecimal, MoneyError> {
        let text = raw.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text)
            .trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (unsigned.contains('.') && fraction.is_empty()) {
            return Err(MoneyError::Malformed);
        }
        let significant = whole.trim_start_matches('0');
        if significant.len() > MAX_WHOLE_DIGITS {
            return Err(MoneyError::TooLarge);
        }
        let (cents_text, rest) = fraction.split_at(fraction.len().min(2));
        if rest.bytes().any(|b| b != b'0') {
            return Err(MoneyError::SubCent);
        }
        let whole_value: i64 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| MoneyError::Malformed)?
        };
        let mut cents_value: i64 = if cents_text.is_empty() {
            0
        } else {
            cents_text.parse().map_err(|_| MoneyError::Malformed)?
        };
        if cents_text.len() == 1 {
            cents_value *= 10;
        }
        let magnitude = whole_value * 100 + cents_value;
        Ok(KesDecimal {
            cents: if negative { -magnitude } else { magnitude },
        })
    }
}

impl fmt::Display for KesDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Serialised as its exact decimal text, `"-110.00"`.
impl Serialize for KesDecimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_guides_balances_exactly() {
        let cases = [
            ("10116.0", 1_011_600),
            ("900000.0", 90_000_000),
            ("-110.0", -11_000),
            ("\"900000.00\"", 90_000_000),
            ("0", 0),
            ("-0.0", 0),
            ("12.5", 1250),
            ("12.05", 1205),
            ("12.050", 1205),
            (" 7 ", 700),
        ];
        for (text, cents) in cases {
            assert_eq!(
                KesDecimal::parse_literal(text),
                Ok(KesDecimal::from_cents(cents)),
                "{text}"
            );
        }
        assert_eq!(KesDecimal::parse_literal("-110.0").unwrap().to_string(), "-110.00");
        assert_eq!(KesDecimal::from_cents(5).to_string(), "0.05");
        assert_eq!(
            serde_json::to_string(&KesDecimal::from_cents(-11_000)).unwrap(),
            "\"-110.00\""
        );
    }

    #[test]
    fn refuses_what_is_not_an_exact_amount() {
        for text in [
            "", "\"\"", "abc", "1e3", "1.2.3", "+5", "--5", "1,000.00", "1.", ".5", "null", "- 5",
        ] {
            assert_eq!(KesDecimal::parse_literal(text), Err(MoneyError::Malformed), "{text}");
        }
        assert_eq!(KesDecimal::parse_literal("1.005"), Err(MoneyError::SubCent));
        assert_eq!(KesDecimal::parse_literal("9999999999999999"), Err(MoneyError::TooLarge));
        assert!(KesDecimal::parse_literal("999999999999999.99").is_ok());
        assert!(KesDecimal::parse_literal("-999999999999999.99").is_ok());
    }

    proptest! {
        #[test]
        fn display_round_trips(cents in -100_000_000_000_000_000i64..100_000_000_000_000_000i64) {
            let value = KesDecimal::from_cents(cents);
            prop_assert_eq!(KesDecimal::parse_literal(&value.to_string()), Ok(value));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = KesDecimal::parse_literal(&text);
        }
    }
}
