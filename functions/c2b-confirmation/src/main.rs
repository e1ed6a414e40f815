//! `POST /c2b/confirmation/{token}`: the C2B confirmation is made durable on the callback queue,
//! and only then acknowledged with `{"ResultCode":0,"ResultDesc":"Success"}`. Nothing is applied
//! here; the callback processor records it (once per receipt) and matches it.

use std::sync::Arc;

use checkout::services::callback_intake::CallbackIntake;
use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("c2b-confirmation");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let intake = Arc::new(CallbackIntake {
        queue: wiring::callback_queue(&settings, &sdk)?,
        clock: wiring::clock(),
        known_sources: settings.callback_sources()?,
    });
    lambda::serve_http(move |request| {
        let intake = intake.clone();
        async move { api::c2b::confirmation(&intake, request).await }
    })
    .await
}
