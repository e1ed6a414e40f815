//! Expected payments: `POST /v1/c2b/expected-payments` (`c2b:write`, `Idempotency-Key`) and
//! `GET /v1/c2b/expected-payments/{id}` (`c2b:read`).
//!
//! Expected-payment fields:
//! - `shortcode` (required; one registered for the caller: `unknown_shortcode`).
//! - `account_number` (required): 1-20 letters, digits, spaces, `- _ . /`, matched
//!   case-insensitively; must fit the shortcode's `account_pattern` (`pattern_mismatch`). One live
//!   expected payment per account number and shortcode: `409 account_number_in_use`.
//! - `amount` (required): `{"rule": "exact"|"minimum", "value": 500}` or `{"rule": "open"}`.
//! - `expires_at` (optional, RFC 3339, future, within 366 days; default 30 days): `in_the_past`,
//!   `out_of_range`, `invalid_timestamp`.
//! - `metadata` (optional): as for payments.

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::fields::{shortcode_field, string_field, C2B_AMOUNTS};
use super::C2bApi;
use crate::api::auth::Authenticator;
use crate::api::c2b_views::ExpectedPaymentView;
use crate::api::errors::store_error;
use crate::api::http::{ApiRequest, ApiResponse, JsonObject};
use crate::api::idempotency_edge::{stored, IdempotencyEdge};
use crate::api::payments::{amount_field, idempotency_key, metadata_field, MAX_BODY_BYTES};
use crate::api::problem::{ApiError, FieldError};
use crate::api::respond;
use crate::auth::scopes;
use crate::domain::c2b::AccountNumber;
use crate::domain::expected_payment::ExpectedAmount;
use crate::domain::ClientId;
use crate::domain::ExpectedPaymentId;
use crate::idempotency::{Claimed, IdempotencyKey, Operation, RequestIdentity};
use crate::repo::c2b as repo;
use crate::services::c2b::expected_payments::{
    self as expected_payments, ExpectedPaymentCreated, ExpectedPaymentsService, NewExpectedPayment,
};

const EXPECTED_FIELDS: &[&str] = &["shortcode", "account_number", "amount", "expires_at", "metadata"];

fn account_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<AccountNumber> {
    let Some(text) = string_field(body, "account_number", errors) else {
        if body.get("account_number").is_none() {
            errors.push(FieldError::new(
                "account_number",
                "required",
                "account_number is required",
            ));
        }
        return None;
    };
    match AccountNumber::parse(text) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(FieldError::new(
                "account_number",
                "invalid_account_number",
                format!("account_number {e}"),
            ));
            None
        }
    }
}

fn expected_amount_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<ExpectedAmount> {
    let Some(amount) = body.object("amount") else {
        errors.push(FieldError::new(
            "amount",
            "required",
            "amount is required, e.g. {\"rule\": \"exact\", \"value\": 500}",
        ));
        return None;
    };
    let Ok(amount) = amount else {
        errors.push(FieldError::new(
            "amount",
            "invalid_type",
            "amount must be an object: {\"rule\": \"exact\"|\"minimum\"|\"open\", \"value\": 500}",
        ));
        return None;
    };
    for mut unknown in amount.unknown_fields(&["rule", "value"]) {
        unknown.field = format!("amount.{}", unknown.field);
        errors.push(unknown);
    }
    let rule = match amount.get("rule").map(|r| r.as_str()) {
        None => {
            errors.push(FieldError::new("amount.rule", "required", "amount.rule is required"));
            return None;
        }
        Some(Some(rule @ ("exact" | "minimum" | "open"))) => rule,
        Some(_) => {
            errors.push(FieldError::new(
                "amount.rule",
                "invalid_value",
                "amount.rule must be one of exact, minimum, open",
            ));
            return None;
        }
    };
    if rule == "open" {
        if amount.get("value").is_some() {
            errors.push(FieldError::new(
                "amount.value",
                "unexpected_field",
                "an open amount takes no value",
            ));
            return None;
        }
        return Some(ExpectedAmount::Open);
    }
    let mut found = Vec::new();
    let value = amount_field(&amount, "value", C2B_AMOUNTS, &mut found);
    errors.extend(found.into_iter().map(|mut e| {
        e.field = "amount.value".into();
        e
    }));
    let value = value?;
    Some(if rule == "exact" {
        ExpectedAmount::Exact { value }
    } else {
        ExpectedAmount::Minimum { value }
    })
}

