use crate::common::*;
use serde_json::{json, Value};
use simulator::test_credentials as tc;
use simulator::{SimulatorConfig, TxStatus};

fn is_receipt(s: &str) -> bool {
    s.len() == 10 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `ac7b-470b-8df7-23ab3cef38271071873`
fn is_request_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 4
        && parts[..3].iter().all(|p| p.len() == 4)
        && parts[3].len() == 19
        && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test]
async fn push_example_and_success_callback_reproduced() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let (s, v) = sim
        .stk_push("254712345678", json!("100"), &rx.url("/callbacks/stk/tok123"))
        .await;
    assert_eq!(s, 200, "{v}");
    let o = v.as_object().unwrap();
    assert_eq!(o.len(), 5);
    for k in [
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResponseCode",
        "ResponseDescription",
        "CustomerMessage",
    ] {
        assert!(o[k].is_string(), "{k} is a string");
    }
    assert_eq!(v["ResponseCode"], "0");
    assert_eq!(v["ResponseDescription"], "Success. Request accepted for processing");
    assert_eq!(v["CustomerMessage"], "Success. Request accepted for processing");
    let crid = v["CheckoutRequestID"].as_str().unwrap();
    assert!(crid.starts_with("ws_CO_") && crid.ends_with("712345678"), "{crid}");
    assert_eq!(crid.len(), "ws_CO_211120261430051234712345678".len());
    assert!(crid[6..].chars().all(|c| c.is_ascii_digit()));
    let mrid = v["MerchantRequestID"].as_str().unwrap();
    assert!(is_request_like(mrid), "{mrid}");

    let hit = rx.one("/callbacks/stk/tok123").await;
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(hit.headers["x-forwarded-for"], "196.201.214.200");
    let cb = &hit.body["Body"]["stkCallback"];
    assert_eq!(cb["MerchantRequestID"], mrid);
    assert_eq!(cb["CheckoutRequestID"], crid);
    assert_eq!(cb["ResultCode"], json!(0));
    assert!(cb["ResultCode"].is_number());
    assert_eq!(cb["ResultDesc"], "The service request is processed successfully.");
    let items = cb["CallbackMetadata"]["Item"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Amount",
            "MpesaReceiptNumber",
            "Balance",
            "TransactionDate",
            "PhoneNumber"
        ]
    );
    assert_eq!(items[0]["Value"], json!(100));
    let receipt = items[1]["Value"].as_str().unwrap();
    assert!(is_receipt(receipt), "{receipt}");
    assert!(items[2].get("Value").is_none());
    let date = items[3]["Value"].as_u64().unwrap();
    assert_eq!(date.to_string().len(), 14);
    assert_eq!(items[4]["Value"], json!(254712345678u64));

    let tx = sim
        .wait_tx(&format!("?checkout_request_id={crid}"), |t| {
            !t.callbacks.is_empty() && t.callbacks[0].http_status.is_some()
        })
        .await;
    assert_eq!(tx.status, TxStatus::Completed);
    assert!(tx.money_moved);
    assert_eq!(tx.receipt.as_deref(), Some(receipt));
    assert_eq!(tx.callbacks[0].http_status, Some(200));
}

#[tokio::test]
async fn failure_callback_has_no_metadata() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let (s, _) = sim.stk_push("254700001032", json!(50), &rx.url("/cb")).await;
    assert_eq!(s, 200);
    let hit = rx.one("/cb").await;
    let cb = &hit.body["Body"]["stkCallback"];
    assert_eq!(cb["ResultCode"], json!(1032));
    assert_eq!(cb["ResultDesc"], "Request cancelled by user");
    assert!(cb.get("CallbackMetadata").is_none());
}

