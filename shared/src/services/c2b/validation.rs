//! C2B validation: Daraja asks whether to complete a payment and waits about 8 seconds. We answer
//! in well under a second from the warm function: the token is an HMAC check, the shortcode's
//! rules come from an in-process cache (refreshed after a short TTL), and at most one GetItem
//! reads the account's expected payment, under a time budget. If our own dependencies fail or
//! are slow, the shortcode's configured default decides (counted), never a timeout.
//!
//! Validation changes nothing: the confirmation is what records money.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::errors::redact_id;
use crate::daraja::{parse_c2b_notification, C2bRejection, C2bValidationReply};
use crate::domain::c2b::{
    check_expected, screen, CompiledRules, DefaultDecision, Rejection, Screening, Shortcode, ShortcodeConfig,
    ValidationInput, Verdict,
};
use crate::domain::c2b_path_tokens::TokenId;
use crate::metrics;
use crate::repo::c2b as repo;
use crate::secrets::SecretCache;
use crate::store::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationSettings {
    /// Time allowed for our dependencies (secret on a cold start, rules on a cache miss, the
    /// expected-payment read); past it the default decision answers.
    pub budget: Duration,
    /// How long a shortcode's rules are reused before they are read again.
    pub rules_ttl: Duration,
    /// The decision when even the shortcode's configuration cannot be read.
    pub fallback: DefaultDecision,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            budget: Duration::from_millis(300),
            rules_ttl: Duration::from_secs(30),
            fallback: DefaultDecision::Accept,
        }
    }
}

/// What validation answered and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationOutcome {
    pub reply: C2bValidationReply,
    /// Stable: `accepted`, `expected_payment`, `invalid_token`, `amount_not_owed`, `fallback_...`.
    pub reason: &'static str,
    pub shortcode: Option<Shortcode>,
}

struct Loaded {
    config: ShortcodeConfig,
    rules: Option<CompiledRules>,
}

struct CacheEntry {
    loaded_at: Instant,
    value: Option<Arc<Loaded>>,
}

pub struct C2bValidator {
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    settings: ValidationSettings,
    known_sources: Vec<IpAddr>,
    cache: RwLock<HashMap<Shortcode, CacheEntry>>,
}

fn to_reply(code: Rejection) -> C2bRejection {
    match code {
        Rejection::InvalidMsisdn => C2bRejection::InvalidMsisdn,
        Rejection::InvalidAccountNumber => C2bRejection::InvalidAccountNumber,
        Rejection::InvalidAmount => C2bRejection::InvalidAmount,
        Rejection::InvalidKyc => C2bRejection::InvalidKyc,
        Rejection::InvalidShortcode => C2bRejection::InvalidShortcode,
        Rejection::Other => C2bRejection::Other,
    }
}

fn decided(verdict: Verdict) -> (C2bValidationReply, &'static str) {
    match verdict {
        Verdict::Accept { reason } => (C2bValidationReply::Accept, reason),
        Verdict::Reject { code, reason } => (C2bValidationReply::Reject(to_reply(code)), reason),
    }
}

/// The default decision, counted: our own dependency could not answer in time.
fn fallback(decision: DefaultDecision, reason: &'static str) -> (C2bValidationReply, &'static str) {
    metrics::count(
        "C2bValidationFallbacks",
        1,
        &[("Reason", reason), ("Decision", decision.as_str())],
    );
    tracing::warn!(
        reason,
        decision = decision.as_str(),
        "C2B validation answered by its default decision"
    );
    match decision {
        DefaultDecision::Accept => (C2bValidationReply::Accept, reason),
        DefaultDecision::Reject => (C2bValidationReply::Reject(C2bRejection::Other), reason),
    }
}

