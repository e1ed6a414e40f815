//! Safaricom's callbacks: made durable on the callback queue, then acknowledged. Nothing is
//! applied here; the callback processor does that.

use std::sync::Arc;

use checkout::services::callback_intake::CallbackIntake;
use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("callback");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let intake = Arc::new(CallbackIntake {
        queue: wiring::callback_queue(&settings, &sdk)?,
        clock: wiring::clock(),
        known_sources: settings.callback_sources()?,
    });
    lambda::serve_http(move |request| {
        let intake = intake.clone();
        async move { api::callbacks::dispatch(&intake, request).await }
    })
    .await
}
