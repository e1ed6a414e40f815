//! Secrets: one secret per concern ([`SecretPart`], see [`parts`] for the fields of each),
//! fetched through [`SecretSource`]s and cached in the warm process with a TTL, merged into one
//! view ([`AppSecrets`]) holding the parts the function loads and nothing of the others.
//!
//! Deployed, each part is its own Secrets Manager secret (its id in `SECRET_ID_<PART>`); locally
//! one JSON object may hold them all (`CHECKOUT_SECRETS_JSON` or `CHECKOUT_SECRETS_FILE`):
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

pub mod parts;
pub mod sources;

use std::collections::BTreeSet;
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
    /// A function asked for a part it does not load (`config::FUNCTIONS` declares what it reads).
    #[error("the {part} secret is not loaded by this function")]
    NotLoaded { part: SecretPart },
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

pub use parts::{AppSecrets, DarajaAppSecrets, SecretPart};

/// Where the view comes from.
enum Sources {
    /// One JSON object holding (at least) these parts.
    Merged(Arc<dyn SecretSource>, Vec<SecretPart>),
    /// One secret per part.
    Split(Vec<(SecretPart, Arc<dyn SecretSource>)>),
}

/// Caches the parsed secrets for `ttl`; a failed refresh keeps serving the previous value for
/// up to `stale_grace` so a Secrets Manager blip does not stop payments. The parts are fetched
/// and refreshed together, so the view is never half old, half new.
pub struct SecretCache {
    sources: Sources,
    /// Non-secret configuration merged into the view (the B2C shortcode).
    b2c_shortcode: Option<String>,
    ttl: Duration,
    stale_grace: Duration,
    slot: RwLock<Option<(Instant, Arc<AppSecrets>)>>,
}

impl SecretCache {
    /// One merged JSON holding every part (the dev stack, tests, local runs).
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> SecretCache {
        SecretCache::merged(source, &SecretPart::ALL, ttl)
    }

    /// One merged JSON, of which only the fields of `parts` are kept.
    pub fn merged(source: Arc<dyn SecretSource>, parts: &[SecretPart], ttl: Duration) -> SecretCache {
        SecretCache::from_sources(Sources::Merged(source, parts.to_vec()), ttl)
    }

    /// One secret per part (Secrets Manager).
    pub fn split(sources: Vec<(SecretPart, Arc<dyn SecretSource>)>, ttl: Duration) -> SecretCache {
        SecretCache::from_sources(Sources::Split(sources), ttl)
    }

    fn from_sources(sources: Sources, ttl: Duration) -> SecretCache {
        SecretCache {
            sources,
            b2c_shortcode: None,
            ttl,
            stale_grace: Duration::from_secs(3600),
            slot: RwLock::new(None),
        }
    }

    /// Puts the B2C shortcode (configuration, not a secret) into the view.
    pub fn with_b2c_shortcode(mut self, shortcode: Option<String>) -> SecretCache {
        self.b2c_shortcode = shortcode;
        self
    }

    /// The parts the view holds.
    pub fn parts(&self) -> BTreeSet<SecretPart> {
        match &self.sources {
            Sources::Merged(_, parts) => parts.iter().copied().collect(),
            Sources::Split(sources) => sources.iter().map(|(part, _)| *part).collect(),
        }
    }

