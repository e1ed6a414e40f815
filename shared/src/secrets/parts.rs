//! The secret, split by concern: each part is its own Secrets Manager secret, and IAM lets a
//! function read only the parts it uses (`config::FUNCTIONS` declares them; the template test
//! checks the grants against that declaration). Locally one merged JSON may hold every part.
//!
//! | part | fields | read by |
//! |---|---|---|
//! | `daraja-app` | `daraja_consumer_key`, `daraja_consumer_secret`, `stk_shortcode`, `stk_passkey` | initiate, status (readiness), timeout-sweeper, b2c-payout, c2b-api |
//! | `b2c-initiator` | `b2c_initiator_name`, `b2c_initiator_password`, `c2b_initiator_name`, `c2b_initiator_password` | b2c-payout, timeout-sweeper |
//! | `callback-keys` | `callback_hmac_key`, `callback_hmac_key_previous`, `limits_hmac_key`, `webhook_signing_secret` | initiate, payouts-api (limits key), callback-processor, timeout-sweeper, b2c-payout, c2b-validation, c2b-api, events and webhooks-api (webhook signing key) |
//! | `jwt` | `jwt_hs256_secret` | initiate, status, payouts-api, c2b-api |
//!
//! The B2C shortcode is not a secret: it is configuration of the function that records payouts
//! (`B2C_SHORTCODE`, payouts-api), so that function never reads the initiator's password. A
//! merged local JSON may still carry it as `b2c_shortcode`.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{Secret, SecretsError};
use crate::daraja::ApiCredentials;

/// One concern's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretPart {
    /// The Daraja app's OAuth credentials, and STK Push's shortcode and passkey.
    DarajaApp,
    /// The initiators: B2C (payouts and their Transaction Status) and C2B (Transaction Status
    /// on the C2B shortcodes, verifying confirmations).
    B2cInitiator,
    /// Keys of our own: callback URL tokens, keyed phone hashes, webhook signatures.
    CallbackKeys,
    /// The HS256 key API tokens are verified with.
    Jwt,
}

impl SecretPart {
    pub const ALL: [SecretPart; 4] = [
        SecretPart::DarajaApp,
        SecretPart::B2cInitiator,
        SecretPart::CallbackKeys,
        SecretPart::Jwt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecretPart::DarajaApp => "daraja-app",
            SecretPart::B2cInitiator => "b2c-initiator",
            SecretPart::CallbackKeys => "callback-keys",
            SecretPart::Jwt => "jwt",
        }
    }

    /// The JSON keys this part's secret holds (and no other part does).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            SecretPart::DarajaApp => &[
                "daraja_consumer_key",
                "daraja_consumer_secret",
                "stk_shortcode",
                "stk_passkey",
            ],
            SecretPart::B2cInitiator => &[
                "b2c_initiator_name",
                "b2c_initiator_password",
                "c2b_initiator_name",
                "c2b_initiator_password",
            ],
            SecretPart::CallbackKeys => &[
                "callback_hmac_key",
                "callback_hmac_key_previous",
                "limits_hmac_key",
                "webhook_signing_secret",
            ],
            SecretPart::Jwt => &["jwt_hs256_secret"],
        }
    }

    /// The part holding `field`, if any.
    pub fn of_field(field: &str) -> Option<SecretPart> {
        SecretPart::ALL.into_iter().find(|part| part.fields().contains(&field))
    }
}

impl std::fmt::Display for SecretPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A non-secret field a merged local JSON may carry (deployed, it is configuration).
const B2C_SHORTCODE: &str = "b2c_shortcode";

/// The `daraja-app` part: every field is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DarajaAppSecrets {
    pub daraja_consumer_key: Secret,
    pub daraja_consumer_secret: Secret,
    pub stk_shortcode: String,
    pub stk_passkey: Secret,
}

