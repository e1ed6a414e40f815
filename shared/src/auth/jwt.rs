//! JWT verification: HS256 with a shared secret, RS256/ES256 with a public key.
//!
//! Only algorithms that have a configured key are accepted, and each algorithm is tied to its
//! own key, so `alg: none` and algorithm confusion (an RS256 public key used as an HS256
//! secret) are refused. `exp` is required; `nbf`, `iss`, `aud` are checked when configured.
//!
//! Claims: `sub` (the acting user or service), optional `merchant` (the tenant it acts for;
//! `sub` when absent), `scope` (space-separated). Both identities are parsed as
//! [`ClientId`]s: a bad value is refused with its own reason, never defaulted.
//!
//! The operator scope ([`PLATFORM_OPERATOR`]) reaches every merchant, so it is only
//! honoured from the strongest key configured: when an identity provider's public key
//! (RS256/ES256) is configured next to a shared HS256 secret, an HS256 token carrying it is
//! refused. A shared secret is held by more parties (every API function, its operators, maybe
//! the integrator's backend); it may keep minting merchant tokens during a migration to the IdP,
//! never platform-wide ones.

use std::collections::{BTreeSet, HashMap};

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::scopes::PLATFORM_OPERATOR;
use super::Principal;
use crate::domain::ClientId;
use crate::secrets::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("token signature or algorithm is not accepted")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token lacks a required claim: {0}")]
    MissingClaim(&'static str),
    #[error("token subject is not a valid client id")]
    BadSubject,
    #[error("token merchant claim is not a valid client id")]
    BadMerchant,
    #[error("an HS256 token cannot carry platform:operator when an identity provider key is configured")]
    OperatorScopeNeedsAsymmetricKey,
}

impl AuthError {
    /// A stable, machine-readable reason (the problem's `reason` member).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Malformed => "malformed_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::BadSubject => "bad_subject",
            AuthError::BadMerchant => "bad_merchant",
            AuthError::OperatorScopeNeedsAsymmetricKey => "operator_scope_needs_asymmetric_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no JWT key configured: set jwt_hs256_secret in the secret or JWT_PUBLIC_KEY_PEM")]
    NoKey,
    #[error("JWT public key is not a valid {0} PEM key")]
    BadPublicKey(&'static str),
}

/// Non-secret JWT settings (from configuration).
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// PEM public key for RS256 (RSA) or ES256 (EC P-256).
    pub public_key_pem: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
}

pub struct JwtVerifier {
    keys: HashMap<Algorithm, DecodingKey>,
    settings: JwtSettings,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    /// Any JSON value (`null` included), so a non-string is refused as a bad merchant rather
    /// than read as absent or as a malformed token.
    #[serde(default, deserialize_with = "present")]
    merchant: Option<serde_json::Value>,
}

/// A claim that is there, whatever its value (serde reads `null` as `None` otherwise).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

impl JwtVerifier {
    pub fn new(hs256_secret: Option<&Secret>, settings: JwtSettings) -> Result<JwtVerifier, KeyError> {
        let mut keys = HashMap::new();
        if let Some(secret) = hs256_secret {
            keys.insert(Algorithm::HS256, DecodingKey::from_secret(secret.expose().as_bytes()));
        }
        if let Some(pem) = &settings.public_key_pem {
            if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                keys.insert(Algorithm::RS256, key);
            } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                keys.insert(Algorithm::ES256, key);
            } else {
                return Err(KeyError::BadPublicKey("RSA or EC"));
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        Ok(JwtVerifier { keys, settings })
    }

    /// Verifies the value of an `Authorization` header.
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        self.verify(token.trim())
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() || token.len() > 8192 {
            return Err(AuthError::Malformed);
        }
        // An unknown `alg` (including "none") fails to parse here.
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = self.keys.get(&header.alg).ok_or(AuthError::BadSignature)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway_seconds;
        // A configured issuer or audience must be present, not merely correct when present.
        let mut required = vec!["exp"];
        if self.settings.issuer.is_some() {
            required.push("iss");
        }
        if self.settings.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        match &self.settings.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.settings.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let data = decode::<Claims>(token, key, &validation).map_err(map_error)?;
        let sub = data.claims.sub.ok_or(AuthError::MissingClaim("sub"))?;
        let client = ClientId::parse(&sub).map_err(|_| AuthError::BadSubject)?;
        let merchant = match data.claims.merchant {
            None => client.clone(),
            Some(serde_json::Value::String(merchant)) => {
                ClientId::parse(&merchant).map_err(|_| AuthError::BadMerchant)?
            }
            Some(_) => return Err(AuthError::BadMerchant),
        };
        let scopes: BTreeSet<String> = data
            .claims
            .scope
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        if header.alg == Algorithm::HS256 && self.has_asymmetric_key() && scopes.contains(PLATFORM_OPERATOR) {
            return Err(AuthError::OperatorScopeNeedsAsymmetricKey);
        }
        Ok(Principal {
            client,
            merchant,
            scopes,
        })
    }

    /// Whether an identity provider's public key (RS256/ES256) is configured.
    fn has_asymmetric_key(&self) -> bool {
        self.keys.contains_key(&Algorithm::RS256) || self.keys.contains_key(&Algorithm::ES256)
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => AuthError::MissingClaim("exp"),
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => AuthError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::WrongAudience,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed,
    }
}

