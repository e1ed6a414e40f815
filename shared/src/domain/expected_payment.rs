//! Expected payments (invoices): an account number on a shortcode with an amount owed, an
//! expiry and metadata, so validation accepts only what is owed and confirmations settle it.
//!
//! `open` → `partially_paid` → `paid` → `overpaid` (exact amounts only). [`ExpectedPayment::apply`]
//! is the only place a payment changes it; it is pure, and storage writes each change with a
//! version condition, once per receipt. Past `expires_at` nothing matches it any more; an
//! unsettled one shows as `expired`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use super::c2b::{AccountNumber, Shortcode};
use super::client::ClientId;
use super::ids::{C2bPaymentId, ExpectedPaymentId};
use super::text::Metadata;

/// How much is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ExpectedAmount {
    /// Exactly this much in total: less is a partial payment, more an over-payment.
    Exact { value: Amount },
    /// At least this much in total; more is welcome.
    Minimum { value: Amount },
    /// Any amount (donations, top-ups).
    Open,
}

impl ExpectedAmount {
    pub fn rule(&self) -> &'static str {
        match self {
            ExpectedAmount::Exact { .. } => "exact",
            ExpectedAmount::Minimum { .. } => "minimum",
            ExpectedAmount::Open => "open",
        }
    }

    pub fn value(&self) -> Option<Amount> {
        match self {
            ExpectedAmount::Exact { value } | ExpectedAmount::Minimum { value } => Some(*value),
            ExpectedAmount::Open => None,
        }
    }

    /// The status after `paid` shillings in total.
    pub fn status_for(&self, paid: u64) -> ExpectedStatus {
        match (self, paid) {
            (_, 0) => ExpectedStatus::Open,
            (ExpectedAmount::Exact { value }, p) if p < value.shillings() => ExpectedStatus::PartiallyPaid,
            (ExpectedAmount::Exact { value }, p) if p == value.shillings() => ExpectedStatus::Paid,
            (ExpectedAmount::Exact { .. }, _) => ExpectedStatus::Overpaid,
            (ExpectedAmount::Minimum { value }, p) if p < value.shillings() => ExpectedStatus::PartiallyPaid,
            (ExpectedAmount::Minimum { .. } | ExpectedAmount::Open, _) => ExpectedStatus::Paid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStatus {
    Open,
    PartiallyPaid,
    Paid,
    Overpaid,
}

impl ExpectedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Open => "open",
            ExpectedStatus::PartiallyPaid => "partially_paid",
            ExpectedStatus::Paid => "paid",
            ExpectedStatus::Overpaid => "overpaid",
        }
    }
}

/// One confirmation applied to an expected payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPayment {
    pub c2b_payment_id: C2bPaymentId,
    pub trans_id: String,
    pub amount: Amount,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedPayment {
    pub id: ExpectedPaymentId,
    pub owner: ClientId,
    pub shortcode: Shortcode,
    pub account_number: AccountNumber,
    pub amount: ExpectedAmount,
    /// Whole shillings received so far.
    pub amount_paid: u64,
    pub status: ExpectedStatus,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub metadata: Metadata,
    /// The first [`ExpectedPayment::MAX_LISTED_PAYMENTS`] payments applied (all are counted).
    pub payments: Vec<AppliedPayment>,
    pub payment_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

/// Why a payment was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// Received at or after `expires_at`.
    Expired,
}

impl ExpectedPayment {
    pub const MAX_LISTED_PAYMENTS: usize = 100;

