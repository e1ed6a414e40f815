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

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::amount::{Amount, DarajaAmountError};
use super::c2b_path_tokens::PathTokens;
use super::c2b_verification::{ConfirmationBody, Verification, VerificationSetting};
use super::client::ClientId;
use super::expected_payment::{ExpectedPayment, ExpectedStatus};
use super::ids::{C2bPaymentId, ExpectedPaymentId, PaymentId};

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
    pattern: Option<regex::bytes::Regex>,
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

impl CompiledRules {
    /// Whether the account number matches the account pattern (true when there is none).
    pub fn pattern_matches(&self, account: &AccountNumber) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| p.is_match(account.as_str().as_bytes()))
    }

    fn name_blocked(&self, input: &ValidationInput<'_>) -> bool {
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

/// Whether a confirmation is new money or the echo of an STK payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum C2bKind {
    /// A customer payment we learned of through C2B only.
    Payment,
    /// The C2B confirmation of an STK payment (same receipt): a notification, never new money.
    StkDuplicate,
}

impl C2bKind {
    pub fn as_str(self) -> &'static str {
        match self {
            C2bKind::Payment => "payment",
            C2bKind::StkDuplicate => "stk_duplicate",
        }
    }
}

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
    /// Not yet confirmed with Daraja: applied once it is (see [`super::c2b_verification`]).
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

/// A C2B confirmation, recorded once per receipt (`TransID`). Payer fields are stored exactly as
/// Daraja sent them (v1: a hash of the MSISDN; v2: a masked number): never more than we were given.
/// The raw body is kept in the callback record (with its retention), not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct C2bPayment {
    pub id: C2bPaymentId,
    /// `TransID`: the M-Pesa receipt.
    pub trans_id: String,
    pub shortcode: Shortcode,
    /// The client owning the shortcode when the payment was recorded.
    pub owner: Option<ClientId>,
    pub kind: C2bKind,
    /// The STK payment this confirmation echoes (`kind: stk_duplicate`).
    pub linked_payment_id: Option<PaymentId>,
    pub transaction_type: Option<String>,
    /// Whole shillings; `None` when Daraja's amount was fractional or unreadable.
    pub amount: Option<Amount>,
    /// `TransAmount` exactly as sent.
    pub amount_text: Option<String>,
    pub bill_ref_number: Option<String>,
    pub account_number: Option<AccountNumber>,
    pub invoice_number: Option<String>,
    pub third_party_trans_id: Option<String>,
    pub org_account_balance: Option<String>,
    pub msisdn: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    /// `TransTime` as sent (Nairobi local time) and as an instant when it parses.
    pub trans_time: Option<String>,
    pub trans_time_at: Option<DateTime<Utc>>,
    #[serde(rename = "match")]
    pub matched: MatchOutcome,
    /// Anything odd about the notification (`fractional_amount`, `invalid_amount`, `missing_amount`).
    pub anomalies: Vec<String>,
    pub received_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether Daraja confirmed it; only a verified confirmation moves money.
    #[serde(default = "verified_before_verification_existed")]
    pub verification: Verification,
    /// Other bodies received for this `TransID` while it was unverified (a forgery, or the real
    /// one after a forgery): verification picks the one Daraja confirms.
    #[serde(default)]
    pub alternatives: Vec<ConfirmationBody>,
    #[serde(default)]
    pub version: u64,
}

/// Records written before verification existed were applied on the confirmation's word: they
/// read back as verified by trust, which is what happened.
fn verified_before_verification_existed() -> Verification {
    Verification {
        status: super::c2b_verification::VerificationStatus::Verified,
        by: Some(super::c2b_verification::VerifiedBy::TrustedConfirmation),
        ..Verification::default()
    }
}

impl C2bPayment {
    #[allow(clippy::too_many_arguments)]
    pub fn from_body(
        id: C2bPaymentId,
        trans_id: String,
        shortcode: Shortcode,
        owner: Option<ClientId>,
        kind: C2bKind,
        linked_payment_id: Option<PaymentId>,
        body: ConfirmationBody,
        matched: MatchOutcome,
        verification: Verification,
        now: DateTime<Utc>,
    ) -> C2bPayment {
        let mut payment = C2bPayment {
            id,
            trans_id,
            shortcode,
            owner,
            kind,
            linked_payment_id,
            transaction_type: None,
            amount: None,
            amount_text: None,
            bill_ref_number: None,
            account_number: None,
            invoice_number: None,
            third_party_trans_id: None,
            org_account_balance: None,
            msisdn: None,
            first_name: None,
            middle_name: None,
            last_name: None,
            trans_time: None,
            trans_time_at: None,
            matched,
            anomalies: Vec::new(),
            received_at: body.received_at,
            recorded_at: now,
            updated_at: now,
            verification,
            alternatives: Vec::new(),
            version: 0,
        };
        payment.set_body(body);
        payment
    }

