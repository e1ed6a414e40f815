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

fn stk(inputs: &Inputs, verdict: &mut Verdict) {
    let listed = inputs.observed.payments_by_reference();
    for op in inputs.mix.payments() {
        let rows = inputs.truth.stk(&op.id);
        let sent = inputs.ledger.payments.get(&op.id);
        let found = listed.get(op.id.as_str()).cloned().unwrap_or_default();
        duplicates(verdict, Flow::Stk, &op.id, &found, sent);
        let pushes: Vec<&TransactionRecord> = rows.iter().filter(|r| processed(r)).collect();
        let moved: Vec<&TransactionRecord> = rows.iter().filter(|r| r.money_moved).collect();
        let Some(payment) = found.first() else {
            let ids = sent.map(Sent::ids).unwrap_or_default();
            if !ids.is_empty() {
                verdict.fail(
                    Flow::Stk,
                    Check::Lost,
                    &op.id,
                    format!("the API named {ids:?} but does not list it"),
                    summaries(rows),
                );
            } else if !pushes.is_empty() {
                verdict.fail(
                    Flow::Stk,
                    Check::Lost,
                    &op.id,
                    format!(
                        "Daraja prompted the customer (money moved: {}) for a payment the API does not have",
                        !moved.is_empty()
                    ),
                    summaries(rows),
                );
            } else {
                verdict.tolerate(
                    Flow::Stk,
                    &op.id,
                    "never_created",
                    sent.map(Sent::outcome).unwrap_or_default(),
                );
            }
            continue;
        };
        let record = format!("{} {}", op.id, id_of(payment));
        let status = status_of(payment);
        let truth = summaries(rows);
        server_errors(
            verdict,
            Flow::Stk,
            &record,
            sent,
            format!(
                "Daraja processed the push: {}; money moved: {}; now {status}",
                !pushes.is_empty(),
                !moved.is_empty()
            ),
            truth.clone(),
        );
        if pushes.len() > 1 {
            verdict.fail(
                Flow::Stk,
                Check::SentTwice,
                &record,
                format!("Daraja prompted the customer {} times for one payment", pushes.len()),
                truth.clone(),
            );
        }
        if moved.len() > 1 {
            verdict.fail(
                Flow::Stk,
                Check::PaidTwice,
                &record,
                format!("the customer paid {} times for one payment", moved.len()),
                truth.clone(),
            );
        }
        let paid = !moved.is_empty();
        match (paid, status) {
            (true, "completed") => {
                let receipt = moved[0].receipt.as_deref();
                match payment["mpesa_receipt"].as_str() {
                    Some(shown) if Some(shown) != receipt => verdict.fail(
                        Flow::Stk,
                        Check::WrongFinalState,
                        &record,
                        format!("receipt {shown}, Daraja's is {receipt:?}"),
                        truth.clone(),
                    ),
                    // A success callback we acknowledged carries the receipt, and the state
                    // machine attaches it even to a payment reconciliation completed first: a
                    // missing one is an update lost (overwritten by a stale write).
                    None if moved.iter().any(|r| delivered(r, FaultTarget::StkCallback)) => verdict.fail(
                        Flow::Stk,
                        Check::Lost,
                        &record,
                        "the success callback was acknowledged, yet the payment has no receipt",
                        truth.clone(),
                    ),
                    _ => {}
                }
                if payment["amount"].as_u64() != moved[0].amount {
                    verdict.fail(
                        Flow::Stk,
                        Check::WrongFinalState,
                        &record,
                        format!("amount {} but {:?} moved", payment["amount"], moved[0].amount),
                        truth.clone(),
                    );
                }
            }
            (true, s) if STK_NOT_PAID.contains(&s) => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                format!(
                    "the customer paid; shown {s} ({}){}",
                    payment["failure_reason"].as_str().unwrap_or("no reason"),
                    if payment["checkout_request_id"].is_null() {
                        "; no CheckoutRequestID recorded"
                    } else {
                        ""
                    }
                ),
                truth,
            ),
            (false, "completed") => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                "shown completed; no money moved",
                truth,
            ),
            (false, s) if STK_NOT_PAID.contains(&s) => {}
            (_, s) if STK_OPEN.contains(&s) => {
                if rows.iter().any(|r| r.status == TxStatus::Pending) {
                    verdict.open(Flow::Stk, &record, "daraja_still_processing", s);
                } else if payment["checkout_request_id"].is_null()
                    && !rows.iter().any(|r| delivered(r, FaultTarget::StkCallback))
                {
                    // The push's answer was lost and no callback reached us: nothing to ask
                    // STK Query with, so `unknown` is the honest answer.
                    verdict.open(
                        Flow::Stk,
                        &record,
                        "no_checkout_request_id_and_no_callback",
                        format!("{s} (money moved: {paid})"),
                    );
                } else {
                    verdict.fail(
                        Flow::Stk,
                        Check::StillOpen,
                        &record,
                        format!("still {s}; Daraja settled it (money moved: {paid})"),
                        truth,
                    );
                }
            }
            (_, s) => verdict.fail(
                Flow::Stk,
                Check::WrongFinalState,
                &record,
                format!("unknown status {s}"),
                truth,
            ),
        }
    }
    // Every push Daraja saw belongs to a payment of the mix (by reference).
    let ours: HashSet<&str> = inputs.mix.payments().map(|p| p.id.as_str()).collect();
    for (reference, rows) in &inputs.truth.stk_by_reference {
        if !ours.contains(reference.as_str()) && rows.iter().any(processed) {
            verdict.fail(
                Flow::Stk,
                Check::Lost,
                reference,
                "Daraja saw a push with a reference the run never used",
                summaries(rows),
            );
        }
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

fn payouts(inputs: &Inputs, verdict: &mut Verdict) {
    let listed = inputs.observed.payouts_by_chaos_id();
    let mut known_ocids: HashSet<String> = HashSet::new();
    for op in inputs.mix.payouts() {
        let sent = inputs.ledger.payouts.get(&op.id);
        let found = listed.get(op.id.as_str()).cloned().unwrap_or_default();
        duplicates(verdict, Flow::Payouts, &op.id, &found, sent.map(|s| &s.sent));
        for p in &found {
            let ocid = p["originator_conversation_id"].as_str().unwrap_or(id_of(p));
            known_ocids.insert(ocid.to_owned());
        }
        let Some(payout) = found.first() else {
            let ids = sent.map(|s| s.sent.ids()).unwrap_or_default();
            let rows: Vec<&TransactionRecord> = ids.iter().flat_map(|id| inputs.truth.b2c(id)).collect();
            if !ids.is_empty() {
                verdict.fail(
                    Flow::Payouts,
                    Check::Lost,
                    &op.id,
                    format!("the API named {ids:?} but does not list it"),
                    summaries(rows),
                );
            } else {
                verdict.tolerate(
                    Flow::Payouts,
                    &op.id,
                    "never_created",
                    sent.map(|s| s.sent.outcome()).unwrap_or_default(),
                );
            }
            continue;
        };
        let id = id_of(payout);
        let ocid = payout["originator_conversation_id"].as_str().unwrap_or(id);
        let record = format!("{} {id}", op.id);
        let rows = inputs.truth.b2c(ocid);
        let truth = summaries(rows);
        let accepted: Vec<&TransactionRecord> = rows.iter().filter(|r| processed(r)).collect();
        let moved = rows.iter().filter(|r| r.money_moved).count();
        let status = status_of(payout);
        server_errors(
            verdict,
            Flow::Payouts,
            &record,
            sent.map(|s| &s.sent),
            format!("money moved: {}; now {status}", moved > 0),
            truth.clone(),
        );
        if moved > 1 {
            verdict.fail(
                Flow::Payouts,
                Check::PaidTwice,
                &record,
                format!("disbursed {moved} times"),
                truth.clone(),
            );
        }
        // A second request for one payout: accepted twice, or refused by Daraja's dedupe.
        let refused_duplicates: Vec<&TransactionRecord> = rows
            .iter()
            .filter(|r| {
                !processed(r)
                    && r.error_code.as_deref() == Some(checkout::daraja::errors::DUPLICATE_ORIGINATOR_CONVERSATION_ID)
            })
            .collect();
        if let Some(first) = accepted.first() {
            let repeats: Vec<&TransactionRecord> = accepted[1..]
                .iter()
                .copied()
                .chain(refused_duplicates.iter().copied())
                .collect();
            let across_crash = repeats
                .iter()
                .all(|r| crash_between(inputs.kills, &first.created_at, &r.created_at));
            if repeats.is_empty() {
                // One request: what should happen.
            } else if across_crash {
                verdict.tolerate(
                    Flow::Payouts,
                    &record,
                    "b2c_resent_after_a_crash",
                    format!("{} more B2C request(s) after a crash", repeats.len()),
                );
            } else if accepted.len() == 1 && ambiguous_answer(first) {
                // The first request's answer was lost (5xx after Daraja took it, a timeout): once
                // its lease ran out the payout was resubmitted with the same
                // OriginatorConversationID, and Daraja refused that as a duplicate. One payment;
                // the product's documented design (docs/operations.md, PAYOUT_SUBMISSION_LEASE_SECONDS).
                verdict.tolerate(
                    Flow::Payouts,
                    &record,
                    "b2c_resubmitted_after_an_ambiguous_answer_refused_as_duplicate",
                    format!(
                        "{} resubmission(s) after {}, refused by Daraja as duplicates",
                        repeats.len(),
                        first.faults.join(", ")
                    ),
                );
            } else {
                verdict.fail(
                    Flow::Payouts,
                    Check::SentTwice,
                    &record,
                    format!(
                        "{} B2C requests for one payout ({} refused by Daraja as duplicates)",
                        1 + repeats.len(),
                        refused_duplicates.len()
                    ),
                    truth.clone(),
                );
            }
        }
        let paid = moved > 0;
        let reviewed = sent.is_some_and(|s| s.reviews.iter().any(|a| a.is_success()));
        match (paid, status) {
            (true, "completed") => {
                // The result we acknowledged carries the receipt; a missing one is an update lost.
                let acknowledged = rows
                    .iter()
                    .any(|r| r.money_moved && delivered(r, FaultTarget::B2cResult));
                if acknowledged && payout["mpesa_receipt"].is_null() {
                    verdict.fail(
                        Flow::Payouts,
                        Check::Lost,
                        &record,
                        "the success result was acknowledged, yet the payout has no receipt",
                        truth,
                    );
                }
            }
            (false, "failed") | (false, "rejected") => {}
            (true, "failed") | (true, "rejected") => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                format!(
                    "the money moved; shown {status} ({})",
                    payout["failure_reason"].as_str().unwrap_or("no reason")
                ),
                truth,
            ),
            (false, "completed") => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                "shown completed; no money moved",
                truth,
            ),
            (_, "unknown") => {
                let reason = if paid {
                    "money_moved_result_unconfirmed"
                } else if accepted.is_empty() {
                    "unknown_after_a_refusal"
                } else {
                    "transaction_status_finds_nothing"
                };
                verdict.open(Flow::Payouts, &record, reason, format!("{} B2C rows", rows.len()));
            }
            (_, "awaiting_approval") => {
                let review = sent
                    .and_then(|s| s.reviews.iter().find(|a| !a.is_success()))
                    .map(|a| format!("{:?} {}", a.status, a.code().unwrap_or("")));
                match review {
                    Some(refused) if !reviewed => {
                        verdict.open(Flow::Payouts, &record, "approval_refused_by_the_api", refused)
                    }
                    _ => verdict.fail(
                        Flow::Payouts,
                        Check::StillOpen,
                        &record,
                        "still awaiting approval after it was reviewed",
                        truth,
                    ),
                }
            }
            (_, s) if PAYOUT_OPEN.contains(&s) => {
                if rows.iter().any(|r| r.status == TxStatus::Pending) {
                    verdict.open(Flow::Payouts, &record, "daraja_still_processing", s);
                } else {
                    verdict.fail(
                        Flow::Payouts,
                        Check::StillOpen,
                        &record,
                        format!("still {s} (money moved: {paid})"),
                        truth,
                    );
                }
            }
            (_, s) => verdict.fail(
                Flow::Payouts,
                Check::WrongFinalState,
                &record,
                format!("unknown status {s}"),
                truth,
            ),
        }
    }
    for (ocid, rows) in &inputs.truth.b2c_by_ocid {
        if !known_ocids.contains(ocid) && rows.iter().any(processed) {
            let moved = rows.iter().any(|r| r.money_moved);
            verdict.fail(
                Flow::Payouts,
                Check::Lost,
                ocid,
                format!("Daraja accepted a payout the API does not list (money moved: {moved})"),
                summaries(rows),
            );
        }
    }
}

