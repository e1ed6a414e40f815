//! The simulator's ground truth, indexed the way the checks look things up: STK pushes by
//! AccountReference (our payment's reference), B2C requests by OriginatorConversationID (our
//! payout id), C2B payments by receipt and by account number.

use std::collections::HashMap;

use serde_json::{json, Value};
use simulator::ground_truth::{AttemptState, TransactionRecord, TxKind, TxStatus};
use simulator::FaultTarget;

#[derive(Debug, Default)]
pub struct Truth {
    /// Every STK push, by AccountReference.
    pub stk_by_reference: HashMap<String, Vec<TransactionRecord>>,
    /// Every B2C request, by the OriginatorConversationID it carried (refused duplicates included).
    pub b2c_by_ocid: HashMap<String, Vec<TransactionRecord>>,
    /// C2B payments customers made (simulate), in order.
    pub c2b: Vec<TransactionRecord>,
    /// Rows not settled yet (status `pending`) and callbacks not finished, when taken.
    pub unsettled: usize,
}

fn is_push(r: &TransactionRecord) -> bool {
    r.kind == TxKind::Stk && r.endpoint.contains("processrequest")
}

fn is_payment_request(r: &TransactionRecord) -> bool {
    r.kind == TxKind::B2c && r.endpoint.contains("paymentrequest")
}

fn is_simulate(r: &TransactionRecord) -> bool {
    r.kind == TxKind::C2b && r.endpoint.contains("simulate")
}

impl Truth {
    pub fn new(records: Vec<TransactionRecord>) -> Truth {
        let mut truth = Truth::default();
        for r in records {
            if r.status == TxStatus::Pending || r.callbacks.iter().any(|c| c.state == AttemptState::Scheduled) {
                truth.unsettled += 1;
            }
            if is_push(&r) {
                let reference = r
                    .reference
                    .clone()
                    .or_else(|| r.request["AccountReference"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                truth.stk_by_reference.entry(reference).or_default().push(r);
            } else if is_payment_request(&r) {
                let ocid = r
                    .originator_conversation_id
                    .clone()
                    .or_else(|| r.request["OriginatorConversationID"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                truth.b2c_by_ocid.entry(ocid).or_default().push(r);
            } else if is_simulate(&r) {
                truth.c2b.push(r);
            }
        }
        truth
    }

    pub fn stk(&self, reference: &str) -> &[TransactionRecord] {
        self.stk_by_reference.get(reference).map_or(&[], Vec::as_slice)
    }

    pub fn b2c(&self, ocid: &str) -> &[TransactionRecord] {
        self.b2c_by_ocid.get(ocid).map_or(&[], Vec::as_slice)
    }
}

/// A request Daraja processed (a refusal, injected `before` or real, processed nothing).
pub fn processed(r: &TransactionRecord) -> bool {
    r.status != TxStatus::Rejected
}

/// Whether a callback of `kind` reached us (we answered 2xx at least once).
pub fn delivered(r: &TransactionRecord, kind: FaultTarget) -> bool {
    r.callbacks
        .iter()
        .any(|c| c.kind == kind && c.state == AttemptState::Delivered)
}

/// Whether a callback of `kind` was attempted at all (dropped ones included).
pub fn attempted(r: &TransactionRecord, kind: FaultTarget) -> bool {
    r.callbacks.iter().any(|c| c.kind == kind)
}

/// The ground-truth row as the report shows it: ids, outcome, faults and each callback attempt.
pub fn summary(r: &TransactionRecord) -> Value {
    let callbacks: Vec<Value> = r
        .callbacks
        .iter()
        .map(|c| {
            let mut v = json!({"kind": c.kind.name(), "state": c.state, "http_status": c.http_status});
            if !c.faults.is_empty() {
                v["faults"] = json!(c.faults);
            }
            if c.duplicate {
                v["duplicate"] = json!(true);
            }
            v
        })
        .collect();
    let mut v = json!({
        "seq": r.seq,
        "kind": r.kind,
        "status": r.status,
        "http_status": r.http_status,
        "result_code": r.result_code,
        "money_moved": r.money_moved,
        "amount": r.amount,
        "created_at": r.created_at,
        "callbacks": callbacks,
    });
    let fields = [
        ("error_code", &r.error_code),
        ("reference", &r.reference),
        ("receipt", &r.receipt),
        ("checkout_request_id", &r.checkout_request_id),
        ("originator_conversation_id", &r.originator_conversation_id),
        ("conversation_id", &r.conversation_id),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            v[name] = json!(value);
        }
    }
    if !r.faults.is_empty() {
        v["faults"] = json!(r.faults);
    }
    if let Some(decision) = &r.decision {
        v["decision"] = json!({"source": decision.source, "delivery": decision.delivery});
    }
    v
}

pub fn summaries<'a>(rows: impl IntoIterator<Item = &'a TransactionRecord>) -> Value {
    Value::Array(rows.into_iter().map(summary).collect())
}
