//! Telling a customer what is wrong with the phone number they typed.
//!
//! [`Msisdn::parse`] only says yes or no; the page needs to say why, in words that lead to a
//! number that parses. [`phone_problem`] walks the same steps as the parser and names the first
//! one that fails, so it finds a problem exactly when the parser refuses (proptests below hold
//! the two together). `assets/pay.js` ports it line for line to check before posting.

use crate::domain::Msisdn;

const COUNTRY_CODE: &str = "254";
/// Digits of each accepted form: `2547XXXXXXXX`, `07XXXXXXXX`, `7XXXXXXXX`.
const INTERNATIONAL_DIGITS: usize = 12;
const LOCAL_DIGITS: usize = 10;
const SUBSCRIBER_DIGITS: usize = 9;
/// A local number has at most 10 digits, so a longer one that is not Kenya's is another
/// country's international form.
const FOREIGN_DIGITS_FROM: usize = LOCAL_DIGITS + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneProblem {
    Empty,
    /// Letters or symbols, or a space or dash that is not between two digits.
    NotDigits,
    TooShort,
    TooLong,
    /// Another country's code, e.g. `+255...`.
    NotKenyan,
    /// Does not start with 7 or 1 after the prefix (a landline or a typo).
    NotMobile,
}

impl PhoneProblem {
    pub const ALL: [PhoneProblem; 6] = [
        PhoneProblem::Empty,
        PhoneProblem::NotDigits,
        PhoneProblem::TooShort,
        PhoneProblem::TooLong,
        PhoneProblem::NotKenyan,
        PhoneProblem::NotMobile,
    ];

    /// The key of the message tables in `pay.js`.
    pub fn code(self) -> &'static str {
        match self {
            PhoneProblem::Empty => "empty",
            PhoneProblem::NotDigits => "not_digits",
            PhoneProblem::TooShort => "too_short",
            PhoneProblem::TooLong => "too_long",
            PhoneProblem::NotKenyan => "not_kenyan",
            PhoneProblem::NotMobile => "not_mobile",
        }
    }
}

/// `None` exactly when [`Msisdn::parse`] accepts `input`; otherwise what to fix.
pub fn phone_problem(input: &str) -> Option<PhoneProblem> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Some(PhoneProblem::Empty);
    }
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let digits = match digits_between_separators(rest) {
        Ok(digits) => digits,
        Err(problem) => return Some(problem),
    };
    if plus {
        after_plus(&digits)
    } else {
        without_plus(&digits)
    }
}

/// The digits, if every space or dash sits between two of them.
fn digits_between_separators(text: &str) -> Result<String, PhoneProblem> {
    let mut digits = String::with_capacity(INTERNATIONAL_DIGITS);
    let mut previous_was_digit = false;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                previous_was_digit = true;
            }
            ' ' | '-' if previous_was_digit => previous_was_digit = false,
            _ => return Err(PhoneProblem::NotDigits),
        }
    }
    if digits.is_empty() {
        // Only a "+": the number is still to come.
        return Err(PhoneProblem::TooShort);
    }
    if !previous_was_digit {
        return Err(PhoneProblem::NotDigits);
    }
    Ok(digits)
}

/// After a `+` only Kenya's code and 9 digits will do.
fn after_plus(digits: &str) -> Option<PhoneProblem> {
    if digits.starts_with(COUNTRY_CODE) {
        after_country_code(digits)
    } else if COUNTRY_CODE.starts_with(digits) {
        Some(PhoneProblem::TooShort)
    } else {
        Some(PhoneProblem::NotKenyan)
    }
}

fn without_plus(digits: &str) -> Option<PhoneProblem> {
    if let Some(subscriber) = digits.strip_prefix('0') {
        return length_then_subscriber(digits, LOCAL_DIGITS, subscriber);
    }
    if digits.starts_with(['7', '1']) {
        return length_then_subscriber(digits, SUBSCRIBER_DIGITS, digits);
    }
    if digits.starts_with(COUNTRY_CODE) {
        return after_country_code(digits);
    }
    if COUNTRY_CODE.starts_with(digits) {
        return Some(PhoneProblem::TooShort);
    }
    if digits.len() >= FOREIGN_DIGITS_FROM {
        return Some(PhoneProblem::NotKenyan);
    }
    Some(PhoneProblem::NotMobile)
}

fn after_country_code(digits: &str) -> Option<PhoneProblem> {
    length_then_subscriber(digits, INTERNATIONAL_DIGITS, &digits[COUNTRY_CODE.len()..])
}

fn length_then_subscriber(digits: &str, expected: usize, subscriber: &str) -> Option<PhoneProblem> {
    if digits.len() < expected {
        Some(PhoneProblem::TooShort)
    } else if digits.len() > expected {
        Some(PhoneProblem::TooLong)
    } else if subscriber.starts_with(['7', '1']) {
        None
    } else {
        Some(PhoneProblem::NotMobile)
    }
}

