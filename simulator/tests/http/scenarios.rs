use crate::common::*;
use serde_json::{json, Value};
use simulator::{SimulatorConfig, TxStatus};
use std::time::Duration;

fn code_json(code: &str) -> Value {
    code.parse::<i64>().map(Value::from).unwrap_or(json!(code))
}

#[tokio::test]
async fn every_stk_scenario_number_yields_its_callback() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let codes = [
        "0", "1", "2", "3", "4", "8", "17", "1001", "1019", "1025", "9999", "1032", "1036", "1037", "2001", "2028",
        "8006",
    ];
    let mut cases: Vec<(String, String)> = codes
        .iter()
        .map(|c| (format!("2547000{:05}", c.parse::<u32>().unwrap()), c.to_string()))
        .collect();
    cases.push(("254700090003".into(), "SFC_IC0003".into()));
    cases.push(("254708374149".into(), "1037".into()));
    cases.push(("254722000111".into(), "0".into()));
    for (phone, _) in &cases {
        let (s, v) = sim.stk_push(phone, json!(10), &rx.url(&format!("/stk/{phone}"))).await;
        assert_eq!(s, 200, "{phone}: {v}");
    }
    rx.wait("/stk/", cases.len()).await;
    for (phone, code) in &cases {
        let hits = rx.hits(&format!("/stk/{phone}"));
        assert_eq!(hits.len(), 1, "{phone}");
        let cb = &hits[0].body["Body"]["stkCallback"];
        assert_eq!(cb["ResultCode"], code_json(code), "{phone}");
        assert_eq!(cb.get("CallbackMetadata").is_some(), code == "0", "{phone}");
    }
    let txs = sim.transactions("?kind=stk").await;
    let cancelled = txs
        .iter()
        .find(|t| t.msisdn.as_deref() == Some("254700001032"))
        .unwrap();
    assert_eq!(cancelled.status, TxStatus::Cancelled);
    assert!(!cancelled.money_moved);
}

#[tokio::test]
async fn stk_success_without_callback_is_visible_to_query() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let (_, v) = sim.stk_push("254700090002", json!(10), &rx.url("/cb")).await;
    let id = v["CheckoutRequestID"].as_str().unwrap().to_string();
    let tx = sim
        .wait_tx(&format!("?checkout_request_id={id}"), |t| t.status != TxStatus::Pending)
        .await;
    assert!(tx.money_moved && tx.receipt.is_some());
    let (_, q) = sim.stk_query(&id).await;
    assert_eq!(q["ResultCode"], "0");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.hits("/").is_empty());
}

#[tokio::test]
async fn every_b2c_scenario_number_yields_its_result() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut cases: Vec<(String, String)> = [
        "0", "1", "2", "3", "4", "8", "11", "21", "2001", "2006", "2028", "2040", "8006",
    ]
    .iter()
    .map(|c| (format!("2547000{:05}", c.parse::<u32>().unwrap()), c.to_string()))
    .collect();
    cases.push(("254700090003".into(), "SFC_IC0003".into()));
    cases.push(("254708374149".into(), "0".into()));
    for (phone, _) in &cases {
        let (s, v) = sim.b2c(&b2c_body(&format!("oc-{phone}"), phone, 100, &rx)).await;
        assert_eq!(s, 200, "{v}");
    }
    rx.wait("/b2c/result/", cases.len()).await;
    for (phone, code) in &cases {
        let hits = rx.hits(&format!("/b2c/result/oc-{phone}"));
        assert_eq!(hits.len(), 1, "{phone}");
        let r = &hits[0].body["Result"];
        assert_eq!(r["ResultCode"], code_json(code), "{phone}");
        assert_eq!(r["OriginatorConversationID"], format!("oc-{phone}"));
        if code == "0" {
            assert!(r["ResultParameters"]["ResultParameter"].is_array());
        } else {
            assert!(r.get("ResultParameters").is_none(), "{phone}");
            assert!(r["TransactionID"].as_str().unwrap().ends_with("0000000"));
        }
    }
    assert!(rx.hits("/b2c/timeout/").is_empty());
}

#[tokio::test]
async fn b2c_specials_and_transaction_status_agree() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    for phone in ["254700090001", "254700090002", "254700090004", "254700090005"] {
        let (s, _) = sim.b2c(&b2c_body(&format!("sp-{phone}"), phone, 100, &rx)).await;
        assert_eq!(s, 200);
    }
    for phone in ["254700090001", "254700090002", "254700090004", "254700090005"] {
        sim.wait_tx(&format!("?originator_conversation_id=sp-{phone}"), |t| {
            t.status != TxStatus::Pending
        })
        .await;
    }
    rx.wait("/b2c/timeout/", 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.hits("/b2c/result/").is_empty(), "no result POST for the specials");
    let timeouts: Vec<String> = rx.hits("/b2c/timeout/").iter().map(|h| h.path.clone()).collect();
    assert!(timeouts.contains(&"/b2c/timeout/sp-254700090002".to_string()));
    assert!(timeouts.contains(&"/b2c/timeout/sp-254700090004".to_string()));
    let t = &rx.hits("/b2c/timeout/sp-254700090002")[0].body["Result"];
    assert_eq!(t["OriginatorConversationID"], "sp-254700090002");
    assert!(t["ConversationID"].as_str().unwrap().starts_with("AG_"));

    let moved = |phone: &str| {
        let phone = phone.to_string();
        let sim = &sim;
        async move {
            sim.transactions(&format!("?originator_conversation_id=sp-{phone}"))
                .await[0]
                .money_moved
        }
    };
    assert!(moved("254700090001").await);
    assert!(moved("254700090002").await);
    assert!(!moved("254700090004").await);
    assert!(!moved("254700090005").await);

    // Transaction Status answers from the same truth.
    for (phone, want) in [
        ("254700090001", Some("Completed")),
        ("254700090002", Some("Completed")),
        ("254700090004", None),
        ("254700090005", None),
    ] {
        let body = crate::account::status_body(&format!("sp-{phone}"), &rx, &format!("/ts/{phone}"));
        let (s, v) = sim.post("/mpesa/transactionstatus/v1/query", &body).await;
        assert_eq!(s, 200, "{v}");
        let hit = rx.one(&format!("/ts/{phone}")).await;
        let r = &hit.body["Result"];
        match want {
            Some(status) => {
                assert_eq!(r["ResultCode"], json!(0));
                let params = r["ResultParameters"]["ResultParameter"].as_array().unwrap();
                let st = params.iter().find(|p| p["Key"] == "TransactionStatus").unwrap();
                assert_eq!(st["Value"], status);
            }
            None => assert_eq!(r["ResultCode"], json!(2032), "{phone}"),
        }
    }
}

#[tokio::test]
async fn c2b_scenario_failure_sends_nothing() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests()).await;
    let rx = Receiver::start().await;
    crate::c2b::register(&sim, &rx, "600984", "v2", "Completed").await;
    let (s, _) = sim
        .post(
            "/mpesa/c2b/v1/simulate",
            &crate::c2b::simulate_body("600984", "254700000001"),
        )
        .await;
    assert_eq!(s, 200);
    let tx = sim.wait_tx("?kind=c2b", |t| t.status != TxStatus::Pending).await;
    assert_eq!(tx.status, TxStatus::Failed);
    assert_eq!(tx.result_code.as_deref(), Some("1"));
    assert!(!tx.money_moved);
    assert!(rx.hits("/c2b/").is_empty());
}
