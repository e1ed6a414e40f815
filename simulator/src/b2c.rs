//! B2C payment request (v3 and the older v1 path) and its result / queue-timeout POST.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

use crate::callbacks::{self, Job};
use crate::clock;
use crate::config::Product;
use crate::endpoint::{self, Accepted, Spec};
use crate::errors::ApiError;
use crate::faults::FaultTarget;
use crate::ground_truth::{Conflict, TransactionRecord, TxKind, TxRef, TxStatus};
use crate::ids;
use crate::initiator::CredentialCheck;
use crate::request::Fields;
use crate::results::{self, param, Envelope};
use crate::scenarios::{self, Delivery, Flow, Plan};
use crate::state::SimState;

pub const V3_PATH: &str = "/mpesa/b2c/v3/paymentrequest";
pub const V1_PATH: &str = "/mpesa/b2c/v1/paymentrequest";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V3,
}

pub async fn v3(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::B2c),
        endpoint: V3_PATH,
        product: Product::B2c,
        first_field: "OriginatorConversationID",
    };
    endpoint::run(state, spec, headers, body, |s, f| payment(s, f, Version::V3)).await
}

pub async fn v1(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Body) -> Response {
    let spec = Spec {
        kind: Some(TxKind::B2c),
        endpoint: V1_PATH,
        product: Product::B2c,
        first_field: "InitiatorName",
    };
    endpoint::run(state, spec, headers, body, |s, f| payment(s, f, Version::V1)).await
}

fn duplicate() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "500.002.1001",
        "Duplicate OriginatorConversationID",
    )
}

fn payment(state: &Arc<SimState>, f: Fields, version: Version) -> Result<Accepted, ApiError> {
    let cfg = state.config();
    let given_ocid = match version {
        Version::V3 => Some(f.required("OriginatorConversationID")?),
        Version::V1 => None,
    };
    let initiator = f.required("InitiatorName")?;
    let credential = f.required("SecurityCredential")?;
    f.one_of("CommandID", &["BusinessPayment", "SalaryPayment", "PromotionPayment"])?;
    let amount = f.amount("Amount", 10, 250_000)?;
    let party_a = f.digits("PartyA", 5, 7)?;
    let party_b = f.msisdn("PartyB")?;
    f.text_len("Remarks", 2, 100)?;
    f.url("QueueTimeOutURL")?;
    f.url("ResultURL")?;
    match version {
        // v3 spells it "Occassion" and wants it present.
        Version::V3 => f.present("Occassion")?,
        Version::V1 => f.optional("Occasion")?.unwrap_or_default(),
    };
    if cfg.org(&party_a).is_none() {
        return Err(ApiError::invalid("PartyA"));
    }
    if let Some(o) = &given_ocid {
        // Checked before the credential so a duplicate never counts as a failed login.
        if state.store.has_b2c_ocid(o) {
            return Err(duplicate());
        }
    }
    let check = state.initiators.check(&cfg, &initiator, &credential);
    let mut forced = None;
    let plan = match check.result_code() {
        Some(code) => Plan {
            reached_core: false,
            ..Plan::new(Flow::B2c, code, Delivery::Send, "credential")
        },
        None => {
            let scenario = scenarios::b2c(&party_b);
            forced = state.forced.take(Flow::B2c, &party_b, given_ocid.as_deref());
            match &forced {
                Some(rule) => rule.apply(Flow::B2c, scenario),
                None => scenario,
            }
        }
    };
    debug_assert!(check == CredentialCheck::Valid || plan.source == "credential");

    let now = clock::now();
    let (ocid, conversation_id, receipt, delay_ms) = state.with_rng(|r| {
        let ocid = given_ocid.clone().unwrap_or_else(|| ids::originator_conversation_id(r));
        let d = cfg.callback_delay;
        (
            ocid,
            ids::conversation_id(r, &now),
            ids::receipt(r, &now),
            plan.delay_ms.unwrap_or_else(|| d.draw(r)),
        )
    });
    let body = json!({
        "ConversationID": conversation_id,
        "OriginatorConversationID": ocid,
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    });
    let path = if version == Version::V3 { V3_PATH } else { V1_PATH };
    let mut rec = TransactionRecord::new(TxKind::B2c, path, clock::rfc3339(&now), Value::Object(f.0.clone()));
    rec.shortcode = Some(party_a);
    rec.msisdn = Some(party_b.clone());
    rec.amount = Some(amount);
    rec.conversation_id = Some(conversation_id);
    rec.originator_conversation_id = Some(ocid.clone());
    rec.decision = Some(Plan {
        delay_ms: Some(delay_ms),
        ..plan
    });
    rec.response = body.clone();
    match state.store.insert_b2c(rec, &ocid, Some(receipt)) {
        Ok(tx) => {
            tracing::debug!(phone = %ids::mask_for_log(&party_b), amount, "b2c accepted");
            schedule(state, tx, 0, Duration::from_millis(delay_ms));
            Ok(Accepted { body, tx: Some(tx) })
        }
        Err(Conflict::DuplicateOriginatorConversationId) | Err(Conflict::SubscriberLocked) => {
            if let Some(rule) = forced {
                state.forced.give_back(rule);
            }
            Err(duplicate())
        }
    }
}

