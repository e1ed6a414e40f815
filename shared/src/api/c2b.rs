//! C2B over HTTP: paybill and till payments customers start themselves.
//!
//! Merchant and admin routes (problem+json errors, stable codes):
//! - `POST /v1/c2b/registrations` (`c2b:admin`): registers the shortcode's validation and
//!   confirmation URLs with Daraja and stores its rules. Repeating it replaces the rules.
//! - `POST /v1/c2b/expected-payments` (`c2b:write`, `Idempotency-Key`), `GET /v1/c2b/expected-payments/{id}`
//!   (`c2b:read`).
//! - `GET /v1/c2b/payments/{id}`, `GET /v1/c2b/payments` (`c2b:read`; filters `shortcode`,
//!   `account_number`, `from`, `to`; `limit`, `cursor`).
//!
//! A merchant sees only the shortcodes registered for it (`owner`: the token's merchant, i.e. its
//! `merchant` claim, else its `sub`); another merchant's shortcode, payment or expected payment is
//! a 404, and registering another merchant's shortcode a `409 shortcode_registered_elsewhere`,
//! unless the token holds `platform:operator`.
//!
//! Safaricom-facing routes (Daraja's formats, always HTTP 200 unless the body is refused):
//! - `POST /c2b/validation/{token}`: accept `{"ResultCode":"0","ResultDesc":"Accepted"}` or reject
//!   with `C2B00011`..`C2B00016`.
//! - `POST /c2b/confirmation/{token}`: queued durably, then `{"ResultCode":0,"ResultDesc":"Success"}`.
//!
//! Registration fields (each failure one entry in `errors`):
//! - `shortcode` (required): 5-7 digits. Codes `required`, `invalid_shortcode`.
//! - `version`: `v2` (default, masked MSISDNs) or `v1` (hashed MSISDNs). `response_type`:
//!   `Completed` (default) or `Cancelled`. `default_decision`: `accept` (default) or `reject`.
//!   `owner`: the merchant the shortcode belongs to (default the caller's; another one only with
//!   `platform:operator`: `owner_not_allowed`). Code `invalid_value`.
//! - `verification`: `transaction_status` (default) or `trust_confirmation` (audited opt-in).
//!   `rotate_token` (boolean): new URLs, the previous ones working for a grace period.
//! - `rules` (object): `account_pattern` (regular expression the whole account number must match,
//!   case-insensitive, at most 200 characters: `invalid_pattern`, `pattern_too_long`),
//!   `require_expected_payment` and `require_payer_name` (booleans), `min_amount`/`max_amount`
//!   (integers 1..=250000, as `amount` elsewhere; `invalid_range` if min > max), and the lists
//!   `allowed_accounts`, `denied_accounts`, `blocked_msisdns`, `blocked_payer_names` (arrays of
//!   at most 1000 strings of at most 100 characters: `too_many_entries`, `invalid_entry`,
//!   `invalid_account_number`).
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

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};

use super::auth::Authenticator;
pub use super::c2b_views::{
    AppliedPaymentView, C2bPaymentView, DarajaRegistrationView, ExpectedAmountView, ExpectedPaymentView, MatchView,
    RegistrationView,
};
use super::callbacks::{receive, C2B_CONFIRMATION_ACK};
use super::errors::store_error;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::idempotency_edge::{stored, IdempotencyEdge};
use super::payments::{amount_field, idempotency_key, metadata_field, page_params, range_params, MAX_BODY_BYTES};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::routes::{match_route, RouteId, RouteMatch};
use super::views::ListView;
use crate::auth::{scopes, Principal};
use crate::clock::Clock;
use crate::domain::c2b::{
    normalise_name, AccountNumber, C2bRules, C2bVersion, DefaultDecision, ResponseType, RulesError, Shortcode,
};
use crate::domain::c2b_verification::{VerificationMethod, VerificationStatus};
use crate::domain::expected_payment::ExpectedAmount;
use crate::domain::{AmountLimits, C2bPaymentId, ClientId, ExpectedPaymentId};
use crate::idempotency::{Claimed, IdempotencyKey, Operation, RequestIdentity};
use crate::repo::c2b::{self as repo, C2bListFilter, C2bScope};
use crate::services::c2b_registration::{C2bRegistrar, RegistrationRequest};
use crate::services::c2b_validation::C2bValidator;
use crate::services::callback_intake::{CallbackIntake, CallbackKind};
use crate::services::expected_payments::{
    self as expected_payments, ExpectedPaymentCreated, ExpectedPaymentsService, NewExpectedPayment,
};
use crate::store::Table;

