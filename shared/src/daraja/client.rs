//! [`HttpDaraja`]: the Daraja port over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::b2c::{parse_b2c_response, B2cAccepted, B2cPaymentRequest};
use super::c2b::{check_c2b_url, parse_c2b_register_response, C2bRegisterRequest, C2bRegistered};
use super::errors::{
    classify_envelope, classify_error_response, parse_error_envelope, sanitize_remote_text, Classified, DarajaError,
    Operation, STK_REFUSED,
};
use super::json::MAX_BODY_BYTES;
use super::retry::RetryPolicy;
use super::stk::{
    parse_stk_push_response, parse_stk_query_response, StkPushAccepted, StkPushRequest, StkQueryAnswer,
    StkQueryRequest, STILL_PROCESSING_RESULT_CODE,
};
use super::token::{parse_token_response, AccessToken, TokenCache};
use super::transaction_status::{parse_acknowledgement, Acknowledgement, TransactionStatusRequest};
use super::{ApiCredentials, Daraja};
use crate::domain::{AmountLimits, ResultCode};
use crate::metrics;
use crate::secrets::Secret;

pub const TOKEN_PATH: &str = "/oauth/v1/generate?grant_type=client_credentials";
pub const STK_PUSH_PATH: &str = "/mpesa/stkpush/v1/processrequest";
pub const STK_QUERY_PATH: &str = "/mpesa/stkpushquery/v1/query";
pub const B2C_PATH: &str = "/mpesa/b2c/v3/paymentrequest";
pub const TRANSACTION_STATUS_PATH: &str = "/mpesa/transactionstatus/v1/query";

/// Daraja over HTTP. Create once per process and share (clones share the token cache).
/// Per-request timeouts are those of the `reqwest::Client` given.
#[derive(Clone)]
pub struct HttpDaraja {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    tokens: TokenCache,
}

/// One attempt's failure, and whether the request provably never left.
struct Failure {
    error: DarajaError,
    not_sent: bool,
}

impl From<DarajaError> for Failure {
    fn from(error: DarajaError) -> Self {
        Failure { error, not_sent: false }
    }
}

/// What an answer means for one operation.
enum Verdict<T> {
    Done(T),
    InvalidToken { code: String, message: String },
    Failed(DarajaError),
}

