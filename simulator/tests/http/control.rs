use crate::common::*;
use serde_json::json;
use simulator::{SimulatorConfig, TxKind, TxStatus};
use std::time::Duration;

#[tokio::test]
async fn force_next_then_back_to_the_table() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.force(json!({"match": "next", "result_code": "1032"})).await;
    sim.stk_push("254712345601", json!(1), &rx.url("/one")).await;
    sim.stk_push("254712345602", json!(1), &rx.url("/two")).await;
    assert_eq!(
        rx.one("/one").await.body["Body"]["stkCallback"]["ResultCode"],
        json!(1032)
    );
    assert_eq!(rx.one("/two").await.body["Body"]["stkCallback"]["ResultCode"], json!(0));
    let forced = sim.transactions("?msisdn=254712345601").await;
    assert_eq!(forced[0].decision.as_ref().unwrap().source, "forced");
}

#[tokio::test]
async fn force_by_msisdn_times_and_kind() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.force(json!({"match": {"msisdn": "254712345678"}, "kind": "b2c", "result_code": 2040, "times": 2}))
        .await;
    // An STK push from that number is not a B2C: untouched.
    sim.stk_push("254712345678", json!(1), &rx.url("/stk")).await;
    assert_eq!(rx.one("/stk").await.body["Body"]["stkCallback"]["ResultCode"], json!(0));
    for i in 0..3 {
        sim.b2c(&b2c_body(&format!("m-{i}"), "254712345678", 100, &rx)).await;
    }
    rx.wait("/b2c/result/", 3).await;
    let code = |i: usize| rx.hits(&format!("/b2c/result/m-{i}"))[0].body["Result"]["ResultCode"].clone();
    assert_eq!(code(0), json!(2040));
    assert_eq!(code(1), json!(2040));
    assert_eq!(code(2), json!(0));
}

#[tokio::test]
async fn force_an_open_checkout_request() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_delay_ms(3_000, 3_000)).await;
    let rx = Receiver::start().await;
    let (_, v) = sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    let crid = v["CheckoutRequestID"].as_str().unwrap();
    let r = sim
        .force(json!({"match": {"checkout_request_id": crid}, "result_code": "2001", "delay_ms": 10}))
        .await;
    assert_eq!(r["applied_to"]["kind"], "stk");
    let hit = rx.one("/cb").await;
    assert_eq!(hit.body["Body"]["stkCallback"]["ResultCode"], json!(2001));
    let tx = sim.tx_by_checkout(crid).await;
    assert_eq!(tx.status, TxStatus::Failed);
    // Settled: forcing again is a conflict; unknown ids are not found.
    let (s, _) = sim
        .control(
            reqwest::Method::POST,
            "/__control/outcomes",
            Some(json!({"match": {"checkout_request_id": crid}, "result_code": "0"})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = sim
        .control(
            reqwest::Method::POST,
            "/__control/outcomes",
            Some(json!({"match": {"checkout_request_id": "ws_CO_nope"}, "result_code": "0"})),
        )
        .await;
    assert_eq!(s, 404);
    // The original 3 s settle does not fire a second callback.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(rx.hits("/cb").len(), 1);
}

#[tokio::test]
async fn force_an_originator_conversation_id_before_the_request() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.force(json!({"match": {"originator_conversation_id": "drop-me"}, "callback": "drop"}))
        .await;
    sim.force(json!({"match": {"originator_conversation_id": "to-timeout"}, "callback": "queue_timeout", "money_moves": false}))
        .await;
    sim.b2c(&b2c_body("drop-me", "254712345678", 100, &rx)).await;
    sim.b2c(&b2c_body("to-timeout", "254712345678", 100, &rx)).await;
    sim.b2c(&b2c_body("normal", "254712345678", 100, &rx)).await;
    rx.one("/b2c/result/normal").await;
    rx.one("/b2c/timeout/to-timeout").await;
    let dropped = sim
        .wait_tx("?originator_conversation_id=drop-me", |t| t.status != TxStatus::Pending)
        .await;
    assert!(dropped.money_moved, "dropped result, money still moved");
    assert!(rx.hits("/b2c/result/drop-me").is_empty());
    let t = sim.transactions("?originator_conversation_id=to-timeout").await;
    assert!(!t[0].money_moved);
    let (_, rules) = sim.control(reqwest::Method::GET, "/__control/outcomes", None).await;
    assert_eq!(rules, json!([]));
}

