//! The bodies our callback endpoints answer Safaricom with (HTTP 200, after the callback is durable).

use serde_json::json;

/// STK callback accepted.
pub const STK_CALLBACK_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;
/// C2B confirmation received.
pub const C2B_CONFIRMATION_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Success"}"#;
/// B2C / Transaction Status result or queue timeout received (Daraja only needs a 200).
pub const B2C_RESULT_ACK: &str = r#"{"ResultCode":0,"ResultDesc":"Accepted"}"#;

/// Why a C2B payment is refused at validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum C2bRejection {
    /// `C2B00011`
    InvalidMsisdn,
    /// `C2B00012`
    InvalidAccountNumber,
    /// `C2B00013`
    InvalidAmount,
    /// `C2B00014`
    InvalidKyc,
    /// `C2B00015`
    InvalidShortcode,
    /// `C2B00016`
    Other,
}

impl C2bRejection {
    pub fn code(self) -> &'static str {
        match self {
            C2bRejection::InvalidMsisdn => "C2B00011",
            C2bRejection::InvalidAccountNumber => "C2B00012",
            C2bRejection::InvalidAmount => "C2B00013",
            C2bRejection::InvalidKyc => "C2B00014",
            C2bRejection::InvalidShortcode => "C2B00015",
            C2bRejection::Other => "C2B00016",
        }
    }
}

/// Our answer to a C2B validation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum C2bValidationReply {
    Accept,
    Reject(C2bRejection),
}

impl C2bValidationReply {
    /// `{"ResultCode":"0","ResultDesc":"Accepted"}` or `{"ResultCode":"C2B00012","ResultDesc":"Rejected"}`.
    pub fn body(self) -> String {
        match self {
            C2bValidationReply::Accept => json!({"ResultCode": "0", "ResultDesc": "Accepted"}).to_string(),
            C2bValidationReply::Reject(reason) => {
                json!({"ResultCode": reason.code(), "ResultDesc": "Rejected"}).to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn replies_are_exactly_what_daraja_expects() {
        let stk: Value = serde_json::from_str(STK_CALLBACK_ACK).unwrap();
        assert_eq!(stk, json!({"ResultCode": 0, "ResultDesc": "Accepted"}));
        let confirmation: Value = serde_json::from_str(C2B_CONFIRMATION_ACK).unwrap();
        assert_eq!(confirmation, json!({"ResultCode": 0, "ResultDesc": "Success"}));
        let accept: Value = serde_json::from_str(&C2bValidationReply::Accept.body()).unwrap();
        assert_eq!(accept, json!({"ResultCode": "0", "ResultDesc": "Accepted"}));
        let all = [
            (C2bRejection::InvalidMsisdn, "C2B00011"),
            (C2bRejection::InvalidAccountNumber, "C2B00012"),
            (C2bRejection::InvalidAmount, "C2B00013"),
            (C2bRejection::InvalidKyc, "C2B00014"),
            (C2bRejection::InvalidShortcode, "C2B00015"),
            (C2bRejection::Other, "C2B00016"),
        ];
        for (reason, code) in all {
            let body: Value = serde_json::from_str(&C2bValidationReply::Reject(reason).body()).unwrap();
            assert_eq!(body["ResultCode"], code);
            assert_eq!(body["ResultDesc"], "Rejected");
        }
        assert!(serde_json::from_str::<Value>(B2C_RESULT_ACK).is_ok());
    }
}
