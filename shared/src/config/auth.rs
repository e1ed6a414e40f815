//! Authentication of API callers: the JWTs they present.

use super::{ConfigError, Settings};
use crate::auth::JwtSettings;

/// Environment variable names.
pub mod vars {
    pub const JWT_ISSUER: &str = "JWT_ISSUER";
    pub const JWT_AUDIENCE: &str = "JWT_AUDIENCE";
    pub const JWT_PUBLIC_KEY_PEM: &str = "JWT_PUBLIC_KEY_PEM";
    pub const JWT_LEEWAY_SECONDS: &str = "JWT_LEEWAY_SECONDS";
}

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (vars::JWT_ISSUER, "https://idp.example.co.ke"),
    (vars::JWT_AUDIENCE, "mpesa-checkout"),
    (
        vars::JWT_PUBLIC_KEY_PEM,
        "-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----",
    ),
    (vars::JWT_LEEWAY_SECONDS, "30"),
];

impl<F: Fn(&str) -> Option<String>> Settings<F> {
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
}