fn c2b(inputs: &Inputs, verdict: &mut Verdict) {
    let by_trans_id = inputs.observed.c2b_by_trans_id();
    let verification = inputs.observed.c2b_has_verification();
    if !verification && !inputs.observed.c2b_payments.is_empty() {
        verdict.notes.push(
            "C2B payments carry no `verification` state: every recorded confirmation is taken at its word".into(),
        );
    }
    let payments = inputs.observed.payments_by_reference();
    let mut accounted: HashSet<&str> = HashSet::new();
    let shown = |p: &Value| {
        format!(
            "{} kind {} amount {} match {}",
            id_of(p),
            p["kind"].as_str().unwrap_or("?"),
            p["amount"],
            p["match"]["status"].as_str().unwrap_or("?")
        )
    };

    // The customers' own C2B payments.
    let ours: HashMap<&str, &str> = inputs
        .ledger
        .c2b
        .iter()
        .filter_map(|(id, s)| s.ocid.as_deref().map(|o| (o, id.as_str())))
        .collect();
    for row in &inputs.truth.c2b {
        let Some(receipt) = row.receipt.as_deref().filter(|_| row.money_moved) else {
            continue;
        };
        accounted.insert(receipt);
        let name = row
            .originator_conversation_id
            .as_deref()
            .and_then(|o| ours.get(o))
            .map_or_else(|| receipt.to_owned(), |ours| format!("{ours} {receipt}"));
        let recs = by_trans_id.get(receipt).cloned().unwrap_or_default();
        if recs.len() > 1 {
            let all: Vec<String> = recs.iter().map(|p| shown(p)).collect();
            verdict.fail(
                Flow::C2b,
                Check::AppliedTwice,
                &name,
                format!("one receipt recorded {} times: {}", recs.len(), all.join("; ")),
                json!([summary(row)]),
            );
        }
        match recs.first() {
            None if delivered(row, FaultTarget::C2bConfirmation) => verdict.fail(
                Flow::C2b,
                Check::Lost,
                &name,
                "the confirmation was delivered (we answered 2xx) but no C2B payment has this receipt",
                json!([summary(row)]),
            ),
            None => verdict.open(
                Flow::C2b,
                &name,
                "confirmation_not_delivered",
                if attempted(row, FaultTarget::C2bConfirmation) {
                    "dropped or failed delivery"
                } else {
                    "never sent (scenario)"
                },
            ),
            Some(rec) => {
                if rec["kind"] != "payment" {
                    verdict.fail(
                        Flow::C2b,
                        Check::WrongFinalState,
                        &name,
                        format!("a customer's own payment shown as {}", shown(rec)),
                        json!([summary(row)]),
                    );
                }
                let status = verification_status(rec);
                if verification && status != Some("verified") {
                    verdict.open(Flow::C2b, &name, "not_verified_yet", status.unwrap_or("?"));
                }
            }
        }
    }

    // The C2B echo of each STK payment: the same receipt, linked to that payment, never new money.
    for (reference, rows) in &inputs.truth.stk_by_reference {
        for row in rows.iter().filter(|r| r.money_moved) {
            let Some(receipt) = row.receipt.as_deref() else {
                continue;
            };
            accounted.insert(receipt);
            let payment = payments.get(reference.as_str()).and_then(|p| p.first());
            let name = format!(
                "{reference} {} echo {receipt}",
                payment.map(|p| id_of(p)).unwrap_or("(no payment)")
            );
            let recs = by_trans_id.get(receipt).cloned().unwrap_or_default();
            if recs.len() > 1 {
                let all: Vec<String> = recs.iter().map(|p| shown(p)).collect();
                verdict.fail(
                    Flow::C2b,
                    Check::AppliedTwice,
                    &name,
                    format!("one echo recorded {} times: {}", recs.len(), all.join("; ")),
                    json!([summary(row)]),
                );
            }
            match recs.first() {
                None if delivered(row, FaultTarget::C2bConfirmation) => verdict.fail(
                    Flow::C2b,
                    Check::Lost,
                    &name,
                    "the echo confirmation was delivered but not recorded",
                    json!([summary(row)]),
                ),
                None => {}
                // Recorded, not verified yet: it moves no money until it is (and is linked then).
                Some(rec) if verification && verification_status(rec) == Some("unverified") => {
                    verdict.open(Flow::C2b, &name, "echo_not_verified_yet", "unverified");
                }
                Some(rec) if rec["kind"] != "stk_duplicate" => verdict.fail(
                    Flow::C2b,
                    Check::AppliedTwice,
                    &name,
                    format!(
                        "the C2B echo of an STK payment counted as new money ({}; payment receipt {})",
                        shown(rec),
                        payment.map_or("?".to_owned(), |p| p["mpesa_receipt"].to_string())
                    ),
                    json!([summary(row)]),
                ),
                Some(rec) => {
                    let linked = rec["payment_id"].as_str();
                    if linked != payment.map(|p| id_of(p)) {
                        verdict.fail(
                            Flow::C2b,
                            Check::WrongFinalState,
                            &name,
                            format!("echo linked to {linked:?}"),
                            json!([summary(row)]),
                        );
                    }
                }
            }
        }
    }

    // Forged confirmations and anything else Daraja never moved money for.
    let forged: HashSet<&str> = inputs.mix.forged().map(|f| f.trans_id.as_str()).collect();
    for rec in &inputs.observed.c2b_payments {
        let trans_id = rec["trans_id"].as_str().unwrap_or("");
        if accounted.contains(trans_id) {
            continue;
        }
        let why = if forged.contains(trans_id) {
            "a forged confirmation (a TransID Daraja never issued)"
        } else {
            "a receipt Daraja has no payment for"
        };
        let counted_as_money = match verification_status(rec) {
            None => rec.get("verification").is_none(),
            Some(status) => status == "verified",
        };
        let settled_invoice = rec["match"]["status"] == "matched";
        if counted_as_money || settled_invoice {
            verdict.fail(
                Flow::C2b,
                Check::Phantom,
                format!("{trans_id} {}", id_of(rec)),
                format!(
                    "{why} recorded as money ({}; verification {})",
                    shown(rec),
                    rec.get("verification").map_or("absent".to_owned(), Value::to_string)
                ),
                Value::Null,
            );
        }
    }
}

