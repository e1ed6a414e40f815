//! Configuration, parsed once at cold start into typed values. Every variable a function reads
//! is listed in [`vars`], so the template test can check each one is set.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::JwtSettings;
use crate::daraja::StkTransactionType;
use crate::domain::PaymentTimings;
use crate::services::limits::{LimitsConfig, RollingLimit};
use crate::services::payments::PaymentsConfig;
use crate::services::reconciliation::ReconcileConfig;

/// Environment variable names.
pub mod vars {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const CALLBACK_QUEUE_URL: &str = "CALLBACK_QUEUE_URL";
    pub const SECRET_ID: &str = "SECRET_ID";
    pub const SECRETS_JSON: &str = "CHECKOUT_SECRETS_JSON";
    pub const SECRETS_FILE: &str = "CHECKOUT_SECRETS_FILE";
    pub const SECRETS_TTL_SECONDS: &str = "SECRETS_TTL_SECONDS";
    pub const DARAJA_BASE_URL: &str = "DARAJA_BASE_URL";
    pub const DARAJA_TIMEOUT_MS: &str = "DARAJA_TIMEOUT_MS";
    pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
    pub const STK_TRANSACTION_TYPE: &str = "STK_TRANSACTION_TYPE";
    pub const STK_PARTY_B: &str = "STK_PARTY_B";
    pub const PAYMENT_FIRST_CHECK_SECONDS: &str = "PAYMENT_FIRST_CHECK_SECONDS";
    pub const PAYMENT_DEADLINE_SECONDS: &str = "PAYMENT_DEADLINE_SECONDS";
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    pub const JWT_PUBLIC_KEY_PEM: &str = "JWT_PUBLIC_KEY_PEM";
    pub const JWT_LEEWAY_SECONDS: &str = "JWT_LEEWAY_SECONDS";
    pub const CALLBACK_SOURCE_IPS: &str = "CALLBACK_SOURCE_IPS";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    pub const LIMIT_PAYMENT_MIN: &str = "LIMIT_PAYMENT_MIN";
    pub const LIMIT_PAYMENT_MAX: &str = "LIMIT_PAYMENT_MAX";
    pub const LIMIT_PHONE_PROMPTS: &str = "LIMIT_PHONE_PROMPTS";
    pub const LIMIT_PHONE_WINDOW_SECONDS: &str = "LIMIT_PHONE_WINDOW_SECONDS";
    pub const LIMIT_PHONE_DAILY_AMOUNT: &str = "LIMIT_PHONE_DAILY_AMOUNT";
    pub const LIMIT_MERCHANT_DAILY_COUNT: &str = "LIMIT_MERCHANT_DAILY_COUNT";
    pub const LIMIT_MERCHANT_DAILY_AMOUNT: &str = "LIMIT_MERCHANT_DAILY_AMOUNT";
    pub const SWEEP_QUERIES_PER_SECOND: &str = "SWEEP_QUERIES_PER_SECOND";
    pub const SWEEP_CONCURRENCY: &str = "SWEEP_CONCURRENCY";
    pub const SWEEP_TIME_BUDGET_SECONDS: &str = "SWEEP_TIME_BUDGET_SECONDS";
    /// URL of the payout queue (SQS; its DLQ is configured on the queue). Unset in the sweeper: no payout sweep.
    pub const PAYOUT_QUEUE_URL: &str = "PAYOUT_QUEUE_URL";
    /// Safaricom's initiator certificate (PEM; `\n` escapes allowed) for the B2C SecurityCredential.
    pub const B2C_CERTIFICATE_PEM: &str = "B2C_CERTIFICATE_PEM";
    /// Or a file holding it (sandbox and production certificates differ).
    pub const B2C_CERTIFICATE_FILE: &str = "B2C_CERTIFICATE_FILE";
    /// Payouts above this many KES need a second principal's approval (unset: none do).
    pub const PAYOUT_APPROVAL_THRESHOLD: &str = "PAYOUT_APPROVAL_THRESHOLD";
    /// Largest single payout, KES (default 250000).
    pub const LIMIT_PAYOUT_MAX: &str = "LIMIT_PAYOUT_MAX";
    /// KES one recipient may be paid per Nairobi day (default 500000; `off` disables).
    pub const LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT: &str = "LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT";
    /// KES one merchant may pay out per Nairobi day (default 10000000; `off` disables).
    pub const LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT: &str = "LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT";
    /// Payouts one merchant may create per Nairobi day (default 10000; `off` disables).
    pub const LIMIT_PAYOUT_MERCHANT_DAILY_COUNT: &str = "LIMIT_PAYOUT_MERCHANT_DAILY_COUNT";
    /// Seconds after Daraja accepts a payout before a missing result makes it `unknown` (120).
    pub const PAYOUT_RESULT_WAIT_SECONDS: &str = "PAYOUT_RESULT_WAIT_SECONDS";
    /// Seconds between Transaction Status queries, and between the two "not found" answers that fail a payout (60).
    pub const PAYOUT_STATUS_INTERVAL_SECONDS: &str = "PAYOUT_STATUS_INTERVAL_SECONDS";
    /// Seconds after submission before "not found" answers may fail a payout (600).
    pub const PAYOUT_DEADLINE_SECONDS: &str = "PAYOUT_DEADLINE_SECONDS";
    /// Seconds a `pending` payout waits before the sweeper enqueues its job again (300).
    pub const PAYOUT_REQUEUE_SECONDS: &str = "PAYOUT_REQUEUE_SECONDS";
    /// Payouts of one SQS batch the worker submits at once (4).
    pub const PAYOUT_WORKER_CONCURRENCY: &str = "PAYOUT_WORKER_CONCURRENCY";
    /// Transaction Status queries per second the payout sweep may make (5).
    pub const PAYOUT_SWEEP_QUERIES_PER_SECOND: &str = "PAYOUT_SWEEP_QUERIES_PER_SECOND";
    /// `true` lets C2B URLs be plain HTTP (dev stack, simulator); production requires HTTPS.
    pub const C2B_ALLOW_HTTP: &str = "C2B_ALLOW_HTTP";
    /// Milliseconds C2B validation may spend on its dependencies before its default decides (300).
    pub const C2B_VALIDATION_BUDGET_MS: &str = "C2B_VALIDATION_BUDGET_MS";
    /// Seconds a shortcode's C2B rules are cached in the warm validation function (30).
    pub const C2B_RULES_CACHE_SECONDS: &str = "C2B_RULES_CACHE_SECONDS";
    /// `accept` or `reject`: validation's answer when not even the shortcode's configuration can be read (accept).
    pub const C2B_FALLBACK_DECISION: &str = "C2B_FALLBACK_DECISION";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Reads configuration from a lookup function (the process environment, or a map in tests).
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

pub fn from_env() -> Settings<impl Fn(&str) -> Option<String>> {
    Settings {
        lookup: |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
    }
}

pub fn from_map(map: std::collections::HashMap<String, String>) -> Settings<impl Fn(&str) -> Option<String>> {
    Settings {
        lookup: move |name: &str| map.get(name).cloned(),
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name)
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => text.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }

