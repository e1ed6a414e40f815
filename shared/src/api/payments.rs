//! `POST /v1/payments`, `GET /v1/payments/{id}`, `GET /v1/payments`.
//!
//! Field rules (each failure is one entry in the problem's `errors`):
//! - `amount` (required): JSON integer, KES 1..=250000. Codes `required`, `not_an_integer`
//!   (string, boolean, ...), `not_whole` (`1500.5`, `1500.0`, `1.5e3`), `not_positive`, `out_of_range`.
//! - `phone` (required): string in a form people type (07.., 01.., 7.., 1.., 2547.., 2541..,
//!   +254.., spaces or dashes between digits). Code `invalid_phone`.
//! - `reference` (required): 1-12 characters of letters, digits, space, `-_.`. Codes `required`,
//!   `invalid_type`, `invalid_length`, `invalid_characters`.
//! - `description` (optional): 1-13 characters, same alphabet, defaults to the reference on the prompt.
//! - `metadata` (optional): object of up to 20 string values (keys 1-40 of letters, digits, `-_.`;
//!   values up to 500 characters). Codes `invalid_type`, `too_many_keys`, `invalid_key`, `value_too_long`.
//! - any other field: `unknown_field`.

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::auth::Authenticator;
use super::errors::store_error;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::idempotency_edge::{stored, IdempotencyEdge};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::views::{ListView, PaymentView};
use crate::auth::scopes;
use crate::daraja::errors::{QUOTA_VIOLATION, SPIKE_ARREST};
use crate::domain::amount::AmountError;
use crate::domain::text::{MetadataError, TextError};
use crate::domain::{
    Amount, AmountLimits, ClientId, Description, FailureReason, Metadata, Msisdn, NewPayment, Payment, PaymentId,
    PaymentStatus, Reference,
};
use crate::idempotency::{Claimed, IdempotencyKey, Operation, RequestIdentity};
use crate::repo::listing::Cursor;
use crate::repo::payments::{PaymentListFilter, PaymentRepo};
use crate::services::payments::{self as payments, PaymentsService};

/// Request bodies are small; anything larger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

const FIELDS: &[&str] = &["amount", "phone", "reference", "description", "metadata"];

pub fn amount_field(
    body: &JsonObject,
    field: &str,
    limits: AmountLimits,
    errors: &mut Vec<FieldError>,
) -> Option<Amount> {
    let Some(raw) = body.raw(field).filter(|r| r.trim() != "null") else {
        errors.push(FieldError::new(field, "required", "amount is required"));
        return None;
    };
    match Amount::parse_api_literal(raw, limits) {
        Ok(amount) => Some(amount),
        Err(e) => {
            let code = match e {
                AmountError::NotANumber => "not_an_integer",
                AmountError::NotWhole => "not_whole",
                AmountError::NotPositive => "not_positive",
                AmountError::OutOfRange { .. } => "out_of_range",
            };
            errors.push(FieldError::new(field, code, e.to_string()));
            None
        }
    }
}

pub fn phone_field(body: &JsonObject, field: &str, errors: &mut Vec<FieldError>) -> Option<Msisdn> {
    match body.get(field) {
        None => {
            errors.push(FieldError::new(field, "required", "phone is required"));
            None
        }
        Some(value) => match value.as_str().map(Msisdn::parse) {
            Some(Ok(phone)) => Some(phone),
            _ => {
                errors.push(FieldError::new(
                    field,
                    "invalid_phone",
                    "phone must be a Kenyan mobile number as a string, e.g. \"0712345678\" or \"+254712345678\"",
                ));
                None
            }
        },
    }
}

/// A text field parsed by `parse`; `None` when absent (and `required` is false).
pub fn text_field<T>(
    body: &JsonObject,
    field: &str,
    required: bool,
    parse: fn(&str) -> Result<T, TextError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let Some(value) = body.get(field) else {
        if required {
            errors.push(FieldError::new(field, "required", format!("{field} is required")));
        }
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
    match parse(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let code = match e {
                TextError::Length { .. } => "invalid_length",
                TextError::Characters { .. } => "invalid_characters",
            };
            errors.push(FieldError::new(field, code, format!("{field} {e}")));
            None
        }
    }
}

