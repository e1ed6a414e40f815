//! The hosted payment page, measured: its weight (HTML, stylesheet, script; raw and gzipped as a
//! phone on a slow connection would fetch them), its time to first byte through the dev stack,
//! and the time from the simulator's callback to the outcome shown in a real browser (headless
//! Chromium), over many payments.
//!
//! `cargo bench -p e2e-tests --bench checkout_page` (environment: `CHECKOUT_BENCH_PAYMENTS`,
//! default 100; `CHECKOUT_BENCH_TTFB`, default 500 page loads). Loopback only; stops by itself.

#[path = "../support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::browser::{Browser, BrowserOptions};
use support::{key, Harness};

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip").len()
}

async fn session(h: &Harness) -> Value {
    let reply = h
        .send(
            h.http
                .post(h.url("/v1/checkout/sessions"))
                .bearer_auth(&h.token)
                .header("idempotency-key", key())
                .json(&json!({
                    "amount": 1250, "reference": "BENCH", "description": "Chess set",
                    "success_url": "https://shop.example/paid", "cancel_url": "https://shop.example/",
                })),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    reply.body
}

async fn weight(h: &Harness) {
    let s = session(h).await;
    let html = h
        .http
        .get(s["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut rows = vec![("page (HTML)".to_owned(), html.len(), gzip_len(html.as_bytes()))];
    for asset in checkout::pages::checkout::assets() {
        let body = h
            .http
            .get(h.url(asset.path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(html.contains(asset.path), "the page links {}", asset.path);
        rows.push((asset.path.to_owned(), body.len(), gzip_len(&body)));
    }
    let (raw, zipped) = rows.iter().fold((0, 0), |(r, z), row| (r + row.1, z + row.2));
    println!("page weight (enter-phone state)");
    for (name, raw, zipped) in &rows {
        println!("  {name:<34} {raw:>6} B  gzip {zipped:>5} B");
    }
    println!("  {:<34} {raw:>6} B  gzip {zipped:>5} B", "total");
}

async fn time_to_first_byte(h: &Harness, loads: usize) {
    let s = session(h).await;
    let url = s["url"].as_str().unwrap().to_owned();
    let mut times = Vec::with_capacity(loads);
    for _ in 0..loads {
        let started = Instant::now();
        let response = h.http.get(&url).send().await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.bytes().await.unwrap();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "time to first byte of GET /pay/{{session}} over {loads} loads: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        times.last().copied().unwrap_or(f64::NAN)
    );
}

/// When the simulator sent the callback of the prompt to `phone`'s latest STK push.
async fn callback_sent_at(h: &Harness, receipt: &str) -> Option<DateTime<Utc>> {
    let pushes = h.stk_pushes().await;
    let push = pushes.iter().find(|t| t["receipt"] == receipt)?;
    let sent = push["callbacks"]
        .as_array()?
        .iter()
        .find_map(|c| c["sent_at"].as_str())?;
    DateTime::parse_from_rfc3339(sent).ok().map(|t| t.with_timezone(&Utc))
}

async fn callback_to_browser(h: &Harness, payments: usize) {
    let browser = Browser::start(BrowserOptions::phone()).await;
    let mut latencies = Vec::with_capacity(payments);
    for n in 0..payments {
        let s = session(h).await;
        // The callback comes 1-2 s after the prompt, so the page is waiting (and watched) first;
        // spread over the page's poll period, so the figure is not an artefact of its phase.
        let delay_ms = 1000 + (n as u64 * 379) % 1000;
        h.sim_post(
            "/__control/outcomes",
            &json!({"match": "next", "kind": "stk", "delay_ms": delay_ms}),
        )
        .await;
        let url = s["url"].as_str().unwrap();
        let phone = format!("07{:08}", 12_000_000 + n);
        let posted = h
            .http
            .post(url)
            .form(&[("phone", phone.as_str())])
            .send()
            .await
            .unwrap();
        assert!(posted.status().is_success(), "{}", posted.status());
        browser.goto(url).await;
        assert_eq!(
            browser.attr("body", "data-state").await.as_deref(),
            Some("waiting"),
            "payment {n}"
        );
        // Records when the status region first shows the receipt (the page may reload after).
        browser
            .execute(
                "const record = () => { const t = document.getElementById('status');\
                   if (t && /receipt|risiti/i.test(t.textContent) && !sessionStorage.getItem('shown')) {\
                     sessionStorage.setItem('shown', String(Date.now())); } };\
                 sessionStorage.removeItem('shown'); record();\
                 new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});",
                vec![],
            )
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let shown_ms = loop {
            let shown = browser.execute("return sessionStorage.getItem('shown');", vec![]).await;
            if let Some(ms) = shown.as_str().and_then(|s| s.parse::<i64>().ok()) {
                break ms;
            }
            assert!(Instant::now() < deadline, "payment {n}: the outcome never showed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let id = s["id"].as_str().unwrap();
        let shown_session = h.get(&format!("/v1/checkout/sessions/{id}")).await.body;
        let receipt = shown_session["attempts"][0]["mpesa_receipt"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(sent) = callback_sent_at(h, &receipt).await else {
            panic!("payment {n}: no callback time for {receipt}");
        };
        latencies.push((shown_ms - sent.timestamp_millis()) as f64);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "simulator's callback sent -> outcome shown in the browser, over {payments} payments: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    browser.close().await;
}

#[tokio::main]
async fn main() {
    // Every payment uses a new phone, so the per-phone limits never refuse one; the page's
    // per-client limits (one client here: the bench) are lifted, or they would answer most
    // loads with 429.
    let mut options = devstack::Options::for_tests();
    options.checkout_limits = checkout::api::checkout::client_limits::LimitsConfig {
        per_client: u32::MAX,
        per_session: u32::MAX,
        attempts_per_client: u32::MAX,
    };
    let h = Harness::start_with(options).await;
    weight(&h).await;
    time_to_first_byte(&h, env_count("CHECKOUT_BENCH_TTFB", 500)).await;
    callback_to_browser(&h, env_count("CHECKOUT_BENCH_PAYMENTS", 100)).await;
    h.shutdown().await;
}