    pub fn jwt(&self) -> Result<JwtSettings, ConfigError> {
        Ok(JwtSettings {
            issuer: self.optional(vars::JWT_ISSUER),
            audience: self.optional(vars::JWT_AUDIENCE),
            public_key_pem: self
                .optional(vars::JWT_PUBLIC_KEY_PEM)
                .map(|pem| pem.replace("\\n", "\n")),
            leeway_seconds: self.parsed(vars::JWT_LEEWAY_SECONDS, 30)?,
        })
    }

    pub fn timings(&self) -> Result<PaymentTimings, ConfigError> {
        let first: i64 = self.parsed(vars::PAYMENT_FIRST_CHECK_SECONDS, 75)?;
        let deadline: i64 = self.parsed(vars::PAYMENT_DEADLINE_SECONDS, 300)?;
        if first < 1 || deadline <= first {
            return Err(ConfigError::Invalid {
                name: vars::PAYMENT_DEADLINE_SECONDS,
                reason: "needs 1 <= PAYMENT_FIRST_CHECK_SECONDS < PAYMENT_DEADLINE_SECONDS".into(),
            });
        }
        Ok(PaymentTimings {
            first_check_after: chrono::Duration::seconds(first),
            deadline_after: chrono::Duration::seconds(deadline),
        })
    }

