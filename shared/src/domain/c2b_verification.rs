//! Whether a C2B confirmation is real.
//!
//! A confirmation is only someone's word: Daraja signs nothing, and anyone who learns a
//! shortcode's confirmation URL can POST one. So a confirmation is recorded at once (durable,
//! acknowledged) but moves no money until its receipt is confirmed:
//! - by **Transaction Status** on its `TransID` (the default): Daraja must say `Completed` for the
//!   same amount; "not found" (2032) twice, spaced by [`VerificationTimings::interval`] and past
//!   [`VerificationTimings::deadline`], rejects it (a forged TransID), as do `Declined`/`Cancelled`;
//! - by its **STK receipt**: the receipt is one an authenticated STK callback of ours carried;
//! - by **trust**, only where the shortcode's owner opted in explicitly (recorded with who and when).
//!
//! Several different bodies may arrive for one `TransID` (a forged one first, then the real one):
//! each is kept ([`C2bPayment::alternatives`]) until verification picks the one whose amount
//! Daraja confirms, so a forgery sent first never swallows the real confirmation. Two different
//! bodies that both match are not guessed between: the confirmation is rejected as conflicting
//! and raised to operators.
//!
//! [`decide_verification`] and [`admit_body`] are pure; storage writes what they return with a
//! version condition.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use super::c2b::{AccountNumber, C2bPayment};
use super::client::ClientId;

/// How a shortcode's confirmations are verified (set at registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// Transaction Status by `TransID` (needs an initiator with that role on the shortcode).
    #[default]
    TransactionStatus,
    /// The confirmation's word is taken: an explicit, audited opt-in.
    TrustConfirmation,
}

impl VerificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMethod::TransactionStatus => "transaction_status",
            VerificationMethod::TrustConfirmation => "trust_confirmation",
        }
    }

    pub fn parse(value: &str) -> Option<VerificationMethod> {
        match value {
            "transaction_status" => Some(VerificationMethod::TransactionStatus),
            "trust_confirmation" => Some(VerificationMethod::TrustConfirmation),
            _ => None,
        }
    }
}

/// A shortcode's verification setting, with who chose it and when (the audit of an opt-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VerificationSetting {
    pub method: VerificationMethod,
    #[serde(default)]
    pub set_by: Option<ClientId>,
    #[serde(default)]
    pub set_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Recorded, not yet confirmed: moves no money.
    #[default]
    Unverified,
    /// Confirmed: applied to what it pays.
    Verified,
    /// Daraja does not know it, declined it, or says another amount: an anomaly, applied to nothing.
    Rejected,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Unverified => "unverified",
            VerificationStatus::Verified => "verified",
            VerificationStatus::Rejected => "rejected",
        }
    }
}

/// What confirmed a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifiedBy {
    TransactionStatus,
    /// The receipt of an STK payment of ours (its authenticated callback carried it).
    StkReceipt,
    /// The shortcode trusts its confirmations (opt-in).
    TrustedConfirmation,
}

impl VerifiedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifiedBy::TransactionStatus => "transaction_status",
            VerifiedBy::StkReceipt => "stk_receipt",
            VerifiedBy::TrustedConfirmation => "trusted_confirmation",
        }
    }
}

/// Why a confirmation was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    /// Transaction Status does not know the receipt (twice, spaced, past the deadline).
    NotFound,
    /// Transaction Status reports it declined, cancelled or expired: no money moved.
    Declined,
    /// Daraja's amount is not any confirmation's amount.
    AmountMismatch,
    /// Daraja names another receipt.
    ReceiptMismatch,
    /// Two different confirmations match what Daraja says: which is real cannot be told.
    ConflictingConfirmations,
    /// Daraja never gave an amount to check, by the deadline.
    AmountUnconfirmed,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::NotFound => "not_found",
            RejectionReason::Declined => "declined",
            RejectionReason::AmountMismatch => "amount_mismatch",
            RejectionReason::ReceiptMismatch => "receipt_mismatch",
            RejectionReason::ConflictingConfirmations => "conflicting_confirmations",
            RejectionReason::AmountUnconfirmed => "amount_unconfirmed",
        }
    }
}

