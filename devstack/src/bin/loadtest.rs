//! Open-loop load test of a running dev stack over loopback: `POST /v1/payments` at a fixed rate
//! for a fixed time, then waits for every payment to settle. Latency is measured from each
//! request's *scheduled* start, so a stalled server cannot hide queueing (no coordinated omission).
//!
//! Start the stack with the fast simulator and the same JWT key, then run:
//!   cargo run --release -p devstack -- --profile fast --jwt-secret loadtest-secret-0123456789abcdef0123
//!   cargo run --release -p devstack --bin loadtest -- --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 2000 --seconds 10

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
#[command(about = "Load test of the dev stack: payments initiated and settled per second, POST latency.")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: String,
    /// The dev stack's JWT key (`--jwt-secret` / `DEV_JWT_SECRET` of the stack).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: String,
    /// Requests per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Give up waiting for settlement after this many seconds.
    #[arg(long, default_value_t = 60)]
    settle_timeout: u64,
    /// Phone numbers are 2547 + 8 digits counted from here (each request its own phone).
    #[arg(long, default_value_t = 10_000_000)]
    phone_base: u64,
}

#[derive(Default)]
struct Outcomes {
    accepted: u64,
    other: std::collections::BTreeMap<u16, u64>,
    errors: u64,
    ids: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now = chrono::Utc::now().timestamp();
    let token = checkout::auth::jwt::mint_hs256(
        &checkout::secrets::Secret::new(args.jwt_secret.clone()),
        &serde_json::json!({"sub": "loadtest", "scope": "payments:write payments:read", "iat": now, "exp": now + 3600}),
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let total = args.rate * args.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let run_id = format!("{:x}", now);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let scheduled = started + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let client = client.clone();
        let token = token.clone();
        let url = format!("{}/v1/payments", args.target);
        let latencies = latencies.clone();
        let outcomes = outcomes.clone();
        let phone = format!("2547{:08}", (args.phone_base + n) % 100_000_000);
        let key = format!("load-{run_id}-{n}");
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({"amount": 10, "phone": phone, "reference": "LOAD"});
            let result = client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await;
            let elapsed = scheduled.elapsed().as_micros() as u64;
            latencies.lock().await.record(elapsed.max(1)).ok();
            let mut o = outcomes.lock().await;
            match result {
                Ok(response) if response.status().as_u16() == 202 => {
                    o.accepted += 1;
                    if let Ok(v) = response.json::<serde_json::Value>().await {
                        if let Some(id) = v["id"].as_str() {
                            o.ids.push(id.to_owned());
                        }
                    }
                }
                Ok(response) => *o.other.entry(response.status().as_u16()).or_default() += 1,
                Err(_) => o.errors += 1,
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
        "sent {total} payments in {:.2} s ({:.0}/s offered at {}/s)",
        sent_for.as_secs_f64(),
        total as f64 / sent_for.as_secs_f64(),
        args.rate
    );
    println!(
        "accepted {}  other statuses {:?}  transport errors {}",
        outcomes.accepted, outcomes.other, outcomes.errors
    );
    println!(
        "POST /v1/payments latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.90) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );

    // Settlement: every accepted payment must reach `completed`.
    let deadline = Instant::now() + Duration::from_secs(args.settle_timeout);
    let mut pending: Vec<String> = outcomes.ids;
    let mut not_completed = 0;
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in pending.chunks(200) {
            let checks = futures::future::join_all(chunk.iter().map(|id| {
                let client = client.clone();
                let url = format!("{}/v1/payments/{id}", args.target);
                let token = token.clone();
                async move {
                    let v: serde_json::Value = client
                        .get(url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    Some(v["status"].as_str().unwrap_or("").to_owned())
                }
            }))
            .await;
            for (id, status) in chunk.iter().zip(checks) {
                match status.as_deref() {
                    Some("completed") => {}
                    Some("pending" | "sent") | None => still.push(id.clone()),
                    Some(_) => not_completed += 1,
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let settled_for = started.elapsed();
    println!(
        "settled {} of {} accepted in {:.2} s from the first request: {:.0} payments settled/s; {} ended other than completed, {} still open",
        outcomes.accepted as usize - pending.len() - not_completed,
        outcomes.accepted,
        settled_for.as_secs_f64(),
        (outcomes.accepted as usize - pending.len()) as f64 / settled_for.as_secs_f64(),
        not_completed,
        pending.len()
    );
    if !pending.is_empty() || not_completed > 0 || outcomes.errors > 0 || !outcomes.other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
