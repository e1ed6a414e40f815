//! Registering a shortcode's C2B validation and confirmation URLs with Daraja, and storing its
//! rules.
//!
//! The URLs carry a per-shortcode token, `<shortcode>[-<generation>].<hex HMAC>`: unguessable, and
//! spelled in an alphabet that cannot contain a word Daraja refuses. They are checked against
//! Safaricom's URL rules before Daraja is called. The configuration is stored first (write-ahead),
//! so validation and confirmation find it as soon as Daraja may call; Daraja's answer is then
//! recorded on it. Registering again replaces the rules; "URLs already registered" (production
//! registers once) is success when the URLs are the ones Daraja has.
//!
//! The tokens are never shown in full after they are made: the stored configuration and every
//! answer hold only their prefix. Registering with `rotate_token` makes new URLs (the next
//! generation, see [`crate::domain::c2b_path_tokens`]); the previous ones keep working for the
//! grace period once Daraja has taken the new ones, and with no end while it has not.
//!
//! The verification setting (how confirmations are confirmed before they move money, see
//! [`crate::domain::c2b_verification`]) is recorded with who set it and when; trusting
//! confirmations is logged as a warning and counted (`C2bTrustedShortcodes`).

use std::sync::Arc;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::c2b::C2bUrlError;
use crate::daraja::{check_c2b_url, C2bApiVersion, C2bRegisterRequest, C2bResponseType, Daraja, DarajaError};
use crate::domain::c2b::{
    C2bRules, C2bVersion, DarajaRegistration, DefaultDecision, RegistrationStatus, ResponseType, Shortcode,
    ShortcodeConfig,
};
use crate::domain::c2b_path_tokens::{PathTokens, RotationInProgress, TokenId};
use crate::domain::c2b_verification::{VerificationMethod, VerificationSetting};
use crate::domain::ClientId;
use crate::metrics;
use crate::repo::c2b as repo;
use crate::secrets::AppSecrets;
use crate::secrets::SecretCache;
use crate::services::store_failure;
use crate::store::{StoreError, Table};

/// Why a registration did not complete: the error contract of [`C2bRegistrar::register`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// `rotate_token` while the previous rotation's generation is still accepted: nothing was
    /// changed. Retryable after `valid_until` (or, with none, once registering again without
    /// rotating has had Daraja take the last rotation's URLs).
    #[error("a token rotation is in progress (generation {} retiring)", .0.retiring)]
    RotationInProgress(RotationInProgress),
    /// Safaricom would refuse the `which` (validation or confirmation) URL, built on the
    /// deployment's public base URL (`base`: the URL without its token). Nothing was changed.
    /// Not retryable until the deployment's base URL changes.
    #[error("Safaricom would refuse the {which} URL {base}/<token>: {reason}")]
    UrlRefused {
        which: &'static str,
        base: String,
        reason: C2bUrlError,
    },
    /// Other registrations of the shortcode kept winning the write: retryable.
    #[error("this shortcode is being registered by another request; retry")]
    Concurrent,
    /// Daraja refused the registration (`code`, `message`). The rules are stored, the
    /// registration recorded as failed; registering again is safe.
    #[error("Daraja refused the registration: {message}")]
    DarajaRejected {
        shortcode: Shortcode,
        code: String,
        message: String,
    },
    /// The registration could not be sent as asked (the Daraja client refused to build it).
    /// Not retryable as is.
    #[error("{detail}")]
    InvalidRequest { detail: String },
    /// Daraja was unavailable, rate limited or answered unreadably. The rules are stored, the
    /// registration recorded as failed; retryable.
    #[error("Daraja is unavailable")]
    DarajaUnavailable { shortcode: Shortcode },
    /// A dependency (the store, the secrets) is unavailable: retryable.
    #[error("a dependency is unavailable")]
    Unavailable,
    /// A bug or a corrupt item: not retryable as is.
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for RegistrationError {
    fn from(error: StoreError) -> RegistrationError {
        if store_failure::is_retryable(&error) {
            RegistrationError::Unavailable
        } else {
            RegistrationError::Internal
        }
    }
}

#[derive(Debug, Clone)]
pub struct C2bRegistrationConfig {
    /// Public base URL of the API; the C2B URLs are built on it.
    pub public_base_url: String,
    /// Production: Safaricom only calls HTTPS URLs. Off in the dev stack (`C2B_ALLOW_HTTP=true`).
    pub require_https: bool,
}

