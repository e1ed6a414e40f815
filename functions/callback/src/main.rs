//! Safaricom's callbacks: made durable on the callback queue, then acknowledged. Nothing is
//! applied here; the callback processor does that.

use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::{aws, config, lambda, wiring};

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
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let handlers = build(&settings, &aws::sdk_config().await)?;
    settings.verify()?;
    lambda::serve_routes(handlers).await
}

checkout::wiring_test!(FUNCTION, build);