impl DarajaAppSecrets {
    /// The app's OAuth credentials.
    pub fn credentials(&self) -> ApiCredentials {
        ApiCredentials {
            consumer_key: self.daraja_consumer_key.clone(),
            consumer_secret: self.daraja_consumer_secret.clone(),
        }
    }
}

/// The `b2c-initiator` part: optional fields, so a deployment without payouts keeps the secret
/// empty (`{}`); the payout code alarms `b2c_not_configured` when they are missing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct B2cInitiatorPart {
    #[serde(default)]
    b2c_initiator_name: Option<String>,
    #[serde(default)]
    b2c_initiator_password: Option<Secret>,
    #[serde(default)]
    c2b_initiator_name: Option<String>,
    #[serde(default)]
    c2b_initiator_password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackKeysPart {
    callback_hmac_key: Secret,
    #[serde(default)]
    callback_hmac_key_previous: Option<Secret>,
    #[serde(default)]
    limits_hmac_key: Option<Secret>,
    #[serde(default)]
    webhook_signing_secret: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtPart {
    #[serde(default)]
    jwt_hs256_secret: Option<Secret>,
}

/// What one function knows of the secret: the fields of the parts it loads, and nothing of the
/// others (absent, and an accessor says which part is missing).
#[derive(Debug, Clone, Default)]
pub struct AppSecrets {
    /// The `daraja-app` part; read it through [`AppSecrets::daraja_app`].
    pub daraja: Option<DarajaAppSecrets>,
    /// The shortcode payouts are paid from: configuration (`B2C_SHORTCODE`), not a secret.
    pub b2c_shortcode: Option<String>,
    pub b2c_initiator_name: Option<String>,
    pub b2c_initiator_password: Option<Secret>,
    /// An initiator with the Transaction Status role on the C2B shortcodes: verifies C2B
    /// confirmations by receipt. Without it confirmations stay `unverified` (the registration
    /// answer and `/v1/ready` say so) unless a shortcode trusts them.
    pub c2b_initiator_name: Option<String>,
    pub c2b_initiator_password: Option<Secret>,
    /// Present whenever the `callback-keys` part is loaded (it is required there).
    pub callback_hmac_key: Option<Secret>,
    /// The key being rotated out: tokens made with it still verify until it is removed.
    pub callback_hmac_key_previous: Option<Secret>,
    /// The key of keyed phone hashes (limits).
    pub limits_hmac_key: Option<Secret>,
    pub webhook_signing_secret: Option<Secret>,
    pub jwt_hs256_secret: Option<Secret>,
    /// The parts this view was loaded with.
    parts: BTreeSet<SecretPart>,
}

impl AppSecrets {
    pub const MIN_KEY_CHARS: usize = 32;

    /// A merged JSON holding every part (local runs, the dev stack, tests): the rules of each
    /// part apply (`daraja-app` and `callback_hmac_key` required).
    pub fn parse(json: &str) -> Result<AppSecrets, SecretsError> {
        AppSecrets::parse_merged(json, &SecretPart::ALL)
    }

    /// A merged JSON, keeping only the fields of `parts` (each part's rules apply to them); the
    /// fields of other parts are dropped, unknown keys refused.
    pub fn parse_merged(json: &str, parts: &[SecretPart]) -> Result<AppSecrets, SecretsError> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).map_err(malformed)?;
        let mut split: Vec<(SecretPart, serde_json::Map<String, serde_json::Value>)> =
            parts.iter().map(|p| (*p, serde_json::Map::new())).collect();
        let mut b2c_shortcode = None;
        for (key, value) in object {
            if key == B2C_SHORTCODE {
                b2c_shortcode = Some(value);
                continue;
            }
            let Some(part) = SecretPart::of_field(&key) else {
                return Err(SecretsError::Malformed(format!("unknown field `{key}`")));
            };
            if let Some((_, fields)) = split.iter_mut().find(|(p, _)| *p == part) {
                fields.insert(key, value);
            }
        }
        let mut secrets = AppSecrets::default();
        for (part, fields) in split {
            secrets.add_part(part, serde_json::Value::Object(fields))?;
        }
        if let Some(value) = b2c_shortcode {
            let code: Option<String> = serde_json::from_value(value).map_err(malformed)?;
            secrets.set_b2c_shortcode(code)?;
        }
        Ok(secrets)
    }

    /// One part's own secret: exactly that part's fields (another part's field is refused, so a
    /// value pasted into the wrong secret fails loudly instead of being readable by the wrong
    /// functions).
    pub fn parse_part(part: SecretPart, json: &str) -> Result<AppSecrets, SecretsError> {
        let mut secrets = AppSecrets::default();
        secrets.add_json_part(part, json)?;
        Ok(secrets)
    }

    /// Adds part `part` from its own secret's JSON.
    pub(crate) fn add_json_part(&mut self, part: SecretPart, json: &str) -> Result<(), SecretsError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| in_part(part, malformed(e)))?;
        if let serde_json::Value::Object(fields) = &value {
            if let Some(other) = fields
                .keys()
                .find_map(|k| SecretPart::of_field(k).filter(|p| *p != part))
            {
                return Err(SecretsError::Malformed(format!(
                    "the {part} secret holds a field of the {other} secret"
                )));
            }
        }
        self.add_part(part, value)
    }

    fn add_part(&mut self, part: SecretPart, value: serde_json::Value) -> Result<(), SecretsError> {
        match part {
            SecretPart::DarajaApp => {
                let app: DarajaAppSecrets = typed(part, value)?;
                if !shortcode_ok(&app.stk_shortcode) {
                    return Err(SecretsError::Malformed("stk_shortcode must be 1-10 digits".into()));
                }
                self.daraja = Some(app);
            }
            SecretPart::B2cInitiator => {
                let b2c: B2cInitiatorPart = typed(part, value)?;
                self.b2c_initiator_name = b2c.b2c_initiator_name;
                self.b2c_initiator_password = b2c.b2c_initiator_password;
                self.c2b_initiator_name = b2c.c2b_initiator_name;
                self.c2b_initiator_password = b2c.c2b_initiator_password;
            }
            SecretPart::CallbackKeys => {
                let keys: CallbackKeysPart = typed(part, value)?;
                long_enough("callback_hmac_key", Some(&keys.callback_hmac_key))?;
                long_enough("callback_hmac_key_previous", keys.callback_hmac_key_previous.as_ref())?;
                long_enough("limits_hmac_key", keys.limits_hmac_key.as_ref())?;
                long_enough("webhook_signing_secret", keys.webhook_signing_secret.as_ref())?;
                self.callback_hmac_key = Some(keys.callback_hmac_key);
                self.callback_hmac_key_previous = keys.callback_hmac_key_previous;
                self.limits_hmac_key = keys.limits_hmac_key;
                self.webhook_signing_secret = keys.webhook_signing_secret;
            }
            SecretPart::Jwt => {
                let jwt: JwtPart = typed(part, value)?;
                long_enough("jwt_hs256_secret", jwt.jwt_hs256_secret.as_ref())?;
                self.jwt_hs256_secret = jwt.jwt_hs256_secret;
            }
        }
        self.parts.insert(part);
        Ok(())
    }

    /// Sets the B2C shortcode (from configuration, or a merged local JSON).
    pub(crate) fn set_b2c_shortcode(&mut self, code: Option<String>) -> Result<(), SecretsError> {
        if let Some(code) = &code {
            if !shortcode_ok(code) {
                return Err(SecretsError::Malformed("b2c_shortcode must be 1-10 digits".into()));
            }
        }
        self.b2c_shortcode = code;
        Ok(())
    }

    /// The parts this view holds.
    pub fn parts(&self) -> &BTreeSet<SecretPart> {
        &self.parts
    }

    /// The `daraja-app` part, or why it is not here (this function does not load it).
    pub fn daraja_app(&self) -> Result<&DarajaAppSecrets, SecretsError> {
        self.daraja.as_ref().ok_or(SecretsError::NotLoaded {
            part: SecretPart::DarajaApp,
        })
    }

    /// The Daraja app's OAuth credentials (the `daraja-app` part).
    pub fn api_credentials(&self) -> Result<ApiCredentials, SecretsError> {
        self.daraja_app().map(DarajaAppSecrets::credentials)
    }

    /// The key phone numbers are hashed with (HMAC-SHA256) in limit keys (the `callback-keys`
    /// part): `limits_hmac_key` when set; otherwise derived from `callback_hmac_key` as
    /// `hex(HMAC-SHA256(key = callback_hmac_key, "checkout/limits-phone-hash/v1"))`, a
    /// domain-separated key that reveals nothing about the callback key and is never usable as
    /// a callback token. Rotating `callback_hmac_key` without `limits_hmac_key` set therefore
    /// changes every phone's limit keys (their windows and daily amounts start again): set
    /// `limits_hmac_key` to rotate the two independently.
    pub fn limits_hmac_key(&self) -> Result<Secret, SecretsError> {
        match &self.limits_hmac_key {
            Some(key) => Ok(key.clone()),
            None => self.derived_from_callback_key(b"checkout/limits-phone-hash/v1"),
        }
    }

    /// The master key merchant webhook signing secrets are derived from (one per endpoint and
    /// generation, never stored): `webhook_signing_secret` if set, else a key derived from the
    /// callback key, domain-separated (so neither reveals the other).
    pub fn webhook_signing_key(&self) -> Result<Secret, SecretsError> {
        match &self.webhook_signing_secret {
            Some(key) => Ok(key.clone()),
            None => self.derived_from_callback_key(b"checkout/webhook-signing-master/v1"),
        }
    }

    /// `hex(HMAC-SHA256(key = callback_hmac_key, label))`: a key for one purpose that reveals
    /// nothing about the callback key (each purpose its own label).
    fn derived_from_callback_key(&self, label: &[u8]) -> Result<Secret, SecretsError> {
        use hmac::{Hmac, Mac};
        let callback_key = self.callback_hmac_key.as_ref().ok_or(SecretsError::NotLoaded {
            part: SecretPart::CallbackKeys,
        })?;
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(callback_key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label);
        Ok(Secret::new(hex::encode(mac.finalize().into_bytes())))
    }
}

