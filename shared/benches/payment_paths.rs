//! In-process cost of the two hot paths with in-memory adapters: initiating a payment
//! (parse, idempotency claim + write-ahead, limits, Daraja answer applied) and processing an STK
//! callback from the queue (token check, parse, conditional settle, record). Daraja is an
//! in-process fake that accepts instantly, so the figures are our code, not the network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkout::api::auth::Authenticator;
use checkout::api::{ApiRequest, ApiResponse};
use checkout::auth::JwtSettings;
use checkout::callback_token::{CallbackTokens, TokenPurpose};
use checkout::clock::SystemClock;
use checkout::daraja::{
    Acknowledgement, B2cAccepted, B2cPaymentRequest, C2bRegisterRequest, C2bRegistered, Daraja, DarajaError,
    StkPushAccepted, StkPushRequest, StkQueryAnswer, StkQueryRequest, StkTransactionType, TransactionStatusRequest,
};
use checkout::queue::consumer::{BatchHandler, Delivery};
use checkout::secrets::{Secret, SecretCache, StaticSecret};
use checkout::services::callback_intake::{CallbackEnvelope, CallbackKind};
use checkout::services::limits::LimitsConfig;
use checkout::services::payments::PaymentsConfig;
use checkout::store::memory::MemoryTable;
use checkout::store::Table;
use checkout::{api, wiring};
use criterion::{criterion_group, criterion_main, Criterion};

/// Accepts every push instantly with a unique CheckoutRequestID.
struct InstantDaraja(AtomicU64);

#[async_trait]
impl Daraja for InstantDaraja {
    async fn stk_push(&self, _: &StkPushRequest<'_>) -> Result<StkPushAccepted, DarajaError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(StkPushAccepted {
            merchant_request_id: format!("m-{n}"),
            checkout_request_id: format!("ws_CO_{n}"),
            response_code: "0".into(),
            response_description: "Success. Request accepted for processing".into(),
            customer_message: "Success. Request accepted for processing".into(),
        })
    }
    async fn stk_query(&self, _: &StkQueryRequest<'_>) -> Result<StkQueryAnswer, DarajaError> {
        Err(DarajaError::Unavailable {
            detail: "not used".into(),
        })
    }
    async fn b2c_payment(&self, _: &B2cPaymentRequest<'_>) -> Result<B2cAccepted, DarajaError> {
        Err(DarajaError::Unavailable {
            detail: "not used".into(),
        })
    }
    async fn transaction_status(&self, _: &TransactionStatusRequest<'_>) -> Result<Acknowledgement, DarajaError> {
        Err(DarajaError::Unavailable {
            detail: "not used".into(),
        })
    }
    async fn register_c2b_urls(&self, _: &C2bRegisterRequest<'_>) -> Result<C2bRegistered, DarajaError> {
        Err(DarajaError::Unavailable {
            detail: "not used".into(),
        })
    }
}

const HMAC_KEY: &str = "bench-callback-hmac-key-0123456789abcdef";
const JWT_KEY: &str = "bench-jwt-secret-0123456789abcdef0123456789";

fn secrets() -> Arc<SecretCache> {
    let json = serde_json::json!({
        "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
        "stk_passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        "callback_hmac_key": HMAC_KEY, "jwt_hs256_secret": JWT_KEY,
    });
    Arc::new(SecretCache::new(
        Arc::new(StaticSecret(json.to_string())),
        Duration::from_secs(3600),
    ))
}