impl<T> From<Classified> for Verdict<T> {
    fn from(c: Classified) -> Self {
        match c {
            Classified::InvalidToken { code, message } => Verdict::InvalidToken { code, message },
            Classified::Error(e) => Verdict::Failed(e),
        }
    }
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl HttpDaraja {
    /// `base_url`: `https://sandbox.safaricom.co.ke`, `https://api.safaricom.co.ke`, or a
    /// simulator on loopback. A trailing slash is ignored.
    pub fn new(base_url: impl Into<String>, http: reqwest::Client, retry: RetryPolicy) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        HttpDaraja {
            inner: Arc::new(Inner {
                base_url,
                http,
                retry,
                tokens: TokenCache::default(),
            }),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// A valid access token for `credentials` (cached; fetched once for concurrent callers).
    pub async fn access_token(&self, credentials: &ApiCredentials) -> Result<Secret, DarajaError> {
        let result = self
            .inner
            .tokens
            .get(credentials, || self.fetch_token(credentials))
            .await
            .map(|t| t.token);
        record_call(Operation::Token, result.as_ref().err());
        result
    }

    async fn fetch_token(&self, credentials: &ApiCredentials) -> Result<AccessToken, DarajaError> {
        let basic = STANDARD.encode(format!(
            "{}:{}",
            credentials.consumer_key.expose(),
            credentials.consumer_secret.expose()
        ));
        let url = format!("{}{}", self.inner.base_url, TOKEN_PATH);
        let policy = self.inner.retry;
        let mut attempt = 1;
        loop {
            let request = self
                .inner
                .http
                .get(&url)
                .header(AUTHORIZATION, format!("Basic {basic}"));
            let failure = match send(request).await {
                Ok(answer) => match interpret_token(&answer) {
                    Verdict::Done(token) => return Ok(token),
                    Verdict::Failed(error) => Failure::from(error),
                    Verdict::InvalidToken { code, message } => Failure::from(DarajaError::Auth { code, message }),
                },
                Err(failure) => failure,
            };
            if attempt >= policy.attempts() || !Operation::Token.may_retry(&failure.error, failure.not_sent) {
                return Err(failure.error);
            }
            backoff(Operation::Token, attempt, &failure.error, policy).await;
            attempt += 1;
        }
    }

    /// POSTs `body` with a bearer token, retrying per the operation's rules, refreshing the token
    /// once if Daraja refuses it; counted in `DarajaRequests` and `DarajaErrors` (see [`record_call`]).
    async fn call<T>(
        &self,
        op: Operation,
        credentials: &ApiCredentials,
        path: &str,
        body: &serde_json::Value,
        interpret: fn(&Answer) -> Verdict<T>,
    ) -> Result<T, DarajaError> {
        let result = self.call_with_retries(op, credentials, path, body, interpret).await;
        record_call(op, result.as_ref().err());
        result
    }

    async fn call_with_retries<T>(
        &self,
        op: Operation,
        credentials: &ApiCredentials,
        path: &str,
        body: &serde_json::Value,
        interpret: fn(&Answer) -> Verdict<T>,
    ) -> Result<T, DarajaError> {
        let url = format!("{}{}", self.inner.base_url, path);
        let payload = serde_json::to_vec(body).map_err(|_| DarajaError::InvalidRequest {
            detail: "the request could not be serialised".into(),
        })?;
        let policy = self.inner.retry;
        let mut attempt = 1;
        let mut token_refreshed = false;
        loop {
            let token = self
                .inner
                .tokens
                .get(credentials, || self.fetch_token(credentials))
                .await
                .map_err(|e| token_phase_error(op, e))?;
            let request = self
                .inner
                .http
                .post(&url)
                .header(AUTHORIZATION, format!("Bearer {}", token.token.expose()))
                .header(CONTENT_TYPE, "application/json")
                .body(payload.clone());
            let failure = match send(request).await {
                Ok(answer) => match interpret(&answer) {
                    Verdict::Done(value) => return Ok(value),
                    Verdict::InvalidToken { code, message } => {
                        if token_refreshed {
                            tracing::warn!(operation = %op, %code, "Daraja refused a freshly fetched token");
                            return Err(DarajaError::Auth { code, message });
                        }
                        tracing::info!(operation = %op, %code, "Daraja refused the access token; refreshing once");
                        self.inner.tokens.invalidate(credentials, token.generation).await;
                        token_refreshed = true;
                        continue;
                    }
                    Verdict::Failed(error) => Failure::from(error),
                },
                Err(failure) => failure,
            };
            if attempt >= policy.attempts() || !op.may_retry(&failure.error, failure.not_sent) {
                if failure.error.may_have_been_acted_on() {
                    tracing::warn!(operation = %op, attempt, error = %failure.error, "Daraja outcome unknown");
                } else {
                    tracing::debug!(operation = %op, attempt, error = %failure.error, "Daraja call failed");
                }
                return Err(failure.error);
            }
            backoff(op, attempt, &failure.error, policy).await;
            attempt += 1;
        }
    }
}

/// One logical call (retries included): `DarajaRequests{Operation}`, and for a failure
/// `DarajaErrors{Operation,Kind,Code}` with Daraja's error code (`none` when it gave none, `other`
/// when it is not a plausible code, so the metric's cardinality stays bounded).
fn record_call(op: Operation, error: Option<&DarajaError>) {
    metrics::count("DarajaRequests", 1, &[("Operation", op.as_str())]);
    if let Some(error) = error {
        let code = match error.code() {
            None => "none",
            Some(code)
                if (1..=24).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') =>
            {
                code
            }
            Some(_) => "other",
        };
        metrics::count(
            "DarajaErrors",
            1,
            &[("Operation", op.as_str()), ("Kind", error.kind()), ("Code", code)],
        );
    }
}

/// Token problems met while preparing another call: that call was never sent, so an unknown
/// outcome of the token request is "not delivered" for it.
fn token_phase_error(op: Operation, error: DarajaError) -> DarajaError {
    match error {
        DarajaError::OutcomeUnknown { detail } | DarajaError::Protocol { detail } => DarajaError::Unavailable {
            detail: format!("no access token for {op} (request not sent): {detail}"),
        },
        DarajaError::Unavailable { detail } => DarajaError::Unavailable {
            detail: format!("no access token for {op} (request not sent): {detail}"),
        },
        other => other,
    }
}

async fn backoff(op: Operation, attempt: u32, error: &DarajaError, policy: RetryPolicy) {
    let delay = {
        let mut rng = rand::thread_rng();
        policy.delay_before_retry(attempt, &mut rng)
    };
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    tracing::warn!(operation = %op, attempt, error = %error, delay_ms, "retrying Daraja call");
    tokio::time::sleep(delay).await;
}

/// Sends one request and reads at most [`MAX_BODY_BYTES`] of the answer.
async fn send(request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
    let mut response = request.send().await.map_err(transport_failure)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES + 1 - body.len().min(MAX_BODY_BYTES + 1);
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() > MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let detail = if e.is_timeout() {
                    format!("timed out reading Daraja's HTTP {status} answer")
                } else {
                    format!(
                        "connection lost while reading Daraja's HTTP {status} answer: {}",
                        error_chain(&e)
                    )
                };
                return Err(Failure {
                    error: DarajaError::OutcomeUnknown { detail },
                    not_sent: false,
                });
            }
        }
    }
    Ok(Answer { status, body })
}

