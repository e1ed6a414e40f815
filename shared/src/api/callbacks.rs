//! Safaricom-facing callback endpoints: queue durably, then acknowledge in Daraja's format.

use bytes::Bytes;
use http::StatusCode;

use super::http::{ApiRequest, ApiResponse};
use crate::services::callback_intake::{CallbackIntake, CallbackKind, IntakeError};

/// Acknowledges only after the callback is durable; otherwise a 5xx so nothing is lost silently.
pub async fn receive(
    intake: &CallbackIntake,
    kind: CallbackKind,
    request: ApiRequest,
    ack_body: &'static str,
) -> ApiResponse {
    let token = request.path_param("token").unwrap_or_default().to_owned();
    match intake
        .accept(kind, &token, &request.body, request.source_ip, &request.request_id)
        .await
    {
        Ok(_) => ApiResponse::raw_json(StatusCode::OK, Bytes::from_static(ack_body.as_bytes())),
        Err(IntakeError::TooLarge) => ApiResponse::raw_json(
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from_static(br#"{"ResultCode":1,"ResultDesc":"Rejected: body too large"}"#),
        ),
        Err(IntakeError::Queue(error)) => {
            tracing::error!(%error, kind = kind.as_str(), "callback could not be made durable");
            ApiResponse::raw_json(
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(br#"{"ResultCode":1,"ResultDesc":"Temporarily unavailable"}"#),
            )
        }
    }
}

pub const STK_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;
pub const B2C_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;
pub const C2B_CONFIRMATION_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Success"}"#;
