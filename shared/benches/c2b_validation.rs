//! In-process latency of the C2B validation handler (`POST /c2b/validation/{token}` as the
//! Lambda function runs it: token HMAC check, body parse, cached rules, and the one
//! expected-payment read on the in-memory table). Criterion measures the means; a plain loop
//! after it prints p50/p99 of single calls.
//!
//!   cargo bench -p shared --bench c2b_validation

use std::sync::Arc;
use std::time::{Duration, Instant};

use checkout::api::{self, ApiRequest, ApiResponse};
use checkout::callback_token::{CallbackTokens, TokenPurpose};
use checkout::clock::SystemClock;
use checkout::domain::c2b::{
    AccountNumber, C2bRules, C2bVersion, DarajaRegistration, DefaultDecision, RegistrationStatus, ResponseType,
    Shortcode, ShortcodeConfig,
};
use checkout::domain::expected_payment::{ExpectedAmount, ExpectedPayment};
use checkout::domain::{Amount, ClientId, ExpectedPaymentId, Metadata};
use checkout::repo::c2b as repo;
use checkout::secrets::{Secret, SecretCache, StaticSecret};
use checkout::services::c2b::validation::{C2bValidator, ValidationSettings};
use checkout::store::memory::MemoryTable;
use checkout::store::Table;
use criterion::{criterion_group, criterion_main, Criterion};

const HMAC_KEY: &str = "bench-callback-hmac-key-0123456789abcdef";

struct Setup {
    runtime: tokio::runtime::Runtime,
    validator: C2bValidator,
    token: String,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
    let json = serde_json::json!({
        "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
        "stk_passkey": "p", "callback_hmac_key": HMAC_KEY,
    });
    let secrets = Arc::new(SecretCache::new(
        Arc::new(StaticSecret(json.to_string())),
        Duration::from_secs(3600),
    ));
    let now = chrono::Utc::now();
    let shortcode = Shortcode::parse("600984").unwrap();
    let config = ShortcodeConfig {
        shortcode: shortcode.clone(),
        owner: ClientId::parse("merchant-a").unwrap(),
        api_version: C2bVersion::V2,
        response_type: ResponseType::Completed,
        default_decision: DefaultDecision::Accept,
        rules: C2bRules {
            account_pattern: Some("INV-[0-9]{4}".into()),
            require_expected_payment: true,
            max_amount: Some(Amount::new(150_000).unwrap()),
            denied_accounts: (1000..1500)
                .map(|n| AccountNumber::parse(&format!("INV-{n}")).unwrap())
                .collect(),
            ..C2bRules::default()
        },
        validation_url: String::new(),
        confirmation_url: String::new(),
        registration: DarajaRegistration {
            status: RegistrationStatus::Registered,
            response_code: Some("0".into()),
            response_description: None,
            originator_conversation_id: None,
            at: now,
        },
        verification: Default::default(),
        tokens: Default::default(),
        created_at: now,
        updated_at: now,
        version: 0,
    };
    let expected = ExpectedPayment::create(
        ExpectedPaymentId::generate(),
        ClientId::parse("merchant-a").unwrap(),
        shortcode,
        AccountNumber::parse("INV-2231").unwrap(),
        ExpectedAmount::Exact {
            value: Amount::new(500).unwrap(),
        },
        now + chrono::Duration::days(1),
        Metadata::default(),
        now,
    );
    runtime.block_on(async {
        table.write(vec![repo::put_config(&config)]).await.unwrap();
        table
            .write(repo::insert_expected(&expected, None, now).to_vec())
            .await
            .unwrap();
    });
    let validator = C2bValidator::new(
        table,
        secrets,
        Arc::new(SystemClock),
        ValidationSettings::default(),
        Vec::new(),
    );
    let token = CallbackTokens::new(Secret::new(HMAC_KEY)).hex_token_for(TokenPurpose::C2bValidation, "600984");
    Setup {
        runtime,
        validator,
        token,
    }
}

fn request(token: &str, bill_ref: &str, amount: &str) -> ApiRequest {
    let mut request = ApiRequest::new(http::Method::POST, format!("/c2b/validation/{token}"));
    request.path_params.insert("token".into(), token.to_owned());
    request
        .headers
        .insert("content-type", "application/json".parse().unwrap());
    request.source_ip = "196.201.214.200".parse().ok();
    request.body = serde_json::json!({
        "TransactionType": "Pay Bill", "TransID": "TKL51ZDR4F", "TransTime": "20261121121325", "TransAmount": amount,
        "BusinessShortCode": "600984", "BillRefNumber": bill_ref, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": "DOE"
    })
    .to_string()
    .into();
    request
}

fn code(response: &ApiResponse) -> String {
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    body["ResultCode"].as_str().unwrap_or_default().to_owned()
}

/// (name, account, amount, expected ResultCode, forged token)
const CASES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "accept: rules + expected-payment lookup",
        "INV-2231",
        "500.00",
        "0",
        false,
    ),
    (
        "reject: amount not owed (after lookup)",
        "INV-2231",
        "900.00",
        "C2B00013",
        false,
    ),
    (
        "reject: account denied (no lookup)",
        "INV-1234",
        "500.00",
        "C2B00016",
        false,
    ),
    (
        "reject: forged token (no read at all)",
        "INV-2231",
        "500.00",
        "C2B00015",
        true,
    ),
];

fn bench(c: &mut Criterion) {
    let s = setup();
    let forged = CallbackTokens::new(Secret::new("x".repeat(40))).hex_token_for(TokenPurpose::C2bValidation, "600984");
    for (name, account, amount, expected, is_forged) in CASES {
        let token = if *is_forged { &forged } else { &s.token };
        let warm = s
            .runtime
            .block_on(api::c2b::validation(&s.validator, request(token, account, amount)));
        assert_eq!(code(&warm), *expected, "{name}");
        c.bench_function(&format!("c2b validation handler: {name}"), |b| {
            b.iter_batched(
                || request(token, account, amount),
                |r| s.runtime.block_on(api::c2b::validation(&s.validator, r)),
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

/// p50/p99 of single handler calls (each timed alone, request built outside the timing).
fn percentiles() {
    let s = setup();
    let iterations = 20_000;
    println!("\nC2B validation handler, in process, {iterations} calls per case (request built outside the timing):");
    let forged = CallbackTokens::new(Secret::new("x".repeat(40))).hex_token_for(TokenPurpose::C2bValidation, "600984");
    for (name, account, amount, expected, is_forged) in CASES {
        let token = if *is_forged { &forged } else { &s.token };
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let r = request(token, account, amount);
            let started = Instant::now();
            let response = s.runtime.block_on(api::c2b::validation(&s.validator, r));
            samples.push(started.elapsed());
            assert_eq!(code(&response), *expected);
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "  {name:<45} p50 {:>6.1} us   p99 {:>6.1} us   max {:>7.1} us",
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            samples[samples.len() - 1].as_secs_f64() * 1e6
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches, percentiles);