    #[allow(clippy::too_many_arguments)]
    pub fn create(
        id: ExpectedPaymentId,
        owner: ClientId,
        shortcode: Shortcode,
        account_number: AccountNumber,
        amount: ExpectedAmount,
        expires_at: DateTime<Utc>,
        metadata: Metadata,
        now: DateTime<Utc>,
    ) -> ExpectedPayment {
        ExpectedPayment {
            id,
            owner,
            shortcode,
            account_number,
            amount,
            amount_paid: 0,
            status: ExpectedStatus::Open,
            expires_at,
            metadata,
            payments: Vec::new(),
            payment_count: 0,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn is_expired(&self, at: DateTime<Utc>) -> bool {
        at >= self.expires_at
    }

    /// What the API shows: the stored status, or `expired` for an unsettled one past its expiry.
    pub fn status_at(&self, at: DateTime<Utc>) -> &'static str {
        match self.status {
            ExpectedStatus::Open | ExpectedStatus::PartiallyPaid if self.is_expired(at) => "expired",
            status => status.as_str(),
        }
    }

    /// Shillings still owed for an exact amount; `None` when any amount is welcome.
    pub fn remaining(&self) -> Option<u64> {
        match self.amount {
            ExpectedAmount::Exact { value } => Some(value.shillings().saturating_sub(self.amount_paid)),
            ExpectedAmount::Minimum { .. } | ExpectedAmount::Open => None,
        }
    }

    /// Whether validation accepts a payment of `amount`: only what is still owed for an exact
    /// amount (partial payments included); anything for a minimum or open amount.
    pub fn accepts(&self, amount: Amount) -> bool {
        self.remaining().is_none_or(|owed| amount.shillings() <= owed)
    }

    /// The expected payment after `payment`. Over-payments are applied (the money has moved)
    /// and show as `overpaid`.
    pub fn apply(&self, payment: AppliedPayment, now: DateTime<Utc>) -> Result<ExpectedPayment, NotApplied> {
        if self.is_expired(payment.received_at) {
            return Err(NotApplied::Expired);
        }
        let mut next = self.clone();
        next.amount_paid = self.amount_paid.saturating_add(payment.amount.shillings());
        next.status = self.amount.status_for(next.amount_paid);
        next.payment_count = self.payment_count.saturating_add(1);
        if next.payments.len() < Self::MAX_LISTED_PAYMENTS {
            next.payments.push(payment);
        }
        next.updated_at = now;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn kes(n: u64) -> Amount {
        Amount::new(n).unwrap()
    }

    fn invoice(amount: ExpectedAmount) -> ExpectedPayment {
        ExpectedPayment::create(
            ExpectedPaymentId::generate(),
            ClientId::parse("merchant").unwrap(),
            Shortcode::parse("600984").unwrap(),
            AccountNumber::parse("INV-2231").unwrap(),
            amount,
            t0() + chrono::Duration::days(1),
            Metadata::default(),
            t0(),
        )
    }

    fn paid(n: u64, minutes: i64) -> AppliedPayment {
        AppliedPayment {
            c2b_payment_id: C2bPaymentId::generate(),
            trans_id: format!("TKL{n}"),
            amount: kes(n),
            received_at: t0() + chrono::Duration::minutes(minutes),
        }
    }

    #[test]
    fn exact_partial_paid_overpaid() {
        let e = invoice(ExpectedAmount::Exact { value: kes(500) });
        assert_eq!(e.status_at(t0()), "open");
        let partial = e.apply(paid(200, 1), t0()).unwrap();
        assert_eq!(
            (partial.status, partial.amount_paid, partial.remaining()),
            (ExpectedStatus::PartiallyPaid, 200, Some(300))
        );
        assert!(partial.accepts(kes(300)) && !partial.accepts(kes(301)));
        let full = partial.apply(paid(300, 2), t0()).unwrap();
        assert_eq!((full.status, full.amount_paid), (ExpectedStatus::Paid, 500));
        assert!(!full.accepts(kes(1)), "nothing more is owed");
        let over = full.apply(paid(50, 3), t0()).unwrap();
        assert_eq!(
            (over.status, over.amount_paid, over.payment_count),
            (ExpectedStatus::Overpaid, 550, 3)
        );
        assert_eq!(over.payments.len(), 3);
    }

    #[test]
    fn minimum_and_open() {
        let min = invoice(ExpectedAmount::Minimum { value: kes(1000) });
        let part = min.apply(paid(400, 1), t0()).unwrap();
        assert_eq!(part.status, ExpectedStatus::PartiallyPaid);
        let done = part.apply(paid(5000, 2), t0()).unwrap();
        assert_eq!((done.status, done.amount_paid), (ExpectedStatus::Paid, 5400));
        assert!(done.accepts(kes(250_000)));
        let open = invoice(ExpectedAmount::Open).apply(paid(1, 1), t0()).unwrap();
        assert_eq!(open.status, ExpectedStatus::Paid);
    }

    #[test]
    fn expiry() {
        let e = invoice(ExpectedAmount::Exact { value: kes(500) });
        let after = 24 * 60;
        assert_eq!(e.apply(paid(500, after), t0()), Err(NotApplied::Expired));
        assert!(e.apply(paid(500, after - 1), t0()).is_ok());
        assert_eq!(e.status_at(t0() + chrono::Duration::days(2)), "expired");
        let settled = e.apply(paid(500, 1), t0()).unwrap();
        assert_eq!(
            settled.status_at(t0() + chrono::Duration::days(2)),
            "paid",
            "settled ones stay settled"
        );
    }

    #[test]
    fn the_payment_list_is_bounded_but_every_payment_counts() {
        let mut e = invoice(ExpectedAmount::Open);
        for i in 0..(ExpectedPayment::MAX_LISTED_PAYMENTS as u64 + 5) {
            e = e.apply(paid(1 + i, 1), t0()).unwrap();
        }
        assert_eq!(e.payments.len(), ExpectedPayment::MAX_LISTED_PAYMENTS);
        assert_eq!(e.payment_count as usize, ExpectedPayment::MAX_LISTED_PAYMENTS + 5);
    }

    proptest! {
        /// Whatever payments arrive: the total is their sum, the status is the rule's verdict on
        /// that total, and an exact invoice is paid exactly when the total equals its amount.
        #[test]
        fn totals_and_statuses_agree(value in 1u64..10_000, payments in prop::collection::vec(1u64..5_000, 0..12), rule in 0u8..3) {
            let amount = match rule {
                0 => ExpectedAmount::Exact { value: kes(value) },
                1 => ExpectedAmount::Minimum { value: kes(value) },
                _ => ExpectedAmount::Open,
            };
            let mut e = invoice(amount);
            for (i, p) in payments.iter().enumerate() {
                let before = e.amount_paid;
                e = e.apply(paid(*p, i as i64), t0()).unwrap();
                prop_assert_eq!(e.amount_paid, before + p);
            }
            let total: u64 = payments.iter().sum();
            prop_assert_eq!(e.amount_paid, total);
            prop_assert_eq!(e.status, amount.status_for(total));
            prop_assert_eq!(e.payment_count as usize, payments.len());
            if let ExpectedAmount::Exact { value } = amount {
                prop_assert_eq!(e.status == ExpectedStatus::Paid, total == value.shillings());
                prop_assert_eq!(e.status == ExpectedStatus::Overpaid, total > value.shillings());
            }
        }
    }
}
