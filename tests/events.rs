//! The outbox over HTTP: an event for every state change, in order, with its cause and the
//! resource's view; delivered by the table's stream, or by the sweep's redrive when the stream
//! did not; readable by the resource's merchant only. (Every suite's shutdown also checks the
//! invariant over everything it stored: see `support::Harness::shutdown`.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use checkout::queue::memory::{MemoryQueue, MemoryQueueOptions};
use checkout::store::memory::MemoryTable;
use devstack::{Backend, Options};
use reqwest::StatusCode;
use serde_json::Value;
use support::{key, payment_body, Harness};

async fn events_of(h: &Harness, id: &str) -> Vec<Value> {
    let reply = h.get(&format!("/v1/events?resource_id={id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_payment_has_one_event_per_change_with_its_cause_and_view_for_its_merchant_only() {
    let h = Harness::start().await;
    let created = h.create_payment(&key(), &payment_body("254700000000", 1500)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let done = h.wait_for_status(&id, "completed").await;

    // Newest first: completed (the callback), sent (Daraja's answer), created (the API).
    let mut events = events_of(&h, &id).await;
    for _ in 0..100 {
        if events.len() == 3 && events.iter().all(|e| !e["handled_at"].is_null()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        events = events_of(&h, &id).await;
    }
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("payment.completed", "callback"),
            ("payment.sent", "daraja"),
            ("payment.created", "api")
        ]
    );
    assert!(
        events.iter().all(|e| !e["handled_at"].is_null()),
        "delivered by the stream: {events:#?}"
    );
    let sequences: Vec<u64> = events.iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");
    let completed = &events[0];
    assert_eq!(completed["data"]["mpesa_receipt"], done["mpesa_receipt"]);
    assert_eq!(
        completed["data"]["phone"], "2547****0000",
        "phones masked in events too"
    );
    assert_eq!(completed["resource"], "payment");

    // One, by id; filtered by type.
    let one = h
        .get(&format!("/v1/events/{}", completed["id"].as_str().unwrap()))
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["type"], "payment.completed");
    let typed = h.get("/v1/events?type=payment.completed").await;
    assert!(typed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "payment.completed"));
    let bad = h.get("/v1/events?type=payment.paid").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["code"], "invalid_value", "{}", bad.body);

    // Another merchant sees none of it.
    let other = h.token_for("merchant-b", &["events:read"]);
    let hidden = h
        .get_as(&other, &format!("/v1/events/{}", completed["id"].as_str().unwrap()))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let listed = h.get_as(&other, &format!("/v1/events?resource_id={id}")).await;
    assert_eq!(listed.body["data"], serde_json::json!([]));
    let unscoped = h.token_for("merchant-a", &["payments:read"]);
    assert_eq!(h.get_as(&unscoped, "/v1/events").await.status, StatusCode::FORBIDDEN);
    h.shutdown().await;
}

#[tokio::test]
async fn events_the_stream_did_not_deliver_are_delivered_by_the_redrive_and_only_once() {
    // A table without a stream: as if the events function were down.
    let table: Arc<dyn checkout::store::Table> = Arc::new(MemoryTable::new());
    let queue = Arc::new(MemoryQueue::new(MemoryQueueOptions {
        visibility_timeout: Duration::from_secs(30),
        max_receives: 5,
    }));
    let mut options = Options::for_tests();
    options.backend = Backend::Provided {
        table: table.clone(),
        callback_queue: queue,
    };
    let h = Harness::start_with(options).await;
    let created = h.create_payment(&key(), &payment_body("254700000000", 700)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&id, "completed").await;
    let undelivered = events_of(&h, &id).await;
    assert_eq!(undelivered.len(), 3);
    assert!(undelivered.iter().all(|e| e["handled_at"].is_null()));

    // Too recent for the redrive (the stream may still deliver them)...
    assert_eq!(h.stack.redrive_events_now().await.examined, 0);
    // ...but minutes later the sweep delivers each one, once.
    let later = Arc::new(checkout::clock::ManualClock::new(
        chrono::Utc::now() + chrono::Duration::seconds(checkout::events::handler::REDRIVE_AFTER_SECONDS + 5),
    ));
    // The sweeper's handler, with its first consumer (the audit trail).
    let handler = checkout::events::handler::EventHandler::new(table.clone(), later.clone())
        .with_consumer(Arc::new(checkout::audit::AuditLog::new(table.clone(), later)));
    let report = handler.redrive().await;
    assert_eq!((report.examined, report.handled, report.failed), (3, 3, 0));
    assert_eq!(
        handler.redrive().await.examined,
        0,
        "handled events leave the redrive's index"
    );
    for event in events_of(&h, &id).await {
        assert!(!event["handled_at"].is_null());
        let stored = checkout::events::repo::get(table.as_ref(), event["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.deliveries, 1);
    }
    h.shutdown().await;
}