fn invoices(inputs: &Inputs, verdict: &mut Verdict) {
    let by_trans_id = inputs.observed.c2b_by_trans_id();
    let verification = inputs.observed.c2b_has_verification();
    for op in &inputs.mix.invoices {
        let sent = inputs.ledger.invoices.get(&op.id);
        let Some(invoice) = inputs.observed.invoices.get(&op.id) else {
            if sent.is_some_and(Sent::succeeded) {
                verdict.fail(
                    Flow::Invoices,
                    Check::Lost,
                    &op.id,
                    "created, but cannot be read back",
                    Value::Null,
                );
            } else {
                verdict.tolerate(
                    Flow::Invoices,
                    &op.id,
                    "never_created",
                    sent.map(Sent::outcome).unwrap_or_default(),
                );
            }
            continue;
        };
        duplicates(verdict, Flow::Invoices, &op.id, &[invoice], sent);
        let record = format!("{} {} {}", op.id, id_of(invoice), op.account);
        server_errors(verdict, Flow::Invoices, &record, sent, String::new(), Value::Null);
        let rows: Vec<&TransactionRecord> = inputs
            .truth
            .c2b
            .iter()
            .filter(|r| {
                r.money_moved
                    && r.shortcode.as_deref() == Some(C2B_SHORTCODE)
                    && r.reference
                        .as_deref()
                        .is_some_and(|b| b.eq_ignore_ascii_case(&op.account))
            })
            .collect();
        let moved: u64 = rows.iter().filter_map(|r| r.amount).sum();
        let delivered_total: u64 = rows
            .iter()
            .filter(|r| delivered(r, FaultTarget::C2bConfirmation))
            .filter_map(|r| r.amount)
            .sum();
        // Receipts the product has not verified yet settle nothing (after issue 10).
        let unverified: u64 = rows
            .iter()
            .filter(|r| {
                verification
                    && r.receipt
                        .as_deref()
                        .and_then(|t| by_trans_id.get(t))
                        .is_some_and(|recs| recs.iter().all(|p| verification_status(p) != Some("verified")))
            })
            .filter_map(|r| r.amount)
            .sum();
        let paid = invoice["amount_paid"].as_u64().unwrap_or(0);
        let truth = summaries(rows.iter().copied());
        let applied: Vec<&str> = invoice["payments"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["trans_id"].as_str()).collect())
            .unwrap_or_default();
        let distinct: HashSet<&str> = applied.iter().copied().collect();
        if paid > moved {
            let check = if distinct.len() < applied.len() {
                Check::AppliedTwice
            } else {
                Check::Phantom
            };
            verdict.fail(
                Flow::Invoices,
                check,
                &record,
                format!(
                    "amount_paid {paid} but {moved} moved for this account (applied receipts: {})",
                    applied.join(", ")
                ),
                truth,
            );
        } else if paid + unverified < delivered_total {
            verdict.fail(
                Flow::Invoices,
                Check::Lost,
                &record,
                format!("amount_paid {paid} but {delivered_total} moved and was confirmed to us"),
                truth,
            );
        } else if paid < moved {
            let reason = if paid < delivered_total {
                "receipts_not_verified_yet"
            } else {
                "confirmation_not_delivered"
            };
            verdict.open(
                Flow::Invoices,
                &record,
                reason,
                format!("amount_paid {paid}, moved {moved}"),
            );
        }
    }
    // The mix's C2B payments that Daraja refused or that failed leave no trace to check; count
    // the ones the simulator refused outright so the report shows they happened.
    let refused = inputs.ledger.c2b.values().filter(|s| s.refused.is_some()).count();
    if refused > 0 {
        verdict
            .notes
            .push(format!("{refused} C2B simulate requests were refused by the simulator"));
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