const C2B_AMOUNTS: AmountLimits = AmountLimits {
    min: 1,
    max: crate::domain::amount::MAX_TRANSACTION_KES,
};

// ------------------------------------------------------------------ request parsing

fn string_field<'a>(body: &'a JsonObject, field: &str, errors: &mut Vec<FieldError>) -> Option<&'a str> {
    let value = body.get(field)?;
    match value.as_str() {
        Some(text) => Some(text),
        None => {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                format!("{field} must be a string"),
            ));
            None
        }
    }
}

fn shortcode_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<Shortcode> {
    let Some(text) = string_field(body, "shortcode", errors) else {
        if body.get("shortcode").is_none() {
            errors.push(FieldError::new("shortcode", "required", "shortcode is required"));
        }
        return None;
    };
    match Shortcode::parse(text) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(FieldError::new(
                "shortcode",
                "invalid_shortcode",
                format!("{e}, given as a string"),
            ));
            None
        }
    }
}

fn choice<T>(
    body: &JsonObject,
    field: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = string_field(body, field, errors)?;
    let parsed = parse(text);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            format!("{field} must be one of {allowed}"),
        ));
    }
    parsed
}

fn bool_field(body: &JsonObject, field: &str, name: &str, errors: &mut Vec<FieldError>) -> bool {
    match body.get(field) {
        None => false,
        Some(value) => value.as_bool().unwrap_or_else(|| {
            errors.push(FieldError::new(
                name,
                "invalid_type",
                format!("{name} must be true or false"),
            ));
            false
        }),
    }
}

fn list_field(body: &JsonObject, field: &str, name: &str, errors: &mut Vec<FieldError>) -> Vec<String> {
    let Some(value) = body.get(field) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        errors.push(FieldError::new(
            name,
            "invalid_type",
            format!("{name} must be an array of strings"),
        ));
        return Vec::new();
    };
    if items.len() > C2bRules::MAX_LIST_ENTRIES {
        errors.push(FieldError::new(
            name,
            "too_many_entries",
            format!("{name} may hold at most {} entries", C2bRules::MAX_LIST_ENTRIES),
        ));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str().map(str::trim) {
            Some(text) if !text.is_empty() && text.chars().count() <= C2bRules::MAX_ENTRY_CHARS => {
                out.push(text.to_owned())
            }
            _ => {
                errors.push(FieldError::new(
                    name,
                    "invalid_entry",
                    format!(
                        "{name} entries are non-empty strings of at most {} characters",
                        C2bRules::MAX_ENTRY_CHARS
                    ),
                ));
                return Vec::new();
            }
        }
    }
    out
}

fn accounts(entries: Vec<String>, name: &str, errors: &mut Vec<FieldError>) -> BTreeSet<AccountNumber> {
    let mut set = BTreeSet::new();
    for entry in entries {
        match AccountNumber::parse(&entry) {
            Ok(a) => {
                set.insert(a);
            }
            Err(e) => {
                errors.push(FieldError::new(
                    name,
                    "invalid_account_number",
                    format!("{entry:?}: account numbers {e}"),
                ));
                return BTreeSet::new();
            }
        }
    }
    set
}

const RULE_FIELDS: &[&str] = &[
    "account_pattern",
    "require_expected_payment",
    "min_amount",
    "max_amount",
    "allowed_accounts",
    "denied_accounts",
    "blocked_msisdns",
    "blocked_payer_names",
    "require_payer_name",
];

