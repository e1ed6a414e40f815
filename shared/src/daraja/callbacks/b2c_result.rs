//! B2C results (POSTed to ResultURL) and queue timeouts (POSTed to QueueTimeOutURL, same envelope).

use std::fmt;

use chrono::NaiveDateTime;

use super::result_envelope::{is_placeholder_transaction_id, parse_result_envelope, ResultEnvelope, ResultItem};
use crate::daraja::errors::{sanitize_remote_text, ParseError};
use crate::daraja::money::{KesDecimal, MoneyError};
use crate::daraja::timestamp::parse_b2c_datetime;
use crate::domain::amount::DarajaAmountError;
use crate::domain::{Amount, DarajaResult};

/// The typed view of B2C's `ResultParameters`. Every item stays available, as sent, in `items`.
/// `Debug` masks the phone inside `receiver_public_name`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B2cResultParameters {
    /// `TransactionAmount`; a fraction or garbage is kept as an error for the caller to flag.
    pub amount: Option<Result<Amount, DarajaAmountError>>,
    /// `TransactionReceipt`.
    pub receipt: Option<String>,
    /// `ReceiverPartyPublicName`, e.g. `254712345678 - JANE DOE`: personal data.
    pub receiver_public_name: Option<String>,
    /// `TransactionCompletedDateTime` (`dd.MM.yyyy HH:mm:ss`, Nairobi local time); `None` when
    /// absent or unreadable (the text stays in `items`).
    pub completed_at: Option<NaiveDateTime>,
    /// `B2CUtilityAccountAvailableFunds`, exact to the cent.
    pub utility_account_funds: Option<Result<KesDecimal, MoneyError>>,
    /// `B2CWorkingAccountAvailableFunds`.
    pub working_account_funds: Option<Result<KesDecimal, MoneyError>>,
    /// `B2CChargesPaidAccountAvailableFunds` (may be negative, e.g. `-110.0`).
    pub charges_paid_account_funds: Option<Result<KesDecimal, MoneyError>>,
    /// `B2CRecipientIsRegisteredCustomer`: `Y` / `N`.
    pub recipient_is_registered: Option<bool>,
    /// Every `ResultParameter`, as sent.
    pub items: Vec<ResultItem>,
}

impl fmt::Debug for B2cResultParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("B2cResultParameters")
            .field("amount", &self.amount)
            .field("receipt", &self.receipt)
            .field(
                "receiver_public_name",
                &self
                    .receiver_public_name
                    .as_deref()
                    .map(|v| sanitize_remote_text(v, 200)),
            )
            .field("completed_at", &self.completed_at)
            .field("utility_account_funds", &self.utility_account_funds)
            .field("working_account_funds", &self.working_account_funds)
            .field("charges_paid_account_funds", &self.charges_paid_account_funds)
            .field("recipient_is_registered", &self.recipient_is_registered)
            .field("items", &self.items)
            .finish()
    }
}

/// A B2C result or queue timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2cResult {
    pub result_type: Option<String>,
    pub result: DarajaResult,
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    /// `TransactionID` when it is a real receipt; `None` for absent or placeholder ids.
    pub transaction_id: Option<String>,
    pub params: B2cResultParameters,
    pub reference_items: Vec<ResultItem>,
}

impl B2cResult {
    /// ResultCode 0: the customer was paid.
    pub fn is_success(&self) -> bool {
        self.result.code.is_success()
    }

    /// The receipt of a successful payout (`TransactionReceipt`, else `TransactionID`).
    pub fn receipt(&self) -> Option<&str> {
        if !self.is_success() {
            return None;
        }
        self.params.receipt.as_deref().or(self.transaction_id.as_deref())
    }
}

