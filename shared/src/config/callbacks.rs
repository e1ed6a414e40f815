//! Daraja's callbacks (STK results, B2C results, C2B confirmations): the queue the edge functions
//! put them on, and the addresses Safaricom sends them from.

use std::net::IpAddr;

use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    pub const CALLBACK_QUEUE_URL: &str = "CALLBACK_QUEUE_URL";
    pub const CALLBACK_SOURCE_IPS: &str = "CALLBACK_SOURCE_IPS";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (
        vars::CALLBACK_QUEUE_URL,
        "https://sqs.eu-west-1.amazonaws.com/123456789012/callbacks",
    ),
    (vars::CALLBACK_SOURCE_IPS, "196.201.214.200,196.201.214.206"),
];

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

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_map, vars};

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
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
