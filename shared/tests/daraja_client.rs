//! HttpDaraja against a local mock of Daraja (wiremock on 127.0.0.1, plus a raw TCP server for
//! broken connections). Never reaches a real Safaricom host.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use checkout::daraja::{
    encrypt_security_credential, ApiCredentials, B2cCommand, B2cPaymentRequest, C2bApiVersion, C2bRegisterRequest,
    C2bResponseType, Daraja, DarajaError, HttpDaraja, RetryPolicy, StkPushRequest, StkQueryAnswer, StkQueryRequest,
    StkTransactionType, TransactionStatusRequest,
};
use checkout::domain::{Amount, Msisdn};
use checkout::secrets::Secret;

const TOKEN: &str = "/oauth/v1/generate";
const PUSH: &str = "/mpesa/stkpush/v1/processrequest";
const QUERY: &str = "/mpesa/stkpushquery/v1/query";
const B2C: &str = "/mpesa/b2c/v3/paymentrequest";
const STATUS: &str = "/mpesa/transactionstatus/v1/query";
const C2B_V1: &str = "/mpesa/c2b/v1/registerurl";
const C2B_V2: &str = "/mpesa/c2b/v2/registerurl";
const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fx {
    credentials: ApiCredentials,
    passkey: Secret,
    phone: Msisdn,
}

impl Fx {
    fn new() -> Fx {
        Fx::with_credentials("key-a", "secret-a")
    }

    fn with_credentials(key: &str, secret: &str) -> Fx {
        Fx {
            credentials: ApiCredentials::new(key, secret),
            passkey: Secret::new(PASSKEY),
            phone: Msisdn::parse("0712345678").unwrap(),
        }
    }

    fn push(&self) -> StkPushRequest<'_> {
        StkPushRequest {
            credentials: &self.credentials,
            shortcode: "174379",
            passkey: &self.passkey,
            transaction_type: StkTransactionType::CustomerPayBillOnline,
            party_b: "174379",
            amount: Amount::new(100).unwrap(),
            phone: &self.phone,
            callback_url: "https://api.example.com/callbacks/stk/tok123",
            account_reference: "ORDER1234",
            transaction_desc: "Chess set",
            now: Utc.with_ymd_and_hms(2026, 11, 21, 11, 30, 5).unwrap(),
        }
    }

    fn query(&self) -> StkQueryRequest<'_> {
        StkQueryRequest {
            credentials: &self.credentials,
            shortcode: "174379",
            passkey: &self.passkey,
            checkout_request_id: "ws_CO_211120261430051234712345678",
            now: Utc.with_ymd_and_hms(2026, 11, 21, 11, 31, 0).unwrap(),
        }
    }

    fn b2c(&self) -> B2cPaymentRequest<'_> {
        B2cPaymentRequest {
            credentials: &self.credentials,
            initiator_name: "testapi",
            security_credential: "ZW5jcnlwdGVk",
            command: B2cCommand::BusinessPayment,
            amount: Amount::new(500).unwrap(),
            party_a: "600992",
            party_b: &self.phone,
            remarks: "Refund ORDER1234",
            occasion: Some("Refund"),
            originator_conversation_id: "payout-01JABCDEF",
            result_url: "https://api.example.com/callbacks/b2c/result/t",
            queue_timeout_url: "https://api.example.com/callbacks/b2c/timeout/t",
        }
    }

    fn status(&self) -> TransactionStatusRequest<'_> {
        TransactionStatusRequest {
            credentials: &self.credentials,
            initiator: "testapi",
            security_credential: "ZW5jcnlwdGVk",
            party_a: "600992",
            identifier_type: "4",
            transaction_id: None,
            original_conversation_id: Some("payout-01JABCDEF"),
            result_url: "https://api.example.com/callbacks/status/result/t",
            queue_timeout_url: "https://api.example.com/callbacks/status/timeout/t",
            remarks: "Reconcile",
            occasion: None,
        }
    }

    fn c2b(&self, version: C2bApiVersion) -> C2bRegisterRequest<'_> {
        C2bRegisterRequest {
            credentials: &self.credentials,
            version,
            short_code: "600984",
            response_type: C2bResponseType::Completed,
            confirmation_url: "https://api.example.com/c2b/confirm/Zx81",
            validation_url: "https://api.example.com/c2b/validate/Zx81",
        }
    }
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn daraja(server: &MockServer, retry: RetryPolicy) -> HttpDaraja {
    HttpDaraja::new(format!("{}/", server.uri()), http(Duration::from_secs(2)), retry)
}

fn basic(key: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{key}:{secret}")))
}

fn envelope(code: &str, message: &str) -> Value {
    json!({"requestId": "1c5b-4ba8-815c-ac45c57a3db01495926", "errorCode": code, "errorMessage": message})
}

fn accepted_push() -> Value {
    json!({
        "MerchantRequestID": "ac7b-470b-8df7-23ab3cef38271071873",
        "CheckoutRequestID": "ws_CO_211120261430051234712345678",
        "ResponseCode": "0",
        "ResponseDescription": "Success. Request accepted for processing",
        "CustomerMessage": "Success. Request accepted for processing"
    })
}