/// Parses a B2C result or queue timeout. A timeout is not a failure: money may have moved;
/// confirm with Transaction Status.
pub fn parse_b2c_result(body: &[u8]) -> Result<B2cResult, ParseError> {
    let envelope = parse_result_envelope(body)?;
    let params = B2cResultParameters {
        amount: envelope
            .parameter_value("TransactionAmount")
            .map(Amount::parse_daraja_literal),
        receipt: text(&envelope, "TransactionReceipt"),
        receiver_public_name: text(&envelope, "ReceiverPartyPublicName"),
        completed_at: envelope
            .parameter_value("TransactionCompletedDateTime")
            .and_then(parse_b2c_datetime),
        utility_account_funds: money(&envelope, "B2CUtilityAccountAvailableFunds"),
        working_account_funds: money(&envelope, "B2CWorkingAccountAvailableFunds"),
        charges_paid_account_funds: money(&envelope, "B2CChargesPaidAccountAvailableFunds"),
        recipient_is_registered: envelope
            .parameter_value("B2CRecipientIsRegisteredCustomer")
            .and_then(|v| match v.trim().to_ascii_uppercase().as_str() {
                "Y" | "YES" | "TRUE" => Some(true),
                "N" | "NO" | "FALSE" => Some(false),
                _ => None,
            }),
        items: envelope.parameters.clone(),
    };
    let transaction_id = envelope.transaction_id.filter(|id| !is_placeholder_transaction_id(id));
    Ok(B2cResult {
        result_type: envelope.result_type,
        result: envelope.result,
        originator_conversation_id: envelope.originator_conversation_id,
        conversation_id: envelope.conversation_id,
        transaction_id,
        params,
        reference_items: envelope.reference_items,
    })
}

fn text(envelope: &ResultEnvelope, key: &str) -> Option<String> {
    envelope.parameter_value(key).map(str::to_owned)
}

