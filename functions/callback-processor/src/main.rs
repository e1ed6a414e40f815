//! Consumes the callback queue: parses, correlates and applies each callback, reporting partial
//! batch failures so only failed messages come back (and reach the DLQ after a few receives).

use std::sync::Arc;

use checkout::{aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry("callback-processor");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let processor = wiring::callback_processor(table, secrets, wiring::clock());
    lambda::serve_sqs(Arc::new(processor)).await
}
