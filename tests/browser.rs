//! The real-browser harness (`support::browser`) against tiny pages served here with the strict
//! Content-Security-Policy of the hosted payment page: typing, clicking and waiting, JavaScript
//! off, the browser's language, a 320 px viewport, axe-core's accessibility checks, and the
//! timeout report.

mod support;

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use support::browser::{Browser, BrowserOptions};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'";
const WAIT: Duration = Duration::from_secs(10);

/// The pages, served on loopback. Every response carries the strict CSP.
async fn serve() -> String {
    let app = Router::new()
        .route("/form", get(|| async { page("Form", FORM) }))
        .route("/lang", get(echo_language))
        .route("/fluid", get(|| async { page("Fluid", "<p>Fits any screen.</p>") }))
        .route(
            "/wide",
            get(|| async { page("Wide", r#"<div class="wide">600 px</div>"#) }),
        )
        .route("/inaccessible", get(|| async { page("Inaccessible", INACCESSIBLE) }))
        .route("/clean", get(|| async { page("Clean", CLEAN) }))
        .route("/static/app.js", get(|| async { asset("text/javascript", APP_JS) }))
        .route("/static/site.css", get(|| async { asset("text/css", SITE_CSS) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("the server's address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the test server runs") });
    base
}

const FORM: &str = r#"
<form>
  <label for="name">Name</label>
  <input id="name" name="name" type="text" autocomplete="name">
  <button id="go" type="button">Greet</button>
</form>
<p id="status" role="status">Waiting for the script</p>
<p><a id="next" href="/lang">Next</a></p>
<script src="/static/app.js" defer></script>
<script>document.title = 'inline script ran';</script>
"#;

/// Says it is ready, then greets (a moment after the click, so the harness has to wait).
const APP_JS: &str = r#"
const status = document.getElementById('status');
status.textContent = 'Ready';
document.getElementById('go').addEventListener('click', () => {
  const name = document.getElementById('name').value;
  setTimeout(() => { status.textContent = 'Hello, ' + name; }, 200);
});
"#;

const SITE_CSS: &str = ".wide { width: 600px; background: #eee; }\n";

const INACCESSIBLE: &str = r#"
<img src="/static/logo.png">
<input type="text" name="phone">
"#;

const CLEAN: &str = r#"
<form>
  <label for="phone">M-Pesa phone number</label>
  <input id="phone" name="phone" type="tel" autocomplete="tel">
  <button type="submit">Pay</button>
</form>
"#;

fn page(title: &str, main: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/site.css">
</head>
<body>
<main>
<h1>{title}</h1>
{main}
</main>
</body>
</html>"#
    );
    asset("text/html; charset=utf-8", &html)
}

fn asset(content_type: &str, body: &str) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a content type"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

async fn echo_language(headers: HeaderMap) -> Response {
    let language = headers
        .get(header::ACCEPT_LANGUAGE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "(none)".to_string());
    let escaped = language.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    page("Language", &format!(r#"<p id="lang">{escaped}</p>"#))
}

#[tokio::test]
async fn fills_clicks_and_waits_for_the_page_script_under_a_strict_csp() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&format!("{base}/form")).await;
    assert!(browser.current_url().await.ends_with("/form"));

    // The page's own script (script-src 'self') runs; its inline script is refused by the CSP.
    browser.wait_for_text("[role=status]", "Ready", WAIT).await;
    assert_eq!(browser.execute("return document.title;", vec![]).await, "Form");

    // `fill` clears what was typed before.
    browser.fill("#name", "Juma").await;
    browser.fill("#name", "Amina").await;
    browser.click("#go").await;
    let text = browser.wait_for_text("[role=status]", "Hello", WAIT).await;
    assert_eq!(text, "Hello, Amina");
    assert_eq!(browser.text("#status").await, "Hello, Amina");

    assert_eq!(browser.attr("#name", "autocomplete").await.as_deref(), Some("name"));
    assert_eq!(browser.attr("#name", "data-missing").await, None);
    assert!(browser.exists("#go").await);
    assert!(!browser.exists("#no-such-element").await);
    assert_eq!(
        browser
            .execute("return arguments[0] + arguments[1];", vec![2.into(), 3.into()])
            .await,
        5
    );

    let shot = browser.screenshot("browser-self-test-form").await;
    let png = std::fs::read(&shot).expect("the screenshot file");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", shot.display());
    assert!(shot.ends_with("target/browser-screenshots/browser-self-test-form.png"));

    browser.click("#next").await;
    let url = browser.wait_for_url(|url| url.ends_with("/lang"), WAIT).await;
    assert_eq!(url, format!("{base}/lang"));
    browser.close().await;
}

#[tokio::test]
async fn without_javascript_the_page_script_does_not_run() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::no_js()).await;
    browser.goto(&format!("{base}/form")).await;
    browser.fill("#name", "Amina").await;
    browser.click("#go").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.text("[role=status]").await, "Waiting for the script");
    // WebDriver's own synchronous scripts still run (the page's do not).
    assert_eq!(browser.execute("return document.title;", vec![]).await, "Form");
    assert!(!browser.page_width_overflows().await);
    browser.close().await;
}