#[tokio::test]
async fn ground_truth_lists_and_filters() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let (_, stk) = sim.stk_push("254712345678", json!(7), &rx.url("/stk")).await;
    sim.b2c(&b2c_body("gt-1", "254712345600", 100, &rx)).await;
    rx.one("/stk").await;
    rx.one("/b2c/result/gt-1").await;
    let crid = stk["CheckoutRequestID"].as_str().unwrap();
    let all = sim.transactions("").await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].seq, 1);
    let only_b2c = sim.transactions("?kind=b2c").await;
    assert_eq!(only_b2c.len(), 1);
    assert_eq!(only_b2c[0].kind, TxKind::B2c);
    let by_id = sim.tx_by_checkout(crid).await;
    assert_eq!(by_id.amount, Some(7));
    assert_eq!(by_id.merchant_request_id.as_deref(), stk["MerchantRequestID"].as_str());
    let cb = sim
        .wait_tx(&format!("?checkout_request_id={crid}"), |t| {
            t.callbacks.first().is_some_and(|c| c.finished_at.is_some())
        })
        .await
        .callbacks[0]
        .clone();
    assert_eq!(cb.url, rx.url("/stk"));
    assert_eq!(cb.http_status, Some(200));
    assert!(cb.sent_at.is_some());
    assert_eq!(cb.source_header.as_deref(), Some("X-Forwarded-For: 196.201.214.200"));
    let (_, callbacks) = sim.control(reqwest::Method::GET, "/__control/callbacks", None).await;
    assert!(callbacks.as_array().unwrap().len() >= 2);
    let (s, v) = sim
        .control(reqwest::Method::GET, "/__control/transactions?kind=bogus", None)
        .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn control_inputs_are_checked() {
    let sim = Sim::fast().await;
    for bad in [
        json!({"match": "later", "result_code": "0"}),
        json!({"match": {"phone": "254712345678"}}),
        json!({"match": "next", "callback": "sometimes"}),
        json!({"match": "next", "kind": "reversal"}),
        json!({"result_code": "0"}),
    ] {
        let (s, v) = sim
            .control(reqwest::Method::POST, "/__control/outcomes", Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let r = sim
        .client
        .post(sim.url("/__control/outcomes"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (s, _) = sim
        .control(
            reqwest::Method::PATCH,
            "/__control/config",
            Some(json!({"callback_delay": {"min_ms": 9, "max_ms": 1}})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = sim
        .control(
            reqwest::Method::PATCH,
            "/__control/config",
            Some(json!({"no_such_option": 1})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = sim
        .control(
            reqwest::Method::PATCH,
            "/__control/config",
            Some(json!({"token_lifetime_secs": 60})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["token_lifetime_secs"], 60);
    let (_, scenarios) = sim.control(reqwest::Method::GET, "/__control/scenarios", None).await;
    assert_eq!(scenarios["specials"].as_array().unwrap().len(), 5);
    let (s, _) = sim.control(reqwest::Method::GET, "/__control/health", None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn in_process_handle_sees_the_same_truth() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    rx.one("/cb").await;
    let txs = sim.handle.transactions();
    assert_eq!(txs.len(), 1);
    assert!(sim.handle.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(
        sim.handle.local_addr().port(),
        sim.base.rsplit(':').next().unwrap().parse::<u16>().unwrap()
    );
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = Sim::fast().await;
    let url = sim.url("/__control/health");
    let Sim { handle, .. } = sim;
    handle.shutdown().await;
    let fresh = client();
    assert!(fresh.get(&url).send().await.is_err());
}
