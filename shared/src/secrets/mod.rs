//! Secrets: the one JSON secret per environment, fetched through a [`SecretSource`] and cached
//! in the warm process with a TTL.
//!
//! Shape (every value a string; optional ones may be absent):
//! ```json
//! {
//!   "daraja_consumer_key": "...", "daraja_consumer_secret": "...",
//!   "stk_shortcode": "174379", "stk_passkey": "...",
//!   "b2c_shortcode": "600992", "b2c_initiator_name": "testapi", "b2c_initiator_password": "...",
//!   "callback_hmac_key": "at least 32 characters",
//!   "callback_hmac_key_previous": "optional: the key being rotated out",
//!   "limits_hmac_key": "optional, at least 32 characters: keys the phone hashes in limit keys",
//!   "jwt_hs256_secret": "at least 32 characters",
//!   "webhook_signing_secret": "..."
//! }
//! ```

pub mod sources;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::RwLock;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("secret source unavailable: {0}")]
    Unavailable(String),
    #[error("secret is malformed: {0}")]
    Malformed(String),
}

/// Where the secret JSON comes from (Secrets Manager, an environment variable, a file).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self) -> Result<String, SecretsError>;
}

/// A secret held in memory (the dev stack and tests).
pub struct StaticSecret(pub String);

#[async_trait]
impl SecretSource for StaticSecret {
    async fn fetch(&self) -> Result<String, SecretsError> {
        Ok(self.0.clone())
    }
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSecrets {
    pub daraja_consumer_key: Secret,
    pub daraja_consumer_secret: Secret,
    pub stk_shortcode: String,
    pub stk_passkey: Secret,
    #[serde(default)]
    pub b2c_shortcode: Option<String>,
    #[serde(default)]
    pub b2c_initiator_name: Option<String>,
    #[serde(default)]
    pub b2c_initiator_password: Option<Secret>,
    pub callback_hmac_key: Secret,
    /// The key being rotated out: tokens made with it still verify until it is removed.
    #[serde(default)]
    pub callback_hmac_key_previous: Option<Secret>,
    #[serde(default)]
    pub jwt_hs256_secret: Option<Secret>,
    #[serde(default)]
    pub webhook_signing_secret: Option<Secret>,
    /// Keys the HMAC of phone numbers in limit keys; see [`AppSecrets::limits_hmac_key`].
    #[serde(default)]
    pub limits_hmac_key: Option<Secret>,
}

impl AppSecrets {
    pub const MIN_KEY_CHARS: usize = 32;

    pub fn parse(json: &str) -> Result<AppSecrets, SecretsError> {
        // serde's message names the field but never echoes values.
        let secrets: AppSecrets = serde_json::from_str(json).map_err(|e| {
            SecretsError::Malformed(format!("{} (line {}, column {})", classify(&e), e.line(), e.column()))
        })?;
        if let Some(previous) = &secrets.callback_hmac_key_previous {
            if previous.expose().len() < Self::MIN_KEY_CHARS {
                return Err(SecretsError::Malformed(
                    "callback_hmac_key_previous must be at least 32 characters".into(),
                ));
            }
        }
        if secrets.callback_hmac_key.expose().len() < Self::MIN_KEY_CHARS {
            return Err(SecretsError::Malformed(
                "callback_hmac_key must be at least 32 characters".into(),
            ));
        }
        if let Some(key) = &secrets.limits_hmac_key {
            if key.expose().len() < Self::MIN_KEY_CHARS {
                return Err(SecretsError::Malformed(
                    "limits_hmac_key must be at least 32 characters".into(),
                ));
            }
        }
        if let Some(key) = &secrets.jwt_hs256_secret {
            if key.expose().len() < Self::MIN_KEY_CHARS {
                return Err(SecretsError::Malformed(
                    "jwt_hs256_secret must be at least 32 characters".into(),
                ));
            }
        }
        let shortcode_ok = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
        if !shortcode_ok(&secrets.stk_shortcode) {
            return Err(SecretsError::Malformed("stk_shortcode must be 1-10 digits".into()));
        }
        if let Some(code) = &secrets.b2c_shortcode {
            if !shortcode_ok(code) {
                return Err(SecretsError::Malformed("b2c_shortcode must be 1-10 digits".into()));
            }
        }
        Ok(secrets)
    }
}

impl AppSecrets {
    /// The key phone numbers are hashed with (HMAC-SHA256) in limit keys: `limits_hmac_key` when
    /// set; otherwise derived from `callback_hmac_key` as
    /// `hex(HMAC-SHA256(key = callback_hmac_key, "checkout/limits-phone-hash/v1"))`, a
    /// domain-separated key that reveals nothing about the callback key and is never usable as
    /// a callback token. Rotating `callback_hmac_key` without `limits_hmac_key` set therefore
    /// changes every phone's limit keys (their windows and daily amounts start again): set
    /// `limits_hmac_key` to rotate the two independently.
    pub fn limits_hmac_key(&self) -> Secret {
        use hmac::{Hmac, Mac};
        if let Some(key) = &self.limits_hmac_key {
            return key.clone();
        }
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.callback_hmac_key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"checkout/limits-phone-hash/v1");
        let derived = mac.finalize().into_bytes();
        Secret::new(derived.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }
}

fn classify(e: &serde_json::Error) -> String {
    // serde_json's messages for missing/unknown fields name the field only; for type errors they
    // may quote the value, so keep only the category there.
    let text = e.to_string();
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        text.split(" at line").next().unwrap_or("invalid").to_owned()
    } else {
        format!("{:?} error", e.classify())
    }
}

