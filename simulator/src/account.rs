//! Transaction Status, Account Balance and Reversal: acknowledged at once, answered with a
//! `Result` POSTed to ResultURL after the callback delay.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::DateTime;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::callbacks::{self, Job};
use crate::clock::{self, Nairobi};
use crate::config::Product;
use crate::endpoint::{self, Accepted, Spec};
use crate::errors::ApiError;
use crate::faults::FaultTarget;
use crate::ground_truth::{TransactionRecord, TxKind, TxRef, TxStatus};
use crate::ids;
use crate::request::Fields;
use crate::results::{self, param, Envelope, InitiatorRequest};
use crate::scenarios::{describe, Delivery, Flow, Plan};
use crate::state::SimState;

pub const STATUS_PATH: &str = "/mpesa/transactionstatus/v1/query";
pub const BALANCE_PATH: &str = "/mpesa/accountbalance/v1/query";
pub const REVERSAL_PATH: &str = "/mpesa/reversal/v1/request";

pub async fn transaction_status(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::TransactionStatus),
        endpoint: STATUS_PATH,
        product: Product::TransactionStatus,
        first_field: "Initiator",
    };
    endpoint::run(state, spec, headers, body, status_inner).await
}

pub async fn account_balance(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::AccountBalance),
        endpoint: BALANCE_PATH,
        product: Product::AccountBalance,
        first_field: "Initiator",
    };
    endpoint::run(state, spec, headers, body, balance_inner).await
}

pub async fn reversal(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::Reversal),
        endpoint: REVERSAL_PATH,
        product: Product::Reversal,
        first_field: "Initiator",
    };
    endpoint::run(state, spec, headers, body, reversal_inner).await
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn status_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let req = results::initiator_request(&f, "TransactionStatusQuery", "PartyA", "IdentifierType")?;
    let tid = non_empty(f.optional("TransactionID")?);
    let original = non_empty(f.optional("OriginalConversationID")?);
    let target = tid.or(original).ok_or_else(|| ApiError::invalid("TransactionID"))?;
    accept(state, f, TxKind::TransactionStatus, STATUS_PATH, req, |rec, plan| {
        rec.target_id = Some(target);
        plan
    })
}

fn balance_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let req = results::initiator_request(&f, "AccountBalance", "PartyA", "IdentifierType")?;
    accept(state, f, TxKind::AccountBalance, BALANCE_PATH, req, |_, plan| plan)
}

fn reversal_inner(state: &Arc<SimState>, f: Fields) -> Result<Accepted, ApiError> {
    let tid = f.required("TransactionID")?;
    f.amount("Amount", 1, 250_000)?;
    // The misspelled key is the one Daraja reads; the correct spelling is not enough.
    let req = results::initiator_request(&f, "TransactionReversal", "ReceiverParty", "RecieverIdentifierType")?;
    let st = state.clone();
    accept(state, f, TxKind::Reversal, REVERSAL_PATH, req, move |rec, plan| {
        rec.target_id = Some(tid.clone());
        if plan.source == "credential" {
            return plan;
        }
        // Decided now, so a second reversal of the same receipt sees the first.
        let target = st.store.find(&tid).and_then(|t| {
            st.store.with(t, |e| {
                let reversible = matches!(e.rec.kind, TxKind::Stk | TxKind::C2b)
                    && e.rec.money_moved
                    && e.rec.receipt.as_deref() == Some(tid.as_str());
                if !reversible {
                    return None;
                }
                if e.rec.reversed {
                    return Some(Err(()));
                }
                e.rec.reversed = true;
                Some(Ok((e.rec.shortcode.clone(), e.rec.msisdn.clone(), e.rec.amount)))
            })?
        });
        match target {
            None => Plan::new(Flow::Stk, "R000002", Delivery::Send, "reversal"),
            Some(Err(())) => Plan::new(Flow::Stk, "R000001", Delivery::Send, "reversal"),
            Some(Ok((shortcode, msisdn, amount))) => {
                st.balances
                    .debit(shortcode.as_deref().unwrap_or_default(), amount.unwrap_or(0));
                rec.shortcode = shortcode;
                rec.msisdn = msisdn;
                rec.amount = amount;
                Plan::new(Flow::Stk, "0", Delivery::Send, "reversal")
            }
        }
    })
}

