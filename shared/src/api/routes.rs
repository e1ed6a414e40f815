//! The route table: every public route, the function that serves it, and its matcher. Requests
//! are answered through [`super::router`], which dispatches on [`RouteId`]. The template-vs-code
//! test checks `template.yaml` against this table.

use std::collections::HashMap;

use http::Method;

use crate::auth::scopes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    CreatePayment,
    GetPayment,
    ListPayments,
    StkCallback,
    Health,
    C2bRegister,
    CreateExpectedPayment,
    GetExpectedPayment,
    GetC2bPayment,
    ListC2bPayments,
    C2bValidation,
    C2bConfirmation,
    CreatePayout,
    ListPayouts,
    GetPayout,
    ApprovePayout,
    RejectPayout,
    B2cResultCallback,
    B2cTimeoutCallback,
    B2cStatusCallback,
    B2cStatusTimeoutCallback,
    C2bStatusCallback,
    C2bStatusTimeoutCallback,
    Ready,
    OpenApi,
    ListEvents,
    GetEvent,
    CreateWebhookEndpoint,
    ListWebhookEndpoints,
    GetWebhookEndpoint,
    UpdateWebhookEndpoint,
    DeleteWebhookEndpoint,
    RotateWebhookSecret,
    RedriveWebhookEndpoint,
    ListEventDeliveries,
    RedeliverEvent,
    ListAudit,
    PaymentAudit,
    PayoutAudit,
    C2bPaymentAudit,
    CreateCheckoutSession,
    ListCheckoutSessions,
    GetCheckoutSession,
    ExpireCheckoutSession,
    CheckoutAsset,
    CheckoutPage,
    CheckoutPay,
    CheckoutStatus,
    CheckoutCancel,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// API Gateway syntax: `/v1/payments/{id}`.
    pub path: &'static str,
    pub id: RouteId,
    /// The Lambda function (directory under `functions/`) that serves it.
    pub function: &'static str,
    pub authenticated: bool,
    /// For an authenticated route, the scopes of which any one grants access.
    pub scopes: &'static [&'static str],
}

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/v1/audit",
        id: RouteId::ListAudit,
        function: "status",
        scopes: &[scopes::AUDIT_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payments/{id}/audit",
        id: RouteId::PaymentAudit,
        function: "status",
        scopes: &[scopes::AUDIT_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payouts/{id}/audit",
        id: RouteId::PayoutAudit,
        function: "status",
        scopes: &[scopes::AUDIT_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/c2b/payments/{id}/audit",
        id: RouteId::C2bPaymentAudit,
        function: "status",
        scopes: &[scopes::AUDIT_READ],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/webhook-endpoints",
        id: RouteId::CreateWebhookEndpoint,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/webhook-endpoints",
        id: RouteId::ListWebhookEndpoints,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/webhook-endpoints/{id}",
        id: RouteId::GetWebhookEndpoint,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_READ],
        authenticated: true,
    },
    Route {
        method: Method::PATCH,
        path: "/v1/webhook-endpoints/{id}",
        id: RouteId::UpdateWebhookEndpoint,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::DELETE,
        path: "/v1/webhook-endpoints/{id}",
        id: RouteId::DeleteWebhookEndpoint,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/webhook-endpoints/{id}/rotate-secret",
        id: RouteId::RotateWebhookSecret,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/webhook-endpoints/{id}/redrive",
        id: RouteId::RedriveWebhookEndpoint,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/events/{id}/deliveries",
        id: RouteId::ListEventDeliveries,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_READ],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/events/{id}/redeliver",
        id: RouteId::RedeliverEvent,
        function: "webhooks-api",
        scopes: &[scopes::WEBHOOKS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/events",
        id: RouteId::ListEvents,
        function: "status",
        scopes: &[scopes::EVENTS_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/events/{id}",
        id: RouteId::GetEvent,
        function: "status",
        scopes: &[scopes::EVENTS_READ],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/payments",
        id: RouteId::CreatePayment,
        function: "initiate",
        scopes: &[scopes::PAYMENTS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payments",
        id: RouteId::ListPayments,
        function: "status",
        scopes: &[scopes::PAYMENTS_READ, scopes::PAYMENTS_READ_ALL],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payments/{id}",
        id: RouteId::GetPayment,
        function: "status",
        scopes: &[scopes::PAYMENTS_READ, scopes::PAYMENTS_READ_ALL],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/stk/{token}",
        id: RouteId::StkCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::GET,
        path: "/v1/health",
        id: RouteId::Health,
        function: "health",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/v1/c2b/registrations",
        id: RouteId::C2bRegister,
        function: "c2b-api",
        scopes: &[scopes::C2B_ADMIN],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/c2b/expected-payments",
        id: RouteId::CreateExpectedPayment,
        function: "c2b-api",
        scopes: &[scopes::C2B_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/c2b/expected-payments/{id}",
        id: RouteId::GetExpectedPayment,
        function: "c2b-api",
        scopes: &[scopes::C2B_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/c2b/payments",
        id: RouteId::ListC2bPayments,
        function: "c2b-api",
        scopes: &[scopes::C2B_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/c2b/payments/{id}",
        id: RouteId::GetC2bPayment,
        function: "c2b-api",
        scopes: &[scopes::C2B_READ],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/c2b/validation/{token}",
        id: RouteId::C2bValidation,
        function: "c2b-validation",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/c2b/confirmation/{token}",
        id: RouteId::C2bConfirmation,
        function: "c2b-confirmation",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/v1/payouts",
        id: RouteId::CreatePayout,
        function: "payouts-api",
        scopes: &[scopes::PAYOUTS_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payouts",
        id: RouteId::ListPayouts,
        function: "payouts-api",
        scopes: &[scopes::PAYOUTS_READ, scopes::PAYOUTS_APPROVE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/payouts/{id}",
        id: RouteId::GetPayout,
        function: "payouts-api",
        scopes: &[scopes::PAYOUTS_READ, scopes::PAYOUTS_APPROVE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/payouts/{id}/approve",
        id: RouteId::ApprovePayout,
        function: "payouts-api",
        scopes: &[scopes::PAYOUTS_APPROVE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/payouts/{id}/reject",
        id: RouteId::RejectPayout,
        function: "payouts-api",
        scopes: &[scopes::PAYOUTS_APPROVE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/b2c/result/{token}",
        id: RouteId::B2cResultCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/b2c/timeout/{token}",
        id: RouteId::B2cTimeoutCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/b2c/status/{token}",
        id: RouteId::B2cStatusCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/b2c/status-timeout/{token}",
        id: RouteId::B2cStatusTimeoutCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/c2b/status/{token}",
        id: RouteId::C2bStatusCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/callbacks/c2b/status-timeout/{token}",
        id: RouteId::C2bStatusTimeoutCallback,
        function: "callback",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::GET,
        path: "/v1/ready",
        id: RouteId::Ready,
        // The read-only function: it already reads the secret and the table; the readiness check
        // adds only GetQueueAttributes and a Daraja token (see docs/operations.md).
        function: "status",
        scopes: &[scopes::OPS_READ],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/openapi.json",
        id: RouteId::OpenApi,
        function: "health",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/v1/checkout/sessions",
        id: RouteId::CreateCheckoutSession,
        function: "initiate",
        scopes: &[scopes::CHECKOUT_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/checkout/sessions",
        id: RouteId::ListCheckoutSessions,
        function: "initiate",
        scopes: &[scopes::CHECKOUT_READ, scopes::CHECKOUT_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::GET,
        path: "/v1/checkout/sessions/{id}",
        id: RouteId::GetCheckoutSession,
        function: "initiate",
        scopes: &[scopes::CHECKOUT_READ, scopes::CHECKOUT_WRITE],
        authenticated: true,
    },
    Route {
        method: Method::POST,
        path: "/v1/checkout/sessions/{id}/expire",
        id: RouteId::ExpireCheckoutSession,
        function: "initiate",
        scopes: &[scopes::CHECKOUT_WRITE],
        authenticated: true,
    },
    // The page's assets first: `/pay/assets/x` is never a session.
    Route {
        method: Method::GET,
        path: "/pay/assets/{file}",
        id: RouteId::CheckoutAsset,
        function: "initiate",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::GET,
        path: "/pay/{session}",
        id: RouteId::CheckoutPage,
        function: "initiate",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/pay/{session}",
        id: RouteId::CheckoutPay,
        function: "initiate",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::GET,
        path: "/pay/{session}/status",
        id: RouteId::CheckoutStatus,
        function: "initiate",
        scopes: &[],
        authenticated: false,
    },
    Route {
        method: Method::POST,
        path: "/pay/{session}/cancel",
        id: RouteId::CheckoutCancel,
        function: "initiate",
        scopes: &[],
        authenticated: false,
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    Found {
        id: RouteId,
        params: HashMap<String, String>,
    },
    /// The path is a route's, the method is not: `allow` lists the path's methods.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
    NotFound,
}

impl RouteMatch {
    /// The route found, if any.
    pub fn id(&self) -> Option<RouteId> {
        match self {
            RouteMatch::Found { id, .. } => Some(*id),
            _ => None,
        }
    }
}

fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let mut template_parts = template.trim_matches('/').split('/');
    let mut path_parts = path.trim_end_matches('/').trim_start_matches('/').split('/');
    loop {
        match (template_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') => {
                if p.is_empty() {
                    return None;
                }
                let decoded = percent_encoding::percent_decode_str(p).decode_utf8().ok()?.into_owned();
                params.insert(t[1..t.len() - 1].to_owned(), decoded);
            }
            (Some(t), Some(p)) if t == p => {}
            _ => return None,
        }
    }
}

pub fn match_route(method: &Method, path: &str) -> RouteMatch {
    let mut allow = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method == *method {
                return RouteMatch::Found { id: route.id, params };
            }
            allow.push(route.method.clone());
        }
    }
    if allow.is_empty() {
        RouteMatch::NotFound
    } else {
        RouteMatch::MethodNotAllowed { allow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert!(matches!(
            match_route(&Method::POST, "/v1/payments"),
            RouteMatch::Found {
                id: RouteId::CreatePayment,
                ..
            }
        ));
        match match_route(&Method::GET, "/v1/payments/pay_123") {
            RouteMatch::Found { id, params } => {
                assert_eq!(id, RouteId::GetPayment);
                assert_eq!(params["id"], "pay_123");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            match_route(&Method::DELETE, "/v1/payments"),
            RouteMatch::MethodNotAllowed {
                allow: vec![Method::POST, Method::GET]
            }
        );
        assert_eq!(match_route(&Method::GET, "/v1/nothing"), RouteMatch::NotFound);
        assert_eq!(match_route(&Method::GET, "/v1/payments/a/b"), RouteMatch::NotFound);
        assert_eq!(match_route(&Method::POST, "/callbacks/stk/"), RouteMatch::NotFound);
    }

    #[test]
    fn authenticated_routes_name_their_scopes() {
        for route in ROUTES {
            assert_eq!(
                route.authenticated,
                !route.scopes.is_empty(),
                "{} {}: scopes exactly when authenticated",
                route.method,
                route.path
            );
        }
    }

    #[test]
    fn c2b_routes() {
        let found = |method: Method, path: &str| match match_route(&method, path) {
            RouteMatch::Found { id, params } => (id, params),
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(found(Method::POST, "/v1/c2b/registrations").0, RouteId::C2bRegister);
        assert_eq!(
            found(Method::POST, "/v1/c2b/expected-payments").0,
            RouteId::CreateExpectedPayment
        );
        assert_eq!(found(Method::GET, "/v1/c2b/expected-payments/exp_1").1["id"], "exp_1");
        assert_eq!(found(Method::GET, "/v1/c2b/payments").0, RouteId::ListC2bPayments);
        assert_eq!(found(Method::GET, "/v1/c2b/payments/c2b_1").0, RouteId::GetC2bPayment);
        let (id, params) = found(Method::POST, "/c2b/validation/600984.abc");
        assert_eq!((id, params["token"].as_str()), (RouteId::C2bValidation, "600984.abc"));
        assert_eq!(
            found(Method::POST, "/c2b/confirmation/600984.abc").0,
            RouteId::C2bConfirmation
        );
        assert_eq!(
            match_route(&Method::GET, "/c2b/validation/x"),
            RouteMatch::MethodNotAllowed {
                allow: vec![Method::POST]
            }
        );
        for route in ROUTES.iter().filter(|r| r.path.starts_with("/c2b/")) {
            // Safaricom refuses C2B URLs containing these words anywhere.
            assert_eq!(
                crate::daraja::check_c2b_url(&format!("https://pay.example.co.ke{}", route.path), true),
                Ok(())
            );
            assert!(!route.authenticated);
        }
    }
}
