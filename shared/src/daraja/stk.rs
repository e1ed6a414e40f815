//! STK Push (M-Pesa Express) and STK Query: requests, answers and their parsers.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::errors::{redact_id, ParseError};
use super::json;
use super::timestamp::{daraja_timestamp, stk_password};
use super::ApiCredentials;
use crate::domain::{Amount, DarajaResult, Msisdn, ResultCode};
use crate::secrets::Secret;

/// Paybill or till (Buy Goods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StkTransactionType {
    /// Paybill: PartyB is the paybill shortcode.
    CustomerPayBillOnline,
    /// Till (Buy Goods): PartyB is the till number, BusinessShortCode the store number.
    CustomerBuyGoodsOnline,
}

impl StkTransactionType {
    pub fn as_str(self) -> &'static str {
        match self {
            StkTransactionType::CustomerPayBillOnline => "CustomerPayBillOnline",
            StkTransactionType::CustomerBuyGoodsOnline => "CustomerBuyGoodsOnline",
        }
    }
}

/// One STK Push. `now` fixes the Timestamp, computed once for both `Password` and `Timestamp`.
#[derive(Clone, Copy)]
pub struct StkPushRequest<'a> {
    pub credentials: &'a ApiCredentials,
    /// `BusinessShortCode` (the paybill, or the store number of a till).
    pub shortcode: &'a str,
    pub passkey: &'a Secret,
    pub transaction_type: StkTransactionType,
    /// `PartyB`: the paybill shortcode, or the till number.
    pub party_b: &'a str,
    pub amount: Amount,
    pub phone: &'a Msisdn,
    pub callback_url: &'a str,
    /// Up to 12 characters (enforced by [`crate::domain::Reference`]).
    pub account_reference: &'a str,
    /// Up to 13 characters (enforced by [`crate::domain::Description`]).
    pub transaction_desc: &'a str,
    pub now: DateTime<Utc>,
}

impl StkPushRequest<'_> {
    /// The JSON body. Amount and phone are strings, as in Safaricom's own example.
    pub fn to_body(&self) -> Value {
        let timestamp = daraja_timestamp(self.now);
        let password = stk_password(self.shortcode, self.passkey, &timestamp);
        json!({
            "BusinessShortCode": self.shortcode,
            "Password": password.expose(),
            "Timestamp": timestamp,
            "TransactionType": self.transaction_type.as_str(),
            "Amount": self.amount.shillings().to_string(),
            "PartyA": self.phone.as_str(),
            "PartyB": self.party_b,
            "PhoneNumber": self.phone.as_str(),
            "CallBackURL": self.callback_url,
            "AccountReference": self.account_reference,
            "TransactionDesc": self.transaction_desc,
        })
    }
}

/// Daraja accepted the push: the prompt is on its way to the phone.
#[derive(Clone, PartialEq, Eq)]
pub struct StkPushAccepted {
    pub merchant_request_id: String,
    /// Contains the phone's last digits: personal data in logs.
    pub checkout_request_id: String,
    pub response_code: String,
    pub response_description: String,
    pub customer_message: String,
}

impl fmt::Debug for StkPushAccepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StkPushAccepted")
            .field("merchant_request_id", &self.merchant_request_id)
            .field("checkout_request_id", &redact_id(&self.checkout_request_id))
            .field("response_code", &self.response_code)
            .field("response_description", &self.response_description)
            .finish_non_exhaustive()
    }
}

/// Parses the synchronous STK Push answer (all strings; numbers tolerated). Whether
/// `response_code` means accepted is the caller's decision.
pub fn parse_stk_push_response(body: &[u8]) -> Result<StkPushAccepted, ParseError> {
    let root = json::root(body)?;
    Ok(StkPushAccepted {
        merchant_request_id: root.required_text("MerchantRequestID")?,
        checkout_request_id: root.required_text("CheckoutRequestID")?,
        response_code: root.required_text("ResponseCode")?,
        response_description: root.text("ResponseDescription")?.unwrap_or_default(),
        customer_message: root.text("CustomerMessage")?.unwrap_or_default(),
    })
}

