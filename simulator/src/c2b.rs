//! C2B: URL registration (v1/v2), simulate, validation/confirmation, and the confirmation an STK
//! payment emits for shortcodes with registered URLs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::callbacks::{self, Job};
use crate::clock::{self, Nairobi};
use crate::config::{Product, RegisterResponseStyle, SimulatorConfig};
use crate::endpoint::{self, Accepted, Spec};
use crate::errors::ApiError;
use crate::faults::FaultTarget;
use crate::ground_truth::{TransactionRecord, TxKind, TxRef, TxStatus};
use crate::ids;
use crate::request::Fields;
use crate::scenarios::{self, Delivery, Flow, Plan};
use crate::state::SimState;
use crate::sync::lock;

/// A shortcode's registered URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub shortcode: String,
    pub response_type: String,
    pub confirmation_url: String,
    pub validation_url: String,
    /// 1: notifications carry a SHA-256 of the MSISDN; 2: a masked MSISDN.
    pub version: u8,
    pub registered_at: String,
}

#[derive(Default)]
pub struct Registry {
    regs: Mutex<HashMap<String, Registration>>,
}

impl Registry {
    pub fn get(&self, shortcode: &str) -> Option<Registration> {
        lock(&self.regs).get(shortcode).cloned()
    }

    pub fn list(&self) -> Vec<Registration> {
        let mut v: Vec<_> = lock(&self.regs).values().cloned().collect();
        v.sort_by(|a, b| a.shortcode.cmp(&b.shortcode));
        v
    }

    pub fn clear(&self) {
        lock(&self.regs).clear();
    }

    fn register(&self, reg: Registration, allow_again: bool) -> bool {
        let mut g = lock(&self.regs);
        if g.contains_key(&reg.shortcode) && !allow_again {
            return false;
        }
        g.insert(reg.shortcode.clone(), reg);
        true
    }
}

pub async fn register_v1(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    register(state, headers, body, 1).await
}

pub async fn register_v2(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    register(state, headers, body, 2).await
}

async fn register(state: Arc<SimState>, headers: HeaderMap, body: Body, version: u8) -> Response {
    let spec = Spec {
        kind: Some(TxKind::C2bRegister),
        endpoint: if version == 1 {
            "/mpesa/c2b/v1/registerurl"
        } else {
            "/mpesa/c2b/v2/registerurl"
        },
        product: Product::C2b,
        first_field: "ShortCode",
    };
    endpoint::run(state, spec, headers, body, move |s, f| {
        register_inner(s, f, spec, version)
    })
    .await
}

/// URLs must not contain Daraja's forbidden words (any case) nor point at tunnels / request bins.
fn acceptable_url(cfg: &SimulatorConfig, url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    !cfg.c2b_forbidden_url_words
        .iter()
        .any(|w| !w.is_empty() && lower.contains(&w.to_ascii_lowercase()))
        && !cfg
            .c2b_refused_url_hosts
            .iter()
            .any(|h| !h.is_empty() && host.contains(&h.to_ascii_lowercase()))
}

fn register_inner(state: &Arc<SimState>, f: Fields, spec: Spec, version: u8) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    let shortcode = f.digits("ShortCode", 5, 7)?;
    let response_type = f.one_of("ResponseType", &["Completed", "Cancelled"])?;
    let confirmation_url = f.url("ConfirmationURL")?;
    if !acceptable_url(&cfg, &confirmation_url) {
        return Err(ApiError::invalid("ConfirmationURL"));
    }
    let validation_url = f.url("ValidationURL")?;
    if !acceptable_url(&cfg, &validation_url) {
        return Err(ApiError::invalid("ValidationURL"));
    }
    let now = clock::now();
    let reg = Registration {
        shortcode: shortcode.clone(),
        response_type,
        confirmation_url,
        validation_url,
        version,
        registered_at: clock::rfc3339(&now),
    };
    if !state.c2b.register(reg, cfg.c2b_allow_reregistration) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500.003.1001",
            "Urls are already registered",
        ));
    }
    let (ocid, style) = state.with_rng(|r| {
        let style = match cfg.c2b_register_response {
            RegisterResponseStyle::Vary => match r.gen_range(0..3) {
                0 => RegisterResponseStyle::Code0,
                1 => RegisterResponseStyle::Code00000000,
                _ => RegisterResponseStyle::DescriptionOnly,
            },
            fixed => fixed,
        };
        (ids::request_like(r), style)
    });
    // Daraja spells it "OriginatorCoversationID" here.
    let body = match style {
        RegisterResponseStyle::Code00000000 => json!({
            "OriginatorCoversationID": ocid, "ResponseCode": "00000000", "ResponseDescription": "success"
        }),
        RegisterResponseStyle::DescriptionOnly => json!({ "ResponseDescription": "Success" }),
        _ => json!({
            "OriginatorCoversationID": ocid, "ResponseCode": "0", "ResponseDescription": "Success"
        }),
    };
    let mut rec = TransactionRecord::new(
        TxKind::C2bRegister,
        spec.endpoint,
        clock::rfc3339(&now),
        Value::Object(f.0.clone()),
    );
    rec.status = TxStatus::Completed;
    rec.completed_at = Some(clock::rfc3339(&now));
    rec.shortcode = Some(shortcode);
    rec.originator_conversation_id = Some(ocid);
    rec.response = body.clone();
    let tx = state.store.insert(rec, None);
    Ok(Accepted { body, tx: Some(tx) })
}