impl C2bValidator {
    pub fn new(
        table: Arc<dyn Table>,
        secrets: Arc<SecretCache>,
        clock: Arc<dyn Clock>,
        settings: ValidationSettings,
        known_sources: Vec<IpAddr>,
    ) -> C2bValidator {
        C2bValidator {
            table,
            secrets,
            clock,
            settings,
            known_sources,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// Fetches the secret ahead of the first request (cold start), so the first validation does
    /// not wait for Secrets Manager. Failures are left for the request path to handle.
    pub async fn warm_up(&self) {
        if let Err(error) = self.secrets.get().await {
            tracing::warn!(%error, "secret not available at start; will retry per request");
        }
    }

    /// Decides one validation request. Never fails: every path ends in a reply.
    pub async fn validate(&self, token: &str, body: &[u8], source_ip: Option<IpAddr>) -> ValidationOutcome {
        let started = Instant::now();
        if !self.known_sources.is_empty() && !source_ip.is_some_and(|ip| self.known_sources.contains(&ip)) {
            metrics::count("CallbackUnknownSource", 1, &[("Kind", "c2b_validation")]);
        }
        let (reply, reason, shortcode) = self.decide(token, body, started).await;
        let elapsed = started.elapsed();
        metrics::timing("C2bValidationLatency", elapsed);
        let result = match reply {
            C2bValidationReply::Accept => "0",
            C2bValidationReply::Reject(r) => r.code(),
        };
        metrics::count("C2bValidations", 1, &[("Result", result), ("Reason", reason)]);
        tracing::info!(
            shortcode = shortcode.as_ref().map(Shortcode::as_str),
            result,
            reason,
            latency_us = elapsed.as_micros() as u64,
            "C2B validation"
        );
        ValidationOutcome {
            reply,
            reason,
            shortcode,
        }
    }

    async fn decide(
        &self,
        token: &str,
        body: &[u8],
        started: Instant,
    ) -> (C2bValidationReply, &'static str, Option<Shortcode>) {
        let deadline = tokio::time::Instant::from_std(started + self.settings.budget);
        let secrets = match tokio::time::timeout_at(deadline, self.secrets.get()).await {
            Ok(Ok(secrets)) => secrets,
            Ok(Err(_)) => {
                let (reply, reason) = fallback(self.settings.fallback, "secrets_unavailable");
                return (reply, reason, None);
            }
            Err(_) => {
                let (reply, reason) = fallback(self.settings.fallback, "secrets_timeout");
                return (reply, reason, None);
            }
        };
        let tokens = CallbackTokens::from_secrets(&secrets);
        let Some(token_id) = tokens
            .verify_hex(TokenPurpose::C2bValidation, token)
            .and_then(TokenId::parse)
        else {
            metrics::count(
                "CallbackAnomalies",
                1,
                &[("Reason", "invalid_token"), ("Kind", "c2b_validation")],
            );
            tracing::warn!("C2B validation with an invalid token");
            return (
                C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                "invalid_token",
                None,
            );
        };
        let shortcode = token_id.shortcode.clone();
        let notification = match parse_c2b_notification(body) {
            Ok(n) => n,
            Err(error) => {
                metrics::count(
                    "CallbackAnomalies",
                    1,
                    &[("Reason", "malformed"), ("Kind", "c2b_validation")],
                );
                tracing::warn!(%error, shortcode = %shortcode, "malformed C2B validation request");
                return (
                    C2bValidationReply::Reject(C2bRejection::Other),
                    "malformed",
                    Some(shortcode),
                );
            }
        };
        if notification.business_short_code.as_deref() != Some(shortcode.as_str()) {
            metrics::count(
                "CallbackAnomalies",
                1,
                &[("Reason", "shortcode_mismatch"), ("Kind", "c2b_validation")],
            );
            tracing::warn!(shortcode = %shortcode, trans_id = %redact_id(&notification.trans_id), "validation for another shortcode");
            return (
                C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                "shortcode_mismatch",
                Some(shortcode),
            );
        }
        let loaded = match self.config(&shortcode, deadline).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => {
                return (
                    C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                    "unknown_shortcode",
                    Some(shortcode),
                )
            }
            Err(reason) => {
                let (reply, reason) = fallback(self.settings.fallback, reason);
                return (reply, reason, Some(shortcode));
            }
        };
        if !loaded.config.tokens.accepts(token_id.generation, self.clock.now()) {
            // A genuine MAC of a retired generation: the URL is no longer ours to answer on.
            metrics::count(
                "CallbackAnomalies",
                1,
                &[("Reason", "retired_token"), ("Kind", "c2b_validation")],
            );
            return (
                C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                "retired_token",
                Some(shortcode),
            );
        }
        let Some(rules) = loaded.rules.as_ref() else {
            let (reply, reason) = fallback(loaded.config.default_decision, "rules_unreadable");
            return (reply, reason, Some(shortcode));
        };
        let input = ValidationInput {
            msisdn: notification.msisdn.as_deref(),
            first_name: notification.first_name.as_deref(),
            middle_name: notification.middle_name.as_deref(),
            last_name: notification.last_name.as_deref(),
            amount: notification.trans_amount,
            bill_ref_number: notification.bill_ref_number.as_deref(),
        };
        let (account, amount) = match screen(rules, &input) {
            Screening::Decided(verdict) => {
                let (reply, reason) = decided(verdict);
                return (reply, reason, Some(shortcode));
            }
            Screening::NeedsExpected { account, amount } => (account, amount),
        };
        let lookup = repo::get_claim(self.table.as_ref(), &shortcode, &account);
        let (reply, reason) = match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(claim)) => decided(check_expected(
                rules,
                amount,
                claim.as_ref().map(|c| &c.expected),
                self.clock.now(),
            )),
            Ok(Err(error)) => {
                tracing::warn!(%error, shortcode = %shortcode, "expected-payment lookup failed");
                fallback(loaded.config.default_decision, "lookup_failed")
            }
            Err(_) => fallback(loaded.config.default_decision, "lookup_timeout"),
        };
        (reply, reason, Some(shortcode))
    }

    /// The shortcode's configuration and compiled rules: from the cache while fresh; read again
    /// after the TTL (a failed read keeps serving the stale entry); `Err` when there is none.
    async fn config(
        &self,
        shortcode: &Shortcode,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Arc<Loaded>>, &'static str> {
        let stale = {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            match cache.get(shortcode) {
                Some(entry) => {
                    // Unknown shortcodes are remembered briefly only: a registration must show soon.
                    let ttl = if entry.value.is_some() {
                        self.settings.rules_ttl
                    } else {
                        self.settings.rules_ttl.min(Duration::from_secs(5))
                    };
                    if entry.loaded_at.elapsed() < ttl {
                        return Ok(entry.value.clone());
                    }
                    Some(entry.value.clone())
                }
                None => None,
            }
        };
        let read = tokio::time::timeout_at(deadline, repo::get_config(self.table.as_ref(), shortcode)).await;
        let value = match read {
            Ok(Ok(config)) => config.map(|config| {
                let rules = config.rules.compile().inspect_err(|error| {
                    tracing::error!(%error, shortcode = %shortcode, "stored C2B rules do not compile");
                });
                Arc::new(Loaded {
                    config,
                    rules: rules.ok(),
                })
            }),
            Ok(Err(error)) => {
                tracing::warn!(%error, shortcode = %shortcode, "C2B configuration unreadable");
                return stale.ok_or("config_unavailable");
            }
            Err(_) => return stale.ok_or("config_timeout"),
        };
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            shortcode.clone(),
            CacheEntry {
                loaded_at: Instant::now(),
                value: value.clone(),
            },
        );
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::c2b::{
        AccountNumber, C2bRules, C2bVersion, DarajaRegistration, RegistrationStatus, ResponseType,
    };
    use crate::domain::expected_payment::{ExpectedAmount, ExpectedPayment};
    use crate::domain::{Amount, ClientId, ExpectedPaymentId, Metadata};
    use crate::secrets::{Secret, StaticSecret};
    use crate::store::memory::MemoryTable;
    use crate::store::{Item, Query, StoreError, StoreStats, Write};
    use async_trait::async_trait;
    use chrono::Utc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    const KEY: &str = "validation-test-hmac-key-0123456789abcdef";

    fn secrets() -> Arc<SecretCache> {
        let json = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": KEY,
        });
        Arc::new(SecretCache::new(
            Arc::new(StaticSecret(json.to_string())),
            Duration::from_secs(3600),
        ))
    }

    /// A table that can be made slow or failing, and counts reads.
    struct Flaky {
        inner: MemoryTable,
        fail: AtomicBool,
        delay_ms: AtomicU64,
        gets: AtomicU64,
    }

    #[async_trait]
    impl Table for Flaky {
        async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.inner.get(key).await
        }
        async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
            self.inner.write(writes).await
        }
        async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
            self.inner.query(query).await
        }
        fn stats(&self) -> StoreStats {
            self.inner.stats()
        }
    }

    fn shortcode() -> Shortcode {
        Shortcode::parse("600984").unwrap()
    }

    fn config(rules: C2bRules, default_decision: DefaultDecision) -> ShortcodeConfig {
        let now = Utc::now();
        ShortcodeConfig {
            shortcode: shortcode(),
            owner: ClientId::parse("merchant-a").unwrap(),
            api_version: C2bVersion::V2,
            response_type: ResponseType::Completed,
            default_decision,
            rules,
            validation_url: String::new(),
            confirmation_url: String::new(),
            registration: DarajaRegistration {
                status: RegistrationStatus::Registered,
                response_code: None,
                response_description: None,
                originator_conversation_id: None,
                at: now,
            },
            verification: Default::default(),
            tokens: Default::default(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    async fn setup(rules: C2bRules, default_decision: DefaultDecision) -> (Arc<Flaky>, C2bValidator) {
        let table = Arc::new(Flaky {
            inner: MemoryTable::new(),
            fail: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            gets: AtomicU64::new(0),
        });
        table
            .write(vec![repo::put_config(&config(rules, default_decision))])
            .await
            .unwrap();
        let settings = ValidationSettings {
            budget: Duration::from_millis(100),
            ..ValidationSettings::default()
        };
        let validator = C2bValidator::new(table.clone(), secrets(), Arc::new(SystemClock), settings, Vec::new());
        (table, validator)
    }

    fn token() -> String {
        CallbackTokens::new(Secret::new(KEY)).hex_token_for(TokenPurpose::C2bValidation, "600984")
    }

    fn body(bill_ref: &str, amount: &str) -> Vec<u8> {
        serde_json::json!({
            "TransactionType": "Pay Bill", "TransID": "TKL51ZDR4F", "TransTime": "20261121121325",
            "TransAmount": amount, "BusinessShortCode": "600984", "BillRefNumber": bill_ref,
            "InvoiceNumber": "", "OrgAccountBalance": "", "ThirdPartyTransID": "",
            "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": ""
        })
        .to_string()
        .into_bytes()
    }

    async fn expect(table: &Flaky, account: &str, amount: ExpectedAmount) {
        let e = ExpectedPayment::create(
            ExpectedPaymentId::generate(),
            ClientId::parse("merchant-a").unwrap(),
            shortcode(),
            AccountNumber::parse(account).unwrap(),
            amount,
            Utc::now() + chrono::Duration::hours(1),
            Metadata::default(),
            Utc::now(),
        );
        table
            .write(repo::insert_expected(&e, None, Utc::now()).to_vec())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn accepts_what_is_owed_with_one_read_once_warm() {
        let rules = C2bRules {
            require_expected_payment: true,
            ..C2bRules::default()
        };
        let (table, v) = setup(rules, DefaultDecision::Accept).await;
        expect(
            &table,
            "INV-1",
            ExpectedAmount::Exact {
                value: Amount::new(500).unwrap(),
            },
        )
        .await;
        let first = v.validate(&token(), &body("inv-1", "500.00"), None).await;
        assert_eq!(
            (first.reply, first.reason),
            (C2bValidationReply::Accept, "expected_payment")
        );
        let before = table.gets.load(Ordering::SeqCst);
        let second = v.validate(&token(), &body("INV-1", "300.00"), None).await;
        assert_eq!(second.reply, C2bValidationReply::Accept);
        assert_eq!(
            table.gets.load(Ordering::SeqCst) - before,
            1,
            "rules cached: only the account is read"
        );
        let over = v.validate(&token(), &body("INV-1", "501.00"), None).await;
        assert_eq!(over.reply, C2bValidationReply::Reject(C2bRejection::InvalidAmount));
        let unknown = v.validate(&token(), &body("INV-2", "1.00"), None).await;
        assert_eq!(
            (unknown.reply, unknown.reason),
            (
                C2bValidationReply::Reject(C2bRejection::InvalidAccountNumber),
                "no_expected_payment"
            )
        );
    }

    #[tokio::test]
    async fn forged_tokens_malformed_bodies_and_foreign_shortcodes_are_refused() {
        let (table, v) = setup(C2bRules::default(), DefaultDecision::Accept).await;
        let forged = CallbackTokens::new(Secret::new("another-key-entirely-0123456789abcdef"))
            .hex_token_for(TokenPurpose::C2bValidation, "600984");
        for bad in [forged.as_str(), "600984.00", "", "600984"] {
            let o = v.validate(bad, &body("A", "1"), None).await;
            assert_eq!(
                (o.reply, o.reason),
                (
                    C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                    "invalid_token"
                ),
                "{bad}"
            );
        }
        let confirmation_token =
            CallbackTokens::new(Secret::new(KEY)).hex_token_for(TokenPurpose::C2bConfirmation, "600984");
        assert_eq!(
            v.validate(&confirmation_token, &body("A", "1"), None).await.reason,
            "invalid_token"
        );
        assert_eq!(table.gets.load(Ordering::SeqCst), 0, "a forged token costs no read");
        for junk in [
            &b"not json"[..],
            b"{}",
            b"[]",
            br#"{"TransID": {"a": 1}}"#,
            br#"{"TransID": ""}"#,
        ] {
            let o = v.validate(&token(), junk, None).await;
            assert_eq!(
                (o.reply, o.reason),
                (C2bValidationReply::Reject(C2bRejection::Other), "malformed")
            );
        }
        let foreign = String::from_utf8(body("A", "1"))
            .unwrap()
            .replace("\"600984\"", "\"600985\"");
        let o = v.validate(&token(), foreign.as_bytes(), None).await;
        assert_eq!(
            (o.reply, o.reason),
            (
                C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                "shortcode_mismatch"
            )
        );
        let unregistered = CallbackTokens::new(Secret::new(KEY)).hex_token_for(TokenPurpose::C2bValidation, "600111");
        let body_600111 = String::from_utf8(body("A", "1")).unwrap().replace("600984", "600111");
        let o = v.validate(&unregistered, body_600111.as_bytes(), None).await;
        assert_eq!(
            (o.reply, o.reason),
            (
                C2bValidationReply::Reject(C2bRejection::InvalidShortcode),
                "unknown_shortcode"
            )
        );
    }

    #[tokio::test]
    async fn failing_or_slow_dependencies_answer_with_the_default_decision() {
        for (default, expected) in [
            (DefaultDecision::Accept, C2bValidationReply::Accept),
            (DefaultDecision::Reject, C2bValidationReply::Reject(C2bRejection::Other)),
        ] {
            let (table, v) = setup(C2bRules::default(), default).await;
            assert_eq!(
                v.validate(&token(), &body("INV-1", "10"), None).await.reason,
                "accepted",
                "warms the rules"
            );
            table.fail.store(true, Ordering::SeqCst);
            let o = v.validate(&token(), &body("INV-1", "10"), None).await;
            assert_eq!((o.reply, o.reason), (expected, "lookup_failed"));
            table.fail.store(false, Ordering::SeqCst);
            table.delay_ms.store(1_000, Ordering::SeqCst);
            let started = Instant::now();
            let o = v.validate(&token(), &body("INV-1", "10"), None).await;
            assert_eq!((o.reply, o.reason), (expected, "lookup_timeout"));
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "answers within its budget"
            );
            // Checks that need no lookup still decide, whatever the store does.
            let o = v.validate(&token(), &body("", "10.50"), None).await;
            assert_eq!(o.reply, C2bValidationReply::Reject(C2bRejection::InvalidAmount));
        }
        // Without any configuration read yet, the process-wide fallback decides.
        let (table, v) = setup(C2bRules::default(), DefaultDecision::Reject).await;
        table.fail.store(true, Ordering::SeqCst);
        let o = v.validate(&token(), &body("INV-1", "10"), None).await;
        assert_eq!((o.reply, o.reason), (C2bValidationReply::Accept, "config_unavailable"));
    }
}
