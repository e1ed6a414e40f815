//! The invariants: every record the product shows, and every transaction the simulator saw,
//! compared. Each flow is one function; each broken invariant is a [`Finding`] naming the record
//! and the ground-truth rows. Fields the API does not have yet (a payment's `unknown` status, a C2B
//! payment's `verification`) are used when present and noted when absent.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use simulator::ground_truth::{TransactionRecord, TxStatus};
use simulator::FaultTarget;

use super::mix::{Mix, C2B_SHORTCODE};
use super::record::{verification_status, Ledger, Observed, Sent};
use super::report::{Check, Explained, Finding, Flow};
use super::truth::{attempted, delivered, processed, summaries, summary, Truth};

mod c2b;
mod payouts;
mod stk;

use c2b::{c2b, invoices};
use payouts::payouts;
use stk::stk;

/// Everything the checks compare.
pub struct Inputs<'a> {
    pub mix: &'a Mix,
    pub ledger: &'a Ledger,
    pub observed: &'a Observed,
    pub truth: &'a Truth,
    /// When the dev stack was killed (crash form).
    pub kills: &'a [DateTime<Utc>],
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    pub still_open: Vec<Explained>,
    pub tolerated: Vec<Explained>,
    pub notes: Vec<String>,
}

impl Verdict {
    fn fail(&mut self, flow: Flow, check: Check, record: impl Into<String>, detail: impl Into<String>, truth: Value) {
        self.findings.push(Finding {
            flow,
            check,
            record: record.into(),
            detail: detail.into(),
            truth,
        });
    }

    fn open(&mut self, flow: Flow, record: impl Into<String>, reason: &'static str, detail: impl Into<String>) {
        self.still_open.push(Explained {
            flow,
            record: record.into(),
            reason,
            detail: detail.into(),
        });
    }

    fn tolerate(&mut self, flow: Flow, record: impl Into<String>, reason: &'static str, detail: impl Into<String>) {
        self.tolerated.push(Explained {
            flow,
            record: record.into(),
            reason,
            detail: detail.into(),
        });
    }
}

pub fn check(inputs: &Inputs) -> Verdict {
    let mut verdict = Verdict::default();
    stk(inputs, &mut verdict);
    payouts(inputs, &mut verdict);
    c2b(inputs, &mut verdict);
    invoices(inputs, &mut verdict);
    verdict
}

fn status_of(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("?")
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().unwrap_or("?")
}

const STK_OPEN: &[&str] = &["pending", "sent", "unknown"];
const STK_NOT_PAID: &[&str] = &["failed", "cancelled", "timeout"];
const PAYOUT_OPEN: &[&str] = &["pending", "sent", "awaiting_approval"];

/// Duplicate creations of one logical resource: several listed, or several ids for one key.
fn duplicates(verdict: &mut Verdict, flow: Flow, ours: &str, listed: &[&Value], sent: Option<&Sent>) {
    if listed.len() > 1 {
        let ids: Vec<&str> = listed.iter().map(|v| id_of(v)).collect();
        verdict.fail(
            flow,
            Check::DuplicateCreations,
            ours,
            format!("{} resources for one creation: {}", listed.len(), ids.join(", ")),
            Value::Null,
        );
    } else if let Some(sent) = sent {
        let ids = sent.ids();
        if ids.len() > 1 {
            verdict.fail(
                flow,
                Check::DuplicateCreations,
                ours,
                format!(
                    "one Idempotency-Key answered with {} ids: {}",
                    ids.len(),
                    ids.into_iter().collect::<Vec<_>>().join(", ")
                ),
                Value::Null,
            );
        }
        // Another body under the same key must be refused, never create.
        for answer in &sent.reused_key {
            if let Some(other) = answer.resource_id().filter(|id| !sent.ids().contains(id)) {
                verdict.fail(
                    flow,
                    Check::DuplicateCreations,
                    ours,
                    format!("the same key with another body created {other}"),
                    Value::Null,
                );
            }
        }
    }
}

fn server_errors(verdict: &mut Verdict, flow: Flow, record: &str, sent: Option<&Sent>, context: String, truth: Value) {
    let Some(sent) = sent else { return };
    let errors = sent.server_errors();
    if !errors.is_empty() {
        // Counted per route from the HTTP figures; this names the record behind them.
        verdict.findings.push(Finding {
            flow,
            check: Check::ServerErrors,
            record: record.to_owned(),
            detail: format!("answered {}; {context}", errors.join(", ")),
            truth,
        });
    }
}

/// Whether a kill happened between two ground-truth moments (a resubmission across a crash).
fn crash_between(kills: &[DateTime<Utc>], first: &str, later: &str) -> bool {
    let at = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc));
    match (at(first), at(later)) {
        (Some(a), Some(b)) => kills.iter().any(|k| *k >= a && *k <= b),
        _ => false,
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;

/// Whether the answer to a request Daraja took was lost to us (an error fault injected after
/// processing): the caller could not know the request arrived.
fn ambiguous_answer(row: &TransactionRecord) -> bool {
    row.faults.iter().any(|f| f.contains("(after)"))
}
