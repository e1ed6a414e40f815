use crate::common::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};
use serde_json::json;
use simulator::test_credentials as tc;
use simulator::{SimulatorConfig, TxKind, TxStatus};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

/// Encrypts like the product does: with the public key of the X.509 certificate.
fn credential_from_cert(password: &str) -> String {
    let cert = Certificate::from_pem(tc::INITIATOR_CERT_PEM).expect("certificate parses");
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key = RsaPublicKey::from_public_key_der(&spki).unwrap();
    let enc = key
        .encrypt(&mut rand::thread_rng(), Pkcs1v15Encrypt, password.as_bytes())
        .unwrap();
    STANDARD.encode(enc)
}

#[test]
fn shipped_certificate_matches_the_files() {
    let on_disk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/initiator-cert.pem")).unwrap();
    assert_eq!(on_disk, tc::INITIATOR_CERT_PEM);
    assert!(tc::INITIATOR_KEY_PEM.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn correct_credential_pays_and_result_has_every_parameter() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut body = b2c_body("payout-1", "254712345678", 500, &rx);
    body["SecurityCredential"] = json!(credential_from_cert(tc::INITIATOR_PASSWORD));
    let (s, v) = sim.b2c(&body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["OriginatorConversationID"], "payout-1");
    assert_eq!(v["ResponseCode"], "0");
    assert_eq!(v["ResponseDescription"], "Accept the service request successfully.");
    let conv = v["ConversationID"].as_str().unwrap();
    assert!(
        conv.starts_with("AG_") && conv.len() == "AG_20261121_".len() + 20,
        "{conv}"
    );

    let hit = rx.one("/b2c/result/payout-1").await;
    assert_eq!(hit.headers["content-type"], "application/json");
    let r = &hit.body["Result"];
    assert_eq!(r["ResultType"], json!(0));
    assert_eq!(r["ResultCode"], json!(0));
    assert_eq!(r["ResultDesc"], "The service request is processed successfully.");
    assert_eq!(r["OriginatorConversationID"], "payout-1");
    assert_eq!(r["ConversationID"], conv);
    let params = r["ResultParameters"]["ResultParameter"].as_array().unwrap();
    let keys: Vec<&str> = params.iter().map(|p| p["Key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "TransactionAmount",
            "TransactionReceipt",
            "ReceiverPartyPublicName",
            "TransactionCompletedDateTime",
            "B2CUtilityAccountAvailableFunds",
            "B2CWorkingAccountAvailableFunds",
            "B2CRecipientIsRegisteredCustomer",
            "B2CChargesPaidAccountAvailableFunds",
        ]
    );
    let get = |k: &str| params.iter().find(|p| p["Key"] == k).unwrap()["Value"].clone();
    assert_eq!(get("TransactionAmount"), json!(500));
    assert_eq!(get("TransactionReceipt"), r["TransactionID"]);
    assert!(get("ReceiverPartyPublicName")
        .as_str()
        .unwrap()
        .starts_with("254712345678 - "));
    let when = get("TransactionCompletedDateTime");
    let when = when.as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(when, "%d.%m.%Y %H:%M:%S").is_ok(),
        "{when}"
    );
    assert!(get("B2CUtilityAccountAvailableFunds").is_f64());
    assert!(get("B2CChargesPaidAccountAvailableFunds").as_f64().unwrap() < 0.0);
    assert_eq!(get("B2CRecipientIsRegisteredCustomer"), "Y");
    let item = &r["ReferenceData"]["ReferenceItem"];
    assert!(item.is_object());
    assert_eq!(item["Key"], "QueueTimeoutURL");
    assert_eq!(item["Value"], rx.url("/b2c/timeout/payout-1"));

    let tx = sim
        .wait_tx("?originator_conversation_id=payout-1", |t| {
            t.status != TxStatus::Pending
        })
        .await;
    assert!(tx.money_moved);
    assert_eq!(
        tx.receipt.as_ref(),
        r["TransactionID"].as_str().map(str::to_string).as_ref()
    );
}

#[tokio::test]
async fn wrong_credential_is_2001_then_locked_8006() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let wrong = [
        credential_from_cert("not-the-password"),
        "bm90IHJzYQ==".to_string(),
        "%%%".to_string(),
    ];
    for (i, cred) in wrong.iter().enumerate() {
        let mut body = b2c_body(&format!("bad-{i}"), "254712345678", 100, &rx);
        body["SecurityCredential"] = json!(cred);
        let (s, _) = sim.b2c(&body).await;
        assert_eq!(s, 200);
        let r = rx.one(&format!("/b2c/result/bad-{i}")).await.body["Result"].clone();
        assert_eq!(r["ResultCode"], json!(2001), "{i}");
        assert_eq!(r["ResultDesc"], "The initiator information is invalid.");
        assert!(r.get("ResultParameters").is_none());
        assert!(r["TransactionID"].as_str().unwrap().ends_with("0000000"));
    }
    // Locked now: even the right credential gets 8006.
    let (s, _) = sim.b2c(&b2c_body("after-lock", "254712345678", 100, &rx)).await;
    assert_eq!(s, 200);
    let r = rx.one("/b2c/result/after-lock").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(8006));
    let none_moved = sim.transactions("?kind=b2c").await.iter().all(|t| !t.money_moved);
    assert!(none_moved);
    let (s, _) = sim
        .control(reqwest::Method::POST, "/__control/initiators/unlock", None)
        .await;
    assert_eq!(s, 200);
    sim.b2c(&b2c_body("unlocked", "254712345678", 100, &rx)).await;
    let r = rx.one("/b2c/result/unlocked").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(0));
}