fn money(envelope: &ResultEnvelope, key: &str) -> Option<Result<KesDecimal, MoneyError>> {
    envelope.parameter_value(key).map(KesDecimal::parse_literal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// The guide's sample result.
    pub(crate) const GUIDE_RESULT: &str = r#"{ "Result": { "ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
  "OriginatorConversationID": "payout-01J", "ConversationID": "AG_20261121_00004e4d7b3b0d6fa5e4", "TransactionID": "TKL632NMUA",
  "ResultParameters": { "ResultParameter": [
    { "Key": "TransactionAmount", "Value": 500 }, { "Key": "TransactionReceipt", "Value": "TKL632NMUA" },
    { "Key": "ReceiverPartyPublicName", "Value": "254712345678 - JANE DOE" },
    { "Key": "TransactionCompletedDateTime", "Value": "21.11.2026 14:48:52" },
    { "Key": "B2CUtilityAccountAvailableFunds", "Value": 10116.0 },
    { "Key": "B2CWorkingAccountAvailableFunds", "Value": 900000.0 },
    { "Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y" },
    { "Key": "B2CChargesPaidAccountAvailableFunds", "Value": -110.0 } ] },
  "ReferenceData": { "ReferenceItem": { "Key": "QueueTimeoutURL", "Value": "https://api.example.com/callbacks/b2c/timeout/t" } } } }"#;

    #[test]
    fn parses_the_guides_success() {
        let r = parse_b2c_result(GUIDE_RESULT.as_bytes()).unwrap();
        assert!(r.is_success());
        assert_eq!(r.result_type.as_deref(), Some("0"));
        assert_eq!(r.originator_conversation_id.as_deref(), Some("payout-01J"));
        assert_eq!(r.conversation_id.as_deref(), Some("AG_20261121_00004e4d7b3b0d6fa5e4"));
        assert_eq!(r.transaction_id.as_deref(), Some("TKL632NMUA"));
        assert_eq!(r.receipt(), Some("TKL632NMUA"));
        let p = &r.params;
        assert_eq!(p.amount, Some(Ok(Amount::new(500).unwrap())));
        assert_eq!(p.receipt.as_deref(), Some("TKL632NMUA"));
        assert_eq!(p.receiver_public_name.as_deref(), Some("254712345678 - JANE DOE"));
        let when = NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(14, 48, 52)
            .unwrap();
        assert_eq!(p.completed_at, Some(when));
        assert_eq!(p.utility_account_funds, Some(Ok(KesDecimal::from_cents(1_011_600))));
        assert_eq!(p.working_account_funds, Some(Ok(KesDecimal::from_cents(90_000_000))));
        assert_eq!(p.charges_paid_account_funds, Some(Ok(KesDecimal::from_cents(-11_000))));
        assert_eq!(p.recipient_is_registered, Some(true));
        assert_eq!(p.items.len(), 8);
        assert_eq!(r.reference_items.len(), 1);
        assert_eq!(r.reference_items[0].key, "QueueTimeoutURL");
        let printed = format!("{r:?}");
        assert!(!printed.contains("254712345678"), "{printed}");
        assert!(printed.contains("JANE DOE"));
    }

    #[test]
    fn single_parameter_object_and_items_without_value() {
        let body = r#"{"Result":{"ResultType":"0","ResultCode":"0","ResultDesc":"ok","OriginatorConversationID":"o","ConversationID":"c","TransactionID":"TKL632NMUA",
            "ResultParameters":{"ResultParameter":{"Key":"TransactionAmount","Value":"500.00"}},
            "ReferenceData":{"ReferenceItem":{"Key":"QueueTimeoutURL"}}}}"#;
        let r = parse_b2c_result(body.as_bytes()).unwrap();
        assert_eq!(r.params.amount, Some(Ok(Amount::new(500).unwrap())));
        assert_eq!(r.params.items.len(), 1);
        assert_eq!(r.reference_items[0].value, None);
        assert_eq!(r.params.utility_account_funds, None);
    }

    #[test]
    fn failure_without_parameters_and_with_a_placeholder_id() {
        let body = r#"{"Result":{"ResultType":0,"ResultCode":2001,"ResultDesc":"The initiator information is invalid.",
            "OriginatorConversationID":"o","ConversationID":"AG_x","TransactionID":"LHG0000000",
            "ReferenceData":{"ReferenceItem":{"Key":"QueueTimeoutURL","Value":"https://x"}}}}"#;
        let r = parse_b2c_result(body.as_bytes()).unwrap();
        assert!(!r.is_success());
        assert_eq!(r.result.code.numeric(), Some(2001));
        assert_eq!(r.transaction_id, None);
        assert_eq!(r.receipt(), None);
        assert_eq!(r.params, B2cResultParameters::default());
        let sfc = body.replace("2001", "\"SFC_IC0003\"");
        assert_eq!(
            parse_b2c_result(sfc.as_bytes()).unwrap().result.code.as_str(),
            "SFC_IC0003"
        );
    }

    #[test]
    fn queue_timeout_uses_the_same_envelope() {
        let body = r#"{"Result":{"ResultType":1,"ResultCode":1,"ResultDesc":"The request timed out in the queue.",
            "OriginatorConversationID":"payout-01J","ConversationID":"AG_20261121_1","TransactionID":""}}"#;
        let r = parse_b2c_result(body.as_bytes()).unwrap();
        assert_eq!(r.originator_conversation_id.as_deref(), Some("payout-01J"));
        assert_eq!(r.transaction_id, None);
        assert_eq!(r.result_type.as_deref(), Some("1"));
    }

    #[test]
    fn odd_values_are_kept_as_errors_not_guessed() {
        let body = r#"{"Result":{"ResultCode":0,"ResultDesc":"ok","ConversationID":"c",
            "ResultParameters":{"ResultParameter":[{"Key":"TransactionAmount","Value":500.5},
            {"Key":"B2CUtilityAccountAvailableFunds","Value":"1.005"},{"Key":"TransactionCompletedDateTime","Value":"2026-11-21"},
            {"Key":"B2CRecipientIsRegisteredCustomer","Value":"maybe"}]}}}"#;
        let p = parse_b2c_result(body.as_bytes()).unwrap().params;
        assert_eq!(p.amount, Some(Err(DarajaAmountError::Fractional)));
        assert_eq!(p.utility_account_funds, Some(Err(MoneyError::SubCent)));
        assert_eq!(p.completed_at, None);
        assert_eq!(p.recipient_is_registered, None);
    }
}
