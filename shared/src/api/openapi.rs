//! `GET /v1/openapi.json`: the public API's description, `openapi.yaml` converted to JSON when
//! the crate is built (`build.rs`), served as is (unauthenticated, no I/O).

use http::StatusCode;

use super::http::ApiResponse;

/// `openapi.yaml` as JSON.
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

pub fn document() -> ApiResponse {
    ApiResponse::raw_json(StatusCode::OK, bytes::Bytes::from_static(OPENAPI_JSON.as_bytes()))
        .with_header("cache-control", "public, max-age=300")
}