/// Credential check, ids, ground-truth row, acknowledgement, and the delayed result.
fn accept(
    state: &Arc<SimState>,
    f: Fields,
    kind: TxKind,
    path: &str,
    req: InitiatorRequest,
    decide: impl FnOnce(&mut TransactionRecord, Plan) -> Plan,
) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    let check = state.initiators.check(&cfg, &req.initiator, &req.credential);
    let plan = match check.result_code() {
        Some(code) => Plan {
            reached_core: false,
            ..Plan::new(Flow::B2c, code, Delivery::Send, "credential")
        },
        None => Plan::new(Flow::B2c, "0", Delivery::Send, "query"),
    };
    let now = clock::now();
    let (ocid, conversation_id, receipt, delay_ms) = state.with_rng(|r| {
        let d = cfg.callback_delay;
        (
            ids::originator_conversation_id(r),
            ids::conversation_id(r, &now),
            ids::receipt(r, &now),
            d.draw(r),
        )
    });
    let body = results::ack(&ocid, &conversation_id);
    let mut rec = TransactionRecord::new(kind, path, clock::rfc3339(&now), Value::Object(f.0.clone()));
    rec.shortcode = Some(req.party_a.clone());
    rec.originator_conversation_id = Some(ocid);
    rec.conversation_id = Some(conversation_id);
    rec.response = body.clone();
    rec.request["ResultURL"] = json!(req.result_url);
    rec.request["QueueTimeOutURL"] = json!(req.timeout_url);
    rec.request["Remarks"] = json!(req.remarks);
    rec.request["Occasion"] = json!(req.occasion);
    let plan = decide(&mut rec, plan);
    rec.money_moved = kind == TxKind::Reversal && plan.is_success();
    rec.decision = Some(Plan {
        delay_ms: Some(delay_ms),
        ..plan
    });
    let tx = state.store.insert(rec, Some(receipt));
    let s = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        settle(&s, tx);
    });
    Ok(Accepted { body, tx: Some(tx) })
}

fn ts14_of(rfc: Option<&str>) -> Option<Value> {
    let t = DateTime::parse_from_rfc3339(rfc?).ok()?;
    Some(json!(clock::ts14_number(&t)))
}

/// Transaction Status answers from the same truth as everything else, at the time it answers.
fn status_answer(state: &SimState, rec: &TransactionRecord) -> (String, String, Option<Vec<Value>>) {
    let not_found = || ("2032".to_string(), describe(Flow::B2c, "2032"), None);
    let Some(target) = rec
        .target_id
        .as_deref()
        .and_then(|id| state.store.find(id))
        .and_then(|t| state.store.get(t))
    else {
        return not_found();
    };
    let reached_core = target.decision.as_ref().is_none_or(|d| d.reached_core);
    let status = match (target.kind, target.status) {
        (TxKind::B2c, _) if target.money_moved => "Completed",
        (TxKind::B2c, _) if !reached_core => return not_found(),
        (TxKind::Stk | TxKind::C2b | TxKind::B2c, TxStatus::Pending) => "Pending",
        (TxKind::Stk | TxKind::C2b, TxStatus::Completed) => "Completed",
        (TxKind::Stk | TxKind::C2b, TxStatus::Cancelled) => "Cancelled",
        (TxKind::Stk | TxKind::C2b, TxStatus::Timeout) => "Expired",
        (TxKind::Stk | TxKind::C2b | TxKind::B2c, TxStatus::Failed | TxStatus::Timeout) => "Declined",
        _ => return not_found(),
    };
    let cfg = state.config();
    let msisdn = target.msisdn.clone().unwrap_or_default();
    let org = cfg.shortcode_name(target.shortcode.as_deref().unwrap_or_default());
    let customer = ids::public_name(&msisdn);
    let (debit, credit, account_type, reason) = match target.kind {
        TxKind::B2c => (org, customer, "Utility Account", "Business Payment to Customer via API"),
        TxKind::Stk => (customer, org, "Customer Account", "Pay Bill Online"),
        _ => (customer, org, "Customer Account", "Pay Bill"),
    };
    let params = vec![
        param("DebitPartyName", Some(json!(debit))),
        param("CreditPartyName", Some(json!(credit))),
        param(
            "OriginatorConversationID",
            target.originator_conversation_id.clone().map(Value::from),
        ),
        param("InitiatedTime", ts14_of(Some(&target.created_at))),
        param("DebitAccountType", Some(json!(account_type))),
        param("DebitPartyCharges", None),
        param("TransactionReason", None),
        param("ReasonType", Some(json!(reason))),
        param("TransactionStatus", Some(json!(status))),
        param("FinalisedTime", ts14_of(target.completed_at.as_deref())),
        param("Amount", target.amount.map(|a| json!(a))),
        param("ConversationID", target.conversation_id.clone().map(Value::from)),
        param("ReceiptNo", target.receipt.clone().map(Value::from)),
    ];
    (
        "0".into(),
        "The service request has been accepted successfully.".into(),
        Some(params),
    )
}

