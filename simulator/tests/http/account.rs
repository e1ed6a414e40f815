use crate::common::*;
use serde_json::{json, Value};
use simulator::TxStatus;

pub fn status_body(id: &str, rx: &Receiver, result_path: &str) -> Value {
    json!({
        "Initiator": "testapi",
        "SecurityCredential": credential(),
        "CommandID": "TransactionStatusQuery",
        "TransactionID": id,
        "PartyA": "600992",
        "IdentifierType": "4",
        "ResultURL": rx.url(result_path),
        "QueueTimeOutURL": rx.url("/timeout"),
        "Remarks": "Reconcile",
        "Occasion": "",
    })
}

fn reversal_body(id: &str, rx: &Receiver, result_path: &str) -> Value {
    json!({
        "Initiator": "testapi",
        "SecurityCredential": credential(),
        "CommandID": "TransactionReversal",
        "TransactionID": id,
        "Amount": "100",
        "ReceiverParty": "174379",
        "RecieverIdentifierType": "11",
        "ResultURL": rx.url(result_path),
        "QueueTimeOutURL": rx.url("/timeout"),
        "Remarks": "Refund",
        "Occasion": "",
    })
}

fn params(result: &Value) -> Vec<Value> {
    result["ResultParameters"]["ResultParameter"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn param<'a>(params: &'a [Value], key: &str) -> &'a Value {
    &params
        .iter()
        .find(|p| p["Key"] == key)
        .unwrap_or_else(|| panic!("{key}"))["Value"]
}

async fn paid_stk_receipt(sim: &Sim, rx: &Receiver, phone: &str) -> String {
    let (_, v) = sim.stk_push(phone, json!(100), &rx.url(&format!("/stk/{phone}"))).await;
    let crid = v["CheckoutRequestID"].as_str().unwrap().to_string();
    let tx = sim
        .wait_tx(&format!("?checkout_request_id={crid}"), |t| {
            t.status != TxStatus::Pending
        })
        .await;
    tx.receipt.unwrap()
}

#[tokio::test]
async fn transaction_status_knows_receipts_and_ids() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let receipt = paid_stk_receipt(&sim, &rx, "254712345678").await;
    let (s, v) = sim
        .post(
            "/mpesa/transactionstatus/v1/query",
            &status_body(&receipt, &rx, "/ts/stk"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ResponseCode"], "0");
    assert!(v["ConversationID"].as_str().unwrap().starts_with("AG_"));
    assert!(v["OriginatorConversationID"].is_string());
    let r = rx.one("/ts/stk").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(0));
    assert_eq!(r["ConversationID"], v["ConversationID"]);
    let p = params(&r);
    assert_eq!(param(&p, "TransactionStatus"), "Completed");
    assert_eq!(param(&p, "Amount"), &json!(100));
    assert_eq!(param(&p, "ReceiptNo"), &json!(receipt));
    assert!(param(&p, "DebitPartyName")
        .as_str()
        .unwrap()
        .starts_with("254712345678 - "));
    assert_eq!(param(&p, "CreditPartyName"), "174379 - SIM SHOP");

    // A B2C payout by its OriginatorConversationID.
    sim.b2c(&b2c_body("ts-payout", "254712345600", 100, &rx)).await;
    rx.one("/b2c/result/ts-payout").await;
    let mut body = status_body("", &rx, "/ts/b2c");
    body.as_object_mut().unwrap().remove("TransactionID");
    body["OriginalConversationID"] = json!("ts-payout");
    sim.post("/mpesa/transactionstatus/v1/query", &body).await;
    let r = rx.one("/ts/b2c").await.body["Result"].clone();
    let p = params(&r);
    assert_eq!(param(&p, "TransactionStatus"), "Completed");
    assert_eq!(param(&p, "DebitPartyName"), "600992 - SIM PAYOUTS");

    // Unknown receipt.
    sim.post(
        "/mpesa/transactionstatus/v1/query",
        &status_body("TKL0NOPE00", &rx, "/ts/unknown"),
    )
    .await;
    let r = rx.one("/ts/unknown").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(2032));
    assert!(r.get("ResultParameters").is_none());
}

