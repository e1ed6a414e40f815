//! Configuration, parsed once at cold start into typed values. Every variable is named in
//! [`vars`], and every Lambda function declares the ones it reads in [`FUNCTIONS`]: a function
//! reads through [`for_function`], which refuses a variable its declaration does not list (a
//! panic in debug builds and tests; [`Settings::verify`] fails the cold start in release), and
//! the template test checks `template.yaml` sets every `required` one for that function.

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
    /// The Secrets Manager id (ARN) of each secret a function reads (see `secrets::parts`).
    pub const SECRET_ID_DARAJA_APP: &str = "SECRET_ID_DARAJA_APP";
    pub const SECRET_ID_B2C_INITIATOR: &str = "SECRET_ID_B2C_INITIATOR";
    pub const SECRET_ID_CALLBACK_KEYS: &str = "SECRET_ID_CALLBACK_KEYS";
    pub const SECRET_ID_JWT: &str = "SECRET_ID_JWT";
    /// The shortcode payouts are paid from (payouts-api; configuration, not a secret).
    pub const B2C_SHORTCODE: &str = "B2C_SHORTCODE";
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
    /// Seconds a worker's submission lease on a payout keeps other jobs away (300); longer than
    /// one Daraja call (`DARAJA_TIMEOUT_MS`).
    pub const PAYOUT_SUBMISSION_LEASE_SECONDS: &str = "PAYOUT_SUBMISSION_LEASE_SECONDS";
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
    /// Feature flag `on`/`off` (default on): B2C payouts' API (`off`: its routes answer 404 `feature_disabled`).
    pub const FEATURE_PAYOUTS: &str = "FEATURE_PAYOUTS";
    /// Feature flag `on`/`off` (default on): the C2B merchant API (registrations, expected payments, reads).
    pub const FEATURE_C2B: &str = "FEATURE_C2B";
}

/// The variables one Lambda function reads. `required` ones must be set by the deployment (the
/// template test checks each); `optional` ones have defaults (or, like `CHECKOUT_SECRETS_JSON`,
/// serve local runs). Reading any other variable is refused (see [`for_function`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionVars {
    /// The directory under `functions/` (and the `Service` dimension of its metrics).
    pub function: &'static str,
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

impl FunctionVars {
    pub fn declares(&self, name: &str) -> bool {
        self.required.contains(&name) || self.optional.contains(&name)
    }
}

use vars::*;

/// The variable holding the Secrets Manager id of `part`'s secret.
pub fn secret_id_var(part: crate::secrets::SecretPart) -> &'static str {
    use crate::secrets::SecretPart;
    match part {
        SecretPart::DarajaApp => SECRET_ID_DARAJA_APP,
        SecretPart::B2cInitiator => SECRET_ID_B2C_INITIATOR,
        SecretPart::CallbackKeys => SECRET_ID_CALLBACK_KEYS,
        SecretPart::Jwt => SECRET_ID_JWT,
    }
}

