//! Transaction limits under concurrency: simultaneous requests never exceed a limit, every
//! refusal is a clear `limit_exceeded` problem naming the limit and when it resets, phone limits
//! are per merchant, and one merchant's concurrent payments never fail on its hot daily counter.

mod support;

use checkout::queue::memory::{MemoryQueue, MemoryQueueOptions};
use checkout::services::limits::LimitsConfig;
use checkout::store::memory::MemoryTable;
use devstack::{Backend, Options};
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

/// A prompt was sent to Daraja: accepted, or refused by Daraja because the phone already has a
/// prompt open (the simulator locks a subscriber during a prompt), never refused by a limit.
fn prompted(reply: &support::Reply) -> bool {
    reply.status == StatusCode::ACCEPTED
        || (reply.status == StatusCode::BAD_GATEWAY && reply.body["code"] == "daraja_rejected")
}

#[tokio::test]
async fn phone_limits_are_per_merchant() {
    let h = Harness::start_with(with_limits(LimitsConfig {
        phone_daily_amount: Some(500),
        ..LimitsConfig::default()
    }))
    .await;
    let b = h.token_for("merchant-b", &["payments:write"]);
    // Merchant A spends the phone's prompt window (3 prompts) ...
    let phone = "254722000301";
    for _ in 0..3 {
        let reply = h.create_payment(&key(), &payment_body(phone, 10)).await;
        assert!(prompted(&reply), "{}", reply.body);
    }
    let a_again = h.create_payment(&key(), &payment_body(phone, 10)).await;
    assert_eq!(a_again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a_again.body["limit"], "phone_prompts");
    // ... which is A's window for that phone, not merchant B's.
    let b_reply = h.create_payment_as(&b, &key(), &payment_body(phone, 10)).await;
    assert!(prompted(&b_reply), "{}", b_reply.body);

    // Likewise the phone's daily amount: A's spent cap does not refuse B.
    let phone = "254722000302";
    let spent = h.create_payment(&key(), &payment_body(phone, 500)).await;
    assert_eq!(spent.status, StatusCode::ACCEPTED, "{}", spent.body);
    let a_over = h.create_payment(&key(), &payment_body(phone, 1)).await;
    assert_eq!(a_over.body["limit"], "phone_daily_amount", "{}", a_over.body);
    let b_reply = h.create_payment_as(&b, &key(), &payment_body(phone, 500)).await;
    assert!(prompted(&b_reply), "{}", b_reply.body);
    h.shutdown().await;
}

#[tokio::test]
async fn a_refused_or_replayed_payment_gives_its_merchant_reservation_back() {
    let h = Harness::start_with(with_limits(LimitsConfig {
        merchant_daily_count: Some(3),
        phone_daily_amount: Some(100),
        ..LimitsConfig::default()
    }))
    .await;
    let first_key = key();
    assert_eq!(
        h.create_payment(&first_key, &payment_body("254722000401", 100))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // A replay of the same key, a payment refused by the phone's daily amount: neither is a
    // payment, so neither spends the merchant's daily count (reserved, then given back).
    for _ in 0..3 {
        let replay = h.create_payment(&first_key, &payment_body("254722000401", 100)).await;
        assert_eq!(replay.headers["idempotent-replayed"], "true");
        let refused = h.create_payment(&key(), &payment_body("254722000401", 1)).await;
        assert_eq!(refused.body["limit"], "phone_daily_amount", "{}", refused.body);
    }
    assert_eq!(merchant_counters(&h, "merchant-a").await, (1, 100));
    // So the two payments left in the count still go through, and the fourth is refused.
    for phone in ["254722000402", "254722000403"] {
        assert_eq!(
            h.create_payment(&key(), &payment_body(phone, 10)).await.status,
            StatusCode::ACCEPTED
        );
    }
    let over = h.create_payment(&key(), &payment_body("254722000404", 10)).await;
    assert_eq!(over.body["limit"], "merchant_daily_count", "{}", over.body);
    assert_eq!(merchant_counters(&h, "merchant-a").await, (3, 120));
    h.shutdown().await;
}

/// The merchant's daily `(count, amount)` counters as stored.
async fn merchant_counters(h: &Harness, merchant: &str) -> (i64, i64) {
    let day = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%Y-%m-%d");
    let item = h
        .stack
        .table()
        .get(&format!("LIMIT#CLIENTDAY#{merchant}#{day}"))
        .await
        .expect("read")
        .expect("the merchant's daily counters");
    (item.counters["count"], item.counters["amount"])
}

/// A dev stack on an in-memory table whose transactions hold their items for `hold`, as
/// DynamoDB's do while they run (the default table holds them for one scheduler turn).
async fn stack_with_transaction_hold(hold: std::time::Duration) -> (Harness, std::sync::Arc<MemoryTable>) {
    let table = std::sync::Arc::new(MemoryTable::new().with_transaction_hold(hold));
    let queue = std::sync::Arc::new(MemoryQueue::new(MemoryQueueOptions {
        visibility_timeout: std::time::Duration::from_secs(30),
        max_receives: 5,
    }));
    let options = Options {
        backend: Backend::Provided {
            table: table.clone(),
            callback_queue: queue,
        },
        ..Options::for_tests()
    };
    (Harness::start_with(options).await, table)
}

/// 200 payments of one merchant at once (distinct phones and keys) against a table that
/// refuses writes to items of a transaction in progress, as DynamoDB does: every one is
/// accepted (no 503 from a `TransactionConflict` on the merchant's daily counter, no 409), and
/// the merchant's daily counters are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_payments_of_one_merchant_all_succeed_with_exact_counters() {
    let (h, table) = stack_with_transaction_hold(std::time::Duration::from_millis(5)).await;
    let bodies: Vec<(String, Value)> = (0..200)
        .map(|n| (key(), payment_body(&format!("2547230{n:05}"), 10 + n)))
        .collect();
    let replies = futures::future::join_all(bodies.iter().map(|(k, b)| h.create_payment(k, b))).await;
    let mut statuses = std::collections::BTreeMap::new();
    for reply in &replies {
        *statuses.entry(reply.status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, [(202, 200)].into(), "every payment accepted");
    let total: i64 = (0..200).map(|n| 10 + n).sum();
    assert_eq!(merchant_counters(&h, "merchant-a").await, (200, total));
    println!("transaction conflicts refused by the table: {}", table.conflicts());
    h.shutdown().await;
}