/// Parses `rules`; field names in errors are `rules.<field>`.
pub fn parse_rules(body: &JsonObject, errors: &mut Vec<FieldError>) -> C2bRules {
    let Some(rules) = body.object("rules") else {
        return C2bRules::default();
    };
    let Ok(rules) = rules else {
        errors.push(FieldError::new("rules", "invalid_type", "rules must be an object"));
        return C2bRules::default();
    };
    for mut unknown in rules.unknown_fields(RULE_FIELDS) {
        unknown.field = format!("rules.{}", unknown.field);
        errors.push(unknown);
    }
    let before = errors.len();
    let amount = |field: &str, errors: &mut Vec<FieldError>| {
        rules.raw(field).filter(|r| r.trim() != "null")?;
        let mut found = Vec::new();
        let parsed = amount_field(&rules, field, C2B_AMOUNTS, &mut found);
        errors.extend(found.into_iter().map(|mut e| {
            e.field = format!("rules.{field}");
            e
        }));
        parsed
    };
    let parsed = C2bRules {
        account_pattern: string_field(&rules, "account_pattern", errors).map(str::to_owned),
        require_expected_payment: bool_field(
            &rules,
            "require_expected_payment",
            "rules.require_expected_payment",
            errors,
        ),
        min_amount: amount("min_amount", errors),
        max_amount: amount("max_amount", errors),
        allowed_accounts: accounts(
            list_field(&rules, "allowed_accounts", "rules.allowed_accounts", errors),
            "rules.allowed_accounts",
            errors,
        ),
        denied_accounts: accounts(
            list_field(&rules, "denied_accounts", "rules.denied_accounts", errors),
            "rules.denied_accounts",
            errors,
        ),
        blocked_msisdns: list_field(&rules, "blocked_msisdns", "rules.blocked_msisdns", errors)
            .into_iter()
            .collect(),
        blocked_payer_names: list_field(&rules, "blocked_payer_names", "rules.blocked_payer_names", errors)
            .iter()
            .map(|n| normalise_name(n))
            .collect(),
        require_payer_name: bool_field(&rules, "require_payer_name", "rules.require_payer_name", errors),
    };
    // Field names inside `rules` that came from shared helpers are already prefixed above.
    for e in errors[before..].iter_mut() {
        if e.field == "account_pattern" {
            e.field = "rules.account_pattern".into();
        }
    }
    match parsed.compile() {
        Ok(_) => {}
        Err(RulesError::PatternTooLong) => errors.push(FieldError::new(
            "rules.account_pattern",
            "pattern_too_long",
            RulesError::PatternTooLong.to_string(),
        )),
        Err(RulesError::InvalidPattern) => errors.push(FieldError::new(
            "rules.account_pattern",
            "invalid_pattern",
            RulesError::InvalidPattern.to_string(),
        )),
        Err(RulesError::AmountBounds) => errors.push(FieldError::new(
            "rules.min_amount",
            "invalid_range",
            RulesError::AmountBounds.to_string(),
        )),
    }
    parsed
}

const REGISTRATION_FIELDS: &[&str] = &[
    "shortcode",
    "version",
    "response_type",
    "default_decision",
    "owner",
    "rules",
    "verification",
    "rotate_token",
];

