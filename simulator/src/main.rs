//! `simulator --listen 127.0.0.1:PORT [--profile fast|default|realistic] [--config file.json]
//! [--seed N] [--callback-source-ip IP] [--callback-source-header NAME]`

use simulator::{Profile, SimulatorConfig};
use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "\
Daraja (M-Pesa) API simulator

USAGE:
    simulator [OPTIONS]

OPTIONS:
    --listen ADDR                  address to listen on [default: 127.0.0.1:8089]
    --profile NAME                 fast | default | realistic [default: default]
    --config PATH                  JSON configuration applied over the profile
    --seed N                       seed for ids, delays and faults
    --callback-source-ip IP        source IP sent with callbacks [default: 196.201.214.200]
    --callback-source-header NAME  header carrying it [default: X-Forwarded-For; '' for none]
    -h, --help                     print this help

Logging: RUST_LOG (default info).";

struct Args {
    listen: SocketAddr,
    config: SimulatorConfig,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut listen: SocketAddr = "127.0.0.1:8089".parse().map_err(|e| format!("{e}"))?;
    let mut profile = Profile::Default;
    let mut config_path = None;
    let mut seed = None;
    let mut source_ip = None;
    let mut source_header = None;
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--profile" => profile = value()?.parse()?,
            "--config" => config_path = Some(value()?),
            "--seed" => {
                let v = value()?;
                seed = Some(v.parse::<u64>().map_err(|e| format!("--seed {v}: {e}"))?);
            }
            "--callback-source-ip" => source_ip = Some(value()?),
            "--callback-source-header" => source_header = Some(value()?),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    let mut config = SimulatorConfig::from_profile(profile);
    if let Some(path) = config_path {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let patch: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        config = config.merged_with(&patch).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(s) = seed {
        config.seed = s;
    }
    if let Some(ip) = source_ip {
        config.callback_source_ip = ip;
    }
    if let Some(h) = source_header {
        config.callback_source_header = h;
    }
    config.validate()?;
    Ok(Some(Args { listen, config }))
}

/// Installs the Ctrl-C / SIGTERM handlers now (before the URL is printed, so a supervisor that
/// signals right after reading it is never killed by the default action) and returns a future
/// that resolves on the first signal.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("simulator: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let seed = args.config.seed;
    let stop = match stop_signal() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simulator: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match simulator::spawn(args.config, args.listen).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("simulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("Daraja simulator listening on {}", handle.base_url());
    tracing::info!(url = %handle.base_url(), seed, "daraja simulator started");
    stop.await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}
