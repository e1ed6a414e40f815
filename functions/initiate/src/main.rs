//! `POST /v1/payments`: records the payment, then asks Daraja to prompt the customer.

use checkout::api::auth::Authenticator;
use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::{lambda, wiring};

const FUNCTION: &str = "initiate";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    // Every call that changes something is recorded in the audit trail.
    let audit = wiring::audit_log(&table);
    let secrets = wiring::secrets(
        settings,
        Some(sdk),
        &[SecretPart::DarajaApp, SecretPart::CallbackKeys, SecretPart::Jwt],
    )?;
    let mut service = wiring::payments_service(
        table.clone(),
        wiring::daraja(settings)?,
        secrets.clone(),
        wiring::clock(),
        settings.payments()?,
    );
    service.admission = Some(wiring::limits(table, settings.limits()?));
    Ok(Handlers {
        audit: Some(audit),
        auth: Some(Authenticator::new(settings.jwt()?, secrets)),
        payments: Some(service),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
