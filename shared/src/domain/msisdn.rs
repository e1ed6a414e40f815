//! Kenyan mobile numbers (MSISDN).
//!
//! People type numbers in many shapes; Daraja wants exactly `2547XXXXXXXX` or `2541XXXXXXXX`.
//! [`Msisdn`] is built only by parsing one of the accepted shapes, and its `Debug`/`Display`
//! output is masked so a number cannot leak into logs by accident.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A canonical Kenyan mobile number, `254` followed by 9 digits starting with 7 or 1.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("phone must be a Kenyan mobile number such as 0712345678, +254712345678 or 254112345678")]
pub struct InvalidMsisdn;

impl Msisdn {
    /// Accepts `07…`, `01…`, `7…`, `1…`, `2547…`, `2541…`, `+254…`, with spaces or dashes between
    /// digits. Numbers are portable between operators, so only the shape is checked.
    pub fn parse(input: &str) -> Result<Self, InvalidMsisdn> {
        let trimmed = input.trim();
        if trimmed.len() > 32 {
            return Err(InvalidMsisdn);
        }
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        // Separators may only sit between digits: "0712 345 678" or "0712-345-678".
        let mut digits = String::with_capacity(12);
        let mut previous_was_digit = false;
        for c in rest.chars() {
            match c {
                '0'..='9' => {
                    digits.push(c);
                    previous_was_digit = true;
                }
                ' ' | '-' if previous_was_digit => previous_was_digit = false,
                _ => return Err(InvalidMsisdn),
            }
        }
        if !previous_was_digit {
            return Err(InvalidMsisdn);
        }
        let subscriber = match digits.len() {
            12 if digits.starts_with("254") => &digits[3..],
            10 if !plus && digits.starts_with('0') => &digits[1..],
            9 if !plus => &digits[..],
            _ => return Err(InvalidMsisdn),
        };
        if plus && digits.len() != 12 {
            return Err(InvalidMsisdn);
        }
        if !(subscriber.starts_with('7') || subscriber.starts_with('1')) {
            return Err(InvalidMsisdn);
        }
        Ok(Msisdn(format!("254{subscriber}")))
    }

    /// The canonical 12-digit form, for Daraja requests and storage. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// First 4 and last 4 digits: `2547****5678`. The only form that may appear in logs or API output.
    pub fn masked(&self) -> String {
        mask_phone_like(&self.0)
    }
}

/// Masks any phone-like string (keeps first 4 and last 4 characters). Used for numbers that did
/// not parse too, so logs never carry a full number.
pub fn mask_phone_like(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl TryFrom<String> for Msisdn {
    type Error = InvalidMsisdn;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Msisdn::parse(&value)
    }
}

impl From<Msisdn> for String {
    fn from(m: Msisdn) -> String {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_forms_people_type() {
        let cases = [
            ("0712345678", "254712345678"),
            ("0712 345 678", "254712345678"),
            ("0712-345-678", "254712345678"),
            ("712345678", "254712345678"),
            ("254712345678", "254712345678"),
            ("+254712345678", "254712345678"),
            ("+254 712 345 678", "254712345678"),
            ("0112345678", "254112345678"),
            ("112345678", "254112345678"),
            ("254112345678", "254112345678"),
            ("+254-112-345-678", "254112345678"),
            ("  0712345678 ", "254712345678"),
        ];
        for (input, canonical) in cases {
            assert_eq!(Msisdn::parse(input).unwrap().as_str(), canonical, "{input}");
        }
    }

    #[test]
    fn refuses_other_shapes() {
        for input in [
            "",
            "0812345678",
            "254812345678",
            "+0712345678",
            "07123456789",
            "071234567",
            "2547123456789",
            "+712345678",
            "0712  345678",
            "-0712345678",
            "0712345678-",
            "0712.345.678",
            "(0712)345678",
            "00254712345678",
            "255712345678",
            "０７１２３４５６７８",
            "07123456７8",
        ] {
            assert_eq!(Msisdn::parse(input), Err(InvalidMsisdn), "{input:?}");
        }
    }

    #[test]
    fn debug_and_display_are_masked() {
        let m = Msisdn::parse("0712345678").unwrap();
        assert_eq!(m.masked(), "2547****5678");
        assert_eq!(format!("{m}"), "2547****5678");
        assert!(!format!("{m:?}").contains("254712345678"));
        assert_eq!(mask_phone_like("12345"), "*****");
    }

    proptest! {
        #[test]
        fn every_valid_subscriber_number_parses_in_every_form(prefix in prop::sample::select(vec!['7', '1']), rest in "[0-9]{8}") {
            let subscriber = format!("{prefix}{rest}");
            let canonical = format!("254{subscriber}");
            for form in [
                format!("0{subscriber}"),
                subscriber.clone(),
                canonical.clone(),
                format!("+{canonical}"),
                format!("0{} {} {}", &subscriber[..3], &subscriber[3..6], &subscriber[6..]),
            ] {
                let parsed = Msisdn::parse(&form).unwrap();
                prop_assert_eq!(parsed.as_str(), canonical.as_str());
            }
        }

        #[test]
        fn parsed_numbers_are_always_canonical(input in ".{0,20}") {
            if let Ok(m) = Msisdn::parse(&input) {
                let s = m.as_str();
                prop_assert_eq!(s.len(), 12);
                prop_assert!(s.starts_with("2547") || s.starts_with("2541"));
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit()));
                // Parsing is idempotent.
                prop_assert_eq!(Msisdn::parse(s).unwrap(), m.clone());
            }
        }
    }
}