/// Mints HS256 tokens for the dev stack and tests. Never used by a deployed function.
pub fn mint_hs256(secret: &Secret, claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose().as_bytes());
    // Encoding a JSON object with an HMAC key cannot fail.
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn secret() -> Secret {
        Secret::new("a-test-secret-that-is-at-least-32-chars!!")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn verifier(settings: JwtSettings) -> JwtVerifier {
        JwtVerifier::new(Some(&secret()), settings).unwrap()
    }

    #[test]
    fn valid_token_yields_subject_and_scopes() {
        let token = mint_hs256(
            &secret(),
            &json!({"sub": "shop-1", "exp": now() + 60, "scope": "payments:write payments:read"}),
        );
        let p = verifier(JwtSettings::default())
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(p.client.as_str(), "shop-1");
        assert!(p.has_scope("payments:write") && p.has_scope("payments:read"));
        assert!(!p.has_scope("payments:read_all"));
    }

    #[test]
    fn refuses_missing_expired_future_and_claimless_tokens() {
        let v = verifier(JwtSettings::default());
        assert_eq!(v.verify_header(None), Err(AuthError::Missing));
        assert_eq!(v.verify_header(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(v.verify("not.a.jwt"), Err(AuthError::Malformed));
        let expired = mint_hs256(&secret(), &json!({"sub": "s", "exp": now() - 120}));
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));
        let future = mint_hs256(&secret(), &json!({"sub": "s", "exp": now() + 600, "nbf": now() + 300}));
        assert_eq!(v.verify(&future), Err(AuthError::NotYetValid));
        let no_exp = mint_hs256(&secret(), &json!({"sub": "s"}));
        assert_eq!(v.verify(&no_exp), Err(AuthError::MissingClaim("exp")));
        let no_sub = mint_hs256(&secret(), &json!({"exp": now() + 60}));
        assert_eq!(v.verify(&no_sub), Err(AuthError::MissingClaim("sub")));
        let other_key = mint_hs256(
            &Secret::new("another-secret-also-32-characters-long"),
            &json!({"sub": "s", "exp": now() + 60}),
        );
        assert_eq!(v.verify(&other_key), Err(AuthError::BadSignature));
    }

    #[test]
    fn checks_issuer_and_audience_when_configured() {
        let v = verifier(JwtSettings {
            issuer: Some("https://idp".into()),
            audience: Some("checkout".into()),
            ..Default::default()
        });
        let good = mint_hs256(
            &secret(),
            &json!({"sub": "s", "exp": now() + 60, "iss": "https://idp", "aud": "checkout"}),
        );
        assert!(v.verify(&good).is_ok());
        let wrong_iss = mint_hs256(
            &secret(),
            &json!({"sub": "s", "exp": now() + 60, "iss": "https://evil", "aud": "checkout"}),
        );
        assert_eq!(v.verify(&wrong_iss), Err(AuthError::WrongIssuer));
        let wrong_aud = mint_hs256(
            &secret(),
            &json!({"sub": "s", "exp": now() + 60, "iss": "https://idp", "aud": "other"}),
        );
        assert_eq!(v.verify(&wrong_aud), Err(AuthError::WrongAudience));
        // One claim missing at a time: which one jsonwebtoken reports first is not defined.
        let missing = mint_hs256(&secret(), &json!({"sub": "s", "exp": now() + 60, "aud": "checkout"}));
        assert_eq!(v.verify(&missing), Err(AuthError::WrongIssuer));
        let neither = mint_hs256(&secret(), &json!({"sub": "s", "exp": now() + 60}));
        assert!(matches!(
            v.verify(&neither),
            Err(AuthError::WrongIssuer | AuthError::WrongAudience)
        ));
        let missing_aud = mint_hs256(&secret(), &json!({"sub": "s", "exp": now() + 60, "iss": "https://idp"}));
        assert_eq!(v.verify(&missing_aud), Err(AuthError::WrongAudience));
    }

    #[test]
    fn refuses_alg_none() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "s", "exp": now() + 60}).to_string());
        let v = verifier(JwtSettings::default());
        assert!(v.verify(&format!("{header}.{claims}.")).is_err());
        assert!(v.verify(&format!("{header}.{claims}")).is_err());
    }

    #[test]
    fn refuses_algorithm_confusion() {
        // Only RS256 is configured: an HS256 token signed with the public key text must fail.
        let public_pem = include_str!("../../tests/fixtures/jwt/rs256-public.pem");
        let private_pem = include_str!("../../tests/fixtures/jwt/rs256-private.pem");
        let v = JwtVerifier::new(
            None,
            JwtSettings {
                public_key_pem: Some(public_pem.into()),
                ..Default::default()
            },
        )
        .unwrap();
        let forged = mint_hs256(&Secret::new(public_pem), &json!({"sub": "s", "exp": now() + 60}));
        assert_eq!(v.verify(&forged), Err(AuthError::BadSignature));
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        let genuine = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::RS256),
            &json!({"sub": "s", "exp": now() + 60, "scope": "payments:read"}),
            &key,
        )
        .unwrap();
        assert!(v.verify(&genuine).unwrap().has_scope("payments:read"));
    }

    #[test]
    fn es256_keys_work() {
        let public_pem = include_str!("../../tests/fixtures/jwt/es256-public.pem");
        let private_pem = include_str!("../../tests/fixtures/jwt/es256-private.pem");
        let v = JwtVerifier::new(
            None,
            JwtSettings {
                public_key_pem: Some(public_pem.into()),
                ..Default::default()
            },
        )
        .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::ES256),
            &json!({"sub": "s", "exp": now() + 60}),
            &key,
        )
        .unwrap();
        assert!(v.verify(&token).is_ok());
        // An HS256 token is refused when no shared secret is configured.
        assert_eq!(
            v.verify(&mint_hs256(&secret(), &json!({"sub": "s", "exp": now() + 60}))),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn merchant_claim_defaults_to_the_subject_and_is_parsed_like_it() {
        let v = verifier(JwtSettings::default());
        let own = mint_hs256(&secret(), &json!({"sub": "shop-1", "exp": now() + 60}));
        let p = v.verify(&own).unwrap();
        assert_eq!((p.client.as_str(), p.merchant.as_str()), ("shop-1", "shop-1"));
        let clerk = mint_hs256(
            &secret(),
            &json!({"sub": "alice@shop-1", "merchant": "shop-1", "exp": now() + 60}),
        );
        let p = v.verify(&clerk).unwrap();
        assert_eq!((p.client.as_str(), p.merchant.as_str()), ("alice@shop-1", "shop-1"));
        for bad in [
            json!(""),
            json!("shop#1"),
            json!("a b"),
            json!(42),
            json!(null),
            json!(["shop-1"]),
        ] {
            let token = mint_hs256(&secret(), &json!({"sub": "alice", "merchant": bad, "exp": now() + 60}));
            // `null` is "present and not a merchant", like any other non-string.
            assert_eq!(v.verify(&token), Err(AuthError::BadMerchant), "merchant {bad}");
        }
        assert_eq!(AuthError::BadMerchant.reason(), "bad_merchant");
    }

    fn rs256_token(claims: &serde_json::Value) -> String {
        let private_pem = include_str!("../../tests/fixtures/jwt/rs256-private.pem");
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    #[test]
    fn an_hs256_key_next_to_an_idp_key_cannot_mint_the_operator_scope() {
        let public_pem = include_str!("../../tests/fixtures/jwt/rs256-public.pem");
        let both = verifier(JwtSettings {
            public_key_pem: Some(public_pem.into()),
            ..Default::default()
        });
        let operator = json!({"sub": "ops", "exp": now() + 60, "scope": "payouts:approve platform:operator"});
        let forged = mint_hs256(&secret(), &operator);
        assert_eq!(both.verify(&forged), Err(AuthError::OperatorScopeNeedsAsymmetricKey));
        assert_eq!(
            AuthError::OperatorScopeNeedsAsymmetricKey.reason(),
            "operator_scope_needs_asymmetric_key"
        );
        // The shared secret still mints merchant-scoped tokens during a migration ...
        let merchant = mint_hs256(
            &secret(),
            &json!({"sub": "shop-1", "exp": now() + 60, "scope": "payouts:approve"}),
        );
        assert!(both.verify(&merchant).unwrap().has_scope("payouts:approve"));
        // ... and the identity provider's key grants the operator scope.
        let genuine = both.verify(&rs256_token(&operator)).unwrap();
        assert!(genuine.is_operator());
        // With only a shared secret configured, it is the strongest key there is.
        let hs_only = verifier(JwtSettings::default());
        assert!(hs_only.verify(&forged).unwrap().is_operator());
    }

    #[test]
    fn no_key_is_a_configuration_error() {
        assert_eq!(
            JwtVerifier::new(None, JwtSettings::default()).err(),
            Some(KeyError::NoKey)
        );
        let bad = JwtSettings {
            public_key_pem: Some("not a key".into()),
            ..Default::default()
        };
        assert!(matches!(
            JwtVerifier::new(None, bad).err(),
            Some(KeyError::BadPublicKey(_))
        ));
    }
}
