//! Transaction Status: asks Daraja what happened to a receipt or a conversation. The answer
//! comes later to the ResultURL (see [`super::callbacks::parse_transaction_status_result`]).

use serde_json::{json, Map, Value};

use super::errors::ParseError;
use super::json;
use super::ApiCredentials;

/// `IdentifierType` 4: an organisation shortcode.
pub const IDENTIFIER_TYPE_SHORTCODE: &str = "4";

#[derive(Clone, Copy)]
pub struct TransactionStatusRequest<'a> {
    pub credentials: &'a ApiCredentials,
    /// Sent as `Initiator` (not `InitiatorName`).
    pub initiator: &'a str,
    pub security_credential: &'a str,
    pub party_a: &'a str,
    /// `"4"` for a shortcode ([`IDENTIFIER_TYPE_SHORTCODE`]).
    pub identifier_type: &'a str,
    /// The receipt (`TransactionID`), when known.
    pub transaction_id: Option<&'a str>,
    /// Sent as `OriginalConversationID`: use it when the receipt is not known (a B2C timeout).
    pub original_conversation_id: Option<&'a str>,
    pub result_url: &'a str,
    pub queue_timeout_url: &'a str,
    pub remarks: &'a str,
    pub occasion: Option<&'a str>,
}

impl TransactionStatusRequest<'_> {
    /// The body; absent ids are left out rather than sent empty.
    pub fn to_body(&self) -> Value {
        let mut body = Map::new();
        body.insert("Initiator".into(), json!(self.initiator));
        body.insert("SecurityCredential".into(), json!(self.security_credential));
        body.insert("CommandID".into(), json!("TransactionStatusQuery"));
        if let Some(id) = self.transaction_id {
            body.insert("TransactionID".into(), json!(id));
        }
        if let Some(id) = self.original_conversation_id {
            body.insert("OriginalConversationID".into(), json!(id));
        }
        body.insert("PartyA".into(), json!(self.party_a));
        body.insert("IdentifierType".into(), json!(self.identifier_type));
        body.insert("ResultURL".into(), json!(self.result_url));
        body.insert("QueueTimeOutURL".into(), json!(self.queue_timeout_url));
        body.insert("Remarks".into(), json!(self.remarks));
        body.insert("Occasion".into(), json!(self.occasion.unwrap_or("")));
        Value::Object(body)
    }
}

/// The synchronous acknowledgement of an asynchronous request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub conversation_id: String,
    pub originator_conversation_id: String,
    pub response_code: String,
    pub response_description: String,
}

/// Parses `{"OriginatorConversationID", "ConversationID", "ResponseCode", "ResponseDescription"}`.
pub fn parse_acknowledgement(body: &[u8]) -> Result<Acknowledgement, ParseError> {
    let root = json::root(body)?;
    Ok(Acknowledgement {
        conversation_id: root.required_text("ConversationID")?,
        originator_conversation_id: root.text("OriginatorConversationID")?.unwrap_or_default(),
        response_code: root.required_text("ResponseCode")?,
        response_description: root.text("ResponseDescription")?.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn body_uses_initiator_and_original_conversation_id() {
        let credentials = ApiCredentials {
            consumer_key: Secret::new("k"),
            consumer_secret: Secret::new("s"),
        };
        let request = TransactionStatusRequest {
            credentials: &credentials,
            initiator: "testapi",
            security_credential: "c2VjcmV0",
            party_a: "600992",
            identifier_type: IDENTIFIER_TYPE_SHORTCODE,
            transaction_id: None,
            original_conversation_id: Some("payout-01J"),
            result_url: "https://api.example.com/r",
            queue_timeout_url: "https://api.example.com/t",
            remarks: "Reconcile",
            occasion: None,
        };
        let body = request.to_body();
        assert_eq!(body["Initiator"], "testapi");
        assert!(body.get("InitiatorName").is_none());
        assert_eq!(body["OriginalConversationID"], "payout-01J");
        assert!(body.get("TransactionID").is_none());
        assert_eq!(body["CommandID"], "TransactionStatusQuery");
        assert_eq!(body["IdentifierType"], "4");
        let by_receipt = TransactionStatusRequest {
            transaction_id: Some("TKL632NMUA"),
            ..request
        };
        assert_eq!(by_receipt.to_body()["TransactionID"], "TKL632NMUA");
    }

    #[test]
    fn parses_the_acknowledgement() {
        let body = br#"{"OriginatorConversationID":"1236-7134259-1","ConversationID":"AG_20261121_0000","ResponseCode":"0","ResponseDescription":"Accept the service request successfully."}"#;
        let a = parse_acknowledgement(body).unwrap();
        assert_eq!(a.conversation_id, "AG_20261121_0000");
        assert_eq!(a.response_code, "0");
        assert!(parse_acknowledgement(b"{}").is_err());
    }
}
