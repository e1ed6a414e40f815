//! Tenant isolation end to end: every read and write a merchant's token can attempt on another
//! merchant's payments, payouts, C2B registrations, expected payments and C2B payments is a 404
//! (or, for registering a shortcode another merchant holds, a 409 that names no data), never
//! another merchant's data; two users of one merchant share its data and approve each other's
//! payouts; only `platform:operator` reaches across merchants.

mod support;

use std::time::Duration;

use devstack::{Options, ALL_SCOPES};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, payment_body, payout_body, Harness};

fn token(h: &Harness, user: &str, merchant: &str, scopes: &[&str]) -> String {
    h.stack
        .token_for_merchant(user, merchant, scopes, Duration::from_secs(600))
}

async fn post(h: &Harness, token: &str, path: &str, body: &Value) -> support::Reply {
    h.send(
        h.http
            .post(h.url(path))
            .bearer_auth(token)
            .header("idempotency-key", key())
            .json(body),
    )
    .await
}

fn not_found(reply: &support::Reply, what: &str) {
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{what}: {}",
        reply.body
    );
}

#[tokio::test]
async fn another_merchants_data_is_never_seen_or_touched() {
    let mut options = Options::for_tests();
    options.payouts.config.approval_threshold = Some(100_000);
    let h = Harness::start_with(options).await;
    let alice = token(&h, "alice", "merchant-a", ALL_SCOPES);
    let carol = token(&h, "carol", "merchant-a", ALL_SCOPES);
    let bob = token(&h, "bob", "shop-b", ALL_SCOPES);
    let operator = token(
        &h,
        "ops-1",
        "platform",
        &[
            "payments:read_all",
            "payouts:read",
            "payouts:approve",
            "c2b:read",
            "c2b:admin",
            "platform:operator",
        ],
    );

    // Shop A's data.
    let payment = h
        .create_payment_as(&alice, &key(), &payment_body("254712399101", 100))
        .await;
    assert_eq!(payment.status, StatusCode::ACCEPTED, "{}", payment.body);
    let payment_id = payment.body["id"].as_str().unwrap().to_owned();
    let payout = h
        .create_payout_as(&alice, &key(), &payout_body("0712399102", 150_000))
        .await;
    assert_eq!(payout.body["status"], "awaiting_approval", "{}", payout.body);
    assert_eq!(payout.body["created_by"], "alice");
    let payout_id = payout.body["id"].as_str().unwrap().to_owned();
    let reg = post(&h, &alice, "/v1/c2b/registrations", &json!({"shortcode": "600984"})).await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
    assert_eq!(reg.body["owner"], "merchant-a", "owned by the merchant, not the user");
    let expected = post(
        &h,
        &alice,
        "/v1/c2b/expected-payments",
        &json!({"shortcode": "600984", "account_number": "INV-A1", "amount": {"rule": "open"}}),
    )
    .await;
    assert_eq!(expected.status, StatusCode::CREATED, "{}", expected.body);
    let expected_id = expected.body["id"].as_str().unwrap().to_owned();
    let ocid = h.c2b_simulate("600984", "254712399103", 300, "INV-A1").await;
    let receipt = h.wait_c2b_tx(&ocid).await["receipt"].as_str().unwrap().to_owned();
    let c2b = h.wait_c2b_payment("600984", &receipt, |_| true).await;
    let c2b_id = c2b["id"].as_str().unwrap().to_owned();

    // Shop B reads: nothing of shop A's, as if it did not exist.
    not_found(&h.get_as(&bob, &format!("/v1/payments/{payment_id}")).await, "payment");
    not_found(&h.get_as(&bob, &format!("/v1/payouts/{payout_id}")).await, "payout");
    not_found(
        &h.get_as(&bob, &format!("/v1/c2b/expected-payments/{expected_id}"))
            .await,
        "expected payment",
    );
    not_found(
        &h.get_as(&bob, &format!("/v1/c2b/payments/{c2b_id}")).await,
        "C2B payment",
    );
    for list in [
        "/v1/payments",
        "/v1/payouts",
        "/v1/payouts?status=awaiting_approval",
        "/v1/c2b/payments",
    ] {
        let page = h.get_as(&bob, list).await;
        assert_eq!(
            (page.status, page.body["data"].clone()),
            (StatusCode::OK, json!([])),
            "{list}"
        );
    }
    let by_shortcode = h.get_as(&bob, "/v1/c2b/payments?shortcode=600984").await;
    assert_eq!(by_shortcode.status, StatusCode::BAD_REQUEST);
    assert_eq!(by_shortcode.body["errors"][0]["code"], "unknown_shortcode");

    // Shop B writes: nothing happens to shop A's data.
    for action in ["approve", "reject"] {
        not_found(&h.review_payout(&bob, &payout_id, action).await, action);
    }
    let taken = post(
        &h,
        &bob,
        "/v1/c2b/registrations",
        &json!({"shortcode": "600984", "rules": {"require_expected_payment": true}}),
    )
    .await;
    assert_eq!(
        (taken.status, taken.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("shortcode_registered_elsewhere")),
        "{}",
        taken.body
    );
    let as_other = post(
        &h,
        &bob,
        "/v1/c2b/registrations",
        &json!({"shortcode": "600777", "owner": "merchant-a"}),
    )
    .await;
    assert_eq!(as_other.status, StatusCode::BAD_REQUEST, "{}", as_other.body);
    assert_eq!(as_other.body["errors"][0]["code"], "owner_not_allowed");
    let foreign_invoice = post(
        &h,
        &bob,
        "/v1/c2b/expected-payments",
        &json!({"shortcode": "600984", "account_number": "INV-B1", "amount": {"rule": "open"}}),
    )
    .await;
    assert_eq!(foreign_invoice.status, StatusCode::BAD_REQUEST);
    assert_eq!(foreign_invoice.body["errors"][0]["code"], "unknown_shortcode");
    // Shop A's registration and payout are as they were.
    let mine = h.get_as(&alice, &format!("/v1/payouts/{payout_id}")).await;
    assert_eq!(mine.body["status"], "awaiting_approval");
    let regs: Value = h
        .http
        .get(h.sim_url("/__control/c2b/registrations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        regs.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["shortcode"] == "600984")
            .count(),
        1,
        "shop B never re-registered it"
    );

    // Another user of shop A shares its data and approves alice's payout (two people).
    assert_eq!(
        h.get_as(&carol, &format!("/v1/payments/{payment_id}")).await.status,
        StatusCode::OK
    );
    let own = h.review_payout(&alice, &payout_id, "approve").await;
    assert_eq!(own.body["code"], "self_approval_forbidden");
    let approved = h.review_payout(&carol, &payout_id, "approve").await;
    assert_eq!(
        (approved.status, approved.body["approval"]["by"].as_str()),
        (StatusCode::OK, Some("carol"))
    );

    // An operator reaches across merchants.
    assert_eq!(
        h.get_as(&operator, &format!("/v1/payments/{payment_id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.get_as(&operator, &format!("/v1/c2b/payments/{c2b_id}")).await.status,
        StatusCode::OK
    );
    let all = h.get_as(&operator, "/v1/payments").await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
    h.shutdown().await;
}
