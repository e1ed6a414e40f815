//! Safaricom's callbacks: made durable on the callback queue, then acknowledged. Nothing is
//! applied here; the callback processor does that.

use std::sync::Arc;

use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "callback";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let intake = Arc::new(wiring::callback_intake(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda::serve_http(move |request| {
        let intake = intake.clone();
        async move { api::callbacks::dispatch(&intake, request).await }
    })
    .await
}

checkout::wiring_test!(FUNCTION, checkout::wiring::callback_intake);
