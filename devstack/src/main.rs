//! `cargo run -p devstack`: the whole checkout on one machine, no AWS account needed.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use devstack::{Backend, DarajaTarget, DevStack, Options, DEV_TOKEN_SCOPES};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    /// In-memory table and queue (default).
    Memory,
    /// DynamoDB/SQS/Secrets Manager from the AWS environment (moto or real AWS).
    Aws,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProfileArg {
    /// Callbacks after 1-3 s.
    Default,
    /// Callbacks after a few milliseconds (load tests).
    Fast,
    /// Callbacks after 20-60 s, like the real sandbox.
    Realistic,
}

#[derive(Parser, Debug)]
#[command(
    about = "Runs the M-Pesa checkout locally: every function on one port, the Daraja simulator, in-memory storage and queue."
)]
struct Args {
    /// Address of the API.
    #[arg(long, env = "DEV_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Address of the embedded Daraja simulator.
    #[arg(long, env = "DEV_SIMULATOR_LISTEN", default_value = "127.0.0.1:3001")]
    simulator_listen: SocketAddr,
    /// Use this Daraja instead of the embedded simulator (e.g. https://sandbox.safaricom.co.ke).
    #[arg(long, env = "DARAJA_BASE_URL")]
    daraja_base_url: Option<String>,
    /// Simulator timing profile.
    #[arg(long, value_enum, default_value = "default")]
    profile: ProfileArg,
    #[arg(long, value_enum, env = "DEV_BACKEND", default_value = "memory")]
    backend: BackendArg,
    /// HS256 key for dev tokens (random per run when absent).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// Public URL Daraja calls back on (defaults to the API address).
    #[arg(long, env = "PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// Seconds after creation before reconciliation first asks about a payment.
    #[arg(long, default_value_t = 75)]
    first_check_seconds: i64,
    /// Seconds after creation when an unanswered payment becomes `timeout`.
    #[arg(long, default_value_t = 300)]
    deadline_seconds: i64,
    /// Seconds between metric summaries in the log.
    #[arg(long, default_value_t = 10)]
    metrics_interval: u64,
    /// Seconds between timeout sweeps (reconciliation of open payments).
    #[arg(long, default_value_t = 15)]
    sweep_interval: u64,
    /// Seconds a sweep's claim on a payment or payout keeps other sweeps away (default 60).
    #[arg(long)]
    sweep_lease_seconds: Option<i64>,
    /// First backoff, in seconds, between STK Queries of one payment (default 15; doubles, capped at 8x).
    #[arg(long)]
    sweep_backoff_seconds: Option<i64>,
    /// Seconds between Transaction Status checks of one unverified C2B confirmation (default 120).
    #[arg(long)]
    c2b_verify_interval_seconds: Option<i64>,
    /// Seconds after receipt before "not found" may reject a C2B confirmation (default 1800).
    #[arg(long)]
    c2b_verify_deadline_seconds: Option<i64>,
    /// Let merchant webhook endpoints be local servers (`http://127.0.0.1:...`, private
    /// addresses); without it, as in Lambda, only public `https` endpoints are accepted.
    #[arg(long, env = "DEV_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
}