fn accepted_b2c() -> Value {
    json!({
        "ConversationID": "AG_20261121_00004e4d7b3b0d6fa5e4",
        "OriginatorConversationID": "payout-01JABCDEF",
        "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully."
    })
}

/// Hands out `tok-1`, `tok-2`, ... with the given `expires_in` (a string or a number).
struct SequentialTokens {
    issued: AtomicUsize,
    expires_in: Value,
    delay: Duration,
}

impl Respond for SequentialTokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(json!({"access_token": format!("tok-{n}"), "expires_in": self.expires_in}))
            .set_delay(self.delay)
    }
}

async fn mount_tokens(server: &MockServer, expires_in: Value, delay: Duration) {
    Mock::given(method("GET"))
        .and(path(TOKEN))
        .and(query_param("grant_type", "client_credentials"))
        .respond_with(SequentialTokens {
            issued: AtomicUsize::new(0),
            expires_in,
            delay,
        })
        .mount(server)
        .await;
}

async fn mount_token(server: &MockServer) {
    mount_tokens(server, json!("3599"), Duration::ZERO).await;
}

async fn mount(server: &MockServer, route: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, route: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == route)
        .collect()
}

async fn count(server: &MockServer, route: &str) -> usize {
    requests_to(server, route).await.len()
}

fn bearer(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Answers from a list in order, repeating the last one.
struct Sequence(AtomicUsize, Vec<ResponseTemplate>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.0.fetch_add(1, Ordering::SeqCst);
        self.1[i.min(self.1.len() - 1)].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn tokens_are_cached_per_credential_set() {
    let server = MockServer::start().await;
    for (key, secret, token) in [("key-a", "secret-a", "token-a"), ("key-b", "secret-b", "token-b")] {
        Mock::given(method("GET"))
            .and(path(TOKEN))
            .and(header("authorization", basic(key, secret).as_str()))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"access_token": token, "expires_in": "3599"})),
            )
            .mount(&server)
            .await;
    }
    mount(&server, PUSH, ResponseTemplate::new(200).set_body_json(accepted_push())).await;
    let client = daraja(&server, fast_retry(1));
    let a = Fx::with_credentials("key-a", "secret-a");
    let b = Fx::with_credentials("key-b", "secret-b");
    for _ in 0..3 {
        client.stk_push(&a.push()).await.unwrap();
    }
    for _ in 0..2 {
        client.stk_push(&b.push()).await.unwrap();
    }
    let tokens = requests_to(&server, TOKEN).await;
    assert_eq!(tokens.len(), 2, "one token fetch per credential set");
    let bearers: Vec<String> = requests_to(&server, PUSH).await.iter().map(bearer).collect();
    assert_eq!(
        bearers,
        [
            "Bearer token-a",
            "Bearer token-a",
            "Bearer token-a",
            "Bearer token-b",
            "Bearer token-b"
        ]
    );
}

#[tokio::test]
async fn token_is_refreshed_a_minute_before_it_expires() {
    // "61" (a string, as real Daraja sends it): fresh for one second.
    let server = MockServer::start().await;
    mount_tokens(&server, json!("61"), Duration::ZERO).await;
    mount(&server, PUSH, ResponseTemplate::new(200).set_body_json(accepted_push())).await;
    let client = daraja(&server, fast_retry(1));
    let fx = Fx::new();
    client.stk_push(&fx.push()).await.unwrap();
    client.stk_push(&fx.push()).await.unwrap();
    assert_eq!(count(&server, TOKEN).await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.stk_push(&fx.push()).await.unwrap();
    assert_eq!(count(&server, TOKEN).await, 2, "refreshed 60 s before expiry");
    let bearers: Vec<String> = requests_to(&server, PUSH).await.iter().map(bearer).collect();
    assert_eq!(bearers, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);

    // 60 (a number, as documented): inside the margin at once, so every call fetches.
    let server = MockServer::start().await;
    mount_tokens(&server, json!(60), Duration::ZERO).await;
    mount(&server, PUSH, ResponseTemplate::new(200).set_body_json(accepted_push())).await;
    let client = daraja(&server, fast_retry(1));
    client.stk_push(&fx.push()).await.unwrap();
    client.stk_push(&fx.push()).await.unwrap();
    assert_eq!(count(&server, TOKEN).await, 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let server = MockServer::start().await;
    mount_tokens(&server, json!("3599"), Duration::from_millis(300)).await;
    mount(
        &server,
        QUERY,
        ResponseTemplate::new(200).set_body_json(json!({"ResponseCode": "0", "ResultCode": "0", "ResultDesc": "ok"})),
    )
    .await;
    let client = daraja(&server, fast_retry(1));
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let fx = Fx::new();
            client.stk_query(&fx.query()).await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(StkQueryAnswer::Final(_))));
    }
    assert_eq!(count(&server, TOKEN).await, 1, "single flight");
    assert_eq!(count(&server, QUERY).await, 12);
}