/// The number as the customer knows it, masked: `0712 *** 678`. Enough to recognise one's own
/// phone, too little to learn someone else's.
pub fn display_masked(msisdn: &Msisdn) -> String {
    let subscriber = &msisdn.as_str()[COUNTRY_CODE.len()..];
    let local = format!("0{subscriber}");
    format!("{} *** {}", &local[..4], &local[local.len() - 3..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PhoneProblem::*;

    fn agrees_with_the_parser(input: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            phone_problem(input).is_none(),
            Msisdn::parse(input).is_ok(),
            "{:?} gives {:?}",
            input,
            phone_problem(input)
        );
        Ok(())
    }

    #[test]
    fn one_example_per_problem() {
        let cases: &[(&str, PhoneProblem)] = &[
            ("", Empty),
            ("   ", Empty),
            ("0712 345 67a", NotDigits),
            ("0712.345.678", NotDigits),
            ("0712  345 678", NotDigits),
            ("-0712345678", NotDigits),
            ("0712345678-", NotDigits),
            ("++254712345678", NotDigits),
            ("０７１２３４５６７８", NotDigits),
            ("071234567", TooShort),
            ("+", TooShort),
            ("+25", TooShort),
            ("2547123", TooShort),
            ("71234567", TooShort),
            ("07123456789", TooLong),
            ("+2540712345678", TooLong),
            ("7123456789", TooLong),
            ("+255712345678", NotKenyan),
            ("255712345678", NotKenyan),
            ("+0712345678", NotKenyan),
            ("+712345678", NotKenyan),
            ("0812345678", NotMobile),
            ("254812345678", NotMobile),
            ("+254 212 345 678", NotMobile),
            ("812345678", NotMobile),
        ];
        for (input, problem) in cases {
            assert_eq!(phone_problem(input), Some(*problem), "{input:?}");
            assert!(Msisdn::parse(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn the_accepted_forms_have_no_problem() {
        for input in [
            "0712345678",
            "0712 345 678",
            "0712-345-678",
            "712345678",
            "112345678",
            "254712345678",
            "+254712345678",
            "+254 712 345 678",
            "+254-112-345-678",
            "  0112345678 ",
        ] {
            assert_eq!(phone_problem(input), None, "{input:?}");
        }
    }

    #[test]
    fn masks_the_middle_of_the_local_form() {
        let msisdn = Msisdn::parse("+254 712 345 678").unwrap();
        assert_eq!(display_masked(&msisdn), "0712 *** 678");
        let msisdn = Msisdn::parse("0112000999").unwrap();
        assert_eq!(display_masked(&msisdn), "0112 *** 999");
    }

    /// Strings shaped like what people type: an optional `+`, a prefix, digits with separators
    /// (sometimes doubled or misplaced), and whitespace around.
    fn phone_like() -> impl Strategy<Value = String> {
        let edge = prop::sample::select(vec!["", "", " ", "\t", "\u{a0}", "\u{3000}", "\u{feff}"]);
        let prefix = prop::sample::select(vec!["", "0", "254", "255", "2", "25", "00", "+", "+254", "+255", "++"]);
        let digit = prop::sample::select(vec!['0', '1', '2', '4', '5', '7', '8', '9']);
        let separator = prop::sample::select(vec!["", "", "", "", " ", "-", "  ", "+", ".", "a"]);
        (
            edge.clone(),
            prefix,
            prop::collection::vec((separator, digit), 0..14),
            edge,
        )
            .prop_map(|(lead, prefix, groups, trail)| {
                let mut text = format!("{lead}{prefix}");
                for (separator, digit) in groups {
                    text.push_str(separator);
                    text.push(digit);
                }
                text.push_str(trail);
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn agrees_with_the_parser_on_any_string(input in any::<String>()) {
            agrees_with_the_parser(&input)?;
        }

        #[test]
        fn agrees_with_the_parser_on_phone_alphabet_strings(input in "[+0-9 \\-]{0,20}") {
            agrees_with_the_parser(&input)?;
        }

        #[test]
        fn agrees_with_the_parser_on_phone_like_strings(input in phone_like()) {
            agrees_with_the_parser(&input)?;
        }

        #[test]
        fn valid_subscriber_numbers_have_no_problem_in_any_form(
            prefix in prop::sample::select(vec!['7', '1']),
            rest in "[0-9]{8}",
        ) {
            let subscriber = format!("{prefix}{rest}");
            for form in [
                format!("0{subscriber}"),
                subscriber.clone(),
                format!("254{subscriber}"),
                format!("+254{subscriber}"),
                format!("0{}-{}-{}", &subscriber[..3], &subscriber[3..6], &subscriber[6..]),
            ] {
                prop_assert_eq!(phone_problem(&form), None, "{}", form);
            }
        }

        #[test]
        fn a_digit_too_many_or_too_few_is_said_so(
            prefix in prop::sample::select(vec!["0", "254", "+254", ""]),
            subscriber in "[71][0-9]{8}",
            longer in any::<bool>(),
        ) {
            let number = format!("{prefix}{subscriber}");
            let (changed, expected) = if longer {
                (format!("{number}5"), TooLong)
            } else {
                (number[..number.len() - 1].to_owned(), TooShort)
            };
            prop_assert_eq!(phone_problem(&changed), Some(expected), "{}", changed);
        }
    }
}