fn settle(state: &Arc<SimState>, tx: TxRef) {
    let Some(rec) = state.store.get(tx) else {
        return;
    };
    if rec.status != TxStatus::Pending {
        return;
    }
    let Some(plan) = rec.decision.clone() else {
        return;
    };
    let now = clock::now();
    let receipt = state
        .store
        .with(tx, |e| e.pending_receipt.clone())
        .flatten()
        .unwrap_or_default();
    let occasion = rec.request["Occasion"].as_str().unwrap_or_default().to_string();
    let timeout_url = rec.request["QueueTimeOutURL"].as_str().unwrap_or_default().to_string();
    let timeout_item = param("QueueTimeoutURL", Some(json!(timeout_url)));
    let (code, desc, params, reference, transaction_id, kind) = if plan.source == "credential" {
        let target = match rec.kind {
            TxKind::TransactionStatus => FaultTarget::TransactionStatusResult,
            TxKind::AccountBalance => FaultTarget::AccountBalanceResult,
            _ => FaultTarget::ReversalResult,
        };
        (
            plan.result_code.clone(),
            plan.result_desc.clone(),
            None,
            timeout_item,
            None,
            target,
        )
    } else {
        match rec.kind {
            TxKind::TransactionStatus => {
                let (code, desc, params) = status_answer(state, &rec);
                (
                    code,
                    desc,
                    params,
                    param("Occasion", Some(json!(occasion))),
                    None,
                    FaultTarget::TransactionStatusResult,
                )
            }
            TxKind::AccountBalance => {
                let account = state.balances.get(rec.shortcode.as_deref().unwrap_or_default());
                let params = vec![
                    param("AccountBalance", Some(json!(account.daraja_string()))),
                    param("BOCompletedTime", Some(results::ts_now_number(&now))),
                ];
                (
                    "0".into(),
                    plan.result_desc.clone(),
                    Some(params),
                    timeout_item,
                    None,
                    FaultTarget::AccountBalanceResult,
                )
            }
            _ => reversal_answer(state, &rec, &plan, &receipt, &now, timeout_item),
        }
    };
    let success = code == "0";
    state.store.with(tx, |e| {
        e.rec.status = if success { TxStatus::Completed } else { TxStatus::Failed };
        e.rec.completed_at = Some(clock::rfc3339(&now));
        e.rec.result_code = Some(code.clone());
        if let Some(d) = e.rec.decision.as_mut() {
            d.result_code = code.clone();
            d.result_desc = desc.clone();
        }
    });
    if transaction_id.is_some() {
        state.store.set_receipt(tx, &receipt);
    }
    let body = Envelope {
        result_type: 0,
        code: &code,
        desc: &desc,
        originator_conversation_id: rec.originator_conversation_id.as_deref().unwrap_or_default(),
        conversation_id: rec.conversation_id.as_deref().unwrap_or_default(),
        transaction_id: transaction_id.unwrap_or_else(|| ids::placeholder_receipt(&now)),
        params,
        reference,
    }
    .to_json();
    let url = rec.request["ResultURL"].as_str().unwrap_or_default().to_string();
    callbacks::spawn(
        state,
        Job {
            kind,
            tx,
            url,
            body,
            delay: Duration::ZERO,
        },
    );
}

type Answer = (String, String, Option<Vec<Value>>, Value, Option<String>, FaultTarget);

fn reversal_answer(
    state: &SimState,
    rec: &TransactionRecord,
    plan: &Plan,
    receipt: &str,
    now: &Nairobi,
    reference: Value,
) -> Answer {
    if !plan.is_success() {
        return (
            plan.result_code.clone(),
            plan.result_desc.clone(),
            None,
            reference,
            None,
            FaultTarget::ReversalResult,
        );
    }
    let cfg = state.config();
    let shortcode = rec.shortcode.clone().unwrap_or_default();
    let account = state.balances.get(&shortcode);
    let utility = format!("{:.2}", account.utility as f64 / 100.0);
    let params = vec![
        param(
            "DebitAccountBalance",
            Some(json!(format!("Utility Account|KES|{utility}|{utility}|0.00|0.00"))),
        ),
        param("Amount", Some(json!(rec.amount.unwrap_or(0) as f64))),
        param("TransCompletedTime", Some(results::ts_now_number(now))),
        param("OriginalTransactionID", rec.target_id.clone().map(Value::from)),
        param("Charge", Some(json!(0.0))),
        param(
            "CreditPartyPublicName",
            Some(json!(ids::public_name(rec.msisdn.as_deref().unwrap_or_default()))),
        ),
        param("DebitPartyPublicName", Some(json!(cfg.shortcode_name(&shortcode)))),
    ];
    (
        "0".into(),
        plan.result_desc.clone(),
        Some(params),
        reference,
        Some(receipt.to_string()),
        FaultTarget::ReversalResult,
    )
}
