//! Transaction limits under concurrency: simultaneous requests never exceed a limit, and every
//! refusal is a clear `limit_exceeded` problem naming the limit and when it resets.

mod support;

use checkout::services::limits::LimitsConfig;
use devstack::Options;
use reqwest::StatusCode;
use serde_json::Value;
use support::{key, payment_body, Harness};

fn with_limits(limits: LimitsConfig) -> Options {
    Options {
        limits,
        ..Options::for_tests()
    }
}

#[tokio::test]
async fn simultaneous_prompts_to_one_phone_never_exceed_the_window() {
    let h = Harness::start().await;
    let phone = "254722000001";
    let bodies: Vec<(String, Value)> = (0..20).map(|n| (key(), payment_body(phone, 100 + n))).collect();
    let replies = futures::future::join_all(bodies.iter().map(|(k, b)| h.create_payment(k, b))).await;
    let mut created = 0;
    for reply in &replies {
        match reply.status {
            // Accepted, or refused by Daraja because a prompt is already open: a prompt attempt either way.
            StatusCode::ACCEPTED | StatusCode::BAD_GATEWAY => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(reply.body["code"], "limit_exceeded");
                assert_eq!(reply.body["limit"], "phone_prompts");
                assert!(reply.body["resets_at"].is_string());
                assert!(reply.headers.contains_key("retry-after"));
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(created, 3, "exactly the window's 3 prompts");
    assert!(h.stk_pushes().await.len() <= 3);
    assert!(
        checkout::metrics::counter_total("LimitRefusals") >= 17.0,
        "refusals are counted"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_merchant_daily_count_cap_holds_under_concurrency() {
    let h = Harness::start_with(with_limits(LimitsConfig {
        merchant_daily_count: Some(5),
        ..LimitsConfig::default()
    }))
    .await;
    let bodies: Vec<(String, Value)> = (0..20)
        .map(|n| (key(), payment_body(&format!("2547220001{n:02}"), 100)))
        .collect();
    let replies = futures::future::join_all(bodies.iter().map(|(k, b)| h.create_payment(k, b))).await;
    let accepted = replies.iter().filter(|r| r.status == StatusCode::ACCEPTED).count();
    assert_eq!(accepted, 5);
    for refused in replies.iter().filter(|r| r.status != StatusCode::ACCEPTED) {
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
        assert_eq!(refused.body["limit"], "merchant_daily_count");
    }
    // Another merchant has its own count.
    let other = h.token_for("merchant-b", &["payments:write"]);
    assert_eq!(
        h.create_payment_as(&other, &key(), &payment_body("254722000199", 100))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    h.shutdown().await;
}

#[tokio::test]
async fn amount_caps_per_merchant_and_per_phone() {
    let h = Harness::start_with(with_limits(LimitsConfig {
        merchant_daily_amount: Some(1_000),
        phone_daily_amount: Some(700),
        payment_max: 600,
        ..LimitsConfig::default()
    }))
    .await;
    let too_big = h.create_payment(&key(), &payment_body("254722000201", 601)).await;
    assert_eq!(
        (too_big.status, too_big.body["limit"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("payment_amount_max"))
    );

    assert_eq!(
        h.create_payment(&key(), &payment_body("254722000202", 400))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let phone_cap = h.create_payment(&key(), &payment_body("254722000202", 400)).await;
    assert_eq!(phone_cap.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(phone_cap.body["limit"], "phone_daily_amount");
    assert!(
        phone_cap.body["resets_at"].as_str().unwrap().ends_with("T21:00:00Z"),
        "Nairobi midnight: {}",
        phone_cap.body
    );

    assert_eq!(
        h.create_payment(&key(), &payment_body("254722000203", 600))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let merchant_cap = h.create_payment(&key(), &payment_body("254722000204", 1)).await;
    assert_eq!(merchant_cap.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(merchant_cap.body["limit"], "merchant_daily_amount");
    // A refused request left nothing behind: its key is free for a smaller retry elsewhere.
    h.shutdown().await;
}
