use crate::common::*;
use serde_json::json;
use simulator::test_credentials as tc;
use simulator::{SimulatorConfig, TxStatus};
use std::time::Duration;

#[tokio::test]
async fn unknown_id_does_not_exist() {
    let sim = Sim::fast().await;
    let (s, v) = sim.stk_query("ws_CO_211120261430051234712345678").await;
    assert_error(s, &v, 500, "500.001.1001", "The transaction does not Exist");
}

#[tokio::test]
async fn open_payment_is_being_processed_then_final_with_string_code() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_delay_ms(600, 600)).await;
    let rx = Receiver::start().await;
    let (_, ok) = sim.stk_push("254712345678", json!(5), &rx.url("/ok")).await;
    let (_, cancelled) = sim.stk_push("254700001032", json!(5), &rx.url("/cancel")).await;
    let ok_id = ok["CheckoutRequestID"].as_str().unwrap();
    let cancel_id = cancelled["CheckoutRequestID"].as_str().unwrap();
    let (s, v) = sim.stk_query(ok_id).await;
    assert_error(s, &v, 500, "500.001.1001", "The transaction is being processed");
    rx.one("/ok").await;
    rx.one("/cancel").await;
    let (s, v) = sim.stk_query(ok_id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ResponseCode"], "0");
    assert_eq!(
        v["ResponseDescription"],
        "The service request has been accepted successsfully"
    );
    assert_eq!(v["MerchantRequestID"], ok["MerchantRequestID"]);
    assert_eq!(v["CheckoutRequestID"], ok_id);
    assert_eq!(v["ResultCode"], json!("0"));
    assert_eq!(v["ResultDesc"], "The service request is processed successfully.");
    let (s, v) = sim.stk_query(cancel_id).await;
    assert_eq!(s, 200);
    assert_eq!(v["ResultCode"], json!("1032"));
    assert_eq!(v["ResultDesc"], "Request cancelled by user");
}

#[tokio::test]
async fn young_payment_does_not_exist_yet() {
    let cfg = SimulatorConfig {
        stk_query_not_found_ms: 300,
        ..SimulatorConfig::fast_for_tests().with_callback_delay_ms(3_000, 3_000)
    };
    let sim = Sim::start(cfg).await;
    let (_, v) = sim.stk_push("254712345678", json!(5), "http://127.0.0.1:9/cb").await;
    let id = v["CheckoutRequestID"].as_str().unwrap();
    let (s, v) = sim.stk_query(id).await;
    assert_error(s, &v, 500, "500.001.1001", "The transaction does not Exist");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (s, v) = sim.stk_query(id).await;
    assert_error(s, &v, 500, "500.001.1001", "The transaction is being processed");
}

#[tokio::test]
async fn unreachable_phone_sends_nothing_then_expires_with_1037() {
    let cfg = SimulatorConfig {
        stk_prompt_lifetime_ms: 700,
        ..SimulatorConfig::fast_for_tests()
    };
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    let (_, v) = sim.stk_push("254700090001", json!(5), &rx.url("/cb")).await;
    let id = v["CheckoutRequestID"].as_str().unwrap().to_string();
    let (s, v) = sim.stk_query(&id).await;
    assert_error(s, &v, 500, "500.001.1001", "The transaction is being processed");
    let tx = sim
        .wait_tx(&format!("?checkout_request_id={id}"), |t| t.status != TxStatus::Pending)
        .await;
    assert_eq!(tx.status, TxStatus::Timeout);
    let (s, v) = sim.stk_query(&id).await;
    assert_eq!(s, 200);
    assert_eq!(v["ResultCode"], json!("1037"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.hits("/").is_empty(), "no callback at all");
    assert!(tx.callbacks.is_empty());
    // The phone is free again.
    let (s, _) = sim.stk_push("254700090001", json!(5), &rx.url("/cb")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn query_checks_credentials() {
    let sim = Sim::fast().await;
    let ts = timestamp();
    let (s, v) = sim
        .post(
            "/mpesa/stkpushquery/v1/query",
            &json!({
                "BusinessShortCode": "174379",
                "Password": tc::stk_password("174379", "wrong", &ts),
                "Timestamp": ts,
                "CheckoutRequestID": "ws_CO_1",
            }),
        )
        .await;
    assert_error(s, &v, 500, "500.001.1001", "Wrong credentials");
    let (s, v) = sim
        .post(
            "/mpesa/stkpushquery/v1/query",
            &json!({
                "BusinessShortCode": "174379",
                "Password": tc::stk_password("174379", tc::STK_PASSKEY, &ts),
                "Timestamp": ts,
            }),
        )
        .await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID");
}
