//! Errors of the Daraja client, and the one place that decides what a failed answer means.
//!
//! | condition | variant | retried by |
//! |---|---|---|
//! | connect refused / DNS / connect timeout (nothing sent) | `Unavailable` | every operation |
//! | `500.003.02` Spike Arrest, `500.003.03` Quota, HTTP 429 | `RateLimited` | every operation |
//! | HTTP 503, HTTP 408 (the gateway may have forwarded it first) | `OutcomeUnknown` | token, STK Query, Transaction Status, C2B register |
//! | timeout after sending, connection lost mid-answer | `OutcomeUnknown` | token, STK Query, Transaction Status, C2B register |
//! | HTTP 5xx with a non-JSON or unrecognised body | `OutcomeUnknown` | token, STK Query, Transaction Status, C2B register |
//! | `400.002.02`, `500.001.1001`, `500.002.1001`, `500.003.1001`, any other 4xx | `Rejected` | never |
//! | `400.008.01/02`, 4xx on the token call (an empty 400 too), 401/403 without a body, "no apiproduct match found" | `Auth` | never |
//! | invalid token (`404.001.03` / `400.003.01` / `401.002.01`, by product) | refresh once, then `Auth` | once, with a new token |
//! | 2xx with a body we cannot read | `Protocol` | never |
//!
//! Messages carry Daraja's `errorCode` and a sanitised `errorMessage` (digit runs that could be a
//! phone number or a CheckoutRequestID are masked), never a request body, token or password.

use std::fmt;

use serde_json::value::RawValue;

use super::json::{self, Kind};
use crate::domain::msisdn::mask_phone_like;

