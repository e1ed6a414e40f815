//! The Safaricom-facing C2B routes (Daraja's formats, always HTTP 200 unless the body is refused):
//! - `POST /c2b/validation/{token}`: accept `{"ResultCode":"0","ResultDesc":"Accepted"}` or reject
//!   with `C2B00011`..`C2B00016`.
//! - `POST /c2b/confirmation/{token}`: queued durably, then `{"ResultCode":0,"ResultDesc":"Success"}`.

use bytes::Bytes;
use http::StatusCode;

use crate::api::callbacks::{receive, C2B_CONFIRMATION_ACK};
use crate::api::http::{ApiRequest, ApiResponse};
use crate::services::c2b::validation::C2bValidator;
use crate::services::callback_intake::{CallbackIntake, CallbackKind};

/// `POST /c2b/validation/{token}`: Daraja's answer format, always HTTP 200.
pub async fn validation(validator: &C2bValidator, request: ApiRequest) -> ApiResponse {
    let token = request.path_param("token").unwrap_or_default();
    let outcome = validator.validate(token, &request.body, request.source_ip).await;
    ApiResponse::raw_json(StatusCode::OK, Bytes::from(outcome.reply.body()))
}

/// `POST /c2b/confirmation/{token}`: durable on the callback queue, then acknowledged.
pub async fn confirmation(intake: &CallbackIntake, request: ApiRequest) -> ApiResponse {
    receive(intake, CallbackKind::C2bConfirmation, request, C2B_CONFIRMATION_ACK).await
}
