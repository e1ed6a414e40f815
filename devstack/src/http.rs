//! The dev stack's HTTP front: what API Gateway does in AWS (the caller's address, the body
//! limit, one route table for every request), in front of the same handlers the functions use.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use checkout::api::router::{self, Handlers};
use checkout::api::routes::{match_route, RouteId};
use checkout::api::{ApiError, ApiRequest, ApiResponse};

/// What the HTTP server answers with, built once: every route's services.
pub(crate) struct Services {
    pub(crate) handlers: Handlers,
    /// Test hook: milliseconds the validation route waits before answering (a slow validation).
    pub(crate) c2b_validation_delay: Arc<AtomicU64>,
}

/// API Gateway gives the caller's address; here the simulator plays the network, so a loopback
/// peer may name its address in `X-Forwarded-For` (how the simulator's chosen source IP arrives).
fn source_ip(peer: SocketAddr, headers: &http::HeaderMap) -> IpAddr {
    if peer.ip().is_loopback() {
        if let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            if let Some(Ok(ip)) = forwarded.split(',').next().map(|s| s.trim().parse()) {
                return ip;
            }
        }
    }
    peer.ip()
}

const MAX_REQUEST_BYTES: usize = 1024 * 1024;

pub(crate) async fn dispatch(
    State(services): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let mut api_request = ApiRequest::new(parts.method.clone(), parts.uri.path().to_owned());
    api_request.source_ip = Some(source_ip(peer, &parts.headers));
    api_request.query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    api_request.headers = parts.headers;
    let route = match_route(&parts.method, parts.uri.path());
    let template = router::template(&route);
    let response = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Err(_) => ApiError::PayloadTooLarge {
            max_bytes: MAX_REQUEST_BYTES,
        }
        .to_response(&api_request.request_id),
        Ok(bytes) => {
            api_request.body = bytes;
            if route.id() == Some(RouteId::C2bValidation) {
                let delay = services.c2b_validation_delay.load(Ordering::Relaxed);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
            }
            router::serve_matched(&services.handlers, route, api_request.clone()).await
        }
    };
    tracing::debug!(
        request_id = %api_request.request_id,
        method = %parts.method,
        route = template,
        status = response.status.as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    into_axum(response)
}

fn into_axum(response: ApiResponse) -> Response {
    let mut builder = Response::builder().status(response.status);
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers;
    }
    builder
        .body(Body::from(response.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