    pub fn payments(&self) -> Result<PaymentsConfig, ConfigError> {
        let public_base_url = self.required(vars::PUBLIC_BASE_URL)?;
        if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: vars::PUBLIC_BASE_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        let transaction_type = match self.optional(vars::STK_TRANSACTION_TYPE).as_deref() {
            None | Some("CustomerPayBillOnline") => StkTransactionType::CustomerPayBillOnline,
            Some("CustomerBuyGoodsOnline") => StkTransactionType::CustomerBuyGoodsOnline,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: vars::STK_TRANSACTION_TYPE,
                    reason: format!("{other} is not CustomerPayBillOnline or CustomerBuyGoodsOnline"),
                })
            }
        };
        Ok(PaymentsConfig {
            public_base_url,
            transaction_type,
            party_b: self.optional(vars::STK_PARTY_B),
            timings: self.timings()?,
            idempotency_lock: chrono::Duration::seconds(60),
        })
    }

    /// A cap that may be turned off with `off`.
    fn optional_cap(&self, name: &'static str, default: Option<u64>) -> Result<Option<u64>, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(text) if text.trim().eq_ignore_ascii_case("off") => Ok(None),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: "a positive integer, or off".into(),
                }),
            },
        }
    }

    pub fn limits(&self) -> Result<LimitsConfig, ConfigError> {
        let defaults = LimitsConfig::default();
        let payment_min: u64 = self.parsed(vars::LIMIT_PAYMENT_MIN, defaults.payment_min)?;
        let payment_max: u64 = self.parsed(vars::LIMIT_PAYMENT_MAX, defaults.payment_max)?;
        if payment_min < 1 || payment_min > payment_max || payment_max > crate::domain::amount::MAX_TRANSACTION_KES {
            return Err(ConfigError::Invalid {
                name: vars::LIMIT_PAYMENT_MAX,
                reason: "needs 1 <= LIMIT_PAYMENT_MIN <= LIMIT_PAYMENT_MAX <= 250000".into(),
            });
        }
        let default_prompts = defaults.phone_prompts.map(|l| u64::from(l.max));
        let phone_prompts = match self.optional_cap(vars::LIMIT_PHONE_PROMPTS, default_prompts)? {
            None => None,
            Some(max) => Some(RollingLimit {
                max: u32::try_from(max).map_err(|_| ConfigError::Invalid {
                    name: vars::LIMIT_PHONE_PROMPTS,
                    reason: "too large".into(),
                })?,
                window: chrono::Duration::seconds(self.parsed(vars::LIMIT_PHONE_WINDOW_SECONDS, 300)?),
            }),
        };
        Ok(LimitsConfig {
            payment_min,
            payment_max,
            phone_prompts,
            phone_daily_amount: self.optional_cap(vars::LIMIT_PHONE_DAILY_AMOUNT, defaults.phone_daily_amount)?,
            merchant_daily_count: self.optional_cap(vars::LIMIT_MERCHANT_DAILY_COUNT, defaults.merchant_daily_count)?,
            merchant_daily_amount: self
                .optional_cap(vars::LIMIT_MERCHANT_DAILY_AMOUNT, defaults.merchant_daily_amount)?,
        })
    }

    pub fn reconcile(&self) -> Result<ReconcileConfig, ConfigError> {
        let defaults = ReconcileConfig::default();
        Ok(ReconcileConfig {
            queries_per_second: self
                .parsed(vars::SWEEP_QUERIES_PER_SECOND, defaults.queries_per_second)?
                .max(1),
            concurrency: self.parsed(vars::SWEEP_CONCURRENCY, defaults.concurrency)?.max(1),
            time_budget: Duration::from_secs(
                self.parsed(vars::SWEEP_TIME_BUDGET_SECONDS, defaults.time_budget.as_secs())?,
            ),
            ..defaults
        })
    }

    /// C2B registration: URLs are built on `PUBLIC_BASE_URL`; HTTPS unless `C2B_ALLOW_HTTP=true`.
    pub fn c2b_registration(&self) -> Result<crate::services::c2b_registration::C2bRegistrationConfig, ConfigError> {
        let public_base_url = self.required(vars::PUBLIC_BASE_URL)?;
        if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: vars::PUBLIC_BASE_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        let allow_http: bool = self.parsed(vars::C2B_ALLOW_HTTP, false)?;
        Ok(crate::services::c2b_registration::C2bRegistrationConfig {
            public_base_url,
            require_https: !allow_http,
        })
    }

    /// C2B validation: dependency budget, rules cache TTL, fallback decision.
    pub fn c2b_validation(&self) -> Result<crate::services::c2b_validation::ValidationSettings, ConfigError> {
        let defaults = crate::services::c2b_validation::ValidationSettings::default();
        let budget_ms: u64 = self.parsed(vars::C2B_VALIDATION_BUDGET_MS, defaults.budget.as_millis() as u64)?;
        if !(10..=5_000).contains(&budget_ms) {
            return Err(ConfigError::Invalid {
                name: vars::C2B_VALIDATION_BUDGET_MS,
                reason: "10 to 5000 milliseconds (Daraja waits about 8 s)".into(),
            });
        }
        let fallback = match self.optional(vars::C2B_FALLBACK_DECISION) {
            None => defaults.fallback,
            Some(text) => crate::domain::c2b::DefaultDecision::parse(text.trim()).ok_or(ConfigError::Invalid {
                name: vars::C2B_FALLBACK_DECISION,
                reason: "accept or reject".into(),
            })?,
        };
        Ok(crate::services::c2b_validation::ValidationSettings {
            budget: Duration::from_millis(budget_ms),
            rules_ttl: Duration::from_secs(self.parsed(vars::C2B_RULES_CACHE_SECONDS, defaults.rules_ttl.as_secs())?),
            fallback,
        })
    }

    pub fn daraja_timeout(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.parsed(vars::DARAJA_TIMEOUT_MS, 15_000)?))
    }

    /// Safaricom's published callback sources (a signal, not a gate).
    pub fn callback_sources(&self) -> Result<Vec<IpAddr>, ConfigError> {
        let text = self
            .optional(vars::CALLBACK_SOURCE_IPS)
            .unwrap_or_else(|| DEFAULT_CALLBACK_SOURCES.join(","));
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse().map_err(|_| ConfigError::Invalid {
                    name: vars::CALLBACK_SOURCE_IPS,
                    reason: format!("{s} is not an IP address"),
                })
            })
            .collect()
    }
}