pub fn metadata_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Metadata {
    let Some(value) = body.get("metadata") else {
        return Metadata::default();
    };
    match Metadata::parse(value) {
        Ok(m) => m,
        Err(e) => {
            let code = match e {
                MetadataError::NotAStringMap => "invalid_type",
                MetadataError::TooManyKeys { .. } => "too_many_keys",
                MetadataError::InvalidKey { .. } => "invalid_key",
                MetadataError::ValueTooLong { .. } => "value_too_long",
            };
            errors.push(FieldError::new("metadata", code, e.to_string()));
            Metadata::default()
        }
    }
}

pub fn parse_new_payment(body: &JsonObject) -> Result<NewPayment, ApiError> {
    let mut errors = body.unknown_fields(FIELDS);
    let amount = amount_field(body, "amount", AmountLimits::STK_PUSH, &mut errors);
    let phone = phone_field(body, "phone", &mut errors);
    let reference = text_field(body, "reference", true, Reference::parse, &mut errors);
    let description = text_field(body, "description", false, Description::parse, &mut errors);
    let metadata = metadata_field(body, &mut errors);
    match (amount, phone, reference) {
        (Some(amount), Some(phone), Some(reference)) if errors.is_empty() => Ok(NewPayment {
            amount,
            phone,
            reference,
            description,
            metadata,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

pub fn idempotency_key(request: &ApiRequest) -> Result<IdempotencyKey, ApiError> {
    let value = request
        .headers
        .get("idempotency-key")
        .ok_or(ApiError::IdempotencyKeyMissing)?;
    let text = value.to_str().map_err(|_| ApiError::IdempotencyKeyInvalid)?;
    IdempotencyKey::parse(text).ok_or(ApiError::IdempotencyKeyInvalid)
}

pub async fn create(service: &PaymentsService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::PAYMENTS_WRITE).await?;
        let key = idempotency_key(&request)?;
        let body = request.json_object(MAX_BODY_BYTES)?;
        let new_payment = parse_new_payment(&body)?;
        initiate(service, &principal.merchant, &key, new_payment, &request.request_id).await
    })
    .await
}

/// Initiates a parsed payment through the idempotency edge: the use case claims the key and
/// stores [`initiation_response`] of the payment it leaves as the first response, and this
/// answers the same rendering; a key already taken is replayed, refused or taken over.
pub async fn initiate(
    service: &PaymentsService,
    client: &ClientId,
    key: &IdempotencyKey,
    new_payment: NewPayment,
    request_id: &str,
) -> Result<ApiResponse, ApiError> {
    let identity = RequestIdentity::new(
        client,
        Operation::CreatePayment,
        key,
        &payments::canonical(&new_payment),
    );
    let edge = IdempotencyEdge::new(service.table.as_ref(), identity);
    let render = |payment: &Payment| initiation_response(payment, request_id);
    let first_response = |payment: &Payment| stored(&render(payment));
    match service
        .initiate(client, edge.identity(), new_payment, &first_response)
        .await?
    {
        Claimed::Ran(initiated) if initiated.recorded => Ok(render(&initiated.payment)),
        // Daraja has answered but its answer (and this response) was not recorded: the callback
        // or the sweeper settles the payment. The caller still learns what Daraja said.
        Claimed::Ran(initiated) => {
            Ok(render(&initiated.payment).with_header("x-checkout-warning", "state-not-recorded"))
        }
        Claimed::Taken => {
            edge.resolve(
                service.clock.now(),
                |id| async move { service.recover(&id).await },
                &render,
            )
            .await
        }
    }
}

/// The HTTP answer for a payment after initiation: 202 with the payment, or the problem its
/// failure reads as.
pub fn initiation_response(payment: &Payment, request_id: &str) -> ApiResponse {
    match (payment.status, payment.failure_reason) {
        (PaymentStatus::Failed, Some(FailureReason::DarajaRejected)) => {
            let (code, message) = payment
                .result
                .as_ref()
                .map(|r| (r.code.as_str().to_owned(), r.description.clone()))
                .unwrap_or_default();
            ApiError::DarajaRejected {
                resource_id: payment.id.to_string(),
                code,
                message,
            }
            .to_response(request_id)
        }
        (PaymentStatus::Failed, Some(FailureReason::DarajaUnavailable)) => {
            let resource_id = payment.id.to_string();
            let rate_limited = payment
                .result
                .as_ref()
                .is_some_and(|r| [SPIKE_ARREST, QUOTA_VIOLATION].contains(&r.code.as_str()));
            if rate_limited {
                ApiError::DarajaRateLimited { resource_id }.to_response(request_id)
            } else {
                ApiError::DarajaUnavailable { resource_id }.to_response(request_id)
            }
        }
        // `pending`, `sent`, and `unknown` (the push may have reached the phone: 202, never 5xx,
        // so the merchant waits for the outcome instead of prompting again).
        _ => ApiResponse::json(StatusCode::ACCEPTED, &PaymentView::from(payment)),
    }
}

pub async fn get(repo: &PaymentRepo, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::PAYMENTS_READ, scopes::PAYMENTS_READ_ALL])
            .await?;
        let not_found = ApiError::NotFound { resource: "payment" };
        let id = request
            .path_param("id")
            .and_then(|id| PaymentId::parse(id).ok())
            .ok_or(not_found.clone())?;
        let payment = repo.get(&id).await.map_err(store_error)?.ok_or(not_found.clone())?;
        // Another merchant's payment is indistinguishable from a missing one.
        if !principal.may_act_for(&payment.owner) {
            return Err(not_found);
        }
        Ok(ApiResponse::json(StatusCode::OK, &PaymentView::from(&payment)))
    })
    .await
}

