//! Consumes the payout queue: submits each `pending` payout to Daraja's B2C v3 API with the
//! payout id as OriginatorConversationID (a retry is refused as a duplicate, never paid twice),
//! reporting partial batch failures so only payouts to retry come back (and reach the DLQ after
//! a few receives; the sweeper re-enqueues any payout still pending).

use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::secrets::SecretPart;
use checkout::services::payouts::worker::PayoutWorker;
use checkout::{lambda, wiring};

const FUNCTION: &str = "b2c-payout";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<PayoutWorker, ConfigError> {
    Ok(wiring::payout_worker(
        wiring::table(settings, sdk)?,
        wiring::daraja(settings)?,
        wiring::secrets(
            settings,
            Some(sdk),
            &[
                SecretPart::DarajaApp,
                SecretPart::B2cInitiator,
                SecretPart::CallbackKeys,
            ],
        )?,
        wiring::security_credentials(settings)?,
        wiring::clock(),
        settings.payout_worker()?,
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::run_sqs_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
