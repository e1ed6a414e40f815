//! The STK Push callback (POSTed to CallBackURL, unsigned).

use std::fmt;

use chrono::NaiveDateTime;
use serde_json::value::RawValue;

use crate::daraja::errors::{redact_id, ParseError};
use crate::daraja::json::{self, Kind};
use crate::daraja::stk::result_code;
use crate::daraja::timestamp::parse_daraja_timestamp;
use crate::domain::amount::DarajaAmountError;
use crate::domain::msisdn::mask_phone_like;
use crate::domain::{Amount, DarajaResult};

/// An STK callback, success or failure. Match it on `checkout_request_id` (AccountReference is
/// not echoed). `Debug` masks the phone and the CheckoutRequestID.
#[derive(Clone, PartialEq, Eq)]
pub struct StkCallback {
    /// `""` when Daraja left it out.
    pub merchant_request_id: String,
    pub checkout_request_id: String,
    /// ResultCode (number or string, verbatim) and ResultDesc (never branch on it).
    pub result: DarajaResult,
    /// `MpesaReceiptNumber`.
    pub receipt: Option<String>,
    /// `Amount`: `100`, `100.0` and `"100.00"` are 100; a fraction or garbage is kept as an
    /// error for the caller to flag. `None` when there is no Amount item.
    pub amount: Option<Result<Amount, DarajaAmountError>>,
    /// `TransactionDate` as its literal text (`20261121143032`, Nairobi local time).
    pub transaction_date: Option<String>,
    /// `PhoneNumber` as its literal text. Personal data.
    pub phone: Option<String>,
    /// `Balance`, usually without a value.
    pub balance: Option<String>,
}

impl StkCallback {
    /// ResultCode 0: paid. Any other code, known or not, is not a success.
    pub fn is_success(&self) -> bool {
        self.result.code.is_success()
    }

    /// `TransactionDate` read as Nairobi local time.
    pub fn transaction_date_nairobi(&self) -> Option<NaiveDateTime> {
        self.transaction_date.as_deref().and_then(parse_daraja_timestamp)
    }
}

impl fmt::Debug for StkCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StkCallback")
            .field("merchant_request_id", &self.merchant_request_id)
            .field("checkout_request_id", &redact_id(&self.checkout_request_id))
            .field("result", &self.result)
            .field("receipt", &self.receipt)
            .field("amount", &self.amount)
            .field("transaction_date", &self.transaction_date)
            .field("phone", &self.phone.as_deref().map(mask_phone_like))
            .field("balance", &self.balance)
            .finish()
    }
}

