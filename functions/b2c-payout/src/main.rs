//! Consumes the payout queue: submits each `pending` payout to Daraja's B2C v3 API with the
//! payout id as OriginatorConversationID (a retry is refused as a duplicate, never paid twice),
//! reporting partial batch failures so only payouts to retry come back (and reach the DLQ after
//! a few receives; the sweeper re-enqueues any payout still pending).

use std::sync::Arc;

use checkout::{aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry("b2c-payout");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let worker = wiring::payout_worker(
        wiring::table(&settings, &sdk)?,
        wiring::daraja(&settings)?,
        wiring::secrets(&settings, Some(&sdk))?,
        wiring::security_credentials(&settings)?,
        wiring::clock(),
        settings.payout_worker()?,
    );
    lambda::serve_sqs(Arc::new(worker)).await
}
