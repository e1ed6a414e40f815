//! What a business configures per shortcode ([`C2bRules`]) and the same with the account pattern
//! compiled ([`CompiledRules`]: bounded size, built once per cache fill).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{AccountNumber, ValidationInput};
use crate::domain::amount::Amount;

/// A business's validation rules for one shortcode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct C2bRules {
    /// The whole account number must match (case-insensitive).
    pub account_pattern: Option<String>,
    /// Only account numbers of an open expected payment are accepted.
    pub require_expected_payment: bool,
    pub min_amount: Option<Amount>,
    pub max_amount: Option<Amount>,
    /// Always accepted, whatever the pattern and expected payments say.
    pub allowed_accounts: BTreeSet<AccountNumber>,
    /// Always refused (`C2B00016`, the business's own decision).
    pub denied_accounts: BTreeSet<AccountNumber>,
    /// Payers refused (`C2B00011`), as Daraja sends the MSISDN: the v1 hash or the v2 masked form.
    pub blocked_msisdns: BTreeSet<String>,
    /// Payer names refused (`C2B00014`), upper-case, single spaces: `JANE DOE`.
    pub blocked_payer_names: BTreeSet<String>,
    /// Refuse payers without a name (`C2B00014`).
    pub require_payer_name: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("account_pattern must be at most {max} characters", max = C2bRules::MAX_PATTERN_CHARS)]
    PatternTooLong,
    #[error("account_pattern is not a valid regular expression (or is too complex)")]
    InvalidPattern,
    #[error("min_amount must not exceed max_amount")]
    AmountBounds,
}

/// The rules with the pattern compiled.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    pub rules: C2bRules,
    /// ASCII (account numbers are): `\d` is `[0-9]`, no Unicode tables in the binary.
    pub(super) pattern: Option<regex::bytes::Regex>,
}

/// Upper-case, single-spaced: how payer names are compared.
pub fn normalise_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

impl C2bRules {
    pub const MAX_PATTERN_CHARS: usize = 200;
    /// Compiled program size cap: a pathological pattern cannot blow up memory or time.
    pub const MAX_COMPILED_BYTES: usize = 256 * 1024;
    pub const MAX_LIST_ENTRIES: usize = 1000;
    pub const MAX_ENTRY_CHARS: usize = 100;

    pub fn compile(&self) -> Result<CompiledRules, RulesError> {
        if let (Some(min), Some(max)) = (self.min_amount, self.max_amount) {
            if min > max {
                return Err(RulesError::AmountBounds);
            }
        }
        let pattern = match &self.account_pattern {
            None => None,
            Some(p) if p.chars().count() > Self::MAX_PATTERN_CHARS => return Err(RulesError::PatternTooLong),
            Some(p) => Some(
                regex::bytes::RegexBuilder::new(&format!("(?-u)^(?:{p})$"))
                    .case_insensitive(true)
                    .size_limit(Self::MAX_COMPILED_BYTES)
                    .dfa_size_limit(Self::MAX_COMPILED_BYTES)
                    .nest_limit(32)
                    .build()
                    .map_err(|_| RulesError::InvalidPattern)?,
            ),
        };
        Ok(CompiledRules {
            rules: self.clone(),
            pattern,
        })
    }
}

impl CompiledRules {
    /// Whether the account number matches the account pattern (true when there is none).
    pub fn pattern_matches(&self, account: &AccountNumber) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| p.is_match(account.as_str().as_bytes()))
    }

    pub(super) fn name_blocked(&self, input: &ValidationInput<'_>) -> bool {
        if self.rules.blocked_payer_names.is_empty() {
            return false;
        }
        let parts = [input.first_name, input.middle_name, input.last_name];
        let full = normalise_name(&parts.iter().flatten().copied().collect::<Vec<_>>().join(" "));
        let short = normalise_name(
            &[input.first_name, input.last_name]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        );
        self.rules.blocked_payer_names.contains(&full) || self.rules.blocked_payer_names.contains(&short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    #[test]
    fn patterns_are_bounded() {
        let long = C2bRules {
            account_pattern: Some("a".repeat(201)),
            ..C2bRules::default()
        };
        assert_eq!(long.compile().unwrap_err(), RulesError::PatternTooLong);
        let broken = C2bRules {
            account_pattern: Some("(unclosed".into()),
            ..C2bRules::default()
        };
        assert_eq!(broken.compile().unwrap_err(), RulesError::InvalidPattern);
        // Counted repetition explodes the compiled program: refused, not compiled.
        let huge = C2bRules {
            account_pattern: Some("(\\w{100}){100}".into()),
            ..C2bRules::default()
        };
        assert_eq!(huge.compile().unwrap_err(), RulesError::InvalidPattern);
        let bounds = C2bRules {
            min_amount: Some(kes(10)),
            max_amount: Some(kes(5)),
            ..C2bRules::default()
        };
        assert_eq!(bounds.compile().unwrap_err(), RulesError::AmountBounds);
        // Perl classes work, in ASCII (account numbers are ASCII).
        let digits = C2bRules {
            account_pattern: Some(r"INV-\d{4}".into()),
            ..C2bRules::default()
        }
        .compile()
        .unwrap();
        assert!(digits.pattern_matches(&AccountNumber::parse("inv-2231").unwrap()));
        assert!(!digits.pattern_matches(&AccountNumber::parse("INV-22311").unwrap()));
        // An alternation cannot escape the anchors.
        let alt = C2bRules {
            account_pattern: Some("A|B".into()),
            ..C2bRules::default()
        }
        .compile()
        .unwrap();
        assert!(alt.pattern_matches(&AccountNumber::parse("b").unwrap()));
        assert!(!alt.pattern_matches(&AccountNumber::parse("AB").unwrap()));
    }
}
