use crate::common::*;
use serde_json::json;
use simulator::ground_truth::AttemptState;
use simulator::{FaultConfig, SimulatorConfig, TxStatus};
use std::time::{Duration, Instant};

#[tokio::test]
async fn error_faults_on_endpoints() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [
        {"endpoint": "stk_push", "kind": "http_500", "first_n": 1},
        {"endpoint": "stk_push", "kind": "http_503", "every_nth": 2, "first_n": 2},
        {"endpoint": "b2c", "kind": "spike_arrest", "first_n": 1},
        {"endpoint": "account_balance", "kind": "quota_violation"},
        {"endpoint": "oauth", "kind": "non_json_error", "first_n": 1},
    ]}))
    .await;
    let (s, v) = sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    assert_error(s, &v, 500, "500.000.1001", "Internal Server Error");
    let (s, v) = sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    assert_eq!(s, 503);
    assert_eq!(v["fault"]["faultstring"], "The Service is temporarily unavailable");
    let (s, _) = sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    assert_eq!(s, 200);
    let (s, v) = sim.b2c(&b2c_body("f-1", "254712345678", 100, &rx)).await;
    assert_error(s, &v, 500, "500.003.02", "Spike Arrest Violation");
    let (s, v) = sim.post("/mpesa/accountbalance/v1/query", &json!({})).await;
    assert_error(s, &v, 500, "500.003.03", "Quota Violation");
    let r = sim
        .client
        .get(sim.url("/oauth/v1/generate?grant_type=client_credentials"))
        .basic_auth("sim-consumer-key", Some("sim-consumer-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
    // Refused requests are in ground truth with their fault.
    let stk = sim.transactions("?kind=stk").await;
    assert_eq!(stk.len(), 3);
    assert_eq!(stk[0].faults, ["http_500"]);
    assert_eq!(stk[0].status, TxStatus::Rejected);
    let (_, snapshot) = sim.control(reqwest::Method::GET, "/__control/faults", None).await;
    assert_eq!(snapshot["fired"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn slow_responses() {
    let sim = Sim::fast().await;
    sim.set_faults(json!({"rules": {"stk_query": {"kind": "slow", "delay_ms": 300}}}))
        .await;
    let start = Instant::now();
    let (s, _) = sim.stk_query("ws_CO_unknown").await;
    assert_eq!(s, 500);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn revoked_tokens_need_a_new_token() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [{"endpoint": "b2c", "kind": "revoke_tokens", "first_n": 1}]}))
        .await;
    let (s, v) = sim.b2c(&b2c_body("r-1", "254712345678", 100, &rx)).await;
    assert_error(s, &v, 401, "401.002.01", "Error Occurred - Invalid Access Token");
    let fresh = sim.new_token().await;
    let (s, _) = sim
        .post_with_token(
            "/mpesa/b2c/v3/paymentrequest",
            &b2c_body("r-1", "254712345678", 100, &rx),
            &fresh,
        )
        .await;
    assert_eq!(s, 200);
    // The control API can revoke too.
    sim.control(reqwest::Method::POST, "/__control/tokens/revoke", None)
        .await;
    let (s, _) = sim.stk_push("254712345678", json!(1), &rx.url("/cb")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn duplicate_and_dropped_callbacks() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [
        {"endpoint": "stk_callback", "kind": "duplicate", "first_n": 1},
        {"endpoint": "stk_callback", "kind": "drop", "every_nth": 2},
    ]}))
    .await;
    let (_, a) = sim.stk_push("254712345601", json!(1), &rx.url("/a")).await;
    let hits = rx.wait("/a", 2).await;
    assert_eq!(hits[0].body, hits[1].body);
    let (_, b) = sim.stk_push("254712345602", json!(1), &rx.url("/b")).await;
    let crid_b = b["CheckoutRequestID"].as_str().unwrap();
    let tx_b = sim
        .wait_tx(&format!("?checkout_request_id={crid_b}"), |t| !t.callbacks.is_empty())
        .await;
    assert_eq!(tx_b.callbacks[0].state, AttemptState::Dropped);
    assert_eq!(tx_b.callbacks[0].faults, ["drop"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.hits("/b").is_empty());
    assert_eq!(rx.hits("/a").len(), 2);
    let tx_a = sim.tx_by_checkout(a["CheckoutRequestID"].as_str().unwrap()).await;
    assert_eq!(tx_a.callbacks.len(), 2);
    assert!(!tx_a.callbacks[0].duplicate && tx_a.callbacks[1].duplicate);
    assert!(tx_a.callbacks.iter().all(|c| c.state == AttemptState::Delivered));
    // The payment itself settled normally in both cases.
    assert!(tx_b.money_moved);
}

