//! `POST /v1/payouts`, `GET /v1/payouts/{id}`, `GET /v1/payouts`,
//! `POST /v1/payouts/{id}/approve`, `POST /v1/payouts/{id}/reject`.
//!
//! Field rules (each failure is one entry in the problem's `errors`):
//! - `amount` (required): JSON integer, KES 10..=250000. Codes `required`, `not_an_integer`,
//!   `not_whole`, `not_positive`, `out_of_range`.
//! - `phone` (required): a Kenyan mobile number as people type it. Code `invalid_phone`.
//! - `kind` (required): `business_payment`, `salary_payment` or `promotion_payment` (Daraja's
//!   CommandIDs). Codes `required`, `invalid_type`, `invalid_value`.
//! - `remarks` (required): 2-100 characters of letters, digits, space and `- _ . , : / ( ) '`.
//!   Codes `required`, `invalid_type`, `invalid_length`, `invalid_characters`.
//! - `occasion` (optional): 1-100 characters, same alphabet.
//! - `metadata` (optional): as for payments.
//! - any other field: `unknown_field`.
//!
//! Scopes: `payouts:write` to create, `payouts:read` to read the merchant's payouts,
//! `payouts:approve` to approve/reject the merchant's payouts (any but one's own) and read them.
//! A payout belongs to the token's merchant (its `merchant` claim, else its `sub`); another
//! merchant's payout is a 404 unless the token also holds `platform:operator`.

use http::StatusCode;

use super::auth::Authenticator;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::payments::{
    amount_field, idempotency_key, metadata_field, page_params, phone_field, range_params, text_field, MAX_BODY_BYTES,
};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::views::ListView;
use crate::auth::scopes;
use crate::domain::payout::NewPayout;
use crate::domain::{AmountLimits, Occasion, PayoutId, PayoutKind, PayoutStatus, Remarks};
use crate::repo::payouts::{PayoutListFilter, PayoutRepo};
use crate::services::payments::store_error;
use crate::services::payouts::PayoutsService;
pub use crate::views::payout::{ApprovalView, PayoutHistoryView, PayoutView};

const FIELDS: &[&str] = &["amount", "phone", "kind", "remarks", "occasion", "metadata"];

fn kind_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<PayoutKind> {
    const ALLOWED: &str = "kind must be one of business_payment, salary_payment, promotion_payment";
    let Some(value) = body.get("kind") else {
        errors.push(FieldError::new("kind", "required", ALLOWED));
        return None;
    };
    let Some(text) = value.as_str() else {
        errors.push(FieldError::new("kind", "invalid_type", "kind must be a string"));
        return None;
    };
    let kind = PayoutKind::parse(text);
    if kind.is_none() {
        errors.push(FieldError::new("kind", "invalid_value", ALLOWED));
    }
    kind
}

pub fn parse_new_payout(body: &JsonObject) -> Result<NewPayout, ApiError> {
    let mut errors = body.unknown_fields(FIELDS);
    let amount = amount_field(body, "amount", AmountLimits::B2C, &mut errors);
    let phone = phone_field(body, "phone", &mut errors);
    let kind = kind_field(body, &mut errors);
    let remarks = text_field(body, "remarks", true, Remarks::parse, &mut errors);
    let occasion = text_field(body, "occasion", false, Occasion::parse, &mut errors);
    let metadata = metadata_field(body, &mut errors);
    match (amount, phone, kind, remarks) {
        (Some(amount), Some(phone), Some(kind), Some(remarks)) if errors.is_empty() => Ok(NewPayout {
            amount,
            phone,
            kind,
            remarks,
            occasion,
            metadata,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

pub async fn create(service: &PayoutsService, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::PAYOUTS_WRITE).await?;
        let key = idempotency_key(&request)?;
        let body = request.json_object(MAX_BODY_BYTES)?;
        let new_payout = parse_new_payout(&body)?;
        service.create(&principal, &key, new_payout).await
    })
    .await
}

fn payout_id(request: &ApiRequest) -> Result<PayoutId, ApiError> {
    request
        .path_param("id")
        .and_then(|id| PayoutId::parse(id).ok())
        .ok_or(ApiError::NotFound { resource: "payout" })
}

pub async fn get(repo: &PayoutRepo, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::PAYOUTS_READ, scopes::PAYOUTS_APPROVE])
            .await?;
        let not_found = ApiError::NotFound { resource: "payout" };
        let id = payout_id(&request)?;
        let payout = repo.get(&id).await.map_err(store_error)?.ok_or(not_found.clone())?;
        // Another merchant's payout is indistinguishable from a missing one (operators see all).
        if !principal.may_act_for(&payout.owner) {
            return Err(not_found);
        }
        Ok(ApiResponse::json(StatusCode::OK, &PayoutView::from(&payout)))
    })
    .await
}

pub async fn list(repo: &PayoutRepo, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth
            .require_any(&request, &[scopes::PAYOUTS_READ, scopes::PAYOUTS_APPROVE])
            .await?;
        request.only_query_params(&["status", "kind", "from", "to", "limit", "cursor"])?;
        let mut errors = Vec::new();
        let status = match request.query_param("status")? {
            None => None,
            Some(text) => {
                let parsed = PayoutStatus::parse(text);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "status",
                        "invalid_value",
                        "status must be one of awaiting_approval, pending, sent, unknown, completed, failed, rejected",
                    ));
                }
                parsed
            }
        };
        let kind = match request.query_param("kind")? {
            None => None,
            Some(text) => {
                let parsed = PayoutKind::parse(text);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "kind",
                        "invalid_value",
                        "kind must be one of business_payment, salary_payment, promotion_payment",
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
        // Every merchant's payouts only for an operator; otherwise the merchant's own.
        let owner = if principal.is_operator() {
            None
        } else {
            Some(principal.merchant.clone())
        };
        let filter = PayoutListFilter {
            owner,
            status,
            kind,
            from,
            to,
        };
        let page = repo.list(&filter, limit, cursor.as_ref()).await.map_err(store_error)?;
        let view = ListView {
            data: page.payouts.iter().map(PayoutView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}

/// `POST /v1/payouts/{id}/approve` (`approve` true) or `/reject`: scope `payouts:approve`, by a
/// principal other than the payout's creator. No body.
pub async fn review(service: &PayoutsService, auth: &Authenticator, request: ApiRequest, approve: bool) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::PAYOUTS_APPROVE).await?;
        let id = payout_id(&request)?;
        service.review(&principal, &id, approve).await
    })
    .await
}
