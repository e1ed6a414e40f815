//! OAuth client-credentials tokens and the per-product bearer check.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Product;
use crate::errors::ApiError;
use crate::ids;
use crate::state::SimState;
use crate::sync::{read, write};

struct TokenInfo {
    consumer_key: String,
    expires: Instant,
}

#[derive(Default)]
pub struct TokenStore {
    tokens: RwLock<HashMap<String, TokenInfo>>,
}

impl TokenStore {
    fn issue(&self, token: String, consumer_key: &str, lifetime: Duration) {
        let now = Instant::now();
        let mut g = write(&self.tokens);
        if g.len() > 10_000 {
            g.retain(|_, t| t.expires > now);
        }
        g.insert(
            token,
            TokenInfo {
                consumer_key: consumer_key.to_string(),
                expires: now + lifetime,
            },
        );
    }

    /// The consumer key owning a live token.
    fn owner(&self, token: &str) -> Option<String> {
        let g = read(&self.tokens);
        g.get(token)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.consumer_key.clone())
    }

    pub fn revoke_all(&self) -> usize {
        let mut g = write(&self.tokens);
        let n = g.len();
        g.clear();
        n
    }
}

/// `GET /oauth/v1/generate?grant_type=client_credentials`.
pub async fn generate(State(state): State<Arc<SimState>>, headers: HeaderMap, uri: Uri) -> Response {
    match issue(&state, &headers, &uri) {
        Ok(r) => r,
        Err(e) => state.error_response(e),
    }
}

fn issue(state: &SimState, headers: &HeaderMap, uri: &Uri) -> Result<Response, ApiError> {
    let bad_auth = || ApiError::new(StatusCode::BAD_REQUEST, "400.008.01", "Invalid Authentication passed");
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad_auth)?;
    let (scheme, encoded) = auth.trim().split_once(' ').ok_or_else(bad_auth)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad_auth());
    }
    let grant_ok = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "grant_type=client_credentials");
    if !grant_ok {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "400.008.02",
            "Invalid grant type passed",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad_auth)?;
    let (key, secret) = decoded.split_once(':').ok_or_else(bad_auth)?;
    let cfg = state.config();
    let app = cfg
        .apps
        .iter()
        .find(|a| a.consumer_key == key && a.consumer_secret == secret)
        // Wrong key/secret: Daraja answers 400 with an empty body.
        .ok_or(ApiError::Empty(StatusCode::BAD_REQUEST))?;
    let token = state.with_rng(ids::access_token);
    state.tokens.issue(
        token.clone(),
        &app.consumer_key,
        Duration::from_secs(cfg.token_lifetime_secs),
    );
    Ok(axum::Json(json!({
        "access_token": token,
        "expires_in": cfg.token_lifetime_secs.to_string(),
    }))
    .into_response())
}

/// The invalid-token answer differs per product.
pub fn invalid_token(product: Product) -> ApiError {
    match product {
        Product::Stk | Product::Reversal => ApiError::new(StatusCode::NOT_FOUND, "404.001.03", "Invalid Access Token"),
        Product::C2b | Product::TransactionStatus => {
            ApiError::new(StatusCode::BAD_REQUEST, "400.003.01", "Invalid Access Token")
        }
        Product::B2c | Product::AccountBalance => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "401.002.01",
            "Error Occurred - Invalid Access Token",
        ),
    }
}

/// Checks `Authorization: Bearer <token>` for a live token of an app with `product` enabled.
pub fn authorize(state: &SimState, headers: &HeaderMap, product: Product) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, t) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| t.trim().to_string())
        })
        .ok_or_else(|| invalid_token(product))?;
    let key = state.tokens.owner(&token).ok_or_else(|| invalid_token(product))?;
    let cfg = state.config();
    let enabled = cfg
        .apps
        .iter()
        .find(|a| a.consumer_key == key)
        .map(|a| a.products.contains(&product))
        .ok_or_else(|| invalid_token(product))?;
    if enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "401.003.01",
            "Error Occurred - Invalid Access Token - no apiproduct match found",
        ))
    }
}
