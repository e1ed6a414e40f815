//! C2B: registering a shortcode's URLs with Daraja, validating its payments, and the merchant
//! API's feature flag.

use std::time::Duration;

use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    /// `true` lets C2B URLs be plain HTTP (dev stack, simulator); production requires HTTPS.
    pub const C2B_ALLOW_HTTP: &str = "C2B_ALLOW_HTTP";
    /// Milliseconds C2B validation may spend on its dependencies before its default decides (300).
    pub const C2B_VALIDATION_BUDGET_MS: &str = "C2B_VALIDATION_BUDGET_MS";
    /// Seconds a shortcode's C2B rules are cached in the warm validation function (30).
    pub const C2B_RULES_CACHE_SECONDS: &str = "C2B_RULES_CACHE_SECONDS";
    /// `accept` or `reject`: validation's answer when not even the shortcode's configuration can be read (accept).
    pub const C2B_FALLBACK_DECISION: &str = "C2B_FALLBACK_DECISION";
    /// Feature flag `on`/`off` (default on): the C2B merchant API (registrations, expected payments, reads).
    pub const FEATURE_C2B: &str = "FEATURE_C2B";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::C2B_ALLOW_HTTP, "false"),
    (vars::C2B_VALIDATION_BUDGET_MS, "300"),
    (vars::C2B_RULES_CACHE_SECONDS, "30"),
    (vars::C2B_FALLBACK_DECISION, "accept"),
    (vars::FEATURE_C2B, "on"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// C2B registration: URLs are built on `PUBLIC_BASE_URL`; HTTPS unless `C2B_ALLOW_HTTP=true`.
    pub fn c2b_registration(&self) -> Result<crate::services::c2b::registration::C2bRegistrationConfig, ConfigError> {
        let public_base_url = self.required(super::vars::PUBLIC_BASE_URL)?;
        if !(public_base_url.starts_with("https://") || public_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: super::vars::PUBLIC_BASE_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        let allow_http: bool = self.parsed(vars::C2B_ALLOW_HTTP, false)?;
        Ok(crate::services::c2b::registration::C2bRegistrationConfig {
            public_base_url,
            require_https: !allow_http,
        })
    }

    /// C2B validation: dependency budget, rules cache TTL, fallback decision.
    pub fn c2b_validation(&self) -> Result<crate::services::c2b::validation::ValidationSettings, ConfigError> {
        let defaults = crate::services::c2b::validation::ValidationSettings::default();
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
        Ok(crate::services::c2b::validation::ValidationSettings {
            budget: Duration::from_millis(budget_ms),
            rules_ttl: Duration::from_secs(self.parsed(vars::C2B_RULES_CACHE_SECONDS, defaults.rules_ttl.as_secs())?),
            fallback,
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
}