fn transport_failure(e: reqwest::Error) -> Failure {
    let chain = error_chain(&e);
    if e.is_builder() {
        return Failure {
            error: DarajaError::InvalidRequest {
                detail: format!("bad request URL: {chain}"),
            },
            not_sent: true,
        };
    }
    if e.is_connect() {
        // Refused, DNS, TLS handshake or connect timeout: nothing reached Daraja.
        return Failure {
            error: DarajaError::Unavailable {
                detail: format!("could not connect: {chain}"),
            },
            not_sent: true,
        };
    }
    let detail = if e.is_timeout() {
        "timed out waiting for Daraja's answer".to_owned()
    } else {
        format!("connection failed after sending: {chain}")
    };
    Failure {
        error: DarajaError::OutcomeUnknown { detail },
        not_sent: false,
    }
}

/// The error and its sources, without the URL, bounded.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
        if parts.len() >= 4 {
            break;
        }
    }
    let text = if parts.is_empty() {
        "transport error".to_owned()
    } else {
        parts.join(": ")
    };
    sanitize_remote_text(&text, 200)
}

fn is_2xx(status: u16) -> bool {
    (200..300).contains(&status)
}

fn interpret_token(answer: &Answer) -> Verdict<AccessToken> {
    if is_2xx(answer.status) {
        match parse_token_response(&answer.body) {
            Ok(token) => Verdict::Done(token),
            Err(e) => match parse_error_envelope(&answer.body) {
                Ok(envelope) => Verdict::Failed(DarajaError::Auth {
                    code: sanitize_remote_text(&envelope.code, 40),
                    message: sanitize_remote_text(&envelope.message, 200),
                }),
                Err(_) => Verdict::Failed(DarajaError::Protocol {
                    detail: format!("HTTP {} token answer unreadable: {e}", answer.status),
                }),
            },
        }
    } else {
        classify_error_response(Operation::Token, answer.status, &answer.body).into()
    }
}

/// A 2xx whose body is not the expected answer: an error envelope is classified, anything else
/// is a protocol error (for a push, an unknown outcome).
fn unexpected_2xx<T>(op: Operation, answer: &Answer, parse_error: &super::errors::ParseError) -> Verdict<T> {
    if let Ok(envelope) = parse_error_envelope(&answer.body) {
        if let Some(c) = classify_envelope(op, answer.status, &envelope) {
            return c.into();
        }
    }
    Verdict::Failed(DarajaError::Protocol {
        detail: format!("HTTP {} answer to {op} unreadable: {parse_error}", answer.status),
    })
}

fn not_accepted<T>(status: u16, code: &str, description: &str) -> Verdict<T> {
    Verdict::Failed(DarajaError::Rejected {
        http_status: status,
        code: sanitize_remote_text(code, 40),
        message: sanitize_remote_text(description, 200),
    })
}

fn interpret_stk_push(answer: &Answer) -> Verdict<StkPushAccepted> {
    if !is_2xx(answer.status) {
        return classify_error_response(Operation::StkPush, answer.status, &answer.body).into();
    }
    match parse_stk_push_response(&answer.body) {
        Ok(accepted) if ResultCode::new(accepted.response_code.as_str()).is_success() => Verdict::Done(accepted),
        Ok(refused) => not_accepted(answer.status, &refused.response_code, &refused.response_description),
        Err(e) => unexpected_2xx(Operation::StkPush, answer, &e),
    }
}

/// "The transaction is being processed" / "The transaction does not Exist".
fn is_not_known_yet(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("being processed") || lower.contains("does not exist") || lower.contains("under processing")
}