#[tokio::test]
async fn reused_originator_conversation_id_is_refused_and_pays_once() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let body = b2c_body("payout-42", "254712345678", 1000, &rx);
    let (s, _) = sim.b2c(&body).await;
    assert_eq!(s, 200);
    let (s, v) = sim.b2c(&body).await;
    assert_error(s, &v, 500, "500.002.1001", "Duplicate OriginatorConversationID");
    rx.one("/b2c/result/payout-42").await;
    let (s, _) = sim.b2c(&body).await;
    assert_eq!(s, 500);
    let txs = sim.transactions("?kind=b2c").await;
    let disbursed: Vec<_> = txs.iter().filter(|t| t.money_moved).collect();
    assert_eq!(disbursed.len(), 1);
    assert_eq!(disbursed[0].originator_conversation_id.as_deref(), Some("payout-42"));
    assert_eq!(txs.iter().filter(|t| t.status == TxStatus::Rejected).count(), 2);
    assert_eq!(rx.hits("/b2c/result/").len(), 1);
}

#[tokio::test]
async fn v1_path_takes_occasion_and_makes_its_own_originator_id() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let mut body = b2c_body("ignored", "254712345678", 100, &rx);
    let o = body.as_object_mut().unwrap();
    o.remove("OriginatorConversationID");
    o.remove("Occassion");
    o.insert("Occasion".into(), json!("Refund"));
    let (s, v) = sim.post("/mpesa/b2c/v1/paymentrequest", &body).await;
    assert_eq!(s, 200, "{v}");
    let ocid = v["OriginatorConversationID"].as_str().unwrap();
    let parts: Vec<&str> = ocid.split('-').collect();
    assert_eq!(parts.len(), 3, "{ocid}");
    let r = rx.one("/b2c/result/").await.body["Result"].clone();
    assert_eq!(r["OriginatorConversationID"], ocid);
    // v3 insists on its own spelling.
    let (s, v) = sim
        .b2c(&{
            let mut b = b2c_body("v3-occasion", "254712345678", 100, &rx);
            let o = b.as_object_mut().unwrap();
            o.remove("Occassion");
            o.insert("Occasion".into(), json!("Refund"));
            b
        })
        .await;
    assert_error(s, &v, 400, "400.002.02", "Bad Request - Invalid Occassion");
    let (s, v) = sim
        .b2c(&{
            let mut b = b2c_body("x", "254712345678", 100, &rx);
            b.as_object_mut().unwrap().remove("OriginatorConversationID");
            b
        })
        .await;
    assert_error(
        s,
        &v,
        400,
        "400.002.02",
        "Bad Request - Invalid OriginatorConversationID",
    );
}

#[tokio::test]
async fn b2c_field_validation() {
    let sim = Sim::fast().await;
    let rx = Receiver::start().await;
    let cases = [
        ("Amount", json!("9"), "Amount"),
        ("Amount", json!("250001"), "Amount"),
        ("Amount", json!("100.50"), "Amount"),
        ("Remarks", json!("x"), "Remarks"),
        ("CommandID", json!("Payment"), "CommandID"),
        ("PartyB", json!("0712345678"), "PartyB"),
        ("PartyA", json!("123456"), "PartyA"),
        ("ResultURL", json!("nope"), "ResultURL"),
        ("InitiatorName", json!(""), "InitiatorName"),
    ];
    for (i, (key, value, field)) in cases.into_iter().enumerate() {
        let mut body = b2c_body(&format!("val-{i}"), "254712345678", 100, &rx);
        body[key] = value;
        let (s, v) = sim.b2c(&body).await;
        assert_error(s, &v, 400, "400.002.02", &format!("Bad Request - Invalid {field}"));
    }
    let ok = sim.transactions("?kind=b2c").await;
    assert!(ok
        .iter()
        .all(|t| t.status == TxStatus::Rejected && t.kind == TxKind::B2c));
}

#[tokio::test]
async fn insufficient_utility_funds_fail_with_1() {
    let mut cfg = SimulatorConfig::fast_for_tests();
    cfg.org_shortcodes[0].utility_balance = 300;
    let sim = Sim::start(cfg).await;
    let rx = Receiver::start().await;
    sim.b2c(&b2c_body("first", "254712345678", 200, &rx)).await;
    rx.one("/b2c/result/first").await;
    sim.b2c(&b2c_body("second", "254712345678", 200, &rx)).await;
    let r = rx.one("/b2c/result/second").await.body["Result"].clone();
    assert_eq!(r["ResultCode"], json!(1));
    let second = sim.transactions("?originator_conversation_id=second").await;
    assert!(!second[0].money_moved);
}
