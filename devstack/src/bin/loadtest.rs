//! Load test of a running dev stack over loopback: `POST /v1/payments` of one merchant, then waits
//! for every payment to settle. Two modes:
//! - open loop (default): a fixed rate for a fixed time; latency is measured from each request's
//!   *scheduled* start, so a stalled server cannot hide queueing (no coordinated omission);
//! - closed loop (`--concurrency N --count M`): N requests always in flight, each sent as soon as
//!   the previous one of its worker is answered; measures payments/s at that concurrency.
//!
//! Start the stack with the fast simulator and the same JWT key, then run:
//!   cargo run --profile perf -p devstack -- --profile fast --jwt-secret loadtest-secret-0123456789abcdef0123
//!   cargo run --profile perf -p devstack --bin loadtest -- --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 2000 --seconds 10
//!   cargo run --profile perf -p devstack --bin loadtest -- --jwt-secret loadtest-secret-0123456789abcdef0123 --concurrency 200 --count 20000

use std::time::{Duration, Instant};

use clap::Parser;
use devstack::load;

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
    /// Closed loop: keep this many requests in flight (instead of a fixed rate).
    #[arg(long)]
    concurrency: Option<u64>,
    /// Closed loop: payments to create in all (default: rate × seconds).
    #[arg(long)]
    count: Option<u64>,
    /// Phone numbers are 2547 + 8 digits counted from here (each request its own phone).
    #[arg(long, default_value_t = 10_000_000)]
    phone_base: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = load::dev_token(&args.jwt_secret, "loadtest", "payments:write payments:read");
    let client = load::client()?;
    let total = args.count.unwrap_or(args.rate * args.seconds);
    let run_id = format!("{:x}", chrono::Utc::now().timestamp());
    let started = Instant::now();
    let make = load::payment_maker(
        client.clone(),
        args.target.clone(),
        token.clone(),
        format!("load-{run_id}"),
        args.phone_base,
    );
    let sent = match args.concurrency {
        Some(concurrency) => load::closed_loop(total, concurrency, make).await,
        None => load::open_loop(total, args.rate, make).await,
    };
    let (accepted, other, failed, ids) = load::tally(&sent.replies, 202);
    match args.concurrency {
        Some(concurrency) => println!(
            "sent {total} payments in {:.2} s, {concurrency} in flight: {:.0} answered/s, {:.0} accepted/s",
            sent.sent_for.as_secs_f64(),
            total as f64 / sent.sent_for.as_secs_f64(),
            accepted as f64 / sent.sent_for.as_secs_f64(),
        ),
        None => println!(
            "sent {total} payments in {:.2} s ({:.0}/s offered at {}/s)",
            sent.sent_for.as_secs_f64(),
            total as f64 / sent.sent_for.as_secs_f64(),
            args.rate
        ),
    }
    println!("accepted {accepted}  other statuses {other:?}  transport errors {failed}");
    load::print_latency("POST /v1/payments", &sent.latencies);

    // Settlement: every accepted payment must reach `completed`.
    let (settled, open) = load::poll_until_settled(
        &client,
        &token,
        ids,
        |id| format!("{}/v1/payments/{id}", args.target),
        |p| !matches!(p["status"].as_str(), Some("pending" | "sent")),
        Duration::from_secs(args.settle_timeout),
    )
    .await;
    let settled_for = started.elapsed();
    let completed = settled.iter().filter(|p| p["status"] == "completed").count();
    println!(
        "settled {completed} of {accepted} accepted in {:.2} s from the first request: {:.0} payments settled/s; {} ended other than completed, {} still open",
        settled_for.as_secs_f64(),
        settled.len() as f64 / settled_for.as_secs_f64(),
        settled.len() - completed,
        open.len()
    );
    if !open.is_empty() || completed != settled.len() || failed > 0 || !other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
