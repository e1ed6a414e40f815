//! What every use case's error reads as over HTTP: each service's error enum maps to an
//! [`ApiError`] here, once, so the problem `code`, status and headers of a failure are decided
//! in one place (and the use cases know nothing of HTTP).

use super::problem::{ApiError, FieldError};
use crate::services::c2b::expected_payments::ExpectedPaymentError;
use crate::services::c2b::registration::RegistrationError;
use crate::services::checkout::CheckoutError;
use crate::services::limits::LimitRefusal;
use crate::services::payments::PaymentError;
use crate::services::payouts::PayoutError;
use crate::services::store_failure;
use crate::store::StoreError;
use crate::webhooks::service::WebhookError;

/// A store failure met by a handler itself (a read): a 503 the client retries when sending the
/// request again may succeed, else a 500.
pub fn store_error(error: StoreError) -> ApiError {
    if store_failure::is_retryable(&error) {
        ApiError::Unavailable
    } else {
        ApiError::Internal
    }
}

impl From<LimitRefusal> for ApiError {
    fn from(refusal: LimitRefusal) -> ApiError {
        ApiError::LimitExceeded(refusal)
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> ApiError {
        match error {
            PaymentError::LimitExceeded(refusal) => refusal.into(),
            PaymentError::TooManyConcurrentRequests => ApiError::Conflict {
                code: "too_many_concurrent_requests",
                detail: "too many simultaneous requests for this phone; retry".into(),
            },
            PaymentError::Unavailable => ApiError::Unavailable,
            PaymentError::Internal => ApiError::Internal,
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> ApiError {
        match error {
            CheckoutError::NotFound => ApiError::NotFound {
                resource: "checkout session",
            },
            CheckoutError::NotOpen { status } => ApiError::Conflict {
                code: "session_not_open",
                detail: format!("the checkout session is {}", status.as_str()),
            },
            CheckoutError::PastExpiry => ApiError::Conflict {
                code: "session_expired",
                detail: "the checkout session has expired".into(),
            },
            CheckoutError::AttemptInProgress => ApiError::Conflict {
                code: "attempt_in_progress",
                detail: "a prompt is open on the customer's phone; retry once it has ended".into(),
            },
            CheckoutError::PaymentRefused(error) => error.into(),
            CheckoutError::Unavailable => ApiError::Unavailable,
            CheckoutError::Internal => ApiError::Internal,
        }
    }
}

impl From<PayoutError> for ApiError {
    fn from(error: PayoutError) -> ApiError {
        match error {
            PayoutError::LimitExceeded(refusal) => refusal.into(),
            PayoutError::NotFound => ApiError::NotFound { resource: "payout" },
            PayoutError::SelfApproval => ApiError::SelfApprovalForbidden,
            PayoutError::NotAwaitingApproval { status } => ApiError::InvalidState {
                detail: format!(
                    "the payout is {}; only a payout awaiting_approval can be approved or rejected",
                    status.as_str()
                ),
            },
            PayoutError::Unavailable => ApiError::Unavailable,
            PayoutError::Internal => ApiError::Internal,
        }
    }
}

impl From<ExpectedPaymentError> for ApiError {
    fn from(error: ExpectedPaymentError) -> ApiError {
        // The message of a field error, or the detail of a conflict, is the error's own text.
        let field = |name: &str, code: &'static str, error: &ExpectedPaymentError| {
            ApiError::Validation(vec![FieldError::new(name, code, error.to_string())])
        };
        match &error {
            ExpectedPaymentError::ExpiresInThePast => field("expires_at", "in_the_past", &error),
            ExpectedPaymentError::ExpiresTooLate => field("expires_at", "out_of_range", &error),
            ExpectedPaymentError::UnknownShortcode => field("shortcode", "unknown_shortcode", &error),
            ExpectedPaymentError::PatternMismatch => field("account_number", "pattern_mismatch", &error),
            ExpectedPaymentError::AccountNumberInUse { .. } | ExpectedPaymentError::AccountNumberContended => {
                ApiError::Conflict {
                    code: "account_number_in_use",
                    detail: error.to_string(),
                }
            }
            ExpectedPaymentError::Unavailable => ApiError::Unavailable,
            ExpectedPaymentError::Internal => ApiError::Internal,
        }
    }
}

impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> ApiError {
        match error {
            RegistrationError::RotationInProgress(busy) => ApiError::Conflict {
                code: "token_rotation_in_progress",
                detail: match busy.valid_until {
                    Some(until) => format!(
                        "the previous URLs (generation {}) keep working until {}; rotate again after that",
                        busy.retiring,
                        until.to_rfc3339()
                    ),
                    None => format!(
                        "Daraja has not taken the URLs of the last rotation yet (generation {} is still in use); register again to retry it",
                        busy.retiring
                    ),
                },
            },
            RegistrationError::UrlRefused { which, base, reason } => ApiError::Unprocessable {
                code: "c2b_url_refused",
                detail: format!(
                    "Safaricom would refuse the {which} URL {base}/<token>: {reason}. \
                     Set PUBLIC_BASE_URL to an HTTPS domain of your own without those words."
                ),
            },
            RegistrationError::Concurrent => ApiError::Conflict {
                code: "concurrent_registration",
                detail: "this shortcode is being registered by another request; retry".into(),
            },
            RegistrationError::DarajaRejected {
                shortcode,
                code,
                message,
            } => ApiError::DarajaRejected {
                resource_id: shortcode.to_string(),
                code,
                message,
            },
            RegistrationError::InvalidRequest { detail } => ApiError::Unprocessable {
                code: "c2b_url_refused",
                detail,
            },
            RegistrationError::DarajaUnavailable { shortcode } => ApiError::DarajaUnavailable {
                resource_id: shortcode.to_string(),
            },
            RegistrationError::Unavailable => ApiError::Unavailable,
            RegistrationError::Internal => ApiError::Internal,
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> ApiError {
        match error {
            WebhookError::NotFound(resource) => ApiError::NotFound { resource },
            WebhookError::TooManyEndpoints => ApiError::Conflict {
                code: "too_many_webhook_endpoints",
                detail: error.to_string(),
            },
            WebhookError::ChangedConcurrently => ApiError::Conflict {
                code: "changed_concurrently",
                detail: error.to_string(),
            },
            WebhookError::SigningKeyUnavailable => ApiError::Unavailable,
            WebhookError::Store(error) => store_error(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use http::StatusCode;
    use serde_json::Value;

    use super::*;
    use crate::daraja::c2b::C2bUrlError;
    use crate::domain::c2b::Shortcode;
    use crate::domain::c2b_path_tokens::RotationInProgress;
    use crate::domain::PayoutStatus;

    fn problem(error: impl Into<ApiError>) -> (StatusCode, Value) {
        let response = error.into().to_response("r");
        (response.status, response.body_json().unwrap())
    }

    #[test]
    fn use_case_errors_keep_their_codes_and_statuses() {
        let refusal = LimitRefusal {
            limit: "phone_prompts".into(),
            resets_at: Some(Utc::now()),
            is_rate: true,
        };
        let cases: Vec<(ApiError, StatusCode, &str)> = vec![
            (
                PaymentError::LimitExceeded(refusal.clone()).into(),
                StatusCode::TOO_MANY_REQUESTS,
                "limit_exceeded",
            ),
            (
                PaymentError::TooManyConcurrentRequests.into(),
                StatusCode::CONFLICT,
                "too_many_concurrent_requests",
            ),
            (
                PaymentError::Unavailable.into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
            ),
            (
                PaymentError::Internal.into(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
            ),
            (
                PayoutError::LimitExceeded(refusal).into(),
                StatusCode::TOO_MANY_REQUESTS,
                "limit_exceeded",
            ),
            (PayoutError::NotFound.into(), StatusCode::NOT_FOUND, "not_found"),
            (
                PayoutError::SelfApproval.into(),
                StatusCode::FORBIDDEN,
                "self_approval_forbidden",
            ),
            (
                PayoutError::NotAwaitingApproval {
                    status: PayoutStatus::Sent,
                }
                .into(),
                StatusCode::CONFLICT,
                "invalid_state",
            ),
            (
                ExpectedPaymentError::ExpiresInThePast.into(),
                StatusCode::BAD_REQUEST,
                "validation_failed",
            ),
            (
                ExpectedPaymentError::AccountNumberContended.into(),
                StatusCode::CONFLICT,
                "account_number_in_use",
            ),
            (
                RegistrationError::Concurrent.into(),
                StatusCode::CONFLICT,
                "concurrent_registration",
            ),
            (
                RegistrationError::InvalidRequest { detail: "no".into() }.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "c2b_url_refused",
            ),
            (
                RegistrationError::DarajaUnavailable {
                    shortcode: Shortcode::parse("600984").unwrap(),
                }
                .into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "daraja_unavailable",
            ),
            (
                store_error(StoreError::TransactionConflict),
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
            ),
            (
                store_error(StoreError::Corrupt("x".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status(), error.code()), (status, code), "{error:?}");
        }
    }

    #[test]
    fn details_read_as_before() {
        let (_, body) = problem(PayoutError::NotAwaitingApproval {
            status: PayoutStatus::Sent,
        });
        assert_eq!(
            body["detail"],
            "the payout is sent; only a payout awaiting_approval can be approved or rejected"
        );
        let (_, body) = problem(RegistrationError::UrlRefused {
            which: "validation",
            base: "https://pay.example.co.ke/c2b/validation".into(),
            reason: C2bUrlError::NotHttps,
        });
        assert_eq!(
            body["detail"],
            "Safaricom would refuse the validation URL https://pay.example.co.ke/c2b/validation/<token>: must use HTTPS. \
             Set PUBLIC_BASE_URL to an HTTPS domain of your own without those words."
        );
        let until = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let (_, body) = problem(RegistrationError::RotationInProgress(RotationInProgress {
            retiring: 2,
            valid_until: Some(until),
        }));
        assert_eq!(
            body["detail"],
            "the previous URLs (generation 2) keep working until 2026-11-21T00:00:00+00:00; rotate again after that"
        );
        let (status, body) = problem(RegistrationError::DarajaRejected {
            shortcode: Shortcode::parse("600984").unwrap(),
            code: "400.003.02".into(),
            message: "Bad Request".into(),
        });
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["shortcode"], "600984");
        assert_eq!(body["daraja"]["code"], "400.003.02");
    }
}
