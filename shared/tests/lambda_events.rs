//! The sample events in `events/` go through the Lambda edge exactly as API Gateway and SQS
//! deliver them: each HTTP event becomes the request its route expects, and the SQS event a
//! callback envelope the processor can decode.

use std::path::PathBuf;

use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::lambda::{batch_response, sqs_deliveries, to_api_request};
use checkout::services::callback_intake::{CallbackEnvelope, CallbackKind};

fn event(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn http_event(name: &str) -> checkout::api::ApiRequest {
    let raw: lambda_http::request::LambdaRequest = serde_json::from_str(&event(name)).expect("an API Gateway v2 event");
    to_api_request(lambda_http::Request::from(raw)).0
}

#[test]
fn http_events_reach_their_routes() {
    let cases = [
        ("initiate.json", RouteId::CreatePayment),
        ("status-get.json", RouteId::GetPayment),
        ("status-list.json", RouteId::ListPayments),
        ("health.json", RouteId::Health),
        ("health-openapi.json", RouteId::OpenApi),
        ("status-ready.json", RouteId::Ready),
        ("callback-stk.json", RouteId::StkCallback),
    ];
    for (file, expected) in cases {
        let request = http_event(file);
        match match_route(&request.method, &request.path) {
            RouteMatch::Found { id, params } => {
                assert_eq!(id, expected, "{file}");
                for (name, value) in params {
                    assert_eq!(
                        request.path_param(&name),
                        Some(value.as_str()),
                        "{file}: API Gateway gives the same path parameters"
                    );
                }
            }
            other => panic!("{file}: {other:?}"),
        }
        assert!(
            !request.request_id.is_empty(),
            "{file}: the gateway's request id is kept"
        );
        assert!(
            request.source_ip.is_some(),
            "{file}: the source IP comes from the request context"
        );
    }
}

#[test]
fn the_initiate_event_carries_its_body_headers_and_query() {
    let request = http_event("initiate.json");
    assert_eq!(request.header("idempotency-key"), Some("order-1234-attempt-1"));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["amount"], 1500);
    let list = http_event("status-list.json");
    assert_eq!(list.query_param("status").unwrap(), Some("completed"));
    let callback = http_event("callback-stk.json");
    assert_eq!(callback.source_ip.unwrap().to_string(), "196.201.214.200");
}

#[test]
fn the_sqs_event_decodes_into_callback_envelopes_and_failures_are_reported_by_id() {
    let sqs: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("callback-processor.json")).unwrap();
    let deliveries = sqs_deliveries(sqs);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].receive_count, 1);
    let envelope: CallbackEnvelope = serde_json::from_str(&deliveries[0].body).unwrap();
    assert_eq!(envelope.kind, CallbackKind::StkCallback);
    assert!(checkout::daraja::parse_stk_callback(&envelope.body_bytes()).is_ok());
    let response = serde_json::to_value(batch_response(vec![deliveries[0].id.clone()])).unwrap();
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        deliveries[0].id.as_str()
    );
}