fn shortcode_ok(code: &str) -> bool {
    !code.is_empty() && code.len() <= 10 && code.bytes().all(|b| b.is_ascii_digit())
}

fn long_enough(field: &str, key: Option<&Secret>) -> Result<(), SecretsError> {
    match key {
        Some(key) if key.expose().len() < AppSecrets::MIN_KEY_CHARS => Err(SecretsError::Malformed(format!(
            "{field} must be at least {} characters",
            AppSecrets::MIN_KEY_CHARS
        ))),
        _ => Ok(()),
    }
}

fn typed<T: DeserializeOwned>(part: SecretPart, value: serde_json::Value) -> Result<T, SecretsError> {
    serde_json::from_value(value).map_err(|e| in_part(part, malformed(e)))
}

fn in_part(part: SecretPart, error: SecretsError) -> SecretsError {
    match error {
        SecretsError::Malformed(detail) => SecretsError::Malformed(format!("{part} secret: {detail}")),
        other => other,
    }
}

fn malformed(e: serde_json::Error) -> SecretsError {
    // serde's messages for missing/unknown fields name the field only; for type errors they may
    // quote the value, so keep only the category there. Never a value.
    let text = e.to_string();
    let detail = if text.starts_with("missing field") || text.starts_with("unknown field") {
        text.split(" at line").next().unwrap_or("invalid").to_owned()
    } else if e.line() > 0 {
        format!("{:?} error (line {}, column {})", e.classify(), e.line(), e.column())
    } else {
        format!("{:?} error", e.classify())
    };
    SecretsError::Malformed(detail)
}