#[tokio::test]
#[should_panic(expected = "axe() needs the page's JavaScript")]
async fn axe_refuses_a_browser_without_javascript() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::no_js()).await;
    browser.goto(&format!("{base}/clean")).await;
    browser.axe().await;
}

#[tokio::test]
async fn the_browser_language_reaches_the_server() {
    let base = serve().await;
    let (swahili, default) = tokio::join!(
        Browser::start(BrowserOptions::phone().lang("sw-KE,sw")),
        Browser::start(BrowserOptions::phone()),
    );
    swahili.goto(&format!("{base}/lang")).await;
    let header = swahili.text("#lang").await;
    assert!(header.starts_with("sw-KE,sw"), "Accept-Language: {header}");
    assert_eq!(swahili.execute("return navigator.language;", vec![]).await, "sw-KE");

    default.goto(&format!("{base}/lang")).await;
    let header = default.text("#lang").await;
    assert!(header.starts_with("en-US"), "Accept-Language: {header}");
    tokio::join!(swahili.close(), default.close());
}

#[tokio::test]
async fn narrow_is_320_css_pixels_wide_and_overflow_is_detected() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::narrow()).await;
    browser.goto(&format!("{base}/fluid")).await;
    assert_eq!(browser.execute("return window.innerWidth;", vec![]).await, 320);
    assert_eq!(browser.execute("return window.innerHeight;", vec![]).await, 640);
    assert!(!browser.page_width_overflows().await, "a fluid page fits 320 px");

    browser.goto(&format!("{base}/wide")).await;
    assert!(
        browser.page_width_overflows().await,
        "a 600 px element does not fit 320 px"
    );
    browser.close().await;

    let phone = Browser::start(BrowserOptions::phone()).await;
    phone.goto(&format!("{base}/fluid")).await;
    assert_eq!(phone.execute("return window.innerWidth;", vec![]).await, 390);
    assert!(!phone.page_width_overflows().await);
    phone.close().await;
}

#[tokio::test]
async fn axe_reports_the_violations_of_an_inaccessible_page() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&format!("{base}/inaccessible")).await;
    let violations = browser.axe().await;
    let image_alt = violations
        .iter()
        .find(|v| v.id == "image-alt")
        .unwrap_or_else(|| panic!("image-alt among {violations:?}"));
    assert_eq!(image_alt.impact, "critical");
    assert!(image_alt.nodes.iter().any(|n| n.starts_with("<img")), "{image_alt:?}");
    assert!(!image_alt.help.is_empty());
    let label = violations
        .iter()
        .find(|v| v.id == "label")
        .unwrap_or_else(|| panic!("label among {violations:?}"));
    assert!(label.nodes.iter().any(|n| n.contains(r#"name="phone""#)), "{label:?}");

    // Again on the same page: axe-core is already there.
    assert_eq!(browser.axe().await.len(), violations.len());
    browser.close().await;
}

#[tokio::test]
#[should_panic(expected = "image-alt (critical)")]
async fn assert_accessible_fails_on_an_inaccessible_page() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&format!("{base}/inaccessible")).await;
    browser.assert_accessible().await;
}

#[tokio::test]
async fn a_clean_page_passes_the_accessibility_check() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::narrow()).await;
    browser.goto(&format!("{base}/clean")).await;
    browser.assert_accessible().await;
    assert_eq!(browser.axe().await, vec![], "not even a minor violation");
    browser.close().await;
}

#[tokio::test]
async fn a_wait_that_times_out_names_the_last_text_and_saves_a_screenshot() {
    let base = serve().await;
    let browser = Browser::start(BrowserOptions::phone()).await;
    browser.goto(&format!("{base}/form")).await;
    browser.wait_for_text("[role=status]", "Ready", WAIT).await;
    let waiting = tokio::spawn(async move {
        browser
            .wait_for_text("[role=status]", "Paid", Duration::from_millis(300))
            .await
    });
    let panic = waiting.await.expect_err("the wait times out").into_panic();
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| format!("{panic:?}"));
    assert!(message.contains(r#"its last text was "Ready""#), "{message}");
    assert!(message.contains(&format!("page {base}/form")), "{message}");
    let shot = message.rsplit("screenshot ").next().expect("the screenshot's path");
    assert!(shot.contains("browser-screenshots/timeout-"), "{message}");
    let png = std::fs::read(shot).expect("the timeout screenshot");
    assert!(png.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn several_browsers_side_by_side() {
    let base = serve().await;
    let browsers = futures::future::join_all((0..3).map(|_| Browser::start(BrowserOptions::narrow()))).await;
    for browser in &browsers {
        browser.goto(&format!("{base}/form")).await;
    }
    for (i, browser) in browsers.iter().enumerate() {
        browser.wait_for_text("[role=status]", "Ready", WAIT).await;
        browser.fill("#name", &format!("customer {i}")).await;
        browser.click("#go").await;
    }
    for (i, browser) in browsers.iter().enumerate() {
        let text = browser.wait_for_text("[role=status]", "Hello", WAIT).await;
        assert_eq!(text, format!("Hello, customer {i}"));
    }
    futures::future::join_all(browsers.into_iter().map(Browser::close)).await;
}
