//! `/v1/webhook-endpoints` (create, list, get, update, delete, rotate the signing secret),
//! `GET /v1/events/{id}/deliveries` and `POST /v1/events/{id}/redeliver`: a merchant's webhook
//! endpoints and the deliveries of its events. Redelivery makes its first attempt at once, so
//! this function sends webhooks too (public `https` targets only).

use checkout::api::auth::Authenticator;
use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::webhooks::service::WebhookEndpoints;
use checkout::webhooks::target::TargetPolicy;
use checkout::{lambda, wiring};

const FUNCTION: &str = "webhooks-api";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    // Every call that changes something is recorded in the audit trail.
    let audit = wiring::audit_log(&table);
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys, SecretPart::Jwt])?;
    let policy = TargetPolicy::production();
    let dispatcher = wiring::webhook_dispatcher(table, secrets.clone(), wiring::clock(), policy)?;
    Ok(Handlers {
        audit: Some(audit),
        auth: Some(Authenticator::new(settings.jwt()?, secrets)),
        webhooks: Some(WebhookEndpoints { dispatcher, policy }),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
