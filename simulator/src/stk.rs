//! M-Pesa Express: STK Push, its callback, and STK Query.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::c2b;
use crate::callbacks::{self, Job};
use crate::clock::{self, Nairobi};
use crate::config::{Product, ShortcodeKind, SimulatorConfig};
use crate::endpoint::{self, code_value, Accepted, Spec};
use crate::errors::ApiError;
use crate::faults::FaultTarget;
use crate::ground_truth::{Conflict, TransactionRecord, TxKind, TxRef, TxStatus};
use crate::ids;
use crate::request::Fields;
use crate::scenarios::{self, Delivery, Flow, Plan};
use crate::state::SimState;
use crate::test_credentials::stk_password;

pub const PUSH_PATH: &str = "/mpesa/stkpush/v1/processrequest";
pub const QUERY_PATH: &str = "/mpesa/stkpushquery/v1/query";

const LOCKED: &str = "Unable to lock subscriber, a transaction is already in process for the current subscriber";

pub async fn push(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::Stk),
        endpoint: PUSH_PATH,
        product: Product::Stk,
        first_field: "BusinessShortCode",
    };
    endpoint::run(state, spec, headers, body, push_inner).await
}

/// Shortcode, Password and Timestamp, checked the way Daraja does for push and query.
fn check_credentials(cfg: &SimulatorConfig, f: &Fields) -> Result<String, ApiError> {
    let shortcode = f.digits("BusinessShortCode", 5, 7)?;
    let password = f.required("Password")?;
    let timestamp = f.required("Timestamp")?;
    if !clock::is_valid_ts14(&timestamp) {
        return Err(ApiError::invalid("Timestamp"));
    }
    let sc = cfg
        .stk_shortcode(&shortcode)
        .ok_or_else(|| ApiError::e500_1001("Merchant does not exist"))?;
    if password.trim() != stk_password(&shortcode, &sc.passkey, &timestamp) {
        return Err(ApiError::e500_1001("Wrong credentials"));
    }
    Ok(shortcode)
}

fn push_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    f.digits("BusinessShortCode", 5, 7)?;
    f.required("Password")?;
    let timestamp = f.required("Timestamp")?;
    if !clock::is_valid_ts14(&timestamp) {
        return Err(ApiError::invalid("Timestamp"));
    }
    let tt = f.one_of("TransactionType", &["CustomerPayBillOnline", "CustomerBuyGoodsOnline"])?;
    let amount = f.amount("Amount", 1, 250_000)?;
    f.msisdn("PartyA")?;
    let party_b = f.digits("PartyB", 5, 7)?;
    let phone = f.msisdn("PhoneNumber")?;
    let callback_url = f.url("CallBackURL")?;
    let reference = f.present("AccountReference")?;
    let desc = f.present("TransactionDesc")?;
    let shortcode = check_credentials(&cfg, &f)?;
    let sc = cfg
        .stk_shortcode(&shortcode)
        .ok_or_else(|| ApiError::e500_1001("Merchant does not exist"))?;

    // Daraja accepts these and fails them later; the scenario only applies to sound requests.
    let product_ok = match sc.kind {
        ShortcodeKind::Paybill => tt == "CustomerPayBillOnline" && party_b == sc.shortcode,
        ShortcodeKind::Till => tt == "CustomerBuyGoodsOnline" && sc.tills.contains(&party_b),
    };
    let text_ok = reference.chars().count() <= 12 && desc.chars().count() <= 13;
    let scenario = if !product_ok {
        Plan::new(Flow::Stk, "2028", Delivery::Send, "product_mismatch")
    } else if !text_ok {
        Plan::new(Flow::Stk, "1025", Delivery::Send, "text_too_long")
    } else {
        scenarios::stk(&phone)
    };
    let forced = state.forced.take(Flow::Stk, &phone, None);
    let plan = match &forced {
        Some(rule) => rule.apply(Flow::Stk, scenario),
        None => scenario,
    };

    let now = clock::now();
    let delay_ms = settle_delay(&cfg, &plan);
    let (mrid, crid, receipt) = state.with_rng(|r| {
        let mrid = ids::request_like(r);
        let crid = ids::checkout_request_id(r, &now, &phone);
        let receipt = ids::receipt(r, &now);
        (mrid, crid, receipt)
    });
    let crid = unique_checkout_id(state, crid, &now, &phone);
    let delay_ms = delay_ms.unwrap_or_else(|| {
        let d = cfg.callback_delay;
        state.with_rng(|r| d.draw(r))
    });
    let body = json!({
        "MerchantRequestID": mrid,
        "CheckoutRequestID": crid,
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing",
    });
    let mut rec = TransactionRecord::new(TxKind::Stk, PUSH_PATH, clock::rfc3339(&now), Value::Object(f.0.clone()));
    rec.shortcode = Some(shortcode);
    rec.msisdn = Some(phone.clone());
    rec.amount = Some(amount);
    rec.merchant_request_id = Some(mrid);
    rec.checkout_request_id = Some(crid);
    rec.reference = Some(reference);
    rec.decision = Some(Plan {
        delay_ms: Some(delay_ms),
        ..plan
    });
    rec.response = body.clone();
    rec.request["CallBackURL"] = Value::String(callback_url);

    match state
        .store
        .insert_stk(rec, &phone, cfg.stk_subscriber_lock, Some(receipt))
    {
        Ok(tx) => {
            tracing::debug!(phone = %ids::mask_for_log(&phone), amount, "stk push accepted");
            schedule(state, tx, 0, Duration::from_millis(delay_ms));
            Ok(Accepted { body, tx: Some(tx) })
        }
        Err(Conflict::SubscriberLocked) | Err(Conflict::DuplicateOriginatorConversationId) => {
            if let Some(rule) = forced {
                state.forced.give_back(rule);
            }
            Err(ApiError::e500_1001(LOCKED))
        }
    }
}

