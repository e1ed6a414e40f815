//! B2C (business pays a customer), v3.

use serde_json::{json, Value};

use super::errors::ParseError;
use super::json;
use super::ApiCredentials;
use crate::domain::{Amount, Msisdn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum B2cCommand {
    BusinessPayment,
    SalaryPayment,
    PromotionPayment,
}

impl B2cCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            B2cCommand::BusinessPayment => "BusinessPayment",
            B2cCommand::SalaryPayment => "SalaryPayment",
            B2cCommand::PromotionPayment => "PromotionPayment",
        }
    }
}

/// One payout. `originator_conversation_id` is our idempotency handle: derive it from the
/// payout id so a retried request is refused as a duplicate instead of paying twice.
#[derive(Clone, Copy)]
pub struct B2cPaymentRequest<'a> {
    pub credentials: &'a ApiCredentials,
    pub initiator_name: &'a str,
    /// Already encrypted (see [`super::security_credential::encrypt_security_credential`]).
    pub security_credential: &'a str,
    pub command: B2cCommand,
    pub amount: Amount,
    /// The paying shortcode.
    pub party_a: &'a str,
    pub party_b: &'a Msisdn,
    /// 2 to 100 characters (enforced by [`crate::domain::Remarks`]).
    pub remarks: &'a str,
    pub occasion: Option<&'a str>,
    pub originator_conversation_id: &'a str,
    pub result_url: &'a str,
    pub queue_timeout_url: &'a str,
}

impl B2cPaymentRequest<'_> {
    /// The v3 body; the key is spelled `Occassion`, and sent empty when there is none.
    pub fn to_body(&self) -> Value {
        json!({
            "OriginatorConversationID": self.originator_conversation_id,
            "InitiatorName": self.initiator_name,
            "SecurityCredential": self.security_credential,
            "CommandID": self.command.as_str(),
            "Amount": self.amount.shillings().to_string(),
            "PartyA": self.party_a,
            "PartyB": self.party_b.as_str(),
            "Remarks": self.remarks,
            "QueueTimeOutURL": self.queue_timeout_url,
            "ResultURL": self.result_url,
            "Occassion": self.occasion.unwrap_or(""),
        })
    }
}

/// Daraja accepted the payout request; the result comes later to the ResultURL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2cAccepted {
    pub conversation_id: String,
    pub originator_conversation_id: String,
    pub response_code: String,
    pub response_description: String,
}

/// Parses the synchronous B2C answer. Whether `response_code` means accepted is the caller's call.
pub fn parse_b2c_response(body: &[u8]) -> Result<B2cAccepted, ParseError> {
    let root = json::root(body)?;
    Ok(B2cAccepted {
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
    fn body_uses_v3_keys_and_strings() {
        let credentials = ApiCredentials {
            consumer_key: Secret::new("k"),
            consumer_secret: Secret::new("s"),
        };
        let phone = Msisdn::parse("254712345678").unwrap();
        let request = B2cPaymentRequest {
            credentials: &credentials,
            initiator_name: "testapi",
            security_credential: "ZW5jcnlwdGVk",
            command: B2cCommand::BusinessPayment,
            amount: Amount::new(500).unwrap(),
            party_a: "600992",
            party_b: &phone,
            remarks: "Refund ORDER1234",
            occasion: Some("Refund"),
            originator_conversation_id: "payout-01J",
            result_url: "https://api.example.com/callbacks/b2c/result/t",
            queue_timeout_url: "https://api.example.com/callbacks/b2c/timeout/t",
        };
        let body = request.to_body();
        assert_eq!(body["Occassion"], "Refund");
        assert!(body.get("Occasion").is_none());
        assert_eq!(body["Amount"], "500");
        assert_eq!(body["PartyB"], "254712345678");
        assert_eq!(body["CommandID"], "BusinessPayment");
        assert_eq!(body["OriginatorConversationID"], "payout-01J");
        assert_eq!(
            B2cPaymentRequest {
                occasion: None,
                ..request
            }
            .to_body()["Occassion"],
            ""
        );
        assert_eq!(B2cCommand::SalaryPayment.as_str(), "SalaryPayment");
        assert_eq!(B2cCommand::PromotionPayment.as_str(), "PromotionPayment");
    }

    #[test]
    fn parses_the_accepted_answer() {
        let body = br#"{ "ConversationID": "AG_20261121_00004e4d7b3b0d6fa5e4", "OriginatorConversationID": "payout-01J", "ResponseCode": "0", "ResponseDescription": "Accept the service request successfully." }"#;
        let a = parse_b2c_response(body).unwrap();
        assert_eq!(a.conversation_id, "AG_20261121_00004e4d7b3b0d6fa5e4");
        assert_eq!(a.originator_conversation_id, "payout-01J");
        assert_eq!(a.response_code, "0");
        assert!(parse_b2c_response(br#"{"ResponseCode":"0"}"#).is_err());
    }
}
