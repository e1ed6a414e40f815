//! C2B (paybill and till payments customers start themselves), end to end over HTTP: the dev stack
//! (c2b-api, c2b-validation, c2b-confirmation and the callback processor) against the Daraja
//! simulator's C2B simulate, which calls our validation URL and then our confirmation URL.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, Harness};

const GOOD_PHONE: &str = "254712345678";

/// The validation answer the simulator recorded for a transaction (`None`: no validation call).
fn validation_reply(tx: &Value) -> Option<Value> {
    let attempt = tx["callbacks"]
        .as_array()?
        .iter()
        .find(|a| a["kind"] == "c2b_validation")?
        .clone();
    Some(
        attempt["response_body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(attempt),
    )
}

fn confirmations(tx: &Value) -> usize {
    tx["callbacks"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|a| a["kind"] == "c2b_confirmation").count())
}

fn expected_body(shortcode: &str, account: &str, amount: Value) -> Value {
    json!({"shortcode": shortcode, "account_number": account, "amount": amount, "metadata": {"invoice": account}})
}

async fn expect(h: &Harness, shortcode: &str, account: &str, amount: Value) -> Value {
    let reply = h
        .create_expected(&key(), &expected_body(shortcode, account, amount))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn expected(h: &Harness, id: &str) -> Value {
    let reply = h.get(&format!("/v1/c2b/expected-payments/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// Pays and waits until M-Pesa settled it and (when it completed) we recorded it and verified
/// it with Daraja (Transaction Status by receipt, asked by the verification sweep).
async fn pay(h: &Harness, shortcode: &str, phone: &str, amount: u64, bill_ref: &str) -> (Value, Option<Value>) {
    let ocid = h.c2b_simulate(shortcode, phone, amount, bill_ref).await;
    let tx = h.wait_c2b_tx(&ocid).await;
    if tx["status"] != "completed" {
        return (tx, None);
    }
    let receipt = tx["receipt"].as_str().expect("a receipt").to_owned();
    let recorded = h.wait_c2b_payment(shortcode, &receipt, |_| true).await;
    assert_eq!(recorded["verification"]["status"], "unverified", "{recorded}");
    assert_eq!(recorded["match"]["reason"], "unverified", "no money moves on its word");
    let payment = h.verify_c2b(shortcode, &receipt).await;
    assert_eq!(payment["verification"]["status"], "verified", "{payment}");
    assert_eq!(payment["verification"]["method"], "transaction_status");
    (tx, Some(payment))
}

async fn c2b_records(h: &Harness, c2b_id: &str, at_least: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        h.settle_queue().await;
        let records = h.callback_records(c2b_id).await;
        if records.len() >= at_least || tokio::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn accepted_payment_is_validated_confirmed_and_recorded_once() {
    let h = Harness::start().await;
    let reg = h
        .register_shortcode(json!({"shortcode": "600984", "rules": {"account_pattern": "INV-[0-9]+", "require_expected_payment": true}}))
        .await;
    assert_eq!(reg["daraja"]["status"], "registered");
    assert_eq!(
        (reg["version"].as_str(), reg["response_type"].as_str()),
        (Some("v2"), Some("Completed"))
    );
    let validation_url = reg["validation_url"].as_str().unwrap();
    assert!(
        validation_url.starts_with(&h.url("/c2b/validation/600984.")),
        "{validation_url}"
    );
    // The token is shown as a prefix only: 8 hex digits of its MAC, never the whole.
    let shown = validation_url.rsplit('.').next().unwrap();
    assert!(shown.ends_with('…') && shown.chars().count() == 9, "{validation_url}");
    assert_eq!(reg["tokens"]["generation"], 0);
    assert_eq!(
        (
            reg["verification"]["method"].as_str(),
            reg["verification"]["available"].as_bool()
        ),
        (Some("transaction_status"), Some(true))
    );
    // Daraja (the simulator) holds exactly the URLs we registered.
    let regs: Value = h
        .http
        .get(h.sim_url("/__control/c2b/registrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sim_reg = regs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["shortcode"] == "600984")
        .expect("registered at Daraja")
        .clone();
    for which in ["validation_url", "confirmation_url"] {
        let full = sim_reg[which].as_str().unwrap();
        let shown = reg[which].as_str().unwrap().trim_end_matches('…');
        assert!(
            full.starts_with(shown) && full.len() > shown.len() + 40,
            "{which}: {full} / {shown}"
        );
    }
    assert_eq!(
        (sim_reg["version"].as_u64(), sim_reg["response_type"].as_str()),
        (Some(2), Some("Completed"))
    );

    let invoice = expect(&h, "600984", "INV-2231", json!({"rule": "exact", "value": 500})).await;
    assert_eq!(
        (invoice["status"].as_str(), invoice["amount_remaining"].as_u64()),
        (Some("open"), Some(500))
    );
    let (tx, payment) = pay(&h, "600984", GOOD_PHONE, 500, "inv-2231").await;
    assert_eq!(tx["status"], "completed");
    assert_eq!(validation_reply(&tx).unwrap()["ResultCode"], "0");
    let p = payment.unwrap();
    assert!(p["id"].as_str().unwrap().starts_with("c2b_"));
    assert_eq!(
        (p["kind"].as_str(), p["amount"].as_u64(), p["currency"].as_str()),
        (Some("payment"), Some(500), Some("KES"))
    );
    assert_eq!(p["trans_id"], tx["receipt"]);
    assert_eq!(p["msisdn"], "2547 ***** 678", "v2: masked exactly as Daraja sent it");
    let (first, _, last) = simulator::ids::customer_name(GOOD_PHONE);
    assert_eq!(
        (p["first_name"].as_str(), p["last_name"].as_str()),
        (Some(first), Some(last))
    );
    assert_eq!(
        (p["bill_ref_number"].as_str(), p["account_number"].as_str()),
        (Some("inv-2231"), Some("INV-2231"))
    );
    assert_eq!(p["amount_text"], "500.00");
    assert_eq!(p["match"]["status"], "matched");
    assert_eq!(p["match"]["expected_payment_id"], invoice["id"]);
    assert_eq!(p["match"]["expected_payment_status"], "paid");
    assert!(p["trans_time_at"].is_string());

    let by_id = h.get(&format!("/v1/c2b/payments/{}", p["id"].as_str().unwrap())).await;
    assert_eq!(by_id.status, StatusCode::OK);
    assert_eq!(by_id.body, p);
    let inv = expected(&h, invoice["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            inv["status"].as_str(),
            inv["amount_paid"].as_u64(),
            inv["payment_count"].as_u64()
        ),
        (Some("paid"), Some(500), Some(1))
    );
    assert_eq!(inv["payments"][0]["trans_id"], tx["receipt"]);
    assert_eq!(inv["metadata"]["invoice"], "INV-2231");

    // Filters: account number (any case), date range, and the owner-wide list.
    assert_eq!(
        h.c2b_payments("?shortcode=600984&account_number=Inv-2231").await.len(),
        1
    );
    assert!(h
        .c2b_payments("?shortcode=600984&account_number=INV-9")
        .await
        .is_empty());
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(h
        .c2b_payments(&format!("?shortcode=600984&from={later}"))
        .await
        .is_empty());
    assert_eq!(h.c2b_payments("").await.len(), 1);
    let records = c2b_records(&h, p["id"].as_str().unwrap(), 2).await;
    let reasons: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("c2b_confirmation", "recorded_unverified"),
            ("c2b_status_result", "verified")
        ]
    );
    h.shutdown().await;
}

/// A payer whose simulated name differs from `GOOD_PHONE`'s, for the name rule.
fn other_named_phone() -> (String, String) {
    let (gf, _, gl) = simulator::ids::customer_name(GOOD_PHONE);
    (0..100)
        .map(|n| format!("2547220000{n:02}"))
        .find_map(|phone| {
            let (f, _, l) = simulator::ids::customer_name(&phone);
            ((f, l) != (gf, gl)).then(|| (phone.clone(), format!("{f} {l}")))
        })
        .expect("a differently named payer")
}

#[tokio::test]
async fn each_rule_rejects_with_its_code_and_nothing_is_recorded() {
    let h = Harness::start().await;
    let blocked_phone = "254711111111";
    let (kyc_phone, kyc_name) = other_named_phone();
    let reg = h
        .register_shortcode(json!({
            "shortcode": "600984", "version": "v1",
            "rules": {
                "account_pattern": "INV-[0-9]+", "max_amount": 10000, "denied_accounts": ["INV-666"],
                "blocked_msisdns": [simulator::ids::sha256_hex(blocked_phone)],
                "blocked_payer_names": [kyc_name.to_lowercase()]
            }
        }))
        .await;
    // Daraja calls our URLs for other shortcodes too: with a forged token, or with 600984's.
    let base = h.url("");
    let _ = &reg;
    let (own_validation, own_confirmation) = h.stack.c2b_urls("600984", 0).await;
    for (shortcode, validation, confirmation) in [
        (
            "600555",
            format!("{base}/c2b/validation/600555.{}", "0".repeat(64)),
            format!("{base}/c2b/confirmation/600555.{}", "0".repeat(64)),
        ),
        ("600556", own_validation.clone(), own_confirmation.clone()),
    ] {
        h.sim_daraja_post(
            "/mpesa/c2b/v2/registerurl",
            &json!({"ShortCode": shortcode, "ResponseType": "Completed", "ConfirmationURL": confirmation, "ValidationURL": validation}),
        )
        .await;
    }
    let cases: Vec<(&str, &str, u64, &str, &str)> = vec![
        ("600984", GOOD_PHONE, 100, "INV-1", "0"),
        ("600984", blocked_phone, 100, "INV-1", "C2B00011"),
        ("600984", GOOD_PHONE, 100, "ORDER-1", "C2B00012"),
        ("600984", GOOD_PHONE, 20_000, "INV-1", "C2B00013"),
        ("600984", &kyc_phone, 100, "INV-1", "C2B00014"),
        ("600555", GOOD_PHONE, 100, "INV-1", "C2B00015"),
        ("600556", GOOD_PHONE, 100, "INV-1", "C2B00015"),
        ("600984", GOOD_PHONE, 100, "INV-666", "C2B00016"),
    ];
    let started = futures::future::join_all(
        cases
            .iter()
            .map(|(sc, phone, amount, bill_ref, _)| h.c2b_simulate(sc, phone, *amount, bill_ref)),
    )
    .await;
    for ((shortcode, phone, _, bill_ref, code), ocid) in cases.iter().zip(started) {
        let tx = h.wait_c2b_tx(&ocid).await;
        let reply = validation_reply(&tx).expect("validation was called");
        assert_eq!(reply["ResultCode"], *code, "{shortcode} {phone} {bill_ref}: {reply}");
        if *code == "0" {
            assert_eq!(tx["status"], "completed");
        } else {
            assert_eq!(
                (tx["status"].as_str(), tx["result_code"].as_str()),
                (Some("failed"), Some(*code)),
                "{tx:#}"
            );
            assert_eq!(reply["ResultDesc"], "Rejected");
            assert_eq!(confirmations(&tx), 0, "a rejected payment is never confirmed");
        }
    }
    // Only the accepted payment is recorded, with the v1 hash exactly as Daraja sent it.
    h.settle_queue().await;
    let recorded = h.c2b_payments("").await;
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert_eq!(recorded[0]["msisdn"], simulator::ids::sha256_hex(GOOD_PHONE));
    h.shutdown().await;
}

#[tokio::test]
async fn slow_validation_falls_back_on_the_registered_response_type() {
    let h = Harness::start().await;
    h.register_shortcode(json!({"shortcode": "600100", "response_type": "Completed"}))
        .await;
    h.register_shortcode(json!({"shortcode": "600200", "response_type": "Cancelled"}))
        .await;
    // The fast simulator waits 500 ms for validation; ours now takes 900 ms.
    h.stack.set_c2b_validation_delay(Duration::from_millis(900));
    let (completed, cancelled) = futures::future::join(
        h.c2b_simulate("600100", GOOD_PHONE, 250, "A-1"),
        h.c2b_simulate("600200", GOOD_PHONE, 250, "A-2"),
    )
    .await;
    let completed = h.wait_c2b_tx(&completed).await;
    let cancelled = h.wait_c2b_tx(&cancelled).await;
    for tx in [&completed, &cancelled] {
        let attempt = tx["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "c2b_validation")
            .unwrap();
        assert_eq!(
            attempt["error"], "timeout",
            "validation did not answer in time: {attempt}"
        );
    }
    assert_eq!(
        completed["status"], "completed",
        "ResponseType Completed: the payment goes through"
    );
    let receipt = completed["receipt"].as_str().unwrap();
    let p = h.wait_c2b_payment("600100", receipt, |_| true).await;
    assert_eq!(p["amount"], 250);
    assert_eq!(cancelled["status"], "cancelled", "ResponseType Cancelled: no payment");
    assert_eq!(confirmations(&cancelled), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.settle_queue().await;
    assert!(h.c2b_payments("?shortcode=600200").await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn validation_accepts_only_what_is_owed() {
    let h = Harness::start().await;
    h.register_shortcode(json!({"shortcode": "600984", "rules": {"require_expected_payment": true}}))
        .await;
    let exact = expect(&h, "600984", "INV-7", json!({"rule": "exact", "value": 500})).await;
    let deposit = expect(&h, "600984", "DEP-1", json!({"rule": "minimum", "value": 1000})).await;
    let tip = expect(&h, "600984", "TIP-1", json!({"rule": "open"})).await;

    // Partial, then too much (refused), then the rest: exact and partial settlement.
    let (_, p1) = pay(&h, "600984", GOOD_PHONE, 200, "INV-7").await;
    let p1 = p1.expect("a partial payment of what is owed is accepted");
    assert_eq!(
        (
            p1["match"]["expected_payment_status"].as_str(),
            p1["match"]["amount_paid_after"].as_u64()
        ),
        (Some("partially_paid"), Some(200))
    );
    let inv = expected(&h, exact["id"].as_str().unwrap()).await;
    assert_eq!(
        (inv["status"].as_str(), inv["amount_remaining"].as_u64()),
        (Some("partially_paid"), Some(300))
    );
    let (tx, none) = pay(&h, "600984", GOOD_PHONE, 400, "INV-7").await;
    assert_eq!(
        (validation_reply(&tx).unwrap()["ResultCode"].as_str(), none.is_none()),
        (Some("C2B00013"), true)
    );
    let (_, p2) = pay(&h, "600984", GOOD_PHONE, 300, "INV-7").await;
    assert_eq!(p2.unwrap()["match"]["expected_payment_status"], "paid");
    let (tx, _) = pay(&h, "600984", GOOD_PHONE, 1, "INV-7").await;
    assert_eq!(
        validation_reply(&tx).unwrap()["ResultCode"],
        "C2B00013",
        "nothing more is owed"
    );
    let inv = expected(&h, exact["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            inv["status"].as_str(),
            inv["amount_paid"].as_u64(),
            inv["payment_count"].as_u64()
        ),
        (Some("paid"), Some(500), Some(2))
    );

    let (_, d) = pay(&h, "600984", GOOD_PHONE, 1500, "DEP-1").await;
    assert_eq!(d.unwrap()["match"]["expected_payment_status"], "paid");
    assert_eq!(expected(&h, deposit["id"].as_str().unwrap()).await["status"], "paid");
    let (_, t) = pay(&h, "600984", GOOD_PHONE, 5, "TIP-1").await;
    assert_eq!(t.unwrap()["match"]["expected_payment_id"], tip["id"]);
    let (tx, _) = pay(&h, "600984", GOOD_PHONE, 10, "NOPE-1").await;
    assert_eq!(
        validation_reply(&tx).unwrap()["ResultCode"],
        "C2B00012",
        "unknown account number"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn confirmations_without_validation_record_partial_over_and_unknown_payments() {
    let h = Harness::start().await;
    // A shortcode Safaricom has not enabled external validation for: only confirmations come.
    h.sim_patch_config(&json!({"c2b_validation_enabled": false})).await;
    h.register_shortcode(json!({"shortcode": "600984", "rules": {"require_expected_payment": true}}))
        .await;
    let invoice = expect(&h, "600984", "INV-1", json!({"rule": "exact", "value": 500})).await;

    let (tx, p1) = pay(&h, "600984", GOOD_PHONE, 300, "INV-1").await;
    assert!(validation_reply(&tx).is_none(), "no validation call");
    let p1 = p1.unwrap();
    assert_eq!(p1["match"]["expected_payment_status"], "partially_paid");
    let (_, p2) = pay(&h, "600984", GOOD_PHONE, 300, "INV-1").await;
    let p2 = p2.unwrap();
    assert_eq!(
        (
            p2["match"]["expected_payment_status"].as_str(),
            p2["match"]["amount_paid_after"].as_u64()
        ),
        (Some("overpaid"), Some(600))
    );
    let inv = expected(&h, invoice["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            inv["status"].as_str(),
            inv["amount_paid"].as_u64(),
            inv["amount_remaining"].as_u64(),
            inv["payment_count"].as_u64()
        ),
        (Some("overpaid"), Some(600), Some(0), Some(2))
    );
    let (_, unknown) = pay(&h, "600984", GOOD_PHONE, 50, "UNKNOWN-1").await;
    let unknown = unknown.unwrap();
    assert_eq!(
        (unknown["match"]["status"].as_str(), unknown["match"]["reason"].as_str()),
        (Some("unmatched"), Some("unknown_account"))
    );
    assert_eq!(unknown["amount"], 50, "recorded all the same: the money moved");
    let (_, no_ref) = pay(&h, "600984", GOOD_PHONE, 70, "").await;
    assert_eq!(no_ref.unwrap()["match"]["reason"], "no_account_number");
    assert_eq!(h.c2b_payments("?shortcode=600984").await.len(), 4);
    h.shutdown().await;
}

#[tokio::test]
async fn expired_expected_payments_match_nothing() {
    let h = Harness::start_with_manual_clock(devstack::Options::for_tests()).await;
    h.register_shortcode(json!({"shortcode": "600984"})).await;
    h.register_shortcode(json!({"shortcode": "600985", "rules": {"require_expected_payment": true}}))
        .await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let mut body = expected_body("600984", "OLD-1", json!({"rule": "exact", "value": 500}));
    body["expires_at"] = json!(soon);
    let old = h.create_expected(&key(), &body).await.body;
    body["shortcode"] = json!("600985");
    assert_eq!(h.create_expected(&key(), &body).await.status, StatusCode::CREATED);
    // A second live one for the same account is refused.
    body["shortcode"] = json!("600984");
    let taken = h.create_expected(&key(), &body).await;
    assert_eq!(
        (taken.status, taken.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("account_number_in_use"))
    );

    h.advance(120);
    let (_, p) = pay(&h, "600984", GOOD_PHONE, 500, "OLD-1").await;
    let p = p.expect("accepted: this shortcode does not require an expected payment");
    assert_eq!(
        (p["match"]["status"].as_str(), p["match"]["reason"].as_str()),
        (Some("unmatched"), Some("expired"))
    );
    assert_eq!(p["match"]["expected_payment_id"], old["id"]);
    let inv = expected(&h, old["id"].as_str().unwrap()).await;
    assert_eq!(
        (inv["status"].as_str(), inv["amount_paid"].as_u64()),
        (Some("expired"), Some(0))
    );
    let (tx, none) = pay(&h, "600985", GOOD_PHONE, 500, "OLD-1").await;
    assert_eq!(
        (validation_reply(&tx).unwrap()["ResultCode"].as_str(), none.is_none()),
        (Some("C2B00012"), true)
    );
    // The expired one no longer holds the account number.
    body["expires_at"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let fresh = h.create_expected(&key(), &body).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    assert_ne!(fresh.body["id"], old["id"]);
    h.shutdown().await;
}

#[tokio::test]
async fn duplicate_confirmations_are_recorded_once() {
    let h = Harness::start().await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "c2b_confirmation", "kind": "duplicate", "probability": 1.0}]}),
    )
    .await;
    h.register_shortcode(json!({"shortcode": "600984"})).await;
    let invoice = expect(&h, "600984", "DUP-1", json!({"rule": "exact", "value": 1000})).await;
    let (tx, p) = pay(&h, "600984", GOOD_PHONE, 400, "DUP-1").await;
    let p = p.unwrap();
    let records = c2b_records(&h, p["id"].as_str().unwrap(), 3).await;
    let mut verdicts: Vec<&str> = records.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    verdicts.sort_unstable();
    assert_eq!(
        verdicts,
        ["applied", "applied", "duplicate"],
        "both deliveries recorded, one recorded the payment, Daraja's answer verified it"
    );
    let truth = h
        .sim_transactions(&format!("?receipt={}", tx["receipt"].as_str().unwrap()))
        .await;
    let sent: Vec<bool> = truth[0]["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "c2b_confirmation")
        .map(|a| a["duplicate"].as_bool().unwrap())
        .collect();
    assert_eq!(sent, [false, true], "the simulator did deliver it twice");
    let inv = expected(&h, invoice["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            inv["amount_paid"].as_u64(),
            inv["payment_count"].as_u64(),
            inv["status"].as_str()
        ),
        (Some(400), Some(1), Some("partially_paid"))
    );
    assert_eq!(h.c2b_payments("?shortcode=600984").await.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn stk_payment_and_its_c2b_echo_are_linked_in_either_order() {
    let h = Harness::start().await;
    // Our STK paybill also has C2B URLs: M-Pesa confirms each STK payment over C2B too.
    h.register_shortcode(json!({"shortcode": "174379"})).await;
    for (n, (delayed, reference, stk_first)) in [
        ("c2b_confirmation", "ORDER-A", true),
        ("stk_callback", "ORDER-B", false),
    ]
    .into_iter()
    .enumerate()
    {
        h.sim_put(
            "/__control/faults",
            &json!({"rules": [{"endpoint": delayed, "kind": "delay", "delay_ms": 400}]}),
        )
        .await;
        let invoice = expect(&h, "174379", reference, json!({"rule": "exact", "value": 100})).await;
        let phone = format!("25471230000{n}");
        let reply = h
            .create_payment(&key(), &json!({"amount": 100, "phone": phone, "reference": reference}))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let pay_id = reply.body["id"].as_str().unwrap().to_owned();
        let done = h.wait_for_status(&pay_id, "completed").await;
        let receipt = done["mpesa_receipt"].as_str().unwrap().to_owned();
        let echo = h
            .wait_c2b_payment("174379", &receipt, |p| p["kind"] == "stk_duplicate")
            .await;
        assert_eq!(echo["payment_id"], pay_id.as_str(), "linked to the STK payment");
        // Verified: by its STK receipt when the STK callback came first, else by Daraja.
        let echo = h.verify_c2b("174379", &receipt).await;
        let method = if stk_first { "stk_receipt" } else { "transaction_status" };
        assert_eq!(echo["verification"]["method"], method, "{echo}");
        assert_eq!(
            (echo["amount"].as_u64(), echo["bill_ref_number"].as_str()),
            (Some(100), Some(reference))
        );
        // Its effect on the invoice happened once, by its receipt, in either order.
        let inv = expected(&h, invoice["id"].as_str().unwrap()).await;
        assert_eq!(
            (
                inv["amount_paid"].as_u64(),
                inv["payment_count"].as_u64(),
                inv["status"].as_str()
            ),
            (Some(100), Some(1), Some("paid"))
        );
        // Which came first is what we meant to test.
        h.settle_queue().await;
        let at =
            |record: &Value| chrono::DateTime::parse_from_rfc3339(record["processed_at"].as_str().unwrap()).unwrap();
        let stk_at = at(&h.callback_records(&pay_id).await[0]);
        let c2b_at = at(&c2b_records(&h, echo["id"].as_str().unwrap(), 1).await[0]);
        assert_eq!(stk_at < c2b_at, stk_first, "{reference}: stk {stk_at}, c2b {c2b_at}");
    }
    let all = h.c2b_payments("?shortcode=174379").await;
    assert_eq!(all.len(), 2);
    assert!(
        all.iter().all(|p| p["kind"] == "stk_duplicate"),
        "never counted as new money: {all:#?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn forged_tokens_are_refused_and_flagged() {
    let h = Harness::start().await;
    h.register_shortcode(json!({"shortcode": "600984"})).await;
    let (validation_url, confirmation_url) = h.stack.c2b_urls("600984", 0).await;
    let body = json!({"TransactionType": "Pay Bill", "TransID": "TKF0000001", "TransTime": "20261121121325",
        "TransAmount": "500.00", "BusinessShortCode": "600984", "BillRefNumber": "INV-1", "InvoiceNumber": "",
        "OrgAccountBalance": "", "ThirdPartyTransID": "", "MSISDN": "2547 ***** 678", "FirstName": "JANE",
        "MiddleName": "", "LastName": ""});
    // Validation: a forged token, a token of another purpose, and no token shape at all.
    let confirmation_url = confirmation_url.as_str();
    let forged = format!("{}/c2b/validation/600984.{}", h.url(""), "ab".repeat(32));
    let wrong_purpose = confirmation_url.replace("/c2b/confirmation/", "/c2b/validation/");
    for url in [
        forged.as_str(),
        wrong_purpose.as_str(),
        &h.url("/c2b/validation/600984"),
    ] {
        let reply = h.post_callback(url, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            json!({"ResultCode": "C2B00015", "ResultDesc": "Rejected"}),
            "{url}"
        );
    }
    // Confirmation: durable and acknowledged (we refuse nothing we can store), then flagged.
    let forged = format!("{}/c2b/confirmation/600984.{}", h.url(""), "ab".repeat(32));
    let reply = h.post_callback(&forged, &body).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (StatusCode::OK, json!({"ResultCode": 0, "ResultDesc": "Success"}))
    );
    let wrong_purpose = validation_url.replace("/c2b/validation/", "/c2b/confirmation/");
    assert_eq!(h.post_callback(&wrong_purpose, &body).await.status, StatusCode::OK);
    h.settle_queue().await;
    let flagged: Vec<Value> = h
        .anomaly_records()
        .await
        .into_iter()
        .filter(|r| r["kind"] == "c2b_confirmation")
        .collect();
    assert_eq!(flagged.len(), 2, "{flagged:#?}");
    assert!(flagged
        .iter()
        .all(|r| r["reason"] == "invalid_token" && r["resource_id"].is_null()));
    assert!(h.c2b_payments("?shortcode=600984").await.is_empty(), "nothing applied");
    // The genuine URL with the same body is recorded.
    assert_eq!(h.post_callback(confirmation_url, &body).await.status, StatusCode::OK);
    h.wait_c2b_payment("600984", "TKF0000001", |_| true).await;
    h.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_and_bad_requests_get_clear_answers() {
    let h = Harness::start().await;
    h.register_shortcode(json!({"shortcode": "600984"})).await;
    let (validation_url, confirmation_url) = h.stack.c2b_urls("600984", 0).await;
    let (validation_url, confirmation_url) = (validation_url.as_str(), confirmation_url.as_str());
    let raw = |url: &str, body: &'static str| h.http.post(url).header("content-type", "application/json").body(body);

    // Validation answers in Daraja's format, whatever it is sent.
    for junk in [
        "not json",
        "{}",
        "[1,2]",
        r#"{"TransID": "T1", "BusinessShortCode": "600984"}"#,
    ] {
        let reply = h.send(raw(validation_url, junk)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let code = reply.body["ResultCode"].as_str().unwrap().to_owned();
        assert!(code.starts_with("C2B000"), "{junk}: {}", reply.body);
    }
    // Confirmation: garbage is stored and flagged; a fractional amount is recorded with its anomaly.
    assert_eq!(h.send(raw(confirmation_url, "not json")).await.status, StatusCode::OK);
    let fractional = json!({"TransactionType": "Pay Bill", "TransID": "TKM0000001", "TransTime": "20261121121325",
        "TransAmount": "500.50", "BusinessShortCode": "600984", "BillRefNumber": null, "MSISDN": "2547 ***** 678",
        "FirstName": "JANE", "MiddleName": null, "LastName": ""});
    assert_eq!(
        h.post_callback(confirmation_url, &fractional).await.status,
        StatusCode::OK
    );
    let big = "x".repeat(200 * 1024);
    let too_large = h
        .send(
            h.http
                .post(confirmation_url)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    let odd = h.wait_c2b_payment("600984", "TKM0000001", |_| true).await;
    assert_eq!(
        (odd["amount"].clone(), odd["amount_text"].as_str()),
        (Value::Null, Some("500.50"))
    );
    assert_eq!(odd["anomalies"], json!(["fractional_amount"]));
    assert_eq!(odd["match"]["reason"], "amount_anomaly");
    assert_eq!(
        (odd["bill_ref_number"].clone(), odd["middle_name"].clone()),
        (Value::Null, Value::Null),
        "null and \"\" are both absent"
    );
    h.settle_queue().await;
    let reasons: Vec<String> = h
        .anomaly_records()
        .await
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.contains(&"malformed".to_owned()) && reasons.contains(&"fractional_amount".to_owned()),
        "{reasons:?}"
    );

    // The API: problem+json with stable codes.
    let bad = h.register_c2b(&json!({"shortcode": "60", "response_type": "completed", "rules": {"account_pattern": "(", "max_amount": 1.5}})).await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("validation_failed"))
    );
    let codes: Vec<(String, String)> = bad.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().into(), e["code"].as_str().unwrap().into()))
        .collect();
    for expected in [
        ("shortcode", "invalid_shortcode"),
        ("response_type", "invalid_value"),
        ("rules.account_pattern", "invalid_pattern"),
        ("rules.max_amount", "not_whole"),
    ] {
        assert!(
            codes.iter().any(|(f, c)| f == expected.0 && c == expected.1),
            "{expected:?} in {codes:?}"
        );
    }
    let text = h
        .send(
            h.http
                .post(h.url("/v1/c2b/registrations"))
                .bearer_auth(&h.token)
                .body("{}"),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        h.send(
            h.http
                .post(h.url("/v1/c2b/registrations"))
                .json(&json!({"shortcode": "600984"}))
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    let writer = h.token_for("merchant-a", &["c2b:write", "c2b:read"]);
    let forbidden = h
        .send(
            h.http
                .post(h.url("/v1/c2b/registrations"))
                .bearer_auth(&writer)
                .json(&json!({"shortcode": "600984"})),
        )
        .await;
    assert_eq!(
        (forbidden.status, forbidden.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );

    let body = expected_body("600984", "INV-1", json!({"rule": "exact", "value": 500}));
    let no_key = h
        .send(
            h.http
                .post(h.url("/v1/c2b/expected-payments"))
                .bearer_auth(&h.token)
                .json(&body),
        )
        .await;
    assert_eq!(no_key.body["code"], "idempotency_key_missing");
    let k = key();
    let first = h.create_expected(&k, &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = h.create_expected(&k, &body).await;
    assert_eq!((replay.status, &replay.body), (StatusCode::CREATED, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let reused = h
        .create_expected(&k, &expected_body("600984", "INV-2", json!({"rule": "open"})))
        .await;
    assert_eq!(reused.body["code"], "idempotency_key_reused");
    let in_use = h.create_expected(&key(), &body).await;
    assert_eq!(
        (in_use.status, in_use.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("account_number_in_use"))
    );
    let unknown = h
        .create_expected(&key(), &expected_body("600999", "INV-1", json!({"rule": "open"})))
        .await;
    assert_eq!(unknown.body["errors"][0]["code"], "unknown_shortcode");
    let mut past = expected_body("600984", "INV-3", json!({"rule": "open"}));
    past["expires_at"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(
        h.create_expected(&key(), &past).await.body["errors"][0]["code"],
        "in_the_past"
    );
    // Another client sees none of it.
    let other = h.token_for("merchant-b", &["c2b:write", "c2b:read"]);
    let theirs = h
        .send(
            h.http
                .post(h.url("/v1/c2b/expected-payments"))
                .bearer_auth(&other)
                .header("idempotency-key", "k1")
                .json(&body),
        )
        .await;
    assert_eq!(theirs.body["errors"][0]["code"], "unknown_shortcode");
    let id = odd["id"].as_str().unwrap();
    assert_eq!(
        h.get_as(&other, &format!("/v1/c2b/payments/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get_as(
            &other,
            &format!("/v1/c2b/expected-payments/{}", first.body["id"].as_str().unwrap())
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get_as(&other, "/v1/c2b/payments?shortcode=600984").await.body["errors"][0]["code"],
        "unknown_shortcode"
    );
    assert!(h.get_as(&other, "/v1/c2b/payments").await.body["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(h.get("/v1/c2b/payments/c2b_nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/v1/c2b/payments?account_number=A%23B").await.body["errors"][0]["field"],
        "account_number"
    );
    h.shutdown().await;

    // URLs Safaricom would refuse are refused before Daraja is called.
    let mut options = devstack::Options::for_tests();
    options.public_base_url = Some("http://sql.example.test".into());
    let h = Harness::start_with(options).await;
    let refused = h.register_c2b(&json!({"shortcode": "600984"})).await;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("c2b_url_refused"))
    );
    assert!(refused.body["detail"].as_str().unwrap().contains("sql"));
    assert!(
        h.sim_transactions("?kind=c2b_register").await.is_empty(),
        "Daraja was never called"
    );
    h.shutdown().await;
}

/// The simulator's body of the C2B confirmation it sent (or dropped) for a transaction.
fn confirmation_body(tx: &Value) -> Value {
    tx["callbacks"]
        .as_array()
        .expect("callbacks")
        .iter()
        .find(|a| a["kind"] == "c2b_confirmation")
        .expect("a confirmation attempt")["body"]
        .clone()
}

/// A confirmation moves no money on its own word. A forger who learned the confirmation URL and
/// posts a receipt's confirmation first (another invoice, another amount) does not pay that
/// invoice, and does not swallow the real confirmation that follows: Daraja's Transaction Status
/// picks the real one. A receipt Daraja never made is rejected and pays nothing.
#[tokio::test]
async fn a_forged_confirmation_moves_no_money_and_never_swallows_the_real_one() {
    let h = Harness::start_with_manual_clock(devstack::Options::for_tests()).await;
    h.register_shortcode(json!({"shortcode": "600984"})).await;
    let invoice = expect(&h, "600984", "INV-77", json!({"rule": "exact", "value": 500})).await;
    let target = expect(&h, "600984", "INV-66", json!({"rule": "exact", "value": 5000})).await;
    // The real payment happens; its confirmation is held back so the forgery arrives first.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "c2b_confirmation", "kind": "drop", "first_n": 1}]}),
    )
    .await;
    let ocid = h.c2b_simulate("600984", GOOD_PHONE, 500, "INV-77").await;
    let tx = h.wait_c2b_tx(&ocid).await;
    let receipt = tx["receipt"].as_str().unwrap().to_owned();
    let real = confirmation_body(&tx);
    let (_, confirmation_url) = h.stack.c2b_urls("600984", 0).await;
    let mut forged = real.clone();
    forged["BillRefNumber"] = json!("INV-66");
    forged["TransAmount"] = json!("5000.00");
    assert_eq!(h.post_callback(&confirmation_url, &forged).await.status, StatusCode::OK);
    let recorded = h.wait_c2b_payment("600984", &receipt, |_| true).await;
    assert_eq!(recorded["verification"]["status"], "unverified");
    assert_eq!(expected(&h, target["id"].as_str().unwrap()).await["amount_paid"], 0);
    // The real confirmation: kept beside the forged one, not dropped as a duplicate.
    assert_eq!(h.post_callback(&confirmation_url, &real).await.status, StatusCode::OK);
    h.wait_c2b_payment("600984", &receipt, |p| p["verification"]["other_confirmations"] == 1)
        .await;
    let verified = h.verify_c2b("600984", &receipt).await;
    assert_eq!(
        (
            verified["verification"]["status"].as_str(),
            verified["bill_ref_number"].as_str(),
            verified["amount"].as_u64()
        ),
        (Some("verified"), Some("INV-77"), Some(500)),
        "{verified}"
    );
    assert_eq!(verified["match"]["expected_payment_id"], invoice["id"]);
    assert_eq!(expected(&h, invoice["id"].as_str().unwrap()).await["status"], "paid");
    assert_eq!(expected(&h, target["id"].as_str().unwrap()).await["amount_paid"], 0);

    // A receipt Daraja never made: "not found", twice, spaced, past the deadline: rejected.
    let mut invented = real.clone();
    invented["TransID"] = json!("TKZ9999999");
    invented["BillRefNumber"] = json!("INV-66");
    invented["TransAmount"] = json!("5000.00");
    assert_eq!(
        h.post_callback(&confirmation_url, &invented).await.status,
        StatusCode::OK
    );
    let fake = h.wait_c2b_payment("600984", "TKZ9999999", |_| true).await;
    let fake_id = fake["id"].as_str().unwrap().to_owned();
    // One answer before the deadline, one past it (and more than the interval later).
    for (n, advance) in [(1, 0), (2, 31 * 60)] {
        h.advance(advance);
        h.stack.sweep_c2b_now().await;
        h.wait_for_records(&fake_id, "c2b_status_result", n).await;
    }
    let rejected = h
        .wait_c2b_payment("600984", "TKZ9999999", |p| p["verification"]["status"] == "rejected")
        .await;
    assert_eq!(rejected["verification"]["reason"], "not_found");
    assert_eq!(rejected["match"]["reason"], "verification_failed");
    assert_eq!(expected(&h, target["id"].as_str().unwrap()).await["amount_paid"], 0);
    h.shutdown().await;
}

/// An STK payment whose callback never comes is completed by STK Query, which carries no receipt.
/// Its C2B echo (same shortcode, our AccountReference as BillRefNumber, same amount) cannot be
/// linked by receipt: it is linked by reference, gives the payment its receipt, and is never
/// counted as new money.
#[tokio::test]
async fn the_echo_of_a_payment_completed_by_reconciliation_is_linked_not_counted_twice() {
    let h = Harness::start_with_manual_clock(devstack::Options::for_tests()).await;
    h.register_shortcode(json!({"shortcode": "174379"})).await;
    // "Success, callback never sent": STK Query answers 0.
    let reply = h
        .create_payment(
            &key(),
            &json!({"amount": 150, "phone": "254700090002", "reference": "ORDER-R1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let pay_id = reply.body["id"].as_str().unwrap().to_owned();
    let checkout = reply.body["checkout_request_id"].as_str().unwrap().to_owned();
    let truth = loop {
        let rows = h.sim_transactions(&format!("?checkout_request_id={checkout}")).await;
        if rows.first().is_some_and(|r| r["status"] == "completed") {
            break rows[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let receipt = truth["receipt"].as_str().unwrap().to_owned();
    let echo = h.wait_c2b_payment("174379", &receipt, |_| true).await;
    assert_eq!(
        (echo["kind"].as_str(), echo["verification"]["status"].as_str()),
        (Some("payment"), Some("unverified"))
    );
    // The sweep: STK Query completes the payment (no receipt), Transaction Status verifies the
    // echo, and the echo finds the payment by reference.
    h.advance(80);
    h.stack.sweep_now().await;
    let echo = h.verify_c2b("174379", &receipt).await;
    assert_eq!(echo["kind"], "stk_duplicate", "{echo}");
    assert_eq!(echo["payment_id"], pay_id.as_str());
    let payment = h
        .wait_for(&pay_id, "given its receipt", |p| p["mpesa_receipt"] == receipt.as_str())
        .await;
    assert_eq!(payment["status"], "completed");
    let new_money: Vec<Value> = h
        .c2b_payments("?shortcode=174379")
        .await
        .into_iter()
        .filter(|p| p["kind"] == "payment")
        .collect();
    assert!(new_money.is_empty(), "counted twice: {new_money:#?}");
    h.shutdown().await;
}

/// The push's answer was lost after Daraja processed it (no CheckoutRequestID) and its callback
/// was dropped too: nothing can be asked with STK Query. Its verified C2B echo still finds it (by
/// shortcode, reference, amount and time) and completes it with the receipt.
#[tokio::test]
async fn a_payment_whose_answer_and_callback_were_lost_is_completed_by_its_verified_echo() {
    let h = Harness::start().await;
    h.register_shortcode(json!({"shortcode": "174379"})).await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [
            {"endpoint": "stk_push", "kind": "http_503", "first_n": 1, "phase": "after"},
            {"endpoint": "stk_callback", "kind": "drop", "first_n": 1}
        ]}),
    )
    .await;
    let reply = h
        .create_payment(
            &key(),
            &json!({"amount": 175, "phone": "254712399001", "reference": "ORDER-L1"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("unknown"))
    );
    let pay_id = reply.body["id"].as_str().unwrap().to_owned();
    let pushes = h.stk_pushes().await;
    let receipt = loop {
        let rows = h.sim_transactions("?kind=stk").await;
        if let Some(r) = rows.iter().find(|r| r["status"] == "completed") {
            break r["receipt"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pushes.len(), 1);
    h.wait_c2b_payment("174379", &receipt, |_| true).await;
    let echo = h.verify_c2b("174379", &receipt).await;
    assert_eq!(
        (echo["kind"].as_str(), echo["payment_id"].as_str()),
        (Some("stk_duplicate"), Some(pay_id.as_str()))
    );
    let done = h.wait_for_status(&pay_id, "completed").await;
    assert_eq!(done["mpesa_receipt"], receipt.as_str());
    assert_eq!(
        done["history"].as_array().unwrap().last().unwrap()["source"],
        "c2b_echo"
    );
    h.shutdown().await;
}