/// Every Lambda function and the variables it reads (`docs/operations.md` lists them too). The
/// `SECRET_ID_<PART>` ones it requires are the secrets it reads, no more (its wiring loads
/// exactly those; the template grants exactly those). Each function that reads secrets may also
/// use `CHECKOUT_SECRETS_JSON`/`_FILE` instead (one merged JSON: local runs, the cold-start
/// meter) and `SECRETS_TTL_SECONDS`.
pub const FUNCTIONS: &[FunctionVars] = &[
    FunctionVars {
        function: "health",
        required: &[],
        optional: &[],
    },
    FunctionVars {
        function: "initiate",
        required: &[
            TABLE_NAME,
            SECRET_ID_DARAJA_APP,
            SECRET_ID_CALLBACK_KEYS,
            SECRET_ID_JWT,
            DARAJA_BASE_URL,
            PUBLIC_BASE_URL,
            JWT_ISSUER,
            JWT_AUDIENCE,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
            STK_TRANSACTION_TYPE,
            STK_PARTY_B,
            PAYMENT_FIRST_CHECK_SECONDS,
            PAYMENT_DEADLINE_SECONDS,
            LIMIT_PAYMENT_MIN,
            LIMIT_PAYMENT_MAX,
            LIMIT_PHONE_PROMPTS,
            LIMIT_PHONE_WINDOW_SECONDS,
            LIMIT_PHONE_DAILY_AMOUNT,
            LIMIT_MERCHANT_DAILY_COUNT,
            LIMIT_MERCHANT_DAILY_AMOUNT,
        ],
    },
    FunctionVars {
        function: "status",
        required: &[
            TABLE_NAME,
            // The readiness check's Daraja token needs the app; tokens need the JWT key.
            SECRET_ID_DARAJA_APP,
            SECRET_ID_JWT,
            JWT_ISSUER,
            JWT_AUDIENCE,
            // The readiness check (`GET /v1/ready`): queues reachable, a Daraja token obtainable.
            CALLBACK_QUEUE_URL,
            PAYOUT_QUEUE_URL,
            DARAJA_BASE_URL,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
        ],
    },
    FunctionVars {
        function: "callback",
        required: &[CALLBACK_QUEUE_URL],
        optional: &[CALLBACK_SOURCE_IPS],
    },
    FunctionVars {
        function: "callback-processor",
        required: &[TABLE_NAME, SECRET_ID_CALLBACK_KEYS],
        optional: &[SECRETS_JSON, SECRETS_FILE, SECRETS_TTL_SECONDS],
    },
    FunctionVars {
        function: "events",
        required: &[TABLE_NAME],
        optional: &[],
    },
    FunctionVars {
        function: "timeout-sweeper",
        required: &[
            TABLE_NAME,
            SECRET_ID_DARAJA_APP,
            SECRET_ID_B2C_INITIATOR,
            SECRET_ID_CALLBACK_KEYS,
            DARAJA_BASE_URL,
            PUBLIC_BASE_URL,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            SWEEP_QUERIES_PER_SECOND,
            SWEEP_CONCURRENCY,
            SWEEP_TIME_BUDGET_SECONDS,
            // Set only when payouts are enabled; then the payout sweep runs too.
            PAYOUT_QUEUE_URL,
            B2C_CERTIFICATE_PEM,
            B2C_CERTIFICATE_FILE,
            PAYOUT_SWEEP_QUERIES_PER_SECOND,
        ],
    },
    FunctionVars {
        function: "payouts-api",
        required: &[
            TABLE_NAME,
            SECRET_ID_CALLBACK_KEYS,
            SECRET_ID_JWT,
            PAYOUT_QUEUE_URL,
            JWT_ISSUER,
            JWT_AUDIENCE,
        ],
        optional: &[
            B2C_SHORTCODE,
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
            FEATURE_PAYOUTS,
            PAYOUT_APPROVAL_THRESHOLD,
            PAYOUT_RESULT_WAIT_SECONDS,
            PAYOUT_STATUS_INTERVAL_SECONDS,
            PAYOUT_DEADLINE_SECONDS,
            PAYOUT_REQUEUE_SECONDS,
            LIMIT_PAYOUT_MAX,
            LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT,
            LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT,
            LIMIT_PAYOUT_MERCHANT_DAILY_COUNT,
        ],
    },
    FunctionVars {
        function: "b2c-payout",
        required: &[
            TABLE_NAME,
            SECRET_ID_DARAJA_APP,
            SECRET_ID_B2C_INITIATOR,
            SECRET_ID_CALLBACK_KEYS,
            DARAJA_BASE_URL,
            PUBLIC_BASE_URL,
            B2C_CERTIFICATE_PEM,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            B2C_CERTIFICATE_FILE,
            PAYOUT_WORKER_CONCURRENCY,
            PAYOUT_SUBMISSION_LEASE_SECONDS,
        ],
    },
    FunctionVars {
        function: "c2b-validation",
        required: &[TABLE_NAME, SECRET_ID_CALLBACK_KEYS],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            C2B_VALIDATION_BUDGET_MS,
            C2B_RULES_CACHE_SECONDS,
            C2B_FALLBACK_DECISION,
            CALLBACK_SOURCE_IPS,
        ],
    },
    FunctionVars {
        function: "c2b-confirmation",
        required: &[CALLBACK_QUEUE_URL],
        optional: &[CALLBACK_SOURCE_IPS],
    },
    FunctionVars {
        function: "c2b-api",
        required: &[
            TABLE_NAME,
            SECRET_ID_DARAJA_APP,
            SECRET_ID_CALLBACK_KEYS,
            SECRET_ID_JWT,
            DARAJA_BASE_URL,
            PUBLIC_BASE_URL,
            JWT_ISSUER,
            JWT_AUDIENCE,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
            C2B_ALLOW_HTTP,
            FEATURE_C2B,
        ],
    },
];

