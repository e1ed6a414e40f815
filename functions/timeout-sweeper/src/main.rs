//! Runs every minute (EventBridge schedule): reconciles open payments past their grace period
//! with STK Query and times out the ones past their deadline. Returns the sweep's report.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use checkout::{aws, config, lambda, metrics, wiring};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry("timeout-sweeper");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let reconciler =
        Arc::new(wiring::reconciler(table, wiring::daraja_without_retries(&settings)?, secrets, wiring::clock(), settings.reconcile()?));
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
        let reconciler = reconciler.clone();
        async move {
            let report = reconciler.sweep().await;
            metrics::count("Sweeps", 1, &[]);
            Ok::<_, std::convert::Infallible>(serde_json::to_value(report).unwrap_or_default())
        }
    }))
    .await
}
