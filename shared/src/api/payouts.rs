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
use super::errors::store_error;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::idempotency_edge::{stored, IdempotencyEdge};
use super::payments::{
    amount_field, idempotency_key, metadata_field, page_params, phone_field, range_params, text_field, MAX_BODY_BYTES,
};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::views::ListView;
use crate::auth::{scopes, Principal};
use crate::domain::payout::{NewPayout, Payout};
use crate::domain::{AmountLimits, Occasion, PayoutId, PayoutKind, PayoutStatus, Remarks};
use crate::idempotency::{Claimed, IdempotencyKey, Operation, RequestIdentity};
use crate::repo::payouts::{PayoutListFilter, PayoutRepo};
use crate::services::payouts::{self as payouts, PayoutRecorded, PayoutsService};
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
        create_payout(service, &principal, &key, new_payout).await
    })
    .await
}

/// The answer for a created payout: 202 with the payout. The use case stores it (status and
/// body) as the first response.
fn created_response(payout: &Payout) -> ApiResponse {
    ApiResponse::json(StatusCode::ACCEPTED, &PayoutView::from(payout))
}

/// Marks an answer whose payout job the queue did not take (the sweeper will queue it): a
/// warning of this answer only, never replayed.
fn deferred_if(response: ApiResponse, recorded: &PayoutRecorded) -> ApiResponse {
    if recorded.enqueue_deferred {
        response.with_header("x-checkout-warning", "enqueue-deferred")
    } else {
        response
    }
}

/// Creates a parsed payout through the idempotency edge (see [`super::idempotency_edge`]).
pub async fn create_payout(
    service: &PayoutsService,
    principal: &Principal,
    key: &IdempotencyKey,
    new_payout: NewPayout,
) -> Result<ApiResponse, ApiError> {
    let identity = RequestIdentity::new(
        &principal.merchant,
        Operation::CreatePayout,
        key,
        &payouts::canonical(&new_payout),
    );
    let edge = IdempotencyEdge::new(service.table.as_ref(), identity);
    let first_response = |payout: &Payout| stored(&created_response(payout));
    let answer = |recorded: &PayoutRecorded| deferred_if(created_response(&recorded.payout), recorded);
    match service
        .create(principal, edge.identity(), new_payout, &first_response)
        .await?
    {
        Claimed::Ran(recorded) => Ok(answer(&recorded)),
        Claimed::Taken => {
            edge.resolve(
                service.clock.now(),
                |id| async move { service.recover(&id).await },
                answer,
            )
            .await
        }
    }
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
        let reviewed = service.review(&principal, &id, approve).await?;
        Ok(deferred_if(
            ApiResponse::json(StatusCode::OK, &PayoutView::from(&reviewed.payout)),
            &reviewed,
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use http::Method;
    use serde_json::{json, Value};

    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::domain::ClientId;
    use crate::idempotency::{self, RecordState};
    use crate::queue::{Message, Queue, QueueError};
    use crate::secrets::{SecretCache, StaticSecret};
    use crate::services::payouts::PayoutsConfig;
    use crate::store::memory::MemoryTable;
    use crate::store::Table;

    /// A queue that takes nothing: every payout's job is deferred to the sweeper.
    struct DownQueue;

    #[async_trait]
    impl Queue for DownQueue {
        async fn send(&self, _body: &str) -> Result<String, QueueError> {
            Err(QueueError::Unavailable("down".into()))
        }
        async fn receive(&self, _max: usize, _wait: Duration) -> Result<Vec<Message>, QueueError> {
            Ok(Vec::new())
        }
        async fn ack(&self, _receipt: &str) -> Result<(), QueueError> {
            Ok(())
        }
        async fn depth(&self) -> Result<u64, QueueError> {
            Ok(0)
        }
    }

    fn service(table: Arc<dyn Table>) -> PayoutsService {
        let secrets = json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": "payouts-edge-test-key-0123456789abcdef",
            "b2c_shortcode": "600000",
        });
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        PayoutsService {
            repo: PayoutRepo::new(table.clone()),
            table,
            queue: Arc::new(DownQueue),
            secrets: Arc::new(SecretCache::new(
                Arc::new(StaticSecret(secrets.to_string())),
                Duration::from_secs(3600),
            )),
            clock,
            config: PayoutsConfig::default(),
            limits: None,
        }
    }

    fn payout(amount: u64) -> NewPayout {
        let mut request = ApiRequest::new(Method::POST, "/v1/payouts");
        request
            .headers
            .insert("content-type", "application/json".parse().unwrap());
        request.body =
            json!({"amount": amount, "phone": "0712345678", "kind": "business_payment", "remarks": "Refund"})
                .to_string()
                .into();
        parse_new_payout(&request.json_object(MAX_BODY_BYTES).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn the_stored_first_response_is_the_answer_without_its_one_time_warning() {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let service = service(table.clone());
        let principal = Principal {
            client: ClientId::parse("clerk-1").unwrap(),
            merchant: ClientId::parse("merchant-a").unwrap(),
            scopes: BTreeSet::new(),
        };
        let key = IdempotencyKey::parse("payout-1").unwrap();
        let first = create_payout(&service, &principal, &key, payout(500)).await.unwrap();
        assert_eq!(first.status, StatusCode::ACCEPTED);
        assert_eq!(first.headers["x-checkout-warning"], "enqueue-deferred");

        let record_key = idempotency::record_key(&principal.merchant, Operation::CreatePayout, &key);
        let record = idempotency::from_item(&table.get(&record_key).await.unwrap().unwrap()).unwrap();
        let RecordState::Completed { status, body } = record.state else {
            panic!("the first response is stored");
        };
        assert_eq!((status, body.as_bytes()), (202, first.body.as_ref()));

        let replay = create_payout(&service, &principal, &key, payout(500)).await.unwrap();
        assert_eq!((replay.status, &replay.body), (first.status, &first.body));
        assert_eq!(replay.headers["idempotent-replayed"], "true");
        assert!(!replay.headers.contains_key("x-checkout-warning"));

        let reused = create_payout(&service, &principal, &key, payout(501))
            .await
            .unwrap_err();
        assert_eq!(reused, ApiError::IdempotencyKeyReused);
        let body: Value = first.body_json().unwrap();
        let id = PayoutId::parse(body["id"].as_str().unwrap()).unwrap();
        assert!(
            service.repo.get(&id).await.unwrap().is_some(),
            "the payout, created once"
        );
    }
}