/// Caches the parsed secret for `ttl`; a failed refresh keeps serving the previous value for
/// up to `stale_grace` so a Secrets Manager blip does not stop payments.
pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    ttl: Duration,
    stale_grace: Duration,
    slot: RwLock<Option<(Instant, Arc<AppSecrets>)>>,
}

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> SecretCache {
        SecretCache {
            source,
            ttl,
            stale_grace: Duration::from_secs(3600),
            slot: RwLock::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<AppSecrets>, SecretsError> {
        if let Some((at, secrets)) = self.slot.read().await.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(secrets.clone());
            }
        }
        let mut slot = self.slot.write().await;
        if let Some((at, secrets)) = slot.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(secrets.clone());
            }
        }
        match self.source.fetch().await.and_then(|json| AppSecrets::parse(&json)) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *slot = Some((Instant::now(), fresh.clone()));
                Ok(fresh)
            }
            Err(error) => match slot.as_ref() {
                Some((at, stale)) if at.elapsed() < self.ttl + self.stale_grace => {
                    tracing::warn!(%error, "secret refresh failed; serving the cached value");
                    Ok(stale.clone())
                }
                _ => Err(error),
            },
        }
    }

    /// Forces the next `get` to fetch (after a credential is reported invalid).
    pub async fn invalidate(&self) {
        if let Some((at, _)) = self.slot.write().await.as_mut() {
            *at = Instant::now() - self.ttl - Duration::from_secs(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) fn sample_json() -> String {
        serde_json::json!({
            "daraja_consumer_key": "key", "daraja_consumer_secret": "secret-value-xyz",
            "stk_shortcode": "174379", "stk_passkey": "passkey-value",
            "callback_hmac_key": "k".repeat(32),
        })
        .to_string()
    }

    struct Counting(AtomicUsize, Option<String>);

    #[async_trait]
    impl SecretSource for Counting {
        async fn fetch(&self) -> Result<String, SecretsError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            self.1.clone().ok_or(SecretsError::Unavailable("down".into()))
        }
    }

    #[test]
    fn the_operators_example_secret_is_accepted() {
        let example = include_str!("../../../infra/secret.example.json");
        let parsed = AppSecrets::parse(example).expect("infra/secret.example.json parses as the functions parse it");
        assert!(parsed.b2c_initiator_password.is_some() && parsed.jwt_hs256_secret.is_some());
    }

    #[test]
    fn debug_output_never_shows_values() {
        let s = AppSecrets::parse(&sample_json()).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("secret-value-xyz"));
        assert!(!printed.contains("passkey-value"));
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_values() {
        let short_key = sample_json().replace(&"k".repeat(32), "short");
        assert!(matches!(AppSecrets::parse(&short_key), Err(SecretsError::Malformed(_))));
        let typed = serde_json::json!({"daraja_consumer_key": 42}).to_string();
        let err = AppSecrets::parse(&typed).unwrap_err().to_string();
        assert!(!err.contains("42"), "{err}");
        assert!(AppSecrets::parse("{}")
            .unwrap_err()
            .to_string()
            .contains("missing field"));
        let bad_code = sample_json().replace("174379", "17a");
        assert!(AppSecrets::parse(&bad_code).is_err());
    }

    #[test]
    fn the_limits_key_is_its_own_or_derived_from_the_callback_key() {
        let derived = AppSecrets::parse(&sample_json()).unwrap().limits_hmac_key();
        assert_eq!(derived.expose().len(), 64);
        assert_ne!(derived.expose(), "k".repeat(32), "never the callback key itself");
        let other_callback_key = sample_json().replace(&"k".repeat(32), &"m".repeat(32));
        assert_ne!(
            AppSecrets::parse(&other_callback_key).unwrap().limits_hmac_key(),
            derived
        );

        let mut json: serde_json::Value = serde_json::from_str(&sample_json()).unwrap();
        json["limits_hmac_key"] = "l".repeat(32).into();
        let own = AppSecrets::parse(&json.to_string()).unwrap();
        assert_eq!(own.limits_hmac_key().expose(), "l".repeat(32));
        json["limits_hmac_key"] = "short".into();
        assert!(matches!(
            AppSecrets::parse(&json.to_string()),
            Err(SecretsError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn cache_fetches_once_per_ttl() {
        let source = Arc::new(Counting(AtomicUsize::new(0), Some(sample_json())));
        let cache = SecretCache::new(source.clone(), Duration::from_secs(60));
        for _ in 0..5 {
            cache.get().await.unwrap();
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
        cache.invalidate().await;
        cache.get().await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failure_without_a_cached_value_is_an_error() {
        let cache = SecretCache::new(Arc::new(Counting(AtomicUsize::new(0), None)), Duration::from_secs(60));
        assert!(matches!(cache.get().await, Err(SecretsError::Unavailable(_))));
    }
}