/// The forced or prompt-lifetime delay, if the plan fixes one.
fn settle_delay(cfg: &SimulatorConfig, plan: &Plan) -> Option<u64> {
    if plan.at_prompt_lifetime {
        Some(cfg.stk_prompt_lifetime_ms)
    } else {
        plan.delay_ms
    }
}

fn unique_checkout_id(state: &SimState, mut crid: String, now: &Nairobi, phone: &str) -> String {
    for _ in 0..20 {
        if state.store.find(&crid).is_none() {
            break;
        }
        crid = state.with_rng(|r| ids::checkout_request_id(r, now, phone));
    }
    crid
}

/// Settles the payment after `delay` unless it was rescheduled (generation changed).
pub fn schedule(state: &Arc<SimState>, tx: TxRef, generation: u64, delay: Duration) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        settle(&state, tx, generation);
    });
}

pub fn status_for(code: &str) -> TxStatus {
    match code {
        "0" => TxStatus::Completed,
        "1032" => TxStatus::Cancelled,
        "1037" => TxStatus::Timeout,
        _ => TxStatus::Failed,
    }
}

fn settle(state: &Arc<SimState>, tx: TxRef, generation: u64) {
    let cfg = state.config();
    let now = clock::now();
    let settled = state.store.with(tx, |e| {
        if e.generation != generation || e.rec.status != TxStatus::Pending {
            return None;
        }
        let plan = e.rec.decision.clone()?;
        e.rec.status = status_for(&plan.result_code);
        e.rec.completed_at = Some(clock::rfc3339(&now));
        e.rec.result_code = Some(plan.result_code.clone());
        e.rec.money_moved = plan.money_moves;
        Some((plan, e.rec.clone(), e.pending_receipt.clone()))
    });
    let Some(Some((plan, rec, receipt))) = settled else {
        return;
    };
    let phone = rec.msisdn.clone().unwrap_or_default();
    let shortcode = rec.shortcode.clone().unwrap_or_default();
    let amount = rec.amount.unwrap_or(0);
    state.store.close_prompt(tx, &phone);
    let receipt = receipt.unwrap_or_default();
    if plan.money_moves {
        state.store.set_receipt(tx, &receipt);
        state.balances.credit(&shortcode, amount);
    }
    if plan.delivery == Delivery::Send {
        let url = rec.request["CallBackURL"].as_str().unwrap_or_default().to_string();
        let body = callback_body(&cfg, &rec, &plan, &receipt, &now);
        callbacks::spawn(
            state,
            Job {
                kind: FaultTarget::StkCallback,
                tx,
                url,
                body,
                delay: Duration::ZERO,
            },
        );
    }
    if plan.money_moves && cfg.stk_emits_c2b_confirmation {
        c2b::confirm_stk_payment(state, tx, &rec, &receipt, &now);
    }
}

