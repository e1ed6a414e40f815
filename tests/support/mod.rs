//! Test harness: a dev stack (every function's handler, in-memory storage and queue) with an
//! embedded, fast Daraja simulator, driven over HTTP like a merchant would.

#![allow(dead_code)]

use std::time::Duration;

use devstack::{DevStack, Options, ALL_SCOPES};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub struct Harness {
    pub stack: DevStack,
    /// The stack's clock, when the test controls time.
    pub clock: Option<std::sync::Arc<checkout::clock::ManualClock>>,
    pub http: reqwest::Client,
    /// Every scope, subject `merchant-a`.
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Options::for_tests()).await
    }

    pub async fn start_with(options: Options) -> Harness {
        let stack = DevStack::start(options).await.expect("dev stack starts");
        let token = stack.token("merchant-a", ALL_SCOPES, Duration::from_secs(600));
        Harness { stack, clock: None, http: reqwest::Client::new(), token }
    }

    /// A stack whose clock only moves when the test says so.
    pub async fn start_with_manual_clock(mut options: Options) -> Harness {
        let clock = std::sync::Arc::new(checkout::clock::ManualClock::new(chrono::Utc::now()));
        options.clock = Some(clock.clone());
        let mut harness = Harness::start_with(options).await;
        harness.clock = Some(clock);
        harness
    }

    /// Moves the stack's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.as_ref().expect("a manual clock").advance(chrono::Duration::seconds(seconds));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url())
    }

    pub fn sim_url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.simulator_url())
    }

    pub fn token_for(&self, subject: &str, scopes: &[&str]) -> String {
        self.stack.token(subject, scopes, Duration::from_secs(600))
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply { status, headers, body }
    }

    /// `POST /v1/payments` with a JSON body, the harness token and `key`.
    pub async fn create_payment(&self, key: &str, body: &Value) -> Reply {
        self.create_payment_as(&self.token, key, body).await
    }

    pub async fn create_payment_as(&self, token: &str, key: &str, body: &Value) -> Reply {
        let response = self
            .http
            .post(self.url("/v1/payments"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .expect("request");
        Harness::reply(response).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Harness::reply(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_as(&self.token, path).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Reply {
        Harness::reply(self.http.get(self.url(path)).bearer_auth(token).send().await.expect("request")).await
    }

    pub async fn payment(&self, id: &str) -> Value {
        let reply = self.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// Polls the payment until `done` holds (up to 10 s).
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let payment = self.payment(id).await;
            if done(&payment) {
                return payment;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("payment {id} never became {what}: {payment:#}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_status(&self, id: &str, status: &str) -> Value {
        self.wait_for(id, status, |p| p["status"] == status).await
    }

    /// The simulator's ground truth, filtered.
    pub async fn sim_transactions(&self, query: &str) -> Vec<Value> {
        let url = self.sim_url(&format!("/__control/transactions{query}"));
        let body: Value = self.http.get(url).send().await.expect("sim").json().await.expect("json");
        body.as_array().cloned().unwrap_or_default()
    }

    pub async fn sim_post(&self, path: &str, body: &Value) -> Value {
        let response = self.http.post(self.sim_url(path)).json(body).send().await.expect("sim");
        assert!(response.status().is_success(), "simulator refused {path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn sim_put(&self, path: &str, body: &Value) {
        let response = self.http.put(self.sim_url(path)).json(body).send().await.expect("sim");
        assert!(response.status().is_success(), "simulator refused {path}: {}", response.status());
    }

    /// The STK pushes the simulator received for a CheckoutRequestID (or all when `None`).
    pub async fn stk_pushes(&self) -> Vec<Value> {
        self.sim_transactions("?kind=stk").await.into_iter().filter(|t| t["endpoint"].as_str().unwrap_or("").contains("processrequest")).collect()
    }

    /// The callback URL our API gave Daraja for this payment.
    pub async fn callback_url(&self, checkout_request_id: &str) -> String {
        let txs = self.sim_transactions(&format!("?checkout_request_id={checkout_request_id}")).await;
        let tx = txs.first().expect("the simulator saw the push");
        tx["request"]["CallBackURL"].as_str().expect("CallBackURL").to_owned()
    }

    /// POSTs a raw callback body to a callback URL, as Safaricom would.
    pub async fn post_callback(&self, url: &str, body: &Value) -> Reply {
        let request = self.http.post(url).header("x-forwarded-for", "196.201.214.200").json(body);
        Harness::reply(request.send().await.expect("callback")).await
    }

    /// Waits until the callback queue is drained (and nothing is in flight).
    pub async fn settle_queue(&self) {
        let queue = self.stack.memory_queue().expect("in-memory queue");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !(queue.is_empty() && queue.in_flight() == 0) {
            assert!(tokio::time::Instant::now() < deadline, "callback queue never drained");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Callback records stored for a payment.
    pub async fn callback_records(&self, payment_id: &str) -> Vec<Value> {
        use checkout::store::{Index, Order, Query};
        let query = Query::new(Index::Gsi1, format!("CB#RES#{payment_id}"), Order::Ascending, 100);
        let items = self.stack.table().query(&query).await.expect("query");
        items.iter().map(|i| serde_json::from_str(&i.doc).expect("record")).collect()
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
    }
}

pub fn payment_body(phone: &str, amount: u64) -> Value {
    json!({"amount": amount, "phone": phone, "reference": "ORDER1234", "description": "Chess set"})
}

/// A unique idempotency key per call.
pub fn key() -> String {
    format!("key-{}", ulid_like())
}

fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0), N.fetch_add(1, Ordering::Relaxed))
}

/// A success callback body for a payment, as Daraja sends it.
pub fn success_callback(checkout_request_id: &str, amount: Value, receipt: &str) -> Value {
    json!({"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": checkout_request_id, "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": amount}, {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261121143032u64},
            {"Name": "PhoneNumber", "Value": 254712345678u64}]}}}})
}

pub fn failure_callback(checkout_request_id: &str, code: Value, desc: &str) -> Value {
    json!({"Body": {"stkCallback": {
        "MerchantRequestID": "m-1", "CheckoutRequestID": checkout_request_id, "ResultCode": code, "ResultDesc": desc}}})
}