/// Parses a registration body; `owner` defaults to `caller`.
pub fn parse_registration(body: &JsonObject, caller: &ClientId) -> Result<RegistrationRequest, ApiError> {
    let mut errors = body.unknown_fields(REGISTRATION_FIELDS);
    let shortcode = shortcode_field(body, &mut errors);
    let api_version = choice(
        body,
        "version",
        |v| match v {
            "v1" => Some(C2bVersion::V1),
            "v2" => Some(C2bVersion::V2),
            _ => None,
        },
        "v1, v2",
        &mut errors,
    );
    let response_type = choice(
        body,
        "response_type",
        |v| match v {
            "Completed" => Some(ResponseType::Completed),
            "Cancelled" => Some(ResponseType::Cancelled),
            _ => None,
        },
        "Completed, Cancelled (exactly so spelled)",
        &mut errors,
    );
    let default_decision = choice(
        body,
        "default_decision",
        DefaultDecision::parse,
        "accept, reject",
        &mut errors,
    );
    let owner = match string_field(body, "owner", &mut errors) {
        None => Some(caller.clone()),
        Some(text) => match ClientId::parse(text) {
            Ok(owner) => Some(owner),
            Err(e) => {
                errors.push(FieldError::new("owner", "invalid_value", format!("owner {e}")));
                None
            }
        },
    };
    let rules = parse_rules(body, &mut errors);
    let verification = choice(
        body,
        "verification",
        VerificationMethod::parse,
        "transaction_status, trust_confirmation",
        &mut errors,
    );
    let rotate_token = bool_field(body, "rotate_token", "rotate_token", &mut errors);
    match (shortcode, owner) {
        (Some(shortcode), Some(owner)) if errors.is_empty() => Ok(RegistrationRequest {
            shortcode,
            owner,
            api_version: api_version.unwrap_or_default(),
            response_type: response_type.unwrap_or_default(),
            default_decision: default_decision.unwrap_or_default(),
            rules,
            verification: verification.unwrap_or_default(),
            rotate_token,
            by: caller.clone(),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

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

// ------------------------------------------------------------------ handlers

/// Everything the `c2b-api` function serves.
pub struct C2bApi {
    pub registrar: C2bRegistrar,
    pub expected: ExpectedPaymentsService,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

/// Whether `principal` may see what belongs to `shortcode`: its merchant owns it (recorded
/// `owner`, or the shortcode's current owner), or it is an operator.
async fn owns(
    table: &dyn Table,
    principal: &Principal,
    shortcode: &Shortcode,
    recorded: Option<&ClientId>,
) -> Result<bool, ApiError> {
    if principal.is_operator() || recorded == Some(&principal.merchant) {
        return Ok(true);
    }
    let config = repo::get_config(table, shortcode).await.map_err(store_error)?;
    Ok(config.is_some_and(|c| c.owner == principal.merchant))
}

impl C2bApi {
    /// Routes a request of the `c2b-api` function.
    pub async fn handle(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        match match_route(&request.method, &request.path) {
            RouteMatch::Found { id, params } => {
                let mut request = request;
                if request.path_params.is_empty() {
                    request.path_params = params;
                }
                self.route(id, auth, request).await
            }
            RouteMatch::MethodNotAllowed => ApiError::MethodNotAllowed.to_response(&request.request_id),
            RouteMatch::NotFound => ApiError::RouteNotFound.to_response(&request.request_id),
        }
    }

    /// Serves one of the C2B merchant/admin routes.
    pub async fn route(&self, id: RouteId, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        match id {
            RouteId::C2bRegister => self.register(auth, request).await,
            RouteId::CreateExpectedPayment => self.create_expected(auth, request).await,
            RouteId::GetExpectedPayment => self.get_expected(auth, request).await,
            RouteId::GetC2bPayment => self.get_payment(auth, request).await,
            RouteId::ListC2bPayments => self.list_payments(auth, request).await,
            _ => ApiError::RouteNotFound.to_response(&request.request_id),
        }
    }

    pub async fn register(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_ADMIN).await?;
            let body = request.json_object(MAX_BODY_BYTES)?;
            let mut registration = parse_registration(&body, &principal.merchant)?;
            registration.by = principal.client.clone();
            // A shortcode is registered for the caller's own merchant; another owner, or another
            // merchant's shortcode, only by an operator.
            if registration.owner != principal.merchant && !principal.is_operator() {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "owner",
                    "owner_not_allowed",
                    "a shortcode is registered for your own merchant (another owner needs the platform:operator scope)",
                )]));
            }
            if let Some(existing) = repo::get_config(self.table.as_ref(), &registration.shortcode)
                .await
                .map_err(store_error)?
            {
                if !principal.may_act_for(&existing.owner) {
                    return Err(ApiError::Conflict {
                        code: "shortcode_registered_elsewhere",
                        detail: "this shortcode is registered by another merchant".into(),
                    });
                }
            }
            let config = self.registrar.register(registration).await?;
            let availability = self.registrar.verification_availability(&config).await;
            Ok(ApiResponse::json(
                StatusCode::OK,
                &RegistrationView::new(&config, availability),
            ))
        })
        .await
    }

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

    pub async fn get_payment(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_READ).await?;
            let not_found = ApiError::NotFound {
                resource: "C2B payment",
            };
            let id = request
                .path_param("id")
                .and_then(|id| C2bPaymentId::parse(id).ok())
                .ok_or(not_found.clone())?;
            let payment = repo::get_payment(self.table.as_ref(), &id)
                .await
                .map_err(store_error)?
                .ok_or(not_found.clone())?;
            // Another client's payment is indistinguishable from a missing one.
            if !owns(
                self.table.as_ref(),
                &principal,
                &payment.shortcode,
                payment.owner.as_ref(),
            )
            .await?
            {
                return Err(not_found);
            }
            Ok(ApiResponse::json(StatusCode::OK, &C2bPaymentView::from(&payment)))
        })
        .await
    }

    pub async fn list_payments(&self, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
        respond(&request.request_id, async {
            let principal = auth.require(&request, scopes::C2B_READ).await?;
            request.only_query_params(&[
                "shortcode",
                "account_number",
                "verification",
                "from",
                "to",
                "limit",
                "cursor",
            ])?;
            let mut errors = Vec::new();
            let shortcode = match request.query_param("shortcode")? {
                None => None,
                Some(text) => match Shortcode::parse(text) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.push(FieldError::new("shortcode", "invalid_value", format!("shortcode {e}")));
                        None
                    }
                },
            };
            let account = match request.query_param("account_number")? {
                None => None,
                Some(text) => match AccountNumber::parse(text) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        errors.push(FieldError::new(
                            "account_number",
                            "invalid_value",
                            format!("account_number {e}"),
                        ));
                        None
                    }
                },
            };
            let verification = match request.query_param("verification")? {
                None => None,
                Some(text) => {
                    let parsed = [
                        VerificationStatus::Unverified,
                        VerificationStatus::Verified,
                        VerificationStatus::Rejected,
                    ]
                    .into_iter()
                    .find(|s| s.as_str() == text);
                    if parsed.is_none() {
                        errors.push(FieldError::new(
                            "verification",
                            "invalid_value",
                            "verification must be one of unverified, verified, rejected",
                        ));
                    }
                    parsed
                }
            };
            let (from, to) = range_params(&request, &mut errors)?;
            let (limit, cursor) = page_params(&request, &mut errors)?;
            if let Some(shortcode) = &shortcode {
                if errors.is_empty() && !owns(self.table.as_ref(), &principal, shortcode, None).await? {
                    errors.push(FieldError::new(
                        "shortcode",
                        "unknown_shortcode",
                        "no C2B registration of yours for this shortcode",
                    ));
                }
            }
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            let scope = match shortcode {
                Some(shortcode) => C2bScope::Shortcode(shortcode),
                None => C2bScope::Owner(principal.merchant.clone()),
            };
            let filter = C2bListFilter {
                scope,
                account,
                verification,
                from,
                to,
            };
            let page = repo::list_payments(&self.table, &filter, limit, cursor.as_ref())
                .await
                .map_err(store_error)?;
            let view = ListView {
                data: page.payments.iter().map(C2bPaymentView::from).collect(),
                next_cursor: page.next.map(|c| c.encode()),
            };
            Ok(ApiResponse::json(StatusCode::OK, &view))
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

