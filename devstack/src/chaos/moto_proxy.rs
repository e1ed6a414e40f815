//! A loopback proxy in front of moto's server that lets one DynamoDB request through at a time.
//!
//! Moto's `TransactWriteItems` deep-copies the whole table before applying a transaction; with
//! the requests its threaded server handles at once, that copy races other writes and fails with
//! `RuntimeError: dictionary changed size during iteration` (a 500, and transactions that are not
//! atomic), even at a few payments per second. Real DynamoDB has no such failure, so the crash
//! form sends the dev stack's DynamoDB traffic through here, one request at a time; SQS requests
//! (long polls included) pass concurrently.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::sync::{oneshot, Mutex};

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    dynamodb: Mutex<()>,
}

pub struct MotoProxy {
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for MotoProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Hop-by-hop and length headers the proxy recomputes.
fn passes(name: &http::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
    )
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bad_gateway = |why: String| {
        Response::builder()
            .status(502)
            .body(Body::from(why))
            .unwrap_or_default()
    };
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return bad_gateway("request body unreadable".into());
    };
    let is_dynamodb = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("DynamoDB_"));
    let _turn = match is_dynamodb {
        true => Some(proxy.dynamodb.lock().await),
        false => None,
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
        outgoing = outgoing.header(name, value);
    }
    let answer = match outgoing.body(bytes).send().await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(format!("moto: {e}")),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(n, _)| passes(n)) {
        response = response.header(name, value);
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(body)).unwrap_or_default()
}

/// Starts the proxy on a free loopback port in front of `upstream` (moto's URL).
pub async fn spawn(upstream: &str) -> std::io::Result<MotoProxy> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(std::io::Error::other)?,
        dynamodb: Mutex::new(()),
    });
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(MotoProxy {
        url,
        shutdown: Some(tx),
    })
}
