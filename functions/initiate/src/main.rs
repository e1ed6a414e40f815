//! `POST /v1/payments`: records the payment, then asks Daraja to prompt the customer. Also
//! hosted checkout, whose attempts are payments: the session API (`/v1/checkout/sessions`) and
//! the customer's page (`/pay/...`).

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::api::checkout::client_limits::PublicLimits;
use checkout::api::checkout::CheckoutPages;
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
    let clock = wiring::clock();
    let daraja = wiring::daraja(settings)?;
    let admission = wiring::limits(table.clone(), settings.limits()?);
    let payments = || {
        let mut service = wiring::payments_service(
            table.clone(),
            daraja.clone(),
            secrets.clone(),
            clock.clone(),
            settings.payments()?,
        );
        service.admission = Some(admission.clone());
        Ok::<_, ConfigError>(service)
    };
    // Hosted checkout: the session API and the page, whose attempts are payments like any other.
    let checkout = Arc::new(wiring::checkout_service(
        table.clone(),
        clock.clone(),
        settings.checkout()?,
    ));
    Ok(Handlers {
        audit: Some(audit),
        auth: Some(Authenticator::new(settings.jwt()?, secrets.clone())),
        payments: Some(payments()?),
        checkout: Some(checkout.clone()),
        // The page listens on the live channel (the WebSocket API) while it waits, and polls
        // when it cannot.
        checkout_pages: Some(Arc::new(CheckoutPages {
            service: checkout,
            payments: Arc::new(payments()?),
            limits: PublicLimits::default(),
            live: settings.checkout_live()?,
        })),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
