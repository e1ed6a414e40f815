//! Property tests: no parser of Safaricom input panics, whatever the bytes or the JSON.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::callbacks::{
    parse_b2c_result, parse_c2b_notification, parse_result_envelope, parse_stk_callback,
    parse_transaction_status_result,
};
use super::errors::{classify_error_response, parse_error_envelope, Operation};
use super::{
    parse_acknowledgement, parse_b2c_response, parse_c2b_register_response, parse_stk_push_response,
    parse_stk_query_response, parse_token_response, KesDecimal,
};
use crate::domain::{Amount, AmountLimits, Msisdn};

/// Every parser and classifier of Safaricom input, on one body.
pub(crate) fn run_all_parsers(body: &[u8]) {
    let _ = parse_stk_callback(body);
    let _ = parse_b2c_result(body);
    let _ = parse_transaction_status_result(body);
    let _ = parse_result_envelope(body);
    let _ = parse_c2b_notification(body);
    let _ = parse_stk_push_response(body);
    let _ = parse_stk_query_response(body);
    let _ = parse_token_response(body);
    let _ = parse_error_envelope(body);
    let _ = parse_b2c_response(body);
    let _ = parse_acknowledgement(body);
    let _ = parse_c2b_register_response(body);
    for op in [
        Operation::Token,
        Operation::StkPush,
        Operation::StkQuery,
        Operation::B2cPayment,
        Operation::C2bRegister,
    ] {
        for status in [200, 400, 401, 404, 429, 500, 503] {
            let _ = classify_error_response(op, status, body);
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = Msisdn::parse(text);
        let _ = Amount::parse_daraja_literal(text);
        let _ = Amount::parse_api_literal(text, AmountLimits::STK_PUSH);
        let _ = KesDecimal::parse_literal(text);
    }
}

const KEYS: &[&str] = &[
    "Body",
    "stkCallback",
    "MerchantRequestID",
    "CheckoutRequestID",
    "ResultCode",
    "ResultDesc",
    "CallbackMetadata",
    "Item",
    "Name",
    "Value",
    "Amount",
    "MpesaReceiptNumber",
    "Balance",
    "TransactionDate",
    "PhoneNumber",
    "Result",
    "ResultType",
    "OriginatorConversationID",
    "ConversationID",
    "TransactionID",
    "ResultParameters",
    "ResultParameter",
    "ReferenceData",
    "ReferenceItem",
    "Key",
    "TransactionAmount",
    "TransactionReceipt",
    "TransactionCompletedDateTime",
    "B2CUtilityAccountAvailableFunds",
    "B2CChargesPaidAccountAvailableFunds",
    "B2CRecipientIsRegisteredCustomer",
    "TransactionStatus",
    "ReceiptNo",
    "FinalisedTime",
    "TransID",
    "TransAmount",
    "TransTime",
    "MSISDN",
    "FirstName",
    "ResponseCode",
    "ResponseDescription",
    "CustomerMessage",
    "access_token",
    "expires_in",
    "errorCode",
    "errorMessage",
    "requestId",
    "fault",
    "faultstring",
    "detail",
    "errorcode",
    "OriginatorCoversationID",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        "[0-9]{0,20}(\\.[0-9]{0,4})?".prop_map(Value::String),
        "\\PC{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "Amount",
            "0",
            "500.001.1001",
            "being processed",
            "21.11.2026 14:48:52",
            "Y",
            "-110.0"
        ])
        .prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => "\\PC{0,8}"]
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Arbitrary JSON inside the envelopes the parsers look into, so deep paths are reached too.
fn enveloped_json() -> impl Strategy<Value = Value> {
    (arbitrary_json(), 0..4u8).prop_map(|(inner, shape)| match shape {
        0 => json!({"Body": {"stkCallback": inner}}),
        1 => json!({"Body": {"stkCallback": {"CheckoutRequestID": "c", "ResultCode": 0, "CallbackMetadata": {"Item": inner}}}}),
        2 => json!({"Result": inner}),
        _ => json!({"Result": {"ResultCode": 0, "ConversationID": "c", "ResultParameters": {"ResultParameter": inner}}}),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(body in prop::collection::vec(any::<u8>(), 0..512)) {
        run_all_parsers(&body);
    }

    #[test]
    fn arbitrary_json_never_panics_any_parser(value in arbitrary_json()) {
        run_all_parsers(value.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_json_in_envelopes_never_panics_any_parser(value in enveloped_json()) {
        run_all_parsers(value.to_string().as_bytes());
    }

    #[test]
    fn truncated_samples_never_panic(cut in 0usize..2000, which in 0usize..3) {
        let samples = [
            r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"c","ResultCode":0,"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":100},{"Name":"Balance"}]}}}}"#,
            r#"{"Result":{"ResultType":0,"ResultCode":0,"ConversationID":"c","ResultParameters":{"ResultParameter":{"Key":"TransactionAmount","Value":500}}}}"#,
            r#"{"TransID":"T","TransAmount":"500.00","MSISDN":"2547 ***** 126"}"#,
        ];
        let sample = samples[which].as_bytes();
        run_all_parsers(&sample[..cut.min(sample.len())]);
    }
}

#[test]
fn deeply_nested_json_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    run_all_parsers(deep.as_bytes());
    let deep_object = format!("{}1{}", r#"{"Body":"#.repeat(20_000), "}".repeat(20_000));
    run_all_parsers(deep_object.as_bytes());
}
