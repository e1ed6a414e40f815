//! Load test of B2C payouts through the payout queue of a running dev stack: `POST /v1/payouts`
//! at a fixed rate (each payout to its own recipient), then waits until every payout is settled
//! and reads the timestamps the payouts themselves carry: when each was recorded (API), handed
//! to Daraja by the queue worker (history source `daraja`) and completed by its result (`callback`).
//! Throughput through the queue = payouts / (last submission - first creation).
//!
//! Start the stack with the fast simulator, the same JWT key, and the merchant's daily payout
//! count cap off (the default allows 10 000 a day):
//!   LIMIT_PAYOUT_MERCHANT_DAILY_COUNT=off target/perf/devstack --profile fast --jwt-secret loadtest-secret-0123456789abcdef0123
//!   target/perf/payout_loadtest --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 1000 --count 5000

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
#[command(
    about = "Load test of the dev stack's payouts: accepted per second, processed per second through the payout queue."
)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: String,
    /// The dev stack's JWT key (`--jwt-secret` / `DEV_JWT_SECRET` of the stack).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: String,
    /// Payouts to create.
    #[arg(long, default_value_t = 5000)]
    count: u64,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Give up waiting for settlement after this many seconds.
    #[arg(long, default_value_t = 120)]
    settle_timeout: u64,
    /// Recipients are 2547 + 8 digits counted from here (each payout its own recipient).
    #[arg(long, default_value_t = 20_000_000)]
    phone_base: u64,
}

#[derive(Default)]
struct Outcomes {
    accepted: u64,
    other: std::collections::BTreeMap<u16, u64>,
    errors: u64,
    ids: Vec<String>,
}

fn at(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// When the payout entered the history with `source`.
fn history_at(payout: &serde_json::Value, source: &str) -> Option<DateTime<Utc>> {
    payout["history"]
        .as_array()?
        .iter()
        .find(|h| h["source"] == source)
        .and_then(|h| at(&h["at"]))
}

fn rate(count: usize, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let seconds = (to - from).num_milliseconds().max(1) as f64 / 1000.0;
    count as f64 / seconds
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now = Utc::now().timestamp();
    let token = checkout::auth::jwt::mint_hs256(
        &checkout::secrets::Secret::new(args.jwt_secret.clone()),
        &serde_json::json!({"sub": "payout-loadtest", "scope": "payouts:write payouts:read", "iat": now, "exp": now + 3600}),
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let interval = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let run_id = format!("{now:x}");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.count as usize);
    for n in 0..args.count {
        let scheduled = started + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let client = client.clone();
        let token = token.clone();
        let url = format!("{}/v1/payouts", args.target);
        let latencies = latencies.clone();
        let outcomes = outcomes.clone();
        let phone = format!("2547{:08}", (args.phone_base + n) % 100_000_000);
        let key = format!("payout-load-{run_id}-{n}");
        tasks.push(tokio::spawn(async move {
            let body =
                serde_json::json!({"amount": 10, "phone": phone, "kind": "business_payment", "remarks": "Load test"});
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
        "sent {} payouts in {:.2} s ({:.0}/s offered at {}/s)",
        args.count,
        sent_for.as_secs_f64(),
        args.count as f64 / sent_for.as_secs_f64(),
        args.rate
    );
    println!(
        "accepted {}  other statuses {:?}  transport errors {}",
        outcomes.accepted, outcomes.other, outcomes.errors
    );
    println!(
        "POST /v1/payouts latency (ms): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.90) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );

    // Wait until every payout is settled, keeping the last view of each.
    let deadline = Instant::now() + Duration::from_secs(args.settle_timeout);
    let mut pending: Vec<String> = outcomes.ids;
    let mut settled: Vec<serde_json::Value> = Vec::with_capacity(pending.len());
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in pending.chunks(200) {
            let checks = futures::future::join_all(chunk.iter().map(|id| {
                let client = client.clone();
                let url = format!("{}/v1/payouts/{id}", args.target);
                let token = token.clone();
                async move {
                    client
                        .get(url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .ok()?
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                }
            }))
            .await;
            for (id, payout) in chunk.iter().zip(checks) {
                match payout {
                    Some(p) if matches!(p["status"].as_str(), Some("completed" | "failed" | "rejected")) => {
                        settled.push(p)
                    }
                    _ => still.push(id.clone()),
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let completed: Vec<&serde_json::Value> = settled.iter().filter(|p| p["status"] == "completed").collect();
    let first_created = settled.iter().filter_map(|p| at(&p["created_at"])).min();
    let last_submitted = settled.iter().filter_map(|p| history_at(p, "daraja")).max();
    let last_completed = completed.iter().filter_map(|p| history_at(p, "callback")).max();
    let mut queue_wait = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    for p in &settled {
        if let (Some(created), Some(submitted)) = (at(&p["created_at"]), history_at(p, "daraja")) {
            queue_wait
                .record((submitted - created).num_milliseconds().max(1) as u64)
                .ok();
        }
    }
    if let (Some(first), Some(submitted), Some(done)) = (first_created, last_submitted, last_completed) {
        println!(
            "through the payout queue: {} payouts submitted to Daraja in {:.2} s = {:.0} payouts/s; {} completed by their result in {:.2} s = {:.0} payouts/s",
            settled.len(),
            (submitted - first).num_milliseconds() as f64 / 1000.0,
            rate(settled.len(), first, submitted),
            completed.len(),
            (done - first).num_milliseconds() as f64 / 1000.0,
            rate(completed.len(), first, done),
        );
        println!(
            "recorded → submitted (queue wait + Daraja call) (ms): p50 {}  p90 {}  p99 {}  max {}",
            queue_wait.value_at_quantile(0.5),
            queue_wait.value_at_quantile(0.9),
            queue_wait.value_at_quantile(0.99),
            queue_wait.max()
        );
    }
    println!(
        "{} ended other than completed, {} still open",
        settled.len() - completed.len(),
        pending.len()
    );
    if !pending.is_empty() || completed.len() != settled.len() || outcomes.errors > 0 || !outcomes.other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