/// Payouts (B2C): the API, the worker and the payout sweep.
impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn payout_timings(&self) -> Result<crate::domain::PayoutTimings, ConfigError> {
        let defaults = crate::domain::PayoutTimings::default();
        let timings = crate::domain::PayoutTimings {
            result_wait_secs: self.parsed(vars::PAYOUT_RESULT_WAIT_SECONDS, defaults.result_wait_secs)?,
            status_interval_secs: self.parsed(vars::PAYOUT_STATUS_INTERVAL_SECONDS, defaults.status_interval_secs)?,
            deadline_secs: self.parsed(vars::PAYOUT_DEADLINE_SECONDS, defaults.deadline_secs)?,
            requeue_secs: self.parsed(vars::PAYOUT_REQUEUE_SECONDS, defaults.requeue_secs)?,
        };
        let positive = [
            timings.result_wait_secs,
            timings.status_interval_secs,
            timings.deadline_secs,
            timings.requeue_secs,
        ];
        if positive.iter().any(|s| *s < 1) || timings.deadline_secs < timings.result_wait_secs {
            return Err(ConfigError::Invalid {
                name: vars::PAYOUT_DEADLINE_SECONDS,
                reason: "payout timings must be at least 1 s, and the deadline no shorter than the result wait".into(),
            });
        }
        Ok(timings)
    }

    pub fn payouts(&self) -> Result<crate::services::payouts::PayoutsConfig, ConfigError> {
        let approval_threshold = match self.optional(vars::PAYOUT_APPROVAL_THRESHOLD) {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                name: vars::PAYOUT_APPROVAL_THRESHOLD,
                reason: "whole KES, e.g. 100000".into(),
            })?),
        };
        Ok(crate::services::payouts::PayoutsConfig {
            approval_threshold,
            timings: self.payout_timings()?,
            idempotency_lock: chrono::Duration::seconds(60),
        })
    }

    pub fn payout_limits(&self) -> Result<crate::services::payout_limits::PayoutLimitsConfig, ConfigError> {
        let defaults = crate::services::payout_limits::PayoutLimitsConfig::default();
        let payout_max: u64 = self.parsed(vars::LIMIT_PAYOUT_MAX, defaults.payout_max)?;
        if !(10..=crate::domain::amount::MAX_TRANSACTION_KES).contains(&payout_max) {
            return Err(ConfigError::Invalid {
                name: vars::LIMIT_PAYOUT_MAX,
                reason: "10 to 250000 KES".into(),
            });
        }
        Ok(crate::services::payout_limits::PayoutLimitsConfig {
            payout_max,
            recipient_daily_amount: self.optional_cap(
                vars::LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT,
                defaults.recipient_daily_amount,
            )?,
            merchant_daily_amount: self
                .optional_cap(vars::LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT, defaults.merchant_daily_amount)?,
            merchant_daily_count: self
                .optional_cap(vars::LIMIT_PAYOUT_MERCHANT_DAILY_COUNT, defaults.merchant_daily_count)?,
        })
    }

    /// The initiator certificate: `B2C_CERTIFICATE_PEM` (with `\n` escapes) or `B2C_CERTIFICATE_FILE`.
    pub fn b2c_certificate(&self) -> Result<String, ConfigError> {
        let pem = match (
            self.optional(vars::B2C_CERTIFICATE_PEM),
            self.optional(vars::B2C_CERTIFICATE_FILE),
        ) {
            (Some(pem), _) => pem.replace("\\n", "\n"),
            (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                name: vars::B2C_CERTIFICATE_FILE,
                reason: format!("cannot read {path}: {e}"),
            })?,
            (None, None) => return Err(ConfigError::Missing(vars::B2C_CERTIFICATE_PEM)),
        };
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::Invalid {
                name: vars::B2C_CERTIFICATE_PEM,
                reason: "not a PEM certificate".into(),
            });
        }
        Ok(pem)
    }

    pub fn payout_worker(&self) -> Result<crate::services::payout_worker::PayoutWorkerConfig, ConfigError> {
        Ok(crate::services::payout_worker::PayoutWorkerConfig {
            public_base_url: self.payments_base_url()?,
            concurrency: self.parsed(vars::PAYOUT_WORKER_CONCURRENCY, 4usize)?.max(1),
        })
    }

    pub fn payout_reconcile(
        &self,
    ) -> Result<crate::services::payout_reconciliation::PayoutReconcileConfig, ConfigError> {
        let defaults = crate::services::payout_reconciliation::PayoutReconcileConfig::default();
        Ok(crate::services::payout_reconciliation::PayoutReconcileConfig {
            queries_per_second: self
                .parsed(vars::PAYOUT_SWEEP_QUERIES_PER_SECOND, defaults.queries_per_second)?
                .max(1),
            concurrency: self.parsed(vars::SWEEP_CONCURRENCY, defaults.concurrency)?.max(1),
            time_budget: Duration::from_secs(
                self.parsed(vars::SWEEP_TIME_BUDGET_SECONDS, defaults.time_budget.as_secs())?,
            ),
            ..defaults
        })
    }

    /// `PUBLIC_BASE_URL`, checked to be an http(s) URL.
    pub fn payments_base_url(&self) -> Result<String, ConfigError> {
        let url = self.required(vars::PUBLIC_BASE_URL)?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: vars::PUBLIC_BASE_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        Ok(url)
    }
}

