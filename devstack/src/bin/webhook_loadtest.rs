//! Webhook throughput of a running dev stack over loopback: registers an endpoint (a receiver in
//! this process that answers 200 at once), creates payments at a fixed rate, and counts the
//! signed `payment.completed` webhooks that arrive: deliveries per second, and each delivery's
//! lag from the event's time to its arrival. Each webhook's signature is checked.
//!
//! Start the stack with the fast simulator, the same JWT key and local webhooks allowed:
//!   cargo run --profile perf -p devstack -- --profile fast --webhooks-allow-private --jwt-secret loadtest-secret-0123456789abcdef0123
//!   cargo run --profile perf -p devstack --bin webhook_loadtest -- --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 500 --seconds 10

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use checkout::webhooks::signature::{self, SigningSecret};
use clap::Parser;
use devstack::load;
use hdrhistogram::Histogram;

#[derive(Parser, Debug)]
#[command(
    about = "Webhook load test of the dev stack: payment.completed webhooks delivered per second, and their lag."
)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: String,
    /// The dev stack's JWT key (`--jwt-secret` / `DEV_JWT_SECRET` of the stack).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: String,
    /// Payments per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// How long to create payments, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Give up waiting for webhooks this long after the last payment.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
    /// Phone numbers are 2547 + 8 digits counted from here.
    #[arg(long, default_value_t = 20_000_000)]
    phone_base: u64,
}

struct Received {
    ids: HashSet<String>,
    duplicates: u64,
    bad_signatures: u64,
    /// Microseconds (the event's time has millisecond precision).
    lag_us: Histogram<u64>,
    last_at: Option<Instant>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = load::dev_token(
        &args.jwt_secret,
        "webhook-loadtest",
        "payments:write payments:read webhooks:write webhooks:read",
    );
    let client = load::client()?;
    let secret: Arc<Mutex<Option<SigningSecret>>> = Arc::new(Mutex::new(None));
    let received = Arc::new(Mutex::new(Received {
        ids: HashSet::new(),
        duplicates: 0,
        bad_signatures: 0,
        lag_us: Histogram::new(3)?,
        last_at: None,
    }));

    // The receiver: checks the signature, records the event id and the lag, answers 200.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let receiver_url = format!("http://{}/webhooks", listener.local_addr()?);
    let app = {
        let (secret, received) = (secret.clone(), received.clone());
        axum::Router::new().route(
            "/webhooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (secret, received) = (secret.clone(), received.clone());
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let now = chrono::Utc::now();
                    let valid = secret.lock().unwrap().as_ref().is_some_and(|s| {
                        signature::verify(
                            s,
                            &header("webhook-id"),
                            &header("webhook-timestamp"),
                            &header("webhook-signature"),
                            &body,
                            now.timestamp(),
                            signature::TOLERANCE_SECS,
                        )
                        .is_ok()
                    });
                    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let lag = event["timestamp"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| {
                            (now - t.with_timezone(&chrono::Utc))
                                .num_microseconds()
                                .unwrap_or(0)
                                .max(0) as u64
                        });
                    let mut r = received.lock().unwrap();
                    if !valid {
                        r.bad_signatures += 1;
                    }
                    if r.ids.insert(header("webhook-id")) {
                        if let Some(lag) = lag {
                            let _ = r.lag_us.record(lag);
                        }
                    } else {
                        r.duplicates += 1;
                    }
                    r.last_at = Some(Instant::now());
                    StatusCode::OK
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    let registered: serde_json::Value = client
        .post(format!("{}/v1/webhook-endpoints", args.target))
        .bearer_auth(&token)
        .json(&serde_json::json!({"url": receiver_url, "enabled_events": ["payment.completed"]}))
        .send()
        .await?
        .json()
        .await?;
    let Some(whsec) = registered["secret"].as_str() else {
        return Err(format!(
            "could not register the endpoint (is the stack started with --webhooks-allow-private?): {registered}"
        )
        .into());
    };
    *secret.lock().unwrap() = Some(SigningSecret::parse(whsec)?);

    let total = args.rate * args.seconds;
    let run_id = format!("{:x}", chrono::Utc::now().timestamp());
    let started = Instant::now();
    let make = load::payment_maker(
        client.clone(),
        args.target.clone(),
        token.clone(),
        format!("webhook-load-{run_id}"),
        args.phone_base,
    );
    let sent = load::open_loop(total, args.rate, make).await;
    let (accepted, other, failed, _) = load::tally(&sent.replies, 202);
    println!(
        "sent {total} payments in {:.2} s at {}/s: accepted {accepted}, other statuses {other:?}, transport errors {failed}",
        sent.sent_for.as_secs_f64(),
        args.rate
    );

    let deadline = Instant::now() + Duration::from_secs(args.wait_seconds);
    while Instant::now() < deadline && (received.lock().unwrap().ids.len() as u64) < accepted {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = received.lock().unwrap();
    let delivered = r.ids.len() as u64;
    let span = r.last_at.map_or(Duration::ZERO, |at| at - started);
    println!(
        "received {delivered} of {accepted} payment.completed webhooks in {:.2} s from the first payment: {:.0} delivered/s; {} duplicates, {} bad signatures",
        span.as_secs_f64(),
        delivered as f64 / span.as_secs_f64().max(0.001),
        r.duplicates,
        r.bad_signatures
    );
    load::print_latency("event to webhook received", &r.lag_us);
    if delivered < accepted || r.bad_signatures > 0 || failed > 0 || !other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