fn create_request(token: &str, n: u64) -> ApiRequest {
    let mut request = ApiRequest::new(http::Method::POST, "/v1/payments");
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
        .headers
        .insert("content-type", "application/json".parse().unwrap());
    request
        .headers
        .insert("idempotency-key", format!("bench-{n}").parse().unwrap());
    let phone = format!("2547{:08}", n % 100_000_000);
    request.body =
        serde_json::json!({"amount": 1500, "phone": phone, "reference": "ORDER1234", "description": "Chess set"})
            .to_string()
            .into();
    request
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
    let secrets = secrets();
    let clock = Arc::new(SystemClock);
    let mut service = wiring::payments_service(
        table.clone(),
        Arc::new(InstantDaraja(AtomicU64::new(0))),
        secrets.clone(),
        clock.clone(),
        PaymentsConfig {
            public_base_url: "https://api.example.com".into(),
            transaction_type: StkTransactionType::CustomerPayBillOnline,
            party_b: None,
            timings: Default::default(),
            idempotency_lock: chrono::Duration::seconds(60),
        },
    );
    service.admission = Some(wiring::limits(
        table.clone(),
        LimitsConfig {
            merchant_daily_count: None,
            merchant_daily_amount: None,
            ..LimitsConfig::default()
        },
    ));
    let auth = Authenticator::new(JwtSettings::default(), secrets.clone());
    let now = chrono::Utc::now().timestamp();
    let token = checkout::auth::jwt::mint_hs256(
        &Secret::new(JWT_KEY),
        &serde_json::json!({"sub": "bench", "scope": "payments:write", "exp": now + 3600}),
    );

    let counter = AtomicU64::new(0);
    c.bench_function("initiate: POST /v1/payments (in-memory, instant Daraja)", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let response: ApiResponse =
                runtime.block_on(api::payments::create(&service, &auth, create_request(&token, n)));
            assert_eq!(response.status, http::StatusCode::ACCEPTED);
        })
    });

    // Callback processing: a fresh sent payment for every iteration, made outside the timing.
    let processor = wiring::callback_processor(table.clone(), secrets.clone(), clock);
    let tokens = CallbackTokens::new(Secret::new(HMAC_KEY));
    c.bench_function("callback processor: STK success callback applied", |b| {
        b.iter_batched(
            || {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let response = runtime.block_on(api::payments::create(&service, &auth, create_request(&token, n)));
                let payment: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
                let id = payment["id"].as_str().unwrap().to_owned();
                let crid = payment["checkout_request_id"].as_str().unwrap().to_owned();
                let body = serde_json::json!({"Body": {"stkCallback": {
                    "MerchantRequestID": "m", "CheckoutRequestID": crid, "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {"Item": [{"Name": "Amount", "Value": 1500}, {"Name": "MpesaReceiptNumber", "Value": format!("TKL{n:07}")},
                        {"Name": "Balance"}, {"Name": "TransactionDate", "Value": 20261121143032u64}, {"Name": "PhoneNumber", "Value": 254712345678u64}]}}}});
                let envelope = CallbackEnvelope {
                    v: 1,
                    kind: CallbackKind::StkCallback,
                    token: tokens.token_for(TokenPurpose::StkCallback, &id),
                    received_at: chrono::Utc::now(),
                    source_ip: Some("196.201.214.200".into()),
                    request_id: "bench".into(),
                    body: body.to_string(),
                    body_base64: false,
                };
                Delivery { id: format!("msg-{n}"), body: serde_json::to_string(&envelope).unwrap(), receive_count: 1 }
            },
            |delivery| {
                let failed = runtime.block_on(processor.handle(vec![delivery]));
                assert!(failed.is_empty());
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

/// What the audit trail adds per payment: each entry appended (a read of the chain's head, one
/// two-item conditional transaction), and an event's delivery to it (read, append, mark handled).
/// A payment makes five entries: its API call, `payment.created`, `payment.sent`,
/// `payment.completed` and its callback.
fn bench_audit(c: &mut Criterion) {
    use checkout::audit::{AuditLog, EntryKind, NewEntry};
    use checkout::events::handler::EventHandler;
    use checkout::events::{Cause, EventRecord, EventType, ResourceKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
    let clock = Arc::new(SystemClock);
    let log = AuditLog::new(table.clone(), clock.clone());
    let counter = AtomicU64::new(0);
    let entry = |chain: String, source: String| NewEntry {
        chain,
        source,
        merchant: Some("bench".into()),
        kind: EntryKind::ApiCall,
        action: "POST /v1/payments".into(),
        actor: Default::default(),
        resource: None,
        outcome: "202".into(),
        detail: serde_json::json!({"path": "/v1/payments", "status": 202}),
        occurred_at: chrono::Utc::now(),
    };
    c.bench_function("audit: one entry appended (a payment's chain)", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            // Five entries per chain, as a payment makes.
            let chain = format!("pay_{}", n / 5);
            runtime.block_on(log.append(entry(chain, format!("src_{n}")))).unwrap();
        })
    });
    let handler = EventHandler::new(table.clone(), clock.clone()).with_consumer(Arc::new(log.clone()));
    let view = serde_json::json!({"id": "pay_x", "object": "payment", "amount": 1500, "currency": "KES",
        "status": "completed", "phone": "2547****5678", "reference": "ORDER1234", "description": "Chess set",
        "mpesa_receipt": "TKL0000001", "history": [{"at": "2026-12-03T10:00:00Z", "source": "api", "status": "pending"}]});
    c.bench_function(
        "events: one event delivered to the audit trail and marked handled",
        |b| {
            b.iter_batched(
                || {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let event = EventRecord::new(
                        EventType::PaymentCompleted,
                        ResourceKind::Payment,
                        &format!("pay_e{}", n / 3),
                        n,
                        Some("bench".into()),
                        Cause::Callback,
                        chrono::Utc::now(),
                        checkout::events::data_of(&view),
                    );
                    runtime
                        .block_on(table.write(vec![checkout::events::repo::insert(&event)]))
                        .unwrap();
                    event.id
                },
                |id| {
                    let delivered = runtime.block_on(handler.deliver(&id)).unwrap();
                    assert_eq!(delivered, checkout::events::handler::Delivery::Handled);
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

criterion_group!(benches, bench, bench_audit);
criterion_main!(benches);
