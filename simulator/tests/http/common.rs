//! Test helpers: a simulator on 127.0.0.1:0, an HTTP client, and a callback receiver.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use simulator::test_credentials as tc;
use simulator::{SimulatorConfig, SimulatorHandle, TransactionRecord};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Sim {
    pub handle: SimulatorHandle,
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Sim {
    pub async fn start(cfg: SimulatorConfig) -> Sim {
        let handle = simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator starts");
        let base = handle.base_url();
        let client = client();
        let mut sim = Sim {
            handle,
            client,
            base,
            token: String::new(),
        };
        sim.token = sim.new_token().await;
        sim
    }

    pub async fn fast() -> Sim {
        Sim::start(SimulatorConfig::fast_for_tests()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn new_token(&self) -> String {
        let r = self
            .client
            .get(self.url("/oauth/v1/generate?grant_type=client_credentials"))
            .basic_auth(tc::CONSUMER_KEY, Some(tc::CONSUMER_SECRET))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// POST JSON with the bearer token; the body as JSON (or a JSON string if it is not JSON).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with_token(path, body, &self.token).await
    }

    pub async fn post_with_token(&self, path: &str, body: &Value, token: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn transactions(&self, query: &str) -> Vec<TransactionRecord> {
        let r = self
            .client
            .get(self.url(&format!("/__control/transactions{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn tx_by_checkout(&self, crid: &str) -> TransactionRecord {
        let v = self.transactions(&format!("?checkout_request_id={crid}")).await;
        assert_eq!(v.len(), 1, "one transaction for {crid}");
        v.into_iter().next().unwrap()
    }

    /// Polls ground truth until `pred` holds for the transaction found by `query`.
    pub async fn wait_tx(&self, query: &str, pred: impl Fn(&TransactionRecord) -> bool) -> TransactionRecord {
        eventually(|| async { self.transactions(query).await.into_iter().find(|t| pred(t)) }).await
    }

    pub async fn force(&self, body: Value) -> Value {
        let (s, v) = self
            .control(reqwest::Method::POST, "/__control/outcomes", Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn set_faults(&self, body: Value) {
        let (s, v) = self
            .control(reqwest::Method::PUT, "/__control/faults", Some(body))
            .await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn stk_push(&self, phone: &str, amount: Value, callback: &str) -> (u16, Value) {
        self.post("/mpesa/stkpush/v1/processrequest", &stk_body(phone, amount, callback))
            .await
    }

    pub async fn stk_query(&self, crid: &str) -> (u16, Value) {
        let ts = timestamp();
        self.post(
            "/mpesa/stkpushquery/v1/query",
            &json!({
                "BusinessShortCode": tc::STK_SHORTCODE,
                "Password": tc::stk_password(tc::STK_SHORTCODE, tc::STK_PASSKEY, &ts),
                "Timestamp": ts,
                "CheckoutRequestID": crid,
            }),
        )
        .await
    }

    pub async fn b2c(&self, body: &Value) -> (u16, Value) {
        self.post("/mpesa/b2c/v3/paymentrequest", body).await
    }
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

pub fn timestamp() -> String {
    simulator::clock::ts14(&simulator::clock::now())
}

/// The guide's STK Push request, with a fresh Timestamp and its matching Password.
pub fn stk_body(phone: &str, amount: Value, callback: &str) -> Value {
    let ts = timestamp();
    json!({
        "BusinessShortCode": "174379",
        "Password": tc::stk_password(tc::STK_SHORTCODE, tc::STK_PASSKEY, &ts),
        "Timestamp": ts,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": amount,
        "PartyA": phone,
        "PartyB": "174379",
        "PhoneNumber": phone,
        "CallBackURL": callback,
        "AccountReference": "ORDER1234",
        "TransactionDesc": "Chess set",
    })
}

/// The guide's B2C v3 request with a valid SecurityCredential.
pub fn b2c_body(ocid: &str, party_b: &str, amount: u64, rx: &Receiver) -> Value {
    json!({
        "OriginatorConversationID": ocid,
        "InitiatorName": "testapi",
        "SecurityCredential": credential(),
        "CommandID": "BusinessPayment",
        "Amount": amount.to_string(),
        "PartyA": "600992",
        "PartyB": party_b,
        "Remarks": "Refund ORDER1234",
        "QueueTimeOutURL": rx.url(&format!("/b2c/timeout/{ocid}")),
        "ResultURL": rx.url(&format!("/b2c/result/{ocid}")),
        "Occassion": "Refund",
    })
}

/// One valid SecurityCredential, encrypted once (RSA in debug builds is not free).
pub fn credential() -> String {
    static CRED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CRED.get_or_init(|| tc::security_credential(tc::INITIATOR_PASSWORD))
        .clone()
}

/// Polls `f` until it yields `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < WAIT, "condition not met within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: Value,
    delay_ms: u64,
}

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
}

/// A loopback HTTP server recording every request; answers 200 `{"ResultCode":0,...}` unless
/// told otherwise per path prefix.
pub struct Receiver {
    pub base: String,
    shared: Shared,
}

async fn receive(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let body =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    s.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        headers,
        body,
        at: Instant::now(),
    });
    let reply = {
        let replies = s.replies.lock().unwrap();
        replies
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, r)| r.clone())
    };
    let reply = reply.unwrap_or(Reply {
        status: 200,
        body: json!({"ResultCode": 0, "ResultDesc": "Accepted"}),
        delay_ms: 0,
    });
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    (StatusCode::from_u16(reply.status).unwrap(), axum::Json(reply.body)).into_response()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Shared::default();
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { base, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answer requests whose path starts with `prefix` with `body` after `delay_ms`.
    pub fn reply(&self, prefix: &str, status: u16, body: Value, delay_ms: u64) {
        self.shared
            .replies
            .lock()
            .unwrap()
            .insert(prefix.to_string(), Reply { status, body, delay_ms });
    }

    pub fn hits(&self, prefix: &str) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until at least `n` requests hit paths starting with `prefix`.
    pub async fn wait(&self, prefix: &str, n: usize) -> Vec<Hit> {
        eventually(|| async {
            let h = self.hits(prefix);
            (h.len() >= n).then_some(h)
        })
        .await
    }

    pub async fn one(&self, prefix: &str) -> Hit {
        self.wait(prefix, 1).await.remove(0)
    }
}

/// Asserts a Daraja error envelope.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str, message: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorMessage"], message, "{body}");
    assert!(body["requestId"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
}
