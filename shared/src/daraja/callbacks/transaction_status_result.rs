//! Transaction Status results (same envelope as B2C).

use std::fmt;

use chrono::NaiveDateTime;

use super::result_envelope::{is_placeholder_transaction_id, parse_result_envelope, ResultEnvelope, ResultItem};
use crate::daraja::errors::{sanitize_remote_text, ParseError};
use crate::daraja::timestamp::parse_daraja_timestamp;
use crate::domain::amount::DarajaAmountError;
use crate::domain::{Amount, DarajaResult};

/// ResultCode for "no such transaction".
pub const TRANSACTION_NOT_FOUND: u64 = 2032;

/// `Debug` masks phone-like digits in the party names.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TransactionStatusParameters {
    /// `TransactionStatus`: `Completed`, `Cancelled`, `Declined`, `Expired`, ... as sent.
    pub status: Option<String>,
    pub amount: Option<Result<Amount, DarajaAmountError>>,
    /// `ReceiptNo`.
    pub receipt: Option<String>,
    /// Personal data when the party is a person.
    pub debit_party_name: Option<String>,
    pub credit_party_name: Option<String>,
    /// `InitiatedTime` (`YYYYMMDDHHmmss`, Nairobi).
    pub initiated_at: Option<NaiveDateTime>,
    /// `FinalisedTime` (`YYYYMMDDHHmmss`, Nairobi).
    pub finalised_at: Option<NaiveDateTime>,
    pub reason_type: Option<String>,
    pub transaction_reason: Option<String>,
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    /// Every `ResultParameter`, as sent.
    pub items: Vec<ResultItem>,
}

impl fmt::Debug for TransactionStatusParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |v: &Option<String>| v.as_deref().map(|v| sanitize_remote_text(v, 200));
        f.debug_struct("TransactionStatusParameters")
            .field("status", &self.status)
            .field("amount", &self.amount)
            .field("receipt", &self.receipt)
            .field("debit_party_name", &masked(&self.debit_party_name))
            .field("credit_party_name", &masked(&self.credit_party_name))
            .field("initiated_at", &self.initiated_at)
            .field("finalised_at", &self.finalised_at)
            .field("reason_type", &self.reason_type)
            .field("transaction_reason", &self.transaction_reason)
            .field("originator_conversation_id", &self.originator_conversation_id)
            .field("conversation_id", &self.conversation_id)
            .field("items", &self.items)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStatusResult {
    pub result_type: Option<String>,
    pub result: DarajaResult,
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub transaction_id: Option<String>,
    pub params: TransactionStatusParameters,
    pub reference_items: Vec<ResultItem>,
}

impl TransactionStatusResult {
    /// ResultCode 2032: Daraja does not know the transaction.
    pub fn is_not_found(&self) -> bool {
        self.result.code.numeric() == Some(TRANSACTION_NOT_FOUND)
    }

    /// The query succeeded and the transaction is `Completed`.
    pub fn is_completed(&self) -> bool {
        self.result.code.is_success()
            && self
                .params
                .status
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("completed"))
    }
}

pub fn parse_transaction_status_result(body: &[u8]) -> Result<TransactionStatusResult, ParseError> {
    let envelope = parse_result_envelope(body)?;
    let text = |key: &str| envelope.parameter_value(key).map(str::to_owned);
    let time = |key: &str| envelope.parameter_value(key).and_then(parse_daraja_timestamp);
    let params = TransactionStatusParameters {
        status: text("TransactionStatus"),
        amount: envelope.parameter_value("Amount").map(Amount::parse_daraja_literal),
        receipt: text("ReceiptNo"),
        debit_party_name: text("DebitPartyName"),
        credit_party_name: text("CreditPartyName"),
        initiated_at: time("InitiatedTime"),
        finalised_at: time("FinalisedTime"),
        reason_type: text("ReasonType"),
        transaction_reason: text("TransactionReason"),
        originator_conversation_id: text("OriginatorConversationID"),
        conversation_id: text("ConversationID"),
        items: envelope.parameters.clone(),
    };
    let ResultEnvelope {
        result_type,
        result,
        originator_conversation_id,
        conversation_id,
        transaction_id,
        reference_items,
        ..
    } = envelope;
    Ok(TransactionStatusResult {
        result_type,
        result,
        originator_conversation_id,
        conversation_id,
        transaction_id: transaction_id.filter(|id| !is_placeholder_transaction_id(id)),
        params,
        reference_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const COMPLETED: &str = r#"{"Result":{"ConversationID":"AG_20261121_0000","OriginatorConversationID":"1236-7134259-1",
      "ReferenceData":{"ReferenceItem":{"Key":"Occasion"}},
      "ResultCode":0,"ResultDesc":"The service request is processed successfully.",
      "ResultParameters":{"ResultParameter":[
        {"Key":"DebitPartyName","Value":"600992 - Safaricom Daraja"},
        {"Key":"CreditPartyName","Value":"254712345678 - JANE DOE"},
        {"Key":"OriginatorConversationID","Value":"payout-01J"},
        {"Key":"InitiatedTime","Value":20261121144850},
        {"Key":"DebitAccountType","Value":"Utility Account"},
        {"Key":"DebitPartyCharges"},
        {"Key":"TransactionReason"},
        {"Key":"ReasonType","Value":"Business Payment to Individual via API"},
        {"Key":"TransactionStatus","Value":"Completed"},
        {"Key":"FinalisedTime","Value":20261121144852},
        {"Key":"Amount","Value":500.0},
        {"Key":"ConversationID","Value":"AG_20261121_1"},
        {"Key":"ReceiptNo","Value":"TKL632NMUA"}]},
      "ResultType":0,"TransactionID":"TKL6ABC123"}}"#;

    #[test]
    fn parses_a_completed_status() {
        let r = parse_transaction_status_result(COMPLETED.as_bytes()).unwrap();
        assert!(r.is_completed());
        assert!(!r.is_not_found());
        let p = &r.params;
        assert_eq!(p.status.as_deref(), Some("Completed"));
        assert_eq!(p.amount, Some(Ok(Amount::new(500).unwrap())));
        assert_eq!(p.receipt.as_deref(), Some("TKL632NMUA"));
        assert_eq!(p.debit_party_name.as_deref(), Some("600992 - Safaricom Daraja"));
        assert_eq!(p.credit_party_name.as_deref(), Some("254712345678 - JANE DOE"));
        assert_eq!(p.originator_conversation_id.as_deref(), Some("payout-01J"));
        let finalised = NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(14, 48, 52)
            .unwrap();
        assert_eq!(p.finalised_at, Some(finalised));
        assert!(p.initiated_at.is_some());
        assert_eq!(p.transaction_reason, None);
        assert_eq!(r.reference_items[0].value, None);
        assert!(!format!("{r:?}").contains("254712345678"));
    }

    #[test]
    fn not_found_is_2032() {
        let body = r#"{"Result":{"ResultType":0,"ResultCode":2032,"ResultDesc":"The transaction receipt number does not exist.",
            "OriginatorConversationID":"o","ConversationID":"c","TransactionID":"OAK0000000"}}"#;
        let r = parse_transaction_status_result(body.as_bytes()).unwrap();
        assert!(r.is_not_found());
        assert!(!r.is_completed());
        assert_eq!(r.transaction_id, None);
        let string_code = body.replace("2032,", "\"2032\",");
        assert!(parse_transaction_status_result(string_code.as_bytes())
            .unwrap()
            .is_not_found());
    }
}
