//! The control API under `/__control`: ground truth, forced outcomes, faults, configuration.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

use crate::b2c;
use crate::faults::FaultConfig;
use crate::forced::{ForceRequest, Matcher};
use crate::ground_truth::{TxFilter, TxKind, TxStatus};
use crate::scenarios::{self, Flow};
use crate::state::{ResetOptions, SimState};
use crate::stk;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/__control/health", get(health))
        .route("/__control/transactions", get(transactions))
        .route("/__control/callbacks", get(callbacks))
        .route("/__control/reset", post(reset))
        .route(
            "/__control/outcomes",
            get(list_outcomes).post(force_outcome).delete(clear_outcomes),
        )
        .route(
            "/__control/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/__control/config", get(get_config).patch(patch_config))
        .route("/__control/tokens/revoke", post(revoke_tokens))
        .route("/__control/initiators/unlock", post(unlock_initiators))
        .route("/__control/c2b/registrations", get(registrations))
        .route("/__control/scenarios", get(scenario_table))
}

fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// Reads an optional JSON body (empty = `null`).
async fn json_body(body: Body, limit: usize) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| bad(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

const CONTROL_BODY_LIMIT: usize = 1024 * 1024;

async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn transactions(State(state): State<Arc<SimState>>, uri: Uri) -> Response {
    let filter = match Query::<TxFilter>::try_from_uri(&uri) {
        Ok(Query(f)) => f,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.body_text()),
    };
    Json(state.store.list(&filter)).into_response()
}

async fn callbacks(State(state): State<Arc<SimState>>) -> Response {
    let all: Vec<Value> = state
        .store
        .list(&TxFilter::default())
        .into_iter()
        .flat_map(|t| {
            let seq = t.seq;
            let kind = t.kind;
            t.callbacks.into_iter().map(move |c| {
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                v["transaction_seq"] = json!(seq);
                v["transaction_kind"] = json!(kind);
                v
            })
        })
        .collect();
    Json(all).into_response()
}

async fn reset(State(state): State<Arc<SimState>>, body: Body) -> Response {
    let opts = match json_body(body, CONTROL_BODY_LIMIT).await {
        Ok(Value::Null) => ResetOptions::default(),
        Ok(v) => match serde_json::from_value::<ResetOptions>(v) {
            Ok(o) => o,
            Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
        },
        Err(r) => return r,
    };
    state.reset(opts);
    Json(json!({ "reset": true })).into_response()
}

async fn list_outcomes(State(state): State<Arc<SimState>>) -> Response {
    Json(state.forced.list()).into_response()
}

async fn clear_outcomes(State(state): State<Arc<SimState>>) -> Response {
    state.forced.clear();
    Json(json!({ "cleared": true })).into_response()
}

async fn force_outcome(State(state): State<Arc<SimState>>, body: Body) -> Response {
    let v = match json_body(body, CONTROL_BODY_LIMIT).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let req: ForceRequest = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let rule = match req.into_rule(state.forced.next_id()) {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let existing_id = match &rule.matcher {
        Matcher::CheckoutRequestId(id) | Matcher::OriginatorConversationId(id) => Some(id.clone()),
        _ => None,
    };
    if let Some(id) = existing_id {
        let found = state.store.find(&id).and_then(|tx| {
            state.store.with(tx, |e| {
                let flow = match e.rec.kind {
                    TxKind::Stk => Flow::Stk,
                    TxKind::B2c => Flow::B2c,
                    TxKind::C2b => Flow::C2b,
                    _ => return Err("that id belongs to no STK, B2C or C2B payment".to_string()),
                };
                if e.rec.status != TxStatus::Pending {
                    return Err("that payment is already settled".to_string());
                }
                let old = e
                    .rec
                    .decision
                    .clone()
                    .unwrap_or_else(|| scenarios::Plan::new(flow, "0", scenarios::Delivery::Send, ""));
                let mut plan = rule.apply(flow, old);
                if rule.delay_ms.is_none() {
                    plan.delay_ms = e.rec.decision.as_ref().and_then(|d| d.delay_ms);
                }
                e.rec.decision = Some(plan);
                Ok((tx, e.rec.kind, e.rec.seq))
            })
        });
        match found {
            Some(Ok((tx, kind, seq))) => {
                match kind {
                    TxKind::Stk => stk::reschedule(&state, tx, rule.delay_ms),
                    TxKind::B2c => b2c::reschedule(&state, tx, rule.delay_ms),
                    _ => {}
                }
                return (
                    StatusCode::CREATED,
                    Json(json!({ "id": rule.id, "applied_to": { "seq": seq, "kind": kind }, "rule": rule })),
                )
                    .into_response();
            }
            Some(Err(msg)) => return bad(StatusCode::CONFLICT, msg),
            _ if matches!(rule.matcher, Matcher::CheckoutRequestId(_)) => {
                return bad(StatusCode::NOT_FOUND, "unknown CheckoutRequestID")
            }
            // An OriginatorConversationID is the client's: it may be forced before the request.
            _ => {}
        }
    }
    state.forced.add(rule.clone());
    (
        StatusCode::CREATED,
        Json(json!({ "id": rule.id, "applied_to": null, "rule": rule })),
    )
        .into_response()
}

async fn get_faults(State(state): State<Arc<SimState>>) -> Response {
    Json(state.faults.snapshot()).into_response()
}

async fn put_faults(State(state): State<Arc<SimState>>, body: Body) -> Response {
    let v = match json_body(body, CONTROL_BODY_LIMIT).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let cfg: FaultConfig = match serde_json::from_value(v) {
        Ok(c) => c,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = cfg.validate() {
        return bad(StatusCode::BAD_REQUEST, e);
    }
    state.faults.configure(cfg, state.config().seed);
    Json(state.faults.snapshot()).into_response()
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> Response {
    state.faults.configure(FaultConfig::default(), state.config().seed);
    Json(state.faults.snapshot()).into_response()
}

async fn get_config(State(state): State<Arc<SimState>>) -> Response {
    Json(&*state.config()).into_response()
}

async fn patch_config(State(state): State<Arc<SimState>>, body: Body) -> Response {
    let patch = match json_body(body, CONTROL_BODY_LIMIT).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if patch.get("faults").is_some() {
        return bad(StatusCode::BAD_REQUEST, "use PUT /__control/faults to change faults");
    }
    match state.config().merged_with(&patch) {
        Ok(cfg) => {
            state.set_config(cfg);
            Json(&*state.config()).into_response()
        }
        Err(e) => bad(StatusCode::BAD_REQUEST, e),
    }
}

async fn revoke_tokens(State(state): State<Arc<SimState>>) -> Response {
    let n = state.tokens.revoke_all();
    Json(json!({ "revoked": n })).into_response()
}

async fn unlock_initiators(State(state): State<Arc<SimState>>) -> Response {
    state.initiators.reset();
    Json(json!({ "unlocked": true })).into_response()
}

async fn registrations(State(state): State<Arc<SimState>>) -> Response {
    Json(state.c2b.list()).into_response()
}

async fn scenario_table() -> Response {
    let specials: Vec<Value> = scenarios::SPECIALS
        .iter()
        .map(|(code, what)| json!({ "msisdn": format!("2547000{code:05}"), "behaviour": what }))
        .collect();
    Json(json!({
        "rule": "2547000 + five-digit result code yields that code (254700001032 -> 1032); every other valid number succeeds",
        "sandbox_test_number": { "msisdn": "254708374149", "stk": "1037 after the callback delay", "b2c": "success", "c2b": "success" },
        "specials": specials,
    }))
    .into_response()
}