/// The STK callback. ResultCode is a JSON number (a string for non-numeric codes).
pub fn callback_body(
    cfg: &SimulatorConfig,
    rec: &TransactionRecord,
    plan: &Plan,
    receipt: &str,
    now: &Nairobi,
) -> Value {
    let mut cb = json!({
        "MerchantRequestID": rec.merchant_request_id,
        "CheckoutRequestID": rec.checkout_request_id,
        "ResultCode": code_value(&plan.result_code),
        "ResultDesc": plan.result_desc,
    });
    if plan.result_code == "0" {
        let amount = rec.amount.unwrap_or(0);
        let amount = if cfg.stk_callback_amount_as_float {
            json!(amount as f64)
        } else {
            json!(amount)
        };
        let phone: u64 = rec.msisdn.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0);
        cb["CallbackMetadata"] = json!({ "Item": [
            { "Name": "Amount", "Value": amount },
            { "Name": "MpesaReceiptNumber", "Value": receipt },
            { "Name": "Balance" },
            { "Name": "TransactionDate", "Value": clock::ts14_number(now) },
            { "Name": "PhoneNumber", "Value": phone },
        ]});
    }
    json!({ "Body": { "stkCallback": cb } })
}

pub async fn query(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: None,
        endpoint: QUERY_PATH,
        product: Product::Stk,
        first_field: "BusinessShortCode",
    };
    endpoint::run(state, spec, headers, body, query_inner).await
}

fn query_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    let shortcode = check_credentials(&cfg, &f)?;
    let crid = f.required("CheckoutRequestID")?;
    let not_exist = || ApiError::e500_1001("The transaction does not Exist");
    let tx = state.store.find(&crid).ok_or_else(not_exist)?;
    let not_found_window = Duration::from_millis(cfg.stk_query_not_found_ms);
    let answer = state
        .store
        .with(tx, |e| {
            let r = &e.rec;
            if r.kind != TxKind::Stk
                || r.checkout_request_id.as_deref() != Some(crid.as_str())
                || r.shortcode.as_deref() != Some(shortcode.as_str())
            {
                return Err(not_exist());
            }
            if r.status == TxStatus::Pending {
                return Err(if e.created.elapsed() < not_found_window {
                    not_exist()
                } else {
                    ApiError::e500_1001("The transaction is being processed")
                });
            }
            let plan = r
                .decision
                .clone()
                .unwrap_or_else(|| Plan::new(Flow::Stk, r.result_code.as_deref().unwrap_or("1"), Delivery::Send, ""));
            Ok(json!({
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": r.merchant_request_id,
                "CheckoutRequestID": r.checkout_request_id,
                "ResultCode": plan.result_code,
                "ResultDesc": plan.result_desc,
            }))
        })
        .ok_or_else(not_exist)??;
    Ok(Accepted { body: answer, tx: None })
}

/// For the control API: a new outcome for a payment that is still open.
pub fn reschedule(state: &Arc<SimState>, tx: TxRef, delay_ms: Option<u64>) {
    if let Some(ms) = delay_ms {
        if let Some(generation) = state.store.with(tx, |e| {
            e.generation += 1;
            e.generation
        }) {
            schedule(state, tx, generation, Duration::from_millis(ms));
        }
    }
}
