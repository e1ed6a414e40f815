//! The Lambda edge: API Gateway HTTP API events to [`ApiRequest`] and back, SQS batches to a
//! [`BatchHandler`] with partial batch responses, telemetry for the Lambda environment, and the
//! whole `main` of an HTTP API or SQS function ([`run_http_function`], [`run_sqs_function`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use lambda_runtime::LambdaEvent;

use crate::api::router::{self, Handlers};
use crate::api::{ApiRequest, ApiResponse};
use crate::aws::{self, SdkConfig};
use crate::config::{self, ConfigError, EnvLookup, Settings};
use crate::metrics;
use crate::queue::consumer::{BatchHandler, Delivery};

/// Structured JSON logs (one object per line) and EMF metrics, as CloudWatch wants them.
pub fn init_telemetry(service: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time() // CloudWatch stamps each line.
        .try_init();
    metrics::init(metrics::Mode::Emf, service);
}

pub fn to_api_request(event: lambda_http::Request) -> (ApiRequest, String) {
    let path_params: HashMap<String, String> = event
        .path_parameters()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let query_map = event.query_string_parameters();
    let mut query = Vec::new();
    for (name, _) in query_map.iter() {
        for value in query_map.all(name).unwrap_or_default() {
            query.push((name.to_owned(), value.to_owned()));
        }
    }
    let (source_ip, request_id, route_key) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => (
            ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            ctx.request_id.clone().unwrap_or_default(),
            ctx.route_key.clone().unwrap_or_default(),
        ),
        _ => (None, String::new(), String::new()),
    };
    let (parts, body) = event.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(text) => bytes::Bytes::from(text),
        Body::Binary(bytes) => bytes::Bytes::from(bytes),
        _ => bytes::Bytes::new(),
    };
    let mut request = ApiRequest::new(parts.method, parts.uri.path().to_owned());
    request.path_params = path_params;
    request.query = query;
    request.headers = parts.headers;
    request.body = body;
    request.source_ip = source_ip;
    if !request_id.is_empty() {
        request.request_id = request_id;
    }
    (request, route_key)
}

pub fn to_lambda_response(response: ApiResponse) -> lambda_http::Response<Body> {
    let mut builder = lambda_http::Response::builder().status(response.status);
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers;
    }
    builder
        .body(Body::Text(String::from_utf8_lossy(&response.body).into_owned()))
        .unwrap_or_else(|_| lambda_http::Response::new(Body::Empty))
}

/// Serves an HTTP API function; logs one line per request (route template, never the raw path,
/// which may carry a callback token).
pub async fn serve_http<H, Fut>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(ApiRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiResponse> + Send,
{
    let handler = Arc::new(handler);
    // The version serving (Lambda's own variable, not configuration): a release's rollback alarm
    // counts only the new version's HTTP 500 answers (`ApiInternalErrors{Version}`).
    let version: Arc<str> = std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
        .unwrap_or_else(|_| "$LATEST".into())
        .into();
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| {
        let handler = handler.clone();
        let version = version.clone();
        async move {
            let started = Instant::now();
            let (request, route) = to_api_request(event);
            let request_id = request.request_id.clone();
            let response = handler(request).await;
            if response.status == http::StatusCode::INTERNAL_SERVER_ERROR {
                metrics::count("ApiInternalErrors", 1, &[("Version", &version)]);
            }
            tracing::info!(
                request_id = %request_id,
                route = %route,
                status = response.status.as_u16(),
                latency_ms = started.elapsed().as_millis() as u64,
                "request"
            );
            Ok::<_, std::convert::Infallible>(to_lambda_response(response))
        }
    }))
    .await
}

/// Serves an HTTP API function: the routes of the route table whose services `handlers` holds.
pub async fn serve_routes(handlers: Handlers) -> Result<(), lambda_http::Error> {
    let handlers = Arc::new(handlers);
    serve_http(move |request| {
        let handlers = handlers.clone();
        async move { router::serve(&handlers, request).await }
    })
    .await
}

/// The whole `main` of an HTTP API function: telemetry, the settings `function` may read, its
/// handlers from `build` (from configuration only, no I/O), the check that `build` read only
/// what `function` declares, then its routes.
pub async fn run_http_function<B>(function: &'static str, build: B) -> Result<(), lambda_http::Error>
where
    B: FnOnce(&Settings<EnvLookup>, &SdkConfig) -> Result<Handlers, ConfigError>,
{
    init_telemetry(function);
    let settings = config::for_function(function)?;
    let handlers = build(&settings, &aws::sdk_config().await)?;
    settings.verify()?;
    // Every C2B validation needs the callback key: fetch it during init, not on the first
    // payment (only the `c2b-validation` function has a validator).
    if let Some(validator) = &handlers.c2b_validation {
        validator.warm_up().await;
    }
    serve_routes(handlers).await
}

/// The messages of an SQS event as the batch handler sees them.
pub fn sqs_deliveries(event: SqsEvent) -> Vec<Delivery> {
    event
        .records
        .into_iter()
        .map(|record| Delivery {
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
        })
        .collect()
}

/// A partial batch response naming the messages that must come back.
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Serves an SQS-triggered function with partial batch responses (`ReportBatchItemFailures`).
pub async fn serve_sqs(handler: Arc<dyn BatchHandler>) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = handler.clone();
        async move {
            let failed = handler.handle(sqs_deliveries(event.payload)).await;
            Ok::<_, std::convert::Infallible>(batch_response(failed))
        }
    }))
    .await
}

/// The whole `main` of an SQS-triggered function: telemetry, the settings `function` may read,
/// its batch handler from `build` (from configuration only, no I/O), the check that `build` read
/// only what `function` declares, then the queue's batches ([`serve_sqs`]).
pub async fn run_sqs_function<H, B>(function: &'static str, build: B) -> Result<(), lambda_runtime::Error>
where
    H: BatchHandler + 'static,
    B: FnOnce(&Settings<EnvLookup>, &SdkConfig) -> Result<H, ConfigError>,
{
    init_telemetry(function);
    let settings = config::for_function(function)?;
    let handler = build(&settings, &aws::sdk_config().await)?;
    settings.verify()?;
    serve_sqs(Arc::new(handler)).await
}
