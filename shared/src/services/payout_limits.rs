//! Payout limits, enforced atomically with the payout's creation (the same pattern as
//! [`super::limits`]): every cap is a counter increment with a maximum, written in the same
//! DynamoDB transaction that creates the payout, so concurrent requests can never together
//! exceed one.
//! - per request: a maximum amount (a policy check, no write);
//! - per recipient per Nairobi day: an amount cap (recipient phone only as a hash in the key);
//! - per merchant (JWT subject) per Nairobi day: count and amount caps.
//!
//! Amounts reserved by a payout that later fails or is rejected are not given back: the caps
//! bound what may be *asked* per day, which is the conservative reading.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::limits::{nairobi_day, phone_key, refusal, Admission, LimitKind};
use crate::api::problem::ApiError;
use crate::domain::payout::Payout;
use crate::domain::{ClientId, Msisdn};
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

fn recipient_day_key(phone: &Msisdn, day: &str) -> String {
    format!("LIMIT#PO#PHONEDAY#{}#{day}", phone_key(phone))
}

fn merchant_day_key(client: &ClientId, day: &str) -> String {
    format!("LIMIT#PO#CLIENTDAY#{client}#{day}")
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl PayoutLimits {
    /// Refuses by policy, or returns the writes that must commit with the payout.
    pub fn admit(&self, payout: &Payout, now: DateTime<Utc>) -> Result<Admission, ApiError> {
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
                key: recipient_day_key(&payout.phone, &day),
                counters: vec![CounterAdd {
                    name: "amount".into(),
                    delta: to_i64(amount),
                    max: Some(to_i64(cap)),
                }],
                expires_at: Some(day_expiry),
            });
            admission.kinds.push(LimitKind::PhoneDailyAmount);
        }
        let mut counters = Vec::new();
        if let Some(cap) = self.config.merchant_daily_count {
            counters.push(CounterAdd {
                name: "count".into(),
                delta: 1,
                max: Some(to_i64(cap)),
            });
        }
        if let Some(cap) = self.config.merchant_daily_amount {
            counters.push(CounterAdd {
                name: "amount".into(),
                delta: to_i64(amount),
                max: Some(to_i64(cap)),
            });
        }
        if !counters.is_empty() {
            admission.writes.push(Write::Add {
                key: merchant_day_key(&payout.owner, &day),
                counters,
                expires_at: Some(day_expiry),
            });
            admission.kinds.push(LimitKind::MerchantDaily);
        }
        Ok(admission)
    }

    /// Why write `index` of `admission` failed (counters only fail when a cap would be passed).
    pub async fn explain(&self, admission: &Admission, index: usize, payout: &Payout, now: DateTime<Utc>) -> ApiError {
        let (day, next_day) = nairobi_day(now);
        match admission.kinds.get(index) {
            Some(LimitKind::MerchantDaily) => {
                let counters = match self.table.get(&merchant_day_key(&payout.owner, &day)).await {
                    Ok(Some(item)) => item.counters,
                    _ => Default::default(),
                };
                let count_full = self
                    .config
                    .merchant_daily_count
                    .is_some_and(|cap| counters.get("count").copied().unwrap_or(0) + 1 > to_i64(cap));
                if count_full {
                    refusal("merchant_daily_payout_count", Some(next_day), true)
                } else {
                    refusal("merchant_daily_payout_amount", Some(next_day), false)
                }
            }
            _ => refusal("recipient_daily_amount", Some(next_day), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_keys_hide_the_number_and_are_separate_from_payment_limits() {
        let phone = Msisdn::parse("0712345678").unwrap();
        let key = recipient_day_key(&phone, "2026-11-21");
        assert!(!key.contains("712345678"));
        assert!(key.starts_with("LIMIT#PO#"));
        assert_eq!(
            key,
            recipient_day_key(&Msisdn::parse("+254712345678").unwrap(), "2026-11-21")
        );
    }
}
