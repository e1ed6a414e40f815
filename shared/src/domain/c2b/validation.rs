//! The validation decision: [`screen`] (everything that needs no lookup) then [`check_expected`]
//! (the account's expected payment), both pure, so the handler only does the single lookup in
//! between; and what validation answers when it cannot decide ([`DefaultDecision`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AccountNumber, CompiledRules};
use crate::domain::amount::{Amount, DarajaAmountError};
use crate::domain::expected_payment::ExpectedPayment;

/// What validation answers when it cannot decide (its own dependencies failed or were slow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DefaultDecision {
    /// Daraja's own behaviour with ResponseType `Completed`: the payment goes through and the
    /// confirmation records it.
    #[default]
    Accept,
    Reject,
}

impl DefaultDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultDecision::Accept => "accept",
            DefaultDecision::Reject => "reject",
        }
    }

    pub fn parse(value: &str) -> Option<DefaultDecision> {
        match value {
            "accept" => Some(DefaultDecision::Accept),
            "reject" => Some(DefaultDecision::Reject),
            _ => None,
        }
    }
}

/// The C2B validation result codes (`C2B00011` ... `C2B00016`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    InvalidMsisdn,
    InvalidAccountNumber,
    InvalidAmount,
    InvalidKyc,
    InvalidShortcode,
    Other,
}

/// What validation reads of a notification (the parsed Daraja body, already trusted to be ours).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationInput<'a> {
    pub msisdn: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub middle_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub amount: Option<Result<Amount, DarajaAmountError>>,
    pub bill_ref_number: Option<&'a str>,
}

/// The decision, with a stable reason for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept { reason: &'static str },
    Reject { code: Rejection, reason: &'static str },
}

/// The first step of validation: everything that needs no lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screening {
    Decided(Verdict),
    /// The account number must be checked against its expected payment (one lookup).
    NeedsExpected {
        account: AccountNumber,
        amount: Amount,
    },
}

