//! The C2B sample events in `events/` go through the Lambda edge as API Gateway and SQS deliver
//! them, reach their routes, and carry bodies our parsers accept.

use std::path::PathBuf;

use checkout::api::routes::{match_route, RouteId, RouteMatch, ROUTES};
use checkout::lambda::to_api_request;
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
fn c2b_http_events_reach_their_routes_and_functions() {
    let cases = [
        ("c2b-validation.json", RouteId::C2bValidation, "c2b-validation"),
        ("c2b-confirmation.json", RouteId::C2bConfirmation, "c2b-confirmation"),
        ("c2b-api-register.json", RouteId::C2bRegister, "c2b-api"),
        (
            "c2b-api-expected-payment.json",
            RouteId::CreateExpectedPayment,
            "c2b-api",
        ),
        ("c2b-api-list-payments.json", RouteId::ListC2bPayments, "c2b-api"),
    ];
    for (file, expected, function) in cases {
        let request = http_event(file);
        let RouteMatch::Found { id, params } = match_route(&request.method, &request.path) else {
            panic!("{file}: no route");
        };
        assert_eq!(id, expected, "{file}");
        assert_eq!(
            ROUTES.iter().find(|r| r.id == id).map(|r| r.function),
            Some(function),
            "{file}"
        );
        for (name, value) in params {
            assert_eq!(request.path_param(&name), Some(value.as_str()), "{file}");
        }
        assert!(
            request.source_ip.is_some(),
            "{file}: the source IP comes from the request context"
        );
    }
    let validation = http_event("c2b-validation.json");
    let notification = checkout::daraja::parse_c2b_notification(&validation.body).expect("a Daraja C2B body");
    assert_eq!(notification.business_short_code.as_deref(), Some("600984"));
    let expected = http_event("c2b-api-expected-payment.json");
    assert_eq!(expected.header("idempotency-key"), Some("invoice-2231"));
    let list = http_event("c2b-api-list-payments.json");
    assert_eq!(list.query_param("account_number").unwrap(), Some("INV-2231"));
}

#[test]
fn the_c2b_sqs_event_is_a_confirmation_envelope() {
    let sqs: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&event("callback-processor-c2b.json")).unwrap();
    let body = sqs.records[0].body.clone().expect("a body");
    let envelope: CallbackEnvelope = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope.kind, CallbackKind::C2bConfirmation);
    let n = checkout::daraja::parse_c2b_notification(&envelope.body_bytes()).unwrap();
    assert_eq!(n.trans_id, "TKL51ZDR4F");
}
