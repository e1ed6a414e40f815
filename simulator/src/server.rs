//! Routing, endpoint fault injection, and Daraja-shaped answers for unknown routes/methods.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

use crate::account;
use crate::auth;
use crate::b2c;
use crate::c2b;
use crate::control;
use crate::endpoint::record_rejection;
use crate::errors::ApiError;
use crate::faults::{self, FaultKind, FaultTarget, Phase};
use crate::ground_truth::{TxKind, TxRef};
use crate::state::SimState;
use crate::stk;

/// The whole HTTP surface: Daraja endpoints plus `/__control`.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/oauth/v1/generate", get(auth::generate))
        .route(stk::PUSH_PATH, post(stk::push))
        .route(stk::QUERY_PATH, post(stk::query))
        .route("/mpesa/c2b/v1/registerurl", post(c2b::register_v1))
        .route("/mpesa/c2b/v2/registerurl", post(c2b::register_v2))
        .route("/mpesa/c2b/v1/simulate", post(c2b::simulate))
        .route("/mpesa/c2b/v2/simulate", post(c2b::simulate))
        .route(b2c::V3_PATH, post(b2c::v3))
        .route(b2c::V1_PATH, post(b2c::v1))
        .route(account::STATUS_PATH, post(account::transaction_status))
        .route(account::BALANCE_PATH, post(account::account_balance))
        .route(account::REVERSAL_PATH, post(account::reversal))
        .merge(control::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .with_state(state)
}

async fn not_found(State(state): State<Arc<SimState>>) -> Response {
    state.error_response(ApiError::new(StatusCode::NOT_FOUND, "404.001.01", "Resource not found"))
}

async fn method_not_allowed(State(state): State<Arc<SimState>>) -> Response {
    state.error_response(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "405.001.01",
        "Method Not Allowed",
    ))
}

fn target_for(path: &str) -> Option<(FaultTarget, Option<TxKind>)> {
    Some(match path {
        "/oauth/v1/generate" => (FaultTarget::Oauth, None),
        stk::PUSH_PATH => (FaultTarget::StkPush, Some(TxKind::Stk)),
        stk::QUERY_PATH => (FaultTarget::StkQuery, None),
        "/mpesa/c2b/v1/registerurl" | "/mpesa/c2b/v2/registerurl" => {
            (FaultTarget::C2bRegister, Some(TxKind::C2bRegister))
        }
        "/mpesa/c2b/v1/simulate" | "/mpesa/c2b/v2/simulate" => (FaultTarget::C2bSimulate, Some(TxKind::C2b)),
        b2c::V3_PATH | b2c::V1_PATH => (FaultTarget::B2c, Some(TxKind::B2c)),
        account::STATUS_PATH => (FaultTarget::TransactionStatus, Some(TxKind::TransactionStatus)),
        account::BALANCE_PATH => (FaultTarget::AccountBalance, Some(TxKind::AccountBalance)),
        account::REVERSAL_PATH => (FaultTarget::Reversal, Some(TxKind::Reversal)),
        _ => return None,
    })
}

/// Endpoint faults act like the gateway in front of Daraja: before the request is processed
/// (or, with `phase: after`, by losing the answer of a processed request).
async fn inject_faults(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let Some((target, kind)) = target_for(req.uri().path()) else {
        return next.run(req).await;
    };
    let fired = state.faults.evaluate(target, None);
    if fired.is_empty() {
        return next.run(req).await;
    }
    let mut slow_ms = 0;
    let mut before: Option<(FaultKind, ApiError)> = None;
    let mut after: Option<(FaultKind, ApiError)> = None;
    let mut names = Vec::new();
    for f in &fired {
        names.push(f.kind.name());
        match f.kind {
            FaultKind::Slow => slow_ms += f.delay_ms.unwrap_or(1_500),
            FaultKind::RevokeTokens => {
                state.tokens.revoke_all();
            }
            k => {
                if let Some(e) = faults::error_for(k) {
                    let slot = if f.phase == Phase::After {
                        &mut after
                    } else {
                        &mut before
                    };
                    slot.get_or_insert((k, e));
                }
            }
        }
    }
    if slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    }
    if let Some((_, e)) = before {
        let request_id = state.new_request_id();
        if let Some(kind) = kind {
            record_rejection(
                &state,
                kind,
                req.uri().path(),
                serde_json::Value::Null,
                &e,
                &request_id,
                names,
            );
        }
        return e.into_response_with_id(&request_id);
    }
    let resp = next.run(req).await;
    let tx = resp.extensions().get::<TxRef>().copied();
    if let Some(tx) = tx {
        let after_name = after.as_ref().map(|(k, _)| k.name());
        state.store.with(tx, |e| {
            for n in names {
                let tagged = if Some(&n) == after_name.as_ref() {
                    format!("{n}(after)")
                } else {
                    n
                };
                e.rec.faults.push(tagged);
            }
        });
    }
    match after {
        Some((_, e)) => state.error_response(e),
        None => resp,
    }
}