fn timestamp_param(
    request: &ApiRequest,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    Ok(match request.query_param(name)? {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    name,
                    "invalid_timestamp",
                    "use RFC 3339, e.g. 2026-11-21T00:00:00Z",
                ));
                None
            }
        },
    })
}

/// `limit` and `cursor`, shared by every list endpoint.
pub fn page_params(request: &ApiRequest, errors: &mut Vec<FieldError>) -> Result<(usize, Option<Cursor>), ApiError> {
    let limit = match request.query_param("limit")? {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("limit must be an integer from 1 to {MAX_PAGE}"),
                ));
                DEFAULT_PAGE
            }
        },
    };
    let cursor = match request.query_param("cursor")? {
        None => None,
        Some(text) => match Cursor::parse(text) {
            Some(c) => Some(c),
            None => {
                errors.push(FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "use the next_cursor of a previous page",
                ));
                None
            }
        },
    };
    Ok((limit, cursor))
}

/// Optional `from` and `to` bounds of a listing.
pub type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from` and `to` (RFC 3339), validated together.
pub fn range_params(request: &ApiRequest, errors: &mut Vec<FieldError>) -> Result<TimeRange, ApiError> {
    let from = timestamp_param(request, "from", errors)?;
    let to = timestamp_param(request, "to", errors)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errors.push(FieldError::new("from", "invalid_range", "from must not be after to"));
        }
    }
    Ok((from, to))
}

pub async fn list(repo: &PaymentRepo, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::PAYMENTS_READ, scopes::PAYMENTS_READ_ALL])
            .await?;
        request.only_query_params(&["status", "reference", "from", "to", "limit", "cursor"])?;
        let mut errors = Vec::new();
        let status = match request.query_param("status")? {
            None => None,
            Some(text) => {
                let parsed = PaymentStatus::parse(text);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "status",
                        "invalid_value",
                        "status must be one of pending, sent, completed, failed, cancelled, timeout",
                    ));
                }
                parsed
            }
        };
        let reference = match request.query_param("reference")? {
            None => None,
            Some(text) => match Reference::parse(text) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.push(FieldError::new("reference", "invalid_value", format!("reference {e}")));
                    None
                }
            },
        };
        let (from, to) = range_params(&request, &mut errors)?;
        let (limit, cursor) = page_params(&request, &mut errors)?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        // Every merchant's payments only for an operator reading all; otherwise the merchant's own.
        let owner = if principal.has_scope(scopes::PAYMENTS_READ_ALL) && principal.is_operator() {
            None
        } else {
            Some(principal.merchant.clone())
        };
        let filter = PaymentListFilter {
            owner,
            status,
            reference,
            from,
            to,
        };
        let page = repo.list(&filter, limit, cursor.as_ref()).await.map_err(store_error)?;
        let view = ListView {
            data: page.payments.iter().map(PaymentView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}