/// An STK Query for one CheckoutRequestID.
#[derive(Clone, Copy)]
pub struct StkQueryRequest<'a> {
    pub credentials: &'a ApiCredentials,
    pub shortcode: &'a str,
    pub passkey: &'a Secret,
    pub checkout_request_id: &'a str,
    pub now: DateTime<Utc>,
}

impl StkQueryRequest<'_> {
    pub fn to_body(&self) -> Value {
        let timestamp = daraja_timestamp(self.now);
        let password = stk_password(self.shortcode, self.passkey, &timestamp);
        json!({
            "BusinessShortCode": self.shortcode,
            "Password": password.expose(),
            "Timestamp": timestamp,
            "CheckoutRequestID": self.checkout_request_id,
        })
    }
}

/// What STK Query knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StkQueryAnswer {
    /// The final result (map it with [`crate::domain::stk_outcome`]).
    Final(DarajaResult),
    /// "The transaction is being processed" / "does not Exist" (the first ~30 s, or an unknown
    /// ID): not a failure. Ask again later.
    NotKnownYet { message: String },
}

/// The STK Query answer body as sent. `Debug` masks the CheckoutRequestID.
#[derive(Clone, PartialEq, Eq)]
pub struct StkQueryResponse {
    pub merchant_request_id: Option<String>,
    pub checkout_request_id: Option<String>,
    pub response_code: Option<String>,
    pub response_description: Option<String>,
    /// `ResultCode` + `ResultDesc`, when present.
    pub result: Option<DarajaResult>,
}

impl fmt::Debug for StkQueryResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StkQueryResponse")
            .field("merchant_request_id", &self.merchant_request_id)
            .field(
                "checkout_request_id",
                &self.checkout_request_id.as_deref().map(redact_id),
            )
            .field("response_code", &self.response_code)
            .field("response_description", &self.response_description)
            .field("result", &self.result)
            .finish()
    }
}

/// STK Query's `ResultCode` for "The transaction is still under processing" (seen in answers
/// from 2023 on): not final.
pub const STILL_PROCESSING_RESULT_CODE: &str = "4999";

/// Parses the HTTP 200 STK Query answer: `{"ResponseCode": "0", ..., "ResultCode": "1032",
/// "ResultDesc": "Request cancelled by user"}` (codes number or string).
pub fn parse_stk_query_response(body: &[u8]) -> Result<StkQueryResponse, ParseError> {
    let root = json::root(body)?;
    let result = match root.get("ResultCode") {
        None => None,
        Some(raw) => match json::text(raw, "ResultCode")? {
            None => None,
            Some(_) => Some(DarajaResult {
                code: result_code(raw, "ResultCode")?,
                description: root.text("ResultDesc")?.unwrap_or_default(),
            }),
        },
    };
    let parsed = StkQueryResponse {
        merchant_request_id: root.text("MerchantRequestID")?,
        checkout_request_id: root.text("CheckoutRequestID")?,
        response_code: root.text("ResponseCode")?,
        response_description: root.text("ResponseDescription")?,
        result,
    };
    if parsed.result.is_none() && parsed.response_code.is_none() {
        return Err(ParseError::Missing { field: "ResultCode" });
    }
    Ok(parsed)
}

