//! Every error the API returns, mapped to RFC 9457 problem details in this one place. (What
//! each use case's own error reads as is in [`super::errors`].)

use chrono::Utc;
use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::http::ApiResponse;
use crate::auth::AuthError;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// Which limit refused a request: a use case's type (the limits decide it); rates answer 429,
/// caps on amounts 422 (see [`ApiError::status`]).
pub use crate::services::limits::LimitRefusal;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    MalformedJson(String),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the body exceeds {max_bytes} bytes")]
    PayloadTooLarge { max_bytes: usize },
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyMissing,
    #[error("the Idempotency-Key header must be 1-255 printable ASCII characters")]
    IdempotencyKeyInvalid,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    RequestInProgress,
    #[error("{0}")]
    Unauthenticated(AuthError),
    #[error("the token lacks the scope {scope}")]
    Forbidden { scope: &'static str },
    #[error("no {resource} with this id")]
    NotFound { resource: &'static str },
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("Daraja refused the request: {message}")]
    DarajaRejected {
        resource_id: String,
        code: String,
        message: String,
    },
    #[error("Daraja is unavailable; nothing was sent")]
    DarajaUnavailable { resource_id: String },
    /// Daraja refused the request for its own rate limits (Spike Arrest, Quota) before doing
    /// anything: nothing was sent; retry after a pause.
    #[error("M-Pesa is limiting the request rate; nothing was sent, retry shortly")]
    DarajaRateLimited { resource_id: String },
    #[error("{}", limit_detail(.0))]
    LimitExceeded(LimitRefusal),
    #[error("a dependency is unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// Well-formed, but cannot be done as asked (e.g. a C2B URL Safaricom would refuse).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// Two-person approval: the creator of a payout may not approve or reject it.
    #[error("a payout must be approved or rejected by a different principal than the one who created it")]
    SelfApprovalForbidden,
    /// The resource is not in a state that allows the operation (e.g. approving a sent payout).
    #[error("{detail}")]
    InvalidState { detail: String },
    /// A capability switched off by its feature flag in this deployment (e.g. `FEATURE_PAYOUTS=off`).
    #[error("{feature} is not enabled in this deployment")]
    FeatureDisabled { feature: &'static str },
}

fn limit_detail(refusal: &LimitRefusal) -> String {
    match refusal.resets_at {
        Some(at) => format!(
            "the {} limit is reached; it resets at {}",
            refusal.limit,
            at.to_rfc3339()
        ),
        None => format!("the {} limit refuses this request", refusal.limit),
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_)
            | ApiError::MalformedJson(_)
            | ApiError::IdempotencyKeyMissing
            | ApiError::IdempotencyKeyInvalid => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::IdempotencyKeyReused | ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RequestInProgress | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::SelfApprovalForbidden => StatusCode::FORBIDDEN,
            ApiError::InvalidState { .. } => StatusCode::CONFLICT,
            ApiError::NotFound { .. } | ApiError::RouteNotFound | ApiError::FeatureDisabled { .. } => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::DarajaRejected { .. } => StatusCode::BAD_GATEWAY,
            ApiError::DarajaUnavailable { .. } | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::LimitExceeded(r) if r.is_rate => StatusCode::TOO_MANY_REQUESTS,
            ApiError::DarajaRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LimitExceeded(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code integrators branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::IdempotencyKeyMissing => "idempotency_key_missing",
            ApiError::IdempotencyKeyInvalid => "idempotency_key_invalid",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::RequestInProgress => "request_in_progress",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Forbidden { .. } => "insufficient_scope",
            ApiError::NotFound { .. } => "not_found",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::DarajaRejected { .. } => "daraja_rejected",
            ApiError::DarajaUnavailable { .. } => "daraja_unavailable",
            ApiError::DarajaRateLimited { .. } => "daraja_rate_limited",
            ApiError::LimitExceeded(_) => "limit_exceeded",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal => "internal_error",
            ApiError::Conflict { code, .. } => code,
            ApiError::Unprocessable { code, .. } => code,
            ApiError::SelfApprovalForbidden => "self_approval_forbidden",
            ApiError::InvalidState { .. } => "invalid_state",
            ApiError::FeatureDisabled { .. } => "feature_disabled",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "Invalid request fields",
            ApiError::MalformedJson(_) => "Malformed JSON body",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::IdempotencyKeyMissing | ApiError::IdempotencyKeyInvalid => "Invalid Idempotency-Key",
            ApiError::IdempotencyKeyReused => "Idempotency-Key reused",
            ApiError::RequestInProgress => "Request in progress",
            ApiError::Unauthenticated(_) => "Unauthenticated",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::NotFound { .. } | ApiError::RouteNotFound => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::DarajaRejected { .. } => "Rejected by M-Pesa",
            ApiError::DarajaUnavailable { .. } => "M-Pesa unavailable",
            ApiError::DarajaRateLimited { .. } => "M-Pesa rate limit",
            ApiError::LimitExceeded(_) => "Limit exceeded",
            ApiError::Unavailable => "Service unavailable",
            ApiError::Internal => "Internal error",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Unprocessable { .. } => "Unprocessable request",
            ApiError::SelfApprovalForbidden => "Self-approval forbidden",
            ApiError::InvalidState { .. } => "Invalid state",
            ApiError::FeatureDisabled { .. } => "Feature not enabled",
        }
    }

    /// The problem+json response.
    pub fn to_response(&self, request_id: &str) -> ApiResponse {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("https://docs.mpesa-checkout.dev/problems/{}", self.code())),
        );
        body.insert("title".into(), json!(self.title()));
        body.insert("status".into(), json!(self.status().as_u16()));
        body.insert("detail".into(), json!(self.to_string()));
        body.insert("code".into(), json!(self.code()));
        body.insert("request_id".into(), json!(request_id));
        match self {
            ApiError::Validation(errors) => {
                body.insert("errors".into(), json!(errors));
            }
            ApiError::DarajaRejected {
                resource_id,
                code,
                message,
            } => {
                insert_resource_id(&mut body, resource_id);
                body.insert("daraja".into(), json!({"code": code, "message": message}));
            }
            ApiError::DarajaUnavailable { resource_id } | ApiError::DarajaRateLimited { resource_id } => {
                insert_resource_id(&mut body, resource_id)
            }
            ApiError::Unauthenticated(error) => {
                body.insert("reason".into(), json!(error.reason()));
            }
            ApiError::LimitExceeded(refusal) => {
                body.insert("limit".into(), json!(refusal.limit));
                if let Some(at) = refusal.resets_at {
                    body.insert(
                        "resets_at".into(),
                        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                }
            }
            _ => {}
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut response = ApiResponse::raw_json(self.status(), bytes.into());
        response.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthenticated(_) => response.with_header("www-authenticate", "Bearer"),
            ApiError::RequestInProgress => response.with_header("retry-after", "1"),
            ApiError::LimitExceeded(LimitRefusal {
                resets_at: Some(at),
                is_rate: true,
                ..
            }) => {
                let seconds = (*at - Utc::now()).num_seconds().max(1);
                response.with_header("retry-after", &seconds.to_string())
            }
            ApiError::Unavailable | ApiError::DarajaUnavailable { .. } | ApiError::DarajaRateLimited { .. } => {
                response.with_header("retry-after", "5")
            }
            _ => response,
        }
    }
}

