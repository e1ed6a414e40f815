//! What the C2B API shows: registrations (tokens only as a prefix), expected payments, and
//! recorded confirmations (payer fields exactly as Daraja sent them, and whether Daraja confirmed
//! them).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::timestamp;
use crate::domain::c2b::{C2bPayment, C2bRules, MatchOutcome, ShortcodeConfig};
use crate::domain::c2b_verification::Verification;
use crate::domain::expected_payment::ExpectedPayment;
use crate::domain::Metadata;

#[derive(Debug, Clone, Serialize)]
pub struct DarajaRegistrationView {
    pub status: &'static str,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
    pub originator_conversation_id: Option<String>,
    pub at: String,
}

/// How the shortcode's confirmations are verified, who chose it and when, and whether it works.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationSettingView {
    /// `transaction_status` or `trust_confirmation`.
    pub method: &'static str,
    pub set_by: Option<String>,
    pub set_at: Option<String>,
    /// False when confirmations cannot be verified (they then stay `unverified`); see `reason`.
    pub available: bool,
    pub reason: Option<&'static str>,
}

/// The URLs' token generation and the one being retired (its URLs keep working until `until`,
/// or with no end while Daraja still has them).
#[derive(Debug, Clone, Serialize)]
pub struct TokenGenerationView {
    pub generation: u32,
    pub retiring_generation: Option<u32>,
    pub retiring_until: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistrationView {
    pub object: &'static str,
    pub shortcode: String,
    pub owner: String,
    pub version: &'static str,
    pub response_type: &'static str,
    pub default_decision: &'static str,
    pub rules: C2bRules,
    /// The URLs with their token cut to a prefix: tokens are never shown in full.
    pub validation_url: String,
    pub confirmation_url: String,
    pub tokens: TokenGenerationView,
    pub verification: VerificationSettingView,
    pub daraja: DarajaRegistrationView,
    pub created_at: String,
    pub updated_at: String,
}

impl RegistrationView {
    /// The view, with whether its verification method works with the deployment's secrets.
    pub fn new(c: &ShortcodeConfig, availability: Result<(), &'static str>) -> RegistrationView {
        let mut view = RegistrationView::from(c);
        view.verification.available = availability.is_ok();
        view.verification.reason = availability.err();
        view
    }
}

impl From<&ShortcodeConfig> for RegistrationView {
    fn from(c: &ShortcodeConfig) -> Self {
        RegistrationView {
            object: "c2b_registration",
            shortcode: c.shortcode.to_string(),
            owner: c.owner.to_string(),
            version: c.api_version.as_str(),
            response_type: c.response_type.as_str(),
            default_decision: c.default_decision.as_str(),
            rules: c.rules.clone(),
            // Stored masked; masked again for records written before tokens were cut.
            validation_url: crate::services::c2b::registration::masked_url(&c.validation_url),
            confirmation_url: crate::services::c2b::registration::masked_url(&c.confirmation_url),
            tokens: TokenGenerationView {
                generation: c.tokens.generation,
                retiring_generation: c.tokens.retiring.as_ref().map(|r| r.generation),
                retiring_until: c.tokens.retiring.as_ref().and_then(|r| r.valid_until).map(timestamp),
            },
            verification: VerificationSettingView {
                method: c.verification.method.as_str(),
                set_by: c.verification.set_by.as_ref().map(ToString::to_string),
                set_at: c.verification.set_at.map(timestamp),
                available: true,
                reason: None,
            },
            daraja: DarajaRegistrationView {
                status: c.registration.status.as_str(),
                response_code: c.registration.response_code.clone(),
                response_description: c.registration.response_description.clone(),
                originator_conversation_id: c.registration.originator_conversation_id.clone(),
                at: timestamp(c.registration.at),
            },
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedAmountView {
    pub rule: &'static str,
    pub value: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppliedPaymentView {
    pub c2b_payment_id: String,
    pub trans_id: String,
    pub amount: u64,
    pub received_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedPaymentView {
    pub id: String,
    pub object: &'static str,
    pub shortcode: String,
    pub account_number: String,
    pub amount: ExpectedAmountView,
    pub currency: &'static str,
    pub amount_paid: u64,
    /// Still owed (exact amounts only).
    pub amount_remaining: Option<u64>,
    /// `open`, `partially_paid`, `paid`, `overpaid`, or `expired` (unsettled past `expires_at`).
    pub status: &'static str,
    pub expires_at: String,
    pub metadata: Metadata,
    pub payments: Vec<AppliedPaymentView>,
    pub payment_count: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl ExpectedPaymentView {
    pub fn new(e: &ExpectedPayment, now: DateTime<Utc>) -> ExpectedPaymentView {
        ExpectedPaymentView {
            id: e.id.to_string(),
            object: "expected_payment",
            shortcode: e.shortcode.to_string(),
            account_number: e.account_number.to_string(),
            amount: ExpectedAmountView {
                rule: e.amount.rule(),
                value: e.amount.value().map(|a| a.shillings()),
            },
            currency: "KES",
            amount_paid: e.amount_paid,
            amount_remaining: e.remaining(),
            status: e.status_at(now),
            expires_at: timestamp(e.expires_at),
            metadata: e.metadata.clone(),
            payments: e
                .payments
                .iter()
                .map(|p| AppliedPaymentView {
                    c2b_payment_id: p.c2b_payment_id.to_string(),
                    trans_id: p.trans_id.clone(),
                    amount: p.amount.shillings(),
                    received_at: timestamp(p.received_at),
                })
                .collect(),
            payment_count: e.payment_count,
            created_at: timestamp(e.created_at),
            updated_at: timestamp(e.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchView {
    /// `matched` or `unmatched`.
    pub status: &'static str,
    /// Why unmatched: `no_account_number`, `unknown_account`, `expired`, `amount_anomaly`,
    /// `unverified` (waiting for Daraja's confirmation), `verification_failed`.
    pub reason: Option<String>,
    pub expected_payment_id: Option<String>,
    /// The expected payment's status right after this payment.
    pub expected_payment_status: Option<&'static str>,
    pub amount_paid_after: Option<u64>,
}

impl From<&MatchOutcome> for MatchView {
    fn from(m: &MatchOutcome) -> Self {
        match m {
            MatchOutcome::Matched {
                expected_payment_id,
                resulting_status,
                amount_paid_after,
            } => MatchView {
                status: m.status(),
                reason: None,
                expected_payment_id: Some(expected_payment_id.to_string()),
                expected_payment_status: Some(resulting_status.as_str()),
                amount_paid_after: Some(*amount_paid_after),
            },
            MatchOutcome::Unmatched {
                reason,
                expected_payment_id,
            } => MatchView {
                status: m.status(),
                reason: serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned)),
                expected_payment_id: expected_payment_id.as_ref().map(ToString::to_string),
                expected_payment_status: None,
                amount_paid_after: None,
            },
        }
    }
}

/// A recorded confirmation. Payer fields are exactly what Daraja sent (v1: a hash of the MSISDN;
/// v2: a masked number), never more.
#[derive(Debug, Clone, Serialize)]
pub struct C2bPaymentView {
    pub id: String,
    pub object: &'static str,
    /// `payment` (new money) or `stk_duplicate` (the C2B echo of STK payment `payment_id`).
    pub kind: &'static str,
    pub payment_id: Option<String>,
    pub shortcode: String,
    pub trans_id: String,
    pub transaction_type: Option<String>,
    /// Whole shillings; null when Daraja's amount was fractional or unreadable (see `anomalies`).
    pub amount: Option<u64>,
    pub amount_text: Option<String>,
    pub currency: &'static str,
    pub bill_ref_number: Option<String>,
    pub account_number: Option<String>,
    pub invoice_number: Option<String>,
    pub third_party_trans_id: Option<String>,
    pub org_account_balance: Option<String>,
    pub msisdn: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub trans_time: Option<String>,
    pub trans_time_at: Option<String>,
    #[serde(rename = "match")]
    pub matched: MatchView,
    pub anomalies: Vec<String>,
    /// Whether Daraja confirmed the receipt; only a verified confirmation moves money.
    pub verification: VerificationView,
    pub received_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationView {
    /// `unverified`, `verified` or `rejected`.
    pub status: &'static str,
    /// How it was verified: `transaction_status`, `stk_receipt`, `trusted_confirmation`.
    pub method: Option<&'static str>,
    /// Why it was rejected: `not_found`, `declined`, `amount_mismatch`, `receipt_mismatch`,
    /// `conflicting_confirmations`, `amount_unconfirmed`.
    pub reason: Option<&'static str>,
    /// Different bodies received for this receipt besides the one shown.
    pub other_confirmations: usize,
    pub decided_at: Option<String>,
}

impl VerificationView {
    fn new(v: &Verification, others: usize) -> VerificationView {
        VerificationView {
            status: v.status.as_str(),
            method: v.by.map(|b| b.as_str()),
            reason: v.rejection.map(|r| r.as_str()),
            other_confirmations: others,
            decided_at: v.decided_at.map(timestamp),
        }
    }
}

impl From<&C2bPayment> for C2bPaymentView {
    fn from(p: &C2bPayment) -> Self {
        C2bPaymentView {
            id: p.id.to_string(),
            object: "c2b_payment",
            kind: p.kind.as_str(),
            payment_id: p.linked_payment_id.as_ref().map(ToString::to_string),
            shortcode: p.shortcode.to_string(),
            trans_id: p.trans_id.clone(),
            transaction_type: p.transaction_type.clone(),
            amount: p.amount.map(|a| a.shillings()),
            amount_text: p.amount_text.clone(),
            currency: "KES",
            bill_ref_number: p.bill_ref_number.clone(),
            account_number: p.account_number.as_ref().map(ToString::to_string),
            invoice_number: p.invoice_number.clone(),
            third_party_trans_id: p.third_party_trans_id.clone(),
            org_account_balance: p.org_account_balance.clone(),
            msisdn: p.msisdn.clone(),
            first_name: p.first_name.clone(),
            middle_name: p.middle_name.clone(),
            last_name: p.last_name.clone(),
            trans_time: p.trans_time.clone(),
            trans_time_at: p.trans_time_at.map(timestamp),
            matched: MatchView::from(&p.matched),
            anomalies: p.anomalies.clone(),
            verification: VerificationView::new(&p.verification, p.alternatives.len()),
            received_at: timestamp(p.received_at),
            updated_at: timestamp(p.updated_at),
        }
    }
}
