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
use crate::api::http::{ApiRequest, ApiResponse, JsonObject};
use crate::api::payments::{amount_field, idempotency_key, metadata_field, MAX_BODY_BYTES};
use crate::api::problem::{ApiError, FieldError};
use crate::api::respond;
use crate::auth::scopes;
use crate::domain::c2b::AccountNumber;
use crate::domain::expected_payment::ExpectedAmount;
use crate::domain::ExpectedPaymentId;
use crate::repo::c2b as repo;
use crate::services::expected_payments::NewExpectedPayment;
use crate::services::payments::store_error;

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
            self.expected.create(&principal.merchant, &key, new).await
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