pub fn parse_expected_payment(body: &JsonObject) -> Result<NewExpectedPayment, ApiError> {
    let mut errors = body.unknown_fields(EXPECTED_FIELDS);
    let shortcode = shortcode_field(body, &mut errors);
    let account_number = account_field(body, &mut errors);
    let amount = expected_amount_field(body, &mut errors);
    let expires_at = match string_field(body, "expires_at", &mut errors) {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new(
                    "expires_at",
                    "invalid_timestamp",
                    "use RFC 3339, e.g. 2026-12-31T23:59:59Z",
                ));
                None
            }
        },
    };
    let metadata = metadata_field(body, &mut errors);
    match (shortcode, account_number, amount) {
        (Some(shortcode), Some(account_number), Some(amount)) if errors.is_empty() => Ok(NewExpectedPayment {
            shortcode,
            account_number,
            amount,
            expires_at,
            metadata,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

impl C2bApi {
    pub async fn create_expected(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_WRITE).await?;
            let key = idempotency_key(&request)?;
            let body = request.json_object(MAX_BODY_BYTES)?;
            let new = parse_expected_payment(&body)?;
            create_expected_payment(&self.expected, &principal.merchant, &key, new).await
        })
        .await
    }

    pub async fn get_expected(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_READ).await?;
            let not_found = ApiError::NotFound {
                resource: "expected payment",
            };
            let id = request
                .path_param("id")
                .and_then(|id| ExpectedPaymentId::parse(id).ok())
                .ok_or(not_found.clone())?;
            let expected = repo::get_expected(self.table.as_ref(), &id)
                .await
                .map_err(store_error)?
                .ok_or(not_found.clone())?;
            if !principal.may_act_for(&expected.owner) {
                return Err(not_found);
            }
            Ok(ApiResponse::json(
                StatusCode::OK,
                &ExpectedPaymentView::new(&expected, self.clock.now()),
            ))
        })
        .await
    }
}

/// The answer for a created expected payment: 201 with it, as of its creation.
fn expected_created_response(created: &ExpectedPaymentCreated) -> ApiResponse {
    ApiResponse::json(
        StatusCode::CREATED,
        &ExpectedPaymentView::new(&created.expected, created.as_of),
    )
}

/// Creates a parsed expected payment through the idempotency edge (see
/// [`super::idempotency_edge`]).
pub async fn create_expected_payment(
    service: &ExpectedPaymentsService,
    client: &ClientId,
    key: &IdempotencyKey,
    new: NewExpectedPayment,
) -> Result<ApiResponse, ApiError> {
    let identity = RequestIdentity::new(
        client,
        Operation::CreateExpectedPayment,
        key,
        &expected_payments::canonical(&new),
    );
    let edge = IdempotencyEdge::new(service.table.as_ref(), identity);
    let first_response = |created: &ExpectedPaymentCreated| stored(&expected_created_response(created));
    match service.create(client, edge.identity(), new, &first_response).await? {
        Claimed::Ran(created) => Ok(expected_created_response(&created)),
        Claimed::Taken => {
            edge.resolve(
                service.clock.now(),
                |id| async move { service.recover(&id).await },
                expected_created_response,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::c2b::test_support::{codes, object};
    use serde_json::json;

    #[test]
    fn expected_payment_fields() {
        let ok = parse_expected_payment(&object(json!({
            "shortcode": "600984", "account_number": " inv-2231 ", "amount": {"rule": "exact", "value": 500},
            "expires_at": "2026-12-31T23:59:59Z", "metadata": {"order": "A-1"}
        })))
        .unwrap();
        assert_eq!(ok.account_number.as_str(), "INV-2231");
        assert_eq!(
            ok.amount,
            ExpectedAmount::Exact {
                value: crate::domain::Amount::new(500).unwrap()
            }
        );
        assert!(ok.expires_at.is_some());
        let open = parse_expected_payment(&object(
            json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "open"}}),
        ))
        .unwrap();
        assert_eq!((open.amount, open.expires_at), (ExpectedAmount::Open, None));
        let cases = [
            (
                json!({"account_number": "A", "amount": {"rule": "open"}}),
                ("shortcode", "required"),
            ),
            (
                json!({"shortcode": "600984", "amount": {"rule": "open"}}),
                ("account_number", "required"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A#1", "amount": {"rule": "open"}}),
                ("account_number", "invalid_account_number"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A"}),
                ("amount", "required"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": 500}),
                ("amount", "invalid_type"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"value": 5}}),
                ("amount.rule", "required"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "most"}}),
                ("amount.rule", "invalid_value"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "exact"}}),
                ("amount.value", "required"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "exact", "value": 500.5}}),
                ("amount.value", "not_whole"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "minimum", "value": "500"}}),
                ("amount.value", "not_an_integer"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "exact", "value": 250001}}),
                ("amount.value", "out_of_range"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "open", "value": 1}}),
                ("amount.value", "unexpected_field"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "open", "x": 1}}),
                ("amount.x", "unknown_field"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "open"}, "expires_at": "tomorrow"}),
                ("expires_at", "invalid_timestamp"),
            ),
            (
                json!({"shortcode": "600984", "account_number": "A", "amount": {"rule": "open"}, "metadata": [1]}),
                ("metadata", "invalid_type"),
            ),
        ];
        for (body, (field, code)) in cases {
            let found = codes(parse_expected_payment(&object(body.clone())).unwrap_err());
            assert!(found.iter().any(|(f, c)| f == field && *c == code), "{body}: {found:?}");
        }
    }
}