/// Refuses `tok-1` with the product's invalid-token answer, accepts anything else.
struct RefusesFirstToken {
    status: u16,
    code: &'static str,
    success: Value,
}

impl Respond for RefusesFirstToken {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if bearer(request) == "Bearer tok-1" {
            ResponseTemplate::new(self.status).set_body_json(envelope(self.code, "Invalid Access Token"))
        } else {
            ResponseTemplate::new(200).set_body_json(self.success.clone())
        }
    }
}

#[tokio::test]
async fn invalid_token_is_refreshed_once_for_each_products_code() {
    let fx = Fx::new();
    let query_ok = json!({"ResponseCode": "0", "ResultCode": "1032", "ResultDesc": "Request cancelled by user"});
    let ack = json!({
        "ConversationID": "AG_1", "OriginatorConversationID": "o", "ResponseCode": "0", "ResponseDescription": "ok"
    });
    let registered = json!({"OriginatorCoversationID": "x", "ResponseCode": "0", "ResponseDescription": "success"});
    let cases: [(&str, u16, &str, Value); 5] = [
        (PUSH, 404, "404.001.03", accepted_push()),
        (QUERY, 404, "404.001.03", query_ok),
        (B2C, 401, "401.002.01", accepted_b2c()),
        (STATUS, 400, "400.003.01", ack),
        (C2B_V1, 400, "400.003.01", registered),
    ];
    for (route, status, code, success) in cases {
        let server = MockServer::start().await;
        mount_token(&server).await;
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(RefusesFirstToken { status, code, success })
            .mount(&server)
            .await;
        let client = daraja(&server, fast_retry(1));
        let ok = match route {
            PUSH => client.stk_push(&fx.push()).await.is_ok(),
            QUERY => client.stk_query(&fx.query()).await.is_ok(),
            B2C => client.b2c_payment(&fx.b2c()).await.is_ok(),
            STATUS => client.transaction_status(&fx.status()).await.is_ok(),
            _ => client.register_c2b_urls(&fx.c2b(C2bApiVersion::V1)).await.is_ok(),
        };
        assert!(ok, "{route}: succeeds after one refresh");
        assert_eq!(count(&server, TOKEN).await, 2, "{route}");
        let bearers: Vec<String> = requests_to(&server, route).await.iter().map(bearer).collect();
        assert_eq!(bearers, ["Bearer tok-1", "Bearer tok-2"], "{route}");
    }
}

#[tokio::test]
async fn a_token_refused_twice_is_an_auth_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(
        &server,
        B2C,
        ResponseTemplate::new(401).set_body_json(envelope("401.002.01", "Invalid Access Token")),
    )
    .await;
    let fx = Fx::new();
    let error = daraja(&server, fast_retry(3)).b2c_payment(&fx.b2c()).await.unwrap_err();
    assert!(
        matches!(&error, DarajaError::Auth { code, .. } if code == "401.002.01"),
        "{error:?}"
    );
    assert_eq!(count(&server, B2C).await, 2, "exactly one retry with a fresh token");
    assert_eq!(count(&server, TOKEN).await, 2);
}

#[tokio::test]
async fn token_call_failures_are_auth_errors_and_not_retried() {
    let fx = Fx::new();
    let cases = [
        ResponseTemplate::new(400),
        ResponseTemplate::new(400).set_body_json(envelope("400.008.01", "Invalid Authentication passed")),
        ResponseTemplate::new(400).set_body_json(envelope("400.008.02", "Invalid grant type passed")),
        ResponseTemplate::new(401).set_body_string("<html><body>Unauthorized</body></html>"),
    ];
    for response in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(TOKEN))
            .respond_with(response)
            .mount(&server)
            .await;
        let error = daraja(&server, fast_retry(3)).stk_push(&fx.push()).await.unwrap_err();
        assert!(matches!(error, DarajaError::Auth { .. }), "{error:?}");
        assert_eq!(count(&server, TOKEN).await, 1);
        assert_eq!(count(&server, PUSH).await, 0, "nothing sent without a token");
    }
}

#[tokio::test]
async fn product_not_enabled_is_an_auth_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let body = envelope(
        "401.003.01",
        "Error Occurred - Invalid Access Token - Invalid API call as no apiproduct match found",
    );
    mount(&server, B2C, ResponseTemplate::new(401).set_body_json(body)).await;
    let error = daraja(&server, fast_retry(3))
        .b2c_payment(&Fx::new().b2c())
        .await
        .unwrap_err();
    assert!(matches!(error, DarajaError::Auth { .. }), "{error:?}");
    assert_eq!(
        count(&server, TOKEN).await,
        1,
        "no refresh for a product that is not enabled"
    );
}

// ---------------------------------------------------------------------------------------------
// STK Push

