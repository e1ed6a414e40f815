//! The payout sample events in `events/` go through the Lambda edge as API Gateway and SQS
//! deliver them: each HTTP event reaches its payout route, the callback event is a B2C result our
//! parser reads, and the SQS event is a payout job the worker decodes.

use std::path::PathBuf;

use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::lambda::{sqs_deliveries, to_api_request};
use checkout::services::payouts::PayoutJob;

fn event(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn http_event(name: &str) -> checkout::api::ApiRequest {
    let raw: lambda_http::request::LambdaRequest = serde_json::from_str(&event(name)).expect("an API Gateway v2 event");
    to_api_request(lambda_http::Request::from(raw)).0
}

#[test]
fn payout_http_events_reach_their_routes() {
    for (file, expected) in [
        ("payouts-api-create.json", RouteId::CreatePayout),
        ("payouts-api-approve.json", RouteId::ApprovePayout),
        ("callback-b2c-result.json", RouteId::B2cResultCallback),
    ] {
        let request = http_event(file);
        match match_route(&request.method, &request.path) {
            RouteMatch::Found { id, params } => {
                assert_eq!(id, expected, "{file}");
                for (name, value) in params {
                    assert_eq!(request.path_param(&name), Some(value.as_str()), "{file}");
                }
            }
            other => panic!("{file}: {other:?}"),
        }
    }
    let create = http_event("payouts-api-create.json");
    assert_eq!(create.header("idempotency-key"), Some("refund-1234-attempt-1"));
    let body = create.json_object(checkout::api::payments::MAX_BODY_BYTES).unwrap();
    let payout = checkout::api::payouts::parse_new_payout(&body).unwrap();
    assert_eq!(payout.amount.shillings(), 2500);
    let result = http_event("callback-b2c-result.json");
    let parsed = checkout::daraja::parse_b2c_result(&result.body).unwrap();
    assert_eq!(parsed.receipt(), Some("TKL632NMUA"));
    assert_eq!(
        parsed.originator_conversation_id.as_deref(),
        Some("po_01JD3Q8Z4M2X9N5K7R1T6V0W8Y")
    );
}

#[test]
fn the_payout_queue_event_is_a_payout_job() {
    let sqs: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&event("b2c-payout.json")).unwrap();
    let deliveries = sqs_deliveries(sqs);
    assert_eq!(deliveries.len(), 1);
    let job: PayoutJob = serde_json::from_str(&deliveries[0].body).unwrap();
    assert!(checkout::domain::PayoutId::parse(&job.payout_id).is_ok());
    assert!(
        serde_json::from_str::<PayoutJob>(r#"{"payout_id":"po_1","extra":1}"#).is_err(),
        "only our own shape"
    );
}
