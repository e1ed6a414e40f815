use crate::common::*;
use serde_json::{json, Value};
use simulator::SimulatorConfig;

/// Runs one fixed request sequence and returns everything that should only depend on the seed.
async fn run(seed: u64) -> Vec<Value> {
    let mut cfg = SimulatorConfig::fast_for_tests().with_seed(seed);
    cfg.faults = serde_json::from_value(json!({"rules": [
        {"endpoint": "stk_query", "kind": "http_503", "probability": 0.5},
        {"endpoint": "stk_callback", "kind": "duplicate", "probability": 0.5},
    ]}))
    .unwrap();
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    let mut out = vec![json!(sim.token)];
    for i in 0..4 {
        let (_, v) = sim
            .stk_push(&format!("25471234560{i}"), json!(10 + i), &rx.url(&format!("/stk/{i}")))
            .await;
        out.push(v["MerchantRequestID"].clone());
        let crid = v["CheckoutRequestID"].as_str().unwrap().to_string();
        // The random digit before the phone's last nine digits.
        out.push(json!(crid[crid.len() - 10..crid.len() - 9]));
    }
    let (_, v) = sim.b2c(&b2c_body("det-1", "254712345678", 100, &rx)).await;
    let conv = v["ConversationID"].as_str().unwrap();
    out.push(json!(conv[12..]));
    let faults: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..16 {
            v.push(sim.stk_query("ws_CO_none").await.0);
        }
        v
    };
    out.push(json!(faults));
    // Wait for every outcome, then take decisions and receipts (minus the date letters).
    let txs = sim.wait_tx("?kind=b2c", |t| t.receipt.is_some()).await;
    drop(txs);
    for i in 0..4 {
        sim.wait_tx(&format!("?msisdn=25471234560{i}"), |t| {
            t.receipt.is_some() && !t.callbacks.is_empty()
        })
        .await;
    }
    for t in sim.transactions("").await {
        out.push(json!(t.receipt.map(|r| r[3..].to_string())));
        out.push(json!(t.decision.and_then(|d| d.delay_ms)));
        out.push(json!(t.callbacks.iter().map(|c| c.faults.clone()).collect::<Vec<_>>()));
    }
    out
}

#[tokio::test]
async fn same_seed_same_run() {
    let (a, b) = tokio::join!(run(1234), run(1234));
    assert_eq!(a, b);
    let c = run(99).await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn reset_replays_the_same_ids() {
    let sim = Sim::fast().await;
    let (_, first) = sim.stk_push("254712345678", json!(1), "http://127.0.0.1:9/cb").await;
    sim.control(reqwest::Method::POST, "/__control/reset", None).await;
    assert!(sim.transactions("").await.is_empty());
    // Same sequence as after startup: a token, then the push.
    assert_eq!(sim.new_token().await, sim.token);
    let (_, again) = sim.stk_push("254712345678", json!(1), "http://127.0.0.1:9/cb").await;
    assert_eq!(first["MerchantRequestID"], again["MerchantRequestID"]);
}
