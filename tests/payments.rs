//! STK Push checkout, end to end over HTTP: the dev stack (initiate, status, callback and the
//! callback processor) against the Daraja simulator.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{failure_callback, key, payment_body, success_callback, Harness};

const UNREACHABLE: &str = "254700090001";

/// A phone number no other test uses (the simulator refuses a second prompt to a busy phone).
fn fresh_phone(n: u32) -> String {
    format!("2547123{n:05}")
}

#[tokio::test]
async fn happy_path_settles_by_callback() {
    let h = Harness::start().await;
    let reply = h.create_payment(&key(), &json!({"amount": 1500, "phone": "0712 345 678", "reference": "ORDER1234", "description": "Chess set", "metadata": {"order_id": "A-1"}})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let p = &reply.body;
    assert!(p["id"].as_str().unwrap().starts_with("pay_"));
    assert_eq!(p["status"], "sent");
    assert_eq!(p["amount"], 1500);
    assert_eq!(p["currency"], "KES");
    assert_eq!(p["phone"], "2547****5678");
    assert_eq!(p["metadata"]["order_id"], "A-1");
    assert!(p["checkout_request_id"].as_str().unwrap().starts_with("ws_CO_"));

    let done = h.wait_for_status(p["id"].as_str().unwrap(), "completed").await;
    assert!(done["mpesa_receipt"].as_str().is_some_and(|r| r.len() == 10));
    assert_eq!(done["result"]["code"], "0");
    assert_eq!(done["failure_reason"], Value::Null);
    assert_eq!(done["late"], false);
    let sources: Vec<&str> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["api", "daraja", "callback"]);

    // What M-Pesa did matches what we recorded.
    let truth = h
        .sim_transactions(&format!(
            "?checkout_request_id={}",
            done["checkout_request_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(truth.len(), 1);
    assert_eq!(truth[0]["receipt"], done["mpesa_receipt"]);
    assert_eq!(truth[0]["amount"], 1500);
    assert_eq!(truth[0]["request"]["PhoneNumber"], "254712345678");
    h.shutdown().await;
}

#[tokio::test]
async fn every_scenario_number_maps_to_its_outcome() {
    let h = Harness::start().await;
    // (phone, status, failure_reason, result code)
    let table: &[(&str, &str, Option<&str>, &str)] = &[
        ("254700000000", "completed", None, "0"),
        ("254700001032", "cancelled", Some("cancelled_by_customer"), "1032"),
        ("254700001037", "timeout", Some("customer_unreachable"), "1037"),
        ("254700000001", "failed", Some("insufficient_funds"), "1"),
        ("254700000002", "failed", Some("limit_exceeded"), "2"),
        ("254700000003", "failed", Some("limit_exceeded"), "3"),
        ("254700000004", "failed", Some("limit_exceeded"), "4"),
        ("254700000008", "failed", Some("limit_exceeded"), "8"),
        ("254700000017", "failed", Some("duplicate_too_soon"), "17"),
        ("254700001001", "failed", Some("subscriber_busy"), "1001"),
        ("254700001019", "failed", Some("expired"), "1019"),
        ("254700001025", "failed", Some("push_failed"), "1025"),
        ("254700009999", "failed", Some("push_failed"), "9999"),
        ("254700001036", "failed", Some("network_error"), "1036"),
        ("254700002001", "failed", Some("wrong_pin"), "2001"),
        ("254700008006", "failed", Some("pin_locked"), "8006"),
        ("254700002028", "failed", Some("merchant_misconfigured"), "2028"),
        ("254700090003", "failed", Some("merchant_misconfigured"), "SFC_IC0003"),
        ("254708374149", "timeout", Some("customer_unreachable"), "1037"),
    ];
    let bodies: Vec<(String, Value)> = table
        .iter()
        .map(|(phone, ..)| (key(), payment_body(phone, 100)))
        .collect();
    let created = futures::future::join_all(bodies.iter().map(|(k, body)| h.create_payment(k, body))).await;
    for ((phone, status, reason, code), reply) in table.iter().zip(created) {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{phone}: {}", reply.body);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        let settled = h.wait_for(&id, status, |p| p["status"] != "sent").await;
        assert_eq!(settled["status"], *status, "{phone}: {settled:#}");
        assert_eq!(
            settled["failure_reason"],
            reason.map_or(Value::Null, |r| json!(r)),
            "{phone}"
        );
        assert_eq!(
            settled["result"]["code"], *code,
            "{phone}: code kept verbatim as a string"
        );
        assert_eq!(settled["mpesa_receipt"].is_string(), *status == "completed", "{phone}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_customer_gets_no_callback_and_the_payment_stays_open() {
    let h = Harness::start().await;
    let reply = h.create_payment(&key(), &payment_body(UNREACHABLE, 100)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let id = reply.body["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    h.settle_queue().await;
    let p = h.payment(id).await;
    assert_eq!(p["status"], "sent", "never guessed: waits for reconciliation");
    assert!(h.callback_records(id).await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn duplicate_callbacks_change_nothing() {
    let h = Harness::start().await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_callback", "kind": "duplicate", "probability": 1.0}]}),
    )
    .await;
    let reply = h.create_payment(&key(), &payment_body(&fresh_phone(1), 250)).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let done = h.wait_for_status(&id, "completed").await;
    // Both deliveries are recorded: one applied, one duplicate.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let records = loop {
        h.settle_queue().await;
        let records = h.callback_records(&id).await;
        if records.len() >= 2 || tokio::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let verdicts: Vec<&str> = records.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == "applied").count(), 1, "{verdicts:?}");
    assert_eq!(
        verdicts.iter().filter(|v| **v == "duplicate").count(),
        1,
        "{verdicts:?}"
    );
    let after = h.payment(&id).await;
    assert_eq!(after["history"], done["history"]);
    assert_eq!(after["updated_at"], done["updated_at"]);
    h.shutdown().await;
}

#[tokio::test]
async fn out_of_order_and_conflicting_callbacks_keep_one_outcome() {
    let h = Harness::start().await;
    // A completed payment receives a late "cancelled" callback: nothing changes, an anomaly is kept.
    let reply = h.create_payment(&key(), &payment_body(&fresh_phone(2), 100)).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let crid = reply.body["checkout_request_id"].as_str().unwrap().to_owned();
    let done = h.wait_for_status(&id, "completed").await;
    let url = h.callback_url(&crid).await;
    let ack = h
        .post_callback(&url, &failure_callback(&crid, json!(1032), "Request cancelled by user"))
        .await;
    assert_eq!(ack.status, StatusCode::OK);
    assert_eq!(ack.body, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
    h.settle_queue().await;
    let after = h.payment(&id).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["history"], done["history"]);
    let records = h.callback_records(&id).await;
    assert!(
        records
            .iter()
            .any(|r| r["verdict"] == "anomaly" && r["reason"] == "conflicting_result"),
        "{records:#?}"
    );

    // The other order: cancellation first (posted by us for an unreachable phone), then a success.
    let reply = h.create_payment(&key(), &payment_body(UNREACHABLE, 100)).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let crid = reply.body["checkout_request_id"].as_str().unwrap().to_owned();
    let url = h.callback_url(&crid).await;
    h.post_callback(
        &url,
        &failure_callback(&crid, json!("1032"), "Request cancelled by user"),
    )
    .await;
    h.wait_for_status(&id, "cancelled").await;
    h.post_callback(&url, &success_callback(&crid, json!(100), "TKL4ABC12D"))
        .await;
    h.settle_queue().await;
    let after = h.payment(&id).await;
    assert_eq!(
        after["status"], "cancelled",
        "money after a cancellation is flagged, not applied"
    );
    assert!(h.callback_records(&id).await.iter().any(|r| r["verdict"] == "anomaly"));
    h.shutdown().await;
}

#[tokio::test]
async fn forged_callbacks_are_recorded_and_never_applied() {
    let h = Harness::start().await;
    let reply = h.create_payment(&key(), &payment_body(UNREACHABLE, 700)).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let crid = reply.body["checkout_request_id"].as_str().unwrap().to_owned();
    let url = h.callback_url(&crid).await;

    // A tampered token.
    let forged_url = format!("{}AAAA", url.trim_end_matches(|c: char| c != '.'));
    let cases: Vec<(String, Value, &str)> = vec![
        (
            forged_url,
            success_callback(&crid, json!(700), "TKLFORGED1"),
            "invalid_token",
        ),
        (
            url.clone(),
            success_callback(&crid, json!(1), "TKLFORGED2"),
            "amount_mismatch",
        ),
        (
            url.clone(),
            success_callback(&crid, json!("700.50"), "TKLFORGED3"),
            "amount_mismatch",
        ),
        (
            url.clone(),
            success_callback("ws_CO_someone_else", json!(700), "TKLFORGED4"),
            "checkout_request_mismatch",
        ),
        (
            url.clone(),
            json!({"Body": {"stkCallback": {"ResultCode": 0}}}),
            "malformed",
        ),
        (url.clone(), json!(["not", "a", "callback"]), "malformed"),
    ];
    for (target, body, _) in &cases {
        let ack = h.post_callback(target, body).await;
        assert_eq!(
            ack.status,
            StatusCode::OK,
            "every callback is acknowledged once durable"
        );
    }
    // A genuine token for a payment we never created: recorded under that id, never applied.
    let ghost = "pay_01JD3Q8Z4M2X9N5K7R1T6V0W8Y";
    let ghost_url = h.stack.stk_callback_url(ghost).await;
    assert_eq!(
        h.post_callback(&ghost_url, &success_callback(&crid, json!(700), "TKLGHOST01"))
            .await
            .status,
        StatusCode::OK
    );
    // Not even JSON.
    let ack = h.send(h.http.post(&url).body("<html>oops</html>")).await;
    assert_eq!(ack.status, StatusCode::OK);
    h.settle_queue().await;

    let p = h.payment(&id).await;
    assert_eq!(p["status"], "sent");
    assert_eq!(p["mpesa_receipt"], Value::Null);
    let records = h.callback_records(&id).await;
    for (_, _, reason) in cases.iter().skip(1) {
        assert!(
            records
                .iter()
                .any(|r| r["reason"] == *reason && r["verdict"] == "anomaly"),
            "missing {reason}: {records:#?}"
        );
    }
    assert_eq!(records.iter().filter(|r| r["reason"] == "malformed").count(), 3);
    // The forged token names no payment we can trust: it is recorded without one.
    assert!(records.iter().all(|r| r["reason"] != "invalid_token"));
    let ghost_records = h.callback_records(ghost).await;
    assert_eq!(ghost_records.len(), 1);
    assert_eq!(
        (
            ghost_records[0]["verdict"].as_str(),
            ghost_records[0]["reason"].as_str()
        ),
        (Some("anomaly"), Some("unknown_payment"))
    );
    assert_eq!(
        h.get(&format!("/v1/payments/{ghost}")).await.status,
        StatusCode::NOT_FOUND
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_replay_returns_the_first_response_and_sends_no_second_prompt() {
    let h = Harness::start().await;
    let k = key();
    let body = payment_body(&fresh_phone(3), 100);
    let first = h.create_payment(&k, &body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let id = first.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&id, "completed").await;
    // The same request typed differently is the same request.
    let retyped =
        json!({"phone": "+254 712 300 003", "amount": 100, "reference": "ORDER1234", "description": "Chess set"});
    for replay_body in [&body, &retyped] {
        let replay = h.create_payment(&k, replay_body).await;
        assert_eq!(replay.status, StatusCode::ACCEPTED);
        assert_eq!(replay.body, first.body, "the first response, not the current state");
        assert_eq!(replay.headers["idempotent-replayed"], "true");
    }
    let pushes = h
        .sim_transactions(&format!(
            "?checkout_request_id={}",
            first.body["checkout_request_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(pushes.len(), 1);
    assert_eq!(h.stk_pushes().await.len(), 1, "exactly one prompt");
    h.shutdown().await;
}

#[tokio::test]
async fn same_key_with_another_body_is_refused() {
    let h = Harness::start().await;
    let k = key();
    assert_eq!(
        h.create_payment(&k, &payment_body(&fresh_phone(4), 100)).await.status,
        StatusCode::ACCEPTED
    );
    let reused = h.create_payment(&k, &payment_body(&fresh_phone(4), 101)).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["code"], "idempotency_key_reused");
    assert_eq!(reused.headers["content-type"], "application/problem+json");
    assert_eq!(h.stk_pushes().await.len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn concurrent_duplicates_make_exactly_one_prompt() {
    let h = Harness::start().await;
    let k = key();
    let body = payment_body(&fresh_phone(5), 100);
    let replies = futures::future::join_all((0..12).map(|_| h.create_payment(&k, &body))).await;
    let mut ids = std::collections::BTreeSet::new();
    for reply in &replies {
        match reply.status {
            StatusCode::ACCEPTED => {
                ids.insert(reply.body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                assert_eq!(reply.body["code"], "request_in_progress");
                assert_eq!(reply.headers["retry-after"], "1");
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!(ids.len(), 1, "every accepted reply names the same payment");
    assert_eq!(h.stk_pushes().await.len(), 1, "exactly one prompt");
    h.shutdown().await;
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let h = Harness::start().await;
    let k = key();
    let other = h.token_for("merchant-b", &["payments:write", "payments:read"]);
    let a = h.create_payment(&k, &payment_body(&fresh_phone(6), 100)).await;
    let b = h
        .create_payment_as(&other, &k, &payment_body(&fresh_phone(7), 100))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(b.status, StatusCode::ACCEPTED);
    assert_ne!(a.body["id"], b.body["id"]);
    h.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_one_error_per_field() {
    let h = Harness::start().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"phone": "0712345678", "reference": "R"}), "amount", "required"),
        (
            json!({"amount": null, "phone": "0712345678", "reference": "R"}),
            "amount",
            "required",
        ),
        (
            json!({"amount": 10.5, "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_whole",
        ),
        (
            json!({"amount": 10.0, "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_whole",
        ),
        (
            json!({"amount": "100", "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_an_integer",
        ),
        (
            json!({"amount": true, "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_an_integer",
        ),
        (
            json!({"amount": -5, "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_positive",
        ),
        (
            json!({"amount": 0, "phone": "0712345678", "reference": "R"}),
            "amount",
            "not_positive",
        ),
        (
            json!({"amount": 250001, "phone": "0712345678", "reference": "R"}),
            "amount",
            "out_of_range",
        ),
        (json!({"amount": 100, "reference": "R"}), "phone", "required"),
        (
            json!({"amount": 100, "phone": "0812345678", "reference": "R"}),
            "phone",
            "invalid_phone",
        ),
        (
            json!({"amount": 100, "phone": 712345678, "reference": "R"}),
            "phone",
            "invalid_phone",
        ),
        (json!({"amount": 100, "phone": "+254 7123"}), "phone", "invalid_phone"),
        (json!({"amount": 100, "phone": "0712345678"}), "reference", "required"),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": ""}),
            "reference",
            "invalid_length",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "1234567890123"}),
            "reference",
            "invalid_length",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "A#1"}),
            "reference",
            "invalid_characters",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": 5}),
            "reference",
            "invalid_type",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "description": "12345678901234"}),
            "description",
            "invalid_length",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "description": "50% off!"}),
            "description",
            "invalid_characters",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "metadata": "x"}),
            "metadata",
            "invalid_type",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "metadata": {"n": 1}}),
            "metadata",
            "invalid_type",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "metadata": {"bad key": "v"}}),
            "metadata",
            "invalid_key",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "metadata": {"k": "v".repeat(501)}}),
            "metadata",
            "value_too_long",
        ),
        (
            json!({"amount": 100, "phone": "0712345678", "reference": "R", "currency": "KES"}),
            "currency",
            "unknown_field",
        ),
    ];
    for (body, field, code) in cases {
        let reply = h.create_payment(&key(), &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
        assert_eq!(reply.body["code"], "validation_failed", "{body}");
        let errors = reply.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["code"] == code),
            "{body} -> {errors:?}"
        );
        assert!(errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())));
    }
    // Several bad fields are reported together.
    let reply = h.create_payment(&key(), &json!({"amount": 1.5, "phone": "nope"})).await;
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["amount", "phone", "reference"]);
    assert!(h.stk_pushes().await.is_empty(), "nothing invalid reached Daraja");
    h.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_and_headers_get_clear_problems() {
    let h = Harness::start().await;
    let post = || h.http.post(h.url("/v1/payments")).bearer_auth(&h.token);
    let not_json = h
        .send(
            post()
                .header("idempotency-key", key())
                .header("content-type", "application/json")
                .body("{oops"),
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let array = h
        .send(
            post()
                .header("idempotency-key", key())
                .header("content-type", "application/json")
                .body("[1]"),
        )
        .await;
    assert_eq!(array.body["code"], "malformed_json");
    let text = h
        .send(
            post()
                .header("idempotency-key", key())
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(
        (text.status, text.body["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let huge = h
        .send(
            post()
                .header("idempotency-key", key())
                .header("content-type", "application/json")
                .body(format!("{{\"a\":\"{}\"}}", "x".repeat(20_000))),
        )
        .await;
    assert_eq!(
        (huge.status, huge.body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let no_key = h.send(post().json(&payment_body("0712345678", 10))).await;
    assert_eq!(
        (no_key.status, no_key.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_missing"))
    );
    let long_key = h
        .send(
            post()
                .header("idempotency-key", "k".repeat(256))
                .json(&payment_body("0712345678", 10)),
        )
        .await;
    assert_eq!(long_key.body["code"], "idempotency_key_invalid");
    let wrong_method = h.send(h.http.delete(h.url("/v1/payments")).bearer_auth(&h.token)).await;
    assert_eq!(
        (wrong_method.status, wrong_method.body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    assert_eq!(
        wrong_method.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST, GET"),
        "a 405 lists the route's methods"
    );
    let nowhere = h.send(h.http.get(h.url("/v1/nowhere"))).await;
    assert_eq!(
        (nowhere.status, nowhere.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn authentication_and_scopes() {
    let h = Harness::start().await;
    let body = payment_body("0712345678", 10);
    let anonymous = h
        .send(
            h.http
                .post(h.url("/v1/payments"))
                .header("idempotency-key", key())
                .json(&body),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["code"], "unauthenticated");
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let garbage = h.create_payment_as("not-a-token", &key(), &body).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    let now = chrono::Utc::now().timestamp();
    let expired = h
        .stack
        .token_with_claims(&json!({"sub": "merchant-a", "scope": "payments:write", "exp": now - 120}));
    let refused = h.create_payment_as(&expired, &key(), &body).await;
    assert_eq!(
        (refused.status, refused.body["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token has expired"))
    );
    let no_exp = h
        .stack
        .token_with_claims(&json!({"sub": "merchant-a", "scope": "payments:write"}));
    assert_eq!(
        h.create_payment_as(&no_exp, &key(), &body).await.status,
        StatusCode::UNAUTHORIZED
    );
    let read_only = h.token_for("merchant-a", &["payments:read"]);
    let forbidden = h.create_payment_as(&read_only, &key(), &body).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.body["code"], "insufficient_scope");
    let write_only = h.token_for("merchant-a", &["payments:write"]);
    assert_eq!(
        h.get_as(&write_only, "/v1/payments").await.status,
        StatusCode::FORBIDDEN
    );
    // Health needs no token.
    let health = h.send(h.http.get(h.url("/v1/health"))).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    assert!(h.stk_pushes().await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn callers_see_only_their_own_payments() {
    let h = Harness::start().await;
    let a = h.create_payment(&key(), &payment_body(&fresh_phone(8), 100)).await;
    let id = a.body["id"].as_str().unwrap();
    let b_token = h.token_for("merchant-b", &["payments:read"]);
    // Staff of merchant-a see its payments; `payments:read_all` reaches other merchants only with
    // `platform:operator`.
    let staff = h.stack.token_for_merchant(
        "staff-1",
        "merchant-a",
        &["payments:read_all"],
        Duration::from_secs(600),
    );
    let other_staff = h.token_for("staff-2", &["payments:read_all"]);
    assert_eq!(
        h.get_as(&other_staff, &format!("/v1/payments/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get_as(&other_staff, "/v1/payments").await.body["data"], json!([]));
    let hidden = h.get_as(&b_token, &format!("/v1/payments/{id}")).await;
    assert_eq!(
        (hidden.status, hidden.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(h.get_as(&b_token, "/v1/payments").await.body["data"], json!([]));
    assert_eq!(
        h.get_as(&staff, &format!("/v1/payments/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.get_as(&staff, "/v1/payments").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for unknown in ["pay_01JD3Q8Z4M2X9N5K7R1T6V0W8Y", "nope", "pay_"] {
        assert_eq!(
            h.get(&format!("/v1/payments/{unknown}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn listing_filters_and_pages_newest_first() {
    let h = Harness::start().await;
    let mut ids = Vec::new();
    for n in 0..7u32 {
        let mut body = payment_body(&fresh_phone(20 + n), 100 + u64::from(n));
        body["reference"] = json!(if n % 2 == 0 { "EVEN" } else { "ODD" });
        let reply = h.create_payment(&key(), &body).await;
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    for id in &ids {
        h.wait_for_status(id, "completed").await;
    }
    // Pages of 3, newest first, no duplicates, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/payments?limit=3&cursor={c}"),
            None => "/v1/payments?limit=3".to_owned(),
        };
        let page = h.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let odd = h.get("/v1/payments?reference=ODD").await;
    assert_eq!(odd.body["data"].as_array().unwrap().len(), 3);
    let completed = h.get("/v1/payments?status=completed&limit=100").await;
    assert_eq!(completed.body["data"].as_array().unwrap().len(), 7);
    assert_eq!(h.get("/v1/payments?status=failed").await.body["data"], json!([]));
    let future = h.get("/v1/payments?from=2099-01-01T00:00:00Z").await;
    assert_eq!(future.body["data"], json!([]));
    let past = h.get("/v1/payments?to=2000-01-01T00:00:00Z").await;
    assert_eq!(past.body["data"], json!([]));

    for (query, field, code) in [
        ("limit=0", "limit", "out_of_range"),
        ("limit=101", "limit", "out_of_range"),
        ("limit=ten", "limit", "out_of_range"),
        ("status=done", "status", "invalid_value"),
        ("from=yesterday", "from", "invalid_timestamp"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
            "invalid_range",
        ),
        ("cursor=abc", "cursor", "invalid_cursor"),
        ("colour=red", "colour", "unknown_parameter"),
        ("limit=1&limit=2", "limit", "repeated"),
    ] {
        let reply = h.get(&format!("/v1/payments?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        let errors = reply.body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["code"] == code),
            "{query}: {errors:?}"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn daraja_refusing_fails_the_payment_with_its_code() {
    let h = Harness::start().await;
    // A prompt is open on this phone; a second push is refused by Daraja ("Unable to lock subscriber").
    let first = h.create_payment(&key(), &payment_body(UNREACHABLE, 100)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = h.create_payment(&key(), &payment_body(UNREACHABLE, 100)).await;
    assert_eq!(second.status, StatusCode::BAD_GATEWAY, "{}", second.body);
    assert_eq!(second.body["code"], "daraja_rejected");
    assert_eq!(second.body["daraja"]["code"], "500.001.1001");
    let id = second.body["payment_id"].as_str().expect("payment_id at the top level");
    let failed = h.payment(id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_reason"], "daraja_rejected");
    assert_eq!(failed["result"]["code"], "500.001.1001");
    assert!(failed["result"]["description"]
        .as_str()
        .unwrap()
        .contains("Unable to lock subscriber"));
    h.shutdown().await;
}

#[tokio::test]
async fn daraja_failing_never_guesses() {
    let h = Harness::start().await;
    // HTTP 500 with an unknown body after the push was sent: the outcome is unknown, so the payment
    // stays open for reconciliation and the push is not retried (no second prompt).
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "http_500", "first_n": 1}]}),
    )
    .await;
    let unknown = h.create_payment(&key(), &payment_body(&fresh_phone(40), 100)).await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED, "{}", unknown.body);
    assert_eq!(unknown.body["status"], "unknown");
    assert_eq!(unknown.body["failure_reason"], Value::Null);
    // Spike arrest on every attempt: nothing was sent, so the payment fails as unavailable, and
    // the merchant is told M-Pesa is rate limiting (429, retry with a new key), not a 5xx.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "spike_arrest", "probability": 1.0}]}),
    )
    .await;
    let limited = h.create_payment(&key(), &payment_body(&fresh_phone(41), 100)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert_eq!(limited.body["code"], "daraja_rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    let id = limited.body["payment_id"].as_str().unwrap();
    let p = h.payment(id).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failure_reason"], "daraja_unavailable");
    assert_eq!(p["result"]["code"], "500.003.02");
    // A spike arrest on the first attempt only is retried and succeeds.
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "spike_arrest", "first_n": 1}]}),
    )
    .await;
    let retried = h.create_payment(&key(), &payment_body(&fresh_phone(42), 100)).await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    assert_eq!(retried.body["status"], "sent");
    h.shutdown().await;
}

/// Daraja processed the push (the customer is prompted and pays) but its answer was lost (HTTP
/// 503 from the gateway): the merchant is told 202 `unknown`, never "failed" or a 5xx, the push is
/// not sent again, and the genuine success callback that follows completes the payment.
#[tokio::test]
async fn a_push_whose_answer_was_lost_after_daraja_processed_it_completes_from_its_callback() {
    let h = Harness::start().await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "stk_push", "kind": "http_503", "first_n": 1, "phase": "after"}]}),
    )
    .await;
    let reply = h.create_payment(&key(), &payment_body(&fresh_phone(43), 250)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["status"], "unknown");
    assert_eq!(reply.body["checkout_request_id"], Value::Null);
    let id = reply.body["id"].as_str().unwrap();
    let done = h.wait_for_status(id, "completed").await;
    assert!(done["mpesa_receipt"].as_str().is_some(), "{done}");
    assert_eq!(done["failure_reason"], Value::Null);
    let pushes = h.stk_pushes().await;
    assert_eq!(pushes.len(), 1, "never pushed twice: {pushes:#?}");
    assert_eq!(pushes[0]["money_moved"], true);
    assert_eq!(pushes[0]["receipt"], done["mpesa_receipt"]);
    h.shutdown().await;
}