#[cfg(test)]
mod payout_config_tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn payout_settings() {
        let defaults = settings(&[]).payouts().unwrap();
        assert_eq!(defaults.approval_threshold, None);
        assert_eq!(defaults.timings, crate::domain::PayoutTimings::default());
        assert_eq!(
            settings(&[(vars::PAYOUT_APPROVAL_THRESHOLD, "100000")])
                .payouts()
                .unwrap()
                .approval_threshold,
            Some(100_000)
        );
        assert!(settings(&[(vars::PAYOUT_APPROVAL_THRESHOLD, "lots")])
            .payouts()
            .is_err());
        assert!(settings(&[
            (vars::PAYOUT_DEADLINE_SECONDS, "10"),
            (vars::PAYOUT_RESULT_WAIT_SECONDS, "60")
        ])
        .payouts()
        .is_err());
        assert!(settings(&[(vars::PAYOUT_STATUS_INTERVAL_SECONDS, "0")])
            .payouts()
            .is_err());
        let limits = settings(&[
            (vars::LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT, "off"),
            (vars::LIMIT_PAYOUT_MAX, "5000"),
        ])
        .payout_limits()
        .unwrap();
        assert_eq!((limits.payout_max, limits.recipient_daily_amount), (5000, None));
        assert!(settings(&[(vars::LIMIT_PAYOUT_MAX, "250001")]).payout_limits().is_err());
        assert!(settings(&[(vars::LIMIT_PAYOUT_MERCHANT_DAILY_COUNT, "0")])
            .payout_limits()
            .is_err());
    }

    #[test]
    fn the_certificate_comes_from_pem_text_or_a_file() {
        assert_eq!(
            settings(&[]).b2c_certificate(),
            Err(ConfigError::Missing(vars::B2C_CERTIFICATE_PEM))
        );
        let escaped = "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----";
        let pem = settings(&[(vars::B2C_CERTIFICATE_PEM, escaped)])
            .b2c_certificate()
            .unwrap();
        assert_eq!(pem.lines().count(), 3);
        assert!(settings(&[(vars::B2C_CERTIFICATE_PEM, "nope")])
            .b2c_certificate()
            .is_err());
        assert!(settings(&[(vars::B2C_CERTIFICATE_FILE, "/nonexistent/cert.pem")])
            .b2c_certificate()
            .is_err());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../simulator/testdata/initiator-cert.pem");
        assert!(settings(&[(vars::B2C_CERTIFICATE_FILE, path)])
            .b2c_certificate()
            .is_ok());
    }
}

