//! Open-loop load test of C2B validation through a running dev stack over loopback: registers a
//! shortcode (rules + an expected payment, so every request does the expected-payment read),
//! then POSTs validation requests to its `/c2b/validation/{token}` URL at a fixed rate. Latency is
//! measured from each request's *scheduled* start (no coordinated omission); every reply must
//! be the expected accept.
//!
//!   cargo run --profile perf -p devstack -- --profile fast --jwt-secret loadtest-secret-0123456789abcdef0123
//!   cargo run --profile perf -p devstack --bin c2b-validation-load -- --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 1000 --seconds 10

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
#[command(about = "Load test of C2B validation through the dev stack: latency of POST /c2b/validation/{token}.")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: String,
    /// The dev stack's JWT key (`--jwt-secret` / `DEV_JWT_SECRET` of the stack).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The shortcode registered for the run.
    #[arg(long, default_value = "600984")]
    shortcode: String,
}

#[derive(Default)]
struct Outcomes {
    accepted: u64,
    other: std::collections::BTreeMap<String, u64>,
    errors: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now = chrono::Utc::now().timestamp();
    let token = checkout::auth::jwt::mint_hs256(
        &checkout::secrets::Secret::new(args.jwt_secret.clone()),
        &serde_json::json!({"sub": "c2b-load", "scope": "c2b:admin c2b:write c2b:read", "iat": now, "exp": now + 3600}),
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;

    // A shortcode whose rules need the expected-payment read on every request.
    let registration: serde_json::Value = client
        .post(format!("{}/v1/c2b/registrations", args.target))
        .bearer_auth(&token)
        .json(&serde_json::json!({"shortcode": args.shortcode,
            "rules": {"account_pattern": "LOAD-[0-9]+", "require_expected_payment": true, "max_amount": 150000}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let validation_url = registration["validation_url"]
        .as_str()
        .ok_or("no validation_url")?
        .to_owned();
    let account = format!("LOAD-{now}");
    client
        .post(format!("{}/v1/c2b/expected-payments", args.target))
        .bearer_auth(&token)
        .header("idempotency-key", format!("c2b-load-{now}"))
        .json(
            &serde_json::json!({"shortcode": args.shortcode, "account_number": account,
            "amount": {"rule": "minimum", "value": 10}}),
        )
        .send()
        .await?
        .error_for_status()?;
    let body = serde_json::json!({
        "TransactionType": "Pay Bill", "TransID": "TKL51ZDR4F", "TransTime": "20261121121325", "TransAmount": "500.00",
        "BusinessShortCode": args.shortcode, "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": "DOE"
    })
    .to_string();

    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let total = args.rate * args.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let scheduled = started + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let client = client.clone();
        let url = validation_url.clone();
        let body = body.clone();
        let latencies = latencies.clone();
        let outcomes = outcomes.clone();
        tasks.push(tokio::spawn(async move {
            let result = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-forwarded-for", "196.201.214.200")
                .body(body)
                .send()
                .await;
            let reply = match result {
                Ok(response) => response.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            let elapsed = scheduled.elapsed().as_micros() as u64;
            latencies.lock().await.record(elapsed.max(1)).ok();
            let mut o = outcomes.lock().await;
            match reply.as_ref().and_then(|r| r["ResultCode"].as_str()) {
                Some("0") => o.accepted += 1,
                Some(code) => *o.other.entry(code.to_owned()).or_default() += 1,
                None => o.errors += 1,
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let sent_for = started.elapsed();
    let outcomes = Arc::try_unwrap(outcomes)
        .map_err(|_| "outcomes still shared")?
        .into_inner();
    let h = latencies.lock().await;
    println!(
        "sent {total} validations in {:.2} s ({:.0}/s offered at {}/s)",
        sent_for.as_secs_f64(),
        total as f64 / sent_for.as_secs_f64(),
        args.rate
    );
    println!(
        "accepted {}  other result codes {:?}  errors {}",
        outcomes.accepted, outcomes.other, outcomes.errors
    );
    println!(
        "POST /c2b/validation/{{token}} latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.90) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
    if outcomes.errors > 0 || !outcomes.other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