/// Parses `{"Body": {"stkCallback": {MerchantRequestID, CheckoutRequestID, ResultCode, ResultDesc,
/// CallbackMetadata?: {Item: [{Name, Value?}, ...]}}}}`. Items are found by `Name` in any order;
/// a name sent twice with different values is refused.
pub fn parse_stk_callback(body: &[u8]) -> Result<StkCallback, ParseError> {
    let root = json::root(body)?;
    let callback = root.required_object("Body")?.required_object("stkCallback")?;
    let code_raw = callback
        .get("ResultCode")
        .ok_or(ParseError::Missing { field: "ResultCode" })?;
    let mut parsed = StkCallback {
        merchant_request_id: callback.text("MerchantRequestID")?.unwrap_or_default(),
        checkout_request_id: callback.required_text("CheckoutRequestID")?,
        result: DarajaResult {
            code: result_code(code_raw, "ResultCode")?,
            description: callback.text("ResultDesc")?.unwrap_or_default(),
        },
        receipt: None,
        amount: None,
        transaction_date: None,
        phone: None,
        balance: None,
    };
    let Some(metadata) = callback.object("CallbackMetadata")? else {
        return Ok(parsed);
    };
    let Some(items) = metadata.get("Item") else {
        return Ok(parsed);
    };
    let mut seen: Vec<(&str, Option<&RawValue>)> = Vec::new();
    for item in json::one_or_many(items, "Item")? {
        let Some(name_raw) = item.get("Name") else { continue };
        if json::kind(name_raw) != Kind::String {
            return Err(ParseError::WrongType {
                field: "Item.Name",
                expected: "a string",
            });
        }
        let value = item.get("Value").filter(|v| json::kind(v) != Kind::Null);
        let name = match name_raw.get().trim() {
            "\"Amount\"" => "Amount",
            "\"MpesaReceiptNumber\"" => "MpesaReceiptNumber",
            "\"TransactionDate\"" => "TransactionDate",
            "\"PhoneNumber\"" => "PhoneNumber",
            "\"Balance\"" => "Balance",
            _ => continue,
        };
        if let Some((_, earlier)) = seen.iter().find(|(n, _)| *n == name) {
            if earlier.map(|v| v.get().trim()) != value.map(|v| v.get().trim()) {
                return Err(ParseError::Invalid {
                    field: "CallbackMetadata.Item",
                    reason: "a name appears twice with different values",
                });
            }
            continue;
        }
        seen.push((name, value));
        match name {
            "Amount" => {
                parsed.amount = Some(match value {
                    Some(v) if matches!(json::kind(v), Kind::Number | Kind::String) => {
                        Amount::parse_daraja_literal(v.get())
                    }
                    _ => Err(DarajaAmountError::Malformed),
                });
            }
            "MpesaReceiptNumber" => parsed.receipt = item_text(value, "MpesaReceiptNumber")?,
            "TransactionDate" => parsed.transaction_date = item_text(value, "TransactionDate")?,
            "PhoneNumber" => parsed.phone = item_text(value, "PhoneNumber")?,
            _ => parsed.balance = item_text(value, "Balance")?,
        }
    }
    Ok(parsed)
}

