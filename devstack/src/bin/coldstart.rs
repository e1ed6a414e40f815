//! Cold start of a Lambda function binary, measured locally: from process spawn to the function's
//! first request for work (its init: what Lambda reports as Init Duration) and to the first
//! invocation's answer, through a minimal Lambda Runtime API served on loopback; and the
//! process's peak resident memory (`VmHWM` of `/proc/<pid>/status`) after that first answer,
//! which is what sizes the function's MemorySize. No network beyond loopback: secrets come from
//! `CHECKOUT_SECRETS_JSON`; give `--env AWS_ENDPOINT_URL=...` (moto) for invocations that reach
//! DynamoDB or SQS.
//!
//!   cargo build --release -p health -p initiate
//!   cargo run --profile perf -p devstack --bin coldstart -- --binary target/release/health --runs 50
//!   cargo run --profile perf -p devstack --bin coldstart -- --binary target/release/callback-processor \
//!     --event events/callback-processor.json --env AWS_ENDPOINT_URL=http://127.0.0.1:5077 --env TABLE_NAME=checkout

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use clap::Parser;
use tokio::sync::{mpsc, Mutex};

#[derive(Parser, Debug)]
#[command(about = "Process start to first answered invocation of a Lambda binary, over a local Runtime API.")]
struct Args {
    /// Path to the function binary (a release build).
    #[arg(long)]
    binary: String,
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Event file (API Gateway HTTP API v2 JSON, SQS, or any JSON); default: a GET /v1/health request.
    #[arg(long)]
    event: Option<String>,
    /// Extra environment for the function, `NAME=VALUE` (repeatable); overrides the defaults.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
}

struct Runtime {
    event: String,
    served: Mutex<bool>,
    answered: mpsc::UnboundedSender<(String, String)>,
    /// When the function first asked for work: its init is over.
    init_done: mpsc::UnboundedSender<Instant>,
}

/// Peak resident set of a process, in KiB (`VmHWM`), while it is still running.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn next(State(rt): State<Arc<Runtime>>) -> (HeaderMap, String) {
    let _ = rt.init_done.send(Instant::now());
    let mut served = rt.served.lock().await;
    if *served {
        drop(served);
        // The function asks for its next invocation; it gets none (the process is killed).
        std::future::pending::<()>().await;
        unreachable!();
    }
    *served = true;
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", "coldstart-1".parse().unwrap());
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    headers.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:coldstart"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".parse().unwrap(),
    );
    (headers, rt.event.clone())
}

async fn response(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: String) -> &'static str {
    let _ = rt.answered.send((id, body));
    "{}"
}

async fn error(State(rt): State<Arc<Runtime>>, body: String) -> &'static str {
    let _ = rt.answered.send(("error".into(), body));
    "{}"
}

fn default_event() -> String {
    serde_json::json!({
        "version": "2.0", "routeKey": "GET /v1/health", "rawPath": "/v1/health", "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {"accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "local",
            "http": {"method": "GET", "path": "/v1/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": "cold", "routeKey": "GET /v1/health", "stage": "$default", "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let event = match &args.event {
        Some(path) => std::fs::read_to_string(path)?,
        None => default_event(),
    };
    let secrets = serde_json::json!({
        "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379", "stk_passkey": "p",
        "callback_hmac_key": "coldstart-callback-key-0123456789abcdef", "jwt_hs256_secret": "coldstart-jwt-key-0123456789abcdef0123",
    })
    .to_string();
    let mut samples = Vec::with_capacity(args.runs);
    let mut inits = Vec::with_capacity(args.runs);
    let mut peaks_kib = Vec::with_capacity(args.runs);
    for run in 0..args.runs {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (init_tx, mut init_rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Runtime {
            event: event.clone(),
            served: Mutex::new(false),
            answered: tx,
            init_done: init_tx,
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(runtime);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&args.binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "coldstart")
            .env("AWS_SECRET_ACCESS_KEY", "coldstart")
            .env("CHECKOUT_SECRETS_JSON", &secrets)
            .env("TABLE_NAME", "coldstart")
            .env("CALLBACK_QUEUE_URL", "http://127.0.0.1:9/queue")
            .env("DARAJA_BASE_URL", "http://127.0.0.1:9")
            .env("PAYOUT_QUEUE_URL", "http://127.0.0.1:9/payouts")
            .env("PUBLIC_BASE_URL", "https://api.example.com")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for pair in &args.env {
            let (name, value) = pair.split_once('=').ok_or("--env wants NAME=VALUE")?;
            command.env(name, value);
        }
        let mut child = command.spawn()?;
        let answered = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let elapsed = started.elapsed();
        if let Ok(at) = init_rx.try_recv() {
            inits.push(at - started);
        }
        if let Some(kib) = child.id().and_then(peak_rss_kib) {
            peaks_kib.push(kib);
        }
        child.kill().await.ok();
        server.abort();
        match answered {
            Ok(Some((id, body))) if id != "error" => {
                if run == 0 {
                    println!("first answer: {}", body.chars().take(160).collect::<String>());
                }
                samples.push(elapsed);
            }
            Ok(Some((_, body))) => return Err(format!("the function reported an error: {body}").into()),
            _ => return Err("no answer within 10 s".into()),
        }
    }
    samples.sort();
    inits.sort();
    peaks_kib.sort_unstable();
    let pick = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{}: {} runs, process start to first answered invocation (ms): p50 {:.2}  p90 {:.2}  max {:.2}",
        args.binary,
        samples.len(),
        pick(&samples, 0.5),
        pick(&samples, 0.9),
        pick(&samples, 1.0)
    );
    if !inits.is_empty() {
        println!(
            "  init (process start to its first request for work, ms): p50 {:.2}  p90 {:.2}  max {:.2}",
            pick(&inits, 0.5),
            pick(&inits, 0.9),
            pick(&inits, 1.0)
        );
    }
    if let (Some(median), Some(max)) = (peaks_kib.get(peaks_kib.len() / 2), peaks_kib.last()) {
        println!(
            "  peak RSS after the first invocation (VmHWM, MiB): median {:.1}  max {:.1}",
            *median as f64 / 1024.0,
            *max as f64 / 1024.0
        );
    }
    Ok(())
}
