//! `POST /c2b/confirmation/{token}`: the C2B confirmation is made durable on the callback queue,
//! and only then acknowledged with `{"ResultCode":0,"ResultDesc":"Success"}`. Nothing is applied
//! here; the callback processor records it (once per receipt) and matches it.

use std::sync::Arc;

use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "c2b-confirmation";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let intake = Arc::new(wiring::callback_intake(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda::serve_http(move |request| {
        let intake = intake.clone();
        async move { api::c2b::confirmation(&intake, request).await }
    })
    .await
}

checkout::wiring_test!(FUNCTION, checkout::wiring::callback_intake);
