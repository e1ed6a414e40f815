//! Test harness: a dev stack (every function's handler, in-memory storage and queue) with an
//! embedded, fast Daraja simulator, driven over HTTP like a merchant would.

#![allow(dead_code)]

pub mod browser;

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
        Harness {
            stack,
            clock: None,
            http: reqwest::Client::new(),
            token,
        }
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
        self.clock
            .as_ref()
            .expect("a manual clock")
            .advance(chrono::Duration::seconds(seconds));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url())
    }

    pub fn sim_url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.simulator_url())
    }

    /// A token for `subject` acting as its own merchant (the merchant defaults to the subject).
    pub fn token_for(&self, subject: &str, scopes: &[&str]) -> String {
        self.stack.token(subject, scopes, Duration::from_secs(600))
    }

    /// A token for another user (`subject`) of the harness's merchant, `merchant-a`.
    pub fn colleague(&self, subject: &str, scopes: &[&str]) -> String {
        self.stack
            .token_for_merchant(subject, "merchant-a", scopes, Duration::from_secs(600))
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
        Harness::reply(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .expect("request"),
        )
        .await
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
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .expect("sim")
            .json()
            .await
            .expect("json");
        body.as_array().cloned().unwrap_or_default()
    }

    pub async fn sim_post(&self, path: &str, body: &Value) -> Value {
        let response = self.http.post(self.sim_url(path)).json(body).send().await.expect("sim");
        assert!(
            response.status().is_success(),
            "simulator refused {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn sim_put(&self, path: &str, body: &Value) {
        let response = self.http.put(self.sim_url(path)).json(body).send().await.expect("sim");
        assert!(
            response.status().is_success(),
            "simulator refused {path}: {}",
            response.status()
        );
    }

    /// The STK pushes the simulator received for a CheckoutRequestID (or all when `None`).
    pub async fn stk_pushes(&self) -> Vec<Value> {
        self.sim_transactions("?kind=stk")
            .await
            .into_iter()
            .filter(|t| t["endpoint"].as_str().unwrap_or("").contains("processrequest"))
            .collect()
    }

    /// The callback URL our API gave Daraja for this payment.
    pub async fn callback_url(&self, checkout_request_id: &str) -> String {
        let txs = self
            .sim_transactions(&format!("?checkout_request_id={checkout_request_id}"))
            .await;
        let tx = txs.first().expect("the simulator saw the push");
        tx["request"]["CallBackURL"].as_str().expect("CallBackURL").to_owned()
    }

    /// POSTs a raw callback body to a callback URL, as Safaricom would.
    pub async fn post_callback(&self, url: &str, body: &Value) -> Reply {
        let request = self
            .http
            .post(url)
            .header("x-forwarded-for", "196.201.214.200")
            .json(body);
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
        items
            .iter()
            .map(|i| serde_json::from_str(&i.doc).expect("record"))
            .collect()
    }

    // ------------------------------------------------------------------ C2B

    /// `POST /v1/c2b/registrations` with the harness token (every scope).
    pub async fn register_c2b(&self, body: &Value) -> Reply {
        self.send(
            self.http
                .post(self.url("/v1/c2b/registrations"))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }

    /// Registers `shortcode` and returns the registration (asserting success).
    pub async fn register_shortcode(&self, body: Value) -> Value {
        let reply = self.register_c2b(&body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// `POST /v1/c2b/expected-payments` with the harness token and `key`.
    pub async fn create_expected(&self, key: &str, body: &Value) -> Reply {
        let request = self
            .http
            .post(self.url("/v1/c2b/expected-payments"))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .json(body);
        self.send(request).await
    }

    /// A Daraja access token from the simulator (public test credentials).
    pub async fn sim_token(&self) -> String {
        let url = self.sim_url("/oauth/v1/generate?grant_type=client_credentials");
        let response = self
            .http
            .get(url)
            .basic_auth(
                simulator::test_credentials::CONSUMER_KEY,
                Some(simulator::test_credentials::CONSUMER_SECRET),
            )
            .send()
            .await
            .expect("sim oauth");
        let body: Value = response.json().await.expect("token json");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A customer paying `shortcode` from their phone (Daraja's sandbox C2B simulate); returns the
    /// simulator's OriginatorConversationID of the transaction.
    pub async fn c2b_simulate(&self, shortcode: &str, msisdn: &str, amount: u64, bill_ref: &str) -> String {
        let body = json!({"ShortCode": shortcode, "CommandID": "CustomerPayBillOnline", "Amount": amount.to_string(),
                          "Msisdn": msisdn, "BillRefNumber": bill_ref});
        self.sim_daraja_post("/mpesa/c2b/v1/simulate", &body).await["OriginatorCoversationID"]
            .as_str()
            .expect("OriginatorCoversationID")
            .to_owned()
    }

    /// POSTs a Daraja API request to the simulator with a bearer token; asserts success.
    pub async fn sim_daraja_post(&self, path: &str, body: &Value) -> Value {
        let token = self.sim_token().await;
        let response = self
            .http
            .post(self.sim_url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("sim");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "simulator refused {path}: {status} {body}");
        body
    }

    /// `PATCH /__control/config` on the simulator.
    pub async fn sim_patch_config(&self, patch: &Value) {
        let response = self
            .http
            .patch(self.sim_url("/__control/config"))
            .json(patch)
            .send()
            .await
            .expect("sim");
        assert!(
            response.status().is_success(),
            "simulator refused the config patch: {}",
            response.status()
        );
    }

    /// The simulator's C2B transaction once it has settled (completed, failed or cancelled), and
    /// once its callbacks have finished.
    pub async fn wait_c2b_tx(&self, originator_conversation_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self
                .sim_transactions(&format!(
                    "?kind=c2b&originator_conversation_id={originator_conversation_id}"
                ))
                .await;
            if let Some(row) = rows.first() {
                let settled = row["status"] != "pending";
                let callbacks_done = row["callbacks"]
                    .as_array()
                    .is_none_or(|c| c.iter().all(|a| !a["finished_at"].is_null() || a["state"] == "dropped"));
                if settled && callbacks_done {
                    return row.clone();
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "C2B transaction {originator_conversation_id} never settled: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /v1/c2b/payments{query}` as the harness client.
    pub async fn c2b_payments(&self, query: &str) -> Vec<Value> {
        let reply = self.get(&format!("/v1/c2b/payments{query}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The C2B payment recorded for receipt `trans_id` on `shortcode`, once `done` holds (up to 10 s).
    pub async fn wait_c2b_payment(&self, shortcode: &str, trans_id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .c2b_payments(&format!("?shortcode={shortcode}&limit=100"))
                .await
                .into_iter()
                .find(|p| p["trans_id"] == trans_id);
            if let Some(payment) = found.filter(|p| done(p)) {
                return payment;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no C2B payment for {trans_id} on {shortcode} reached the expected state"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the C2B verification sweep until the confirmation of `trans_id` is no longer
    /// `unverified` (Daraja's Transaction Status answer came back and was applied).
    pub async fn verify_c2b(&self, shortcode: &str, trans_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.stack.sweep_c2b_now().await;
            let settled = tokio::time::Instant::now() + Duration::from_millis(500);
            while tokio::time::Instant::now() < settled {
                let found = self
                    .c2b_payments(&format!("?shortcode={shortcode}&limit=100"))
                    .await
                    .into_iter()
                    .find(|p| p["trans_id"] == trans_id);
                if let Some(payment) = found.filter(|p| p["verification"]["status"] != "unverified") {
                    return payment;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the C2B confirmation {trans_id} was never verified or rejected"
            );
        }
    }

    /// Anomalous callback records of today (UTC), any kind.
    pub async fn anomaly_records(&self) -> Vec<Value> {
        use checkout::store::{Index, Order, Query};
        let day = chrono::Utc::now().format("%Y-%m-%d");
        let query = Query::new(Index::Gsi2, format!("CB#ANOMALY#{day}"), Order::Ascending, 500);
        let items = self.stack.table().query(&query).await.expect("query");
        items
            .iter()
            .map(|i| serde_json::from_str(&i.doc).expect("record"))
            .collect()
    }

    /// Checks the outbox invariant over everything the test stored (an event for every state
    /// change, in order, each delivered), then stops the stack.
    pub async fn shutdown(self) {
        let problems = self.stack.outbox_problems(Duration::from_secs(5)).await;
        assert!(problems.is_empty(), "outbox invariant: {problems:#?}");
        self.stack.shutdown().await;
    }

    /// Stops the stack without the outbox check: for tests that write records straight to the
    /// table (fixtures bypass the product, and so its outbox).
    pub async fn shutdown_unchecked(self) {
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
    format!(
        "{}-{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        N.fetch_add(1, Ordering::Relaxed)
    )
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

// ------------------------------------------------------------------ B2C payouts

impl Harness {
    /// `POST /v1/payouts` with the harness token and `key`.
    pub async fn create_payout(&self, key: &str, body: &Value) -> Reply {
        self.create_payout_as(&self.token, key, body).await
    }

    pub async fn create_payout_as(&self, token: &str, key: &str, body: &Value) -> Reply {
        let request = self
            .http
            .post(self.url("/v1/payouts"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body);
        self.send(request).await
    }

    /// `POST /v1/payouts/{id}/approve` or `/reject` as `token`.
    pub async fn review_payout(&self, token: &str, id: &str, action: &str) -> Reply {
        self.send(
            self.http
                .post(self.url(&format!("/v1/payouts/{id}/{action}")))
                .bearer_auth(token),
        )
        .await
    }

    pub async fn payout(&self, id: &str) -> Value {
        self.payout_as(&self.token, id).await
    }

    /// `GET /v1/payouts/{id}` as `token` (its merchant must own the payout).
    pub async fn payout_as(&self, token: &str, id: &str) -> Value {
        let reply = self.get_as(token, &format!("/v1/payouts/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// Polls the payout until `done` holds (up to 10 s).
    pub async fn wait_for_payout(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_payout_as(&self.token, id, what, done).await
    }

    /// [`Harness::wait_for_payout`] as `token`.
    pub async fn wait_for_payout_as(&self, token: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let payout = self.payout_as(token, id).await;
            if done(&payout) {
                return payout;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("payout {id} never became {what}: {payout:#}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_payout_status(&self, id: &str, status: &str) -> Value {
        self.wait_for_payout(id, status, |p| p["status"] == status).await
    }

    /// The simulator's ground truth for one OriginatorConversationID: every B2C request that
    /// carried it, refused ones (duplicates) included.
    pub async fn b2c_truth(&self, originator_conversation_id: &str) -> Vec<Value> {
        self.sim_transactions("?kind=b2c")
            .await
            .into_iter()
            .filter(|r| {
                r["originator_conversation_id"] == originator_conversation_id
                    || r["request"]["OriginatorConversationID"] == originator_conversation_id
            })
            .collect()
    }

    /// Waits until the simulator has settled the payout's B2C transaction (money moved or not).
    pub async fn b2c_settled(&self, originator_conversation_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self.b2c_truth(originator_conversation_id).await;
            if let Some(row) = rows
                .iter()
                .find(|r| r["status"] != "pending" && r["status"] != "rejected")
            {
                return row.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the simulator never settled {originator_conversation_id}: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `n` callback records of `kind` exist for the resource.
    pub async fn wait_for_records(&self, resource_id: &str, kind: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let records: Vec<Value> = self
                .callback_records(resource_id)
                .await
                .into_iter()
                .filter(|r| r["kind"] == kind)
                .collect();
            if records.len() >= n {
                return records;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {n} {kind} records for {resource_id}: {records:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A payout request body.
pub fn payout_body(phone: &str, amount: u64) -> Value {
    json!({"amount": amount, "phone": phone, "kind": "business_payment", "remarks": "Refund ORDER1234", "occasion": "Refund", "metadata": {"order": "1234"}})
}
