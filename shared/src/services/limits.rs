//! Transaction limits and anti-abuse, enforced with the payment's creation.
//!
//! - per payment: configured min/max amount (a policy check, no write);
//! - per merchant and phone: at most N prompts in a rolling window (an item holding the recent
//!   send times, replaced with a version condition), and a daily amount cap (an atomic counter
//!   with a max); both are conditional writes in the transaction that creates the payment, so
//!   concurrent requests can never together pass one;
//! - per merchant: daily count and amount caps, *reserved before* that transaction (below).
//!
//! Every key carries the merchant (the record's `owner`): one merchant can never spend another
//! merchant's window or cap for a phone. Phone numbers appear in keys only as a keyed hash
//! ([`PhoneHasher`]: HMAC-SHA256 with the secret's limits key, so the ~10⁹ possible numbers
//! cannot be hashed and matched by whoever reads the table). Days are Nairobi days (UTC+3).
//!
//! ## Merchant caps: reserved outside the creation transaction
//!
//! The merchant's daily counter is one item that every creation by that merchant updates.
//! DynamoDB cancels a transaction (`TransactionConflict`) while another transaction is in
//! progress on one of its items, so inside the creation transaction that item would serialise
//! (and fail) a merchant's concurrent payments. Instead the counter is *reserved* first with a
//! single-item conditional atomic add (`ADD` with a max: exact, and single-item updates of one
//! item are serialised by DynamoDB without conflicts), then the creation transaction runs
//! without it. When the transaction definitely did not commit (a failed condition, a refusal,
//! an idempotent replay, a conflict that outlived its retries), the reservation is given back
//! with a negative add. When its outcome is unknown (a timeout), or the process dies between the
//! two, the reservation stays: the cap may count a payment that does not exist (an over-count,
//! conservative: the merchant may be refused early), never one it did not count (no
//! over-spend). A give-back that fails is logged and counted (`LimitReleaseFailures`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{ClientId, Msisdn, Payment};
use crate::metrics;
use crate::secrets::{AppSecrets, Secret};
use crate::store::{Condition, CounterAdd, Item, StoreError, Table, Write};

/// Which limit refused a request, and when it lets the same request through again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitRefusal {
    pub limit: String,
    /// When the limit resets; `None`: never for this request (it is outside a per-request bound).
    pub resets_at: Option<DateTime<Utc>>,
    /// A rate (a number of requests in a window) rather than a cap on amounts: waiting is the
    /// remedy, so the API answers 429 with `Retry-After` (caps answer 422).
    pub is_rate: bool,
}

/// Why the limits did not admit a request: the error contract of [`AdmissionControl`] and of
/// the payout limits ([`crate::services::payouts::limits`]). In every case nothing was reserved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// A limit refuses the request. The same request may pass once the limit resets
    /// ([`LimitRefusal::resets_at`]); one outside a per-request bound never does.
    #[error("refused by the {} limit", .0.limit)]
    Refused(LimitRefusal),
    /// The limits could not be read or reserved (the store is unavailable): retryable.
    #[error("the limits could not be read")]
    Unavailable,
    /// The store failed the reservation for another reason (a bug or a corrupt item): not
    /// retryable as is.
    #[error("the limits could not be reserved")]
    Internal,
}

impl From<LimitRefusal> for LimitError {
    fn from(refusal: LimitRefusal) -> LimitError {
        LimitError::Refused(refusal)
    }
}

impl From<StoreError> for LimitError {
    fn from(error: StoreError) -> LimitError {
        if crate::services::store_failure::is_retryable(&error) {
            LimitError::Unavailable
        } else {
            LimitError::Internal
        }
    }
}

impl LimitError {
    /// The refusing limit's name, for metrics and logs ("other" when no limit refused).
    pub fn limit(&self) -> &str {
        match self {
            LimitError::Refused(refusal) => &refusal.limit,
            _ => "other",
        }
    }
}

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

/// Hashes phone numbers for limit keys: HMAC-SHA256 keyed with the secret's limits key
/// ([`AppSecrets::limits_hmac_key`]), cut to 128 bits (hex). Without the key a hash cannot be
/// computed, so the table's keys do not reveal numbers.
#[derive(Clone)]
pub struct PhoneHasher {
    key: Secret,
}

