//! A C2B confirmation as recorded ([`C2bPayment`], exactly once per receipt), the bodies received
//! for it, and whether it is new money or the echo of an STK payment.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AccountNumber, MatchOutcome, Shortcode};
use crate::domain::amount::{Amount, DarajaAmountError};
use crate::domain::c2b_verification::{ConfirmationBody, Verification};
use crate::domain::client::ClientId;
use crate::domain::ids::{C2bPaymentId, PaymentId};

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
        status: crate::domain::c2b_verification::VerificationStatus::Verified,
        by: Some(crate::domain::c2b_verification::VerifiedBy::TrustedConfirmation),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
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
}