#[tokio::test]
async fn push_password_and_timestamp_are_built_from_one_timestamp() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(&server, PUSH, ResponseTemplate::new(200).set_body_json(accepted_push())).await;
    let fx = Fx::new();
    let accepted = daraja(&server, fast_retry(1)).stk_push(&fx.push()).await.unwrap();
    assert_eq!(accepted.checkout_request_id, "ws_CO_211120261430051234712345678");
    assert_eq!(accepted.merchant_request_id, "ac7b-470b-8df7-23ab3cef38271071873");
    assert_eq!(accepted.response_code, "0");
    assert_eq!(accepted.customer_message, "Success. Request accepted for processing");

    let sent = requests_to(&server, PUSH).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(bearer(&sent[0]), "Bearer tok-1");
    let content_type = sent[0].headers.get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("application/json"));
    let body: Value = sent[0].body_json().unwrap();
    let timestamp = body["Timestamp"].as_str().unwrap();
    assert_eq!(timestamp, "20261121143005", "Nairobi time of 11:30:05 UTC");
    let password = String::from_utf8(STANDARD.decode(body["Password"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(password, format!("174379{PASSKEY}{timestamp}"));
    assert_eq!(body["BusinessShortCode"], "174379");
    assert_eq!(body["TransactionType"], "CustomerPayBillOnline");
    assert_eq!(body["Amount"], "100");
    assert_eq!(body["PartyA"], "254712345678");
    assert_eq!(body["PartyB"], "174379");
    assert_eq!(body["PhoneNumber"], "254712345678");
    assert_eq!(body["CallBackURL"], "https://api.example.com/callbacks/stk/tok123");
    assert_eq!(body["AccountReference"], "ORDER1234");
    assert_eq!(body["TransactionDesc"], "Chess set");
}

async fn push_error(response: ResponseTemplate) -> (DarajaError, usize) {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(&server, PUSH, response).await;
    let error = daraja(&server, fast_retry(3))
        .stk_push(&Fx::new().push())
        .await
        .unwrap_err();
    (error, count(&server, PUSH).await)
}

#[tokio::test]
async fn push_errors_are_classified() {
    let json_error =
        |status: u16, code: &str, message: &str| ResponseTemplate::new(status).set_body_json(envelope(code, message));

    let (e, n) = push_error(json_error(400, "400.002.02", "Bad Request - Invalid PhoneNumber")).await;
    assert!(
        matches!(&e, DarajaError::Rejected { http_status: 400, code, .. } if code == "400.002.02"),
        "{e:?}"
    );
    assert!(e.is_invalid_field() && !e.may_have_been_acted_on());
    assert_eq!(n, 1);

    let (e, n) = push_error(json_error(500, "500.001.1001", "Wrong credentials")).await;
    assert!(
        matches!(&e, DarajaError::Rejected { http_status: 500, code, .. } if code == "500.001.1001"),
        "{e:?}"
    );
    assert!(e.is_wrong_credentials() && !e.is_merchant_unknown() && !e.is_subscriber_locked());
    assert_eq!(n, 1);

    let (e, _) = push_error(json_error(500, "500.001.1001", "Merchant does not exist")).await;
    assert!(e.is_merchant_unknown() && !e.is_wrong_credentials(), "{e:?}");

    let locked = "Unable to lock subscriber, a transaction is already in process for the current subscriber";
    let (e, n) = push_error(json_error(500, "500.001.1001", locked)).await;
    assert!(e.is_subscriber_locked() && !e.is_wrong_credentials(), "{e:?}");
    assert_eq!(
        n, 1,
        "a locked subscriber is not retried here (about a minute later, by the caller)"
    );

    let (e, n) = push_error(ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>")).await;
    assert!(
        matches!(e, DarajaError::OutcomeUnknown { .. }) && e.may_have_been_acted_on(),
        "{e:?}"
    );
    assert_eq!(n, 1, "a 503 is not proof that the push was not processed");

    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let (e, n) = push_error(ResponseTemplate::new(502).set_body_string(html)).await;
    assert!(
        matches!(e, DarajaError::OutcomeUnknown { .. }) && e.may_have_been_acted_on(),
        "{e:?}"
    );
    assert_eq!(n, 1, "never retried: a second push could charge twice");

    let soap = r#"<soapenv:Envelope><soapenv:Body><soapenv:Fault><faultstring>Internal</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
    let (e, n) = push_error(ResponseTemplate::new(500).set_body_string(soap)).await;
    assert!(matches!(e, DarajaError::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(n, 1);

    let (e, n) = push_error(ResponseTemplate::new(200).set_body_string("<html>OK</html>")).await;
    assert!(
        matches!(e, DarajaError::Protocol { .. }) && e.may_have_been_acted_on(),
        "{e:?}"
    );
    assert_eq!(n, 1);
}

#[tokio::test]
async fn rate_limits_are_classified_and_retried_with_backoff() {
    for (code, message) in [
        ("500.003.02", "Spike Arrest Violation"),
        ("500.003.03", "Quota Violation"),
    ] {
        let server = MockServer::start().await;
        mount_token(&server).await;
        let limited = ResponseTemplate::new(500).set_body_json(envelope(code, message));
        mount(&server, PUSH, limited).await;
        let error = daraja(&server, fast_retry(3))
            .stk_push(&Fx::new().push())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, DarajaError::RateLimited { code: c, .. } if c == code),
            "{error:?}"
        );
        assert_eq!(
            count(&server, PUSH).await,
            3,
            "refused at the gateway: safe to retry, bounded"
        );
    }

    let server = MockServer::start().await;
    mount_token(&server).await;
    let limited = ResponseTemplate::new(500).set_body_json(envelope("500.003.02", "Spike Arrest Violation"));
    let ok = ResponseTemplate::new(200).set_body_json(accepted_push());
    Mock::given(method("POST"))
        .and(path(PUSH))
        .respond_with(Sequence(AtomicUsize::new(0), vec![limited.clone(), limited, ok]))
        .mount(&server)
        .await;
    assert!(daraja(&server, fast_retry(3)).stk_push(&Fx::new().push()).await.is_ok());
    assert_eq!(count(&server, PUSH).await, 3);
}

#[tokio::test]
async fn push_timeout_is_outcome_unknown_and_never_retried() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(
        &server,
        PUSH,
        ResponseTemplate::new(200)
            .set_body_json(accepted_push())
            .set_delay(Duration::from_secs(3)),
    )
    .await;
    let client = HttpDaraja::new(server.uri(), http(Duration::from_millis(300)), fast_retry(5));
    let started = Instant::now();
    let error = client.stk_push(&Fx::new().push()).await.unwrap_err();
    assert!(
        matches!(error, DarajaError::OutcomeUnknown { .. }) && error.may_have_been_acted_on(),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the client's timeout is honoured"
    );
    assert_eq!(count(&server, PUSH).await, 1, "exactly one push");
}

#[tokio::test]
async fn query_timeout_is_retried_within_bounds() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"ResponseCode": "0", "ResultCode": "0", "ResultDesc": "ok"}))
        .set_delay(Duration::from_secs(3));
    mount(&server, QUERY, slow).await;
    let client = HttpDaraja::new(server.uri(), http(Duration::from_millis(200)), fast_retry(3));
    let error = client.stk_query(&Fx::new().query()).await.unwrap_err();
    assert!(matches!(error, DarajaError::OutcomeUnknown { .. }), "{error:?}");
    assert_eq!(count(&server, QUERY).await, 3);
}