/// Spacing and patience of Transaction Status checks of one confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationTimings {
    /// Between queries, and between the "not found" answers that may reject.
    pub interval: Duration,
    /// Before this long after receipt, "not found" never rejects (Daraja may lag).
    pub deadline: Duration,
}

impl Default for VerificationTimings {
    fn default() -> Self {
        VerificationTimings {
            interval: Duration::minutes(2),
            deadline: Duration::minutes(30),
        }
    }
}

/// Where a confirmation's verification stands (stored on the C2B payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Verification {
    pub status: VerificationStatus,
    #[serde(default)]
    pub by: Option<VerifiedBy>,
    #[serde(default)]
    pub rejection: Option<RejectionReason>,
    /// Transaction Status queries sent.
    #[serde(default)]
    pub queries: u32,
    #[serde(default)]
    pub not_found_answers: Vec<DateTime<Utc>>,
    /// When the verification sweep should next look; present only while unverified.
    #[serde(default)]
    pub next_check_at: Option<DateTime<Utc>>,
    /// "Not found" rejects only after this.
    #[serde(default)]
    pub deadline_at: Option<DateTime<Utc>>,
    /// The amount Daraja confirmed for the receipt, once it answered.
    #[serde(default)]
    pub confirmed_amount: Option<Amount>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
}

impl Verification {
    /// A new confirmation waiting for Transaction Status: asked at once.
    pub fn pending(now: DateTime<Utc>, timings: VerificationTimings) -> Verification {
        Verification {
            next_check_at: Some(now),
            deadline_at: Some(now + timings.deadline),
            ..Verification::default()
        }
    }

    /// Confirmed without a query (an STK receipt of ours, or a trusting shortcode).
    pub fn verified(by: VerifiedBy, now: DateTime<Utc>) -> Verification {
        Verification {
            status: VerificationStatus::Verified,
            by: Some(by),
            decided_at: Some(now),
            ..Verification::default()
        }
    }

    fn decided(&self, status: VerificationStatus, now: DateTime<Utc>) -> Verification {
        let mut next = self.clone();
        next.status = status;
        next.next_check_at = None;
        next.decided_at = Some(now);
        next
    }

    fn not_found_confirmed(&self, interval: Duration) -> bool {
        match (self.not_found_answers.iter().min(), self.not_found_answers.iter().max()) {
            (Some(first), Some(last)) => *last - *first >= interval,
            _ => false,
        }
    }
}

/// What one confirmation said, as received (one of possibly several for a `TransID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationBody {
    pub transaction_type: Option<String>,
    pub amount: Option<Amount>,
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
    pub trans_time: Option<String>,
    pub trans_time_at: Option<DateTime<Utc>>,
    pub anomalies: Vec<String>,
    pub received_at: DateTime<Utc>,
}

impl ConfirmationBody {
    /// Whether two bodies say the same thing (the time they arrived aside).
    pub fn same_as(&self, other: &ConfirmationBody) -> bool {
        let mut a = self.clone();
        a.received_at = other.received_at;
        a == *other
    }

    /// What tells two bodies apart for the money: the amount and the account it pays.
    fn money_key(&self) -> (Option<Amount>, Option<String>) {
        (
            self.amount,
            self.bill_ref_number.as_deref().map(|r| r.trim().to_ascii_uppercase()),
        )
    }
}

/// Most different bodies kept for one `TransID` besides the first (a flood is not stored).
pub const MAX_ALTERNATIVES: usize = 4;

/// Daraja's Transaction Status answer about a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    Completed {
        amount: Option<Amount>,
        receipt: Option<String>,
    },
    /// Declined, cancelled, expired, failed: no money moved.
    Declined,
    /// 2032: Daraja does not know the receipt.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationDecision {
    /// Verified with this body (index 0 is the payment's own, `n` its `alternatives[n-1]`).
    Verified {
        body: usize,
        next: Verification,
    },
    Rejected {
        next: Verification,
    },
    /// Nothing final: the answer is recorded.
    Recorded {
        next: Verification,
    },
    /// Already decided: the answer changes nothing.
    AlreadyDecided,
}