/// What an admin asks for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRequest {
    pub shortcode: Shortcode,
    pub owner: ClientId,
    pub api_version: C2bVersion,
    pub response_type: ResponseType,
    pub default_decision: DefaultDecision,
    pub rules: C2bRules,
    pub verification: VerificationMethod,
    /// Make new URLs (the next token generation).
    pub rotate_token: bool,
    /// Who asks (recorded with a change of the verification setting).
    pub by: ClientId,
}

/// The validation and confirmation URLs of a shortcode's token generation.
pub fn c2b_urls(public_base_url: &str, tokens: &CallbackTokens, id: &TokenId) -> (String, String) {
    let base = public_base_url.trim_end_matches('/');
    let validation = tokens.hex_token_for(TokenPurpose::C2bValidation, &id.as_id());
    let confirmation = tokens.hex_token_for(TokenPurpose::C2bConfirmation, &id.as_id());
    (
        format!("{base}/c2b/validation/{validation}"),
        format!("{base}/c2b/confirmation/{confirmation}"),
    )
}

/// A C2B URL with its token cut to a prefix (`.../c2b/confirmation/600984-1.3fa91c2e…`): enough to
/// tell generations apart, useless to forge a confirmation with.
pub fn masked_url(url: &str) -> String {
    match url.rsplit_once('.') {
        Some((head, mac)) if mac.len() > 8 && !head.ends_with('/') => format!("{head}.{}…", &mac[..8]),
        _ => url.to_owned(),
    }
}

/// Whether confirmations of a shortcode with `method` can be verified with these secrets.
pub fn verification_available(method: VerificationMethod, secrets: &AppSecrets) -> Result<(), &'static str> {
    match method {
        VerificationMethod::TrustConfirmation => Ok(()),
        VerificationMethod::TransactionStatus
            if secrets.c2b_initiator_name.is_some() && secrets.c2b_initiator_password.is_some() =>
        {
            Ok(())
        }
        VerificationMethod::TransactionStatus => Err(
            "no C2B initiator is configured (c2b_initiator_name / c2b_initiator_password in the secret): confirmations stay unverified and move no money",
        ),
    }
}

pub struct C2bRegistrar {
    pub table: Arc<dyn Table>,
    pub daraja: Arc<dyn Daraja>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
    pub config: C2bRegistrationConfig,
}

impl C2bRegistrar {
    /// Stores the configuration, registers the URLs with Daraja, records Daraja's answer.
    pub async fn register(&self, request: RegistrationRequest) -> Result<ShortcodeConfig, RegistrationError> {
        let secrets = self.secrets.get().await.map_err(|error| {
            tracing::error!(%error, "secrets unavailable");
            RegistrationError::Unavailable
        })?;
        let credentials = secrets.api_credentials().map_err(|error| {
            tracing::error!(%error, "secrets incomplete");
            RegistrationError::Unavailable
        })?;
        let tokens = CallbackTokens::from_secrets(&secrets);
        let (stored, validation_url, confirmation_url) = self.store_pending(&request, &tokens).await?;
        let call = C2bRegisterRequest {
            credentials: &credentials,
            version: match request.api_version {
                C2bVersion::V1 => C2bApiVersion::V1,
                C2bVersion::V2 => C2bApiVersion::V2,
            },
            short_code: request.shortcode.as_str(),
            response_type: match request.response_type {
                ResponseType::Completed => C2bResponseType::Completed,
                ResponseType::Cancelled => C2bResponseType::Cancelled,
            },
            confirmation_url: &confirmation_url,
            validation_url: &validation_url,
        };
        let result = self.daraja.register_c2b_urls(&call).await;
        let now = self.clock.now();
        let (registration, failure) = match result {
            Ok(ok) => (
                DarajaRegistration {
                    status: RegistrationStatus::Registered,
                    response_code: ok.response_code,
                    response_description: ok.response_description,
                    originator_conversation_id: ok.originator_conversation_id,
                    at: now,
                },
                None,
            ),
            Err(error) if error.is_urls_already_registered() => (
                DarajaRegistration {
                    status: RegistrationStatus::AlreadyRegistered,
                    response_code: error.code().map(str::to_owned),
                    response_description: Some("Urls are already registered".into()),
                    originator_conversation_id: None,
                    at: now,
                },
                None,
            ),
            Err(error) => {
                tracing::warn!(%error, shortcode = %request.shortcode, "C2B registration failed");
                let registration = DarajaRegistration {
                    status: RegistrationStatus::Failed,
                    response_code: error.code().map(str::to_owned),
                    response_description: Some(error.to_string()),
                    originator_conversation_id: None,
                    at: now,
                };
                (registration, Some(error))
            }
        };
        metrics::count("C2bRegistrations", 1, &[("Status", registration.status.as_str())]);
        let mut done = stored.clone();
        // Daraja took these URLs: a generation being retired ends after its grace period. If it
        // kept the old ones ("already registered"), the old generation stays valid with no end.
        if registration.status == RegistrationStatus::Registered {
            done.tokens = done.tokens.new_urls_registered(now);
        }
        done.registration = registration;
        done.updated_at = now;
        let done = match self.table.write(vec![repo::put_config(&done)]).await {
            Ok(()) => ShortcodeConfig {
                version: done.version + 1,
                ..done
            },
            Err(error) => {
                // The rules are stored; only Daraja's answer is not. Registering again is safe.
                tracing::warn!(%error, shortcode = %request.shortcode, "could not record Daraja's registration answer");
                done
            }
        };
        match failure {
            None => {
                tracing::info!(shortcode = %request.shortcode, status = done.registration.status.as_str(), generation = done.tokens.generation, "C2B URLs registered");
                Ok(done)
            }
            Some(error) => Err(daraja_error(&request.shortcode, error)),
        }
    }