/// A server that answers the token request, then cuts every POST off mid-answer.
async fn half_answer_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                if request.starts_with(b"GET ") {
                    let body = r#"{"access_token":"tok-raw","expires_in":"3599"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                } else {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let partial = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"MerchantRequestID\":";
                    let _ = socket.write_all(partial.as_bytes()).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{address}"), posts)
}

#[tokio::test]
async fn connection_closed_mid_answer_is_outcome_unknown_for_a_push() {
    let (base, posts) = half_answer_server().await;
    let client = HttpDaraja::new(base, http(Duration::from_secs(2)), fast_retry(3));
    let error = client.stk_push(&Fx::new().push()).await.unwrap_err();
    assert!(matches!(error, DarajaError::OutcomeUnknown { .. }), "{error:?}");
    assert_eq!(posts.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = HttpDaraja::new(
        format!("http://127.0.0.1:{port}"),
        http(Duration::from_secs(1)),
        fast_retry(2),
    );
    let error = client.stk_push(&Fx::new().push()).await.unwrap_err();
    assert!(matches!(error, DarajaError::Unavailable { .. }), "{error:?}");
    assert!(!error.may_have_been_acted_on());
}

#[tokio::test]
async fn errors_and_their_debug_output_carry_no_secret_or_phone() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let body = envelope(
        "400.002.02",
        "Bad Request - Invalid PhoneNumber 254712345678 for ws_CO_211120261430051234712345678",
    );
    mount(&server, PUSH, ResponseTemplate::new(400).set_body_json(body)).await;
    let fx = Fx::new();
    let error = daraja(&server, fast_retry(1)).stk_push(&fx.push()).await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        for secret in ["254712345678", "1234712345678", PASSKEY, "tok-1", "secret-a", "key-a"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
    }
    assert!(!format!("{:?}", fx.credentials).contains("secret-a"));
}

// ---------------------------------------------------------------------------------------------
// STK Query

