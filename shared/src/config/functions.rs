//! Every Lambda function and the variables it reads: the table `template.yaml` is checked
//! against (`shared/tests/template.rs`) and scoped readers enforce ([`super::for_function`]).

use super::vars::*;

/// The variables one Lambda function reads. `required` ones must be set by the deployment (the
/// template test checks each); `optional` ones have defaults (or, like `CHECKOUT_SECRETS_JSON`,
/// serve local runs). Reading any other variable is refused (see [`for_function`](super::for_function)).
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
            CHECKOUT_DISPLAY_NAME,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            DARAJA_TIMEOUT_MS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
            CHECKOUT_ALLOWED_ORIGINS,
            CHECKOUT_LIVE_URL,
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
        required: &[
            TABLE_NAME,
            // The callback keys hold the master key webhook signing secrets are derived from.
            SECRET_ID_CALLBACK_KEYS,
            // The live channel's pushes: the page's status names the shop.
            PUBLIC_BASE_URL,
            CHECKOUT_DISPLAY_NAME,
            LIVE_CONNECTIONS_TABLE,
            LIVE_MANAGEMENT_URL,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            CHECKOUT_ALLOWED_ORIGINS,
            // The page's countdown (the payments' deadline).
            PAYMENT_FIRST_CHECK_SECONDS,
            PAYMENT_DEADLINE_SECONDS,
        ],
    },
    FunctionVars {
        function: "checkout-live",
        // `$connect` reads the session; connections are recorded in their own table.
        required: &[TABLE_NAME, LIVE_CONNECTIONS_TABLE],
        optional: &[],
    },
    FunctionVars {
        function: "webhooks-api",
        required: &[
            TABLE_NAME,
            SECRET_ID_CALLBACK_KEYS,
            SECRET_ID_JWT,
            JWT_ISSUER,
            JWT_AUDIENCE,
        ],
        optional: &[
            SECRETS_JSON,
            SECRETS_FILE,
            SECRETS_TTL_SECONDS,
            JWT_PUBLIC_KEY_PEM,
            JWT_LEEWAY_SECONDS,
        ],
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
            // Set in the template: the digests' Object Lock bucket.
            AUDIT_DIGEST_BUCKET,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{examples, for_function, vars, ConfigError};

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
}