#[cfg(test)]
mod expected_payment_edge_tests {
    use serde_json::{json, Value};

    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::c2b::{
        C2bRules, C2bVersion, DarajaRegistration, DefaultDecision, RegistrationStatus, ResponseType, Shortcode,
        ShortcodeConfig,
    };
    use crate::idempotency::{self, RecordState};
    use crate::store::memory::MemoryTable;
    use crate::store::Table;

    fn merchant() -> ClientId {
        ClientId::parse("merchant-a").unwrap()
    }

    async fn service() -> ExpectedPaymentsService {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let now = Utc::now();
        let config = ShortcodeConfig {
            shortcode: Shortcode::parse("600984").unwrap(),
            owner: merchant(),
            api_version: C2bVersion::V2,
            response_type: ResponseType::Completed,
            default_decision: DefaultDecision::Accept,
            rules: C2bRules::default(),
            validation_url: String::new(),
            confirmation_url: String::new(),
            registration: DarajaRegistration {
                status: RegistrationStatus::Registered,
                response_code: None,
                response_description: None,
                originator_conversation_id: None,
                at: now,
            },
            verification: Default::default(),
            tokens: Default::default(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        table.write(vec![repo::put_config(&config)]).await.unwrap();
        ExpectedPaymentsService {
            table,
            clock: Arc::new(SystemClock),
            idempotency_lock: chrono::Duration::seconds(60),
        }
    }

    fn expected(account: &str, value: u64) -> NewExpectedPayment {
        NewExpectedPayment {
            shortcode: Shortcode::parse("600984").unwrap(),
            account_number: AccountNumber::parse(account).unwrap(),
            amount: ExpectedAmount::Exact {
                value: crate::domain::Amount::new(value).unwrap(),
            },
            expires_at: None,
            metadata: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_stored_first_response_is_the_answer_and_replays_as_it() {
        let service = service().await;
        let key = IdempotencyKey::parse("invoice-1").unwrap();
        let first = create_expected_payment(&service, &merchant(), &key, expected("INV-1", 500))
            .await
            .unwrap();
        assert_eq!(first.status, StatusCode::CREATED);
        let record_key = idempotency::record_key(&merchant(), Operation::CreateExpectedPayment, &key);
        let item = service.table.get(&record_key).await.unwrap().unwrap();
        let RecordState::Completed { status, body } = idempotency::from_item(&item).unwrap().state else {
            panic!("the first response is stored");
        };
        assert_eq!((status, body.as_bytes()), (201, first.body.as_ref()));

        let replay = create_expected_payment(&service, &merchant(), &key, expected("inv-1", 500))
            .await
            .unwrap();
        assert_eq!((replay.status, &replay.body), (first.status, &first.body));
        assert_eq!(replay.headers["idempotent-replayed"], "true");
        let reused = create_expected_payment(&service, &merchant(), &key, expected("INV-1", 501)).await;
        assert_eq!(reused.unwrap_err(), ApiError::IdempotencyKeyReused);
    }

    #[tokio::test]
    async fn use_case_refusals_read_as_before() {
        let service = service().await;
        let first = IdempotencyKey::parse("invoice-1").unwrap();
        create_expected_payment(&service, &merchant(), &first, expected("INV-1", 500))
            .await
            .unwrap();
        let other = IdempotencyKey::parse("invoice-2").unwrap();
        let taken = create_expected_payment(&service, &merchant(), &other, expected("INV-1", 700))
            .await
            .unwrap_err()
            .to_response("r");
        assert_eq!(taken.status, StatusCode::CONFLICT);
        let body: Value = taken.body_json().unwrap();
        assert_eq!(body["code"], "account_number_in_use");
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .starts_with("account number INV-1 already has an open expected payment (exp_"));

        let mut late = expected("INV-2", 500);
        late.expires_at = Some(Utc::now() + chrono::Duration::days(400));
        let error = create_expected_payment(&service, &merchant(), &other, late)
            .await
            .unwrap_err();
        let body: Value = error.to_response("r").body_json().unwrap();
        assert_eq!(
            body["errors"],
            json!([{"field": "expires_at", "code": "out_of_range", "message": "expires_at must be within 366 days"}])
        );
        let stranger = ClientId::parse("merchant-b").unwrap();
        let error = create_expected_payment(&service, &stranger, &other, expected("INV-3", 500))
            .await
            .unwrap_err();
        let body: Value = error.to_response("r").body_json().unwrap();
        assert_eq!(body["errors"][0]["code"], "unknown_shortcode");
    }
}