#[tokio::test]
async fn query_answers_not_known_yet_and_final_results() {
    let fx = Fx::new();
    for message in ["The transaction is being processed", "The transaction does not Exist"] {
        let server = MockServer::start().await;
        mount_token(&server).await;
        mount(
            &server,
            QUERY,
            ResponseTemplate::new(500).set_body_json(envelope("500.001.1001", message)),
        )
        .await;
        let answer = daraja(&server, fast_retry(3)).stk_query(&fx.query()).await.unwrap();
        assert_eq!(
            answer,
            StkQueryAnswer::NotKnownYet {
                message: message.to_owned()
            }
        );
        assert_eq!(count(&server, QUERY).await, 1, "an answer, not a failure to retry");
    }

    let server = MockServer::start().await;
    mount_token(&server).await;
    let final_body = json!({
        "ResponseCode": "0", "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_211120261430051234712345678",
        "ResultCode": "1032", "ResultDesc": "Request cancelled by user"
    });
    mount(&server, QUERY, ResponseTemplate::new(200).set_body_json(final_body)).await;
    match daraja(&server, fast_retry(1)).stk_query(&fx.query()).await.unwrap() {
        StkQueryAnswer::Final(result) => {
            assert_eq!(result.code.as_str(), "1032");
            assert_eq!(result.description, "Request cancelled by user");
        }
        other => panic!("{other:?}"),
    }
    let sent: Value = requests_to(&server, QUERY).await[0].body_json().unwrap();
    assert_eq!(sent["CheckoutRequestID"], "ws_CO_211120261430051234712345678");
    let timestamp = sent["Timestamp"].as_str().unwrap();
    assert_eq!(timestamp, "20261121143100");
    let password = String::from_utf8(STANDARD.decode(sent["Password"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(password, format!("174379{PASSKEY}{timestamp}"));

    let server = MockServer::start().await;
    mount_token(&server).await;
    let wrong = envelope("500.001.1001", "Wrong credentials");
    mount(&server, QUERY, ResponseTemplate::new(500).set_body_json(wrong)).await;
    let error = daraja(&server, fast_retry(3)).stk_query(&fx.query()).await.unwrap_err();
    assert!(error.is_wrong_credentials(), "{error:?}");
}

#[tokio::test]
async fn query_retries_are_bounded() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(&server, QUERY, ResponseTemplate::new(503)).await;
    let error = daraja(&server, fast_retry(4))
        .stk_query(&Fx::new().query())
        .await
        .unwrap_err();
    assert!(matches!(error, DarajaError::OutcomeUnknown { .. }), "{error:?}");
    assert_eq!(count(&server, QUERY).await, 4);

    let server = MockServer::start().await;
    mount_token(&server).await;
    let ok =
        ResponseTemplate::new(200).set_body_json(json!({"ResponseCode": "0", "ResultCode": 0, "ResultDesc": "ok"}));
    let responses = vec![
        ResponseTemplate::new(502).set_body_string("<html/>"),
        ResponseTemplate::new(503),
        ok,
    ];
    Mock::given(method("POST"))
        .and(path(QUERY))
        .respond_with(Sequence(AtomicUsize::new(0), responses))
        .mount(&server)
        .await;
    let answer = daraja(&server, fast_retry(4))
        .stk_query(&Fx::new().query())
        .await
        .unwrap();
    assert!(matches!(answer, StkQueryAnswer::Final(r) if r.code.is_success()));
    assert_eq!(count(&server, QUERY).await, 3);
}

// ---------------------------------------------------------------------------------------------
// B2C, Transaction Status

#[tokio::test]
async fn b2c_payment_is_sent_on_v3_and_accepted() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(&server, B2C, ResponseTemplate::new(200).set_body_json(accepted_b2c())).await;
    let fx = Fx::new();
    let accepted = daraja(&server, fast_retry(1)).b2c_payment(&fx.b2c()).await.unwrap();
    assert_eq!(accepted.conversation_id, "AG_20261121_00004e4d7b3b0d6fa5e4");
    assert_eq!(accepted.originator_conversation_id, "payout-01JABCDEF");
    let body: Value = requests_to(&server, B2C).await[0].body_json().unwrap();
    assert_eq!(body["Occassion"], "Refund");
    assert_eq!(body["InitiatorName"], "testapi");
    assert_eq!(body["Amount"], "500");
    assert_eq!(body["PartyB"], "254712345678");
    assert_eq!(body["OriginatorConversationID"], "payout-01JABCDEF");
}

#[tokio::test]
async fn b2c_duplicate_originator_conversation_id_is_distinguishable() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let duplicate = envelope("500.002.1001", "Duplicate OriginatorConversationID");
    mount(&server, B2C, ResponseTemplate::new(500).set_body_json(duplicate)).await;
    let error = daraja(&server, fast_retry(3))
        .b2c_payment(&Fx::new().b2c())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DarajaError::Rejected { code, .. } if code == "500.002.1001"),
        "{error:?}"
    );
    assert!(error.is_duplicate_originator_conversation_id());
    assert!(!error.may_have_been_acted_on());
    assert_eq!(count(&server, B2C).await, 1);
}

