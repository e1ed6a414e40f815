//! Consumes the callback queue: parses, correlates and applies each callback, reporting partial
//! batch failures so only failed messages come back (and reach the DLQ after a few receives).

use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::services::callback_processor::CallbackProcessor;
use checkout::{lambda, wiring};

const FUNCTION: &str = "callback-processor";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<CallbackProcessor, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys])?;
    Ok(wiring::callback_processor(table, secrets, wiring::clock()))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::run_sqs_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
