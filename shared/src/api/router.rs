//! One route table, one dispatch. Every Lambda HTTP function and the dev stack answer requests
//! through [`serve`]: the table ([`ROUTES`], matched by [`match_route`]) finds the route, and
//! [`dispatch`] calls its handler. `dispatch` is the only `match` on [`RouteId`] in the codebase,
//! and not-found and method-not-allowed are answered here only.
//!
//! A new route is three edits: its [`ROUTES`] entry (method, path, function, scopes), one arm in
//! [`dispatch`], and its event on the function in `template.yaml` (the template test fails until
//! the table and the template agree).
//!
//! A binary declares what it serves by the services it puts in its [`Handlers`]. A route whose
//! service it does not hold answers 404 `route_not_found`, as an unknown path does: API Gateway
//! sends a function only its own routes, so that answer is only ever seen by a misrouted request.

use std::sync::Arc;

use http::Method;

use super::auth::Authenticator;
use super::c2b::C2bApi;
use super::callbacks::{receive, B2C_ACK, STK_ACK};
use super::http::{ApiRequest, ApiResponse};
use super::problem::ApiError;
use super::routes::{match_route, RouteId, RouteMatch, ROUTES};
use super::{audit, c2b, checkout, events, health, openapi, payments, payouts, ready, webhooks};
use crate::repo::payments::PaymentRepo;
use crate::repo::payouts::PayoutRepo;
use crate::services::c2b::validation::C2bValidator;
use crate::services::callback_intake::{CallbackIntake, CallbackKind};
use crate::services::payments::PaymentsService;
use crate::services::payouts::PayoutsService;
use crate::services::readiness::Readiness;
use crate::store::Table;

/// The services a binary holds, one field per flow; absent ones are routes it does not serve.
#[derive(Default)]
pub struct Handlers {
    /// Checks the bearer token of every authenticated route (the routes of [`ROUTES`] with
    /// `authenticated: true` need it besides their own service).
    pub auth: Option<Authenticator>,
    /// `POST /v1/payments`.
    pub payments: Option<PaymentsService>,
    /// `GET /v1/payments`, `GET /v1/payments/{id}`.
    pub payment_reads: Option<PaymentRepo>,
    /// `/v1/payouts` and its approval routes.
    pub payouts: Option<Payouts>,
    /// The C2B merchant and admin routes under `/v1/c2b/`.
    pub c2b: Option<C2bApi>,
    /// `POST /c2b/validation/{token}`.
    pub c2b_validation: Option<C2bValidator>,
    /// Safaricom's callbacks (`/callbacks/...`) and `POST /c2b/confirmation/{token}`: made durable
    /// on the callback queue, then acknowledged.
    pub callbacks: Option<CallbackIntake>,
    /// `GET /v1/ready`.
    pub readiness: Option<Readiness>,
    /// `GET /v1/events`, `GET /v1/events/{id}`: the table the events are stored in.
    pub events: Option<Arc<dyn Table>>,
    /// `/v1/webhook-endpoints`, `GET /v1/events/{id}/deliveries`, `POST /v1/events/{id}/redeliver`.
    pub webhooks: Option<crate::webhooks::service::WebhookEndpoints>,
    /// Records every API call that changes something (`api/audit.rs`): every binary serving a
    /// changing route holds it.
    pub audit: Option<crate::audit::AuditLog>,
    /// `GET /v1/audit`, `GET /v1/{payments,payouts,c2b/payments}/{id}/audit`: the table the
    /// trail is stored in.
    pub audit_reads: Option<Arc<dyn Table>>,
    /// `/v1/checkout/sessions` (the shop's session API).
    pub checkout: Option<Arc<crate::services::checkout::CheckoutService>>,
    /// `/pay/...`: the hosted payment page (public, scoped to one session).
    pub checkout_pages: Option<Arc<super::checkout::CheckoutPages>>,
    /// `GET /v1/health` and `GET /v1/openapi.json` (no state, no I/O).
    pub health_and_openapi: bool,
    /// The feature flag of the binary's capability is off: every request answers 404
    /// `feature_disabled` naming this feature.
    pub disabled_feature: Option<&'static str>,
}