/// Why a body could not be read. Names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("expected a JSON object at {at}")]
    NotAnObject { at: &'static str },
    #[error("duplicate key {key:?}")]
    DuplicateKey { key: String },
    #[error("missing field {field}")]
    Missing { field: &'static str },
    #[error("field {field} has the wrong type (expected {expected})")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("field {field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
}

impl ParseError {
    pub(crate) fn from_json(e: serde_json::Error) -> ParseError {
        // serde_json's own message can quote input; keep only the position.
        ParseError::NotJson {
            line: e.line(),
            column: e.column(),
        }
    }
}

/// The operations of the client, for classification, retry rules and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Token,
    StkPush,
    StkQuery,
    B2cPayment,
    TransactionStatus,
    C2bRegister,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Token => "oauth_token",
            Operation::StkPush => "stk_push",
            Operation::StkQuery => "stk_query",
            Operation::B2cPayment => "b2c_payment",
            Operation::TransactionStatus => "transaction_status",
            Operation::C2bRegister => "c2b_register",
        }
    }

    /// The invalid-token `errorCode` this product answers with (it differs per product).
    pub fn invalid_token_code(self) -> Option<&'static str> {
        match self {
            Operation::Token => None,
            Operation::StkPush | Operation::StkQuery => Some(INVALID_TOKEN_STK),
            Operation::TransactionStatus | Operation::C2bRegister => Some(INVALID_TOKEN_C2B),
            Operation::B2cPayment => Some(INVALID_TOKEN_B2C),
        }
    }

    /// Operations that ask Daraja to move money. They are resent only when the request provably
    /// was not processed: STK Push has no idempotency at Daraja at all, and a B2C payment is never
    /// resent inside one submission (the worker's lease and the payout's state decide a resend).
    pub fn moves_money(self) -> bool {
        matches!(self, Operation::StkPush | Operation::B2cPayment)
    }

    /// Whether a failed attempt may be sent again by the client itself.
    pub(crate) fn may_retry(self, error: &DarajaError, not_sent: bool) -> bool {
        match error {
            // Refused before anything was done.
            DarajaError::RateLimited { .. } => true,
            DarajaError::Unavailable { .. } => not_sent || !self.moves_money(),
            // Reads and idempotent writes only: a resend after an unknown outcome is harmless.
            DarajaError::OutcomeUnknown { .. } => matches!(
                self,
                Operation::Token | Operation::StkQuery | Operation::TransactionStatus | Operation::C2bRegister
            ),
            _ => false,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const INVALID_TOKEN_STK: &str = "404.001.03";
pub const INVALID_TOKEN_C2B: &str = "400.003.01";
pub const INVALID_TOKEN_B2C: &str = "401.002.01";
pub const INVALID_FIELD: &str = "400.002.02";
pub const STK_REFUSED: &str = "500.001.1001";
pub const DUPLICATE_ORIGINATOR_CONVERSATION_ID: &str = "500.002.1001";
pub const URLS_ALREADY_REGISTERED: &str = "500.003.1001";
pub const SPIKE_ARREST: &str = "500.003.02";
pub const QUOTA_VIOLATION: &str = "500.003.03";
pub const INVALID_AUTHENTICATION: &str = "400.008.01";
pub const INVALID_GRANT_TYPE: &str = "400.008.02";

/// Codes that come with an HTTP 5xx but mean "refused, nothing happened".
const KNOWN_REJECTIONS: &[&str] = &[
    STK_REFUSED,
    DUPLICATE_ORIGINATOR_CONVERSATION_ID,
    URLS_ALREADY_REGISTERED,
];
const INVALID_TOKEN_CODES: &[&str] = &[INVALID_TOKEN_STK, INVALID_TOKEN_C2B, INVALID_TOKEN_B2C];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DarajaError {
    /// Daraja refused the request; nothing happened.
    #[error("Daraja rejected the request (HTTP {http_status}, {code}): {message}")]
    Rejected {
        http_status: u16,
        code: String,
        message: String,
    },
    /// Spike arrest or quota: nothing happened; back off.
    #[error("Daraja rate limit ({code}): {message}")]
    RateLimited { code: String, message: String },
    /// The request was not delivered (connect refused, DNS, connect timeout, no access token).
    #[error("Daraja unavailable: {detail}")]
    Unavailable { detail: String },
    /// The request may have been acted on (timeout after sending, connection lost, HTTP 503/408
    /// from the gateway, an unrecognised 5xx).
    #[error("outcome unknown, the request may have been acted on: {detail}")]
    OutcomeUnknown { detail: String },
    /// OAuth failures, a product not enabled for the app, a token refused after one refresh.
    #[error("Daraja authentication failed ({code}): {message}")]
    Auth { code: String, message: String },
    /// A 2xx answer we cannot read. For a push this is an unknown outcome too.
    #[error("unreadable answer from Daraja: {detail}")]
    Protocol { detail: String },
    /// Refused locally before anything was sent (an amount out of range, a missing id).
    #[error("invalid request, not sent: {detail}")]
    InvalidRequest { detail: String },
}

impl DarajaError {
    fn rejected_with(&self, wanted: &str) -> Option<&str> {
        match self {
            DarajaError::Rejected { code, message, .. } if code == wanted => Some(message),
            _ => None,
        }
    }

    fn stk_refusal_says(&self, phrase: &str) -> bool {
        self.rejected_with(STK_REFUSED)
            .is_some_and(|m| m.to_ascii_lowercase().contains(phrase))
    }

    /// `500.001.1001` "Wrong credentials" (shortcode, passkey or Timestamp/Password mismatch).
    pub fn is_wrong_credentials(&self) -> bool {
        self.stk_refusal_says("wrong credentials")
    }

    /// `500.001.1001` "Merchant does not exist".
    pub fn is_merchant_unknown(&self) -> bool {
        self.stk_refusal_says("merchant does not exist")
    }

    /// `500.001.1001` "Unable to lock subscriber...": a prompt is already open on that phone;
    /// retryable after about a minute.
    pub fn is_subscriber_locked(&self) -> bool {
        self.stk_refusal_says("unable to lock subscriber")
    }

    /// `400.002.02` "Bad Request - Invalid <Field>".
    pub fn is_invalid_field(&self) -> bool {
        self.rejected_with(INVALID_FIELD).is_some()
    }

    /// `500.002.1001`: this OriginatorConversationID was already used, so the payout it names
    /// was already submitted (confirm it with Transaction Status).
    pub fn is_duplicate_originator_conversation_id(&self) -> bool {
        self.rejected_with(DUPLICATE_ORIGINATOR_CONVERSATION_ID).is_some()
    }

    /// `500.003.1001` "Urls are already registered".
    pub fn is_urls_already_registered(&self) -> bool {
        self.rejected_with(URLS_ALREADY_REGISTERED).is_some()
    }

    /// Whether Daraja may have acted on the request (for a push: a prompt may be open, money
    /// may move). Confirm with STK Query / Transaction Status before anything else.
    pub fn may_have_been_acted_on(&self) -> bool {
        matches!(self, DarajaError::OutcomeUnknown { .. } | DarajaError::Protocol { .. })
    }

    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DarajaError::Rejected { .. } => "rejected",
            DarajaError::RateLimited { .. } => "rate_limited",
            DarajaError::Unavailable { .. } => "unavailable",
            DarajaError::OutcomeUnknown { .. } => "outcome_unknown",
            DarajaError::Auth { .. } => "auth",
            DarajaError::Protocol { .. } => "protocol",
            DarajaError::InvalidRequest { .. } => "invalid_request",
        }
    }

    /// Daraja's error code when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            DarajaError::Rejected { code, .. }
            | DarajaError::RateLimited { code, .. }
            | DarajaError::Auth { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Daraja's error envelope `{requestId, errorCode, errorMessage}`, or the gateway's fault object
/// `{"fault": {"faultstring", "detail": {"errorcode"}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    pub request_id: Option<String>,
    pub code: String,
    /// As sent; sanitise before logging ([`DarajaError`] messages already are).
    pub message: String,
}

/// Reads an error envelope; `Err` when the body is not one (HTML, empty, a success body).
pub fn parse_error_envelope(body: &[u8]) -> Result<ErrorEnvelope, ParseError> {
    let root = json::root(body)?;
    if let Some(code) = root.text_any(&["errorCode", "ErrorCode"])? {
        let message = root.text_any(&["errorMessage", "ErrorMessage"])?.unwrap_or_default();
        let request_id = root.text_any(&["requestId", "RequestId"])?;
        return Ok(ErrorEnvelope {
            request_id,
            code,
            message,
        });
    }
    if let Some(fault) = root.object("fault")? {
        let message = fault.text("faultstring")?.unwrap_or_default();
        let code = match fault.object("detail")? {
            Some(detail) => detail.text("errorcode")?,
            None => None,
        };
        if let Some(code) = code {
            return Ok(ErrorEnvelope {
                request_id: None,
                code,
                message,
            });
        }
        if !message.is_empty() {
            return Ok(ErrorEnvelope {
                request_id: None,
                code: "fault".into(),
                message,
            });
        }
    }
    Err(ParseError::Missing { field: "errorCode" })
}

/// What a non-success answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// The token was refused: refresh once and resend.
    InvalidToken {
        code: String,
        message: String,
    },
    Error(DarajaError),
}

