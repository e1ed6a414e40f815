//! A small example shop on its own origin, as a merchant's site would be: each visit, its
//! server creates a checkout session over the API (with the shop's token, which never reaches
//! the browser) and its page opens the session in the embeddable modal (`checkout-v1.js`),
//! then shows the outcome the modal reported. Its origin is among the dev stack's allowed
//! checkout origins, so the payment page may be framed by it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// The shop's page script (the shop's own code: it only opens the modal and shows the result).
const SHOP_JS: &str = r#"(function () {
  'use strict';
  var button = document.getElementById('pay');
  var result = document.getElementById('result');
  button.addEventListener('click', function () {
    MpesaCheckout.open(button.getAttribute('data-session-url'), {
      onResult: function (outcome) {
        document.body.setAttribute('data-result', JSON.stringify(outcome));
        result.textContent = outcome.state === 'paid'
          ? 'Paid. M-Pesa receipt ' + outcome.receipt + '.'
          : 'Not paid (' + outcome.state + (outcome.outcome ? ': ' + outcome.outcome : '') + ').';
      }
    });
  });
})();
"#;

struct Shop {
    api: String,
    origin: String,
    token: String,
    http: reqwest::Client,
}

/// Binds the shop's listener (so its origin is known before the stack's checkout settings).
pub async fn bind(listen: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let origin = format!("http://{}", listener.local_addr()?);
    Ok((listener, origin))
}

/// Serves the shop until `shutdown` changes.
pub fn spawn(
    listener: tokio::net::TcpListener,
    origin: String,
    api: String,
    token: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let shop = Arc::new(Shop {
        api,
        origin,
        token,
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new()
        .route("/", get(home))
        .route("/shop.js", get(script))
        .route("/done", get(done))
        .with_state(shop);
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        });
        if let Err(error) = server.await {
            tracing::error!(%error, "example shop stopped");
        }
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(serde::Deserialize)]
struct HomeQuery {
    amount: Option<u64>,
}

/// A new session per visit, created by the shop's server.
async fn home(State(shop): State<Arc<Shop>>, Query(query): Query<HomeQuery>) -> Response {
    let amount = query.amount.unwrap_or(1250);
    let body = serde_json::json!({
        "amount": amount,
        "reference": "SHOP-ORDER",
        "description": "Chess set",
        "success_url": format!("{}/done", shop.origin),
        "cancel_url": format!("{}/", shop.origin),
    });
    let created = shop
        .http
        .post(format!("{}/v1/checkout/sessions", shop.api))
        .bearer_auth(&shop.token)
        .header("idempotency-key", format!("shop-{:032x}", rand::random::<u128>()))
        .json(&body)
        .send()
        .await;
    let session: serde_json::Value = match created {
        Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
        Ok(response) => {
            let status = response.status();
            return (StatusCode::BAD_GATEWAY, format!("the checkout API answered {status}")).into_response();
        }
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the checkout API is unreachable: {error}"),
            )
                .into_response()
        }
    };
    let url = session["url"].as_str().unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Example shop</title></head>\
         <body><main><h1>Example shop</h1><p>Chess set: KES {amount}</p>\
         <button id=\"pay\" type=\"button\" data-session-url=\"{url}\">Pay with M-Pesa</button>\
         <p id=\"result\" role=\"status\" aria-live=\"polite\"></p></main>\
         <script src=\"{api}/pay/assets/checkout-v1.js\"></script><script src=\"/shop.js\"></script></body></html>",
        url = escape(url),
        api = escape(&shop.api),
    ))
    .into_response()
}

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SHOP_JS).into_response()
}

async fn done() -> Response {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Thank you</title></head>\
         <body><main><h1>Thank you for your order</h1></main></body></html>",
    )
    .into_response()
}