/// The payout routes' services: writes through the service, reads from the repository.
pub struct Payouts {
    pub service: PayoutsService,
    pub repo: PayoutRepo,
}

impl Handlers {
    /// A service of an authenticated route, with the authenticator it needs.
    fn authenticated<'a, T>(&'a self, service: &'a Option<T>) -> Option<(&'a T, &'a Authenticator)> {
        Some((service.as_ref()?, self.auth.as_ref()?))
    }
}

/// Answers a request: matches it against the route table and dispatches it.
pub async fn serve(handlers: &Handlers, request: ApiRequest) -> ApiResponse {
    let route = match_route(&request.method, &request.path);
    serve_matched(handlers, route, request).await
}

/// [`serve`] for a request already matched (the dev stack matches first, to trace the route).
pub async fn serve_matched(handlers: &Handlers, route: RouteMatch, mut request: ApiRequest) -> ApiResponse {
    if let Some(feature) = handlers.disabled_feature {
        // The flag switches the whole function off, whatever the route.
        return ApiError::FeatureDisabled { feature }.to_response(&request.request_id);
    }
    match route {
        RouteMatch::Found { id, params } => {
            // The table's parameters (percent-decoded), as API Gateway gives them.
            request.path_params.extend(params);
            match (&handlers.audit, &handlers.auth) {
                (Some(log), Some(auth)) if audit::records(id, &request.method) => {
                    // Kept for the record: the handler consumes the request.
                    let recorded = request.clone();
                    let response = dispatch(handlers, id, request).await;
                    let path = route_path(id);
                    audit::record_call(log, auth, id, path, &recorded, &response).await;
                    response
                }
                _ => dispatch(handlers, id, request).await,
            }
        }
        RouteMatch::MethodNotAllowed { allow } => method_not_allowed(&allow, &request.request_id),
        RouteMatch::NotFound => ApiError::RouteNotFound.to_response(&request.request_id),
    }
}

/// The table's path of route `id` (`/v1/payouts/{id}/approve`).
fn route_path(id: RouteId) -> &'static str {
    ROUTES.iter().find(|r| r.id == id).map_or("", |r| r.path)
}

/// A 405 names the route's methods in `Allow`, as HTTP requires.
fn method_not_allowed(allow: &[Method], request_id: &str) -> ApiResponse {
    let allow: Vec<&str> = allow.iter().map(Method::as_str).collect();
    ApiError::MethodNotAllowed
        .to_response(request_id)
        .with_header("allow", &allow.join(", "))
}

/// What a binary answers for a route whose service it does not hold.
fn not_served(request: &ApiRequest) -> ApiResponse {
    ApiError::RouteNotFound.to_response(&request.request_id)
}