/// The declaration of `function` (a directory under `functions/`).
pub fn function_vars(function: &str) -> Option<&'static FunctionVars> {
    FUNCTIONS.iter().find(|f| f.function == function)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("no function {0} in config::FUNCTIONS")]
    UnknownFunction(String),
    #[error("{function} read {name}, which config::FUNCTIONS does not declare for it (declare it, and set it in template.yaml if required)")]
    Undeclared { function: &'static str, name: &'static str },
}

/// Reads configuration from a lookup function (the process environment, or a map in tests),
/// optionally restricted to one function's declared variables.
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
    scope: Option<&'static FunctionVars>,
    /// Undeclared variables a scoped reader was asked for (refused; see [`Settings::verify`]).
    refused: std::sync::Mutex<Vec<ConfigError>>,
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Every variable, unrestricted: the dev stack and tools. Lambda functions use [`for_function`].
pub fn from_env() -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(env_lookup, None)
}

pub fn from_map(map: std::collections::HashMap<String, String>) -> Settings<impl Fn(&str) -> Option<String>> {
    Settings::new(move |name: &str| map.get(name).cloned(), None)
}

/// The environment as `function` may read it: only the variables [`FUNCTIONS`] declares for it.
pub fn for_function(function: &str) -> Result<Settings<impl Fn(&str) -> Option<String>>, ConfigError> {
    let scope = function_vars(function).ok_or_else(|| ConfigError::UnknownFunction(function.to_owned()))?;
    Ok(Settings::new(env_lookup, Some(scope)))
}

