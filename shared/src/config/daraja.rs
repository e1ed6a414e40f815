//! Daraja: where its API is and how long one call may take.

use std::time::Duration;

use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    pub const DARAJA_BASE_URL: &str = "DARAJA_BASE_URL";
    pub const DARAJA_TIMEOUT_MS: &str = "DARAJA_TIMEOUT_MS";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::DARAJA_BASE_URL, "https://sandbox.safaricom.co.ke"),
    (vars::DARAJA_TIMEOUT_MS, "15000"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    pub fn daraja_timeout(&self) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.parsed(vars::DARAJA_TIMEOUT_MS, 15_000)?))
    }
}