/// What a Transaction Status answer does to a confirmation's verification at `now`.
pub fn decide_verification(
    payment: &C2bPayment,
    answer: &StatusAnswer,
    now: DateTime<Utc>,
    timings: VerificationTimings,
) -> VerificationDecision {
    let v = &payment.verification;
    if v.status != VerificationStatus::Unverified {
        return VerificationDecision::AlreadyDecided;
    }
    let past_deadline = v.deadline_at.is_none_or(|deadline| now >= deadline);
    let reject = |reason: RejectionReason, amount: Option<Amount>| {
        let mut next = v.decided(VerificationStatus::Rejected, now);
        next.rejection = Some(reason);
        next.confirmed_amount = amount.or(v.confirmed_amount);
        VerificationDecision::Rejected { next }
    };
    match answer {
        StatusAnswer::Declined => reject(RejectionReason::Declined, None),
        StatusAnswer::NotFound => {
            let mut next = v.clone();
            next.not_found_answers.push(now);
            if past_deadline && next.not_found_confirmed(timings.interval) {
                let mut rejected = next.decided(VerificationStatus::Rejected, now);
                rejected.rejection = Some(RejectionReason::NotFound);
                return VerificationDecision::Rejected { next: rejected };
            }
            VerificationDecision::Recorded { next }
        }
        StatusAnswer::Completed { receipt, .. } if receipt.as_deref().is_some_and(|r| r != payment.trans_id) => {
            reject(RejectionReason::ReceiptMismatch, None)
        }
        StatusAnswer::Completed { amount: None, .. } => {
            if past_deadline {
                return reject(RejectionReason::AmountUnconfirmed, None);
            }
            VerificationDecision::Recorded { next: v.clone() }
        }
        StatusAnswer::Completed {
            amount: Some(amount), ..
        } => {
            let bodies = payment.bodies();
            let matching: Vec<usize> = (0..bodies.len())
                .filter(|&i| bodies[i].amount == Some(*amount))
                .collect();
            let Some(&first) = matching.first() else {
                return reject(RejectionReason::AmountMismatch, Some(*amount));
            };
            let distinct = matching
                .iter()
                .any(|&i| bodies[i].money_key() != bodies[first].money_key());
            if distinct {
                return reject(RejectionReason::ConflictingConfirmations, Some(*amount));
            }
            let mut next = v.decided(VerificationStatus::Verified, now);
            next.by = Some(VerifiedBy::TransactionStatus);
            next.confirmed_amount = Some(*amount);
            VerificationDecision::Verified { body: first, next }
        }
    }
}

/// What another body for an already recorded `TransID` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The same confirmation again.
    Duplicate,
    /// Kept beside the others until verification decides.
    Alternative,
    /// Daraja already confirmed this amount for the receipt (it said another one before): this
    /// body is the real one, verified now.
    VerifiedNow { next: Verification },
    /// Contradicts a verified confirmation, or one too many: recorded as an anomaly only.
    Anomaly { reason: &'static str },
}

