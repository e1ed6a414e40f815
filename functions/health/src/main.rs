//! `GET /v1/health`: cheap, unauthenticated, reads no secret and touches no dependency; and
//! `GET /v1/openapi.json`, the API's description (embedded at build time).

use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::api::ApiError;
use checkout::{api, config, lambda};

const FUNCTION: &str = "health";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    // Reads no variable; the declaration says so and is checked like every other function's.
    config::for_function(FUNCTION)?.verify()?;
    lambda::serve_http(|request| async move {
        match match_route(&request.method, &request.path) {
            RouteMatch::Found {
                id: RouteId::OpenApi, ..
            } => api::openapi::document(),
            RouteMatch::Found {
                id: RouteId::Health, ..
            } => api::health::health(),
            _ => ApiError::RouteNotFound.to_response(&request.request_id),
        }
    })
    .await
}