    /// The body this record shows (the first received, or the one verification chose).
    pub fn body(&self) -> ConfirmationBody {
        ConfirmationBody {
            transaction_type: self.transaction_type.clone(),
            amount: self.amount,
            amount_text: self.amount_text.clone(),
            bill_ref_number: self.bill_ref_number.clone(),
            account_number: self.account_number.clone(),
            invoice_number: self.invoice_number.clone(),
            third_party_trans_id: self.third_party_trans_id.clone(),
            org_account_balance: self.org_account_balance.clone(),
            msisdn: self.msisdn.clone(),
            first_name: self.first_name.clone(),
            middle_name: self.middle_name.clone(),
            last_name: self.last_name.clone(),
            trans_time: self.trans_time.clone(),
            trans_time_at: self.trans_time_at,
            anomalies: self.anomalies.clone(),
            received_at: self.received_at,
        }
    }

    fn set_body(&mut self, body: ConfirmationBody) {
        self.transaction_type = body.transaction_type;
        self.amount = body.amount;
        self.amount_text = body.amount_text;
        self.bill_ref_number = body.bill_ref_number;
        self.account_number = body.account_number;
        self.invoice_number = body.invoice_number;
        self.third_party_trans_id = body.third_party_trans_id;
        self.org_account_balance = body.org_account_balance;
        self.msisdn = body.msisdn;
        self.first_name = body.first_name;
        self.middle_name = body.middle_name;
        self.last_name = body.last_name;
        self.trans_time = body.trans_time;
        self.trans_time_at = body.trans_time_at;
        self.anomalies = body.anomalies;
        self.received_at = body.received_at;
    }

    /// Every body received: this record's own first, then the alternatives.
    pub fn bodies(&self) -> Vec<ConfirmationBody> {
        std::iter::once(self.body())
            .chain(self.alternatives.iter().cloned())
            .collect()
    }

    /// The record showing body `index` of [`C2bPayment::bodies`] (the others become alternatives).
    pub fn choosing(&self, index: usize) -> C2bPayment {
        let mut bodies = self.bodies();
        if index == 0 || index >= bodies.len() {
            return self.clone();
        }
        let chosen = bodies.remove(index);
        let mut next = self.clone();
        next.set_body(chosen);
        next.alternatives = bodies;
        next
    }

    /// Marks this confirmation as the echo of STK payment `payment_id` (same receipt).
    pub fn linked_to_stk(&self, payment_id: &PaymentId, now: DateTime<Utc>) -> C2bPayment {
        let mut next = self.clone();
        next.kind = C2bKind::StkDuplicate;
        next.linked_payment_id = Some(payment_id.clone());
        next.updated_at = now;
        next
    }
}

/// The amount anomaly of a notification, if any.
pub fn amount_anomaly(amount: &Option<Result<Amount, DarajaAmountError>>) -> Option<&'static str> {
    match amount {
        Some(Ok(_)) => None,
        Some(Err(DarajaAmountError::Fractional)) => Some("fractional_amount"),
        Some(Err(_)) => Some("invalid_amount"),
        None => Some("missing_amount"),
    }
}

/// Which registration API (and so which MSISDN form: v1 a SHA-256 hash, v2 a masked number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum C2bVersion {
    V1,
    #[default]
    V2,
}

impl C2bVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            C2bVersion::V1 => "v1",
            C2bVersion::V2 => "v2",
        }
    }
}

/// What M-Pesa does when validation does not answer in time (exactly Daraja's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ResponseType {
    #[default]
    Completed,
    Cancelled,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Completed => "Completed",
            ResponseType::Cancelled => "Cancelled",
        }
    }
}

/// Where the shortcode's registration with Daraja stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Stored, Daraja not (yet) answered.
    Pending,
    Registered,
    /// Daraja said the URLs were registered before (production registers once); ours are
    /// derived from the shortcode, so they are the same URLs.
    AlreadyRegistered,
    Failed,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationStatus::Pending => "pending",
            RegistrationStatus::Registered => "registered",
            RegistrationStatus::AlreadyRegistered => "already_registered",
            RegistrationStatus::Failed => "failed",
        }
    }
}

/// Daraja's answer to the registration, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DarajaRegistration {
    pub status: RegistrationStatus,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
    pub originator_conversation_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// A shortcode's C2B configuration: registration, rules and the decision when validation cannot
/// decide. Stored before Daraja is called, so validation and confirmation always find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortcodeConfig {
    pub shortcode: Shortcode,
    pub owner: ClientId,
    pub api_version: C2bVersion,
    pub response_type: ResponseType,
    pub default_decision: DefaultDecision,
    pub rules: C2bRules,
    pub validation_url: String,
    pub confirmation_url: String,
    pub registration: DarajaRegistration,
    /// How confirmations are verified (Transaction Status unless the owner opted out, audited).
    #[serde(default)]
    pub verification: VerificationSetting,
    /// The generation of the URLs' path tokens, and the one being retired.
    #[serde(default)]
    pub tokens: PathTokens,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::expected_payment::ExpectedAmount;
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

    #[test]
    fn amount_anomalies_are_named() {
        assert_eq!(amount_anomaly(&Some(Ok(kes(1)))), None);
        assert_eq!(
            amount_anomaly(&Some(Err(DarajaAmountError::Fractional))),
            Some("fractional_amount")
        );
        assert_eq!(
            amount_anomaly(&Some(Err(DarajaAmountError::Malformed))),
            Some("invalid_amount")
        );
        assert_eq!(amount_anomaly(&None), Some("missing_amount"));
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