impl fmt::Debug for PhoneHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneHasher(***)")
    }
}

impl PhoneHasher {
    pub fn new(key: Secret) -> PhoneHasher {
        PhoneHasher { key }
    }

    /// The hasher of the loaded secrets, or why there is none (the `callback-keys` part, which
    /// holds the key, is not loaded).
    pub fn from_secrets(secrets: &AppSecrets) -> Result<PhoneHasher, crate::secrets::SecretsError> {
        secrets.limits_hmac_key().map(PhoneHasher::new)
    }

    /// The phone's hash (of the canonical `2547…` form, so every spelling of a number is one key).
    pub fn hash(&self, phone: &Msisdn) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(phone.as_str().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

/// Which limit a write enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    PhonePrompts,
    PhoneDailyAmount,
    /// The payout approval rule's auto-approved daily total ([`crate::services::payouts::limits`]).
    AutoApproval,
}

/// The writes that enforce the limits for one payment, in order, all in its creation transaction.
pub struct Admission {
    pub writes: Vec<Write>,
    pub kinds: Vec<LimitKind>,
}

/// A merchant's daily counters, taken before the creation transaction by one single-item
/// conditional add and given back if the creation definitely did not happen (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    key: String,
    counters: Vec<CounterAdd>,
    expires_at: i64,
}

impl Reservation {
    /// The single-item add that takes it: fails its condition if a cap would be passed.
    pub fn take(&self) -> Write {
        Write::Add {
            key: self.key.clone(),
            counters: self.counters.clone(),
            expires_at: Some(self.expires_at),
        }
    }