/// Whether `body` is news for `payment` (same `TransID`) at `now`.
pub fn admit_body(payment: &C2bPayment, body: &ConfirmationBody, now: DateTime<Utc>) -> Admission {
    if payment.bodies().iter().any(|b| b.same_as(body)) {
        return Admission::Duplicate;
    }
    let v = &payment.verification;
    match v.status {
        VerificationStatus::Unverified if payment.alternatives.len() < MAX_ALTERNATIVES => Admission::Alternative,
        VerificationStatus::Unverified => Admission::Anomaly {
            reason: "too_many_confirmations",
        },
        VerificationStatus::Rejected
            if v.rejection == Some(RejectionReason::AmountMismatch)
                && v.confirmed_amount.is_some()
                && v.confirmed_amount == body.amount =>
        {
            let mut next = v.clone();
            next.status = VerificationStatus::Verified;
            next.by = Some(VerifiedBy::TransactionStatus);
            next.rejection = None;
            next.decided_at = Some(now);
            Admission::VerifiedNow { next }
        }
        VerificationStatus::Verified | VerificationStatus::Rejected => Admission::Anomaly {
            reason: "conflicting_confirmation",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::c2b::{C2bKind, MatchOutcome, Shortcode, UnmatchedReason};
    use crate::domain::C2bPaymentId;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:13:25Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    fn body(amount: u64, bill_ref: &str) -> ConfirmationBody {
        ConfirmationBody {
            transaction_type: Some("Pay Bill".into()),
            amount: Some(kes(amount)),
            amount_text: Some(format!("{amount}.00")),
            bill_ref_number: Some(bill_ref.into()),
            account_number: AccountNumber::parse(bill_ref).ok(),
            invoice_number: None,
            third_party_trans_id: None,
            org_account_balance: None,
            msisdn: Some("2547 ***** 126".into()),
            first_name: Some("JANE".into()),
            middle_name: None,
            last_name: None,
            trans_time: Some("20261121121325".into()),
            trans_time_at: Some(t0()),
            anomalies: Vec::new(),
            received_at: t0(),
        }
    }

    fn payment(first: ConfirmationBody) -> C2bPayment {
        C2bPayment::from_body(
            C2bPaymentId::generate(),
            "TKL51ZDR4F".into(),
            Shortcode::parse("600984").unwrap(),
            None,
            C2bKind::Payment,
            None,
            first,
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::Unverified,
                expected_payment_id: None,
            },
            Verification::pending(t0(), VerificationTimings::default()),
            t0(),
        )
    }

    fn completed(amount: u64) -> StatusAnswer {
        StatusAnswer::Completed {
            amount: Some(kes(amount)),
            receipt: Some("TKL51ZDR4F".into()),
        }
    }

    #[test]
    fn the_body_whose_amount_daraja_confirms_is_verified_whichever_came_first() {
        // A forged body first (wrong amount and account), then the real one.
        let mut p = payment(body(5000, "INV-1"));
        assert_eq!(admit_body(&p, &body(5000, "INV-1"), t0()), Admission::Duplicate);
        assert_eq!(admit_body(&p, &body(300, "INV-2"), t0()), Admission::Alternative);
        p.alternatives.push(body(300, "INV-2"));
        match decide_verification(&p, &completed(300), t0(), VerificationTimings::default()) {
            VerificationDecision::Verified { body, next } => {
                assert_eq!(body, 1, "the real one, not the first one seen");
                assert_eq!(next.by, Some(VerifiedBy::TransactionStatus));
                assert_eq!(next.next_check_at, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_different_bodies_daraja_cannot_tell_apart_are_never_guessed_between() {
        let mut p = payment(body(300, "INV-1"));
        p.alternatives.push(body(300, "INV-2"));
        assert!(matches!(
            decide_verification(&p, &completed(300), t0(), VerificationTimings::default()),
            VerificationDecision::Rejected { next } if next.rejection == Some(RejectionReason::ConflictingConfirmations)
        ));
    }

    #[test]
    fn not_found_rejects_only_past_the_deadline_with_two_spaced_answers() {
        let timings = VerificationTimings::default();
        let p = payment(body(300, "INV-1"));
        let record = |p: &C2bPayment, at| match decide_verification(p, &StatusAnswer::NotFound, at, timings) {
            VerificationDecision::Recorded { next } => next,
            other => panic!("{other:?}"),
        };
        let mut q = p.clone();
        q.verification = record(&q, t0());
        q.verification = record(&q, t0() + timings.interval);
        let past = t0() + timings.deadline;
        let mut late = p.clone();
        late.verification = record(&late, past);
        assert!(matches!(
            decide_verification(&q, &StatusAnswer::NotFound, past, timings),
            VerificationDecision::Rejected { next } if next.rejection == Some(RejectionReason::NotFound)
        ));
        // A single answer past the deadline is not enough.
        assert!(matches!(
            decide_verification(&late, &StatusAnswer::NotFound, past + Duration::seconds(1), timings),
            VerificationDecision::Recorded { .. }
        ));
    }

    #[test]
    fn a_wrong_amount_rejects_and_the_real_body_arriving_later_is_verified_at_once() {
        let p = payment(body(5000, "INV-1"));
        let VerificationDecision::Rejected { next } =
            decide_verification(&p, &completed(300), t0(), VerificationTimings::default())
        else {
            panic!("a forged amount is rejected")
        };
        assert_eq!(next.rejection, Some(RejectionReason::AmountMismatch));
        assert_eq!(next.confirmed_amount, Some(kes(300)));
        let mut rejected = p.clone();
        rejected.verification = next;
        assert!(matches!(
            admit_body(&rejected, &body(300, "INV-2"), t0()),
            Admission::VerifiedNow { .. }
        ));
        assert!(matches!(
            admit_body(&rejected, &body(299, "INV-2"), t0()),
            Admission::Anomaly { .. }
        ));
    }

    #[test]
    fn declined_and_receipt_mismatch_reject_and_a_decided_one_never_moves() {
        let timings = VerificationTimings::default();
        let p = payment(body(300, "INV-1"));
        assert!(matches!(
            decide_verification(&p, &StatusAnswer::Declined, t0(), timings),
            VerificationDecision::Rejected { next } if next.rejection == Some(RejectionReason::Declined)
        ));
        let other = StatusAnswer::Completed {
            amount: Some(kes(300)),
            receipt: Some("OTHER".into()),
        };
        assert!(matches!(
            decide_verification(&p, &other, t0(), timings),
            VerificationDecision::Rejected { next } if next.rejection == Some(RejectionReason::ReceiptMismatch)
        ));
        let mut verified = p.clone();
        verified.verification = Verification::verified(VerifiedBy::StkReceipt, t0());
        assert_eq!(
            decide_verification(&verified, &StatusAnswer::NotFound, t0(), timings),
            VerificationDecision::AlreadyDecided
        );
        assert!(matches!(
            admit_body(&verified, &body(300, "INV-9"), t0()),
            Admission::Anomaly {
                reason: "conflicting_confirmation"
            }
        ));
    }

    fn any_answer() -> impl Strategy<Value = StatusAnswer> {
        prop_oneof![
            Just(StatusAnswer::NotFound),
            Just(StatusAnswer::Declined),
            prop::option::of(prop::sample::select(vec![300u64, 5000])).prop_map(|a| StatusAnswer::Completed {
                amount: a.map(kes),
                receipt: None
            }),
        ]
    }

    proptest! {
        /// Whatever Daraja answers, in any order and timing: a verified confirmation's amount is
        /// the one Daraja confirmed and belongs to one of the bodies received; a decision is final;
        /// "not found" never rejects before the deadline.
        #[test]
        fn verification_invariants(answers in prop::collection::vec((any_answer(), 0i64..3000), 0..10), alternative in prop::bool::ANY) {
            let timings = VerificationTimings::default();
            let mut p = payment(body(5000, "INV-1"));
            if alternative {
                p.alternatives.push(body(300, "INV-2"));
            }
            let mut now = t0();
            for (answer, dt) in &answers {
                now += Duration::seconds(*dt);
                let before = p.verification.clone();
                match decide_verification(&p, answer, now, timings) {
                    VerificationDecision::Verified { body, next } => {
                        prop_assert_eq!(before.status, VerificationStatus::Unverified);
                        let bodies = p.bodies();
                        prop_assert!(body < bodies.len());
                        prop_assert_eq!(bodies[body].amount, next.confirmed_amount);
                        let completed = matches!(answer, StatusAnswer::Completed { .. });
                        prop_assert!(completed);
                        p.verification = next;
                    }
                    VerificationDecision::Rejected { next } => {
                        if next.rejection == Some(RejectionReason::NotFound) {
                            prop_assert!(now >= before.deadline_at.unwrap());
                        }
                        p.verification = next;
                    }
                    VerificationDecision::Recorded { next } => {
                        prop_assert_eq!(next.status, VerificationStatus::Unverified);
                        p.verification = next;
                    }
                    VerificationDecision::AlreadyDecided => {
                        prop_assert_ne!(before.status, VerificationStatus::Unverified);
                    }
                }
            }
        }
    }
}
