//! Variables every flow shares: the table, the public base URL callbacks are built on, the log
//! format.

use super::{ConfigError, Settings};

/// Environment variable names.
pub mod vars {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::TABLE_NAME, "mpesa-checkout-dev-Table"),
    (vars::PUBLIC_BASE_URL, "https://pay.example.co.ke"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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
