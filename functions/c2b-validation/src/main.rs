//! `POST /c2b/validation/{token}`: answers Daraja's C2B validation (accept, or `C2B00011`..`16`)
//! well within its ~8 s deadline. The shortcode's rules are cached in the warm function and at
//! most one GetItem reads the account's expected payment, under `C2B_VALIDATION_BUDGET_MS`; if our
//! own dependencies fail or are slow, the shortcode's default decision answers. Changes nothing.

use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::{aws, config, lambda, wiring};

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
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let handlers = build(&settings, &aws::sdk_config().await)?;
    settings.verify()?;
    // Every request needs the callback key: fetch it during init, not on the first payment.
    if let Some(validator) = &handlers.c2b_validation {
        validator.warm_up().await;
    }
    lambda::serve_routes(handlers).await
}

checkout::wiring_test!(FUNCTION, build);
