//! The deterministic scenario table: the customer's phone number decides the outcome.
//!
//! `2547000` + a five-digit result code yields that code (`254700001032` → 1032). Codes 90000+
//! are the special behaviours listed in [`SPECIALS`]. `254708374149` (the public sandbox number)
//! never answers its STK prompt. Every other valid number succeeds.

use serde::{Deserialize, Serialize};

use crate::test_credentials::SANDBOX_TEST_MSISDN;

/// How the asynchronous outcome is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// POST the result / callback.
    Send,
    /// POST nothing at all.
    Drop,
    /// POST a queue-timeout notice to QueueTimeOutURL instead of a result (B2C and friends).
    QueueTimeout,
}

/// The decided outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub result_code: String,
    pub result_desc: String,
    pub delivery: Delivery,
    pub money_moves: bool,
    /// Whether M-Pesa's core saw the transaction (Transaction Status answers 2032 otherwise).
    pub reached_core: bool,
    /// STK: the outcome only settles when the prompt expires (unreachable phone).
    pub at_prompt_lifetime: bool,
    /// Why: `scenario`, `forced`, `credential`, `product_mismatch`, `text_too_long`, ...
    pub source: String,
    /// Overrides the configured callback delay.
    pub delay_ms: Option<u64>,
}

impl Plan {
    pub fn new(kind: Flow, code: &str, delivery: Delivery, source: &str) -> Plan {
        Plan {
            result_code: code.to_string(),
            result_desc: describe(kind, code),
            delivery,
            money_moves: code == "0",
            reached_core: true,
            at_prompt_lifetime: false,
            source: source.to_string(),
            delay_ms: None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.result_code == "0"
    }
}

/// The product whose table applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Stk,
    B2c,
    C2b,
}

/// Special numbers (`25470009xxxx`): (code, what happens).
pub const SPECIALS: [(u32, &str); 5] = [
    (
        90001,
        "unreachable: STK no callback, Query 'being processed' until the prompt expires, then 1037; B2C money moves, no result POST",
    ),
    (
        90002,
        "B2C queue-timeout POST and the money moves; STK/C2B success but the callback/confirmation is never sent",
    ),
    (90003, "ResultCode SFC_IC0003"),
    (90004, "B2C queue-timeout POST and the money does NOT move (Transaction Status 2032)"),
    (90005, "B2C nothing POSTed and no money moves (Transaction Status 2032)"),
];

/// The code encoded in a `2547000xxxxx` number.
pub fn table_code(msisdn: &str) -> Option<u32> {
    if msisdn.len() == 12 && msisdn.starts_with("2547000") && msisdn.bytes().all(|b| b.is_ascii_digit()) {
        msisdn[7..].parse().ok()
    } else {
        None
    }
}

pub fn stk(msisdn: &str) -> Plan {
    if msisdn == SANDBOX_TEST_MSISDN {
        return Plan::new(Flow::Stk, "1037", Delivery::Send, "sandbox_test_number");
    }
    match table_code(msisdn) {
        Some(90001) => Plan {
            at_prompt_lifetime: true,
            ..Plan::new(Flow::Stk, "1037", Delivery::Drop, "scenario")
        },
        Some(90002) => Plan::new(Flow::Stk, "0", Delivery::Drop, "scenario"),
        Some(90003) => Plan::new(Flow::Stk, "SFC_IC0003", Delivery::Send, "scenario"),
        Some(n) if n < 90000 => Plan::new(Flow::Stk, &n.to_string(), Delivery::Send, "scenario"),
        _ => Plan::new(Flow::Stk, "0", Delivery::Send, "default"),
    }
}

pub fn b2c(msisdn: &str) -> Plan {
    match table_code(msisdn) {
        Some(90001) => Plan::new(Flow::B2c, "0", Delivery::Drop, "scenario"),
        Some(90002) => Plan::new(Flow::B2c, "0", Delivery::QueueTimeout, "scenario"),
        Some(90003) => Plan::new(Flow::B2c, "SFC_IC0003", Delivery::Send, "scenario"),
        Some(90004) => Plan {
            money_moves: false,
            reached_core: false,
            ..Plan::new(Flow::B2c, "0", Delivery::QueueTimeout, "scenario")
        },
        Some(90005) => Plan {
            money_moves: false,
            reached_core: false,
            ..Plan::new(Flow::B2c, "0", Delivery::Drop, "scenario")
        },
        Some(n) if n < 90000 => Plan::new(Flow::B2c, &n.to_string(), Delivery::Send, "scenario"),
        _ => Plan::new(Flow::B2c, "0", Delivery::Send, "default"),
    }
}

pub fn c2b(msisdn: &str) -> Plan {
    match table_code(msisdn) {
        Some(90002) => Plan::new(Flow::C2b, "0", Delivery::Drop, "scenario"),
        Some(90003) => Plan::new(Flow::C2b, "SFC_IC0003", Delivery::Send, "scenario"),
        Some(n) if n < 90000 => Plan::new(Flow::C2b, &n.to_string(), Delivery::Send, "scenario"),
        _ => Plan::new(Flow::C2b, "0", Delivery::Send, "default"),
    }
}

/// ResultDesc for a code. Wording follows Daraja where known; the product must never branch on it.
pub fn describe(flow: Flow, code: &str) -> String {
    let s = match (flow, code) {
        (_, "0") => "The service request is processed successfully.",
        (_, "1") => "The balance is insufficient for the transaction.",
        (_, "2") => "Declined due to limit rule: less than the minimum transaction amount.",
        (_, "3") => "Declined due to limit rule: greater than the maximum transaction amount.",
        (_, "4") => "Declined due to limit rule: would exceed daily transfer limit.",
        (_, "8") => "Declined due to limit rule: would exceed the maximum balance.",
        (_, "11") => "The DebitParty is in an invalid state.",
        (_, "17") => "Rule limited.",
        (_, "21") => "The initiator is not allowed to initiate this request.",
        (_, "1001") => "Unable to lock subscriber, a transaction is already in process for the current subscriber",
        (_, "1019") => "Transaction has expired",
        (_, "1025") | (_, "9999") => "An error occurred while sending a push request",
        (_, "1032") => "Request cancelled by user",
        (_, "1036") => "SMSC ACK timeout.",
        (_, "1037") => "DS timeout user cannot be reached",
        (Flow::Stk, "2001") => "The initiator information is invalid.",
        (_, "2001") => "The initiator information is invalid.",
        (_, "2006") => "Declined due to account rule: The account status does not allow this transaction.",
        (_, "2028") => "The request is not permitted according to product assignment.",
        (_, "2032") => "The transaction receipt number does not exist.",
        (_, "2040") => {
            "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service."
        }
        (_, "8006") => "The security credential is locked.",
        (_, "SFC_IC0003") => "The operator does not exist.",
        (_, "R000001") => "The transaction has already been reversed.",
        (_, "R000002") => "The OriginalTransactionID is invalid.",
        (_, other) => return format!("Simulated result code {other}."),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(stk("254700001032").result_code, "1032");
        assert_eq!(stk("254700000000").result_code, "0");
        assert_eq!(stk("254712345678").result_code, "0");
        assert_eq!(stk("254708374149").result_code, "1037");
        assert_eq!(stk("254700090003").result_code, "SFC_IC0003");
        let u = stk("254700090001");
        assert!(u.at_prompt_lifetime && u.delivery == Delivery::Drop);
        assert_eq!(b2c("254708374149").result_code, "0");
        assert!(!b2c("254700090004").money_moves);
        assert!(b2c("254700090002").money_moves);
        assert_eq!(b2c("254700002040").result_code, "2040");
    }
}
