//! Hosted checkout over HTTP (the page as a browser without script uses it: form posts and
//! redirects): a shop creates a session, its customer pays on the page, and the session, its
//! attempts and their payments agree; a failed prompt can be retried; one prompt at a time; the
//! shop's and the customer's ways of closing it; what a shop may see; expiry by the sweeper.
//! The browser tests (`checkout_browser.rs`) drive the same page with script.

mod support;

use std::time::Duration;

use devstack::Options;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{key, Harness};

const PAID: &str = "0712345678";
const CANCELS: &str = "0700001032";
const WRONG_PIN: &str = "0700002001";
/// The prompt is accepted but its callback never comes (the sweeper settles it later).
const SILENT: &str = "0700090002";

fn session_body() -> Value {
    json!({
        "amount": 1250,
        "reference": "ORDER-77",
        "description": "Chess set",
        "success_url": "https://shop.example/orders/77/paid",
        "cancel_url": "https://shop.example/orders/77",
    })
}

/// A client that shows redirects instead of following them, as a test of the page needs.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn create_session(h: &Harness, body: &Value) -> Value {
    let reply = create_session_with(h, &h.token, &key(), body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn create_session_with(h: &Harness, token: &str, idempotency_key: &str, body: &Value) -> support::Reply {
    h.send(
        h.http
            .post(h.url("/v1/checkout/sessions"))
            .bearer_auth(token)
            .header("idempotency-key", idempotency_key)
            .json(body),
    )
    .await
}

async fn session(h: &Harness, id: &str) -> Value {
    let reply = h.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// Submits the page's form with `phone`: the answer (a 303 back to the page, or the page).
async fn pay(h: &Harness, id: &str, phone: &str) -> reqwest::Response {
    browser()
        .post(h.url(&format!("/pay/{id}")))
        .form(&[("phone", phone), ("lang", "en")])
        .send()
        .await
        .expect("form post")
}

async fn status(h: &Harness, id: &str) -> Value {
    let response = browser()
        .get(h.url(&format!("/pay/{id}/status?lang=en")))
        .send()
        .await
        .expect("status");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("json")
}

async fn wait_for_state(h: &Harness, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = status(h, id).await;
        if answer["state"] == state {
            return answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {state}: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn page(h: &Harness, id: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = browser()
        .get(h.url(&format!("/pay/{id}")))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .expect("page");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("html"))
}

fn assert_back_to_page(response: &reqwest::Response, id: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], format!("/pay/{id}?lang=en"));
}

#[tokio::test]
async fn a_session_is_paid_on_its_page_and_links_its_payment() {
    let h = Harness::start().await;
    let created = create_session(&h, &session_body()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cs_") && id.len() == 35, "{id}");
    assert_eq!(created["url"], h.url(&format!("/pay/{id}")));
    assert_eq!(
        (created["status"].as_str(), created["attempts_left"].as_u64()),
        (Some("open"), Some(5))
    );

    let (code, headers, html) = page(&h, &id).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.ends_with(&format!("frame-ancestors {}", h.stack.example_shop_url().unwrap())),
        "{csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(html.contains("KES 1,250") && html.contains("Dev Shop") && html.contains("Chess set"));
    assert!(html.contains("<label for=\"phone\""), "{html}");

    let answer = pay(&h, &id, "+254 712-345-678").await;
    assert_back_to_page(&answer, &id);
    let paid = wait_for_state(&h, &id, "paid").await;
    let receipt = paid["receipt"].as_str().expect("a receipt").to_owned();
    assert_eq!(paid["redirect_url"], "https://shop.example/orders/77/paid");
    let (_, _, html) = page(&h, &id).await;
    assert!(html.contains(&receipt), "{html}");

    let shown = session(&h, &id).await;
    assert_eq!(shown["status"], "completed");
    let payment_id = shown["payment_id"].as_str().unwrap();
    assert_eq!(shown["attempts"][0]["payment_id"], payment_id);
    assert_eq!(shown["attempts"][0]["status"], "completed");
    assert_eq!(shown["attempts"][0]["phone"], "2547****5678");
    let payment = h.payment(payment_id).await;
    assert_eq!(payment["checkout_session"], id.as_str());
    assert_eq!(
        (payment["amount"].as_u64(), payment["reference"].as_str()),
        (Some(1250), Some("ORDER-77"))
    );

    let events = h.get(&format!("/v1/events?resource_id={id}")).await.body;
    let mut types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    types.reverse();
    assert_eq!(
        types,
        [
            "checkout.session.created",
            "checkout.session.attempt_started",
            "checkout.session.completed"
        ]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_failed_prompt_is_explained_and_can_be_retried_with_another_number() {
    let h = Harness::start().await;
    let id = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (phone, outcome) in [(CANCELS, "cancelled"), (WRONG_PIN, "wrong_pin")] {
        assert_back_to_page(&pay(&h, &id, phone).await, &id);
        let answer = wait_for_state(&h, &id, "enter_phone").await;
        assert_eq!(answer["outcome"], outcome, "{answer}");
    }
    let (_, _, html) = page(&h, &id).await;
    assert!(html.contains("The M-Pesa PIN was wrong"), "{html}");
    assert_back_to_page(&pay(&h, &id, PAID).await, &id);
    wait_for_state(&h, &id, "paid").await;
    let shown = session(&h, &id).await;
    let statuses: Vec<&str> = shown["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "completed"]);
    assert_eq!(shown["attempts"][0]["failure_reason"], "cancelled_by_customer");
    assert_eq!(shown["attempts"][1]["failure_reason"], "wrong_pin");
    h.shutdown().await;
}

#[tokio::test]
async fn a_malformed_phone_is_refused_with_its_reason_and_prompts_nobody() {
    let h = Harness::start().await;
    let id = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for typed in ["12345", "0812345678", "07l2345678", "+255712345678", ""] {
        let response = pay(&h, &id, typed).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{typed}");
        let html = response.text().await.unwrap();
        assert!(html.contains("aria-invalid=\"true\""), "{typed}: {html}");
    }
    assert_eq!(session(&h, &id).await["attempts"], json!([]));
    assert!(h.stk_pushes().await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn one_prompt_at_a_time_and_no_closing_under_it() {
    let h = Harness::start().await;
    let id = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_back_to_page(&pay(&h, &id, SILENT).await, &id);
    assert_eq!(wait_for_state(&h, &id, "waiting").await["outcome"], Value::Null);
    // A second submission (a double tap, another tab) shows the waiting page, prompting nobody.
    assert_back_to_page(&pay(&h, &id, PAID).await, &id);
    assert_eq!(session(&h, &id).await["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(h.stk_pushes().await.len(), 1);
    let (_, _, html) = page(&h, &id).await;
    assert!(html.contains("Check your phone"), "{html}");
    // Neither the shop nor the customer can close it while the prompt may still be paid.
    let expire = h
        .send(
            h.http
                .post(h.url(&format!("/v1/checkout/sessions/{id}/expire")))
                .bearer_auth(&h.token),
        )
        .await;
    assert_eq!(expire.status, StatusCode::CONFLICT);
    assert_eq!(expire.body["code"], "attempt_in_progress");
    let cancel = browser()
        .post(h.url(&format!("/pay/{id}/cancel")))
        .form(&[("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_back_to_page(&cancel, &id);
    assert_eq!(session(&h, &id).await["status"], "open");
    h.shutdown().await;
}

#[tokio::test]
async fn the_shop_or_the_customer_closes_a_session_and_the_last_failure_ends_it() {
    let h = Harness::start().await;
    let by_shop = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expired = h
        .send(
            h.http
                .post(h.url(&format!("/v1/checkout/sessions/{by_shop}/expire")))
                .bearer_auth(&h.token),
        )
        .await;
    assert_eq!(expired.status, StatusCode::OK, "{}", expired.body);
    assert_eq!(
        (expired.body["status"].as_str(), expired.body["closed_by"].as_str()),
        (Some("expired"), Some("merchant"))
    );
    assert_back_to_page(&pay(&h, &by_shop, PAID).await, &by_shop);
    assert_eq!(session(&h, &by_shop).await["attempts"], json!([]));
    let answer = status(&h, &by_shop).await;
    assert_eq!(
        (answer["state"].as_str(), answer["redirect_url"].as_str()),
        (Some("closed"), Some("https://shop.example/orders/77"))
    );

    let by_customer = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = browser()
        .post(h.url(&format!("/pay/{by_customer}/cancel")))
        .form(&[("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_back_to_page(&cancel, &by_customer);
    assert_eq!(session(&h, &by_customer).await["closed_by"], "customer");

    let mut body = session_body();
    body["max_attempts"] = json!(2);
    let two = create_session(&h, &body).await["id"].as_str().unwrap().to_owned();
    for phone in [CANCELS, WRONG_PIN] {
        assert_back_to_page(&pay(&h, &two, phone).await, &two);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while status(&h, &two).await["state"] == "waiting" {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let shown = session(&h, &two).await;
    assert_eq!(
        (shown["status"].as_str(), shown["closed_by"].as_str()),
        (Some("expired"), Some("attempts_exhausted"))
    );
    assert_eq!(status(&h, &two).await["state"], "closed");
    h.shutdown().await;
}

#[tokio::test]
async fn sessions_are_validated_idempotent_and_the_shops_own() {
    let h = Harness::start().await;
    let mut bad = session_body();
    bad["amount"] = json!(0);
    bad["success_url"] = json!("http://shop.example/paid");
    bad["cancel_url"] = json!("javascript:alert(1)");
    bad["expires_in"] = json!(60);
    bad["max_attempts"] = json!(11);
    bad["colour"] = json!("blue");
    let reply = create_session_with(&h, &h.token, &key(), &bad).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let mut fields: Vec<(String, String)> = reply.body["errors"]
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
    fields.sort();
    let expected: Vec<(String, String)> = [
        ("amount", "not_positive"),
        ("cancel_url", "invalid_url"),
        ("colour", "unknown_field"),
        ("expires_in", "out_of_range"),
        ("max_attempts", "out_of_range"),
        ("success_url", "invalid_url"),
    ]
    .iter()
    .map(|(f, c)| (f.to_string(), c.to_string()))
    .collect();
    assert_eq!(fields, expected, "{}", reply.body);

    let idempotency_key = key();
    let first = create_session_with(&h, &h.token, &idempotency_key, &session_body()).await;
    let again = create_session_with(&h, &h.token, &idempotency_key, &session_body()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let mut other = session_body();
    other["amount"] = json!(99);
    let reused = create_session_with(&h, &h.token, &idempotency_key, &other).await;
    assert_eq!(reused.body["code"], "idempotency_key_reused");

    let id = first.body["id"].as_str().unwrap();
    let stranger = h.token_for("merchant-b", devstack::ALL_SCOPES);
    let theirs = h.get_as(&stranger, &format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(
        (theirs.status, theirs.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let expire = h
        .send(
            h.http
                .post(h.url(&format!("/v1/checkout/sessions/{id}/expire")))
                .bearer_auth(&stranger),
        )
        .await;
    assert_eq!(expire.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get_as(&stranger, "/v1/checkout/sessions").await.body["data"],
        json!([])
    );
    let mine = h.get("/v1/checkout/sessions?status=open").await.body;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    let reader = h.token_for("merchant-a", &["payments:read"]);
    assert_eq!(
        h.get_as(&reader, "/v1/checkout/sessions").await.status,
        StatusCode::FORBIDDEN
    );
    // A link that is not a session's page.
    let (code, _, html) = page(&h, "cs_0123456789abcdef0123456789abcdef").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(html.contains("This payment link is not valid"));
    h.shutdown().await;
}

#[tokio::test]
async fn the_sweeper_closes_a_session_past_its_expiry() {
    let h = Harness::start_with_manual_clock(Options::for_tests()).await;
    let mut body = session_body();
    body["expires_in"] = json!(300);
    let id = create_session(&h, &body).await["id"].as_str().unwrap().to_owned();
    h.stack.sweep_now().await;
    assert_eq!(session(&h, &id).await["status"], "open");
    h.advance(301);
    // The page says so before the sweeper has run.
    assert_eq!(status(&h, &id).await["state"], "closed");
    assert_back_to_page(&pay(&h, &id, PAID).await, &id);
    h.stack.sweep_now().await;
    let shown = session(&h, &id).await;
    assert_eq!(
        (shown["status"].as_str(), shown["closed_by"].as_str()),
        (Some("expired"), Some("deadline"))
    );
    assert_eq!(shown["attempts"], json!([]));
    h.shutdown().await;
}

#[tokio::test]
async fn one_client_hammering_the_page_is_slowed_down() {
    let mut options = Options::for_tests();
    options.checkout_limits = checkout::api::checkout::client_limits::LimitsConfig {
        per_client: 1000,
        per_session: 4,
        attempts_per_client: 1,
    };
    let h = Harness::start_with(options).await;
    let id = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        assert_eq!(page(&h, &id).await.0, StatusCode::OK);
    }
    let (code, headers, html) = page(&h, &id).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    assert!(html.contains("Wait a minute"), "{html}");
    let polled = browser().get(h.url(&format!("/pay/{id}/status"))).send().await.unwrap();
    assert_eq!(polled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(polled.json::<Value>().await.unwrap()["code"], "too_many_requests");
    // Prompts have their own, tighter bound per client: a second session's second prompt waits.
    let other = create_session(&h, &session_body()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_back_to_page(&pay(&h, &other, CANCELS).await, &other);
    assert_eq!(pay(&h, &other, PAID).await.status(), StatusCode::TOO_MANY_REQUESTS);
    h.shutdown().await;
}