/// [`for_function`] over a map (tests of a function's wiring).
pub fn for_function_from_map(
    function: &str,
    map: std::collections::HashMap<String, String>,
) -> Result<Settings<impl Fn(&str) -> Option<String>>, ConfigError> {
    let scope = function_vars(function).ok_or_else(|| ConfigError::UnknownFunction(function.to_owned()))?;
    Ok(Settings::new(
        move |name: &str| map.get(name).filter(|v| !v.trim().is_empty()).cloned(),
        Some(scope),
    ))
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    fn new(lookup: F, scope: Option<&'static FunctionVars>) -> Settings<F> {
        Settings {
            lookup,
            scope,
            refused: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The function this reader is restricted to, if any.
    pub fn function(&self) -> Option<&'static str> {
        self.scope.map(|s| s.function)
    }

    /// Whether this reader may read `name`: the function declares it (or the reader is unscoped).
    pub fn declares(&self, name: &str) -> bool {
        self.scope.is_none_or(|scope| scope.declares(name))
    }

    /// Whether `name` may be read; an undeclared read panics in debug builds (tests catch it) and
    /// is remembered in release, where [`Settings::verify`] turns it into a cold-start error.
    fn may_read(&self, name: &'static str) -> bool {
        let Some(scope) = self.scope else {
            return true;
        };
        if scope.declares(name) {
            return true;
        }
        let error = ConfigError::Undeclared {
            function: scope.function,
            name,
        };
        if cfg!(debug_assertions) {
            panic!("{error}");
        }
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).push(error);
        false
    }

    /// Call after wiring, before serving: fails if the function read an undeclared variable.
    pub fn verify(&self) -> Result<(), ConfigError> {
        match self.refused.lock().unwrap_or_else(|p| p.into_inner()).first() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        if !self.may_read(name) {
            return None;
        }
        (self.lookup)(name)
    }

    /// A feature flag: `on`/`off` (also `true`/`false`), on when unset.
    pub fn feature(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("on") | Some("true") => Ok(true),
            Some("off") | Some("false") => Ok(false),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "on or off".into(),
            }),
        }
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
            submission_lease: self.payout_submission_lease()?,
        })
    }

    /// How long a payout job's submission lease lasts. It must outlast one Daraja call: a job
    /// that finds another's lease expired never sends again (the earlier attempt may have paid)
    /// but asks Transaction Status, so a lease shorter than the call only delays the payout.
    pub fn payout_submission_lease(&self) -> Result<chrono::Duration, ConfigError> {
        let default = crate::services::payout_worker::PayoutWorkerConfig::DEFAULT_SUBMISSION_LEASE;
        let seconds: i64 = self.parsed(vars::PAYOUT_SUBMISSION_LEASE_SECONDS, default.num_seconds())?;
        let call_ms = self.daraja_timeout()?.as_millis() as i64;
        if seconds * 1000 <= call_ms {
            return Err(ConfigError::Invalid {
                name: vars::PAYOUT_SUBMISSION_LEASE_SECONDS,
                reason: format!("must exceed one Daraja call (DARAJA_TIMEOUT_MS = {call_ms})"),
            });
        }
        Ok(chrono::Duration::seconds(seconds))
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

/// Plausible values for every declared variable, to build a function's wiring in tests (no I/O
/// happens while wiring) and to show the shape of each value.
#[doc(hidden)]
/// A function's wiring test: its `build(settings, sdk)` must succeed from only its required
/// variables, and from all its declared ones, without reading anything undeclared and without I/O.
#[macro_export]
macro_rules! wiring_test {
    ($function:expr, $build:path) => {
        #[cfg(test)]
        mod wiring_test {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn wires_from_its_declared_variables_only() {
                for with_optional in [false, true] {
                    let env = $crate::config::examples::env($function, with_optional);
                    let settings = $crate::config::for_function_from_map($function, env).unwrap();
                    $build(&settings, &$crate::aws::offline_sdk_config()).unwrap();
                    settings.verify().unwrap();
                }
            }
        }
    };
}

pub mod examples {
    use std::collections::HashMap;

    use super::vars::*;

    pub fn value(name: &str) -> &'static str {
        match name {
            TABLE_NAME => "mpesa-checkout-dev-Table",
            CALLBACK_QUEUE_URL => "https://sqs.eu-west-1.amazonaws.com/123456789012/callbacks",
            PAYOUT_QUEUE_URL => "https://sqs.eu-west-1.amazonaws.com/123456789012/payouts",
            SECRET_ID_DARAJA_APP => "arn:aws:secretsmanager:eu-west-1:123456789012:secret:DarajaAppSecret-abc",
            SECRET_ID_B2C_INITIATOR => "arn:aws:secretsmanager:eu-west-1:123456789012:secret:B2cInitiatorSecret-abc",
            SECRET_ID_CALLBACK_KEYS => "arn:aws:secretsmanager:eu-west-1:123456789012:secret:CallbackKeysSecret-abc",
            SECRET_ID_JWT => "arn:aws:secretsmanager:eu-west-1:123456789012:secret:JwtSecret-abc",
            B2C_SHORTCODE => "600992",
            SECRETS_JSON => {
                r#"{"daraja_consumer_key":"k","daraja_consumer_secret":"s","stk_shortcode":"174379","stk_passkey":"p","callback_hmac_key":"0123456789abcdef0123456789abcdef"}"#
            }
            SECRETS_FILE => "/run/checkout/secrets.json",
            SECRETS_TTL_SECONDS => "300",
            DARAJA_BASE_URL => "https://sandbox.safaricom.co.ke",
            DARAJA_TIMEOUT_MS => "15000",
            PUBLIC_BASE_URL => "https://pay.example.co.ke",
            STK_TRANSACTION_TYPE => "CustomerPayBillOnline",
            STK_PARTY_B => "174379",
            PAYMENT_FIRST_CHECK_SECONDS => "75",
            PAYMENT_DEADLINE_SECONDS => "300",
            JWT_ISSUER => "https://idp.example.co.ke",
            JWT_AUDIENCE => "mpesa-checkout",
            JWT_PUBLIC_KEY_PEM => "-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----",
            JWT_LEEWAY_SECONDS => "30",
            CALLBACK_SOURCE_IPS => "196.201.214.200,196.201.214.206",
            LIMIT_PAYMENT_MIN => "1",
            LIMIT_PAYMENT_MAX => "150000",
            LIMIT_PHONE_PROMPTS => "3",
            LIMIT_PHONE_WINDOW_SECONDS => "300",
            LIMIT_PHONE_DAILY_AMOUNT => "300000",
            LIMIT_MERCHANT_DAILY_COUNT => "off",
            LIMIT_MERCHANT_DAILY_AMOUNT => "off",
            SWEEP_QUERIES_PER_SECOND => "10",
            SWEEP_CONCURRENCY => "4",
            SWEEP_TIME_BUDGET_SECONDS => "50",
            B2C_CERTIFICATE_PEM => "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----",
            B2C_CERTIFICATE_FILE => "/run/checkout/initiator-cert.pem",
            PAYOUT_APPROVAL_THRESHOLD => "100000",
            LIMIT_PAYOUT_MAX => "250000",
            LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT => "500000",
            LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT => "10000000",
            LIMIT_PAYOUT_MERCHANT_DAILY_COUNT => "10000",
            PAYOUT_RESULT_WAIT_SECONDS => "120",
            PAYOUT_STATUS_INTERVAL_SECONDS => "60",
            PAYOUT_DEADLINE_SECONDS => "600",
            PAYOUT_REQUEUE_SECONDS => "300",
            PAYOUT_WORKER_CONCURRENCY => "4",
            PAYOUT_SUBMISSION_LEASE_SECONDS => "300",
            PAYOUT_SWEEP_QUERIES_PER_SECOND => "5",
            C2B_ALLOW_HTTP => "false",
            C2B_VALIDATION_BUDGET_MS => "300",
            C2B_RULES_CACHE_SECONDS => "30",
            C2B_FALLBACK_DECISION => "accept",
            FEATURE_PAYOUTS => "on",
            FEATURE_C2B => "on",
            other => panic!("no example value for {other}: add one to config::examples"),
        }
    }

    /// `function`'s required variables (and, with `with_optional`, every optional one) set to
    /// example values.
    pub fn env(function: &str, with_optional: bool) -> HashMap<String, String> {
        let declared = super::function_vars(function).unwrap_or_else(|| panic!("no function {function}"));
        let optional: &[&str] = if with_optional { declared.optional } else { &[] };
        declared
            .required
            .iter()
            .chain(optional)
            .map(|name| ((*name).to_owned(), value(name).to_owned()))
            .collect()
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
    fn a_submission_lease_must_outlast_one_daraja_call() {
        let settings =
            |pairs: &[(&str, &str)]| from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        assert_eq!(
            settings(&[]).payout_submission_lease().unwrap(),
            chrono::Duration::seconds(300)
        );
        let short = settings(&[
            (vars::PAYOUT_SUBMISSION_LEASE_SECONDS, "10"),
            (vars::DARAJA_TIMEOUT_MS, "10000"),
        ]);
        assert!(matches!(
            short.payout_submission_lease(),
            Err(ConfigError::Invalid {
                name: vars::PAYOUT_SUBMISSION_LEASE_SECONDS,
                ..
            })
        ));
        let fits = settings(&[
            (vars::PAYOUT_SUBMISSION_LEASE_SECONDS, "11"),
            (vars::DARAJA_TIMEOUT_MS, "10000"),
        ]);
        assert_eq!(fits.payout_submission_lease().unwrap(), chrono::Duration::seconds(11));
    }

    #[test]
    fn function_declarations_are_consistent() {
        let mut names = std::collections::BTreeSet::new();
        for f in FUNCTIONS {
            assert!(names.insert(f.function), "{} declared twice", f.function);
            for name in f.required {
                assert!(
                    !f.optional.contains(name),
                    "{}: {name} is both required and optional",
                    f.function
                );
            }
            for name in f.required.iter().chain(f.optional) {
                examples::value(name);
            }
        }
        assert!(function_vars("initiate").is_some_and(|f| f.declares(vars::TABLE_NAME)));
        assert!(matches!(for_function("nope"), Err(ConfigError::UnknownFunction(_))));
    }

    #[test]
    fn a_scoped_reader_reads_declared_variables() {
        let settings = for_function_from_map("callback", examples::env("callback", true)).unwrap();
        assert_eq!(settings.function(), Some("callback"));
        assert!(settings.optional(vars::CALLBACK_QUEUE_URL).is_some());
        assert!(settings.callback_sources().is_ok());
        assert_eq!(settings.verify(), Ok(()));
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn a_scoped_reader_refuses_an_undeclared_variable() {
        let settings = for_function_from_map("callback", examples::env("callback", true)).unwrap();
        let _ = settings.optional(vars::TABLE_NAME);
    }

    #[test]
    fn feature_flags() {
        assert_eq!(settings(&[]).feature(vars::FEATURE_PAYOUTS), Ok(true));
        assert_eq!(
            settings(&[(vars::FEATURE_PAYOUTS, "off")]).feature(vars::FEATURE_PAYOUTS),
            Ok(false)
        );
        assert_eq!(
            settings(&[(vars::FEATURE_C2B, "ON")]).feature(vars::FEATURE_C2B),
            Ok(true)
        );
        assert!(settings(&[(vars::FEATURE_C2B, "maybe")])
            .feature(vars::FEATURE_C2B)
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