pub async fn simulate(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::C2b),
        endpoint: "/mpesa/c2b/v1/simulate",
        product: Product::C2b,
        first_field: "ShortCode",
    };
    endpoint::run(state, spec, headers, body, simulate_inner).await
}

fn simulate_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    let shortcode = f.digits("ShortCode", 5, 7)?;
    let command = f.one_of("CommandID", &["CustomerPayBillOnline", "CustomerBuyGoodsOnline"])?;
    let amount = f.amount("Amount", 1, 250_000)?;
    let msisdn = f.msisdn("Msisdn")?;
    let bill_ref = f.optional("BillRefNumber")?.unwrap_or_default();
    let scenario = scenarios::c2b(&msisdn);
    let plan = match state.forced.take(Flow::C2b, &msisdn, None) {
        Some(rule) => rule.apply(Flow::C2b, scenario),
        None => scenario,
    };
    let now = clock::now();
    let (ocid, receipt, delay_ms) = state.with_rng(|r| {
        let d = cfg.callback_delay;
        (
            ids::request_like(r),
            ids::receipt(r, &now),
            plan.delay_ms.unwrap_or_else(|| d.draw(r)),
        )
    });
    let body = json!({
        "OriginatorCoversationID": ocid,
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    });
    let mut rec = TransactionRecord::new(
        TxKind::C2b,
        "/mpesa/c2b/v1/simulate",
        clock::rfc3339(&now),
        Value::Object(f.0.clone()),
    );
    rec.shortcode = Some(shortcode);
    rec.msisdn = Some(msisdn.clone());
    rec.amount = Some(amount);
    rec.originator_conversation_id = Some(ocid);
    rec.reference = Some(bill_ref);
    rec.decision = Some(Plan {
        delay_ms: Some(delay_ms),
        ..plan
    });
    rec.response = body.clone();
    rec.request["CommandID"] = Value::String(command);
    let tx = state.store.insert(rec, Some(receipt));
    tracing::debug!(phone = %ids::mask_for_log(&msisdn), amount, "c2b simulate accepted");
    let s = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        run_payment(&s, tx).await;
    });
    Ok(Accepted { body, tx: Some(tx) })
}

/// What the validation URL said.
enum Validation {
    Accepted,
    Rejected(String),
    NoAnswer,
}

