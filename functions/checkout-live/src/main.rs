//! The payment page's live channel: the routes of the API Gateway WebSocket API. `$connect`
//! admits a page's connection for its session (open, within the limits) and records it;
//! `$disconnect` forgets it. Pushes are the events function's ([`checkout::api::checkout::live`]).

use std::sync::Arc;

use checkout::api::checkout::client_limits::PublicLimits;
use checkout::api::checkout::live::LiveGateway;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::repo::checkout_sessions::SessionRepo;
use checkout::{aws, config, lambda, metrics, wiring};
use lambda_runtime::{service_fn, LambdaEvent};

const FUNCTION: &str = "checkout-live";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<LiveGateway, ConfigError> {
    Ok(LiveGateway {
        sessions: SessionRepo::new(wiring::table(settings, sdk)?),
        connections: wiring::live_connections(settings, sdk)?,
        limits: PublicLimits::default(),
        clock: wiring::clock(),
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let gateway = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let gateway = gateway.clone();
        async move {
            let answer = gateway.handle(&event.payload).await;
            metrics::flush();
            Ok::<_, std::convert::Infallible>(answer)
        }
    }))
    .await
}

checkout::wiring_test!(FUNCTION, build);