    /// Whether `config`'s confirmations can be verified with the deployment's secrets.
    pub async fn verification_availability(&self, config: &ShortcodeConfig) -> Result<(), &'static str> {
        match self.secrets.get().await {
            Ok(secrets) => verification_available(config.verification.method, &secrets),
            Err(_) => Err("the secret could not be read"),
        }
    }

    /// Writes the configuration with status `pending`, over whatever version is stored; returns
    /// it with the full URLs of its token generation (never stored: only their prefix is).
    async fn store_pending(
        &self,
        request: &RegistrationRequest,
        tokens: &CallbackTokens,
    ) -> Result<(ShortcodeConfig, String, String), RegistrationError> {
        for _ in 0..3 {
            let now = self.clock.now();
            let existing = repo::get_config(self.table.as_ref(), &request.shortcode).await?;
            let current = existing.as_ref().map(|e| e.tokens.clone()).unwrap_or_default();
            let path_tokens: PathTokens = if request.rotate_token {
                current.rotated(now).map_err(RegistrationError::RotationInProgress)?
            } else {
                current
            };
            let (validation_url, confirmation_url) = c2b_urls(
                &self.config.public_base_url,
                tokens,
                &TokenId::new(request.shortcode.clone(), path_tokens.generation),
            );
            for (which, url) in [("validation", &validation_url), ("confirmation", &confirmation_url)] {
                check_c2b_url(url, self.config.require_https).map_err(|reason| RegistrationError::UrlRefused {
                    which,
                    // Name the base URL and path, never the token.
                    base: url.rsplit_once('/').map_or("", |(head, _)| head).to_owned(),
                    reason,
                })?;
            }
            let verification = match existing.as_ref().map(|e| &e.verification) {
                Some(setting) if setting.method == request.verification => setting.clone(),
                _ => VerificationSetting {
                    method: request.verification,
                    set_by: Some(request.by.clone()),
                    set_at: Some(now),
                },
            };
            if verification.method == VerificationMethod::TrustConfirmation {
                metrics::count("C2bTrustedShortcodes", 1, &[]);
                tracing::warn!(shortcode = %request.shortcode, set_by = ?verification.set_by, set_at = ?verification.set_at, "C2B confirmations of this shortcode are trusted without verification (opt-in)");
            }
            let config = ShortcodeConfig {
                shortcode: request.shortcode.clone(),
                owner: request.owner.clone(),
                api_version: request.api_version,
                response_type: request.response_type,
                default_decision: request.default_decision,
                rules: request.rules.clone(),
                validation_url: masked_url(&validation_url),
                confirmation_url: masked_url(&confirmation_url),
                registration: DarajaRegistration {
                    status: RegistrationStatus::Pending,
                    response_code: None,
                    response_description: None,
                    originator_conversation_id: None,
                    at: now,
                },
                verification,
                tokens: path_tokens,
                created_at: existing.as_ref().map_or(now, |e| e.created_at),
                updated_at: now,
                version: existing.as_ref().map_or(0, |e| e.version),
            };
            match self.table.write(vec![repo::put_config(&config)]).await {
                Ok(()) => {
                    let stored = ShortcodeConfig {
                        version: config.version + 1,
                        ..config
                    };
                    return Ok((stored, validation_url, confirmation_url));
                }
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(RegistrationError::Concurrent)
    }
}

fn daraja_error(shortcode: &Shortcode, error: DarajaError) -> RegistrationError {
    let shortcode = shortcode.clone();
    match error {
        DarajaError::Rejected { code, message, .. } | DarajaError::Auth { code, message } => {
            RegistrationError::DarajaRejected {
                shortcode,
                code,
                message,
            }
        }
        DarajaError::InvalidRequest { detail } => RegistrationError::InvalidRequest { detail },
        DarajaError::RateLimited { .. }
        | DarajaError::Unavailable { .. }
        | DarajaError::OutcomeUnknown { .. }
        | DarajaError::Protocol { .. } => RegistrationError::DarajaUnavailable { shortcode },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daraja::c2b::FORBIDDEN_URL_WORDS;
    use crate::secrets::Secret;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the key and shortcode, the URLs we register pass Safaricom's rules (a base64
        /// MAC would sometimes spell `exe`, `cmd`, `sql`...; hex never does).
        #[test]
        fn every_generated_c2b_url_passes_safaricoms_rules(key in "[ -~]{32,64}", shortcode in "[0-9]{5,7}", generation in 0u32..1_000_000) {
            let tokens = CallbackTokens::new(Secret::new(key));
            let shortcode = Shortcode::parse(&shortcode).unwrap();
            let (validation, confirmation) = c2b_urls("https://pay.example.co.ke/", &tokens, &TokenId::new(shortcode.clone(), generation));
            prop_assert!(validation.starts_with("https://pay.example.co.ke/c2b/validation/"));
            prop_assert!(confirmation.starts_with("https://pay.example.co.ke/c2b/confirmation/"));
            for url in [&validation, &confirmation] {
                prop_assert_eq!(check_c2b_url(url, true), Ok(()), "{}", url);
            }
            let token = validation.rsplit('/').next().unwrap();
            let id = TokenId::parse(tokens.verify_hex(TokenPurpose::C2bValidation, token).unwrap()).unwrap();
            prop_assert_eq!((id.shortcode, id.generation), (shortcode, generation));
            // What is shown of it cannot be used.
            let shown = masked_url(&confirmation);
            prop_assert!(shown.len() < confirmation.len());
            let shown_token = shown.rsplit('/').next().unwrap();
            prop_assert_eq!(tokens.verify_hex(TokenPurpose::C2bConfirmation, shown_token), None);
        }
    }

    #[test]
    fn hex_cannot_spell_a_forbidden_word_but_base64_can() {
        let hex_alphabet = "0123456789abcdef";
        for word in FORBIDDEN_URL_WORDS {
            assert!(
                word.chars().any(|c| !hex_alphabet.contains(c)),
                "{word} is spellable in hex"
            );
        }
        // Search a few keys for a base64 token that Daraja would refuse: the reason tokens are hex.
        let refused = (0..2000).any(|i| {
            let tokens = CallbackTokens::new(Secret::new(format!("key-{i:0>32}")));
            let token = tokens.token_for(TokenPurpose::C2bValidation, "600984");
            check_c2b_url(&format!("https://pay.example.co.ke/c2b/validation/{token}"), true).is_err()
        });
        assert!(refused, "base64 tokens do hit forbidden words");
    }

    #[test]
    fn paths_and_the_default_aws_url() {
        let tokens = CallbackTokens::new(Secret::new("k".repeat(32)));
        let shortcode = TokenId::new(Shortcode::parse("600984").unwrap(), 0);
        let (v, c) = c2b_urls("http://127.0.0.1:3000", &tokens, &shortcode);
        assert_eq!(check_c2b_url(&v, false), Ok(()));
        assert_eq!(check_c2b_url(&c, false), Ok(()));
        assert!(check_c2b_url(&v, true).is_err(), "plain HTTP only where allowed");
        // API Gateway's default host says "execute-api": Safaricom refuses it.
        let (v, _) = c2b_urls(
            "https://abc123.execute-api.eu-west-1.amazonaws.com",
            &tokens,
            &shortcode,
        );
        assert!(check_c2b_url(&v, true).is_err());
    }
}