fn parse_validation(reply: Option<callbacks::Reply>) -> Validation {
    let Some(reply) = reply else {
        return Validation::NoAnswer;
    };
    if !(200..300).contains(&reply.status) {
        return Validation::NoAnswer;
    }
    let code = serde_json::from_str::<Value>(&reply.body)
        .ok()
        .and_then(|v| match v.get("ResultCode") {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
    match code.as_deref() {
        Some("0") => Validation::Accepted,
        Some(other) => Validation::Rejected(other.to_string()),
        None => Validation::NoAnswer,
    }
}

async fn run_payment(state: &Arc<SimState>, tx: TxRef) {
    let cfg = state.config();
    let Some((rec, receipt)) = state.store.with(tx, |e| (e.rec.clone(), e.pending_receipt.clone())) else {
        return;
    };
    let Some(plan) = rec.decision.clone() else {
        return;
    };
    let receipt = receipt.unwrap_or_default();
    if !plan.is_success() {
        finish(state, tx, TxStatus::Failed, &plan.result_code, &plan.result_desc, false);
        return;
    }
    let shortcode = rec.shortcode.clone().unwrap_or_default();
    let amount = rec.amount.unwrap_or(0);
    let now = clock::now();
    let reg = state.c2b.get(&shortcode);
    if let Some(reg) = reg
        .as_ref()
        .filter(|r| cfg.c2b_validation_enabled && !r.validation_url.is_empty())
    {
        let body = notification(&rec, reg, &receipt, &now, "");
        let reply = callbacks::deliver(
            state,
            Job {
                kind: FaultTarget::C2bValidation,
                tx,
                url: reg.validation_url.clone(),
                body,
                delay: Duration::ZERO,
            },
            Some(Duration::from_millis(cfg.c2b_validation_timeout_ms)),
        )
        .await;
        match parse_validation(reply) {
            Validation::Accepted => {}
            Validation::Rejected(code) => {
                let desc = format!("Rejected by the validation URL ({code})");
                finish(state, tx, TxStatus::Failed, &code, &desc, false);
                return;
            }
            Validation::NoAnswer if reg.response_type == "Cancelled" => {
                finish(
                    state,
                    tx,
                    TxStatus::Cancelled,
                    "validation_timeout",
                    "No validation answer in time; ResponseType Cancelled",
                    false,
                );
                return;
            }
            Validation::NoAnswer => {}
        }
    }
    state.balances.credit(&shortcode, amount);
    state.store.set_receipt(tx, &receipt);
    finish(state, tx, TxStatus::Completed, "0", &plan.result_desc, true);
    let Some(reg) = reg else {
        return;
    };
    if plan.delivery != Delivery::Send {
        return;
    }
    let balance = state.balances.get(&shortcode).utility;
    let org_balance = format!("{}.{:02}", balance / 100, (balance % 100).abs());
    let body = notification(&rec, &reg, &receipt, &now, &org_balance);
    callbacks::spawn(
        state,
        Job {
            kind: FaultTarget::C2bConfirmation,
            tx,
            url: reg.confirmation_url.clone(),
            body,
            delay: Duration::ZERO,
        },
    );
}

fn finish(state: &SimState, tx: TxRef, status: TxStatus, code: &str, desc: &str, moved: bool) {
    let now = clock::rfc3339(&clock::now());
    state.store.with(tx, |e| {
        e.rec.status = status;
        e.rec.completed_at = Some(now);
        e.rec.result_code = Some(code.to_string());
        e.rec.money_moved = moved;
        if let Some(d) = e.rec.decision.as_mut() {
            if code != d.result_code {
                d.result_code = code.to_string();
                d.result_desc = desc.to_string();
                d.money_moves = moved;
            }
        }
    });
}

fn msisdn_field(reg: &Registration, msisdn: &str) -> String {
    if reg.version == 1 {
        ids::sha256_hex(msisdn)
    } else {
        ids::mask_for_c2b(msisdn)
    }
}

/// Validation and confirmation body: every field a string.
fn notification(rec: &TransactionRecord, reg: &Registration, receipt: &str, now: &Nairobi, org_balance: &str) -> Value {
    let msisdn = rec.msisdn.clone().unwrap_or_default();
    let (first, middle, last) = ids::customer_name(&msisdn);
    let buy_goods = rec.request["CommandID"].as_str() == Some("CustomerBuyGoodsOnline")
        || rec.request["TransactionType"].as_str() == Some("CustomerBuyGoodsOnline");
    json!({
        "TransactionType": if buy_goods { "Buy Goods" } else { "Pay Bill" },
        "TransID": receipt,
        "TransTime": clock::ts14(now),
        "TransAmount": format!("{}.00", rec.amount.unwrap_or(0)),
        "BusinessShortCode": rec.shortcode.clone().unwrap_or_default(),
        "BillRefNumber": rec.reference.clone().unwrap_or_default(),
        "InvoiceNumber": "",
        "OrgAccountBalance": org_balance,
        "ThirdPartyTransID": "",
        "MSISDN": msisdn_field(reg, &msisdn),
        "FirstName": first,
        "MiddleName": middle,
        "LastName": last,
    })
}

/// An STK payment to a shortcode with registered URLs also produces a C2B confirmation carrying
/// the same receipt (TransID = MpesaReceiptNumber).
pub fn confirm_stk_payment(state: &Arc<SimState>, tx: TxRef, rec: &TransactionRecord, receipt: &str, now: &Nairobi) {
    let Some(reg) = rec.shortcode.as_deref().and_then(|s| state.c2b.get(s)) else {
        return;
    };
    let balance = state.balances.get(rec.shortcode.as_deref().unwrap_or_default()).utility;
    let org_balance = format!("{}.{:02}", balance / 100, (balance % 100).abs());
    let body = notification(rec, &reg, receipt, now, &org_balance);
    callbacks::spawn(
        state,
        Job {
            kind: FaultTarget::C2bConfirmation,
            tx,
            url: reg.confirmation_url,
            body,
            delay: Duration::ZERO,
        },
    );
}
