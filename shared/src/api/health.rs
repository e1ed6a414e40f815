//! `GET /v1/health`: unauthenticated, no secrets, no I/O.

use http::StatusCode;

use super::http::ApiResponse;

pub fn health() -> ApiResponse {
    ApiResponse::json(
        StatusCode::OK,
        &serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "api": "v1"}),
    )
}