#[tokio::test]
async fn delayed_callback() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_delay_ms(10, 10)).await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [{"endpoint": "b2c_result", "kind": "delay", "delay_ms": 400}]}))
        .await;
    let start = Instant::now();
    sim.b2c(&b2c_body("d-1", "254712345678", 100, &rx)).await;
    let hit = rx.one("/b2c/result/d-1").await;
    assert!(hit.at.duration_since(start) >= Duration::from_millis(400));
}

#[tokio::test]
async fn reordered_callbacks_arrive_out_of_order() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_delay_ms(20, 20)).await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [{"endpoint": "stk_callback", "kind": "reorder", "first_n": 1}]}))
        .await;
    sim.stk_push("254712345601", json!(1), &rx.url("/cb/first")).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    sim.stk_push("254712345602", json!(1), &rx.url("/cb/second")).await;
    let hits = rx.wait("/cb/", 2).await;
    assert_eq!(hits[0].path, "/cb/second");
    assert_eq!(hits[1].path, "/cb/first");
}

#[tokio::test]
async fn lost_answer_after_processing_then_retry_is_duplicate() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    sim.set_faults(json!({"rules": [{"endpoint": "b2c", "kind": "http_503", "first_n": 1, "phase": "after"}]}))
        .await;
    let body = b2c_body("lost-1", "254712345678", 100, &rx);
    let (s, _) = sim.b2c(&body).await;
    assert_eq!(s, 503);
    let (s, v) = sim.b2c(&body).await;
    assert_error(s, &v, 500, "500.002.1001", "Duplicate OriginatorConversationID");
    rx.one("/b2c/result/lost-1").await;
    let txs = sim.transactions("?originator_conversation_id=lost-1").await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].faults, ["http_503(after)"]);
    let disbursed = sim
        .transactions("?kind=b2c")
        .await
        .into_iter()
        .filter(|t| t.money_moved)
        .count();
    assert_eq!(disbursed, 1);
}

#[tokio::test]
async fn faults_from_startup_config_survive_reset() {
    let faults: FaultConfig = serde_json::from_value(json!({
        "seed": 3, "rules": {"stk_push": {"kind": "spike_arrest", "first_n": 1}}
    }))
    .unwrap();
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_faults(faults)).await;
    let (s, _) = sim.stk_push("254712345678", json!(1), "http://127.0.0.1:9/cb").await;
    assert_eq!(s, 500);
    let (s, _) = sim.stk_push("254712345678", json!(1), "http://127.0.0.1:9/cb").await;
    assert_eq!(s, 200);
    sim.control(reqwest::Method::POST, "/__control/reset", None).await;
    let (s, _) = sim.stk_push("254712345679", json!(1), "http://127.0.0.1:9/cb").await;
    assert_eq!(s, 500);
}

#[tokio::test]
async fn invalid_fault_rules_are_refused() {
    let sim = Sim::fast().await;
    for bad in [
        json!({"rules": [{"endpoint": "stk_push", "kind": "duplicate"}]}),
        json!({"rules": [{"endpoint": "stk_callback", "kind": "http_500"}]}),
        json!({"rules": [{"endpoint": "nowhere", "kind": "http_500"}]}),
        json!({"rules": [{"endpoint": "b2c", "kind": "http_500", "probability": 2.0}]}),
        json!({"rules": [{"endpoint": "b2c", "kind": "http_500", "every_nth": 0}]}),
        json!("nope"),
    ] {
        let (s, v) = sim
            .control(reqwest::Method::PUT, "/__control/faults", Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} -> {v}");
        assert!(v["error"].is_string());
    }
}

#[tokio::test]
async fn callback_source_header_is_configurable() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_source("X-Real-IP", "196.201.213.44")).await;
    let rx = Receiver::start().await;
    sim.stk_push("254712345678", json!(1), &rx.url("/one")).await;
    let hit = rx.one("/one").await;
    assert_eq!(hit.headers["x-real-ip"], "196.201.213.44");
    assert!(hit.headers.get("x-forwarded-for").is_none());
    let (s, _) = sim
        .control(
            reqwest::Method::PATCH,
            "/__control/config",
            Some(json!({"callback_source_header": "X-Forwarded-For", "callback_source_ip": "10.1.2.3"})),
        )
        .await;
    assert_eq!(s, 200);
    sim.stk_push("254712345670", json!(1), &rx.url("/two")).await;
    let hit = rx.one("/two").await;
    assert_eq!(hit.headers["x-forwarded-for"], "10.1.2.3");
}
