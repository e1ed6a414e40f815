//! C2B merchant and admin routes: `POST /v1/c2b/registrations` (`c2b:admin`),
//! `POST /v1/c2b/expected-payments` (`c2b:write`), `GET /v1/c2b/expected-payments/{id}`,
//! `GET /v1/c2b/payments/{id}` and `GET /v1/c2b/payments` (`c2b:read`). With `FEATURE_C2B=off`
//! every route answers 404 `feature_disabled`.

use checkout::api::auth::Authenticator;
use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{vars, ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::{lambda, wiring};

const FUNCTION: &str = "c2b-api";

/// The secrets it reads: the Daraja app (registering URLs), the callback keys (the URLs'
/// tokens), the JWT key (API tokens). `c2b-register` reads the same.
const SECRETS: &[SecretPart] = &[SecretPart::DarajaApp, SecretPart::CallbackKeys, SecretPart::Jwt];

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    // Every call that changes something is recorded in the audit trail.
    let audit = wiring::audit_log(&table);
    let secrets = wiring::secrets(settings, Some(sdk), SECRETS)?;
    let c2b = wiring::c2b_api(
        table,
        wiring::daraja(settings)?,
        secrets.clone(),
        wiring::clock(),
        settings.c2b_registration()?,
    );
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let enabled = settings.feature(vars::FEATURE_C2B)?;
    Ok(Handlers {
        audit: Some(audit),
        auth: Some(auth),
        c2b: Some(c2b),
        disabled_feature: (!enabled).then_some("c2b"),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
