//! The HTTP API: transport-neutral handlers, the route table and its one dispatch
//! ([`router`]), problem+json errors and views. Lambda functions and the dev stack both answer
//! through [`router::serve`].

pub mod audit;
pub mod auth;
pub mod c2b;
pub mod callbacks;
pub mod checkout;
pub mod errors;
pub mod events;
pub mod health;
pub mod http;
pub mod idempotency_edge;
pub mod openapi;
pub mod payments;
pub mod payouts;
pub mod problem;
pub mod ready;
pub mod router;
pub mod routes;
pub mod webhooks;

pub use self::http::{ApiRequest, ApiResponse};
/// Views moved to [`crate::views`]; these paths stay for the handlers that name them.
pub use crate::views;
pub use crate::views::c2b as c2b_views;
pub use problem::{ApiError, FieldError};

/// Runs a handler body and turns its error into a problem response.
pub async fn respond<F>(request_id: &str, handler: F) -> ApiResponse
where
    F: std::future::Future<Output = Result<ApiResponse, ApiError>>,
{
    match handler.await {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(code = error.code(), request_id, "request failed");
            }
            error.to_response(request_id)
        }
    }
}