fn interpret_stk_query(answer: &Answer) -> Verdict<StkQueryAnswer> {
    if let Ok(envelope) = parse_error_envelope(&answer.body) {
        if envelope.code == STK_REFUSED && is_not_known_yet(&envelope.message) {
            return Verdict::Done(StkQueryAnswer::NotKnownYet {
                message: sanitize_remote_text(&envelope.message, 200),
            });
        }
    }
    if !is_2xx(answer.status) {
        return classify_error_response(Operation::StkQuery, answer.status, &answer.body).into();
    }
    match parse_stk_query_response(&answer.body) {
        Ok(parsed) => match parsed.result {
            Some(result) if result.code.as_str() == STILL_PROCESSING_RESULT_CODE => {
                Verdict::Done(StkQueryAnswer::NotKnownYet {
                    message: sanitize_remote_text(&result.description, 200),
                })
            }
            Some(result) => Verdict::Done(StkQueryAnswer::Final(result)),
            None => {
                let code = parsed.response_code.unwrap_or_default();
                if ResultCode::new(code.as_str()).is_success() {
                    Verdict::Failed(DarajaError::Protocol {
                        detail: format!("HTTP {} STK Query answer without a ResultCode", answer.status),
                    })
                } else {
                    not_accepted(
                        answer.status,
                        &code,
                        parsed.response_description.as_deref().unwrap_or(""),
                    )
                }
            }
        },
        Err(e) => unexpected_2xx(Operation::StkQuery, answer, &e),
    }
}

fn interpret_b2c(answer: &Answer) -> Verdict<B2cAccepted> {
    if !is_2xx(answer.status) {
        return classify_error_response(Operation::B2cPayment, answer.status, &answer.body).into();
    }
    match parse_b2c_response(&answer.body) {
        Ok(accepted) if ResultCode::new(accepted.response_code.as_str()).is_success() => Verdict::Done(accepted),
        Ok(refused) => not_accepted(answer.status, &refused.response_code, &refused.response_description),
        Err(e) => unexpected_2xx(Operation::B2cPayment, answer, &e),
    }
}

fn interpret_transaction_status(answer: &Answer) -> Verdict<Acknowledgement> {
    if !is_2xx(answer.status) {
        return classify_error_response(Operation::TransactionStatus, answer.status, &answer.body).into();
    }
    match parse_acknowledgement(&answer.body) {
        Ok(ack) if ResultCode::new(ack.response_code.as_str()).is_success() => Verdict::Done(ack),
        Ok(refused) => not_accepted(answer.status, &refused.response_code, &refused.response_description),
        Err(e) => unexpected_2xx(Operation::TransactionStatus, answer, &e),
    }
}

fn interpret_c2b_register(answer: &Answer) -> Verdict<C2bRegistered> {
    if !is_2xx(answer.status) {
        return classify_error_response(Operation::C2bRegister, answer.status, &answer.body).into();
    }
    if let Ok(envelope) = parse_error_envelope(&answer.body) {
        if let Some(c) = classify_envelope(Operation::C2bRegister, answer.status, &envelope) {
            return c.into();
        }
    }
    match parse_c2b_register_response(&answer.body) {
        Ok(response) if response.is_success() => Verdict::Done(C2bRegistered {
            originator_conversation_id: response.originator_conversation_id,
            response_code: response.response_code,
            response_description: response.response_description,
        }),
        Ok(refused) => not_accepted(
            answer.status,
            refused.response_code.as_deref().unwrap_or(""),
            refused.response_description.as_deref().unwrap_or(""),
        ),
        Err(e) => unexpected_2xx(Operation::C2bRegister, answer, &e),
    }
}

fn check_amount(amount: crate::domain::Amount, limits: AmountLimits) -> Result<(), DarajaError> {
    if limits.contains(amount) {
        Ok(())
    } else {
        Err(DarajaError::InvalidRequest {
            detail: format!("amount must be between {} and {} KES", limits.min, limits.max),
        })
    }
}

#[async_trait]
impl Daraja for HttpDaraja {
    async fn check_access(&self, credentials: &ApiCredentials) -> Result<(), DarajaError> {
        self.access_token(credentials).await.map(drop)
    }

    async fn stk_push(&self, request: &StkPushRequest<'_>) -> Result<StkPushAccepted, DarajaError> {
        check_amount(request.amount, AmountLimits::STK_PUSH)?;
        let body = request.to_body();
        self.call(
            Operation::StkPush,
            request.credentials,
            STK_PUSH_PATH,
            &body,
            interpret_stk_push,
        )
        .await
    }

