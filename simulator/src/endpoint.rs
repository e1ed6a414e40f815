//! The common path of every Daraja endpoint: bearer check, body limits, JSON parsing, and a
//! ground-truth row for refused requests.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

use crate::auth;
use crate::clock;
use crate::config::Product;
use crate::errors::ApiError;
use crate::ground_truth::{TransactionRecord, TxKind, TxRef, TxStatus};
use crate::request::{parse_json, read_body, Fields};
use crate::state::SimState;

/// Static facts about an endpoint.
#[derive(Clone, Copy)]
pub struct Spec {
    /// Ground-truth kind; `None` for read-only endpoints (STK Query).
    pub kind: Option<TxKind>,
    pub endpoint: &'static str,
    pub product: Product,
    /// The field Daraja names when it cannot parse the body at all.
    pub first_field: &'static str,
}

/// A synchronous success.
pub struct Accepted {
    pub body: Value,
    pub tx: Option<TxRef>,
}

pub async fn run(
    state: Arc<SimState>,
    spec: Spec,
    headers: HeaderMap,
    body: Body,
    handler: impl FnOnce(&Arc<SimState>, Fields) -> Result<Accepted, ApiError>,
) -> Response {
    if let Err(e) = auth::authorize(&state, &headers, spec.product) {
        return reject(&state, spec, Value::Null, e);
    }
    let limit = state.config().max_body_bytes;
    let bytes = match read_body(body, limit, spec.first_field).await {
        Ok(b) => b,
        Err(e) => return reject(&state, spec, Value::String("<body too large>".into()), e),
    };
    let fields = match parse_json(&headers, &bytes, spec.first_field) {
        Ok(f) => f,
        Err(e) => return reject(&state, spec, raw_request(&bytes), e),
    };
    let request = Value::Object(fields.0.clone());
    match handler(&state, fields) {
        Ok(accepted) => {
            let mut resp = axum::Json(accepted.body).into_response();
            if let Some(tx) = accepted.tx {
                resp.extensions_mut().insert(tx);
            }
            resp
        }
        Err(e) => reject(&state, spec, request, e),
    }
}

fn raw_request(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        let cut = &bytes[..bytes.len().min(4096)];
        Value::String(String::from_utf8_lossy(cut).into_owned())
    })
}

/// Answers with `e` and records the refusal.
pub fn reject(state: &SimState, spec: Spec, request: Value, e: ApiError) -> Response {
    let request_id = state.new_request_id();
    if let Some(kind) = spec.kind {
        record_rejection(state, kind, spec.endpoint, request, &e, &request_id, vec![]);
    }
    e.into_response_with_id(&request_id)
}

pub fn record_rejection(
    state: &SimState,
    kind: TxKind,
    endpoint: &str,
    request: Value,
    e: &ApiError,
    request_id: &str,
    faults: Vec<String>,
) {
    let mut rec = TransactionRecord::new(kind, endpoint, clock::rfc3339(&clock::now()), request);
    rec.status = TxStatus::Rejected;
    rec.http_status = e.status().as_u16();
    rec.error_code = e.code().map(str::to_string);
    rec.response = e.body_value(request_id);
    rec.faults = faults;
    state.store.insert(rec, None);
}

/// `Some(number)` for numeric result codes, the string otherwise (`SFC_IC0003`).
pub fn code_value(code: &str) -> Value {
    code.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(code.to_string()))
}