#[tokio::test]
async fn transaction_status_with_wrong_credential_is_2001() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut body = status_body("TKL0NOPE00", &rx, "/ts/bad");
    body["SecurityCredential"] = json!(simulator::test_credentials::security_credential("nope"));
    sim.post("/mpesa/transactionstatus/v1/query", &body).await;
    let r = rx.one("/ts/bad").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(2001));
    let (s, v) = sim
        .post("/mpesa/transactionstatus/v1/query", &{
            let mut b = status_body("X", &rx, "/ts/x");
            b["CommandID"] = json!("TransactionStatus");
            b
        })
        .await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid CommandID");
}

#[tokio::test]
async fn account_balance_uses_the_ampersand_format() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let body = |path: &str| {
        json!({
            "Initiator": "testapi",
            "SecurityCredential": credential(),
            "CommandID": "AccountBalance",
            "PartyA": "600992",
            "IdentifierType": "4",
            "Remarks": "balance",
            "QueueTimeOutURL": rx.url("/timeout"),
            "ResultURL": rx.url(path),
        })
    };
    let (s, v) = sim.post("/mpesa/accountbalance/v1/query", &body("/ab/1")).await;
    assert_eq!(s, 200, "{v}");
    let r = rx.one("/ab/1").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(0));
    let p = params(&r);
    let balance = param(&p, "AccountBalance").as_str().unwrap().to_string();
    let accounts: Vec<&str> = balance.split('&').collect();
    assert_eq!(accounts.len(), 5);
    for a in &accounts {
        let f: Vec<&str> = a.split('|').collect();
        assert_eq!(f.len(), 6, "{a}");
        assert_eq!(f[1], "KES");
        assert!(f[2].parse::<f64>().is_ok());
    }
    assert!(accounts[2].starts_with("Utility Account|KES|10000000.00|"), "{balance}");
    assert!(param(&p, "BOCompletedTime").is_u64());
    // A payout moves the utility balance.
    sim.b2c(&b2c_body("ab-payout", "254712345678", 1000, &rx)).await;
    rx.one("/b2c/result/ab-payout").await;
    sim.post("/mpesa/accountbalance/v1/query", &body("/ab/2")).await;
    let r = rx.one("/ab/2").await.body["Result"].clone();
    let p = params(&r);
    assert!(param(&p, "AccountBalance")
        .as_str()
        .unwrap()
        .contains("Utility Account|KES|9999000.00|"));
}

#[tokio::test]
async fn reversal_codes_and_misspelled_key() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let receipt = paid_stk_receipt(&sim, &rx, "254712345678").await;
    let (s, v) = sim
        .post("/mpesa/reversal/v1/request", &reversal_body(&receipt, &rx, "/rev/1"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ResponseCode"], "0");
    sim.post("/mpesa/reversal/v1/request", &reversal_body(&receipt, &rx, "/rev/2"))
        .await;
    sim.post(
        "/mpesa/reversal/v1/request",
        &reversal_body("TKL0NOPE00", &rx, "/rev/3"),
    )
    .await;
    let first = rx.one("/rev/1").await.body["Result"].clone();
    assert_eq!(first["ResultCode"], json!(0));
    let p = params(&first);
    assert_eq!(param(&p, "OriginalTransactionID"), &json!(receipt));
    assert_ne!(first["TransactionID"], json!(receipt));
    let again = rx.one("/rev/2").await.body["Result"].clone();
    assert_eq!(again["ResultCode"], json!("R000001"));
    let unknown = rx.one("/rev/3").await.body["Result"].clone();
    assert_eq!(unknown["ResultCode"], json!("R000002"));
    let original = sim.transactions(&format!("?receipt={receipt}")).await;
    assert!(original.iter().any(|t| t.reversed));

    // The correct spelling is not what Daraja reads.
    let mut body = reversal_body(&receipt, &rx, "/rev/4");
    let o = body.as_object_mut().unwrap();
    o.remove("RecieverIdentifierType");
    o.insert("ReceiverIdentifierType".into(), json!("11"));
    let (s, v) = sim.post("/mpesa/reversal/v1/request", &body).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid RecieverIdentifierType");

    // B2C payouts cannot be reversed.
    sim.b2c(&b2c_body("rev-b2c", "254712345600", 100, &rx)).await;
    let b2c_receipt = rx.one("/b2c/result/rev-b2c").await.body["Result"]["TransactionID"].clone();
    sim.post(
        "/mpesa/reversal/v1/request",
        &reversal_body(b2c_receipt.as_str().unwrap(), &rx, "/rev/5"),
    )
    .await;
    let r = rx.one("/rev/5").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!("R000002"));
}
