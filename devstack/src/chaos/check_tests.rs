//! The checks against hand-made ground truth: each invariant fires on the record that breaks it,
//! and a record that keeps it passes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use simulator::ground_truth::{AttemptState, CallbackAttempt, TransactionRecord, TxKind, TxStatus};
use simulator::FaultTarget;

use super::*;
use crate::chaos::client::Answer;
use crate::chaos::mix::{C2bKind, C2bOp, Copies, ForgedOp, InvoiceOp, Op, PaymentOp, PayoutOp, Review};
use crate::chaos::record::{C2bSent, PayoutSent};

fn attempt(kind: FaultTarget, state: AttemptState) -> CallbackAttempt {
    CallbackAttempt {
        kind,
        url: "http://127.0.0.1:1/cb".into(),
        body: Value::Null,
        state,
        scheduled_at: "2026-11-21T14:30:05.000+03:00".into(),
        sent_at: None,
        finished_at: None,
        http_status: Some(200),
        error: None,
        response_body: None,
        duplicate: false,
        faults: vec![],
        source_header: None,
    }
}

fn row(kind: TxKind, endpoint: &str, status: TxStatus, moved: bool) -> TransactionRecord {
    let mut r = TransactionRecord::new(kind, endpoint, "2026-11-21T14:30:05.000+03:00".into(), json!({}));
    r.status = status;
    r.money_moved = moved;
    r
}

fn push(reference: &str, moved: bool, receipt: &str) -> TransactionRecord {
    let status = if moved { TxStatus::Completed } else { TxStatus::Failed };
    let mut r = row(TxKind::Stk, "/mpesa/stkpush/v1/processrequest", status, moved);
    r.reference = Some(reference.into());
    r.amount = Some(100);
    r.shortcode = Some("174379".into());
    r.checkout_request_id = Some(format!("ws_CO_{reference}"));
    if moved {
        r.receipt = Some(receipt.into());
    }
    r.callbacks
        .push(attempt(FaultTarget::StkCallback, AttemptState::Delivered));
    r
}

fn b2c(ocid: &str, status: TxStatus, moved: bool, at: &str) -> TransactionRecord {
    let mut r = row(TxKind::B2c, "/mpesa/b2c/v3/paymentrequest", status, moved);
    r.created_at = at.into();
    r.request = json!({"OriginatorConversationID": ocid});
    if status != TxStatus::Rejected {
        r.originator_conversation_id = Some(ocid.into());
    } else {
        r.error_code = Some("500.002.1001".into());
    }
    r
}

fn c2b_row(account: &str, amount: u64, receipt: &str, delivered_to_us: bool) -> TransactionRecord {
    let mut r = row(TxKind::C2b, "/mpesa/c2b/v1/simulate", TxStatus::Completed, true);
    r.reference = Some(account.into());
    r.shortcode = Some("600984".into());
    r.amount = Some(amount);
    r.receipt = Some(receipt.into());
    r.originator_conversation_id = Some(format!("oc-{receipt}"));
    let state = if delivered_to_us {
        AttemptState::Delivered
    } else {
        AttemptState::Dropped
    };
    r.callbacks.push(attempt(FaultTarget::C2bConfirmation, state));
    r
}

fn payment_op(id: &str) -> Op {
    Op::Payment(PaymentOp {
        id: id.into(),
        key: format!("k-{id}"),
        phone: "254712345678".into(),
        amount: 100,
        scenario: "success",
        copies: Copies::Once,
    })
}

fn payout_op(id: &str) -> Op {
    Op::Payout(PayoutOp {
        id: id.into(),
        key: format!("k-{id}"),
        phone: "254733000000".into(),
        amount: 100,
        scenario: "success",
        copies: Copies::Once,
        review: Review::Approve { twice: false },
    })
}

/// A payment as the API lists it; a completed one carries the receipt the test's push issues
/// (`R` + the number of the reference).
fn payment(reference: &str, id: &str, status: &str) -> Value {
    let receipt = (status == "completed").then(|| format!("R{}", &reference[1..]));
    json!({"id": id, "reference": reference, "status": status, "amount": 100, "checkout_request_id": format!("ws_CO_{reference}"),
           "mpesa_receipt": receipt, "metadata": {"chaos_id": reference}})
}

fn payout(chaos: &str, id: &str, status: &str) -> Value {
    json!({"id": id, "originator_conversation_id": id, "status": status, "requires_approval": false,
           "mpesa_receipt": "R9", "metadata": {"chaos_id": chaos}})
}

