//! Payouts (B2C): the API, the worker and the payout sweep, and payouts' own limits.


use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    /// The shortcode payouts are paid from (payouts-api; configuration, not a secret).
    pub const B2C_SHORTCODE: &str = "B2C_SHORTCODE";
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
    /// Feature flag `on`/`off` (default on): B2C payouts' API (`off`: its routes answer 404 `feature_disabled`).
    pub const FEATURE_PAYOUTS: &str = "FEATURE_PAYOUTS";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::B2C_SHORTCODE, "600992"),
    (
        vars::PAYOUT_QUEUE_URL,
        "https://sqs.eu-west-1.amazonaws.com/123456789012/payouts",
    ),
    (
        vars::B2C_CERTIFICATE_PEM,
        "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----",
    ),
    (vars::B2C_CERTIFICATE_FILE, "/run/checkout/initiator-cert.pem"),
    (vars::PAYOUT_APPROVAL_THRESHOLD, "100000"),
    (vars::LIMIT_PAYOUT_MAX, "250000"),
    (vars::LIMIT_PAYOUT_RECIPIENT_DAILY_AMOUNT, "500000"),
    (vars::LIMIT_PAYOUT_MERCHANT_DAILY_AMOUNT, "10000000"),
    (vars::LIMIT_PAYOUT_MERCHANT_DAILY_COUNT, "10000"),
    (vars::PAYOUT_RESULT_WAIT_SECONDS, "120"),
    (vars::PAYOUT_STATUS_INTERVAL_SECONDS, "60"),
    (vars::PAYOUT_DEADLINE_SECONDS, "600"),
    (vars::PAYOUT_REQUEUE_SECONDS, "300"),
    (vars::PAYOUT_WORKER_CONCURRENCY, "4"),
    (vars::PAYOUT_SUBMISSION_LEASE_SECONDS, "300"),
    (vars::PAYOUT_SWEEP_QUERIES_PER_SECOND, "5"),
    (vars::FEATURE_PAYOUTS, "on"),
];

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

    pub fn payout_limits(&self) -> Result<crate::services::payouts::limits::PayoutLimitsConfig, ConfigError> {
        let defaults = crate::services::payouts::limits::PayoutLimitsConfig::default();
        let payout_max: u64 = self.parsed(vars::LIMIT_PAYOUT_MAX, defaults.payout_max)?;
        if !(10..=crate::domain::amount::MAX_TRANSACTION_KES).contains(&payout_max) {
            return Err(ConfigError::Invalid {
                name: vars::LIMIT_PAYOUT_MAX,
                reason: "10 to 250000 KES".into(),
            });
        }
        Ok(crate::services::payouts::limits::PayoutLimitsConfig {
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

    pub fn payout_worker(&self) -> Result<crate::services::payouts::worker::PayoutWorkerConfig, ConfigError> {
        Ok(crate::services::payouts::worker::PayoutWorkerConfig {
            public_base_url: self.payments_base_url()?,
            concurrency: self.parsed(vars::PAYOUT_WORKER_CONCURRENCY, 4usize)?.max(1),
            submission_lease: self.payout_submission_lease()?,
        })
    }

    /// How long a payout job's submission lease lasts. It must outlast one Daraja call: a job
    /// that finds another's lease expired never sends again (the earlier attempt may have paid)
    /// but asks Transaction Status, so a lease shorter than the call only delays the payout.
    pub fn payout_submission_lease(&self) -> Result<chrono::Duration, ConfigError> {
        let default = crate::services::payouts::worker::PayoutWorkerConfig::DEFAULT_SUBMISSION_LEASE;
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
    ) -> Result<crate::services::payouts::sweep::PayoutReconcileConfig, ConfigError> {
        let defaults = crate::services::payouts::sweep::PayoutReconcileConfig::default();
        Ok(crate::services::payouts::sweep::PayoutReconcileConfig {
            pacing: self.sweep_pacing(vars::PAYOUT_SWEEP_QUERIES_PER_SECOND, defaults.pacing)?,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_map, vars};

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
}
