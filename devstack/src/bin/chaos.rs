//! The chaos and crash suite: a seeded mix of payments, payouts and C2B payments under injected
//! faults, with SIGKILLs of the dev stack on the AWS backend, compared with the simulator's ground
//! truth. Exits 1 when any invariant is broken, 2 when the run could not be set up.
//!
//!   cargo build -p devstack --bins && MOTO_ENDPOINT=http://127.0.0.1:5000 target/debug/chaos --form short
//!   target/debug/chaos --form long --seed 17            # RELIABILITY.md has its latest figures
//!   target/debug/chaos --part memory --payments 200     # no moto needed

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use devstack::chaos::{self, ChaosPlan, FaultPlan, Form, RunOptions};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum FormArg {
    /// ~1,000 payments, 200 payouts, 200 C2B in memory, and a smaller crash part on moto.
    Short,
    /// 10,000 payments, 2,000 payouts, 2,000 C2B in memory, and a longer crash part on moto.
    Long,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum PartArg {
    Both,
    /// The in-memory part only (no moto needed).
    Memory,
    /// The crash part only (moto's server: `MOTO_ENDPOINT`).
    Crash,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum FaultsArg {
    /// A few percent of every fault (see RELIABILITY.md).
    Standard,
    /// No fault at all (a baseline).
    None,
}

#[derive(Parser, Debug)]
#[command(
    about = "Chaos and crash suite: faults, SIGKILLs and the simulator's ground truth; exit 1 if any invariant breaks."
)]
struct Args {
    #[arg(long, value_enum, default_value = "short")]
    form: FormArg,
    #[arg(long, value_enum, default_value = "both")]
    part: PartArg,
    /// Seed of the mix, the fault draws, the simulator and the crash moments.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value = "standard")]
    faults: FaultsArg,
    /// Multiplies every fault probability (e.g. 2 for twice the standard rates).
    #[arg(long, default_value_t = 1.0)]
    fault_scale: f64,
    /// Memory part: payments (default by form).
    #[arg(long)]
    payments: Option<usize>,
    #[arg(long)]
    payouts: Option<usize>,
    #[arg(long)]
    c2b: Option<usize>,
    /// Memory part: creations per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Crash part: payments (default by form).
    #[arg(long)]
    crash_payments: Option<usize>,
    #[arg(long)]
    crash_payouts: Option<usize>,
    #[arg(long)]
    crash_c2b: Option<usize>,
    /// Crash part: creations per second (moto's server breaks at around 60 transactions/s).
    #[arg(long)]
    crash_rate: Option<f64>,
    /// Crash part: SIGKILLs of the dev stack.
    #[arg(long)]
    crashes: Option<usize>,
    /// Moto's server (crash part).
    #[arg(long, env = "MOTO_ENDPOINT")]
    moto_endpoint: Option<String>,
    /// The devstack binary the crash part runs (default: next to this one).
    #[arg(long)]
    devstack_bin: Option<PathBuf>,
    /// Reports (JSON) and the child's logs.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
    /// Failing records shown per flow and invariant (the JSON report has all).
    #[arg(long, default_value_t = 10)]
    show: usize,
}

fn scaled(mut faults: FaultPlan, scale: f64) -> FaultPlan {
    for p in [
        &mut faults.duplicate,
        &mut faults.drop,
        &mut faults.reorder,
        &mut faults.delay,
        &mut faults.http_503_after,
        &mut faults.http_500_after,
        &mut faults.spike_arrest,
        &mut faults.quota_violation,
        &mut faults.slow,
    ] {
        *p = (*p * scale).clamp(0.0, 1.0);
    }
    faults
}

fn with_counts(
    mut plan: ChaosPlan,
    payments: Option<usize>,
    payouts: Option<usize>,
    c2b: Option<usize>,
    rate: Option<f64>,
) -> ChaosPlan {
    plan.payments = payments.unwrap_or(plan.payments);
    plan.payouts = payouts.unwrap_or(plan.payouts);
    if let Some(c2b) = c2b {
        plan.c2b = c2b;
        plan.invoices = c2b / 2;
        plan.forged_c2b = plan.forged_c2b.min(c2b.max(1));
    }
    plan.rate = rate.unwrap_or(plan.rate);
    plan
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let form = match args.form {
        FormArg::Short => Form::Short,
        FormArg::Long => Form::Long,
    };
    let faults = |seed| match args.faults {
        FaultsArg::Standard => scaled(FaultPlan::standard(seed), args.fault_scale),
        FaultsArg::None => FaultPlan::none(seed),
    };
    let mut plans = Vec::new();
    if args.part != PartArg::Crash {
        let mut plan = with_counts(
            ChaosPlan::memory(form, args.seed),
            args.payments,
            args.payouts,
            args.c2b,
            args.rate,
        );
        plan.faults = faults(args.seed);
        plans.push(plan);
    }
    if args.part != PartArg::Memory {
        let mut plan = with_counts(
            ChaosPlan::crash(form, args.seed),
            args.crash_payments,
            args.crash_payouts,
            args.crash_c2b,
            args.crash_rate,
        );
        plan.crashes = args.crashes.unwrap_or(plan.crashes);
        plan.faults = faults(args.seed);
        plans.push(plan);
    }
    let mut failed = false;
    for plan in plans {
        let name = plan.name.clone();
        eprintln!("chaos: running {name} ...");
        let run = chaos::run(RunOptions {
            plan,
            devstack_bin: args.devstack_bin.clone(),
            moto_endpoint: args.moto_endpoint.clone(),
            out_dir: args.out.clone(),
        });
        // Interrupted: returning drops the runtime and with it the child dev stack (killed on drop).
        let result = tokio::select! {
            result = run => result,
            _ = interrupted() => {
                eprintln!("chaos: interrupted");
                return ExitCode::from(130);
            }
        };
        match result {
            Ok(report) => {
                println!("{}", report.render(args.show));
                println!("report: {}", args.out.join(format!("{name}-report.json")).display());
                failed |= !report.passed();
            }
            Err(error) => {
                eprintln!("chaos: {name} could not run: {error}");
                return ExitCode::from(2);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
