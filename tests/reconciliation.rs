//! The timeout sweeper against the simulator: lost callbacks, customers who never answer, late
//! successes, races between callbacks and reconciliation, and Daraja failing mid-sweep.

mod support;

use devstack::Options;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, payment_body, success_callback, Harness};

/// Past the first check (75 s after creation by default).
const PAST_FIRST_CHECK: i64 = 80;
/// Past the deadline (300 s after creation by default).
const PAST_DEADLINE: i64 = 310;

async fn create(h: &Harness, phone: &str) -> Value {
    let reply = h.create_payment(&key(), &payment_body(phone, 100)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    reply.body
}

/// Waits until the simulator has decided the payment (its callback, if any, is due or dropped).
async fn simulator_settled(h: &Harness, checkout_request_id: &str) -> Value {
    for _ in 0..500 {
        let txs = h
            .sim_transactions(&format!("?checkout_request_id={checkout_request_id}"))
            .await;
        if let Some(tx) = txs.first() {
            if tx["status"] != "pending" {
                return tx.clone();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the simulator never settled {checkout_request_id}");
}

#[tokio::test]
async fn lost_callbacks_are_settled_by_reconciliation() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "drop", "probability": 1.0}]}),
    )
    .await;
    let paid = create(&h, "254711000001").await;
    let cancelled_phone = "254711000002";
    h.sim_post(
        "/__control/outcomes",
        &json!({"match": {"msisdn": cancelled_phone}, "result_code": "1032"}),
    )
    .await;
    let cancelled = create(&h, cancelled_phone).await;
    for p in [&paid, &cancelled] {
        simulator_settled(&h, p["checkout_request_id"].as_str().unwrap()).await;
    }

    // Not due yet: the sweep reads nothing and asks nothing.
    let early = h.stack.sweep_now().await;
    assert_eq!((early.due, early.queried), (0, 0));

    h.advance(PAST_FIRST_CHECK);
    let report = h.stack.sweep_now().await;
    assert_eq!(report.due, 2, "{report:?}");
    assert_eq!(report.settled, 2, "{report:?}");

    let paid = h.payment(paid["id"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "completed");
    assert_eq!(
        paid["history"].as_array().unwrap().last().unwrap()["source"],
        "reconciliation"
    );
    assert_eq!(paid["result"]["code"], "0");
    let cancelled = h.payment(cancelled["id"].as_str().unwrap()).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["failure_reason"], "cancelled_by_customer");

    // Settled payments left the open index: the next sweep has nothing to do.
    let again = h.stack.sweep_now().await;
    assert_eq!(again.due, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_customer_who_never_answers_times_out_and_a_late_success_still_completes() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let phone = "254711000003";
    // The prompt stays open (Query: "being processed") far longer than our deadline.
    h.sim_post(
        "/__control/outcomes",
        &json!({"match": {"msisdn": phone}, "delay_ms": 600_000, "callback": "drop"}),
    )
    .await;
    let p = create(&h, phone).await;
    let id = p["id"].as_str().unwrap();

    h.advance(PAST_FIRST_CHECK);
    let report = h.stack.sweep_now().await;
    assert_eq!(
        (report.queried, report.rescheduled, report.settled),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        h.payment(id).await["status"],
        "sent",
        "'being processed' is not an answer"
    );

    h.advance(PAST_DEADLINE);
    let report = h.stack.sweep_now().await;
    assert_eq!(report.timed_out, 1, "{report:?}");
    let timed_out = h.payment(id).await;
    assert_eq!(timed_out["status"], "timeout");
    assert_eq!(timed_out["failure_reason"], "no_final_result");

    // Safaricom's success arrives late: money moved, so it completes and is flagged.
    let crid = p["checkout_request_id"].as_str().unwrap();
    let url = h.callback_url(crid).await;
    h.post_callback(&url, &success_callback(crid, json!(100), "TKL9LATE01"))
        .await;
    let done = h.wait_for_status(id, "completed").await;
    assert_eq!(done["late"], true);
    assert_eq!(done["mpesa_receipt"], "TKL9LATE01");
    assert_eq!(done["failure_reason"], Value::Null);
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_customer_is_settled_from_the_final_query_answer() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let p = create(&h, "254700090001").await;
    // The simulator's prompt expires (300 ms in the fast profile); Query then answers 1037.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    h.advance(PAST_FIRST_CHECK);
    h.stack.sweep_now().await;
    let settled = h.payment(p["id"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "timeout");
    assert_eq!(settled["failure_reason"], "customer_unreachable");
    assert_eq!(settled["result"]["code"], "1037");
    h.shutdown().await;
}

#[tokio::test]
async fn callbacks_racing_reconciliation_reach_one_consistent_outcome() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    // Every callback arrives twice and late, while two sweeps run at once.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [
            {"endpoint": "stk_callback", "kind": "duplicate", "probability": 1.0},
            {"endpoint": "stk_callback", "kind": "delay", "delay_ms": 150, "probability": 1.0}
        ]}),
    )
    .await;
    let mut payments = Vec::new();
    for n in 0..6 {
        payments.push(create(&h, &format!("25471100010{n}")).await);
    }
    for p in &payments {
        simulator_settled(&h, p["checkout_request_id"].as_str().unwrap()).await;
    }
    h.advance(PAST_FIRST_CHECK);
    let (a, b) = tokio::join!(h.stack.sweep_now(), h.stack.sweep_now());
    assert_eq!(a.settled + b.settled, 6, "each payment settled once: {a:?} {b:?}");
    assert_eq!(
        a.claimed + b.claimed,
        6,
        "overlapping sweeps never claim one payment twice"
    );
    for p in &payments {
        let id = p["id"].as_str().unwrap();
        // The callback's receipt arrives after reconciliation completed the payment.
        let done = h
            .wait_for(id, "completed with its receipt", |p| p["mpesa_receipt"].is_string())
            .await;
        let statuses: Vec<&str> = done["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["pending", "sent", "completed"], "{done:#}");
        assert_eq!(done["late"], false);
    }
    // Wait for the duplicates too; none changes anything.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    h.settle_queue().await;
    for p in &payments {
        let id = p["id"].as_str().unwrap();
        let records = h.callback_records(id).await;
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(
            records
                .iter()
                .all(|r| r["verdict"] == "applied" || r["verdict"] == "duplicate"),
            "{records:#?}"
        );
        assert_eq!(h.payment(id).await["history"].as_array().unwrap().len(), 3);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn daraja_down_during_a_sweep_changes_nothing_and_the_sweep_resumes() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "drop", "probability": 1.0}]}),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let p = create(&h, &format!("25471100020{n}")).await;
        simulator_settled(&h, p["checkout_request_id"].as_str().unwrap()).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [
            {"endpoint": "stk_callback", "kind": "drop", "probability": 1.0},
            {"endpoint": "stk_query", "kind": "http_503", "probability": 1.0}
        ]}),
    )
    .await;
    // Even past the deadline: "could not ask" is not "no answer", so nothing times out.
    h.advance(PAST_DEADLINE);
    let down = h.stack.sweep_now().await;
    assert_eq!(down.settled, 0, "{down:?}");
    for id in &ids {
        assert_eq!(h.payment(id).await["status"], "sent");
    }

    h.sim_put("/__control/faults", &json!({"rules": []})).await;
    h.advance(130);
    let resumed = h.stack.sweep_now().await;
    assert_eq!(resumed.settled, 3, "{resumed:?}");
    for id in &ids {
        assert_eq!(h.payment(id).await["status"], "completed");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn spike_arrest_stops_the_sweep_from_asking() {
    let mut options = Options::for_tests();
    // Queries 200 ms apart: the first answer (Spike Arrest) arrives long before the second is due.
    options.reconcile.pacing.queries_per_second = 5;
    let h = Harness::start_with_manual_clock(options).await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "drop", "probability": 1.0}]}),
    )
    .await;
    for n in 0..4 {
        let p = create(&h, &format!("25471100030{n}")).await;
        simulator_settled(&h, p["checkout_request_id"].as_str().unwrap()).await;
    }
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "drop", "probability": 1.0}, {"endpoint": "stk_query", "kind": "spike_arrest", "probability": 1.0}]}),
    )
    .await;
    h.advance(PAST_FIRST_CHECK);
    let limited = h.stack.sweep_now().await;
    assert!(limited.stopped_early, "{limited:?}");
    assert_eq!(limited.settled, 0);
    assert_eq!(
        limited.queried, 1,
        "the sweep stops asking instead of hammering Daraja: {limited:?}"
    );
    assert_eq!(
        limited.rescheduled, 4,
        "nothing changed; every claimed payment is asked again later"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn payments_whose_initiation_outcome_was_unknown() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    // The push is lost before Daraja acts (we cannot tell: an HTTP 500): no CheckoutRequestID,
    // no callback. Nothing can be asked, so it is `unknown`, past the deadline too: never a guess.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "http_500", "first_n": 1}]}),
    )
    .await;
    let lost = create(&h, "254711000401").await;
    assert_eq!(lost["status"], "unknown");
    // Daraja acts but its answer is lost: the callback still finds the payment by its token.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "http_500", "first_n": 1, "phase": "after"}]}),
    )
    .await;
    let answered_late = create(&h, "254711000402").await;
    assert_eq!(answered_late["status"], "unknown");
    assert_eq!(answered_late["checkout_request_id"], Value::Null);
    let done = h
        .wait_for_status(answered_late["id"].as_str().unwrap(), "completed")
        .await;
    assert!(
        done["checkout_request_id"].as_str().unwrap().starts_with("ws_CO_"),
        "learned from the callback"
    );

    h.advance(PAST_FIRST_CHECK);
    let report = h.stack.sweep_now().await;
    assert_eq!(
        report.queried, 0,
        "nothing to ask without a CheckoutRequestID: {report:?}"
    );
    assert_eq!(h.payment(lost["id"].as_str().unwrap()).await["status"], "unknown");
    h.advance(PAST_DEADLINE);
    h.stack.sweep_now().await;
    let still = h.payment(lost["id"].as_str().unwrap()).await;
    assert_eq!(still["status"], "unknown", "{still}");
    assert_eq!(still["failure_reason"], Value::Null);
    // It is not asked about again on every sweep, only every `unaskable_recheck`.
    assert_eq!(h.stack.sweep_now().await.due, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn the_sweep_reads_open_payments_only_however_large_the_table() {
    use checkout::domain::{
        Amount, ClientId, Msisdn, NewPayment, Payment, PaymentId, PaymentStatus, PaymentTimings, Reference,
    };
    use checkout::repo::payments::PaymentRepo;

    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let table = h.stack.table();
    // 3,000 settled payments written straight to the table...
    let now = chrono::Utc::now();
    for chunk in 0..120 {
        let writes = (0..25)
            .map(|n| {
                let mut p = Payment::create(
                    PaymentId::generate(),
                    ClientId::parse("bulk").unwrap(),
                    "174379".into(),
                    NewPayment {
                        amount: Amount::new(10).unwrap(),
                        phone: Msisdn::parse(&format!("2547{:08}", chunk * 25 + n)).unwrap(),
                        reference: Reference::parse("BULK").unwrap(),
                        description: None,
                        metadata: Default::default(),
                    },
                    now - chrono::Duration::hours(1),
                    PaymentTimings::default(),
                );
                p.status = PaymentStatus::Completed;
                p.next_check_at = None;
                PaymentRepo::insert(&p)
            })
            .collect();
        table.write(writes).await.unwrap();
    }
    // ...and a few open ones whose callbacks are lost.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "drop", "probability": 1.0}]}),
    )
    .await;
    for n in 0..5 {
        let p = create(&h, &format!("25471100050{n}")).await;
        simulator_settled(&h, p["checkout_request_id"].as_str().unwrap()).await;
    }
    h.advance(PAST_FIRST_CHECK);
    let before = table.stats();
    let report = h.stack.sweep_now().await;
    let read = table.stats().items_read - before.items_read;
    assert_eq!(report.settled, 5, "{report:?}");
    // Open-index reads (age metrics + due list) and one read per payment to settle it.
    assert!(
        read <= 5 * 4,
        "the sweep read {read} items for 5 open payments in a table of 3,000+"
    );
    // The bulk payments were written straight to the table (no events).
    h.shutdown_unchecked().await;
}
