//! Transaction limits and anti-abuse, enforced atomically with the payment's creation.
//!
//! Every limit is a conditional write in the same DynamoDB transaction that creates the payment,
//! so concurrent requests can never together exceed one (no read-then-write race):
//! - per payment: configured min/max amount (a policy check, no write);
//! - per phone: at most N prompts in a rolling window (an item holding the recent send times,
//!   replaced with a version condition), and a daily amount cap (an atomic counter with a max);
//! - per merchant (JWT subject): daily count and amount caps (atomic counters with a max).
//!
//! Days are Nairobi days (UTC+3). Phone numbers appear in keys only as a hash.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::problem::{ApiError, LimitRefusal};
use crate::domain::{ClientId, Msisdn, Payment};
use crate::store::{Condition, CounterAdd, Item, Table, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingLimit {
    pub max: u32,
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub payment_min: u64,
    pub payment_max: u64,
    pub phone_prompts: Option<RollingLimit>,
    pub phone_daily_amount: Option<u64>,
    pub merchant_daily_count: Option<u64>,
    pub merchant_daily_amount: Option<u64>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            payment_min: 1,
            payment_max: 250_000,
            phone_prompts: Some(RollingLimit {
                max: 3,
                window: Duration::minutes(5),
            }),
            // M-Pesa's own daily transaction value limit for a customer.
            phone_daily_amount: Some(500_000),
            merchant_daily_count: Some(100_000),
            merchant_daily_amount: Some(50_000_000),
        }
    }
}

/// Which limit a write enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    PhonePrompts,
    PhoneDailyAmount,
    MerchantDaily,
}

/// The writes that enforce the limits for one payment, in order.
pub struct Admission {
    pub writes: Vec<Write>,
    pub kinds: Vec<LimitKind>,
}

#[async_trait]
pub trait AdmissionControl: Send + Sync {
    /// Refuses by policy, or returns the writes that must commit with the payment.
    async fn admit(&self, payment: &Payment, now: DateTime<Utc>) -> Result<Admission, ApiError>;
    /// Why write `index` of `admission` failed: a refusal, or `None` for a race worth retrying.
    async fn explain(
        &self,
        admission: &Admission,
        index: usize,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Option<ApiError>;
}

pub struct Limits {
    pub table: Arc<dyn Table>,
    pub config: LimitsConfig,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PromptWindow {
    /// Send times (epoch ms) inside the window, oldest first.
    sent: Vec<i64>,
}

fn nairobi() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600).unwrap_or_else(|| unreachable!())
}

/// The Nairobi date of `now` and the instant the next Nairobi day starts.
pub(crate) fn nairobi_day(now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let local = now.with_timezone(&nairobi());
    let tomorrow = local.date_naive().succ_opt().unwrap_or(local.date_naive());
    let next_midnight = nairobi()
        .from_local_datetime(&tomorrow.and_time(NaiveTime::MIN))
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now + Duration::days(1));
    (local.format("%Y-%m-%d").to_string(), next_midnight)
}