/// Classifies an HTTP answer that was not a success for `op`. Never assumes the body parses.
pub fn classify_error_response(op: Operation, status: u16, body: &[u8]) -> Classified {
    match parse_error_envelope(body) {
        Ok(envelope) => classify_envelope(op, status, &envelope)
            .unwrap_or_else(|| classify_status(op, status, body, Some(&envelope.code))),
        Err(_) => classify_status(op, status, body, None),
    }
}

/// The envelope's meaning when its code (or, for the documented cases, message) is recognised.
pub fn classify_envelope(op: Operation, status: u16, envelope: &ErrorEnvelope) -> Option<Classified> {
    let code = sanitize_remote_text(&envelope.code, 40);
    let message = sanitize_remote_text(&envelope.message, 200);
    let lower = envelope.message.to_ascii_lowercase();
    let auth = |code: String, message: String| Some(Classified::Error(DarajaError::Auth { code, message }));
    if lower.contains("no apiproduct match found") {
        return auth(code, message);
    }
    let token_refused = op.invalid_token_code() == Some(envelope.code.as_str())
        || (INVALID_TOKEN_CODES.contains(&envelope.code.as_str()) && lower.contains("token"))
        || envelope.code.contains("invalid_access_token")
        || envelope.code.contains("access_token_expired");
    if token_refused {
        return match op {
            Operation::Token => auth(code, message),
            _ => Some(Classified::InvalidToken { code, message }),
        };
    }
    if envelope.code.starts_with("400.008.") {
        return auth(code, message);
    }
    if envelope.code == SPIKE_ARREST || envelope.code == QUOTA_VIOLATION {
        return Some(Classified::Error(DarajaError::RateLimited { code, message }));
    }
    if status == 429 {
        return Some(Classified::Error(DarajaError::RateLimited { code, message }));
    }
    if op == Operation::Token && (400..500).contains(&status) && status != 408 {
        return auth(code, message);
    }
    if KNOWN_REJECTIONS.contains(&envelope.code.as_str()) || envelope.code == INVALID_FIELD {
        return Some(Classified::Error(DarajaError::Rejected {
            http_status: status,
            code,
            message,
        }));
    }
    match status {
        401 | 403 => auth(code, message),
        408 => None,
        400..=499 => Some(Classified::Error(DarajaError::Rejected {
            http_status: status,
            code,
            message,
        })),
        // A 2xx that carries an error envelope is an explicit refusal.
        200..=299 => Some(Classified::Error(DarajaError::Rejected {
            http_status: status,
            code,
            message,
        })),
        _ => None,
    }
}