/// A result code, number or string, kept verbatim.
pub(crate) fn result_code(raw: &serde_json::value::RawValue, field: &'static str) -> Result<ResultCode, ParseError> {
    serde_json::from_str::<ResultCode>(raw.get()).map_err(|_| ParseError::WrongType {
        field,
        expected: "a number or a non-empty string",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use chrono::TimeZone;

    const SANDBOX_PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

    #[test]
    fn push_body_matches_the_guides_example() {
        let credentials = ApiCredentials {
            consumer_key: Secret::new("k"),
            consumer_secret: Secret::new("s"),
        };
        let passkey = Secret::new(SANDBOX_PASSKEY);
        let phone = Msisdn::parse("0712345678").unwrap();
        let request = StkPushRequest {
            credentials: &credentials,
            shortcode: "174379",
            passkey: &passkey,
            transaction_type: StkTransactionType::CustomerPayBillOnline,
            party_b: "174379",
            amount: Amount::new(100).unwrap(),
            phone: &phone,
            callback_url: "https://api.example.com/callbacks/stk/tok",
            account_reference: "ORDER1234",
            transaction_desc: "Chess set",
            now: Utc.with_ymd_and_hms(2026, 11, 21, 11, 30, 5).unwrap(),
        };
        let body = request.to_body();
        assert_eq!(body["Timestamp"], "20261121143005");
        assert_eq!(body["Amount"], "100");
        assert_eq!(body["PartyA"], "254712345678");
        assert_eq!(body["PhoneNumber"], "254712345678");
        assert_eq!(body["TransactionType"], "CustomerPayBillOnline");
        let password = STANDARD.decode(body["Password"].as_str().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(password).unwrap(),
            format!("174379{SANDBOX_PASSKEY}20261121143005")
        );
        let till = StkPushRequest {
            transaction_type: StkTransactionType::CustomerBuyGoodsOnline,
            party_b: "600100",
            ..request
        };
        assert_eq!(till.to_body()["TransactionType"], "CustomerBuyGoodsOnline");
        assert_eq!(till.to_body()["PartyB"], "600100");
    }

    #[test]
    fn parses_the_accepted_answer() {
        let body = br#"{ "MerchantRequestID": "ac7b-470b-8df7-23ab3cef38271071873", "CheckoutRequestID": "ws_CO_211120261430051234712345678",
  "ResponseCode": "0", "ResponseDescription": "Success. Request accepted for processing", "CustomerMessage": "Success. Request accepted for processing" }"#;
        let a = parse_stk_push_response(body).unwrap();
        assert_eq!(a.merchant_request_id, "ac7b-470b-8df7-23ab3cef38271071873");
        assert_eq!(a.checkout_request_id, "ws_CO_211120261430051234712345678");
        assert_eq!(a.response_code, "0");
        assert!(!format!("{a:?}").contains("1234712345678"));
        let numeric = br#"{"MerchantRequestID":"m","CheckoutRequestID":"c","ResponseCode":0}"#;
        assert_eq!(parse_stk_push_response(numeric).unwrap().response_code, "0");
        assert!(parse_stk_push_response(br#"{"MerchantRequestID":"m","ResponseCode":"0"}"#).is_err());
        assert!(parse_stk_push_response(b"<html/>").is_err());
    }

    #[test]
    fn parses_query_answers_with_string_or_number_codes() {
        let body = br#"{"ResponseCode":"0","ResponseDescription":"The service request has been accepted successsfully","MerchantRequestID":"m","CheckoutRequestID":"c","ResultCode":"1032","ResultDesc":"Request cancelled by user"}"#;
        let r = parse_stk_query_response(body).unwrap();
        let result = r.result.unwrap();
        assert_eq!(result.code.as_str(), "1032");
        assert_eq!(result.description, "Request cancelled by user");
        let number = parse_stk_query_response(br#"{"ResponseCode":"0","ResultCode":0,"ResultDesc":"ok"}"#).unwrap();
        assert!(number.result.unwrap().code.is_success());
        let sfc = parse_stk_query_response(br#"{"ResultCode":"SFC_IC0003","ResultDesc":"x"}"#).unwrap();
        assert_eq!(sfc.result.unwrap().code.as_str(), "SFC_IC0003");
        let no_result = parse_stk_query_response(br#"{"ResponseCode":"1","ResponseDescription":"x"}"#).unwrap();
        assert!(no_result.result.is_none());
        assert!(parse_stk_query_response(br#"{"ResultDesc":"x"}"#).is_err());
        assert!(parse_stk_query_response(br#"{"ResultCode":{},"ResultDesc":"x"}"#).is_err());
    }
}