/// Calls the handler of route `id` with the services of `handlers`.
pub async fn dispatch(handlers: &Handlers, id: RouteId, request: ApiRequest) -> ApiResponse {
    let h = handlers;
    match id {
        RouteId::CreatePayment => match h.authenticated(&h.payments) {
            Some((service, auth)) => payments::create(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetPayment => match h.authenticated(&h.payment_reads) {
            Some((repo, auth)) => payments::get(repo, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListPayments => match h.authenticated(&h.payment_reads) {
            Some((repo, auth)) => payments::list(repo, auth, request).await,
            None => not_served(&request),
        },
        RouteId::CreatePayout => match h.authenticated(&h.payouts) {
            Some((payouts, auth)) => payouts::create(&payouts.service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListPayouts => match h.authenticated(&h.payouts) {
            Some((payouts, auth)) => payouts::list(&payouts.repo, auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetPayout => match h.authenticated(&h.payouts) {
            Some((payouts, auth)) => payouts::get(&payouts.repo, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ApprovePayout => match h.authenticated(&h.payouts) {
            Some((payouts, auth)) => payouts::review(&payouts.service, auth, request, true).await,
            None => not_served(&request),
        },
        RouteId::RejectPayout => match h.authenticated(&h.payouts) {
            Some((payouts, auth)) => payouts::review(&payouts.service, auth, request, false).await,
            None => not_served(&request),
        },
        RouteId::C2bRegister => match h.authenticated(&h.c2b) {
            Some((c2b, auth)) => c2b.register(auth, request).await,
            None => not_served(&request),
        },
        RouteId::CreateExpectedPayment => match h.authenticated(&h.c2b) {
            Some((c2b, auth)) => c2b.create_expected(auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetExpectedPayment => match h.authenticated(&h.c2b) {
            Some((c2b, auth)) => c2b.get_expected(auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetC2bPayment => match h.authenticated(&h.c2b) {
            Some((c2b, auth)) => c2b.get_payment(auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListC2bPayments => match h.authenticated(&h.c2b) {
            Some((c2b, auth)) => c2b.list_payments(auth, request).await,
            None => not_served(&request),
        },
        RouteId::C2bValidation => match &h.c2b_validation {
            Some(validator) => c2b::validation(validator, request).await,
            None => not_served(&request),
        },
        RouteId::C2bConfirmation => match &h.callbacks {
            Some(intake) => c2b::confirmation(intake, request).await,
            None => not_served(&request),
        },
        RouteId::StkCallback => callback(h, CallbackKind::StkCallback, STK_ACK, request).await,
        RouteId::B2cResultCallback => callback(h, CallbackKind::B2cResult, B2C_ACK, request).await,
        RouteId::B2cTimeoutCallback => callback(h, CallbackKind::B2cTimeout, B2C_ACK, request).await,
        RouteId::B2cStatusCallback => callback(h, CallbackKind::TransactionStatusResult, B2C_ACK, request).await,
        RouteId::B2cStatusTimeoutCallback => {
            callback(h, CallbackKind::TransactionStatusTimeout, B2C_ACK, request).await
        }
        RouteId::C2bStatusCallback => callback(h, CallbackKind::C2bStatusResult, B2C_ACK, request).await,
        RouteId::C2bStatusTimeoutCallback => callback(h, CallbackKind::C2bStatusTimeout, B2C_ACK, request).await,
        RouteId::Ready => match h.authenticated(&h.readiness) {
            Some((readiness, auth)) => ready::ready(readiness, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListAudit => match h.authenticated(&h.audit_reads) {
            Some((table, auth)) => audit::list(table.as_ref(), auth, request).await,
            None => not_served(&request),
        },
        RouteId::PaymentAudit => match h.authenticated(&h.audit_reads) {
            Some((table, auth)) => audit::of_resource(table.as_ref(), auth, request, "payment", "pay_").await,
            None => not_served(&request),
        },
        RouteId::PayoutAudit => match h.authenticated(&h.audit_reads) {
            Some((table, auth)) => audit::of_resource(table.as_ref(), auth, request, "payout", "po_").await,
            None => not_served(&request),
        },
        RouteId::C2bPaymentAudit => match h.authenticated(&h.audit_reads) {
            Some((table, auth)) => audit::of_resource(table.as_ref(), auth, request, "C2B payment", "c2b_").await,
            None => not_served(&request),
        },
        RouteId::ListEvents => match h.authenticated(&h.events) {
            Some((table, auth)) => events::list(table.as_ref(), auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetEvent => match h.authenticated(&h.events) {
            Some((table, auth)) => events::get(table.as_ref(), auth, request).await,
            None => not_served(&request),
        },
        RouteId::CreateWebhookEndpoint => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::create(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListWebhookEndpoints => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::list(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetWebhookEndpoint => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::get(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::UpdateWebhookEndpoint => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::update(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::DeleteWebhookEndpoint => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::delete(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::RotateWebhookSecret => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::rotate_secret(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::RedriveWebhookEndpoint => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::redrive(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListEventDeliveries => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::deliveries(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::RedeliverEvent => match h.authenticated(&h.webhooks) {
            Some((service, auth)) => webhooks::redeliver(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::CreateCheckoutSession => match h.authenticated(&h.checkout) {
            Some((service, auth)) => checkout::sessions::create(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ListCheckoutSessions => match h.authenticated(&h.checkout) {
            Some((service, auth)) => checkout::sessions::list(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::GetCheckoutSession => match h.authenticated(&h.checkout) {
            Some((service, auth)) => checkout::sessions::get(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::ExpireCheckoutSession => match h.authenticated(&h.checkout) {
            Some((service, auth)) => checkout::sessions::expire(service, auth, request).await,
            None => not_served(&request),
        },
        RouteId::CheckoutAsset => match &h.checkout_pages {
            Some(_) => checkout::page::asset(&request),
            None => not_served(&request),
        },
        RouteId::CheckoutPage => match &h.checkout_pages {
            Some(pages) => pages.page(request).await,
            None => not_served(&request),
        },
        RouteId::CheckoutPay => match &h.checkout_pages {
            Some(pages) => pages.pay(request).await,
            None => not_served(&request),
        },
        RouteId::CheckoutStatus => match &h.checkout_pages {
            Some(pages) => pages.status(request).await,
            None => not_served(&request),
        },
        RouteId::CheckoutCancel => match &h.checkout_pages {
            Some(pages) => pages.cancel(request).await,
            None => not_served(&request),
        },
        RouteId::Health if h.health_and_openapi => health::health(),
        RouteId::OpenApi if h.health_and_openapi => openapi::document(),
        RouteId::Health | RouteId::OpenApi => not_served(&request),
    }
}

/// A Safaricom callback: queued on the callback queue as `kind`, then acknowledged with `ack`.
async fn callback(h: &Handlers, kind: CallbackKind, ack: &'static str, request: ApiRequest) -> ApiResponse {
    match &h.callbacks {
        Some(intake) => receive(intake, kind, request, ack).await,
        None => not_served(&request),
    }
}

/// The route template of a matched request, for logs (never the raw path, which may carry a
/// callback token).
pub fn template(route: &RouteMatch) -> &'static str {
    match route.id() {
        Some(id) => ROUTES.iter().find(|r| r.id == id).map_or("?", |r| r.path),
        None => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(response: &ApiResponse) -> String {
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("a JSON body");
        body["code"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_405_names_the_routes_methods_in_allow() {
        let handlers = Handlers::default();
        let response = serve(&handlers, ApiRequest::new(Method::DELETE, "/v1/payments")).await;
        assert_eq!(response.status, http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(code(&response), "method_not_allowed");
        assert_eq!(response.headers["allow"], "POST, GET");
        let response = serve(&handlers, ApiRequest::new(Method::GET, "/c2b/validation/600984.abc")).await;
        assert_eq!(response.headers["allow"], "POST");
        let response = serve(&handlers, ApiRequest::new(Method::GET, "/v1/nowhere")).await;
        assert_eq!(
            (response.status, code(&response)),
            (http::StatusCode::NOT_FOUND, "route_not_found".to_owned())
        );
        assert!(!response.headers.contains_key("allow"));
    }

    #[tokio::test]
    async fn a_route_whose_service_is_absent_is_not_found() {
        let handlers = Handlers::default();
        for route in ROUTES {
            let path = route.path.replace("{id}", "x").replace("{token}", "x");
            let response = serve(&handlers, ApiRequest::new(route.method.clone(), path)).await;
            assert_eq!(
                (response.status, code(&response)),
                (http::StatusCode::NOT_FOUND, "route_not_found".to_owned()),
                "{} {}",
                route.method,
                route.path
            );
        }
        let health = Handlers {
            health_and_openapi: true,
            ..Handlers::default()
        };
        let response = serve(&health, ApiRequest::new(Method::GET, "/v1/health")).await;
        assert_eq!(response.status, http::StatusCode::OK);
        let response = serve(&health, ApiRequest::new(Method::GET, "/v1/payments")).await;
        assert_eq!(code(&response), "route_not_found");
    }

    #[tokio::test]
    async fn a_disabled_feature_answers_every_request() {
        let handlers = Handlers {
            health_and_openapi: true,
            disabled_feature: Some("payouts"),
            ..Handlers::default()
        };
        for (method, path) in [
            (Method::POST, "/v1/payouts"),
            (Method::DELETE, "/v1/payouts"),
            (Method::GET, "/v1/nowhere"),
        ] {
            let response = serve(&handlers, ApiRequest::new(method, path)).await;
            assert_eq!(
                (response.status, code(&response)),
                (http::StatusCode::NOT_FOUND, "feature_disabled".to_owned()),
                "{path}"
            );
        }
    }
}
