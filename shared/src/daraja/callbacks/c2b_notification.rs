//! C2B validation and confirmation requests (one body for both).

use std::fmt;

use crate::daraja::errors::{redact_id, ParseError};
use crate::daraja::json;
use crate::daraja::money::{KesDecimal, MoneyError};
use crate::daraja::timestamp::parse_daraja_timestamp;
use crate::domain::amount::DarajaAmountError;
use crate::domain::msisdn::mask_phone_like;
use crate::domain::Amount;
use chrono::NaiveDateTime;

/// A C2B payment notification. Every field is text as sent; `""` and `null` are `None`.
/// `Debug` masks the MSISDN and the names.
#[derive(Clone, PartialEq, Eq)]
pub struct C2bNotification {
    /// `Pay Bill`, `Buy Goods`, `CustomerPayBillOnline`, ... as sent.
    pub transaction_type: Option<String>,
    /// `TransID`: the receipt, the key to de-duplicate (an STK payment to a paybill with C2B URLs
    /// also produces a confirmation for the same receipt).
    pub trans_id: String,
    /// `TransTime`, `YYYYMMDDHHmmss` Nairobi local time, as sent.
    pub trans_time: Option<String>,
    /// `TransAmount` (`"500.00"` is 500); a fraction or garbage is kept as an error for the
    /// caller to flag. `None` when absent or empty.
    pub trans_amount: Option<Result<Amount, DarajaAmountError>>,
    pub business_short_code: Option<String>,
    pub bill_ref_number: Option<String>,
    pub invoice_number: Option<String>,
    pub org_account_balance: Option<String>,
    pub third_party_trans_id: Option<String>,
    /// As given: a SHA-256 hash (v1; its length is not checked: published samples are 62 hex
    /// characters) or a masked number such as `2547 ***** 126` (v2). Never validated.
    pub msisdn: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
}

impl C2bNotification {
    pub fn trans_time_nairobi(&self) -> Option<NaiveDateTime> {
        self.trans_time.as_deref().and_then(parse_daraja_timestamp)
    }

    /// `OrgAccountBalance` exactly, when present.
    pub fn org_account_balance_kes(&self) -> Option<Result<KesDecimal, MoneyError>> {
        self.org_account_balance.as_deref().map(KesDecimal::parse_literal)
    }
}

impl fmt::Debug for C2bNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |v: &Option<String>| {
            v.as_deref()
                .map(|s| if s.is_empty() { String::new() } else { "***".into() })
        };
        f.debug_struct("C2bNotification")
            .field("transaction_type", &self.transaction_type)
            .field("trans_id", &self.trans_id)
            .field("trans_time", &self.trans_time)
            .field("trans_amount", &self.trans_amount)
            .field("business_short_code", &self.business_short_code)
            .field("bill_ref_number", &self.bill_ref_number.as_deref().map(redact_id))
            .field("invoice_number", &self.invoice_number)
            .field("org_account_balance", &self.org_account_balance)
            .field("third_party_trans_id", &self.third_party_trans_id)
            .field("msisdn", &self.msisdn.as_deref().map(mask_phone_like))
            .field("first_name", &masked(&self.first_name))
            .field("middle_name", &masked(&self.middle_name))
            .field("last_name", &masked(&self.last_name))
            .finish()
    }
}

/// Parses a C2B validation or confirmation body. Only `TransID` is required.
pub fn parse_c2b_notification(body: &[u8]) -> Result<C2bNotification, ParseError> {
    let root = json::root(body)?;
    Ok(C2bNotification {
        transaction_type: root.text("TransactionType")?,
        trans_id: root.required_text("TransID")?,
        trans_time: root.text("TransTime")?,
        trans_amount: root
            .text("TransAmount")?
            .map(|text| Amount::parse_daraja_literal(&text)),
        business_short_code: root.text("BusinessShortCode")?,
        bill_ref_number: root.text("BillRefNumber")?,
        invoice_number: root.text("InvoiceNumber")?,
        org_account_balance: root.text("OrgAccountBalance")?,
        third_party_trans_id: root.text("ThirdPartyTransID")?,
        msisdn: root.text("MSISDN")?,
        first_name: root.text("FirstName")?,
        middle_name: root.text("MiddleName")?,
        last_name: root.text("LastName")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's sample (v2, masked MSISDN).
    const GUIDE: &str = r#"{ "TransactionType": "Pay Bill", "TransID": "TKL51ZDR4F", "TransTime": "20261121121325", "TransAmount": "500.00",
  "BusinessShortCode": "600984", "BillRefNumber": "INV-2231", "InvoiceNumber": "", "OrgAccountBalance": "",
  "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": "" }"#;

    #[test]
    fn parses_the_guides_sample() {
        let n = parse_c2b_notification(GUIDE.as_bytes()).unwrap();
        assert_eq!(n.transaction_type.as_deref(), Some("Pay Bill"));
        assert_eq!(n.trans_id, "TKL51ZDR4F");
        assert_eq!(n.trans_time.as_deref(), Some("20261121121325"));
        assert!(n.trans_time_nairobi().is_some());
        assert_eq!(n.trans_amount, Some(Ok(Amount::new(500).unwrap())));
        assert_eq!(n.business_short_code.as_deref(), Some("600984"));
        assert_eq!(n.bill_ref_number.as_deref(), Some("INV-2231"));
        assert_eq!(n.invoice_number, None);
        assert_eq!(n.org_account_balance, None);
        assert_eq!(n.third_party_trans_id, None);
        assert_eq!(n.msisdn.as_deref(), Some("2547 ***** 126"));
        assert_eq!(n.first_name.as_deref(), Some("JANE"));
        assert_eq!((n.middle_name, n.last_name), (None, None));
    }

    #[test]
    fn v1_hash_is_stored_as_given_and_nulls_are_none() {
        // A published sample hash is 62 hex characters: never validated.
        let hash = "2f5b5e5d0e9bb7d7b6c6b2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2";
        assert_eq!(hash.len(), 62);
        let body = GUIDE
            .replace("2547 ***** 126", hash)
            .replace(r#""InvoiceNumber": """#, r#""InvoiceNumber": null"#);
        let n = parse_c2b_notification(body.as_bytes()).unwrap();
        assert_eq!(n.msisdn.as_deref(), Some(hash));
        assert_eq!(n.invoice_number, None);
        assert!(!format!("{n:?}").contains(hash));
        assert!(!format!("{n:?}").contains("JANE"));
    }

    #[test]
    fn fractional_amounts_are_kept_as_errors() {
        let body = GUIDE.replace("500.00", "500.50");
        let n = parse_c2b_notification(body.as_bytes()).unwrap();
        assert_eq!(n.trans_amount, Some(Err(DarajaAmountError::Fractional)));
        let empty = GUIDE.replace(r#""500.00""#, r#""""#);
        assert_eq!(parse_c2b_notification(empty.as_bytes()).unwrap().trans_amount, None);
        let balance = GUIDE.replace(r#""OrgAccountBalance": """#, r#""OrgAccountBalance": "49197.00""#);
        let n = parse_c2b_notification(balance.as_bytes()).unwrap();
        assert_eq!(n.org_account_balance_kes(), Some(Ok(KesDecimal::from_cents(4_919_700))));
    }

    #[test]
    fn needs_a_trans_id() {
        assert!(parse_c2b_notification(GUIDE.replace("TKL51ZDR4F", "").as_bytes()).is_err());
        assert!(parse_c2b_notification(b"{}").is_err());
        assert!(parse_c2b_notification(br#"{"TransID":"X","FirstName":{"a":1}}"#).is_err());
    }
}