/// The C2B verification sweep's settings, with the flags' timings.
fn c2b_verify(args: &Args) -> checkout::services::c2b::verification::C2bVerifyConfig {
    let mut config = checkout::services::c2b::verification::C2bVerifyConfig::default();
    if let Some(interval) = args.c2b_verify_interval_seconds {
        config.timings.interval = chrono::Duration::seconds(interval.max(1));
    }
    if let Some(deadline) = args.c2b_verify_deadline_seconds {
        config.timings.deadline = chrono::Duration::seconds(deadline.max(1));
    }
    config
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let settings = checkout::config::from_env();
    if args.first_check_seconds < 1 || args.deadline_seconds <= args.first_check_seconds {
        return Err("--deadline-seconds must exceed --first-check-seconds, which must be at least 1".into());
    }
    let mut c2b_verify = c2b_verify(&args);
    // The sweeps share one pace (SWEEP_QUERIES_PER_SECOND).
    c2b_verify.pacing.queries_per_second = settings.reconcile()?.pacing.queries_per_second;
    let daraja = match args.daraja_base_url {
        Some(base_url) => DarajaTarget::External { base_url },
        None => {
            let config = match args.profile {
                ProfileArg::Default => simulator::SimulatorConfig::default(),
                ProfileArg::Fast => simulator::SimulatorConfig::fast_for_tests(),
                ProfileArg::Realistic => simulator::SimulatorConfig::realistic(),
            };
            DarajaTarget::EmbeddedSimulator {
                config: Box::new(config),
                listen: args.simulator_listen,
            }
        }
    };
    let mut reconcile = settings.reconcile()?;
    let mut payout_reconcile = settings.payout_reconcile()?;
    if let Some(lease) = args.sweep_lease_seconds {
        reconcile.lease = chrono::Duration::seconds(lease.max(1));
        payout_reconcile.lease = chrono::Duration::seconds(lease.max(1));
    }
    if let Some(backoff) = args.sweep_backoff_seconds {
        reconcile.backoff_base = chrono::Duration::seconds(backoff.max(1));
        reconcile.backoff_max = chrono::Duration::seconds(backoff.max(1) * 8);
    }
    let options = Options {
        listen: args.listen,
        daraja,
        backend: match args.backend {
            BackendArg::Memory => Backend::Memory,
            BackendArg::Aws => Backend::Aws,
        },
        jwt_secret: args.jwt_secret,
        timings: checkout::domain::PaymentTimings {
            first_check_after: chrono::Duration::seconds(args.first_check_seconds),
            deadline_after: chrono::Duration::seconds(args.deadline_seconds),
        },
        public_base_url: args.public_base_url,
        metrics_interval: Some(Duration::from_secs(args.metrics_interval.max(1))),
        sweep_interval: Some(Duration::from_secs(args.sweep_interval.max(1))),
        // Limits and sweeper settings come from the same variables as in Lambda (LIMIT_*, SWEEP_*).
        reconcile,
        limits: settings.limits()?,
        clock: None,
        // Payout settings come from the same variables as in Lambda (PAYOUT_*, LIMIT_PAYOUT_*).
        payouts: devstack::payouts::PayoutOptions {
            config: settings.payouts()?,
            limits: settings.payout_limits()?,
            reconcile: payout_reconcile,
            worker: devstack::payouts::PayoutWorkerOptions {
                submission_lease: settings.payout_submission_lease()?,
                ..devstack::payouts::PayoutOptions::default().worker
            },
            ..devstack::payouts::PayoutOptions::default()
        },
        c2b_verify,
        webhooks_allow_private: args.webhooks_allow_private,
        checkout_display_name: "Dev Shop".into(),
        checkout_origins: Vec::new(),
        example_shop: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        checkout_limits: Default::default(),
    };
    let stack = DevStack::start(options).await?;
    let token = stack.token("dev-merchant", DEV_TOKEN_SCOPES, Duration::from_secs(24 * 3600));
    println!();
    println!("M-Pesa checkout dev stack is up");
    println!("  API        {}", stack.base_url());
    if let Some(shop) = stack.example_shop_url() {
        println!("  Shop       {shop}   (an example shop: its Pay button opens the payment page in a modal)");
    }
    println!(
        "  Simulator  {}   (control API: {}/__control/transactions)",
        stack.simulator_url(),
        stack.simulator_url()
    );
    println!();
    println!("  Dev JWT (sub=dev-merchant, every scope including platform:operator, valid 24 h):");
    println!("  export TOKEN={token}");
    println!();
    println!("  Try:");
    println!(
        "  curl -s -X POST {}/v1/payments -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\",
        stack.base_url()
    );
    println!("       -H 'Idempotency-Key: demo-1' -d '{{\"amount\": 100, \"phone\": \"0712345678\", \"reference\": \"ORDER1\"}}'");
    println!(
        "  curl -s {}/v1/payments -H \"Authorization: Bearer $TOKEN\"",
        stack.base_url()
    );
    println!(
        "  curl -s -X POST {}/v1/payouts -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\",
        stack.base_url()
    );
    println!("       -H 'Idempotency-Key: payout-1' -d '{{\"amount\": 2500, \"phone\": \"0712345678\", \"kind\": \"business_payment\", \"remarks\": \"Refund ORDER1234\"}}'");
    println!();
    println!("  Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    stack.shutdown().await;
    Ok(())
}
