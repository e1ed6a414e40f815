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
//! The Safaricom-facing routes, `POST /c2b/validation/{token}` and `POST /c2b/confirmation/{token}`,
//! answer in Daraja's formats ([`safaricom`]). Each request body's fields are described with its
//! parser: [`registrations`], [`expected_payments`].

mod expected_payments;
mod fields;
mod payments;
mod registrations;
mod safaricom;

use std::sync::Arc;

pub use self::expected_payments::parse_expected_payment;
pub use self::registrations::{parse_registration, parse_rules};
pub use self::safaricom::{confirmation, validation};
pub use super::c2b_views::{
    AppliedPaymentView, C2bPaymentView, DarajaRegistrationView, ExpectedAmountView, ExpectedPaymentView, MatchView,
    RegistrationView,
};
use super::problem::ApiError;
use crate::api::errors::store_error;
use crate::auth::Principal;
use crate::clock::Clock;
use crate::domain::c2b::Shortcode;
use crate::domain::ClientId;
use crate::repo::c2b as repo;
use crate::services::c2b::expected_payments::ExpectedPaymentsService;
use crate::services::c2b::registration::C2bRegistrar;
use crate::store::Table;

/// Everything the `c2b-api` function serves.
pub struct C2bApi {
    pub registrar: C2bRegistrar,
    pub expected: ExpectedPaymentsService,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

/// Whether `principal` may see what belongs to `shortcode`: its merchant owns it (recorded
/// `owner`, or the shortcode's current owner), or it is an operator.
pub(super) async fn owns(
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

#[cfg(test)]
mod test_support {
    use http::Method;

    use crate::api::http::{ApiRequest, JsonObject};
    use crate::api::payments::MAX_BODY_BYTES;
    use crate::api::problem::ApiError;
    use crate::domain::ClientId;

    pub fn object(value: serde_json::Value) -> JsonObject {
        let mut request = ApiRequest::new(Method::POST, "/");
        request
            .headers
            .insert("content-type", "application/json".parse().unwrap());
        request.body = value.to_string().into();
        request.json_object(MAX_BODY_BYTES).unwrap()
    }

    pub fn codes(error: ApiError) -> Vec<(String, &'static str)> {
        match error {
            ApiError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    pub fn caller() -> ClientId {
        ClientId::parse("admin-1").unwrap()
    }
}
