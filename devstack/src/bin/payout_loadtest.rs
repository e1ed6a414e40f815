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

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use devstack::load;
use hdrhistogram::Histogram;

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
    let token = load::dev_token(&args.jwt_secret, "payout-loadtest", "payouts:write payouts:read");
    let client = load::client()?;
    let run_id = format!("{:x}", Utc::now().timestamp());
    let sent = load::open_loop(args.count, args.rate, |n| {
        let phone = format!("2547{:08}", (args.phone_base + n) % 100_000_000);
        client
            .post(format!("{}/v1/payouts", args.target))
            .bearer_auth(&token)
            .header("idempotency-key", format!("payout-load-{run_id}-{n}"))
            .json(
                &serde_json::json!({"amount": 10, "phone": phone, "kind": "business_payment", "remarks": "Load test"}),
            )
    })
    .await;
    let (accepted, other, failed, ids) = load::tally(&sent.replies, 202);
    println!(
        "sent {} payouts in {:.2} s ({:.0}/s offered at {}/s)",
        args.count,
        sent.sent_for.as_secs_f64(),
        args.count as f64 / sent.sent_for.as_secs_f64(),
        args.rate
    );
    println!("accepted {accepted}  other statuses {other:?}  transport errors {failed}");
    load::print_latency("POST /v1/payouts", &sent.latencies);

    // Wait until every payout is settled, keeping the last view of each.
    let (settled, pending) = load::poll_until_settled(
        &client,
        &token,
        ids,
        |id| format!("{}/v1/payouts/{id}", args.target),
        |p| matches!(p["status"].as_str(), Some("completed" | "failed" | "rejected")),
        Duration::from_secs(args.settle_timeout),
    )
    .await;
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
    if !pending.is_empty() || completed.len() != settled.len() || failed > 0 || !other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
