//! Merchant webhooks end to end: an endpoint registered over the API (a local server) receives
//! `payment.completed` signed per Standard Webhooks (verified by the reference Python library);
//! a failing endpoint gets every attempt of the schedule (a manual clock), then the delivery is
//! dead-lettered, and a redelivery (same `webhook-id`) succeeds; one merchant never sees or
//! redelivers another's.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use checkout::webhooks::delivery::{MAX_ATTEMPTS, RETRY_SCHEDULE};
use checkout::webhooks::signature::{self, SigningSecret};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, payment_body, Harness};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/mpesa"))
        .respond_with(ResponseTemplate::new(status).set_body_string("thanks"))
        .mount(&server)
        .await;
    server
}

async fn register(h: &Harness, token: &str, url: &str, events: Value) -> Value {
    let reply = h
        .send(
            h.http
                .post(h.url("/v1/webhook-endpoints"))
                .bearer_auth(token)
                .json(&json!({"url": url, "enabled_events": events, "description": "shop server"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn requests_to(server: &MockServer, at_least: usize) -> Vec<wiremock::Request> {
    for _ in 0..500 {
        let received = server.received_requests().await.unwrap_or_default();
        if received.len() >= at_least {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the endpoint did not receive {at_least} requests");
}

fn header(request: &wiremock::Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The reference library's verdict on a received request (it checks the timestamp against now).
fn python_verifies(secret: &str, request: &wiremock::Request) -> bool {
    let python = std::env::var("CHECKOUT_TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let script = r#"
import json, sys
try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:
    print(f"cannot import standardwebhooks: {error}", file=sys.stderr); sys.exit(3)
case = json.load(sys.stdin)
try:
    Webhook(case["secret"]).verify(case["body"], case["headers"]); print("verified")
except WebhookVerificationError as error:
    print(f"rejected: {error}")
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{python}: {e}; run scripts/test.sh, which installs the venv with standardwebhooks")
        });
    let case = json!({
        "secret": secret,
        "body": String::from_utf8(request.body.clone()).unwrap(),
        "headers": {
            "webhook-id": header(request, "webhook-id"),
            "webhook-timestamp": header(request, "webhook-timestamp"),
            "webhook-signature": header(request, "webhook-signature"),
        },
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python failed (run scripts/test.sh to install standardwebhooks): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim() == "verified"
}

async fn deliveries(h: &Harness, event_id: &str) -> Vec<Value> {
    let reply = h.get(&format!("/v1/events/{event_id}/deliveries")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["data"].as_array().cloned().unwrap_or_default()
}

async fn completed_event_of(h: &Harness, payment_id: &str) -> Value {
    for _ in 0..200 {
        let reply = h
            .get(&format!("/v1/events?resource_id={payment_id}&type=payment.completed"))
            .await;
        if let Some(event) = reply.body["data"].as_array().and_then(|d| d.first()) {
            return event.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no payment.completed event for {payment_id}");
}

#[tokio::test]
async fn a_registered_endpoint_receives_payment_completed_signed_per_standard_webhooks() {
    let h = Harness::start().await;
    let server = receiver(200).await;
    let url = format!("{}/hooks/mpesa", server.uri());
    let endpoint = register(&h, &h.token, &url, json!(["payment.completed"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    assert_eq!(endpoint["enabled_events"], json!(["payment.completed"]));

    // The secret is shown once: never in a read.
    let id = endpoint["id"].as_str().unwrap();
    let read = h.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.body.get("secret").is_none(), "{}", read.body);
    let listed = h.get("/v1/webhook-endpoints").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);

    let created = h.create_payment(&key(), &payment_body("254712399931", 1250)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let payment_id = created.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&payment_id, "completed").await;

    // Only the subscribed type arrives (not created, not sent).
    let received = requests_to(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let received_now = server.received_requests().await.unwrap();
    assert_eq!(received_now.len(), 1, "only payment.completed is subscribed");
    let request = &received[0];
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "payment.completed");
    assert_eq!(body["resource_id"], payment_id.as_str());
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["amount"], 1250);
    assert_eq!(body["data"]["phone"], "2547****9931", "the phone is masked");
    assert_eq!(header(request, "content-type"), "application/json");
    let event = completed_event_of(&h, &payment_id).await;
    assert_eq!(header(request, "webhook-id"), event["id"].as_str().unwrap());

    // Our verifier and the reference library agree; a wrong secret is refused by both.
    let parsed = SigningSecret::parse(&secret).unwrap();
    let now = chrono::Utc::now().timestamp();
    signature::verify(
        &parsed,
        &header(request, "webhook-id"),
        &header(request, "webhook-timestamp"),
        &header(request, "webhook-signature"),
        &request.body,
        now,
        signature::TOLERANCE_SECS,
    )
    .expect("our own verifier accepts it");
    assert!(
        python_verifies(&secret, request),
        "the standardwebhooks library verifies it"
    );
    assert!(!python_verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", request));

    let logged = deliveries(&h, event["id"].as_str().unwrap()).await;
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["status"], "succeeded");
    assert_eq!(logged[0]["attempts"][0]["http_status"], 200);
    assert_eq!(logged[0]["attempts"][0]["response"], "thanks");
    h.shutdown().await;
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_whole_schedule_then_dead_letters_and_redelivery_works() {
    let h = Harness::start_with_manual_clock(devstack::Options::for_tests()).await;
    let server = receiver(500).await;
    let url = format!("{}/hooks/mpesa", server.uri());
    register(&h, &h.token, &url, json!(["*"])).await;
    let created = h.create_payment(&key(), &payment_body("254712399931", 1500)).await;
    let payment_id = created.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&payment_id, "completed").await;
    let event = completed_event_of(&h, &payment_id).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let ours = |requests: &[wiremock::Request]| requests.iter().filter(|r| header(r, "webhook-id") == event_id).count();

    // Attempt 1 at once; then nothing before each delay is up, one attempt when it is.
    for _ in 0..200 {
        if ours(&server.received_requests().await.unwrap()) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ours(&server.received_requests().await.unwrap()), 1);
    for (n, delay) in RETRY_SCHEDULE.iter().enumerate() {
        h.advance(delay.num_seconds() - 1);
        h.stack.sweep_webhooks_now().await;
        assert_eq!(ours(&server.received_requests().await.unwrap()), n + 1, "not due yet");
        h.advance(1);
        h.stack.sweep_webhooks_now().await;
        assert_eq!(
            ours(&server.received_requests().await.unwrap()),
            n + 2,
            "attempt {}",
            n + 2
        );
    }
    let logged = deliveries(&h, &event_id).await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["status"], "failed", "{:#?}", logged[0]);
    assert_eq!(logged[0]["attempts"].as_array().unwrap().len(), MAX_ATTEMPTS as usize);
    assert!(logged[0]["next_attempt_at"].is_null());
    // Dead-lettered: a day later, no more attempts.
    h.advance(86_400);
    h.stack.sweep_webhooks_now().await;
    assert_eq!(ours(&server.received_requests().await.unwrap()), MAX_ATTEMPTS as usize);

    // The endpoint is fixed; the merchant redelivers: the same webhook-id, delivered at once.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let reply = h
        .send(
            h.http
                .post(h.url(&format!("/v1/events/{event_id}/redeliver")))
                .bearer_auth(&h.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.body["data"][0]["status"], "succeeded", "{}", reply.body);
    let again = server.received_requests().await.unwrap();
    assert_eq!(ours(&again), 1);
    assert_eq!(
        reply.body["data"][0]["attempts"].as_array().unwrap().len(),
        MAX_ATTEMPTS as usize + 1
    );
    h.shutdown().await;
}

#[tokio::test]
async fn endpoints_are_validated_and_kept_to_their_merchant() {
    let h = Harness::start().await;
    // Bad input: clear problems with stable codes.
    let reply = h
        .send(
            h.http
                .post(h.url("/v1/webhook-endpoints"))
                .bearer_auth(&h.token)
                .json(&json!({"url": "ftp://example.com/x", "enabled_events": ["payment.paid"], "colour": 1})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let codes: Vec<(String, String)> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("url", "invalid_url"),
        ("enabled_events", "invalid_value"),
        ("colour", "unknown_field"),
    ] {
        assert!(
            codes.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{codes:?}"
        );
    }
    let readonly = h.token_for("merchant-a", &["webhooks:read"]);
    let reply = h
        .send(
            h.http
                .post(h.url("/v1/webhook-endpoints"))
                .bearer_auth(&readonly)
                .json(&json!({"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    let server = receiver(200).await;
    let endpoint = register(&h, &h.token, &format!("{}/hooks/mpesa", server.uri()), json!(["*"])).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();

    // Another merchant: 404 on read, update, rotation, deletion; its list is empty.
    let other = h.token_for("merchant-b", devstack::ALL_SCOPES);
    assert_eq!(
        h.get_as(&other, &format!("/v1/webhook-endpoints/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get_as(&other, "/v1/webhook-endpoints").await.body["data"], json!([]));
    for request in [
        h.http
            .patch(h.url(&format!("/v1/webhook-endpoints/{id}")))
            .json(&json!({"status": "disabled"})),
        h.http.post(h.url(&format!("/v1/webhook-endpoints/{id}/rotate-secret"))),
        h.http.delete(h.url(&format!("/v1/webhook-endpoints/{id}"))),
    ] {
        assert_eq!(h.send(request.bearer_auth(&other)).await.status, StatusCode::NOT_FOUND);
    }

    // Rotation: a new secret; during the overlap both sign.
    let rotated = h
        .send(
            h.http
                .post(h.url(&format!("/v1/webhook-endpoints/{id}/rotate-secret")))
                .bearer_auth(&h.token),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, endpoint["secret"].as_str().unwrap());
    assert!(!rotated.body["previous_secret_expires_at"].is_null());
    let created = h.create_payment(&key(), &payment_body("254712399931", 1500)).await;
    let payment_id = created.body["id"].as_str().unwrap().to_owned();
    h.wait_for_status(&payment_id, "completed").await;
    let received = requests_to(&server, 3).await;
    let request = received.last().unwrap();
    assert_eq!(header(request, "webhook-signature").split(' ').count(), 2);
    assert!(python_verifies(&new_secret, request));
    assert!(python_verifies(endpoint["secret"].as_str().unwrap(), request));

    // Another merchant's event: its deliveries and redelivery are a 404.
    let event = completed_event_of(&h, &payment_id).await;
    let event_id = event["id"].as_str().unwrap();
    assert_eq!(
        h.get_as(&other, &format!("/v1/events/{event_id}/deliveries"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reply = h
        .send(
            h.http
                .post(h.url(&format!("/v1/events/{event_id}/redeliver")))
                .bearer_auth(&other),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Disabled: nothing new arrives; deleted: gone.
    let reply = h
        .send(
            h.http
                .patch(h.url(&format!("/v1/webhook-endpoints/{id}")))
                .bearer_auth(&h.token)
                .json(&json!({"status": "disabled", "description": null})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "disabled");
    assert!(reply.body["description"].is_null());
    let before = server.received_requests().await.unwrap().len();
    let created = h.create_payment(&key(), &payment_body("254712399931", 1600)).await;
    h.wait_for_status(created.body["id"].as_str().unwrap(), "completed")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), before);
    let reply = h
        .send(
            h.http
                .delete(h.url(&format!("/v1/webhook-endpoints/{id}")))
                .bearer_auth(&h.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&format!("/v1/webhook-endpoints/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_with_an_event_and_enabled_again_by_the_merchant() {
    let h = Harness::start_with_manual_clock(devstack::Options::for_tests()).await;
    let server = receiver(503).await;
    let endpoint = register(
        &h,
        &h.token,
        &format!("{}/hooks/mpesa", server.uri()),
        json!(["payment.completed"]),
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let pay = |amount: u64| {
        let h = &h;
        async move {
            let created = h.create_payment(&key(), &payment_body("254712399931", amount)).await;
            let payment_id = created.body["id"].as_str().unwrap().to_owned();
            h.wait_for_status(&payment_id, "completed").await;
            completed_event_of(h, &payment_id).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = pay(1500).await;
    let mut second = None;
    let mut disabled_at_hour = None;
    // An hour at a time: the first delivery dead-letters after about 3 days (still enabled);
    // the second, started on day 2, dead-letters after the endpoint has failed for 5 days.
    for hour in 1..=140 {
        h.advance(3600);
        if hour == 48 {
            second = Some(pay(1600).await);
        }
        h.stack.sweep_webhooks_now().await;
        let state = h.get(&format!("/v1/webhook-endpoints/{id}")).await.body;
        if hour == 100 {
            assert_eq!(deliveries(&h, &first).await[0]["status"], "failed");
            assert_eq!(state["status"], "enabled", "failing for 4 days: {state}");
            assert!(!state["failing_since"].is_null());
        }
        if state["status"] == "disabled" {
            assert!(!state["auto_disabled_at"].is_null(), "{state}");
            disabled_at_hour = Some(hour);
            break;
        }
    }
    let hour = disabled_at_hour.expect("disabled after failing for 5 days");
    assert!(hour >= 120, "disabled at hour {hour}, before 5 days of failures");
    let second = second.unwrap();
    assert_eq!(deliveries(&h, &second).await[0]["status"], "failed");
    let events = h.get("/v1/events?type=webhook_endpoint.disabled").await.body;
    let notice = &events["data"][0];
    assert_eq!(notice["resource"], "webhook_endpoint", "{events}");
    assert_eq!(notice["resource_id"], id.as_str());
    assert_eq!(notice["data"]["status"], "disabled");

    // Nothing new is sent to it; enabled again by the merchant, it starts afresh.
    let before = server.received_requests().await.unwrap().len();
    pay(1700).await;
    h.stack.sweep_webhooks_now().await;
    assert_eq!(server.received_requests().await.unwrap().len(), before);
    let reply = h
        .send(
            h.http
                .patch(h.url(&format!("/v1/webhook-endpoints/{id}")))
                .bearer_auth(&h.token)
                .json(&json!({"status": "enabled"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["failing_since"].is_null() && reply.body["auto_disabled_at"].is_null());

    // Fixed, the merchant redrives what dead-lettered: both deliveries are due again, the sweep
    // sends them (with their own webhook-ids), and a second redrive finds nothing.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let redrive = |h: &Harness| {
        h.http
            .post(h.url(&format!("/v1/webhook-endpoints/{id}/redrive")))
            .bearer_auth(&h.token)
    };
    let reply = h.send(redrive(&h)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(
        (reply.body["redriven"].as_u64(), reply.body["more"].as_bool()),
        (Some(2), Some(false))
    );
    h.stack.sweep_webhooks_now().await;
    let ids: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| header(r, "webhook-id"))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&first) && ids.contains(&second), "{ids:?}");
    for event in [&first, &second] {
        assert_eq!(deliveries(&h, event).await[0]["status"], "succeeded");
    }
    assert_eq!(h.send(redrive(&h)).await.body["redriven"], 0);
    h.shutdown().await;
}
