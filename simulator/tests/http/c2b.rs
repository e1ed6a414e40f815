use crate::common::*;
use serde_json::{json, Value};
use simulator::config::RegisterResponseStyle;
use simulator::{SimulatorConfig, TxStatus};
use std::collections::HashSet;
use std::time::Duration;

pub async fn register(sim: &Sim, rx: &Receiver, shortcode: &str, version: &str, response_type: &str) {
    let (s, v) = sim
        .post(
            &format!("/mpesa/c2b/{version}/registerurl"),
            &json!({
                "ShortCode": shortcode,
                "ResponseType": response_type,
                "ConfirmationURL": rx.url(&format!("/c2b/confirm/{shortcode}")),
                "ValidationURL": rx.url(&format!("/c2b/validate/{shortcode}")),
            }),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

pub fn simulate_body(shortcode: &str, msisdn: &str) -> Value {
    json!({
        "ShortCode": shortcode,
        "CommandID": "CustomerPayBillOnline",
        "Amount": "500",
        "Msisdn": msisdn,
        "BillRefNumber": "INV-2231",
    })
}

#[tokio::test]
async fn register_refuses_forbidden_words_and_tunnels() {
    let sim = Sim::fast().await;
    let ok = "http://127.0.0.1:9/c2b/ok";
    for bad in [
        "http://127.0.0.1:9/MPesa/confirm",
        "http://127.0.0.1:9/m-pesa/confirm",
        "http://127.0.0.1:9/SafariCom",
        "http://127.0.0.1:9/run.EXE",
        "http://127.0.0.1:9/exec",
        "http://127.0.0.1:9/Cmd",
        "http://127.0.0.1:9/sql",
        "http://127.0.0.1:9/c2b?Query=1",
        "https://abc123.ngrok.io/c2b",
        "https://mockbin.org/bin/1",
    ] {
        for (field, conf, val) in [("ConfirmationURL", bad, ok), ("ValidationURL", ok, bad)] {
            let (s, v) = sim
                .post(
                    "/mpesa/c2b/v2/registerurl",
                    &json!({"ShortCode": "600984", "ResponseType": "Completed", "ConfirmationURL": conf, "ValidationURL": val}),
                )
                .await;
            assert_error(s, &v, 400, "400.002.02", &format!("Bad Request - Invalid {field}"));
        }
    }
    let (s, v) = sim
        .post(
            "/mpesa/c2b/v1/registerurl",
            &json!({"ShortCode": "600984", "ResponseType": "completed", "ConfirmationURL": ok, "ValidationURL": ok}),
        )
        .await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid ResponseType");
}

#[tokio::test]
async fn register_success_shapes_vary() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut shapes = HashSet::new();
    for _ in 0..12 {
        let (s, v) = sim
            .post(
                "/mpesa/c2b/v1/registerurl",
                &json!({"ShortCode": "600984", "ResponseType": "Completed",
                        "ConfirmationURL": rx.url("/c2b/confirm"), "ValidationURL": rx.url("/c2b/validate")}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let shape = match v.get("ResponseCode").and_then(Value::as_str) {
            Some("0") => "0",
            Some("00000000") => "00000000",
            None => {
                assert_eq!(v, json!({"ResponseDescription": "Success"}));
                "description"
            }
            other => panic!("unexpected {other:?}"),
        };
        if shape != "description" {
            assert!(v["OriginatorCoversationID"].is_string(), "Daraja's spelling: {v}");
        }
        shapes.insert(shape);
    }
    assert!(shapes.len() >= 2, "{shapes:?}");
}

#[tokio::test]
async fn reregistration_can_be_refused() {
    let cfg = SimulatorConfig {
        c2b_allow_reregistration: false,
        c2b_register_response: RegisterResponseStyle::Code0,
        ..SimulatorConfig::fast_for_tests()
    };
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    register(&sim, &rx, "600984", "v1", "Completed").await;
    let (s, v) = sim
        .post(
            "/mpesa/c2b/v2/registerurl",
            &json!({"ShortCode": "600984", "ResponseType": "Completed",
                    "ConfirmationURL": rx.url("/c2b/x"), "ValidationURL": rx.url("/c2b/y")}),
        )
        .await;
    assert_error(s, &v, 500, "500.003.1001", "Urls are already registered");
    register(&sim, &rx, "600985", "v1", "Completed").await;
}

#[tokio::test]
async fn validation_accepted_then_confirmation_with_masked_msisdn() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    rx.reply(
        "/c2b/validate",
        200,
        json!({"ResultCode": "0", "ResultDesc": "Accepted"}),
        0,
    );
    register(&sim, &rx, "600984", "v2", "Completed").await;
    let (s, v) = sim
        .post("/mpesa/c2b/v1/simulate", &simulate_body("600984", "254712345126"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ResponseCode"], "0");
    assert_eq!(v["ResponseDescription"], "Accept the service request successfully.");
    assert!(v["OriginatorCoversationID"].is_string());
    let validation = rx.one("/c2b/validate/600984").await;
    let confirmation = rx.one("/c2b/confirm/600984").await;
    assert!(validation.at <= confirmation.at);
    for hit in [&validation, &confirmation] {
        let b = hit.body.as_object().unwrap();
        for key in [
            "TransactionType",
            "TransID",
            "TransTime",
            "TransAmount",
            "BusinessShortCode",
            "BillRefNumber",
            "InvoiceNumber",
            "OrgAccountBalance",
            "ThirdPartyTransID",
            "MSISDN",
            "FirstName",
            "MiddleName",
            "LastName",
        ] {
            assert!(b[key].is_string(), "{key} is a string");
        }
        assert_eq!(b["MSISDN"], "2547 ***** 126");
        assert_eq!(b["TransAmount"], "500.00");
        assert_eq!(b["BusinessShortCode"], "600984");
        assert_eq!(b["BillRefNumber"], "INV-2231");
        assert_eq!(b["TransactionType"], "Pay Bill");
        assert_eq!(hit.headers["x-forwarded-for"], "196.201.214.200");
    }
    assert_eq!(validation.body["TransID"], confirmation.body["TransID"]);
    assert_eq!(validation.body["OrgAccountBalance"], "");
    assert_ne!(confirmation.body["OrgAccountBalance"], "");
    let tx = sim.wait_tx("?kind=c2b", |t| t.status != TxStatus::Pending).await;
    assert_eq!(tx.status, TxStatus::Completed);
    assert!(tx.money_moved);
    assert_eq!(tx.receipt.as_deref(), confirmation.body["TransID"].as_str());
}

#[tokio::test]
async fn validation_rejection_stops_the_payment() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    rx.reply(
        "/c2b/validate",
        200,
        json!({"ResultCode": "C2B00012", "ResultDesc": "Rejected"}),
        0,
    );
    register(&sim, &rx, "600984", "v2", "Completed").await;
    sim.post("/mpesa/c2b/v1/simulate", &simulate_body("600984", "254712345678"))
        .await;
    rx.one("/c2b/validate").await;
    let tx = sim.wait_tx("?kind=c2b", |t| t.status != TxStatus::Pending).await;
    assert_eq!(tx.status, TxStatus::Failed);
    assert_eq!(tx.result_code.as_deref(), Some("C2B00012"));
    assert!(!tx.money_moved);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.hits("/c2b/confirm").is_empty());
}

#[tokio::test]
async fn unanswered_validation_follows_response_type() {
    let sim = Sim::start(SimulatorConfig {
        c2b_validation_timeout_ms: 200,
        ..SimulatorConfig::fast_for_tests()
    })
    .await;
    let rx = Receiver::start().await;
    rx.reply("/c2b/validate", 200, json!({"ResultCode": "0"}), 1_000);
    register(&sim, &rx, "600984", "v2", "Completed").await;
    register(&sim, &rx, "600985", "v2", "Cancelled").await;
    sim.post("/mpesa/c2b/v1/simulate", &simulate_body("600984", "254712345678"))
        .await;
    sim.post("/mpesa/c2b/v1/simulate", &simulate_body("600985", "254712345679"))
        .await;
    // Completed: confirmed although validation never answered in time.
    rx.one("/c2b/confirm/600984").await;
    let cancelled = sim
        .wait_tx("?kind=c2b&msisdn=254712345679", |t| t.status != TxStatus::Pending)
        .await;
    assert_eq!(cancelled.status, TxStatus::Cancelled);
    assert!(!cancelled.money_moved);
    assert_eq!(cancelled.callbacks[0].error.as_deref(), Some("timeout"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.hits("/c2b/confirm/600985").is_empty());
}

#[tokio::test]
async fn v1_registration_hashes_the_msisdn() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    register(&sim, &rx, "600984", "v1", "Completed").await;
    sim.post("/mpesa/c2b/v1/simulate", &simulate_body("600984", "254712345678"))
        .await;
    let hit = rx.one("/c2b/confirm").await;
    assert_eq!(hit.body["MSISDN"], simulator::ids::sha256_hex("254712345678"));
    assert_eq!(hit.body["MSISDN"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn stk_payment_to_registered_shortcode_emits_confirmation_with_same_receipt() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    register(&sim, &rx, "174379", "v2", "Completed").await;
    let (_, v) = sim.stk_push("254712345678", json!(250), &rx.url("/stk")).await;
    let stk = rx.one("/stk").await;
    let conf = rx.one("/c2b/confirm/174379").await;
    let items = stk.body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
        .as_array()
        .unwrap()
        .clone();
    let receipt = items.iter().find(|i| i["Name"] == "MpesaReceiptNumber").unwrap()["Value"].clone();
    assert_eq!(conf.body["TransID"], receipt);
    assert_eq!(conf.body["TransAmount"], "250.00");
    assert_eq!(conf.body["BillRefNumber"], "ORDER1234");
    assert_eq!(conf.body["MSISDN"], "2547 ***** 678");
    // No validation for STK payments.
    assert!(rx.hits("/c2b/validate").is_empty());
    let tx = sim.tx_by_checkout(v["CheckoutRequestID"].as_str().unwrap()).await;
    assert_eq!(tx.callbacks.len(), 2);
}

#[tokio::test]
async fn simulate_validates_fields() {
    let sim = Sim::fast().await;
    let mut body = simulate_body("600984", "254712345678");
    body["CommandID"] = json!("BusinessPayment");
    let (s, v) = sim.post("/mpesa/c2b/v1/simulate", &body).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid CommandID");
    let mut body = simulate_body("600984", "0712345678");
    body["Amount"] = json!(10);
    let (s, v) = sim.post("/mpesa/c2b/v2/simulate", &body).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid Msisdn");
    // No URLs registered: the payment still happens, nobody is told.
    let (s, _) = sim
        .post("/mpesa/c2b/v1/simulate", &simulate_body("600999", "254712345678"))
        .await;
    assert_eq!(s, 200);
    let tx = sim.wait_tx("?kind=c2b&status=completed", |_| true).await;
    assert!(tx.money_moved && tx.callbacks.is_empty());
}