/// Payments and payouts both answer with the id of the resource the failure belongs to.
fn insert_resource_id(body: &mut Map<String, Value>, id: &str) {
    let field = if id.starts_with("po_") {
        "payout_id"
    } else if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        // C2B registrations fail for a shortcode.
        "shortcode"
    } else {
        "payment_id"
    };
    body.insert(field.into(), json!(id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_shape() {
        let e = ApiError::Validation(vec![FieldError::new("phone", "invalid_phone", "bad")]);
        let r = e.to_response("req-1");
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], "validation_failed");
        assert_eq!(v["status"], 400);
        assert_eq!(v["errors"][0]["field"], "phone");
        assert_eq!(v["errors"][0]["code"], "invalid_phone");
        assert_eq!(v["request_id"], "req-1");
    }

    #[test]
    fn a_refused_token_says_why() {
        let e = ApiError::Unauthenticated(crate::auth::AuthError::OperatorScopeNeedsAsymmetricKey);
        let r = e.to_response("r");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], "unauthenticated");
        assert_eq!(v["reason"], "operator_scope_needs_asymmetric_key");
    }

    #[test]
    fn daraja_rejection_carries_the_payment_id_at_top_level() {
        let e = ApiError::DarajaRejected {
            resource_id: "pay_1".into(),
            code: "400.002.02".into(),
            message: "Invalid".into(),
        };
        let v: Value = serde_json::from_slice(&e.to_response("r").body).unwrap();
        assert_eq!(v["payment_id"], "pay_1");
        assert_eq!(v["status"], 502);
        let e = ApiError::DarajaUnavailable {
            resource_id: "po_1".into(),
        };
        let v: Value = serde_json::from_slice(&e.to_response("r").body).unwrap();
        assert_eq!(v["payout_id"], "po_1");
    }

    #[test]
    fn rates_are_429_and_caps_422() {
        let rate = ApiError::LimitExceeded(LimitRefusal {
            limit: "phone_prompts".into(),
            resets_at: Some(Utc::now()),
            is_rate: true,
        });
        assert_eq!(rate.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(rate.to_response("r").headers.contains_key("retry-after"));
        let cap = ApiError::LimitExceeded(LimitRefusal {
            limit: "merchant_daily_amount".into(),
            resets_at: None,
            is_rate: false,
        });
        assert_eq!(cap.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
