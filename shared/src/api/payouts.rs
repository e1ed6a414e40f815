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
use serde::Serialize;

use super::auth::Authenticator;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::payments::{
    amount_field, idempotency_key, metadata_field, page_params, phone_field, range_params, text_field, MAX_BODY_BYTES,
};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::views::{timestamp, ListView, ResultView};
use crate::auth::scopes;
use crate::domain::msisdn::mask_phone_like;
use crate::domain::payout::{Approval, NewPayout, Payout, PayoutHistoryEntry};
use crate::domain::{
    AmountLimits, FailureCategory, Metadata, Occasion, PayoutFailureReason, PayoutId, PayoutKind, PayoutSource,
    PayoutStatus, Remarks,
};
use crate::repo::payouts::{PayoutListFilter, PayoutRepo};
use crate::services::payments::store_error;
use crate::services::payouts::PayoutsService;

const FIELDS: &[&str] = &["amount", "phone", "kind", "remarks", "occasion", "metadata"];

#[derive(Debug, Clone, Serialize)]
pub struct PayoutHistoryView {
    pub status: PayoutStatus,
    pub at: String,
    pub source: PayoutSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl From<&PayoutHistoryEntry> for PayoutHistoryView {
    fn from(h: &PayoutHistoryEntry) -> Self {
        PayoutHistoryView {
            status: h.status,
            at: timestamp(h.at),
            source: h.source,
            by: h.by.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub decision: crate::domain::ApprovalDecision,
    pub by: String,
    pub at: String,
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        ApprovalView {
            decision: a.decision,
            by: a.by.to_string(),
            at: timestamp(a.at),
        }
    }
}

/// What the API shows of a payout. The phone is masked, also inside `recipient_name`
/// (Safaricom sends `254712345678 - JANE DOE`).
#[derive(Debug, Clone, Serialize)]
pub struct PayoutView {
    pub id: String,
    pub object: &'static str,
    pub status: PayoutStatus,
    pub amount: u64,
    pub currency: &'static str,
    pub phone: String,
    pub kind: PayoutKind,
    pub remarks: String,
    pub occasion: Option<String>,
    pub metadata: Metadata,
    pub conversation_id: Option<String>,
    pub originator_conversation_id: String,
    pub mpesa_receipt: Option<String>,
    pub recipient_name: Option<String>,
    pub result: Option<ResultView>,
    pub failure_reason: Option<PayoutFailureReason>,
    /// `operator` (our configuration or float: never the recipient's fault), `recipient`, `unknown`.
    pub failure_category: Option<FailureCategory>,
    pub requires_approval: bool,
    pub approval: Option<ApprovalView>,
    pub submit_attempts: u32,
    /// Who created it (the token's `sub`): never its approver.
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<PayoutHistoryView>,
}

/// Masks runs of 9+ digits (phone numbers) inside free text.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\u{0}')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(&if digits.len() >= 9 {
            mask_phone_like(&digits)
        } else {
            digits.clone()
        });
        digits.clear();
        if c != '\u{0}' {
            out.push(c);
        }
    }
    out
}

impl From<&Payout> for PayoutView {
    fn from(p: &Payout) -> Self {
        PayoutView {
            id: p.id.to_string(),
            object: "payout",
            status: p.status,
            amount: p.amount.shillings(),
            currency: "KES",
            phone: p.phone.masked(),
            kind: p.kind,
            remarks: p.remarks.to_string(),
            occasion: p.occasion.as_ref().map(ToString::to_string),
            metadata: p.metadata.clone(),
            conversation_id: p.conversation_id.clone(),
            originator_conversation_id: p.originator_conversation_id().to_owned(),
            mpesa_receipt: p.mpesa_receipt.clone(),
            recipient_name: p.recipient_name.as_deref().map(mask_digit_runs),
            result: p.result.as_ref().map(ResultView::from),
            failure_reason: p.failure_reason,
            failure_category: p.failure_reason.map(PayoutFailureReason::category),
            requires_approval: p.requires_approval,
            approval: p.approval.as_ref().map(ApprovalView::from),
            submit_attempts: p.submit_attempts,
            created_by: p.creator().to_string(),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            history: p.history.iter().map(PayoutHistoryView::from).collect(),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_names_are_masked() {
        assert_eq!(mask_digit_runs("254712345678 - JANE DOE"), "2547****5678 - JANE DOE");
        assert_eq!(mask_digit_runs("JANE DOE"), "JANE DOE");
        assert_eq!(mask_digit_runs("600992 - Shop"), "600992 - Shop");
    }
}