pub(crate) fn phone_key(phone: &Msisdn) -> String {
    let digest = Sha256::digest(phone.as_str().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn window_key(phone: &Msisdn) -> String {
    format!("LIMIT#PHONEWIN#{}", phone_key(phone))
}

fn phone_day_key(phone: &Msisdn, day: &str) -> String {
    format!("LIMIT#PHONEDAY#{}#{day}", phone_key(phone))
}

fn merchant_day_key(client: &ClientId, day: &str) -> String {
    format!("LIMIT#CLIENTDAY#{client}#{day}")
}

pub(crate) fn refusal(limit: &str, resets_at: Option<DateTime<Utc>>, is_rate: bool) -> ApiError {
    ApiError::LimitExceeded(LimitRefusal {
        limit: limit.to_owned(),
        resets_at,
        is_rate,
    })
}

impl Limits {
    fn to_i64(value: u64) -> i64 {
        i64::try_from(value).unwrap_or(i64::MAX)
    }
}

#[async_trait]
impl AdmissionControl for Limits {
    async fn admit(&self, payment: &Payment, now: DateTime<Utc>) -> Result<Admission, ApiError> {
        let amount = payment.amount.shillings();
        if amount < self.config.payment_min {
            return Err(refusal("payment_amount_min", None, false));
        }
        if amount > self.config.payment_max {
            return Err(refusal("payment_amount_max", None, false));
        }
        let mut admission = Admission {
            writes: Vec::new(),
            kinds: Vec::new(),
        };
        let (day, next_day) = nairobi_day(now);
        let day_expiry = (next_day + Duration::days(1)).timestamp();

        if let Some(limit) = self.config.phone_prompts {
            let key = window_key(&payment.phone);
            let stored = self.table.get(&key).await.map_err(|_| ApiError::Unavailable)?;
            let window_start = (now - limit.window).timestamp_millis();
            let (mut window, condition) = match &stored {
                Some(item) => (
                    serde_json::from_str::<PromptWindow>(&item.doc).unwrap_or_default(),
                    Condition::VersionIs(item.version),
                ),
                None => (
                    PromptWindow::default(),
                    Condition::Absent {
                        now_epoch: now.timestamp(),
                    },
                ),
            };
            window.sent.retain(|t| *t > window_start);
            if window.sent.len() >= limit.max as usize {
                let oldest = window.sent.first().copied().unwrap_or(now.timestamp_millis());
                let resets = DateTime::<Utc>::from_timestamp_millis(oldest).map(|t| t + limit.window);
                return Err(refusal("phone_prompts", resets, true));
            }
            window.sent.push(now.timestamp_millis());
            let version = stored.as_ref().map_or(1, |i| i.version + 1);
            let doc = serde_json::to_string(&window).unwrap_or_default();
            let item = Item::new(key, version, doc).expiring_at((now + limit.window).timestamp() + 1);
            admission.writes.push(Write::Put { item, condition });
            admission.kinds.push(LimitKind::PhonePrompts);
        }
        if let Some(cap) = self.config.phone_daily_amount {
            admission.writes.push(Write::Add {
                key: phone_day_key(&payment.phone, &day),
                counters: vec![CounterAdd {
                    name: "amount".into(),
                    delta: Self::to_i64(amount),
                    max: Some(Self::to_i64(cap)),
                }],
                expires_at: Some(day_expiry),
            });
            admission.kinds.push(LimitKind::PhoneDailyAmount);
        }
        if self.config.merchant_daily_count.is_some() || self.config.merchant_daily_amount.is_some() {
            let mut counters = Vec::new();
            if let Some(cap) = self.config.merchant_daily_count {
                counters.push(CounterAdd {
                    name: "count".into(),
                    delta: 1,
                    max: Some(Self::to_i64(cap)),
                });
            }
            if let Some(cap) = self.config.merchant_daily_amount {
                counters.push(CounterAdd {
                    name: "amount".into(),
                    delta: Self::to_i64(amount),
                    max: Some(Self::to_i64(cap)),
                });
            }
            admission.writes.push(Write::Add {
                key: merchant_day_key(&payment.owner, &day),
                counters,
                expires_at: Some(day_expiry),
            });
            admission.kinds.push(LimitKind::MerchantDaily);
        }
        Ok(admission)
    }

    async fn explain(
        &self,
        admission: &Admission,
        index: usize,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Option<ApiError> {
        let (day, next_day) = nairobi_day(now);
        match admission.kinds.get(index)? {
            // The window changed since we read it: decide again from the new one.
            LimitKind::PhonePrompts => None,
            LimitKind::PhoneDailyAmount => Some(refusal("phone_daily_amount", Some(next_day), false)),
            LimitKind::MerchantDaily => {
                let counters = match self.table.get(&merchant_day_key(&payment.owner, &day)).await {
                    Ok(Some(item)) => item.counters,
                    _ => Default::default(),
                };
                let count_full = self
                    .config
                    .merchant_daily_count
                    .is_some_and(|cap| counters.get("count").copied().unwrap_or(0) + 1 > Self::to_i64(cap));
                Some(if count_full {
                    refusal("merchant_daily_count", Some(next_day), true)
                } else {
                    refusal("merchant_daily_amount", Some(next_day), false)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nairobi_days_roll_at_local_midnight() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T20:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let (day, next) = nairobi_day(t);
        assert_eq!(day, "2026-11-21");
        assert_eq!(next.to_rfc3339(), "2026-11-21T21:00:00+00:00");
        let (day, _) = nairobi_day(t + Duration::seconds(1));
        assert_eq!(day, "2026-11-22");
    }

    #[test]
    fn phone_keys_do_not_reveal_the_number() {
        let phone = Msisdn::parse("0712345678").unwrap();
        assert!(!window_key(&phone).contains("712345678"));
        assert_eq!(window_key(&phone), window_key(&Msisdn::parse("+254712345678").unwrap()));
    }
}
