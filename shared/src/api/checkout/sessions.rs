//! `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`, `GET /v1/checkout/sessions`,
//! `POST /v1/checkout/sessions/{id}/expire`: the shop's side of hosted checkout.
//!
//! Field rules of a new session (each failure is one entry in the problem's `errors`):
//! - `amount` (required), `reference` (required), `description`, `metadata`: as for
//!   `POST /v1/payments` (the session's payments carry them);
//! - `phone` (optional): the customer's number when the shop knows it; the page suggests it
//!   (masked). Code `invalid_phone`;
//! - `success_url`, `cancel_url` (required): absolute `https` URLs (`http` only on a loopback
//!   host), no credentials or fragment, at most 2048 characters. Codes `required`,
//!   `invalid_type`, `invalid_url`;
//! - `expires_in` (optional): seconds the session stays open, 300-86400, default 1800. Codes
//!   `not_an_integer`, `out_of_range`;
//! - `max_attempts` (optional): prompts the customer may ask for, 1-10, default 5. Codes
//!   `not_an_integer`, `out_of_range`;
//! - any other field: `unknown_field`.

use http::StatusCode;

use super::super::auth::Authenticator;
use super::super::http::{ApiRequest, ApiResponse, JsonObject};
use super::super::idempotency_edge::{stored, IdempotencyEdge};
use super::super::payments::{
    amount_field, idempotency_key, metadata_field, page_params, range_params, text_field, MAX_BODY_BYTES,
};
use super::super::problem::{ApiError, FieldError};
use super::super::respond;
use super::super::views::ListView;
use crate::auth::scopes;
use crate::domain::checkout_session::{
    CheckoutSession, CheckoutSessionId, NewSession, ReturnUrl, SessionStatus, DEFAULT_EXPIRY, DEFAULT_MAX_ATTEMPTS,
    MAX_EXPIRY, MIN_EXPIRY,
};
use crate::domain::{AmountLimits, Description, Msisdn, Reference};
use crate::idempotency::{Claimed, Operation, RequestIdentity};
use crate::repo::checkout_sessions::SessionListFilter;
use crate::services::checkout::{service, CheckoutService};
use crate::views::checkout::CheckoutSessionView;

const FIELDS: &[&str] = &[
    "amount",
    "reference",
    "description",
    "phone",
    "success_url",
    "cancel_url",
    "expires_in",
    "max_attempts",
    "metadata",
];

pub const MAX_ATTEMPTS_BOUND: u32 = 10;

fn url_field(body: &JsonObject, field: &str, errors: &mut Vec<FieldError>) -> Option<ReturnUrl> {
    let Some(value) = body.get(field) else {
        errors.push(FieldError::new(field, "required", format!("{field} is required")));
        return None;
    };
    let Some(text) = value.as_str() else {
        errors.push(FieldError::new(
            field,
            "invalid_type",
            format!("{field} must be a string"),
        ));
        return None;
    };
    match ReturnUrl::parse(text) {
        Ok(url) => Some(url),
        Err(e) => {
            errors.push(FieldError::new(field, "invalid_url", format!("{field} {e}")));
            None
        }
    }
}

/// An optional integer field within `range`; `None` when absent.
fn integer_field(
    body: &JsonObject,
    field: &str,
    range: std::ops::RangeInclusive<u64>,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    let raw = body.raw(field).filter(|r| r.trim() != "null")?;
    let Ok(n) = raw.trim().parse::<u64>() else {
        errors.push(FieldError::new(
            field,
            "not_an_integer",
            format!("{field} must be a whole number"),
        ));
        return None;
    };
    if !range.contains(&n) {
        errors.push(FieldError::new(
            field,
            "out_of_range",
            format!("{field} must be from {} to {}", range.start(), range.end()),
        ));
        return None;
    }
    Some(n)
}