#[tokio::test]
async fn wrong_password_and_unknown_merchant() {
    let sim = Sim::fast().await;
    let path = "/mpesa/stkpush/v1/processrequest";
    let mut body = stk_body("254712345678", json!(1), "http://127.0.0.1:9/cb");
    // Password built from another Timestamp than the one sent.
    body["Password"] = json!(tc::stk_password(tc::STK_SHORTCODE, tc::STK_PASSKEY, "20200101000000"));
    let (s, v) = sim.post(path, &body).await;
    assert_error(s, &v, 500, "500.001.1001", "Wrong credentials");
    body["Password"] = json!(tc::stk_password(
        tc::STK_SHORTCODE,
        "not-the-passkey",
        body["Timestamp"].as_str().unwrap()
    ));
    let (s, v) = sim.post(path, &body).await;
    assert_error(s, &v, 500, "500.001.1001", "Wrong credentials");
    body["BusinessShortCode"] = json!("999999");
    let (s, v) = sim.post(path, &body).await;
    assert_error(s, &v, 500, "500.001.1001", "Merchant does not exist");
    // Shortcode as a JSON number is accepted like a string.
    let mut ok = stk_body("254712345678", json!(1), "http://127.0.0.1:9/cb");
    ok["BusinessShortCode"] = json!(174379);
    let (s, v) = sim.post(path, &ok).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn phone_shapes() {
    let sim = Sim::fast().await;
    for bad in [
        "0712345678",
        "+254712345678",
        "254812345678",
        "25471234567",
        "2547123456789",
        "abc",
    ] {
        let (s, v) = sim.stk_push(bad, json!(1), "http://127.0.0.1:9/cb").await;
        // PartyA is validated first and carries the same number.
        assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid PartyA");
        let mut body = stk_body("254712345678", json!(1), "http://127.0.0.1:9/cb");
        body["PhoneNumber"] = json!(bad);
        let (s, v) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
        assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid PhoneNumber");
    }
    let (s, _) = sim.stk_push("254112345678", json!(1), "http://127.0.0.1:9/cb").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn amounts_must_be_whole_and_in_range() {
    let sim = Sim::fast().await;
    let bad = [
        json!("1.5"),
        json!(1.5),
        json!(0),
        json!("0"),
        json!(250_001),
        json!(-5),
        json!("ten"),
        json!(null),
        json!(true),
        json!({"v": 1}),
    ];
    for a in bad {
        let (s, v) = sim.stk_push("254712345678", a.clone(), "http://127.0.0.1:9/cb").await;
        assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid Amount");
    }
    for (i, a) in [json!(1), json!("250000"), json!(250_000), json!("100")]
        .into_iter()
        .enumerate()
    {
        let (s, v) = sim
            .stk_push(&format!("25471234560{i}"), a, "http://127.0.0.1:9/cb")
            .await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test]
async fn missing_json_content_type_is_invalid_shortcode() {
    let sim = Sim::fast().await;
    let body = stk_body("254712345678", json!(1), "http://127.0.0.1:9/cb");
    let r = sim
        .client
        .post(sim.url("/mpesa/stkpush/v1/processrequest"))
        .bearer_auth(&sim.token)
        .header("Content-Type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (s, v) = read(r).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode");
    let r = sim
        .client
        .post(sim.url("/mpesa/stkpush/v1/processrequest"))
        .bearer_auth(&sim.token)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (s, v) = read(r).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode");
}

#[tokio::test]
async fn second_push_while_prompt_open_is_refused() {
    let sim = Sim::start(SimulatorConfig::fast_for_tests().with_callback_delay_ms(400, 400)).await;
    let rx = Receiver::start().await;
    let (s, first) = sim.stk_push("254712345678", json!(10), &rx.url("/cb")).await;
    assert_eq!(s, 200);
    let (s, v) = sim.stk_push("254712345678", json!(10), &rx.url("/cb")).await;
    assert_error(
        s,
        &v,
        500,
        "500.001.1001",
        "Unable to lock subscriber, a transaction is already in process for the current subscriber",
    );
    // Another phone is not affected.
    let (s, _) = sim.stk_push("254712345670", json!(10), &rx.url("/cb")).await;
    assert_eq!(s, 200);
    // Once the first prompt is answered the phone can be pushed again.
    rx.wait("/cb", 2).await;
    let crid = first["CheckoutRequestID"].as_str().unwrap();
    sim.wait_tx(&format!("?checkout_request_id={crid}"), |t| {
        t.status != TxStatus::Pending
    })
    .await;
    let (s, v) = sim.stk_push("254712345678", json!(10), &rx.url("/cb")).await;
    assert_eq!(s, 200, "{v}");
    let rejected = sim.transactions("?kind=stk&status=rejected").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].error_code.as_deref(), Some("500.001.1001"));
}

#[tokio::test]
async fn product_mismatch_and_overlong_text_fail_later() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    // 174379 is paybill only: Buy Goods is accepted, then fails with 2028.
    let mut body = stk_body("254712345601", json!(10), &rx.url("/mismatch"));
    body["TransactionType"] = json!("CustomerBuyGoodsOnline");
    let (s, _) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
    assert_eq!(s, 200);
    // The gateway does not enforce AccountReference <= 12: the push fails with 1025.
    let mut body = stk_body("254712345602", json!(10), &rx.url("/long"));
    body["AccountReference"] = json!("ORDER-1234567");
    let (s, _) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
    assert_eq!(s, 200);
    let hit = rx.one("/mismatch").await;
    assert_eq!(hit.body["Body"]["stkCallback"]["ResultCode"], json!(2028));
    let hit = rx.one("/long").await;
    assert_eq!(hit.body["Body"]["stkCallback"]["ResultCode"], json!(1025));
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let sim = Sim::fast().await;
    let base = stk_body("254712345678", json!(1), "http://127.0.0.1:9/cb");
    let cases: [(&str, Value, &str); 6] = [
        ("TransactionType", json!("PayBill"), "TransactionType"),
        ("Timestamp", json!("2026-11-21"), "Timestamp"),
        ("CallBackURL", json!("not a url"), "CallBackURL"),
        ("CallBackURL", json!("ftp://x.example/cb"), "CallBackURL"),
        ("PartyB", json!("abc"), "PartyB"),
        ("AccountReference", json!({"x": 1}), "AccountReference"),
    ];
    for (key, value, field) in cases {
        let mut body = base.clone();
        body[key] = value;
        let (s, v) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
        assert_error(s, &v, 400, "400.002.02", &format!("Bad Request - Invalid {field}"));
    }
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove("Password");
    let (s, v) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid Password");
}

