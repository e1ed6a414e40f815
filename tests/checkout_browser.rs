//! The hosted payment page in a real browser (headless Chromium over WebDriver) against the dev
//! stack and its simulator: a payment whose status appears by itself and returns to the shop;
//! each failure in the customer's words, and a retry that succeeds; every form of phone number
//! Kenyans type, and a malformed one refused before anything is sent; the page without
//! JavaScript; Kiswahili; a 320 px screen; the modal reporting to the example shop. Every state
//! is checked for accessibility (axe-core: no serious or critical violation) and saved as a
//! screenshot under `target/browser-screenshots/checkout-*.png`.

mod support;

use std::time::Duration;

use checkout::pages::checkout::i18n::{outcome_message, phone_problem_message, status_message};
use checkout::pages::checkout::{Lang, Outcome, PageState, PhoneProblem};
use devstack::Options;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::browser::{Browser, BrowserOptions};
use support::{key, Harness};

const WAIT: Duration = Duration::from_secs(15);

/// A session of KES 1,250 returning to the example shop.
async fn session(h: &Harness) -> Value {
    let shop = h.stack.example_shop_url().expect("the example shop runs").to_owned();
    let reply = h
        .send(
            h.http
                .post(h.url("/v1/checkout/sessions"))
                .bearer_auth(&h.token)
                .header("idempotency-key", key())
                .json(&json!({
                    "amount": 1250,
                    "reference": "ORDER-77",
                    "description": "Chess set",
                    "success_url": format!("{shop}/done"),
                    "cancel_url": format!("{shop}/"),
                })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

fn url(session: &Value) -> String {
    session["url"].as_str().unwrap().to_owned()
}

/// Holds the next prompt's callback back, so the waiting state can be seen.
async fn delay_next_callback(h: &Harness, ms: u64) {
    h.sim_post(
        "/__control/outcomes",
        &json!({"match": "next", "kind": "stk", "delay_ms": ms}),
    )
    .await;
}

/// The page's status sentence for the state the customer is in.
fn waiting_message(lang: Lang) -> String {
    status_message(
        lang,
        &PageState::Waiting {
            phone_masked: "",
            deadline: chrono::Utc::now(),
            amount_shillings: 1250,
            merchant_name: "Dev Shop",
        },
    )
}

/// The start of the paid status sentence (before its receipt number).
fn paid_message(lang: Lang) -> String {
    let sentence = status_message(
        lang,
        &PageState::Paid {
            receipt: Some("RECEIPT"),
            success_url: "",
        },
    );
    sentence.split("RECEIPT").next().unwrap_or_default().to_owned()
}

async fn pay_with(browser: &Browser, phone: &str) {
    browser.fill("#phone", phone).await;
    browser.click("#pay-form button[type=submit]").await;
}

/// Screenshot and accessibility check of the state on screen.
async fn look(browser: &Browser, name: &str) {
    browser.screenshot(&format!("checkout-{name}")).await;
    if browser.options().javascript {
        browser.assert_accessible().await;
    }
    assert!(
        !browser.page_width_overflows().await,
        "{name}: the page is wider than the screen"
    );
}

#[tokio::test]
async fn the_status_appears_by_itself_and_the_customer_returns_to_the_shop() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&url(&s)).await;
    assert!(browser.text(".payee").await.contains("KES 1,250"));
    assert!(browser.text(".payee").await.contains("Dev Shop"));
    look(&browser, "enter-phone").await;

    delay_next_callback(&h, 2500).await;
    pay_with(&browser, "0712 345 678").await;
    browser.wait_for_text("#status", &waiting_message(Lang::En), WAIT).await;
    assert!(browser.exists("#countdown").await);
    look(&browser, "waiting").await;
    // Nobody touches the page: the outcome arrives by itself.
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    let receipt = browser.text("#status").await;
    look(&browser, "paid").await;
    let shop = h.stack.example_shop_url().unwrap().to_owned();
    browser.wait_for_url(|u| u == format!("{shop}/done"), WAIT).await;
    let paid = h
        .get(&format!("/v1/checkout/sessions/{}", s["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(paid["status"], "completed");
    let shown_receipt = paid["attempts"][0]["mpesa_receipt"].as_str().unwrap();
    assert!(receipt.contains(shown_receipt), "{receipt} vs {shown_receipt}");
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn each_failure_is_explained_and_a_retry_succeeds() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&url(&s)).await;
    for (phone, outcome, name) in [
        ("0700001032", Outcome::Cancelled, "cancelled"),
        ("0700002001", Outcome::WrongPin, "wrong-pin"),
        ("0700000001", Outcome::InsufficientFunds, "insufficient-funds"),
        ("0700001019", Outcome::TimedOut, "timed-out"),
    ] {
        pay_with(&browser, phone).await;
        browser
            .wait_for_text("#status", outcome_message(Lang::En, outcome), WAIT)
            .await;
        assert_eq!(browser.attr("body", "data-state").await.as_deref(), Some("enter_phone"));
        look(&browser, name).await;
    }
    // One attempt left: the page says so, and it pays.
    pay_with(&browser, "0712345678").await;
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    let shown = h
        .get(&format!("/v1/checkout/sessions/{}", s["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 5);
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_phone_times_out_and_says_so() {
    let mut options = Options::for_tests();
    options.timings.first_check_after = chrono::Duration::seconds(1);
    options.timings.deadline_after = chrono::Duration::seconds(4);
    options.sweep_interval = Some(Duration::from_millis(250));
    let h = Harness::start_with(options).await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&url(&s)).await;
    pay_with(&browser, "0700090001").await;
    browser.wait_for_text("#status", &waiting_message(Lang::En), WAIT).await;
    browser
        .wait_for_text("#status", outcome_message(Lang::En, Outcome::Unreachable), WAIT)
        .await;
    look(&browser, "unreachable").await;
    let shown = h
        .get(&format!("/v1/checkout/sessions/{}", s["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(shown["attempts"][0]["failure_reason"], "customer_unreachable");
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn every_form_kenyans_type_is_accepted_and_a_malformed_one_refused_before_sending() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    // A fresh page per number (the page's script allows one submission per page), watched by a
    // listener that lets no submission through and records whether the page's script refused
    // it (defaultPrevented) before.
    let fresh = || async {
        browser.goto(&url(&s)).await;
        browser
            .execute(
                "window.__refused = null; document.getElementById('pay-form').addEventListener('submit', \
                 function (e) { window.__refused = e.defaultPrevented; e.preventDefault(); });",
                vec![],
            )
            .await;
    };
    for typed in [
        "0712345678",
        "0712 345 678",
        "0712-345-678",
        "+254712345678",
        "+254 712 345 678",
        "254712345678",
        "712345678",
        "0112345678",
        "+254112345678",
    ] {
        fresh().await;
        pay_with(&browser, typed).await;
        assert_eq!(
            browser.execute("return window.__refused;", vec![]).await,
            false,
            "{typed}"
        );
        assert_eq!(browser.text("#phone-error").await, "", "{typed}");
    }
    for (typed, problem) in [
        ("0712 34", PhoneProblem::TooShort),
        ("07123456789", PhoneProblem::TooLong),
        ("07l2345678", PhoneProblem::NotDigits),
        ("+255712345678", PhoneProblem::NotKenyan),
        ("0812345678", PhoneProblem::NotMobile),
        ("", PhoneProblem::Empty),
    ] {
        fresh().await;
        pay_with(&browser, typed).await;
        assert_eq!(
            browser.execute("return window.__refused;", vec![]).await,
            true,
            "{typed}"
        );
        assert_eq!(
            browser.text("#phone-error").await,
            phone_problem_message(Lang::En, problem),
            "{typed}"
        );
        assert_eq!(browser.attr("#phone", "aria-invalid").await.as_deref(), Some("true"));
        assert_eq!(
            browser.execute("return document.activeElement.id;", vec![]).await,
            "phone",
            "focus goes back to the field"
        );
    }
    look(&browser, "malformed-phone").await;
    assert!(h.stk_pushes().await.is_empty(), "nothing reached M-Pesa");
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn without_javascript_the_form_posts_and_the_page_refreshes_itself() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::no_js()).await;
    browser.goto(&url(&s)).await;
    // The server refuses a malformed number with the same words.
    pay_with(&browser, "0712 34").await;
    browser
        .wait_for_text(
            "#phone-error",
            phone_problem_message(Lang::En, PhoneProblem::TooShort),
            WAIT,
        )
        .await;
    look(&browser, "no-js-malformed").await;
    delay_next_callback(&h, 2000).await;
    pay_with(&browser, "0712345678").await;
    browser.wait_for_text("#status", &waiting_message(Lang::En), WAIT).await;
    look(&browser, "no-js-waiting").await;
    // The waiting page refreshes itself (a meta refresh) until the outcome is there.
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    assert!(browser.exists("#redirect").await);
    look(&browser, "no-js-paid").await;
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_page_speaks_kiswahili_and_switches_language() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone().lang("sw-KE,sw;q=0.9")).await;
    browser.goto(&url(&s)).await;
    assert_eq!(browser.attr("html", "lang").await.as_deref(), Some("sw"));
    assert_eq!(browser.text("label[for=phone]").await, Lang::Sw.words().phone_label);
    look(&browser, "swahili").await;
    pay_with(&browser, "0700001032").await;
    browser
        .wait_for_text("#status", outcome_message(Lang::Sw, Outcome::Cancelled), WAIT)
        .await;
    look(&browser, "swahili-cancelled").await;
    browser.click("nav a[hreflang=en]").await;
    browser.wait_for_url(|u| u.ends_with("lang=en"), WAIT).await;
    assert_eq!(browser.attr("html", "lang").await.as_deref(), Some("en"));
    assert_eq!(browser.text("label[for=phone]").await, Lang::En.words().phone_label);
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_320_pixel_screen_shows_every_state_without_sideways_scrolling() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::narrow()).await;
    browser.goto(&url(&s)).await;
    assert_eq!(browser.execute("return window.innerWidth;", vec![]).await, 320);
    look(&browser, "320-enter-phone").await;
    delay_next_callback(&h, 2000).await;
    pay_with(&browser, "0712345678").await;
    browser.wait_for_text("#status", &waiting_message(Lang::En), WAIT).await;
    look(&browser, "320-waiting").await;
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    look(&browser, "320-paid").await;
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_modal_reports_the_outcome_to_the_example_shop() {
    let h = Harness::start().await;
    let shop = h.stack.example_shop_url().expect("the example shop runs").to_owned();
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&format!("{shop}/")).await;
    browser.click("#pay").await;
    browser.enter_frame("#mpesa-checkout-modal iframe", WAIT).await;
    browser
        .wait_for_text("label[for=phone]", Lang::En.words().phone_label, WAIT)
        .await;
    pay_with(&browser, "0712345678").await;
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    browser.leave_frame().await;
    browser.screenshot("checkout-modal-paid").await;
    let result = browser.wait_for_text("#result", "Paid", WAIT).await;
    let reported: Value =
        serde_json::from_str(&browser.attr("body", "data-result").await.expect("a result")).expect("JSON");
    assert_eq!(reported["state"], "paid");
    assert!(result.contains(reported["receipt"].as_str().unwrap()), "{result}");
    // The shop's server checks it before shipping: the session it created is completed.
    let id = reported["session"].as_str().unwrap();
    let token = h.token_for("example-shop", &["checkout:read"]);
    let shown = h.get_as(&token, &format!("/v1/checkout/sessions/{id}")).await.body;
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["attempts"][0]["mpesa_receipt"], reported["receipt"]);
    // The modal closed itself; the shop's page is accessible with it gone.
    assert!(!browser.exists("#mpesa-checkout-modal").await);
    browser.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn the_page_cannot_be_framed_by_another_origin() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let page = h.http.get(url(&s)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let shop = h.stack.example_shop_url().unwrap();
    assert!(csp.contains(&format!("frame-ancestors {shop}")), "{csp}");
    // An origin that is not allowed is not told anything.
    let framed = h
        .http
        .get(format!("{}?origin=https://evil.example", url(&s)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!framed.contains("data-parent-origin"), "{framed}");
    h.shutdown().await;
}

#[tokio::test]
async fn the_outcome_is_pushed_over_the_live_channel_without_polling() {
    let h = Harness::start().await;
    let s = session(&h).await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&url(&s)).await;
    delay_next_callback(&h, 2500).await;
    pay_with(&browser, "0712345678").await;
    browser.wait_for_text("#status", &waiting_message(Lang::En), WAIT).await;
    let live = browser.attr("body", "data-live-url").await.expect("a live channel");
    assert!(
        live.starts_with("ws://") && live.contains(&format!("/pay/live?session={}", s["id"].as_str().unwrap())),
        "{live}"
    );
    // From now on any poll of the status route is counted.
    browser
        .execute(
            "window.__polls = 0; const fetchBefore = window.fetch;\
             window.fetch = function () { window.__polls += 1; return fetchBefore.apply(this, arguments); };",
            vec![],
        )
        .await;
    browser.wait_for_text("#status", &paid_message(Lang::En), WAIT).await;
    // At most the one status request the page makes when its socket opens (it may open after
    // the counter is in place); polling every second through the 2.5 s wait would make several.
    let polls = browser.execute("return window.__polls;", vec![]).await;
    assert!(polls.as_u64().is_some_and(|n| n <= 1), "the page polled: {polls}");
    browser.close().await;
    h.shutdown().await;
}