pub fn parse_new_session(body: &JsonObject) -> Result<NewSession, ApiError> {
    let mut errors = body.unknown_fields(FIELDS);
    let amount = amount_field(body, "amount", AmountLimits::STK_PUSH, &mut errors);
    let reference = text_field(body, "reference", true, Reference::parse, &mut errors);
    let description = text_field(body, "description", false, Description::parse, &mut errors);
    let phone = match body.get("phone") {
        None => None,
        Some(value) => match value.as_str().map(Msisdn::parse) {
            Some(Ok(phone)) => Some(phone),
            _ => {
                errors.push(FieldError::new(
                    "phone",
                    "invalid_phone",
                    "phone must be a Kenyan mobile number as a string, e.g. \"0712345678\" or \"+254712345678\"",
                ));
                None
            }
        },
    };
    let success_url = url_field(body, "success_url", &mut errors);
    let cancel_url = url_field(body, "cancel_url", &mut errors);
    let expiry_range = MIN_EXPIRY.num_seconds() as u64..=MAX_EXPIRY.num_seconds() as u64;
    let expires_in = integer_field(body, "expires_in", expiry_range, &mut errors)
        .map(|s| chrono::Duration::seconds(s as i64))
        .unwrap_or(DEFAULT_EXPIRY);
    let max_attempts = integer_field(body, "max_attempts", 1..=u64::from(MAX_ATTEMPTS_BOUND), &mut errors)
        .map(|n| n as u32)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let metadata = metadata_field(body, &mut errors);
    match (amount, reference, success_url, cancel_url) {
        (Some(amount), Some(reference), Some(success_url), Some(cancel_url)) if errors.is_empty() => Ok(NewSession {
            amount,
            reference,
            description,
            phone,
            success_url,
            cancel_url,
            expires_in,
            max_attempts,
            metadata,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn created_response(session: &CheckoutSession) -> ApiResponse {
    ApiResponse::json(StatusCode::CREATED, &CheckoutSessionView::from(session))
}

pub async fn create(service: &CheckoutService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::CHECKOUT_WRITE).await?;
        let key = idempotency_key(&request)?;
        let body = request.json_object(MAX_BODY_BYTES)?;
        let new_session = parse_new_session(&body)?;
        let identity = RequestIdentity::new(
            &principal.merchant,
            Operation::CreateCheckoutSession,
            &key,
            &service::canonical(&new_session),
        );
        let edge = IdempotencyEdge::new(service.table.as_ref(), identity);
        let first_response = |session: &CheckoutSession| stored(&created_response(session));
        match service
            .create(&principal.merchant, edge.identity(), new_session, &first_response)
            .await?
        {
            Claimed::Ran(session) => Ok(created_response(&session)),
            Claimed::Taken => {
                edge.resolve(
                    service.clock.now(),
                    |id| async move { service.recover(&id).await },
                    created_response,
                )
                .await
            }
        }
    })
    .await
}

fn session_id(request: &ApiRequest) -> Result<CheckoutSessionId, ApiError> {
    request
        .path_param("id")
        .and_then(|id| CheckoutSessionId::parse(id).ok())
        .ok_or(ApiError::NotFound {
            resource: "checkout session",
        })
}

pub async fn get(service: &CheckoutService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::CHECKOUT_READ, scopes::CHECKOUT_WRITE])
            .await?;
        let id = session_id(&request)?;
        let session = service.get(Some(&principal.merchant), &id).await?;
        // Shown as it is now: an attempt whose payment settled is ended before it is shown.
        let session = service.refresh(session).await?;
        Ok(ApiResponse::json(StatusCode::OK, &CheckoutSessionView::from(&session)))
    })
    .await
}

pub async fn list(service: &CheckoutService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::CHECKOUT_READ, scopes::CHECKOUT_WRITE])
            .await?;
        request.only_query_params(&["status", "from", "to", "limit", "cursor"])?;
        let mut errors = Vec::new();
        let status = match request.query_param("status")? {
            None => None,
            Some(text) => {
                let parsed = SessionStatus::parse(text);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "status",
                        "invalid_value",
                        "status must be one of open, completed, expired",
                    ));
                }
                parsed
            }
        };
        let (from, to) = range_params(&request, &mut errors)?;
        let (limit, cursor) = page_params(&request, &mut errors)?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filter = SessionListFilter {
            owner: Some(principal.merchant.clone()),
            status,
            from,
            to,
        };
        let page = service.list(&filter, limit, cursor.as_ref()).await?;
        let view = ListView {
            data: page.sessions.iter().map(CheckoutSessionView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}

pub async fn expire(service: &CheckoutService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::CHECKOUT_WRITE).await?;
        let id = session_id(&request)?;
        let session = service.expire(&principal.merchant, &id).await?;
        Ok(ApiResponse::json(StatusCode::OK, &CheckoutSessionView::from(&session)))
    })
    .await
}
