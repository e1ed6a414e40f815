//! The `{"Result": {...}}` envelope POSTed by B2C, Transaction Status, Account Balance and
//! Reversal, and the request fields those APIs share.

use serde_json::{json, Map, Value};

use crate::clock::{self, Nairobi};
use crate::endpoint::code_value;
use crate::errors::ApiError;
use crate::ids;
use crate::request::Fields;

/// A `{"Key": .., "Value": ..}` item; `None` leaves `Value` out, as Daraja does.
pub fn param(key: &str, value: Option<Value>) -> Value {
    match value {
        Some(v) => json!({ "Key": key, "Value": v }),
        None => json!({ "Key": key }),
    }
}

pub struct Envelope<'a> {
    pub result_type: i64,
    pub code: &'a str,
    pub desc: &'a str,
    pub originator_conversation_id: &'a str,
    pub conversation_id: &'a str,
    /// Receipt on success; the placeholder (`TKL0000000`) otherwise.
    pub transaction_id: String,
    /// `None`: no `ResultParameters` at all (failures).
    pub params: Option<Vec<Value>>,
    /// `ReferenceData.ReferenceItem`, a single object.
    pub reference: Value,
}

impl Envelope<'_> {
    pub fn to_json(&self) -> Value {
        let mut r = Map::new();
        r.insert("ResultType".into(), json!(self.result_type));
        r.insert("ResultCode".into(), code_value(self.code));
        r.insert("ResultDesc".into(), json!(self.desc));
        r.insert(
            "OriginatorConversationID".into(),
            json!(self.originator_conversation_id),
        );
        r.insert("ConversationID".into(), json!(self.conversation_id));
        r.insert("TransactionID".into(), json!(self.transaction_id));
        if let Some(p) = &self.params {
            r.insert("ResultParameters".into(), json!({ "ResultParameter": p.clone() }));
        }
        r.insert(
            "ReferenceData".into(),
            json!({ "ReferenceItem": self.reference.clone() }),
        );
        json!({ "Result": Value::Object(r) })
    }
}

/// What QueueTimeOutURL receives. Safaricom does not document it; the simulator uses the same
/// envelope with ResultType 1 and code 1037 (a timeout, never a failure).
pub fn queue_timeout(ocid: &str, conversation_id: &str, timeout_url: &str, now: &Nairobi) -> Value {
    Envelope {
        result_type: 1,
        code: "1037",
        desc: "The request timed out while waiting in the M-Pesa queue.",
        originator_conversation_id: ocid,
        conversation_id,
        transaction_id: ids::placeholder_receipt(now),
        params: None,
        reference: param("QueueTimeoutURL", Some(json!(timeout_url))),
    }
    .to_json()
}

/// The fields Transaction Status, Account Balance and Reversal share.
pub struct InitiatorRequest {
    pub initiator: String,
    pub credential: String,
    pub party_a: String,
    pub result_url: String,
    pub timeout_url: String,
    pub remarks: String,
    pub occasion: String,
}

/// Validates the shared fields in Daraja's order (Reversal names its party `ReceiverParty` and
/// misspells `RecieverIdentifierType`).
pub fn initiator_request(
    f: &Fields,
    command: &str,
    party_key: &str,
    identifier_key: &str,
) -> Result<InitiatorRequest, ApiError> {
    let initiator = f.required("Initiator")?;
    let credential = f.required("SecurityCredential")?;
    f.one_of("CommandID", &[command])?;
    let party_a = f.digits(party_key, 5, 12)?;
    f.one_of(identifier_key, &["1", "2", "4", "11"])?;
    let result_url = f.url("ResultURL")?;
    let timeout_url = f.url("QueueTimeOutURL")?;
    let remarks = f.text_len("Remarks", 1, 100)?;
    let occasion = f.optional("Occasion")?.unwrap_or_default();
    Ok(InitiatorRequest {
        initiator,
        credential,
        party_a,
        result_url,
        timeout_url,
        remarks,
        occasion,
    })
}

/// The synchronous acknowledgement shared by the asynchronous APIs.
pub fn ack(ocid: &str, conversation_id: &str) -> Value {
    json!({
        "OriginatorConversationID": ocid,
        "ConversationID": conversation_id,
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully.",
    })
}

pub fn ts_now_number(now: &Nairobi) -> Value {
    json!(clock::ts14_number(now))
}
