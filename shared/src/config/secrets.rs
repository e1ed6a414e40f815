//! Where a function's secrets come from: the Secrets Manager id of each part it reads, or (local
//! runs, the cold-start meter) one merged JSON, and how long they are cached.

/// Environment variable names.
pub mod vars {
    /// The Secrets Manager id (ARN) of each secret a function reads (see `secrets::parts`).
    pub const SECRET_ID_DARAJA_APP: &str = "SECRET_ID_DARAJA_APP";
    pub const SECRET_ID_B2C_INITIATOR: &str = "SECRET_ID_B2C_INITIATOR";
    pub const SECRET_ID_CALLBACK_KEYS: &str = "SECRET_ID_CALLBACK_KEYS";
    pub const SECRET_ID_JWT: &str = "SECRET_ID_JWT";
    pub const SECRETS_JSON: &str = "CHECKOUT_SECRETS_JSON";
    pub const SECRETS_FILE: &str = "CHECKOUT_SECRETS_FILE";
    pub const SECRETS_TTL_SECONDS: &str = "SECRETS_TTL_SECONDS";
}

use vars::*;

/// Example values (see [`super::examples`]).
pub(super) const EXAMPLES: &[(&str, &str)] = &[
    (
        SECRET_ID_DARAJA_APP,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:DarajaAppSecret-abc",
    ),
    (
        SECRET_ID_B2C_INITIATOR,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:B2cInitiatorSecret-abc",
    ),
    (
        SECRET_ID_CALLBACK_KEYS,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:CallbackKeysSecret-abc",
    ),
    (
        SECRET_ID_JWT,
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:JwtSecret-abc",
    ),
    (
        SECRETS_JSON,
        r#"{"daraja_consumer_key":"k","daraja_consumer_secret":"s","stk_shortcode":"174379","stk_passkey":"p","callback_hmac_key":"0123456789abcdef0123456789abcdef"}"#,
    ),
    (SECRETS_FILE, "/run/checkout/secrets.json"),
    (SECRETS_TTL_SECONDS, "300"),
];

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