fn item_text(value: Option<&RawValue>, field: &'static str) -> Result<Option<String>, ParseError> {
    match value {
        None => Ok(None),
        Some(raw) => json::text(raw, field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's sample callback.
    const GUIDE_SUCCESS: &str = r#"{ "Body": { "stkCallback": {
  "MerchantRequestID": "ac7b-470b-8df7-23ab3cef38271071873",
  "CheckoutRequestID": "ws_CO_211120261430051234712345678",
  "ResultCode": 0,
  "ResultDesc": "The service request is processed successfully.",
  "CallbackMetadata": { "Item": [
    { "Name": "Amount", "Value": 100 },
    { "Name": "MpesaReceiptNumber", "Value": "TKL4ABC12D" },
    { "Name": "Balance" },
    { "Name": "TransactionDate", "Value": 20261121143032 },
    { "Name": "PhoneNumber", "Value": 254712345678 } ] } } } }"#;

    const GUIDE_CANCELLED: &str = r#"{ "Body": { "stkCallback": {
  "MerchantRequestID": "ac7b-470b-8df7-23ab3cef38271071873",
  "CheckoutRequestID": "ws_CO_211120261430051234712345678",
  "ResultCode": 1032, "ResultDesc": "Request cancelled by user" } } }"#;

    #[test]
    fn parses_the_guides_success() {
        let c = parse_stk_callback(GUIDE_SUCCESS.as_bytes()).unwrap();
        assert!(c.is_success());
        assert_eq!(c.merchant_request_id, "ac7b-470b-8df7-23ab3cef38271071873");
        assert_eq!(c.checkout_request_id, "ws_CO_211120261430051234712345678");
        assert_eq!(c.result.description, "The service request is processed successfully.");
        assert_eq!(c.receipt.as_deref(), Some("TKL4ABC12D"));
        assert_eq!(c.amount, Some(Ok(Amount::new(100).unwrap())));
        assert_eq!(c.transaction_date.as_deref(), Some("20261121143032"));
        assert_eq!(c.phone.as_deref(), Some("254712345678"));
        assert_eq!(c.balance, None);
        assert!(c.transaction_date_nairobi().is_some());
        let printed = format!("{c:?}");
        assert!(
            !printed.contains("254712345678") && !printed.contains("1234712345678"),
            "{printed}"
        );
    }

    #[test]
    fn parses_the_guides_failure_without_metadata() {
        let c = parse_stk_callback(GUIDE_CANCELLED.as_bytes()).unwrap();
        assert!(!c.is_success());
        assert_eq!(c.result.code.numeric(), Some(1032));
        assert_eq!((c.receipt, c.amount, c.phone), (None, None, None));
    }

    #[test]
    fn amounts_in_every_shape_are_exact() {
        for value in ["100", "100.0", "100.00", "\"100.00\"", "\"100\""] {
            let body = GUIDE_SUCCESS.replace(r#""Value": 100 }"#, &format!(r#""Value": {value} }}"#));
            let c = parse_stk_callback(body.as_bytes()).unwrap();
            assert_eq!(c.amount, Some(Ok(Amount::new(100).unwrap())), "{value}");
        }
        let fractional = GUIDE_SUCCESS.replace(r#""Value": 100 }"#, r#""Value": 100.5 }"#);
        assert_eq!(
            parse_stk_callback(fractional.as_bytes()).unwrap().amount,
            Some(Err(DarajaAmountError::Fractional))
        );
        let missing = GUIDE_SUCCESS.replace(r#"{ "Name": "Amount", "Value": 100 }"#, r#"{ "Name": "Amount" }"#);
        assert_eq!(
            parse_stk_callback(missing.as_bytes()).unwrap().amount,
            Some(Err(DarajaAmountError::Malformed))
        );
    }

    #[test]
    fn items_in_any_order_and_codes_as_strings() {
        let body = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"c","ResultCode":"0","ResultDesc":"ok",
            "CallbackMetadata":{"Item":[{"Name":"PhoneNumber","Value":"254712345678"},{"Name":"Balance","Value":"KES 100.00"},
            {"Name":"Unknown","Value":{"x":1}},{"Name":"TransactionDate","Value":20261121143032},
            {"Name":"MpesaReceiptNumber","Value":"TKL4ABC12D"},{"Name":"Amount","Value":1.00}]}}}}"#;
        let c = parse_stk_callback(body.as_bytes()).unwrap();
        assert!(c.is_success());
        assert_eq!(c.amount, Some(Ok(Amount::new(1).unwrap())));
        assert_eq!(c.balance.as_deref(), Some("KES 100.00"));
        assert_eq!(c.phone.as_deref(), Some("254712345678"));
        let sfc = GUIDE_CANCELLED.replace("1032", "\"SFC_IC0003\"");
        assert_eq!(
            parse_stk_callback(sfc.as_bytes()).unwrap().result.code.as_str(),
            "SFC_IC0003"
        );
        // A single Item object is accepted too.
        let single = r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":0,"CallbackMetadata":{"Item":{"Name":"Amount","Value":100}}}}}"#;
        assert_eq!(
            parse_stk_callback(single.as_bytes()).unwrap().amount,
            Some(Ok(Amount::new(100).unwrap()))
        );
    }

    #[test]
    fn refuses_what_cannot_be_matched_or_is_contradictory() {
        for body in [
            r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","ResultCode":0}}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultDesc":"no code"}}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":""}}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":true}}}"#,
            r#"{"Body":{}}"#,
            r#"{"stkCallback":{}}"#,
            r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":0,"CallbackMetadata":{"Item":[
                {"Name":"Amount","Value":100},{"Name":"Amount","Value":1}]}}}}"#,
        ] {
            assert!(parse_stk_callback(body.as_bytes()).is_err(), "{body}");
        }
        let repeated_same = r#"{"Body":{"stkCallback":{"CheckoutRequestID":"c","ResultCode":0,"CallbackMetadata":{"Item":[
                {"Name":"Amount","Value":100},{"Name":"Amount","Value":100}]}}}}"#;
        assert!(parse_stk_callback(repeated_same.as_bytes()).is_ok());
    }
}
