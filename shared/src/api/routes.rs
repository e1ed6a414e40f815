//! The route table: every public route, the function that serves it, and a matcher the dev stack
//! uses. The template-vs-code test checks `template.yaml` against this table.

use std::collections::HashMap;

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    CreatePayment,
    GetPayment,
    ListPayments,
    StkCallback,
    Health,
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
}

pub const ROUTES: &[Route] = &[
    Route { method: Method::POST, path: "/v1/payments", id: RouteId::CreatePayment, function: "initiate", authenticated: true },
    Route { method: Method::GET, path: "/v1/payments", id: RouteId::ListPayments, function: "status", authenticated: true },
    Route { method: Method::GET, path: "/v1/payments/{id}", id: RouteId::GetPayment, function: "status", authenticated: true },
    Route { method: Method::POST, path: "/callbacks/stk/{token}", id: RouteId::StkCallback, function: "callback", authenticated: false },
    Route { method: Method::GET, path: "/v1/health", id: RouteId::Health, function: "health", authenticated: false },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    Found { id: RouteId, params: HashMap<String, String> },
    MethodNotAllowed,
    NotFound,
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
    let mut path_matched = false;
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method == *method {
                return RouteMatch::Found { id: route.id, params };
            }
            path_matched = true;
        }
    }
    if path_matched {
        RouteMatch::MethodNotAllowed
    } else {
        RouteMatch::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert!(matches!(match_route(&Method::POST, "/v1/payments"), RouteMatch::Found { id: RouteId::CreatePayment, .. }));
        match match_route(&Method::GET, "/v1/payments/pay_123") {
            RouteMatch::Found { id, params } => {
                assert_eq!(id, RouteId::GetPayment);
                assert_eq!(params["id"], "pay_123");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(match_route(&Method::DELETE, "/v1/payments"), RouteMatch::MethodNotAllowed);
        assert_eq!(match_route(&Method::GET, "/v1/nothing"), RouteMatch::NotFound);
        assert_eq!(match_route(&Method::GET, "/v1/payments/a/b"), RouteMatch::NotFound);
        assert_eq!(match_route(&Method::POST, "/callbacks/stk/"), RouteMatch::NotFound);
    }
}