/// `POST /c2b/validation/{token}`: Daraja's answer format, always HTTP 200.
pub async fn validation(validator: &C2bValidator, request: ApiRequest) -> ApiResponse {
    let token = request.path_param("token").unwrap_or_default();
    let outcome = validator.validate(token, &request.body, request.source_ip).await;
    ApiResponse::raw_json(StatusCode::OK, Bytes::from(outcome.reply.body()))
}

/// `POST /c2b/confirmation/{token}`: durable on the callback queue, then acknowledged.
pub async fn confirmation(intake: &CallbackIntake, request: ApiRequest) -> ApiResponse {
    if request.method != Method::POST {
        return ApiError::MethodNotAllowed.to_response(&request.request_id);
    }
    receive(intake, CallbackKind::C2bConfirmation, request, C2B_CONFIRMATION_ACK).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::ApiRequest;
    use serde_json::json;

    fn object(value: serde_json::Value) -> JsonObject {
        let mut request = ApiRequest::new(Method::POST, "/");
        request
            .headers
            .insert("content-type", "application/json".parse().unwrap());
        request.body = value.to_string().into();
        request.json_object(MAX_BODY_BYTES).unwrap()
    }

    fn codes(error: ApiError) -> Vec<(String, &'static str)> {
        match error {
            ApiError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn caller() -> ClientId {
        ClientId::parse("admin-1").unwrap()
    }

    #[test]
    fn registration_defaults_and_full_rules() {
        let r = parse_registration(&object(json!({"shortcode": "600984"})), &caller()).unwrap();
        assert_eq!(
            (r.api_version, r.response_type, r.default_decision),
            (C2bVersion::V2, ResponseType::Completed, DefaultDecision::Accept)
        );
        assert_eq!(r.owner, caller());
        assert_eq!(r.rules, C2bRules::default());
        let r = parse_registration(
            &object(json!({
                "shortcode": "600984", "version": "v1", "response_type": "Cancelled", "default_decision": "reject",
                "owner": "merchant-a",
                "rules": {
                    "account_pattern": "INV-[0-9]+", "require_expected_payment": true, "min_amount": 10, "max_amount": 70000,
                    "allowed_accounts": ["vip-1"], "denied_accounts": ["INV-666"], "blocked_msisdns": ["2547 ***** 999"],
                    "blocked_payer_names": ["  john   kamau "], "require_payer_name": true
                }
            })),
            &caller(),
        )
        .unwrap();
        assert_eq!(r.api_version, C2bVersion::V1);
        assert_eq!(r.response_type, ResponseType::Cancelled);
        assert_eq!(r.owner.as_str(), "merchant-a");
        assert_eq!(r.rules.min_amount.map(|a| a.shillings()), Some(10));
        assert!(r
            .rules
            .allowed_accounts
            .contains(&AccountNumber::parse("VIP-1").unwrap()));
        assert!(r.rules.blocked_payer_names.contains("JOHN KAMAU"));
        assert!(r.rules.require_expected_payment && r.rules.require_payer_name);
    }

    #[test]
    fn registration_field_errors_are_specific() {
        let e = parse_registration(
            &object(json!({
                "shortcode": 600984, "version": "v3", "response_type": "completed", "default_decision": "maybe",
                "owner": "a#b", "extra": 1,
                "rules": {"account_pattern": "(", "min_amount": 10.5, "max_amount": "9", "denied_accounts": ["ok", "bad#"],
                          "blocked_msisdns": "x", "require_payer_name": "yes", "surprise": true}
            })),
            &caller(),
        )
        .unwrap_err();
        let found = codes(e);
        for expected in [
            ("extra", "unknown_field"),
            ("shortcode", "invalid_type"),
            ("version", "invalid_value"),
            ("response_type", "invalid_value"),
            ("default_decision", "invalid_value"),
            ("owner", "invalid_value"),
            ("rules.surprise", "unknown_field"),
            ("rules.min_amount", "not_whole"),
            ("rules.max_amount", "not_an_integer"),
            ("rules.denied_accounts", "invalid_account_number"),
            ("rules.blocked_msisdns", "invalid_type"),
            ("rules.require_payer_name", "invalid_type"),
            ("rules.account_pattern", "invalid_pattern"),
        ] {
            assert!(
                found.iter().any(|(f, c)| f == expected.0 && *c == expected.1),
                "{expected:?} not in {found:?}"
            );
        }
        assert_eq!(
            codes(parse_registration(&object(json!({})), &caller()).unwrap_err()),
            [("shortcode".to_owned(), "required")]
        );
        let bounds = parse_registration(
            &object(json!({"shortcode": "600984", "rules": {"min_amount": 10, "max_amount": 5}})),
            &caller(),
        );
        assert_eq!(
            codes(bounds.unwrap_err()),
            [("rules.min_amount".to_owned(), "invalid_range")]
        );
        let many = parse_registration(
            &object(json!({"shortcode": "600984", "rules": {"blocked_msisdns": vec!["x"; 1001]}})),
            &caller(),
        );
        assert_eq!(
            codes(many.unwrap_err()),
            [("rules.blocked_msisdns".to_owned(), "too_many_entries")]
        );
        let rules_type = parse_registration(&object(json!({"shortcode": "600984", "rules": []})), &caller());
        assert_eq!(codes(rules_type.unwrap_err()), [("rules".to_owned(), "invalid_type")]);
    }

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

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::c2b::{DarajaRegistration, RegistrationStatus, ShortcodeConfig};
    use crate::idempotency::{self, RecordState};
    use crate::store::memory::MemoryTable;

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
