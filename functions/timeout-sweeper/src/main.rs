//! Runs every minute (EventBridge schedule): reconciles open payments past their grace period
//! with STK Query and times out the ones past their deadline; then, when `PAYOUT_QUEUE_URL` is
//! set, sweeps open payouts (re-enqueues lost jobs, asks Transaction Status about `sent`-too-long
//! and `unknown` ones). Returns both sweeps' reports.

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
    let daraja = wiring::daraja_without_retries(&settings)?;
    let payout_reconciler = match settings.optional(config::vars::PAYOUT_QUEUE_URL) {
        Some(_) => Some(Arc::new(wiring::payout_reconciler(
            table.clone(),
            daraja.clone(),
            secrets.clone(),
            wiring::security_credentials(&settings)?,
            wiring::payout_queue(&settings, &sdk)?,
            wiring::clock(),
            settings.payout_reconcile()?,
            settings.payments_base_url()?,
        ))),
        None => None,
    };
    let reconciler = Arc::new(wiring::reconciler(
        table,
        daraja,
        secrets,
        wiring::clock(),
        settings.reconcile()?,
    ));
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let reconciler = reconciler.clone();
            let payout_reconciler = payout_reconciler.clone();
            async move {
                // Side by side, so both fit the function's timeout (each has its own time budget).
                let payout_sweep = async {
                    match &payout_reconciler {
                        Some(payout_reconciler) => {
                            serde_json::to_value(payout_reconciler.sweep().await).unwrap_or_default()
                        }
                        None => serde_json::Value::Null,
                    }
                };
                let (report, payouts) = tokio::join!(reconciler.sweep(), payout_sweep);
                metrics::count("Sweeps", 1, &[]);
                let mut value = serde_json::to_value(report).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("payouts".into(), payouts);
                }
                Ok::<_, std::convert::Infallible>(value)
            }
        },
    ))
    .await
}
