//! Limits on payments (STK): amounts, prompts per phone, daily caps per phone and per merchant.
//! Payouts' limits are in `payouts.rs`, with the rest of that flow.

use super::{ConfigError, Settings};
use crate::services::limits::{LimitsConfig, RollingLimit};

/// Environment variable names.
pub mod vars {
    pub const LIMIT_PAYMENT_MIN: &str = "LIMIT_PAYMENT_MIN";
    pub const LIMIT_PAYMENT_MAX: &str = "LIMIT_PAYMENT_MAX";
    pub const LIMIT_PHONE_PROMPTS: &str = "LIMIT_PHONE_PROMPTS";
    pub const LIMIT_PHONE_WINDOW_SECONDS: &str = "LIMIT_PHONE_WINDOW_SECONDS";
    pub const LIMIT_PHONE_DAILY_AMOUNT: &str = "LIMIT_PHONE_DAILY_AMOUNT";
    pub const LIMIT_MERCHANT_DAILY_COUNT: &str = "LIMIT_MERCHANT_DAILY_COUNT";
    pub const LIMIT_MERCHANT_DAILY_AMOUNT: &str = "LIMIT_MERCHANT_DAILY_AMOUNT";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::LIMIT_PAYMENT_MIN, "1"),
    (vars::LIMIT_PAYMENT_MAX, "150000"),
    (vars::LIMIT_PHONE_PROMPTS, "3"),
    (vars::LIMIT_PHONE_WINDOW_SECONDS, "300"),
    (vars::LIMIT_PHONE_DAILY_AMOUNT, "300000"),
    (vars::LIMIT_MERCHANT_DAILY_COUNT, "off"),
    (vars::LIMIT_MERCHANT_DAILY_AMOUNT, "off"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_map, vars};

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
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
}