pub fn schedule(state: &Arc<SimState>, tx: TxRef, generation: u64, delay: Duration) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        settle(&state, tx, generation);
    });
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

fn settle(state: &Arc<SimState>, tx: TxRef, generation: u64) {
    let now = clock::now();
    let Some(Some((mut plan, rec, receipt))) = state.store.with(tx, |e| {
        if e.generation != generation || e.rec.status != TxStatus::Pending {
            return None;
        }
        Some((e.rec.decision.clone()?, e.rec.clone(), e.pending_receipt.clone()))
    }) else {
        return;
    };
    let party_a = rec.shortcode.clone().unwrap_or_default();
    let party_b = rec.msisdn.clone().unwrap_or_default();
    let amount = rec.amount.unwrap_or(0);
    let receipt = receipt.unwrap_or_default();
    let mut account = None;
    if plan.money_moves {
        match state.balances.disburse(&party_a, amount) {
            Some(a) => account = Some(a),
            None => {
                plan = Plan {
                    delivery: plan.delivery,
                    ..Plan::new(Flow::B2c, "1", plan.delivery, "insufficient_funds")
                };
            }
        }
    }
    let moved = account.is_some();
    let status = if moved { TxStatus::Completed } else { TxStatus::Failed };
    let final_code = plan.result_code.clone();
    let stored_plan = plan.clone();
    state.store.with(tx, |e| {
        e.rec.status = status;
        e.rec.completed_at = Some(clock::rfc3339(&now));
        e.rec.result_code = Some(final_code);
        e.rec.money_moved = moved;
        e.rec.decision = Some(Plan {
            delay_ms: e.rec.decision.as_ref().and_then(|d| d.delay_ms),
            ..stored_plan
        });
    });
    if moved {
        state.store.set_receipt(tx, &receipt);
    }
    let ocid = rec.originator_conversation_id.clone().unwrap_or_default();
    let conversation_id = rec.conversation_id.clone().unwrap_or_default();
    let timeout_url = rec.request["QueueTimeOutURL"].as_str().unwrap_or_default().to_string();
    let result_url = rec.request["ResultURL"].as_str().unwrap_or_default().to_string();
    let (kind, url, body) = match plan.delivery {
        Delivery::Drop => return,
        Delivery::QueueTimeout => (
            FaultTarget::B2cTimeout,
            timeout_url.clone(),
            results::queue_timeout(&ocid, &conversation_id, &timeout_url, &now),
        ),
        Delivery::Send => {
            let params = account.map(|a| {
                vec![
                    param("TransactionAmount", Some(json!(amount))),
                    param("TransactionReceipt", Some(json!(receipt))),
                    param("ReceiverPartyPublicName", Some(json!(ids::public_name(&party_b)))),
                    param("TransactionCompletedDateTime", Some(json!(clock::dotted(&now)))),
                    param("B2CUtilityAccountAvailableFunds", Some(json!(a.utility as f64 / 100.0))),
                    param("B2CWorkingAccountAvailableFunds", Some(json!(a.working as f64 / 100.0))),
                    param("B2CRecipientIsRegisteredCustomer", Some(json!("Y"))),
                    param(
                        "B2CChargesPaidAccountAvailableFunds",
                        Some(json!(a.charges_paid as f64 / 100.0)),
                    ),
                ]
            });
            let transaction_id = if moved {
                receipt.clone()
            } else {
                ids::placeholder_receipt(&now)
            };
            let body = Envelope {
                result_type: 0,
                code: &plan.result_code,
                desc: &plan.result_desc,
                originator_conversation_id: &ocid,
                conversation_id: &conversation_id,
                transaction_id,
                params,
                reference: param("QueueTimeoutURL", Some(json!(timeout_url))),
            }
            .to_json();
            (FaultTarget::B2cResult, result_url, body)
        }
    };
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
