//! `POST /c2b/validation/{token}`: answers Daraja's C2B validation (accept, or `C2B00011`..`16`)
//! well within its ~8 s deadline. The shortcode's rules are cached in the warm function and at
//! most one GetItem reads the account's expected payment, under `C2B_VALIDATION_BUDGET_MS`; if our
//! own dependencies fail or are slow, the shortcode's default decision answers. Changes nothing.

use std::sync::Arc;

use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::services::c2b_validation::C2bValidator;
use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "c2b-validation";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<C2bValidator, ConfigError> {
    Ok(wiring::c2b_validator(
        wiring::table(settings, sdk)?,
        wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys])?,
        wiring::clock(),
        settings.c2b_validation()?,
        settings.callback_sources()?,
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let validator = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    // Every request needs the callback key: fetch it during init, not on the first payment.
    validator.warm_up().await;
    lambda::serve_http(move |request| {
        let validator = validator.clone();
        async move { api::c2b::validation(&validator, request).await }
    })
    .await
}

checkout::wiring_test!(FUNCTION, build);
