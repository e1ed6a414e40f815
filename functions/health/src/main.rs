//! `GET /v1/health`: cheap, unauthenticated, reads no secret and touches no dependency.

use checkout::{api, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("health");
    lambda::serve_http(|_request| async { api::health::health() }).await
}
