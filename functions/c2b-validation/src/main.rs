//! `POST /c2b/validation/{token}`: answers Daraja's C2B validation (accept, or `C2B00011`..`16`)
//! well within its ~8 s deadline. The shortcode's rules are cached in the warm function and at
//! most one GetItem reads the account's expected payment, under `C2B_VALIDATION_BUDGET_MS`; if our
//! own dependencies fail or are slow, the shortcode's default decision answers. Changes nothing.

use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::{lambda, wiring};

const FUNCTION: &str = "c2b-validation";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let validator = wiring::c2b_validator(
        wiring::table(settings, sdk)?,
        wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys])?,
        wiring::clock(),
        settings.c2b_validation()?,
        settings.callback_sources()?,
    );
    Ok(Handlers {
        c2b_validation: Some(validator),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
