//! Turns a request's bearer token into a [`Principal`], with a verifier built once per secret
//! version (HS256 key from the secret, public key from configuration).

use std::sync::Arc;

use tokio::sync::RwLock;

use super::http::ApiRequest;
use super::problem::ApiError;
use crate::auth::{JwtSettings, JwtVerifier, Principal};
use crate::secrets::{AppSecrets, SecretCache};

pub struct Authenticator {
    settings: JwtSettings,
    secrets: Arc<SecretCache>,
    verifier: RwLock<Option<(Arc<AppSecrets>, Arc<JwtVerifier>)>>,
}

impl Authenticator {
    pub fn new(settings: JwtSettings, secrets: Arc<SecretCache>) -> Authenticator {
        Authenticator {
            settings,
            secrets,
            verifier: RwLock::new(None),
        }
    }

    async fn verifier(&self) -> Result<Arc<JwtVerifier>, ApiError> {
        let secrets = self.secrets.get().await.map_err(|error| {
            tracing::error!(%error, "secrets unavailable for authentication");
            ApiError::Unavailable
        })?;
        if let Some((for_secrets, verifier)) = self.verifier.read().await.as_ref() {
            if Arc::ptr_eq(for_secrets, &secrets) {
                return Ok(verifier.clone());
            }
        }
        let verifier = JwtVerifier::new(secrets.jwt_hs256_secret.as_ref(), self.settings.clone()).map_err(|error| {
            tracing::error!(%error, "JWT verifier misconfigured");
            ApiError::Internal
        })?;
        let verifier = Arc::new(verifier);
        *self.verifier.write().await = Some((secrets, verifier.clone()));
        Ok(verifier)
    }

    /// The caller, who must hold `scope`: 401 without a valid token, 403 without the scope.
    pub async fn require(&self, request: &ApiRequest, scope: &'static str) -> Result<Principal, ApiError> {
        let principal = self.authenticate(request).await?;
        if principal.has_scope(scope) {
            Ok(principal)
        } else {
            Err(ApiError::Forbidden { scope })
        }
    }

    /// The caller, who must hold one of `scopes`.
    pub async fn require_any(&self, request: &ApiRequest, scopes: &[&'static str]) -> Result<Principal, ApiError> {
        let principal = self.authenticate(request).await?;
        if scopes.iter().any(|s| principal.has_scope(s)) {
            Ok(principal)
        } else {
            Err(ApiError::Forbidden {
                scope: scopes.first().copied().unwrap_or(""),
            })
        }
    }

    pub async fn authenticate(&self, request: &ApiRequest) -> Result<Principal, ApiError> {
        let verifier = self.verifier().await?;
        verifier
            .verify_header(request.header("authorization"))
            .map_err(ApiError::Unauthenticated)
    }
}
