//! Daraja-shaped synchronous errors. Every failure a client can see goes through here, so no
//! axum default page or panic ever reaches the wire.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A synchronous error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The usual `{requestId, errorCode, errorMessage}` envelope.
    #[error("{status} {code}: {message}")]
    Daraja {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// A status with an empty body (seen for wrong consumer key/secret).
    #[error("{0} with empty body")]
    Empty(StatusCode),
    /// An HTML gateway page.
    #[error("{0} HTML page")]
    Html(StatusCode, &'static str),
    /// Arbitrary JSON, e.g. an Apigee-style `fault` object.
    #[error("{0} JSON fault")]
    Raw(StatusCode, Value),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError::Daraja {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// `400.002.02 Bad Request - Invalid <field>`.
    pub fn invalid(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "400.002.02",
            format!("Bad Request - Invalid {field}"),
        )
    }

    /// `500.001.1001` carries several unrelated messages; only the text tells them apart.
    pub fn e500_1001(message: &str) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "500.001.1001", message)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Daraja { status, .. } => *status,
            ApiError::Empty(s) | ApiError::Html(s, _) | ApiError::Raw(s, _) => *s,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Daraja { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Daraja { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The body as recorded in ground truth.
    pub fn body_value(&self, request_id: &str) -> Value {
        match self {
            ApiError::Daraja { code, message, .. } => json!({
                "requestId": request_id, "errorCode": code, "errorMessage": message
            }),
            ApiError::Empty(_) => Value::String(String::new()),
            ApiError::Html(_, page) => Value::String((*page).to_string()),
            ApiError::Raw(_, v) => v.clone(),
        }
    }

    pub fn into_response_with_id(self, request_id: &str) -> Response {
        match self {
            ApiError::Empty(status) => status.into_response(),
            ApiError::Html(status, page) => {
                let mut r = (status, page).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=UTF-8"),
                );
                r
            }
            other => {
                let status = other.status();
                let body = other.body_value(request_id);
                (status, axum::Json(body)).into_response()
            }
        }
    }
}

/// What an Apigee gateway returns when the backend is down.
pub const GATEWAY_HTML: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n";
