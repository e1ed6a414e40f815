//! Safaricom's callbacks: made durable on the callback queue, then acknowledged. Nothing is
//! applied here; the callback processor does that.

use std::sync::Arc;

use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::services::callback_intake::CallbackIntake;
use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "callback";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<CallbackIntake, ConfigError> {
    Ok(CallbackIntake {
        queue: wiring::callback_queue(settings, sdk)?,
        clock: wiring::clock(),
        known_sources: settings.callback_sources()?,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let intake = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda::serve_http(move |request| {
        let intake = intake.clone();
        async move { api::callbacks::dispatch(&intake, request).await }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wires_from_its_declared_variables_only() {
        for with_optional in [false, true] {
            let env = config::examples::env(FUNCTION, with_optional);
            let settings = config::for_function_from_map(FUNCTION, env).unwrap();
            build(&settings, &aws::offline_sdk_config()).unwrap();
            settings.verify().unwrap();
        }
    }
}