struct Case {
    mix: Mix,
    ledger: Ledger,
    observed: Observed,
    rows: Vec<TransactionRecord>,
    kills: Vec<DateTime<Utc>>,
}

impl Case {
    fn new(ops: Vec<Op>) -> Case {
        Case {
            mix: Mix { invoices: vec![], ops },
            ledger: Ledger::default(),
            observed: Observed::default(),
            rows: vec![],
            kills: vec![],
        }
    }

    fn verdict(&self) -> Verdict {
        let truth = Truth::new(self.rows.clone());
        check(&Inputs {
            mix: &self.mix,
            ledger: &self.ledger,
            observed: &self.observed,
            truth: &truth,
            kills: &self.kills,
        })
    }
}

fn checks(v: &Verdict) -> Vec<(Flow, Check, String)> {
    v.findings.iter().map(|f| (f.flow, f.check, f.record.clone())).collect()
}

#[test]
fn a_customer_who_paid_is_never_shown_failed_and_nothing_paid_is_never_completed() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2"), payment_op("P3")]);
    case.rows = vec![push("P1", true, "R1"), push("P2", false, ""), push("P3", true, "R3")];
    case.observed.payments = vec![
        payment("P1", "pay_1", "failed"),
        payment("P2", "pay_2", "completed"),
        payment("P3", "pay_3", "completed"),
    ];
    let v = case.verdict();
    assert_eq!(
        checks(&v),
        vec![
            (Flow::Stk, Check::WrongFinalState, "P1 pay_1".to_owned()),
            (Flow::Stk, Check::WrongFinalState, "P2 pay_2".to_owned()),
        ]
    );
    assert!(
        v.findings[0].truth[0]["money_moved"] == true,
        "the ground-truth row is named"
    );
}

#[test]
fn a_receipt_acknowledged_but_missing_is_an_update_lost() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2"), payout_op("O1")]);
    let mut reconciled = push("P2", true, "R2");
    reconciled.callbacks[0].state = AttemptState::Dropped;
    let mut paid_out = b2c("po_1", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00");
    paid_out
        .callbacks
        .push(attempt(FaultTarget::B2cResult, AttemptState::Delivered));
    case.rows = vec![push("P1", true, "R1"), reconciled, paid_out];
    // P1's callback reached us, P2's did not (reconciliation completed it: no receipt is right).
    case.observed.payments = vec![payment("P1", "pay_1", "completed"), payment("P2", "pay_2", "completed")];
    for p in &mut case.observed.payments {
        p["mpesa_receipt"] = Value::Null;
    }
    let mut payout = payout("O1", "po_1", "completed");
    payout["mpesa_receipt"] = Value::Null;
    case.observed.payouts = vec![payout];
    assert_eq!(
        checks(&case.verdict()),
        vec![
            (Flow::Stk, Check::Lost, "P1 pay_1".to_owned()),
            (Flow::Payouts, Check::Lost, "O1 po_1".to_owned()),
        ]
    );
    case.observed.payments[0]["mpesa_receipt"] = json!("R1");
    case.observed.payouts[0]["mpesa_receipt"] = json!("R9");
    assert!(case.verdict().findings.is_empty());
}

#[test]
fn two_prompts_two_charges_and_a_push_the_api_lacks_are_caught() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2")]);
    case.rows = vec![push("P1", true, "R1"), push("P1", true, "R2"), push("P2", false, "")];
    case.observed.payments = vec![payment("P1", "pay_1", "completed")];
    let found = checks(&case.verdict());
    assert!(
        found.contains(&(Flow::Stk, Check::SentTwice, "P1 pay_1".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(Flow::Stk, Check::PaidTwice, "P1 pay_1".into())),
        "{found:?}"
    );
    assert!(found.contains(&(Flow::Stk, Check::Lost, "P2".into())), "{found:?}");
}

#[test]
fn open_at_the_end_is_explained_only_by_the_ground_truth() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2"), payment_op("P3")]);
    let mut still = push("P1", false, "");
    still.status = TxStatus::Pending;
    let mut lost_answer = push("P3", true, "R3");
    lost_answer.callbacks[0].state = AttemptState::Failed;
    case.rows = vec![still, push("P2", true, "R2"), lost_answer];
    let mut no_id = payment("P3", "pay_3", "unknown");
    no_id["checkout_request_id"] = Value::Null;
    case.observed.payments = vec![payment("P1", "pay_1", "sent"), payment("P2", "pay_2", "sent"), no_id];
    let v = case.verdict();
    assert_eq!(checks(&v), vec![(Flow::Stk, Check::StillOpen, "P2 pay_2".to_owned())]);
    let reasons: Vec<&str> = v.still_open.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["daraja_still_processing", "no_checkout_request_id_and_no_callback"]
    );
}

