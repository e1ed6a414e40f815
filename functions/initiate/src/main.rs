//! `POST /v1/payments`: records the payment, then asks Daraja to prompt the customer.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::services::payments::PaymentsService;
use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "initiate";

struct App {
    service: PaymentsService,
    auth: Authenticator,
}

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<App, ConfigError> {
    let table = wiring::table(settings, sdk)?;
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
    let auth = Authenticator::new(settings.jwt()?, secrets);
    Ok(App { service, auth })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let app = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda::serve_http(move |request| {
        let app = app.clone();
        async move { api::payments::create(&app.service, &app.auth, request).await }
    })
    .await
}

checkout::wiring_test!(FUNCTION, build);