#[tokio::test]
async fn b2c_is_never_resent_after_an_answer_that_may_follow_delivery() {
    // A 503 or 408 from the gateway may come after Daraja took the payout: resending inside the
    // client would be a second submission. The worker's lease and Transaction Status decide.
    for status in [503, 408] {
        let server = MockServer::start().await;
        mount_token(&server).await;
        mount(&server, B2C, ResponseTemplate::new(status)).await;
        let error = daraja(&server, fast_retry(3))
            .b2c_payment(&Fx::new().b2c())
            .await
            .unwrap_err();
        assert!(error.may_have_been_acted_on(), "{status}: {error:?}");
        assert_eq!(count(&server, B2C).await, 1, "HTTP {status} must not be resent");
    }

    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(
        &server,
        B2C,
        ResponseTemplate::new(504).set_body_string("<html>Gateway Timeout</html>"),
    )
    .await;
    let error = daraja(&server, fast_retry(3))
        .b2c_payment(&Fx::new().b2c())
        .await
        .unwrap_err();
    assert!(matches!(error, DarajaError::OutcomeUnknown { .. }));
    assert_eq!(count(&server, B2C).await, 1, "confirm with Transaction Status instead");

    let server = MockServer::start().await;
    let fx = Fx::new();
    let small = B2cPaymentRequest {
        amount: Amount::new(9).unwrap(),
        ..fx.b2c()
    };
    let error = daraja(&server, fast_retry(3)).b2c_payment(&small).await.unwrap_err();
    assert!(
        matches!(error, DarajaError::InvalidRequest { .. }),
        "B2C moves 10 KES or more"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn transaction_status_uses_initiator_and_original_conversation_id() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let ack = json!({"OriginatorConversationID": "1236-7134259-1", "ConversationID": "AG_20261121_1", "ResponseCode": "0",
        "ResponseDescription": "Accept the service request successfully."});
    mount(&server, STATUS, ResponseTemplate::new(200).set_body_json(ack)).await;
    let fx = Fx::new();
    let ack = daraja(&server, fast_retry(1))
        .transaction_status(&fx.status())
        .await
        .unwrap();
    assert_eq!(ack.conversation_id, "AG_20261121_1");
    assert_eq!(ack.originator_conversation_id, "1236-7134259-1");
    let body: Value = requests_to(&server, STATUS).await[0].body_json().unwrap();
    assert_eq!(body["Initiator"], "testapi");
    assert!(body.get("InitiatorName").is_none());
    assert_eq!(body["OriginalConversationID"], "payout-01JABCDEF");
    assert_eq!(body["CommandID"], "TransactionStatusQuery");
    assert_eq!(body["IdentifierType"], "4");

    let neither = TransactionStatusRequest {
        original_conversation_id: None,
        ..fx.status()
    };
    let error = daraja(&server, fast_retry(1))
        .transaction_status(&neither)
        .await
        .unwrap_err();
    assert!(matches!(error, DarajaError::InvalidRequest { .. }));
}

#[tokio::test]
async fn transaction_status_timeouts_are_retried() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount(
        &server,
        STATUS,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    )
    .await;
    let client = HttpDaraja::new(server.uri(), http(Duration::from_millis(200)), fast_retry(2));
    let error = client.transaction_status(&Fx::new().status()).await.unwrap_err();
    assert!(matches!(error, DarajaError::OutcomeUnknown { .. }));
    assert_eq!(count(&server, STATUS).await, 2);
}

// ---------------------------------------------------------------------------------------------
// C2B registration

#[tokio::test]
async fn c2b_register_accepts_every_success_shape() {
    let fx = Fx::new();
    let shapes = [
        json!({"OriginatorCoversationID": "6e86-45dd-91ac-fd5d4178ab523559", "ResponseCode": "0", "ResponseDescription": "success"}),
        json!({"ResponseCode": "00000000", "ResponseDescription": "Success"}),
        json!({"ResponseDescription": "Success"}),
    ];
    for (version, route) in [(C2bApiVersion::V1, C2B_V1), (C2bApiVersion::V2, C2B_V2)] {
        for shape in &shapes {
            let server = MockServer::start().await;
            mount_token(&server).await;
            mount(&server, route, ResponseTemplate::new(200).set_body_json(shape.clone())).await;
            let registered = daraja(&server, fast_retry(1)).register_c2b_urls(&fx.c2b(version)).await;
            assert!(registered.is_ok(), "{route} {shape}: {registered:?}");
            let body: Value = requests_to(&server, route).await[0].body_json().unwrap();
            assert_eq!(body["ResponseType"], "Completed");
            assert_eq!(body["ShortCode"], "600984");
            assert_eq!(body["ConfirmationURL"], "https://api.example.com/c2b/confirm/Zx81");
        }
    }
}

#[tokio::test]
async fn c2b_urls_already_registered_is_distinguishable() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let already = envelope("500.003.1001", "Urls are already registered");
    mount(&server, C2B_V1, ResponseTemplate::new(500).set_body_json(already)).await;
    let error = daraja(&server, fast_retry(3))
        .register_c2b_urls(&Fx::new().c2b(C2bApiVersion::V1))
        .await
        .unwrap_err();
    assert!(error.is_urls_already_registered(), "{error:?}");
    assert!(matches!(error, DarajaError::Rejected { .. }));
    assert_eq!(count(&server, C2B_V1).await, 1);
}