    async fn stk_query(&self, request: &StkQueryRequest<'_>) -> Result<StkQueryAnswer, DarajaError> {
        let body = request.to_body();
        self.call(
            Operation::StkQuery,
            request.credentials,
            STK_QUERY_PATH,
            &body,
            interpret_stk_query,
        )
        .await
    }

    async fn b2c_payment(&self, request: &B2cPaymentRequest<'_>) -> Result<B2cAccepted, DarajaError> {
        check_amount(request.amount, AmountLimits::B2C)?;
        if request.originator_conversation_id.trim().is_empty() {
            return Err(DarajaError::InvalidRequest {
                detail: "OriginatorConversationID is required".into(),
            });
        }
        let body = request.to_body();
        self.call(
            Operation::B2cPayment,
            request.credentials,
            B2C_PATH,
            &body,
            interpret_b2c,
        )
        .await
    }

    async fn transaction_status(&self, request: &TransactionStatusRequest<'_>) -> Result<Acknowledgement, DarajaError> {
        let has = |id: Option<&str>| id.is_some_and(|id| !id.trim().is_empty());
        if !has(request.transaction_id) && !has(request.original_conversation_id) {
            return Err(DarajaError::InvalidRequest {
                detail: "a TransactionID or an OriginalConversationID is required".into(),
            });
        }
        let body = request.to_body();
        self.call(
            Operation::TransactionStatus,
            request.credentials,
            TRANSACTION_STATUS_PATH,
            &body,
            interpret_transaction_status,
        )
        .await
    }

    async fn register_c2b_urls(&self, request: &C2bRegisterRequest<'_>) -> Result<C2bRegistered, DarajaError> {
        for (name, url) in [
            ("ConfirmationURL", request.confirmation_url),
            ("ValidationURL", request.validation_url),
        ] {
            check_c2b_url(url, false).map_err(|e| DarajaError::InvalidRequest {
                detail: format!("{name} would be refused: {e}"),
            })?;
        }
        let body = request.to_body();
        let path = request.version.register_path();
        self.call(
            Operation::C2bRegister,
            request.credentials,
            path,
            &body,
            interpret_c2b_register,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn query_not_known_yet_answers_are_never_failures() {
        for message in ["The transaction is being processed", "The transaction does not Exist"] {
            let body =
                serde_json::json!({"requestId": "r", "errorCode": "500.001.1001", "errorMessage": message}).to_string();
            match interpret_stk_query(&answer(500, &body)) {
                Verdict::Done(StkQueryAnswer::NotKnownYet { message: m }) => assert_eq!(m, message),
                _ => panic!("{message} must be NotKnownYet"),
            }
        }
        let still =
            r#"{"ResponseCode":"0","ResultCode":"4999","ResultDesc":"The transaction is still under processing"}"#;
        assert!(matches!(
            interpret_stk_query(&answer(200, still)),
            Verdict::Done(StkQueryAnswer::NotKnownYet { .. })
        ));
        let wrong = r#"{"errorCode":"500.001.1001","errorMessage":"Wrong credentials"}"#;
        assert!(matches!(interpret_stk_query(&answer(500, wrong)), Verdict::Failed(e) if e.is_wrong_credentials()));
    }

    #[test]
    fn push_answers_that_are_not_acceptances() {
        let refused =
            r#"{"MerchantRequestID":"m","CheckoutRequestID":"c","ResponseCode":"1","ResponseDescription":"x"}"#;
        assert!(matches!(
            interpret_stk_push(&answer(200, refused)),
            Verdict::Failed(DarajaError::Rejected { .. })
        ));
        let garbage = interpret_stk_push(&answer(200, "<html>ok</html>"));
        assert!(matches!(garbage, Verdict::Failed(ref e @ DarajaError::Protocol { .. }) if e.may_have_been_acted_on()));
        let envelope_200 = r#"{"errorCode":"400.002.02","errorMessage":"Bad Request - Invalid Amount"}"#;
        assert!(matches!(interpret_stk_push(&answer(200, envelope_200)), Verdict::Failed(e) if e.is_invalid_field()));
    }

    #[test]
    fn token_phase_failures_mean_not_sent() {
        let e = token_phase_error(Operation::StkPush, DarajaError::OutcomeUnknown { detail: "x".into() });
        assert!(matches!(e, DarajaError::Unavailable { .. }));
        let auth = DarajaError::Auth {
            code: "400.008.01".into(),
            message: "x".into(),
        };
        assert_eq!(token_phase_error(Operation::StkPush, auth.clone()), auth);
    }
}
