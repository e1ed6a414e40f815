//! `POST /c2b/confirmation/{token}`: the C2B confirmation is made durable on the callback queue,
//! and only then acknowledged with `{"ResultCode":0,"ResultDesc":"Success"}`. Nothing is applied
//! here; the callback processor records it (once per receipt) and matches it.

use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::{lambda, wiring};

const FUNCTION: &str = "c2b-confirmation";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    Ok(Handlers {
        callbacks: Some(wiring::callback_intake(settings, sdk)?),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
