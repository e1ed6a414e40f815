//! `POST /v1/c2b/registrations` (`c2b:admin`): registers the shortcode's validation and
//! confirmation URLs with Daraja and stores its rules. Repeating it replaces the rules.
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

use http::StatusCode;

use super::fields::{accounts, bool_field, choice, list_field, shortcode_field, string_field, C2B_AMOUNTS};
use super::C2bApi;
use crate::api::auth::Authenticator;
use crate::api::c2b_views::RegistrationView;
use crate::api::errors::store_error;
use crate::api::http::{ApiRequest, ApiResponse, JsonObject};
use crate::api::payments::{amount_field, MAX_BODY_BYTES};
use crate::api::problem::{ApiError, FieldError};
use crate::api::respond;
use crate::auth::scopes;
use crate::domain::c2b::{normalise_name, C2bRules, C2bVersion, DefaultDecision, ResponseType, RulesError};
use crate::domain::c2b_verification::VerificationMethod;
use crate::domain::ClientId;
use crate::repo::c2b as repo;
use crate::services::c2b::registration::RegistrationRequest;

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

impl C2bApi {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::c2b::test_support::{caller, codes, object};
    use crate::domain::c2b::AccountNumber;
    use serde_json::json;

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
}
