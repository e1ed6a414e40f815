//! `GET /v1/health`: cheap, unauthenticated, reads no secret and touches no dependency; and
//! `GET /v1/openapi.json`, the API's description (embedded at build time).

use checkout::api::router::Handlers;
use checkout::{config, lambda};

const FUNCTION: &str = "health";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    // Reads no variable; the declaration says so and is checked like every other function's.
    config::for_function(FUNCTION)?.verify()?;
    lambda::serve_routes(Handlers {
        health_and_openapi: true,
        ..Handlers::default()
    })
    .await
}