fn reject(code: Rejection, reason: &'static str) -> Screening {
    Screening::Decided(Verdict::Reject { code, reason })
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Checks that need no lookup, in a fixed order: payer (MSISDN), KYC (name), amount, the
/// business's deny and allow lists, then the account number's shape.
pub fn screen(rules: &CompiledRules, input: &ValidationInput<'_>) -> Screening {
    let r = &rules.rules;
    match present(input.msisdn) {
        None => return reject(Rejection::InvalidMsisdn, "msisdn_missing"),
        Some(msisdn) if r.blocked_msisdns.contains(msisdn) => {
            return reject(Rejection::InvalidMsisdn, "msisdn_blocked")
        }
        Some(_) => {}
    }
    let has_name = [input.first_name, input.middle_name, input.last_name]
        .iter()
        .any(|n| present(*n).is_some());
    if r.require_payer_name && !has_name {
        return reject(Rejection::InvalidKyc, "payer_name_missing");
    }
    if rules.name_blocked(input) {
        return reject(Rejection::InvalidKyc, "payer_name_blocked");
    }
    let amount = match input.amount {
        Some(Ok(amount)) => amount,
        Some(Err(DarajaAmountError::Fractional)) => return reject(Rejection::InvalidAmount, "amount_fractional"),
        Some(Err(_)) | None => return reject(Rejection::InvalidAmount, "amount_invalid"),
    };
    if r.min_amount.is_some_and(|min| amount < min) {
        return reject(Rejection::InvalidAmount, "amount_below_minimum");
    }
    if r.max_amount.is_some_and(|max| amount > max) {
        return reject(Rejection::InvalidAmount, "amount_above_maximum");
    }
    let account = present(input.bill_ref_number).map(AccountNumber::parse);
    if let Some(Ok(account)) = &account {
        if r.denied_accounts.contains(account) {
            return reject(Rejection::Other, "account_denied");
        }
        if r.allowed_accounts.contains(account) {
            return Screening::Decided(Verdict::Accept {
                reason: "account_allowed",
            });
        }
    }
    let account_rules = rules.pattern.is_some() || r.require_expected_payment;
    match account {
        None if account_rules => reject(Rejection::InvalidAccountNumber, "account_missing"),
        Some(Err(_)) if account_rules => reject(Rejection::InvalidAccountNumber, "account_invalid"),
        // No account rules: an account-less (till) or free-text payment is fine.
        None | Some(Err(_)) => Screening::Decided(Verdict::Accept { reason: "accepted" }),
        Some(Ok(account)) if !rules.pattern_matches(&account) => {
            reject(Rejection::InvalidAccountNumber, "account_pattern_mismatch")
        }
        Some(Ok(account)) => Screening::NeedsExpected { account, amount },
    }
}

/// The second step: the account's expected payment (if any) as read at `at`.
pub fn check_expected(
    rules: &CompiledRules,
    amount: Amount,
    expected: Option<&ExpectedPayment>,
    at: DateTime<Utc>,
) -> Verdict {
    match expected.filter(|e| !e.is_expired(at)) {
        Some(expected) if expected.accepts(amount) => Verdict::Accept {
            reason: "expected_payment",
        },
        Some(_) => Verdict::Reject {
            code: Rejection::InvalidAmount,
            reason: "amount_not_owed",
        },
        None if rules.rules.require_expected_payment => {
            let reason = if expected.is_some() {
                "expected_payment_expired"
            } else {
                "no_expected_payment"
            };
            Verdict::Reject {
                code: Rejection::InvalidAccountNumber,
                reason,
            }
        }
        None => Verdict::Accept { reason: "accepted" },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::c2b::{C2bRules, Shortcode};
    use crate::domain::client::ClientId;
    use crate::domain::expected_payment::ExpectedAmount;
    use crate::domain::ids::ExpectedPaymentId;
    use crate::domain::Metadata;
    use proptest::prelude::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    fn input(bill_ref: &str, amount: u64) -> ValidationInput<'_> {
        ValidationInput {
            msisdn: Some("2547 ***** 126"),
            first_name: Some("JANE"),
            middle_name: Some(""),
            last_name: Some("DOE"),
            amount: Some(Ok(kes(amount))),
            bill_ref_number: Some(bill_ref),
        }
    }

    fn accounts(list: &[&str]) -> BTreeSet<AccountNumber> {
        list.iter().map(|a| AccountNumber::parse(a).unwrap()).collect()
    }

    fn expected(rule: ExpectedAmount, paid: u64) -> ExpectedPayment {
        let mut e = ExpectedPayment::create(
            ExpectedPaymentId::generate(),
            ClientId::parse("m").unwrap(),
            Shortcode::parse("600984").unwrap(),
            AccountNumber::parse("INV-1").unwrap(),
            rule,
            at() + chrono::Duration::hours(1),
            Metadata::default(),
            at(),
        );
        e.amount_paid = paid;
        e
    }

    fn rejected(s: Screening) -> (Rejection, &'static str) {
        match s {
            Screening::Decided(Verdict::Reject { code, reason }) => (code, reason),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn no_rules_accept_everything_well_formed() {
        let rules = C2bRules::default().compile().unwrap();
        assert!(matches!(
            screen(&rules, &input("INV-1", 500)),
            Screening::NeedsExpected { .. }
        ));
        // A till payment has no account number at all.
        let till = ValidationInput {
            bill_ref_number: None,
            ..input("", 500)
        };
        assert_eq!(
            screen(&rules, &till),
            Screening::Decided(Verdict::Accept { reason: "accepted" })
        );
        let free_text = ValidationInput {
            bill_ref_number: Some("pay #1 please"),
            ..input("", 500)
        };
        assert!(matches!(
            screen(&rules, &free_text),
            Screening::Decided(Verdict::Accept { .. })
        ));
        assert_eq!(
            check_expected(&rules, kes(500), None, at()),
            Verdict::Accept { reason: "accepted" }
        );
    }

    #[test]
    fn each_rule_rejects_with_its_code() {
        let rules = C2bRules {
            account_pattern: Some("INV-[0-9]+".into()),
            min_amount: Some(kes(10)),
            max_amount: Some(kes(1000)),
            denied_accounts: accounts(&["INV-666"]),
            allowed_accounts: accounts(&["SPECIAL"]),
            blocked_msisdns: ["2547 ***** 999".to_owned()].into(),
            blocked_payer_names: ["JOHN KAMAU".to_owned()].into(),
            require_payer_name: true,
            ..C2bRules::default()
        }
        .compile()
        .unwrap();
        let blocked = ValidationInput {
            msisdn: Some("2547 ***** 999"),
            ..input("INV-1", 500)
        };
        assert_eq!(
            rejected(screen(&rules, &blocked)),
            (Rejection::InvalidMsisdn, "msisdn_blocked")
        );
        let no_msisdn = ValidationInput {
            msisdn: Some(" "),
            ..input("INV-1", 500)
        };
        assert_eq!(rejected(screen(&rules, &no_msisdn)).0, Rejection::InvalidMsisdn);
        let nameless = ValidationInput {
            first_name: None,
            middle_name: Some(""),
            last_name: Some(""),
            ..input("INV-1", 500)
        };
        assert_eq!(
            rejected(screen(&rules, &nameless)),
            (Rejection::InvalidKyc, "payer_name_missing")
        );
        let sanctioned = ValidationInput {
            first_name: Some("john"),
            middle_name: Some("W"),
            last_name: Some("Kamau"),
            ..input("INV-1", 500)
        };
        assert_eq!(
            rejected(screen(&rules, &sanctioned)),
            (Rejection::InvalidKyc, "payer_name_blocked")
        );
        assert_eq!(
            rejected(screen(&rules, &input("INV-1", 5))),
            (Rejection::InvalidAmount, "amount_below_minimum")
        );
        assert_eq!(
            rejected(screen(&rules, &input("INV-1", 1001))),
            (Rejection::InvalidAmount, "amount_above_maximum")
        );
        let fraction = ValidationInput {
            amount: Some(Err(DarajaAmountError::Fractional)),
            ..input("INV-1", 1)
        };
        assert_eq!(
            rejected(screen(&rules, &fraction)),
            (Rejection::InvalidAmount, "amount_fractional")
        );
        let no_amount = ValidationInput {
            amount: None,
            ..input("INV-1", 1)
        };
        assert_eq!(rejected(screen(&rules, &no_amount)).0, Rejection::InvalidAmount);
        assert_eq!(
            rejected(screen(&rules, &input("inv-666", 500))),
            (Rejection::Other, "account_denied")
        );
        assert_eq!(
            rejected(screen(&rules, &input("ORDER-1", 500))),
            (Rejection::InvalidAccountNumber, "account_pattern_mismatch")
        );
        assert_eq!(
            rejected(screen(&rules, &input("INV-1x", 500))).0,
            Rejection::InvalidAccountNumber,
            "the whole number must match"
        );
        assert_eq!(
            rejected(screen(&rules, &input("INV#1", 500))),
            (Rejection::InvalidAccountNumber, "account_invalid")
        );
        let missing = ValidationInput {
            bill_ref_number: Some(""),
            ..input("", 500)
        };
        assert_eq!(
            rejected(screen(&rules, &missing)),
            (Rejection::InvalidAccountNumber, "account_missing")
        );
        // The allow list wins over the pattern, never over payer and amount checks.
        assert_eq!(
            screen(&rules, &input("special", 500)),
            Screening::Decided(Verdict::Accept {
                reason: "account_allowed"
            })
        );
        assert_eq!(
            rejected(screen(&rules, &input("special", 5000))).0,
            Rejection::InvalidAmount
        );
        // Case-insensitive pattern, normalised account.
        assert_eq!(
            screen(&rules, &input(" inv-42 ", 500)),
            Screening::NeedsExpected {
                account: AccountNumber::parse("INV-42").unwrap(),
                amount: kes(500)
            }
        );
    }

    #[test]
    fn expected_payments_accept_only_what_is_owed() {
        let rules = C2bRules {
            require_expected_payment: true,
            ..C2bRules::default()
        }
        .compile()
        .unwrap();
        let exact = expected(ExpectedAmount::Exact { value: kes(500) }, 200);
        assert_eq!(
            check_expected(&rules, kes(300), Some(&exact), at()),
            Verdict::Accept {
                reason: "expected_payment"
            }
        );
        assert_eq!(
            check_expected(&rules, kes(100), Some(&exact), at()),
            Verdict::Accept {
                reason: "expected_payment"
            }
        );
        assert_eq!(
            check_expected(&rules, kes(301), Some(&exact), at()),
            Verdict::Reject {
                code: Rejection::InvalidAmount,
                reason: "amount_not_owed"
            }
        );
        let minimum = expected(ExpectedAmount::Minimum { value: kes(500) }, 0);
        assert!(matches!(
            check_expected(&rules, kes(100_000), Some(&minimum), at()),
            Verdict::Accept { .. }
        ));
        let open = expected(ExpectedAmount::Open, 0);
        assert!(matches!(
            check_expected(&rules, kes(1), Some(&open), at()),
            Verdict::Accept { .. }
        ));
        assert_eq!(
            check_expected(&rules, kes(1), None, at()),
            Verdict::Reject {
                code: Rejection::InvalidAccountNumber,
                reason: "no_expected_payment"
            }
        );
        let later = at() + chrono::Duration::hours(2);
        assert_eq!(
            check_expected(&rules, kes(300), Some(&exact), later),
            Verdict::Reject {
                code: Rejection::InvalidAccountNumber,
                reason: "expected_payment_expired"
            }
        );
        // Without the requirement an unknown or expired account is fine.
        let lenient = C2bRules::default().compile().unwrap();
        assert!(matches!(
            check_expected(&lenient, kes(300), Some(&exact), later),
            Verdict::Accept { .. }
        ));
    }

    proptest! {
        /// Whatever a customer types as the account number and amount, screening never panics,
        /// and whatever it accepts satisfies every configured bound.
        #[test]
        fn screening_respects_every_bound(bill_ref in ".{0,30}", amount in 1u64..300_000, msisdn in "[0-9a-f ]{0,64}") {
            let rules = C2bRules {
                account_pattern: Some("[A-Z]{3}-[0-9]{1,6}".into()),
                min_amount: Some(kes(50)),
                max_amount: Some(kes(150_000)),
                ..C2bRules::default()
            }
            .compile()
            .unwrap();
            let input = ValidationInput {
                msisdn: Some(&msisdn),
                amount: Some(Ok(kes(amount))),
                bill_ref_number: Some(&bill_ref),
                ..ValidationInput::default()
            };
            match screen(&rules, &input) {
                Screening::Decided(Verdict::Accept { .. }) => prop_assert!(false, "pattern rules always need the lookup"),
                Screening::NeedsExpected { account, amount: a } => {
                    prop_assert!((50..=150_000).contains(&a.shillings()));
                    prop_assert!(rules.pattern_matches(&account));
                    prop_assert!(!msisdn.trim().is_empty());
                }
                Screening::Decided(Verdict::Reject { .. }) => {}
            }
        }
    }
}