fn classify_status(op: Operation, status: u16, body: &[u8], code: Option<&str>) -> Classified {
    let what = match code {
        Some(code) => format!("errorCode {}, {}", sanitize_remote_text(code, 40), describe_body(body)),
        None => describe_body(body),
    };
    let http = format!("HTTP {status}");
    let error = match status {
        429 => DarajaError::RateLimited {
            code: http,
            message: format!("too many requests ({what})"),
        },
        // The gateway answers these after it may have forwarded the request: Daraja may have
        // processed it (a push prompted, a payout paid) and only the answer was lost.
        408 => DarajaError::OutcomeUnknown {
            detail: format!("HTTP 408 request timeout ({what})"),
        },
        503 => DarajaError::OutcomeUnknown {
            detail: format!("HTTP 503 service unavailable ({what})"),
        },
        400 if op == Operation::Token && body.iter().all(u8::is_ascii_whitespace) => DarajaError::Auth {
            code: http,
            message: "empty answer to the token request (wrong consumer key or secret?)".into(),
        },
        400..=499 if op == Operation::Token => DarajaError::Auth {
            code: http,
            message: format!("token request refused ({what})"),
        },
        401 | 403 => DarajaError::Auth {
            code: http,
            message: format!("not authorised ({what})"),
        },
        400..=499 => DarajaError::Rejected {
            http_status: status,
            code: http,
            message: format!("refused ({what})"),
        },
        200..=299 => DarajaError::Protocol {
            detail: format!("HTTP {status} with an unreadable body ({what})"),
        },
        _ => DarajaError::OutcomeUnknown {
            detail: format!("HTTP {status} with an unrecognised body ({what})"),
        },
    };
    Classified::Error(error)
}

/// A short, content-free description of a body for error details: its kind and size.
pub fn describe_body(body: &[u8]) -> String {
    let trimmed = body.trim_ascii_start();
    let kind = if trimmed.is_empty() {
        return "empty body".into();
    } else if trimmed.first() == Some(&b'<') {
        "HTML/XML body"
    } else if trimmed.first() == Some(&b'{') || trimmed.first() == Some(&b'[') {
        match json::body_text(body)
            .ok()
            .and_then(|t| serde_json::from_str::<&RawValue>(t).ok())
        {
            Some(raw) if json::kind(raw) == Kind::Object => "JSON object without a known error code",
            Some(_) => "JSON value",
            None => "malformed JSON body",
        }
    } else {
        "non-JSON body"
    };
    format!("{kind}, {} bytes", body.len())
}

