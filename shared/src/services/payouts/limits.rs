//! Payout limits (the same pattern as [`crate::services::limits`]):
//! - per request: a maximum amount (a policy check, no write);
//! - per merchant and recipient per Nairobi day: an amount cap, a counter increment with a max in
//!   the transaction that creates the payout (recipient phone only as a keyed hash in the key);
//! - per merchant per Nairobi day: count and amount caps, reserved before that transaction with a
//!   single-item conditional add and given back if the payout was definitely not created (the
//!   merchant's item is hot: see [`crate::services::limits`] for why, and for the over-count a crash can
//!   leave).
//!
//! Amounts counted for a payout that later fails or is rejected are not given back: the caps
//! bound what may be *asked* per day, which is the conservative reading.
//!
//! ## The approval threshold applies to a recipient's daily total
//!
//! A payout above the threshold waits for a second principal's approval. So that splitting one
//! large payout into several small ones does not avoid that, the amount a merchant pays a
//! recipient *without* approval is also bounded per Nairobi day: a counter of auto-approved
//! amount per merchant, recipient and day, incremented with max = threshold inside the creation
//! transaction ([`auto_approval`]). When that condition fails, the payout is created
//! `awaiting_approval` instead (and its amount is not added). So, with a threshold of T, the
//! payouts one merchant sends one recipient in a day without a second principal total at most T;
//! concurrent requests cannot both slip under (the counter's condition is atomic). Approved
//! payouts are not counted (a person decided them); nothing is given back when an auto-approved
//! payout fails.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::domain::payout::Payout;
use crate::domain::ClientId;
use crate::services::limits::{
    give_back, nairobi_day, refusal, reserve_merchant_caps, to_i64, Admission, LimitError, LimitKind, LimitRefusal,
    MerchantCaps, PhoneHasher, Reservation,
};
use crate::store::{CounterAdd, Table, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutLimitsConfig {
    /// Largest single payout, KES (at most 250 000, Daraja's own maximum).
    pub payout_max: u64,
    pub recipient_daily_amount: Option<u64>,
    pub merchant_daily_amount: Option<u64>,
    pub merchant_daily_count: Option<u64>,
}

impl Default for PayoutLimitsConfig {
    fn default() -> Self {
        PayoutLimitsConfig {
            payout_max: 250_000,
            // M-Pesa's own daily transaction value limit for a customer.
            recipient_daily_amount: Some(500_000),
            merchant_daily_amount: Some(10_000_000),
            merchant_daily_count: Some(10_000),
        }
    }
}

pub struct PayoutLimits {
    pub table: Arc<dyn Table>,
    pub config: PayoutLimitsConfig,
}

// Merchant ids cannot contain '#', so `<merchant>#<hash>` splits unambiguously.
fn recipient_day_key(merchant: &ClientId, phone_hash: &str, day: &str) -> String {
    format!("LIMIT#PO#PHONEDAY#{merchant}#{phone_hash}#{day}")
}

fn auto_approved_day_key(merchant: &ClientId, phone_hash: &str, day: &str) -> String {
    format!("LIMIT#PO#AUTODAY#{merchant}#{phone_hash}#{day}")
}

fn merchant_day_key(client: &ClientId, day: &str) -> String {
    format!("LIMIT#PO#CLIENTDAY#{client}#{day}")
}

/// The write that lets `payout` through without approval under a `threshold` (KES): adds its
/// amount to the merchant's auto-approved total for the recipient today, failing its condition
/// if that total would pass the threshold (then the payout must wait for approval instead).
pub fn auto_approval(payout: &Payout, phones: &PhoneHasher, threshold: u64, now: DateTime<Utc>) -> Write {
    let (day, next_day) = nairobi_day(now);
    Write::Add {
        key: auto_approved_day_key(&payout.owner, &phones.hash(&payout.phone), &day),
        counters: vec![CounterAdd {
            name: "amount".into(),
            delta: to_i64(payout.amount.shillings()),
            max: Some(to_i64(threshold)),
        }],
        expires_at: Some((next_day + Duration::days(1)).timestamp()),
    }
}

impl PayoutLimits {
    /// Refuses by policy, or returns the writes that must commit with the payout.
    pub fn admit(&self, payout: &Payout, phones: &PhoneHasher, now: DateTime<Utc>) -> Result<Admission, LimitRefusal> {
        let amount = payout.amount.shillings();
        if amount > self.config.payout_max {
            return Err(refusal("payout_amount_max", None, false));
        }
        let mut admission = Admission {
            writes: Vec::new(),
            kinds: Vec::new(),
        };
        let (day, next_day) = nairobi_day(now);
        let day_expiry = (next_day + Duration::days(1)).timestamp();
        if let Some(cap) = self.config.recipient_daily_amount {
            admission.writes.push(Write::Add {
                key: recipient_day_key(&payout.owner, &phones.hash(&payout.phone), &day),
                counters: vec![CounterAdd {
                    name: "amount".into(),
                    delta: to_i64(amount),
                    max: Some(to_i64(cap)),
                }],
                expires_at: Some(day_expiry),
            });
            admission.kinds.push(LimitKind::PhoneDailyAmount);
        }
        Ok(admission)
    }

    /// Why write `index` of `admission` failed (its counters only fail when a cap would be passed).
    pub fn explain(&self, _admission: &Admission, _index: usize, now: DateTime<Utc>) -> LimitRefusal {
        let (_, next_day) = nairobi_day(now);
        refusal("recipient_daily_amount", Some(next_day), false)
    }

    /// Reserves the merchant's daily caps for the payout (outside its creation transaction), or
    /// refuses. `None`: no merchant cap is configured.
    pub async fn reserve(&self, payout: &Payout, now: DateTime<Utc>) -> Result<Option<Reservation>, LimitError> {
        let (day, _) = nairobi_day(now);
        reserve_merchant_caps(
            self.table.as_ref(),
            MerchantCaps {
                key: merchant_day_key(&payout.owner, &day),
                count: self.config.merchant_daily_count,
                amount: self.config.merchant_daily_amount,
                count_limit: "merchant_daily_payout_count",
                amount_limit: "merchant_daily_payout_amount",
            },
            payout.amount.shillings(),
            now,
        )
        .await
    }

    /// Gives a reservation back: the payout it was for was definitely not created.
    pub async fn release(&self, reservation: &Reservation) {
        give_back(self.table.as_ref(), reservation).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Msisdn;
    use crate::secrets::Secret;

    #[test]
    fn recipient_keys_hide_the_number_are_per_merchant_and_separate_from_payment_limits() {
        let phones = PhoneHasher::new(Secret::new("k".repeat(32)));
        let phone = Msisdn::parse("0712345678").unwrap();
        let a = ClientId::parse("merchant-a").unwrap();
        let b = ClientId::parse("merchant-b").unwrap();
        let key = recipient_day_key(&a, &phones.hash(&phone), "2026-11-21");
        assert!(!key.contains("712345678"));
        assert!(key.starts_with("LIMIT#PO#"));
        assert_eq!(
            key,
            recipient_day_key(&a, &phones.hash(&Msisdn::parse("+254712345678").unwrap()), "2026-11-21")
        );
        assert_ne!(key, recipient_day_key(&b, &phones.hash(&phone), "2026-11-21"));
        assert_ne!(
            auto_approved_day_key(&a, &phones.hash(&phone), "2026-11-21"),
            auto_approved_day_key(&b, &phones.hash(&phone), "2026-11-21")
        );
    }
}