#[test]
fn one_key_with_two_resources_is_a_duplicate_creation() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2")]);
    case.rows = vec![push("P1", true, "R1"), push("P2", true, "R2")];
    case.observed.payments = vec![
        payment("P1", "pay_1", "completed"),
        payment("P1", "pay_1b", "completed"),
        payment("P2", "pay_2", "completed"),
    ];
    let answer = |id: &str| Answer {
        status: Some(202),
        body: json!({"id": id}),
        replayed: false,
    };
    case.ledger.payments.insert(
        "P2".into(),
        Sent {
            copies: vec![vec![answer("pay_2")], vec![answer("pay_2x")]],
            reused_key: vec![],
        },
    );
    let found = checks(&case.verdict());
    assert!(
        found.contains(&(Flow::Stk, Check::DuplicateCreations, "P1".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(Flow::Stk, Check::DuplicateCreations, "P2".into())),
        "{found:?}"
    );
}

#[test]
fn payouts_paid_but_failed_sent_twice_or_unknown_to_the_api_are_caught() {
    let mut case = Case::new(vec![payout_op("O1"), payout_op("O2"), payout_op("O3")]);
    case.rows = vec![
        b2c("po_1", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00"),
        b2c("po_2", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00"),
        b2c("po_2", TxStatus::Rejected, false, "2026-11-21T14:30:06.000+03:00"),
        b2c("po_9", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00"),
        b2c("po_3", TxStatus::Completed, false, "2026-11-21T14:30:05.000+03:00"),
    ];
    case.observed.payouts = vec![
        payout("O1", "po_1", "failed"),
        payout("O2", "po_2", "completed"),
        payout("O3", "po_3", "unknown"),
    ];
    let v = case.verdict();
    assert_eq!(
        checks(&v),
        vec![
            (Flow::Payouts, Check::WrongFinalState, "O1 po_1".to_owned()),
            (Flow::Payouts, Check::SentTwice, "O2 po_2".to_owned()),
            (Flow::Payouts, Check::Lost, "po_9".to_owned()),
        ]
    );
    assert_eq!(v.still_open[0].reason, "transaction_status_finds_nothing");

    // The same second request across a crash is tolerated, not a failure.
    case.kills = vec![DateTime::parse_from_rfc3339("2026-11-21T11:30:05.500Z")
        .unwrap()
        .with_timezone(&Utc)];
    let v = case.verdict();
    assert!(!checks(&v).iter().any(|(_, c, _)| *c == Check::SentTwice));
    assert_eq!(v.tolerated[0].reason, "b2c_resent_after_a_crash");
}

#[test]
fn a_resubmission_refused_as_duplicate_is_tolerated_only_after_a_lost_answer() {
    let mut case = Case::new(vec![payout_op("O2")]);
    let first = b2c("po_2", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00");
    let again = b2c("po_2", TxStatus::Rejected, false, "2026-11-21T14:30:16.000+03:00");
    case.rows = vec![first.clone(), again.clone()];
    case.observed.payouts = vec![payout("O2", "po_2", "completed")];
    // The first answer reached us: resending was a bug.
    assert_eq!(
        checks(&case.verdict()),
        vec![(Flow::Payouts, Check::SentTwice, "O2 po_2".to_owned())]
    );
    // Its answer was lost after Daraja took it: the lease ran out, Daraja refused the resubmission.
    let mut lost_answer = first;
    lost_answer.faults = vec!["http_503(after)".into()];
    case.rows = vec![lost_answer.clone(), again];
    let v = case.verdict();
    assert!(checks(&v).is_empty(), "{:?}", checks(&v));
    assert_eq!(
        v.tolerated[0].reason,
        "b2c_resubmitted_after_an_ambiguous_answer_refused_as_duplicate"
    );
    // Two accepted requests are never tolerated.
    case.rows = vec![
        lost_answer,
        b2c("po_2", TxStatus::Completed, false, "2026-11-21T14:30:16.000+03:00"),
    ];
    assert!(checks(&case.verdict()).contains(&(Flow::Payouts, Check::SentTwice, "O2 po_2".to_owned())));
}

#[test]
fn a_5xx_for_a_payout_that_is_then_paid_names_the_payout() {
    let mut case = Case::new(vec![payout_op("O1")]);
    case.rows = vec![b2c("po_1", TxStatus::Completed, true, "2026-11-21T14:30:05.000+03:00")];
    case.observed.payouts = vec![payout("O1", "po_1", "completed")];
    case.ledger.payouts.insert(
        "O1".into(),
        PayoutSent {
            sent: Sent {
                copies: vec![vec![Answer {
                    status: Some(503),
                    body: json!({"code": "service_unavailable", "payout_id": "po_1"}),
                    replayed: false,
                }]],
                reused_key: vec![],
            },
            reviews: vec![],
        },
    );
    let v = case.verdict();
    assert_eq!(
        checks(&v),
        vec![(Flow::Payouts, Check::ServerErrors, "O1 po_1".to_owned())]
    );
    assert!(
        v.findings[0].detail.contains("money moved: true"),
        "{}",
        v.findings[0].detail
    );
}

#[test]
fn an_stk_echo_counted_as_new_money_is_applied_twice_and_a_linked_one_passes() {
    let mut case = Case::new(vec![payment_op("P1"), payment_op("P2")]);
    let mut echoed = push("P1", true, "R1");
    echoed
        .callbacks
        .push(attempt(FaultTarget::C2bConfirmation, AttemptState::Delivered));
    let mut linked = push("P2", true, "R2");
    linked
        .callbacks
        .push(attempt(FaultTarget::C2bConfirmation, AttemptState::Delivered));
    case.rows = vec![echoed, linked];
    case.observed.payments = vec![payment("P1", "pay_1", "completed"), payment("P2", "pay_2", "completed")];
    case.observed.c2b_payments = vec![
        json!({"id": "c2b_1", "trans_id": "R1", "kind": "payment", "amount": 100, "match": {"status": "unmatched"}}),
        json!({"id": "c2b_2", "trans_id": "R2", "kind": "stk_duplicate", "payment_id": "pay_2", "amount": 100, "match": {"status": "unmatched"}}),
    ];
    assert_eq!(
        checks(&case.verdict()),
        vec![(Flow::C2b, Check::AppliedTwice, "P1 pay_1 echo R1".to_owned())]
    );
    // Linked to another payment: wrong.
    case.observed.c2b_payments[1]["payment_id"] = json!("pay_1");
    assert!(checks(&case.verdict()).contains(&(Flow::C2b, Check::WrongFinalState, "P2 pay_2 echo R2".into())));

    // With verification (the API's `verification.status`): an echo still waiting for it moves
    // no money yet, so it is open, not counted twice; once verified it must be linked.
    case.observed.c2b_payments[1]["payment_id"] = json!("pay_2");
    case.observed.c2b_payments[0]["verification"] = json!({"status": "unverified"});
    case.observed.c2b_payments[1]["verification"] = json!({"status": "verified", "method": "stk_receipt"});
    let v = case.verdict();
    assert!(checks(&v).is_empty(), "{:?}", checks(&v));
    assert!(v.still_open.iter().any(|o| o.reason == "echo_not_verified_yet"));
    case.observed.c2b_payments[0]["verification"] = json!({"status": "verified"});
    assert_eq!(
        checks(&case.verdict()),
        vec![(Flow::C2b, Check::AppliedTwice, "P1 pay_1 echo R1".to_owned())]
    );
}

#[test]
fn confirmations_are_recorded_once_and_an_undelivered_one_is_explained() {
    let c2b_op = |id: &str| {
        Op::C2b(C2bOp {
            id: id.into(),
            account: "INV-1".into(),
            amount: 100,
            phone: "254722000000".into(),
            kind: C2bKind::Full,
        })
    };
    let mut case = Case::new(vec![c2b_op("C1"), c2b_op("C2"), c2b_op("C3")]);
    case.rows = vec![
        c2b_row("INV-1", 100, "R1", true),
        c2b_row("INV-1", 100, "R2", true),
        c2b_row("INV-1", 100, "R3", false),
    ];
    for (id, receipt) in [("C1", "R1"), ("C2", "R2"), ("C3", "R3")] {
        case.ledger.c2b.insert(
            id.into(),
            C2bSent {
                ocid: Some(format!("oc-{receipt}")),
                refused: None,
            },
        );
    }
    let rec = |id: &str, trans_id: &str| json!({"id": id, "trans_id": trans_id, "kind": "payment", "amount": 100, "match": {"status": "matched"}});
    case.observed.c2b_payments = vec![rec("c2b_1", "R1"), rec("c2b_1b", "R1")];
    let v = case.verdict();
    assert_eq!(
        checks(&v),
        vec![
            (Flow::C2b, Check::AppliedTwice, "C1 R1".to_owned()),
            (Flow::C2b, Check::Lost, "C2 R2".to_owned()),
        ]
    );
    assert_eq!(v.still_open[0].reason, "confirmation_not_delivered");
}

#[test]
fn a_forged_confirmation_is_phantom_money_unless_it_stays_unverified() {
    let mut case = Case::new(vec![Op::Forged(ForgedOp {
        id: "F1".into(),
        account: "INV-1".into(),
        amount: 500,
        trans_id: "TKF0000001".into(),
    })]);
    case.observed.c2b_payments = vec![
        json!({"id": "c2b_f", "trans_id": "TKF0000001", "kind": "payment", "amount": 500, "match": {"status": "matched"}}),
    ];
    let v = case.verdict();
    assert_eq!(
        checks(&v),
        vec![(Flow::C2b, Check::Phantom, "TKF0000001 c2b_f".to_owned())]
    );
    assert!(v.notes.iter().any(|n| n.contains("verification")));
    // After issue 10: recorded, flagged unverified, settling nothing.
    case.observed.c2b_payments[0]["verification"] = json!("anomaly");
    case.observed.c2b_payments[0]["match"]["status"] = json!("unmatched");
    assert!(case.verdict().findings.is_empty());
    // As the API shows it: rejected by Transaction Status is clean, verified would be phantom.
    case.observed.c2b_payments[0]["verification"] = json!({"status": "rejected", "reason": "not_found"});
    assert!(case.verdict().findings.is_empty());
    case.observed.c2b_payments[0]["verification"] = json!({"status": "verified"});
    assert_eq!(
        checks(&case.verdict()),
        vec![(Flow::C2b, Check::Phantom, "TKF0000001 c2b_f".to_owned())]
    );
}

#[test]
fn an_invoice_holds_exactly_the_money_that_moved_for_its_account() {
    let invoice_op = InvoiceOp {
        id: "I1".into(),
        key: "k-I1".into(),
        account: "INV-1".into(),
        amount: 300,
        copies: Copies::Once,
    };
    let mut case = Case::new(vec![]);
    case.mix.invoices = vec![invoice_op];
    case.ledger.invoices.insert(
        "I1".into(),
        Sent {
            copies: vec![vec![Answer {
                status: Some(201),
                body: json!({"id": "exp_1"}),
                replayed: false,
            }]],
            reused_key: vec![],
        },
    );
    case.rows = vec![c2b_row("inv-1", 100, "R1", true), c2b_row("INV-1", 200, "R2", false)];
    case.observed.c2b_payments = vec![
        json!({"id": "c2b_1", "trans_id": "R1", "kind": "payment", "amount": 100, "match": {"status": "matched"}}),
    ];
    let invoice = |paid: u64, receipts: &[&str]| json!({"id": "exp_1", "amount_paid": paid, "payments": receipts.iter().map(|r| json!({"trans_id": r})).collect::<Vec<_>>()});
    let verdict_with = |case: &mut Case, v: Value| {
        case.observed.invoices.insert("I1".into(), v);
        case.verdict()
    };
    // What was confirmed to us is applied; the undelivered 200 is explained, not lost.
    let v = verdict_with(&mut case, invoice(100, &["R1"]));
    assert!(v.findings.is_empty(), "{:?}", checks(&v));
    assert_eq!(v.still_open[0].reason, "confirmation_not_delivered");
    // More than moved: a receipt applied twice, or money that never moved.
    let v = verdict_with(&mut case, invoice(400, &["R1", "R1", "R1", "R1"]));
    assert_eq!(
        checks(&v),
        vec![(Flow::Invoices, Check::AppliedTwice, "I1 exp_1 INV-1".to_owned())]
    );
    let v = verdict_with(&mut case, invoice(600, &["R1", "TKF1"]));
    assert_eq!(
        checks(&v),
        vec![(Flow::Invoices, Check::Phantom, "I1 exp_1 INV-1".to_owned())]
    );
    // Less than was confirmed to us: lost.
    let v = verdict_with(&mut case, invoice(0, &[]));
    assert_eq!(
        checks(&v),
        vec![(Flow::Invoices, Check::Lost, "I1 exp_1 INV-1".to_owned())]
    );
}