    async fn load(&self) -> Result<AppSecrets, SecretsError> {
        let mut secrets = match &self.sources {
            Sources::Merged(source, parts) => AppSecrets::parse_merged(&source.fetch().await?, parts)?,
            Sources::Split(sources) => {
                let fetched = futures::future::join_all(sources.iter().map(|(_, source)| source.fetch())).await;
                let mut secrets = AppSecrets::default();
                for ((part, _), json) in sources.iter().zip(fetched) {
                    secrets.add_json_part(*part, &json?)?;
                }
                secrets
            }
        };
        if self.b2c_shortcode.is_some() {
            secrets.set_b2c_shortcode(self.b2c_shortcode.clone())?;
        }
        Ok(secrets)
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
        match self.load().await {
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

    /// `infra/secrets/<part>.example.json`, as operators copy them.
    fn example(part: SecretPart) -> &'static str {
        match part {
            SecretPart::DarajaApp => include_str!("../../../infra/secrets/daraja-app.example.json"),
            SecretPart::B2cInitiator => include_str!("../../../infra/secrets/b2c-initiator.example.json"),
            SecretPart::CallbackKeys => include_str!("../../../infra/secrets/callback-keys.example.json"),
            SecretPart::Jwt => include_str!("../../../infra/secrets/jwt.example.json"),
        }
    }

    #[test]
    fn the_operators_example_secrets_are_accepted() {
        for part in SecretPart::ALL {
            let parsed = AppSecrets::parse_part(part, example(part))
                .unwrap_or_else(|e| panic!("infra/secrets/{part}.example.json parses as the functions parse it: {e}"));
            assert_eq!(parsed.parts(), &BTreeSet::from([part]));
            let keys: BTreeSet<String> =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(example(part))
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect();
            let fields: BTreeSet<String> = part.fields().iter().map(|f| (*f).to_owned()).collect();
            assert!(keys.is_subset(&fields), "{part}: only its own fields");
        }
        let b2c = AppSecrets::parse_part(SecretPart::B2cInitiator, example(SecretPart::B2cInitiator)).unwrap();
        assert!(b2c.b2c_initiator_password.is_some() && b2c.daraja_app().is_err());
        let jwt = AppSecrets::parse_part(SecretPart::Jwt, example(SecretPart::Jwt)).unwrap();
        assert!(jwt.jwt_hs256_secret.is_some() && jwt.callback_hmac_key.is_none());
    }

    #[test]
    fn a_part_holds_only_its_own_fields() {
        // The initiator's password pasted into the Daraja app's secret would be readable by
        // every function that reads that secret: refused.
        let mixed = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "b2c_initiator_password": "initiator-password",
        })
        .to_string();
        let err = AppSecrets::parse_part(SecretPart::DarajaApp, &mixed)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b2c-initiator") && !err.contains("initiator-password"),
            "{err}"
        );
        let typo = serde_json::json!({"jwt_hs256": "x".repeat(40)}).to_string();
        assert!(AppSecrets::parse_part(SecretPart::Jwt, &typo)
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
        // Required fields are the part's own: an empty callback-keys secret is refused ...
        assert!(AppSecrets::parse_part(SecretPart::CallbackKeys, "{}")
            .unwrap_err()
            .to_string()
            .contains("missing field `callback_hmac_key`"));
        // ... an empty B2C or JWT secret is not (no payouts; tokens signed by an IdP).
        assert!(AppSecrets::parse_part(SecretPart::B2cInitiator, "{}").is_ok());
        assert!(AppSecrets::parse_part(SecretPart::Jwt, "{}").is_ok());
        let short = serde_json::json!({"callback_hmac_key": "k".repeat(32), "limits_hmac_key": "short"}).to_string();
        assert!(AppSecrets::parse_part(SecretPart::CallbackKeys, &short).is_err());
    }

    #[test]
    fn a_merged_secret_yields_only_the_parts_a_function_loads() {
        let mut json: serde_json::Value = serde_json::from_str(&sample_json()).unwrap();
        json["b2c_initiator_password"] = "initiator-password".into();
        json["jwt_hs256_secret"] = "j".repeat(32).into();
        let json = json.to_string();
        let validation = AppSecrets::parse_merged(&json, &[SecretPart::CallbackKeys]).unwrap();
        assert!(validation.callback_hmac_key.is_some());
        assert!(validation.b2c_initiator_password.is_none() && validation.jwt_hs256_secret.is_none());
        assert_eq!(
            validation.daraja_app().unwrap_err(),
            SecretsError::NotLoaded {
                part: SecretPart::DarajaApp
            }
        );
        assert!(!format!("{validation:?}").contains("initiator-password"));
        // A loaded part still needs its required fields; unknown keys are refused.
        assert!(AppSecrets::parse_merged(r#"{"jwt_hs256_secret": null}"#, &[SecretPart::DarajaApp]).is_err());
        assert!(AppSecrets::parse_merged(r#"{"nope": "x"}"#, &[SecretPart::Jwt]).is_err());
    }

    #[tokio::test]
    async fn split_secrets_are_fetched_per_part_into_one_view() {
        let app = Arc::new(Counting(
            AtomicUsize::new(0),
            Some(example(SecretPart::DarajaApp).to_owned()),
        ));
        let keys = Arc::new(Counting(
            AtomicUsize::new(0),
            Some(serde_json::json!({"callback_hmac_key": "k".repeat(32)}).to_string()),
        ));
        let cache = SecretCache::split(
            vec![
                (SecretPart::DarajaApp, app.clone() as Arc<dyn SecretSource>),
                (SecretPart::CallbackKeys, keys.clone() as Arc<dyn SecretSource>),
            ],
            Duration::from_secs(60),
        )
        .with_b2c_shortcode(Some("600992".into()));
        let view = cache.get().await.unwrap();
        assert_eq!(
            view.parts(),
            &BTreeSet::from([SecretPart::DarajaApp, SecretPart::CallbackKeys])
        );
        assert_eq!(cache.parts(), *view.parts());
        assert!(view.api_credentials().is_ok() && view.callback_hmac_key.is_some());
        assert!(view.b2c_initiator_name.is_none() && view.jwt_hs256_secret.is_none());
        assert_eq!(view.b2c_shortcode.as_deref(), Some("600992"));
        cache.get().await.unwrap();
        assert_eq!((app.0.load(Ordering::SeqCst), keys.0.load(Ordering::SeqCst)), (1, 1));
        // One part that cannot be read fails the view (never half a view).
        let broken = SecretCache::split(
            vec![
                (SecretPart::DarajaApp, app as Arc<dyn SecretSource>),
                (
                    SecretPart::Jwt,
                    Arc::new(Counting(AtomicUsize::new(0), None)) as Arc<dyn SecretSource>,
                ),
            ],
            Duration::from_secs(60),
        );
        assert!(matches!(broken.get().await, Err(SecretsError::Unavailable(_))));
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
        let derived = AppSecrets::parse(&sample_json()).unwrap().limits_hmac_key().unwrap();
        assert_eq!(derived.expose().len(), 64);
        assert_ne!(derived.expose(), "k".repeat(32), "never the callback key itself");
        let other_callback_key = sample_json().replace(&"k".repeat(32), &"m".repeat(32));
        assert_ne!(
            AppSecrets::parse(&other_callback_key)
                .unwrap()
                .limits_hmac_key()
                .unwrap(),
            derived
        );

        let mut json: serde_json::Value = serde_json::from_str(&sample_json()).unwrap();
        json["limits_hmac_key"] = "l".repeat(32).into();
        let own = AppSecrets::parse(&json.to_string()).unwrap();
        assert_eq!(own.limits_hmac_key().unwrap().expose(), "l".repeat(32));
        // A function that does not load the callback-keys part has no limits key.
        let jwt_only = AppSecrets::parse_part(SecretPart::Jwt, "{}").unwrap();
        assert!(matches!(
            jwt_only.limits_hmac_key(),
            Err(SecretsError::NotLoaded {
                part: SecretPart::CallbackKeys
            })
        ));
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
