//! Payments (STK Push): how a push is made and timed, and the reconciliation sweep that settles
//! open payments.

use std::time::Duration;

use super::{ConfigError, Settings};
use crate::daraja::StkTransactionType;
use crate::domain::PaymentTimings;
use crate::engine::sweep::Pacing;
use crate::services::payments::PaymentsConfig;
use crate::services::payments::sweep::ReconcileConfig;

/// Environment variable names.
pub mod vars {
    pub const STK_TRANSACTION_TYPE: &str = "STK_TRANSACTION_TYPE";
    pub const STK_PARTY_B: &str = "STK_PARTY_B";
    pub const PAYMENT_FIRST_CHECK_SECONDS: &str = "PAYMENT_FIRST_CHECK_SECONDS";
    pub const PAYMENT_DEADLINE_SECONDS: &str = "PAYMENT_DEADLINE_SECONDS";
    pub const SWEEP_QUERIES_PER_SECOND: &str = "SWEEP_QUERIES_PER_SECOND";
    pub const SWEEP_CONCURRENCY: &str = "SWEEP_CONCURRENCY";
    pub const SWEEP_TIME_BUDGET_SECONDS: &str = "SWEEP_TIME_BUDGET_SECONDS";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::STK_TRANSACTION_TYPE, "CustomerPayBillOnline"),
    (vars::STK_PARTY_B, "174379"),
    (vars::PAYMENT_FIRST_CHECK_SECONDS, "75"),
    (vars::PAYMENT_DEADLINE_SECONDS, "300"),
    (vars::SWEEP_QUERIES_PER_SECOND, "10"),
    (vars::SWEEP_CONCURRENCY, "4"),
    (vars::SWEEP_TIME_BUDGET_SECONDS, "50"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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
        let public_base_url = self.required(super::vars::PUBLIC_BASE_URL)?;
        if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: super::vars::PUBLIC_BASE_URL,
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

    pub fn reconcile(&self) -> Result<ReconcileConfig, ConfigError> {
        let defaults = ReconcileConfig::default();
        Ok(ReconcileConfig {
            pacing: self.sweep_pacing(vars::SWEEP_QUERIES_PER_SECOND, defaults.pacing)?,
            ..defaults
        })
    }

    /// A sweep's pace: queries per second from `queries_per_second_var`, concurrency and time
    /// budget from [`vars::SWEEP_CONCURRENCY`] and [`vars::SWEEP_TIME_BUDGET_SECONDS`] (shared by
    /// the sweeps of one invocation), each `defaults`' when unset; the failure threshold is
    /// always `defaults`'.
    pub(super) fn sweep_pacing(
        &self,
        queries_per_second_var: &'static str,
        defaults: Pacing,
    ) -> Result<Pacing, ConfigError> {
        Ok(Pacing {
            queries_per_second: self
                .parsed(queries_per_second_var, defaults.queries_per_second)?
                .max(1),
            concurrency: self.parsed(vars::SWEEP_CONCURRENCY, defaults.concurrency)?.max(1),
            time_budget: Duration::from_secs(
                self.parsed(vars::SWEEP_TIME_BUDGET_SECONDS, defaults.time_budget.as_secs())?,
            ),
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
}