/// From Safaricom's published list (see docs/operations.md); configurable because it changes.
pub const DEFAULT_CALLBACK_SOURCES: &[&str] = &[
    "196.201.214.200",
    "196.201.214.206",
    "196.201.213.114",
    "196.201.214.207",
    "196.201.214.208",
    "196.201.213.44",
    "196.201.212.127",
    "196.201.212.138",
    "196.201.212.129",
    "196.201.212.136",
    "196.201.212.74",
    "196.201.212.69",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn payments_config_rules() {
        assert_eq!(
            settings(&[]).payments().unwrap_err(),
            ConfigError::Missing(vars::PUBLIC_BASE_URL)
        );
        let ok = settings(&[(vars::PUBLIC_BASE_URL, "https://api.example.com")])
            .payments()
            .unwrap();
        assert_eq!(ok.transaction_type, StkTransactionType::CustomerPayBillOnline);
        assert_eq!(ok.timings, PaymentTimings::default());
        let bad = settings(&[
            (vars::PUBLIC_BASE_URL, "https://x"),
            (vars::STK_TRANSACTION_TYPE, "Nope"),
        ]);
        assert!(bad.payments().is_err());
        let bad = settings(&[
            (vars::PUBLIC_BASE_URL, "https://x"),
            (vars::PAYMENT_DEADLINE_SECONDS, "10"),
        ]);
        assert!(bad.payments().is_err());
        assert!(settings(&[(vars::PUBLIC_BASE_URL, "ftp://x")]).payments().is_err());
    }

    #[test]
    fn limits_config() {
        assert_eq!(settings(&[]).limits().unwrap(), LimitsConfig::default());
        let off = settings(&[
            (vars::LIMIT_PHONE_PROMPTS, "off"),
            (vars::LIMIT_MERCHANT_DAILY_COUNT, "OFF"),
        ])
        .limits()
        .unwrap();
        assert_eq!(off.phone_prompts, None);
        assert_eq!(off.merchant_daily_count, None);
        let custom = settings(&[
            (vars::LIMIT_PHONE_PROMPTS, "5"),
            (vars::LIMIT_PHONE_WINDOW_SECONDS, "60"),
        ])
        .limits()
        .unwrap();
        assert_eq!(
            custom.phone_prompts,
            Some(RollingLimit {
                max: 5,
                window: chrono::Duration::seconds(60)
            })
        );
        assert!(settings(&[(vars::LIMIT_PHONE_DAILY_AMOUNT, "0")]).limits().is_err());
        assert!(
            settings(&[(vars::LIMIT_PAYMENT_MIN, "10"), (vars::LIMIT_PAYMENT_MAX, "5")])
                .limits()
                .is_err()
        );
        assert!(settings(&[(vars::LIMIT_PAYMENT_MAX, "300000")]).limits().is_err());
    }

    #[test]
    fn c2b_config() {
        let registration = settings(&[(vars::PUBLIC_BASE_URL, "https://pay.example.co.ke")])
            .c2b_registration()
            .unwrap();
        assert!(registration.require_https, "HTTPS unless told otherwise");
        let dev = settings(&[
            (vars::PUBLIC_BASE_URL, "http://127.0.0.1:3000"),
            (vars::C2B_ALLOW_HTTP, "true"),
        ]);
        assert!(!dev.c2b_registration().unwrap().require_https);
        assert!(settings(&[]).c2b_registration().is_err());
        assert!(
            settings(&[(vars::PUBLIC_BASE_URL, "http://x"), (vars::C2B_ALLOW_HTTP, "yes")])
                .c2b_registration()
                .is_err()
        );
        let v = settings(&[]).c2b_validation().unwrap();
        assert_eq!((v.budget.as_millis(), v.rules_ttl.as_secs()), (300, 30));
        assert_eq!(v.fallback, crate::domain::c2b::DefaultDecision::Accept);
        let v = settings(&[
            (vars::C2B_VALIDATION_BUDGET_MS, "150"),
            (vars::C2B_FALLBACK_DECISION, "reject"),
        ])
        .c2b_validation()
        .unwrap();
        assert_eq!(
            (v.budget.as_millis(), v.fallback),
            (150, crate::domain::c2b::DefaultDecision::Reject)
        );
        assert!(settings(&[(vars::C2B_VALIDATION_BUDGET_MS, "9000")])
            .c2b_validation()
            .is_err());
        assert!(settings(&[(vars::C2B_FALLBACK_DECISION, "maybe")])
            .c2b_validation()
            .is_err());
    }

    #[test]
    fn callback_sources_parse() {
        assert_eq!(
            settings(&[]).callback_sources().unwrap().len(),
            DEFAULT_CALLBACK_SOURCES.len()
        );
        assert_eq!(
            settings(&[(vars::CALLBACK_SOURCE_IPS, "127.0.0.1, 10.0.0.1")])
                .callback_sources()
                .unwrap()
                .len(),
            2
        );
        assert!(settings(&[(vars::CALLBACK_SOURCE_IPS, "nope")])
            .callback_sources()
            .is_err());
    }
}