    /// The single-item add that gives it back (unconditional: the counters were taken).
    pub fn give_back(&self) -> Write {
        Write::Add {
            key: self.key.clone(),
            counters: self
                .counters
                .iter()
                .map(|c| CounterAdd {
                    name: c.name.clone(),
                    delta: -c.delta,
                    max: None,
                })
                .collect(),
            expires_at: Some(self.expires_at),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Takes `reservation`: `Ok(false)` when a cap would be passed (nothing taken).
pub async fn reserve(table: &dyn Table, reservation: &Reservation) -> Result<bool, StoreError> {
    match table.write(vec![reservation.take()]).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Gives `reservation` back after a creation that definitely did not commit. Retried on a
/// transient failure; a give-back that still fails leaves an over-count, logged and counted.
pub async fn give_back(table: &dyn Table, reservation: &Reservation) {
    for attempt in 0..3u64 {
        match table.write(vec![reservation.give_back()]).await {
            Ok(()) => return,
            Err(error) if attempt == 2 => {
                metrics::count("LimitReleaseFailures", 1, &[]);
                tracing::error!(%error, key = reservation.key(), "could not give a limit reservation back; the cap over-counts until the day ends");
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5 * (attempt + 1))).await,
        }
    }
}

/// The reservation of a merchant's daily count and amount caps (`None` when neither is set).
pub(crate) fn merchant_reservation(
    key: String,
    count_cap: Option<u64>,
    amount_cap: Option<u64>,
    amount: u64,
    now: DateTime<Utc>,
) -> Option<Reservation> {
    let mut counters = Vec::new();
    if let Some(cap) = count_cap {
        counters.push(CounterAdd {
            name: "count".into(),
            delta: 1,
            max: Some(to_i64(cap)),
        });
    }
    if let Some(cap) = amount_cap {
        counters.push(CounterAdd {
            name: "amount".into(),
            delta: to_i64(amount),
            max: Some(to_i64(cap)),
        });
    }
    let (_, next_day) = nairobi_day(now);
    (!counters.is_empty()).then(|| Reservation {
        key,
        counters,
        expires_at: (next_day + Duration::days(1)).timestamp(),
    })
}

/// A merchant's daily caps on one counter item, and the names a refusal gives each.
pub(crate) struct MerchantCaps {
    pub key: String,
    pub count: Option<u64>,
    pub amount: Option<u64>,
    pub count_limit: &'static str,
    pub amount_limit: &'static str,
}

/// Reserves `amount` (and one more in the count) against `caps`, outside any creation
/// transaction, or refuses naming the cap that is full. `None`: no cap is configured.
pub(crate) async fn reserve_merchant_caps(
    table: &dyn Table,
    caps: MerchantCaps,
    amount: u64,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, LimitError> {
    let (_, next_day) = nairobi_day(now);
    let Some(reservation) = merchant_reservation(caps.key, caps.count, caps.amount, amount, now) else {
        return Ok(None);
    };
    match reserve(table, &reservation).await {
        Ok(true) => Ok(Some(reservation)),
        Ok(false) if count_cap_is_full(table, &reservation).await => {
            Err(refusal(caps.count_limit, Some(next_day), true).into())
        }
        Ok(false) => Err(refusal(caps.amount_limit, Some(next_day), false).into()),
        Err(error) => Err(error.into()),
    }
}

/// Whether the count cap is the one a refused reservation would have passed (else the amount).
pub(crate) async fn count_cap_is_full(table: &dyn Table, reservation: &Reservation) -> bool {
    let stored = match table.get(reservation.key()).await {
        Ok(Some(item)) => item.counters,
        _ => Default::default(),
    };
    reservation.counters.iter().any(|c| {
        c.name == "count"
            && c.max
                .is_some_and(|max| stored.get("count").copied().unwrap_or(0) + c.delta > max)
    })
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
pub trait AdmissionControl: Send + Sync {
    /// Refuses by policy, or returns the writes that must commit with the payment.
    async fn admit(&self, payment: &Payment, phones: &PhoneHasher, now: DateTime<Utc>)
        -> Result<Admission, LimitError>;
    /// Why write `index` of `admission` failed: a refusal, or `None` for a race worth retrying.
    async fn explain(
        &self,
        admission: &Admission,
        index: usize,
        payment: &Payment,
        now: DateTime<Utc>,
    ) -> Option<LimitRefusal>;
    /// Reserves the merchant's daily caps for the payment (outside its creation transaction),
    /// or refuses. `None`: no merchant cap is configured.
    async fn reserve(&self, payment: &Payment, now: DateTime<Utc>) -> Result<Option<Reservation>, LimitError>;
    /// Gives a reservation back: the payment it was for was definitely not created.
    async fn release(&self, reservation: &Reservation);
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

// Merchant ids cannot contain '#', so `<merchant>#<hash>` splits unambiguously.
fn window_key(merchant: &ClientId, phone_hash: &str) -> String {
    format!("LIMIT#PHONEWIN#{merchant}#{phone_hash}")
}

fn phone_day_key(merchant: &ClientId, phone_hash: &str, day: &str) -> String {
    format!("LIMIT#PHONEDAY#{merchant}#{phone_hash}#{day}")
}

fn merchant_day_key(client: &ClientId, day: &str) -> String {
    format!("LIMIT#CLIENTDAY#{client}#{day}")
}

pub(crate) fn refusal(limit: &str, resets_at: Option<DateTime<Utc>>, is_rate: bool) -> LimitRefusal {
    LimitRefusal {
        limit: limit.to_owned(),
        resets_at,
        is_rate,
    }
}

#[async_trait]
impl AdmissionControl for Limits {
    async fn admit(
        &self,
        payment: &Payment,
        phones: &PhoneHasher,
        now: DateTime<Utc>,
    ) -> Result<Admission, LimitError> {
        let amount = payment.amount.shillings();
        if amount < self.config.payment_min {
            return Err(refusal("payment_amount_min", None, false).into());
        }
        if amount > self.config.payment_max {
            return Err(refusal("payment_amount_max", None, false).into());
        }
        let mut admission = Admission {
            writes: Vec::new(),
            kinds: Vec::new(),
        };
        let (day, next_day) = nairobi_day(now);
        let day_expiry = (next_day + Duration::days(1)).timestamp();
        let phone = phones.hash(&payment.phone);

        if let Some(limit) = self.config.phone_prompts {
            let key = window_key(&payment.owner, &phone);
            let stored = self.table.get(&key).await.map_err(|_| LimitError::Unavailable)?;
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
                return Err(refusal("phone_prompts", resets, true).into());
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
                key: phone_day_key(&payment.owner, &phone, &day),
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

    async fn explain(
        &self,
        admission: &Admission,
        index: usize,
        _payment: &Payment,
        now: DateTime<Utc>,
    ) -> Option<LimitRefusal> {
        let (_, next_day) = nairobi_day(now);
        match admission.kinds.get(index)? {
            // The window changed since we read it: decide again from the new one.
            LimitKind::PhonePrompts => None,
            LimitKind::PhoneDailyAmount => Some(refusal("phone_daily_amount", Some(next_day), false)),
            LimitKind::AutoApproval => None,
        }
    }

    async fn reserve(&self, payment: &Payment, now: DateTime<Utc>) -> Result<Option<Reservation>, LimitError> {
        let (day, _) = nairobi_day(now);
        reserve_merchant_caps(
            self.table.as_ref(),
            MerchantCaps {
                key: merchant_day_key(&payment.owner, &day),
                count: self.config.merchant_daily_count,
                amount: self.config.merchant_daily_amount,
                count_limit: "merchant_daily_count",
                amount_limit: "merchant_daily_amount",
            },
            payment.amount.shillings(),
            now,
        )
        .await
    }

    async fn release(&self, reservation: &Reservation) {
        give_back(self.table.as_ref(), reservation).await;
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

    fn hasher(key: &str) -> PhoneHasher {
        PhoneHasher::new(Secret::new(key))
    }

    #[test]
    fn phone_keys_do_not_reveal_the_number_and_are_keyed() {
        let phone = Msisdn::parse("0712345678").unwrap();
        let merchant = ClientId::parse("merchant-a").unwrap();
        let phones = hasher(&"k".repeat(32));
        let key = window_key(&merchant, &phones.hash(&phone));
        assert!(!key.contains("712345678"));
        assert_eq!(
            key,
            window_key(&merchant, &phones.hash(&Msisdn::parse("+254712345678").unwrap()))
        );
        // Not a bare digest: without the key, hashing every number does not find it.
        let bare: String = <Sha256 as sha2::Digest>::digest(phone.as_str().as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(phones.hash(&phone), bare);
        // Another key, another hash.
        assert_ne!(phones.hash(&phone), hasher(&"j".repeat(32)).hash(&phone));
        assert!(!format!("{phones:?}").contains("kkkk"));
    }

    #[test]
    fn phone_keys_are_per_merchant() {
        let phone = hasher(&"k".repeat(32)).hash(&Msisdn::parse("0712345678").unwrap());
        let a = ClientId::parse("merchant-a").unwrap();
        let b = ClientId::parse("merchant-b").unwrap();
        assert_ne!(window_key(&a, &phone), window_key(&b, &phone));
        assert_ne!(
            phone_day_key(&a, &phone, "2026-11-21"),
            phone_day_key(&b, &phone, "2026-11-21")
        );
    }

    #[test]
    fn a_reservation_gives_back_exactly_what_it_took() {
        let now = Utc::now();
        let reservation = merchant_reservation("LIMIT#CLIENTDAY#m#d".into(), Some(10), Some(1000), 250, now).unwrap();
        let Write::Add { counters: taken, .. } = reservation.take() else {
            panic!("an add")
        };
        let Write::Add { counters: given, .. } = reservation.give_back() else {
            panic!("an add")
        };
        let shape = |c: &[CounterAdd]| c.iter().map(|c| (c.name.clone(), c.delta, c.max)).collect::<Vec<_>>();
        assert_eq!(
            shape(&taken),
            [
                ("count".to_owned(), 1, Some(10)),
                ("amount".to_owned(), 250, Some(1000))
            ]
        );
        assert_eq!(
            shape(&given),
            [("count".to_owned(), -1, None), ("amount".to_owned(), -250, None)]
        );
        assert_eq!(merchant_reservation("k".into(), None, None, 250, now), None);
    }
}
