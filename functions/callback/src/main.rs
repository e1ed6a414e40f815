//! Safaricom's callbacks: made durable on the callback queue, then acknowledged. Nothing is
//! applied here; the callback processor does that.

use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::{lambda, wiring};

const FUNCTION: &str = "callback";

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