/// Makes remote text safe for errors and logs: bounded length, no control characters, and any
/// run of 9 or more digits (a phone number, the digits inside a CheckoutRequestID) masked.
pub fn sanitize_remote_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 9 {
            out.push_str(&mask_phone_like(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars().take(max_chars) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        out.push(if c.is_control() { ' ' } else { c });
    }
    flush(&mut digits, &mut out);
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// An identifier that contains personal data (CheckoutRequestIDs end with phone digits), for logs.
pub fn redact_id(id: &str) -> String {
    sanitize_remote_text(id, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(op: Operation, status: u16, body: &str) -> Classified {
        classify_error_response(op, status, body.as_bytes())
    }

    fn error(op: Operation, status: u16, body: &str) -> DarajaError {
        match classify(op, status, body) {
            Classified::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn envelope(code: &str, message: &str) -> String {
        serde_json::json!({"requestId": "1c5b-4ba8-815c-ac45c57a3db01495926", "errorCode": code, "errorMessage": message})
            .to_string()
    }

    #[test]
    fn reads_the_envelope_and_the_fault_object() {
        let e = parse_error_envelope(envelope("400.002.02", "Bad Request - Invalid PhoneNumber").as_bytes()).unwrap();
        assert_eq!(e.code, "400.002.02");
        assert_eq!(e.message, "Bad Request - Invalid PhoneNumber");
        assert_eq!(e.request_id.as_deref(), Some("1c5b-4ba8-815c-ac45c57a3db01495926"));
        let fault = br#"{"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}}"#;
        let e = parse_error_envelope(fault).unwrap();
        assert_eq!(e.code, "keymanagement.service.invalid_access_token");
        assert!(parse_error_envelope(b"<html>502 Bad Gateway</html>").is_err());
        assert!(parse_error_envelope(b"").is_err());
        assert!(parse_error_envelope(br#"{"ResponseCode":"0"}"#).is_err());
    }

    #[test]
    fn stk_refusals_are_told_apart_by_message_only() {
        let wrong = error(Operation::StkPush, 500, &envelope(STK_REFUSED, "Wrong credentials"));
        let merchant = error(
            Operation::StkPush,
            500,
            &envelope(STK_REFUSED, "Merchant does not exist"),
        );
        let locked = error(
            Operation::StkPush,
            500,
            &envelope(
                STK_REFUSED,
                "Unable to lock subscriber, a transaction is already in process for the current subscriber",
            ),
        );
        assert!(matches!(&wrong, DarajaError::Rejected { http_status: 500, code, .. } if code == STK_REFUSED));
        assert!(wrong.is_wrong_credentials() && !wrong.is_merchant_unknown() && !wrong.is_subscriber_locked());
        assert!(merchant.is_merchant_unknown() && !merchant.is_wrong_credentials());
        assert!(locked.is_subscriber_locked() && !locked.is_wrong_credentials());
        assert!(!wrong.may_have_been_acted_on());
        let invalid = error(
            Operation::StkPush,
            400,
            &envelope(INVALID_FIELD, "Bad Request - Invalid Amount"),
        );
        assert!(invalid.is_invalid_field());
    }

    #[test]
    fn rate_limits_auth_and_unknowns() {
        for code in [SPIKE_ARREST, QUOTA_VIOLATION] {
            assert!(matches!(
                error(Operation::StkPush, 500, &envelope(code, "x")),
                DarajaError::RateLimited { .. }
            ));
        }
        assert!(matches!(
            error(Operation::StkQuery, 429, ""),
            DarajaError::RateLimited { .. }
        ));
        // A 503 or 408 may come after the gateway forwarded the request: never "nothing sent".
        for status in [503, 408] {
            let e = error(Operation::StkPush, status, "<html>down</html>");
            assert!(matches!(&e, DarajaError::OutcomeUnknown { .. }) && e.may_have_been_acted_on());
        }
        let fault = r#"{"fault":{"faultstring":"The Service is temporarily unavailable","detail":{"errorcode":"messaging.adaptors.http.flow.ServiceUnavailable"}}}"#;
        assert!(error(Operation::B2cPayment, 503, fault).may_have_been_acted_on());
        let html = error(Operation::StkPush, 502, "<html><body>Bad gateway</body></html>");
        assert!(matches!(&html, DarajaError::OutcomeUnknown { .. }) && html.may_have_been_acted_on());
        assert!(matches!(
            error(Operation::StkPush, 500, &envelope("500.999.1", "?")),
            DarajaError::OutcomeUnknown { .. }
        ));
        assert!(matches!(error(Operation::Token, 400, ""), DarajaError::Auth { .. }));
        assert!(matches!(
            error(
                Operation::Token,
                400,
                &envelope(INVALID_AUTHENTICATION, "Invalid Authentication passed")
            ),
            DarajaError::Auth { .. }
        ));
        assert!(matches!(
            error(Operation::Token, 400, &envelope(INVALID_GRANT_TYPE, "x")),
            DarajaError::Auth { .. }
        ));
        let no_product = envelope(
            "401.003.01",
            "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found",
        );
        assert!(matches!(
            error(Operation::B2cPayment, 401, &no_product),
            DarajaError::Auth { .. }
        ));
        assert!(matches!(
            error(Operation::StkPush, 404, "<html>Not found</html>"),
            DarajaError::Rejected { .. }
        ));
        assert!(matches!(
            error(Operation::StkPush, 200, "<html/>"),
            DarajaError::Protocol { .. }
        ));
    }

    #[test]
    fn invalid_token_codes_by_product() {
        let cases = [
            (Operation::StkPush, 404, INVALID_TOKEN_STK),
            (Operation::StkQuery, 404, INVALID_TOKEN_STK),
            (Operation::C2bRegister, 400, INVALID_TOKEN_C2B),
            (Operation::TransactionStatus, 400, INVALID_TOKEN_C2B),
            (Operation::B2cPayment, 401, INVALID_TOKEN_B2C),
        ];
        for (op, status, code) in cases {
            let c = classify(op, status, &envelope(code, "Invalid Access Token"));
            assert!(matches!(c, Classified::InvalidToken { .. }), "{op}: {c:?}");
        }
        // Another product's code without a token message is that product's own business.
        let c = classify(
            Operation::B2cPayment,
            400,
            &envelope(INVALID_TOKEN_C2B, "Bad Request - something"),
        );
        assert!(matches!(c, Classified::Error(DarajaError::Rejected { .. })));
    }

    #[test]
    fn retry_rules() {
        let unavailable = DarajaError::Unavailable { detail: String::new() };
        let unknown = DarajaError::OutcomeUnknown { detail: String::new() };
        let limited = DarajaError::RateLimited {
            code: SPIKE_ARREST.into(),
            message: String::new(),
        };
        let rejected = DarajaError::Rejected {
            http_status: 400,
            code: INVALID_FIELD.into(),
            message: String::new(),
        };
        let protocol = DarajaError::Protocol { detail: String::new() };
        assert!(Operation::StkPush.may_retry(&unavailable, true));
        assert!(!Operation::StkPush.may_retry(&unavailable, false));
        assert!(Operation::StkPush.may_retry(&limited, false));
        assert!(!Operation::StkPush.may_retry(&unknown, false));
        assert!(!Operation::StkPush.may_retry(&protocol, false));
        for op in [Operation::StkQuery, Operation::TransactionStatus, Operation::Token] {
            assert!(
                op.may_retry(&unavailable, false) && op.may_retry(&unknown, false) && op.may_retry(&limited, false)
            );
        }
        // Money-moving requests: resent only when provably not sent, never after an unknown outcome.
        for op in [Operation::StkPush, Operation::B2cPayment] {
            assert!(op.may_retry(&unavailable, true) && op.may_retry(&limited, false));
            assert!(!op.may_retry(&unavailable, false));
            assert!(!op.may_retry(&unknown, false) && !op.may_retry(&protocol, false));
        }
        // Registering the same URLs again is idempotent.
        assert!(Operation::C2bRegister.may_retry(&unknown, false));
        for op in [
            Operation::StkPush,
            Operation::StkQuery,
            Operation::B2cPayment,
            Operation::Token,
        ] {
            assert!(!op.may_retry(&rejected, false));
        }
    }

    #[test]
    fn remote_text_is_sanitised() {
        let text = "Invalid PhoneNumber 254712345678 for ws_CO_211120261430051234712345678\n";
        let clean = sanitize_remote_text(text, 200);
        assert!(!clean.contains("254712345678"), "{clean}");
        assert!(!clean.contains('\n'));
        assert!(clean.contains("Invalid PhoneNumber 2547****5678"));
        assert_eq!(sanitize_remote_text("Wrong credentials", 200), "Wrong credentials");
        assert_eq!(sanitize_remote_text(&"a".repeat(300), 10).chars().count(), 11);
        let err = error(
            Operation::StkPush,
            400,
            &envelope(INVALID_FIELD, "Invalid PhoneNumber 254712345678"),
        );
        assert!(!err.to_string().contains("254712345678"));
    }
}