#[tokio::test]
async fn c2b_urls_safaricom_would_refuse_are_not_sent() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let fx = Fx::new();
    for url in [
        "https://api.example.com/mpesa/confirm",
        "https://abc.ngrok-free.app/c2b",
        "https://webhook.site/x",
    ] {
        let request = C2bRegisterRequest {
            confirmation_url: url,
            ..fx.c2b(C2bApiVersion::V2)
        };
        let error = daraja(&server, fast_retry(1))
            .register_c2b_urls(&request)
            .await
            .unwrap_err();
        assert!(matches!(error, DarajaError::InvalidRequest { .. }), "{url}: {error:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// SecurityCredential

#[test]
fn security_credential_decrypts_with_the_simulators_key() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::{Pkcs1v15Encrypt, RsaPrivateKey};
    let certificate = include_str!("../../simulator/testdata/initiator-cert.pem");
    let key = RsaPrivateKey::from_pkcs8_pem(include_str!("../../simulator/testdata/initiator-key.pem")).unwrap();
    let password = Secret::new("Safaricom999!*!");
    let credential = encrypt_security_credential(&password, certificate).unwrap();
    let plain = key
        .decrypt(Pkcs1v15Encrypt, &STANDARD.decode(credential).unwrap())
        .unwrap();
    assert_eq!(plain, b"Safaricom999!*!");
}

// ---------------------------------------------------------------------------------------------
// Fixtures (also the seed corpus of the fuzz targets)

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/daraja/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn fixtures_parse_as_the_guide_describes() {
    use checkout::daraja::callbacks::{
        parse_b2c_result, parse_c2b_notification, parse_stk_callback, parse_transaction_status_result,
    };
    use checkout::daraja::{
        parse_acknowledgement, parse_b2c_response, parse_c2b_register_response, parse_error_envelope,
        parse_stk_push_response, parse_stk_query_response, parse_token_response, KesDecimal,
    };

    let paid = parse_stk_callback(&fixture("stk_callback_success.json")).unwrap();
    assert!(paid.is_success());
    assert_eq!(paid.amount, Some(Ok(Amount::new(100).unwrap())));
    assert_eq!(paid.receipt.as_deref(), Some("TKL4ABC12D"));
    let cancelled = parse_stk_callback(&fixture("stk_callback_cancelled.json")).unwrap();
    assert_eq!(cancelled.result.code.as_str(), "1032");

    let b2c = parse_b2c_result(&fixture("b2c_result_success.json")).unwrap();
    assert_eq!(
        b2c.params.charges_paid_account_funds,
        Some(Ok(KesDecimal::from_cents(-11_000)))
    );
    let failed = parse_b2c_result(&fixture("b2c_result_failure.json")).unwrap();
    assert_eq!((failed.result.code.as_str(), failed.transaction_id), ("2001", None));
    let timeout = parse_b2c_result(&fixture("b2c_queue_timeout.json")).unwrap();
    assert_eq!(timeout.originator_conversation_id.as_deref(), Some("payout-01JABCDEF"));

    assert!(
        parse_transaction_status_result(&fixture("transaction_status_completed.json"))
            .unwrap()
            .is_completed()
    );
    assert!(
        parse_transaction_status_result(&fixture("transaction_status_not_found.json"))
            .unwrap()
            .is_not_found()
    );

    let v2 = parse_c2b_notification(&fixture("c2b_confirmation_v2.json")).unwrap();
    assert_eq!(v2.msisdn.as_deref(), Some("2547 ***** 126"));
    let v1 = parse_c2b_notification(&fixture("c2b_confirmation_v1.json")).unwrap();
    assert_eq!(v1.msisdn.as_ref().map(String::len), Some(62));
    assert_eq!(v1.trans_amount, Some(Ok(Amount::new(500).unwrap())));

    assert_eq!(
        parse_stk_push_response(&fixture("stk_push_accepted.json"))
            .unwrap()
            .response_code,
        "0"
    );
    let query = parse_stk_query_response(&fixture("stk_query_final.json")).unwrap();
    assert_eq!(query.result.unwrap().code.as_str(), "1032");
    assert_eq!(
        parse_error_envelope(&fixture("stk_query_being_processed.json"))
            .unwrap()
            .code,
        "500.001.1001"
    );
    assert_eq!(
        parse_error_envelope(&fixture("error_invalid_field.json")).unwrap().code,
        "400.002.02"
    );
    assert!(parse_error_envelope(&fixture("error_gateway_fault.json")).is_ok());
    assert_eq!(
        parse_token_response(&fixture("token.json")).unwrap().expires_in,
        Duration::from_secs(3599)
    );
    assert_eq!(
        parse_b2c_response(&fixture("b2c_accepted.json")).unwrap().response_code,
        "0"
    );
    assert!(parse_acknowledgement(&fixture("b2c_accepted.json")).is_ok());
    assert!(parse_c2b_register_response(&fixture("c2b_registered.json"))
        .unwrap()
        .is_success());
}
