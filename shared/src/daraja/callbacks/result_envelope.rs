//! The `{"Result": {...}}` envelope shared by B2C results, queue timeouts, Transaction Status
//! and the other asynchronous products.

use std::fmt;

use serde_json::value::RawValue;

use crate::daraja::errors::{sanitize_remote_text, ParseError};
use crate::daraja::json::{self, Kind, Object};
use crate::daraja::stk::result_code;
use crate::domain::DarajaResult;

/// One `{"Key", "Value"}` pair as sent: numbers keep their literal text, strings are unescaped,
/// a missing, `null` or empty `Value` is `None`. `Debug` masks phone-like digit runs.
#[derive(Clone, PartialEq, Eq)]
pub struct ResultItem {
    pub key: String,
    pub value: Option<String>,
}

impl fmt::Debug for ResultItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultItem")
            .field("key", &self.key)
            .field("value", &self.value.as_deref().map(|v| sanitize_remote_text(v, 200)))
            .finish()
    }
}

/// The common part of every asynchronous result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEnvelope {
    /// `ResultType` as sent (`0`), number or string.
    pub result_type: Option<String>,
    pub result: DarajaResult,
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    /// `TransactionID` as sent (failures carry a placeholder; see [`is_placeholder_transaction_id`]).
    pub transaction_id: Option<String>,
    /// `ResultParameters.ResultParameter`, one or many, in order.
    pub parameters: Vec<ResultItem>,
    /// `ReferenceData.ReferenceItem`, one or many, in order.
    pub reference_items: Vec<ResultItem>,
}

impl ResultEnvelope {
    /// The first parameter named `key`.
    pub fn parameter(&self, key: &str) -> Option<&ResultItem> {
        self.parameters.iter().find(|item| item.key == key)
    }

    /// The value of the first parameter named `key`.
    pub fn parameter_value(&self, key: &str) -> Option<&str> {
        self.parameter(key).and_then(|item| item.value.as_deref())
    }
}

/// Failures carry no receipt, only a placeholder such as `""`, `"0000000000"` or `"LHG0000000"`.
/// Real receipts are random: six or more trailing zeros do not happen.
pub fn is_placeholder_transaction_id(id: &str) -> bool {
    let id = id.trim();
    id.is_empty() || id.bytes().rev().take_while(|b| *b == b'0').count() >= 6 || id.bytes().all(|b| b == b'0')
}

/// Parses `{"Result": {ResultType, ResultCode, ResultDesc, OriginatorConversationID,
/// ConversationID, TransactionID, ResultParameters?, ReferenceData?}}`. Codes may be numbers or
/// strings; parameter lists may be a single object; items may lack `Value`.
pub fn parse_result_envelope(body: &[u8]) -> Result<ResultEnvelope, ParseError> {
    let root = json::root(body)?;
    let result = root.required_object("Result")?;
    let code_raw = result.get("ResultCode").ok_or(ParseError::Missing {
        field: "Result.ResultCode",
    })?;
    let code = result_code(code_raw, "Result.ResultCode")?;
    let envelope = ResultEnvelope {
        result_type: result.text("ResultType")?,
        result: DarajaResult {
            code,
            description: result.text("ResultDesc")?.unwrap_or_default(),
        },
        originator_conversation_id: result.text("OriginatorConversationID")?,
        conversation_id: result.text("ConversationID")?,
        transaction_id: result.text("TransactionID")?,
        parameters: items(&result, "ResultParameters", "ResultParameter")?,
        reference_items: items(&result, "ReferenceData", "ReferenceItem")?,
    };
    if envelope.originator_conversation_id.is_none() && envelope.conversation_id.is_none() {
        return Err(ParseError::Missing {
            field: "Result.OriginatorConversationID",
        });
    }
    Ok(envelope)
}

fn items(result: &Object<'_>, outer: &'static str, inner: &'static str) -> Result<Vec<ResultItem>, ParseError> {
    let Some(container) = result.object(outer)? else {
        return Ok(Vec::new());
    };
    let Some(raw) = container.get(inner) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in json::one_or_many(raw, inner)? {
        let Some(key) = item.get("Key") else { continue };
        let Some(key) = json::text(key, "Key")? else { continue };
        out.push(ResultItem {
            key,
            value: value_text(item.get("Value"))?,
        });
    }
    Ok(out)
}

/// The value as sent: literal number text, unescaped string, `true`/`false`, or the raw JSON of
/// an object or list. Absent, `null` and `""` are `None`.
fn value_text(raw: Option<&RawValue>) -> Result<Option<String>, ParseError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match json::kind(raw) {
        Kind::Null | Kind::String | Kind::Number => json::text(raw, "Value"),
        Kind::Bool | Kind::Array | Kind::Object => Ok(Some(raw.get().trim().to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_items_missing_values_and_string_codes() {
        let body =
            br#"{"Result":{"ResultType":"0","ResultCode":"2001","ResultDesc":"The initiator information is invalid.",
            "OriginatorConversationID":"o-1","ConversationID":"AG_1","TransactionID":"LHG0000000",
            "ResultParameters":{"ResultParameter":{"Key":"BOCompletedTime","Value":20261121144852}},
            "ReferenceData":{"ReferenceItem":[{"Key":"QueueTimeoutURL","Value":"https://x/t"},{"Key":"Occassion"}]}}}"#;
        let e = parse_result_envelope(body).unwrap();
        assert_eq!(e.result_type.as_deref(), Some("0"));
        assert_eq!(e.result.code.as_str(), "2001");
        assert_eq!(
            e.parameters,
            vec![ResultItem {
                key: "BOCompletedTime".into(),
                value: Some("20261121144852".into())
            }]
        );
        assert_eq!(e.reference_items.len(), 2);
        assert_eq!(
            e.reference_items[1],
            ResultItem {
                key: "Occassion".into(),
                value: None
            }
        );
        assert!(is_placeholder_transaction_id(e.transaction_id.as_deref().unwrap()));
    }

    #[test]
    fn placeholders_are_recognised_and_receipts_are_not() {
        for id in ["", "0000000000", "LHG0000000", "OAK000000"] {
            assert!(is_placeholder_transaction_id(id), "{id}");
        }
        for id in ["TKL632NMUA", "TKL51ZDR4F", "NLJ7RT61SV", "ABCD100000"] {
            assert!(!is_placeholder_transaction_id(id), "{id}");
        }
    }

    #[test]
    fn refuses_envelopes_without_a_code_or_an_id() {
        assert!(parse_result_envelope(br#"{"Result":{"ResultDesc":"x","ConversationID":"c"}}"#).is_err());
        assert!(parse_result_envelope(br#"{"Result":{"ResultCode":0}}"#).is_err());
        assert!(parse_result_envelope(br#"{"Result":[]}"#).is_err());
        assert!(parse_result_envelope(br#"{}"#).is_err());
    }
}