#[tokio::test]
async fn till_store_accepts_buy_goods_to_its_tills() {
    let mut cfg = SimulatorConfig::fast_for_tests();
    cfg.stk_shortcodes.push(simulator::config::StkShortcode {
        shortcode: "300300".into(),
        passkey: "till-passkey".into(),
        kind: simulator::config::ShortcodeKind::Till,
        tills: vec!["300301".into()],
        name: "SIM STORE".into(),
    });
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    for (i, (party_b, tt, want)) in [
        ("300301", "CustomerBuyGoodsOnline", 0),
        ("300302", "CustomerBuyGoodsOnline", 2028),
        ("300301", "CustomerPayBillOnline", 2028),
    ]
    .into_iter()
    .enumerate()
    {
        let phone = format!("25471234567{i}");
        let mut body = stk_body(&phone, json!(10), &rx.url(&format!("/till/{i}")));
        let ts = body["Timestamp"].as_str().unwrap().to_string();
        body["BusinessShortCode"] = json!("300300");
        body["Password"] = json!(tc::stk_password("300300", "till-passkey", &ts));
        body["PartyB"] = json!(party_b);
        body["TransactionType"] = json!(tt);
        let (s, v) = sim.post("/mpesa/stkpush/v1/processrequest", &body).await;
        assert_eq!(s, 200, "{v}");
        let hit = rx.one(&format!("/till/{i}")).await;
        assert_eq!(hit.body["Body"]["stkCallback"]["ResultCode"], json!(want), "{i}");
    }
}
