//! One chaos run, start to verdict: the simulator in this process, the dev stack (in process, or a
//! child on moto that gets killed), the C2B registrations, the fault plan, the mix (and the
//! crashes, on their own schedule), the settling, the observation and the checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use simulator::ground_truth::{TxFilter, TxStatus};

use super::check::{check, Inputs};
use super::client::Api;
use super::drive::{self, Customers};
use super::mix::{Mix, C2B_SHORTCODE, STK_SHORTCODE};
use super::plan::{BackendKind, ChaosPlan};
use super::record::{Ledger, Observed};
use super::report::{Check, CrashRecord, Finding, Flow, Report};
use super::stack::{in_process_options, AwsResources, ChildStack, Target};
use super::truth::Truth;
use super::ChaosError;
use crate::DevStack;

pub struct RunOptions {
    pub plan: ChaosPlan,
    /// The devstack binary (crash form); default: next to the running executable.
    pub devstack_bin: Option<PathBuf>,
    /// Moto's endpoint (crash form).
    pub moto_endpoint: Option<String>,
    /// Where the child's logs and the JSON report go.
    pub out_dir: PathBuf,
}

/// The simulator's timings for a run: callbacks within a few hundred milliseconds, a short
/// prompt lifetime, and no subscriber lock (the scenario numbers are shared by many simulated
/// customers at once, which real customers are not).
pub fn simulator_config(seed: u64) -> simulator::SimulatorConfig {
    simulator::SimulatorConfig {
        seed,
        callback_delay: simulator::config::DelayRange {
            min_ms: 20,
            max_ms: 400,
        },
        stk_query_not_found_ms: 500,
        stk_prompt_lifetime_ms: 2_000,
        stk_subscriber_lock: false,
        c2b_validation_timeout_ms: 1_000,
        callback_timeout_ms: 3_000,
        duplicate_gap_ms: 100,
        reorder_max_hold_ms: 1_000,
        ..simulator::SimulatorConfig::fast_for_tests()
    }
}

fn random_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token(jwt_secret: &str, subject: &str, scopes: &[&str]) -> String {
    let now = Utc::now().timestamp();
    checkout::auth::jwt::mint_hs256(
        &checkout::secrets::Secret::new(jwt_secret),
        // `merchant`: the tenant both principals act for (the approver is another person of it).
        &json!({"sub": subject, "merchant": "chaos-merchant", "scope": scopes.join(" "), "iat": now, "exp": now + 12 * 3600}),
    )
}

async fn simulator_json(http: &reqwest::Client, url: String) -> Result<Value, ChaosError> {
    let response = http.get(&url).send().await?;
    Ok(response.json().await?)
}

/// Registers the C2B paybill and the STK paybill (whose C2B echo of each STK payment we expect
/// to be linked, never counted); retried while the stack is starting.
async fn register(api: &Api) -> Result<(), ChaosError> {
    for shortcode in [C2B_SHORTCODE, STK_SHORTCODE] {
        let mut last = None;
        for _ in 0..10 {
            let body = json!({"shortcode": shortcode});
            let answer = api
                .send("POST /v1/c2b/registrations", |http, base| {
                    http.post(format!("{base}/v1/c2b/registrations"))
                        .bearer_auth(&api.token)
                        .json(&body)
                })
                .await;
            if answer.is_success() {
                last = None;
                break;
            }
            last = Some(answer);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some(answer) = last {
            return Err(ChaosError::Setup(format!(
                "C2B registration of {shortcode} failed: {:?} {}",
                answer.status, answer.body
            )));
        }
    }
    Ok(())
}

/// Payments and payouts still open, through the API (a status this version does not know is
/// skipped), and C2B payments not verified yet (when the API has verification).
async fn open_count(api: &Api) -> usize {
    let mut open = 0;
    for status in ["pending", "sent", "unknown"] {
        if let Ok(items) = api
            .list_all("GET /v1/payments", &format!("/v1/payments?status={status}"))
            .await
        {
            open += items.len();
        }
    }
    for status in ["pending", "sent", "unknown", "awaiting_approval"] {
        if let Ok(items) = api
            .list_all("GET /v1/payouts", &format!("/v1/payouts?status={status}"))
            .await
        {
            open += items.len();
        }
    }
    // Verification states exist only in some versions: look at one item before reading them all.
    let sample = api.get("GET /v1/c2b/payments", "/v1/c2b/payments?limit=1").await;
    if sample.body["data"][0].get("verification").is_some() {
        if let Ok(items) = api.list_all("GET /v1/c2b/payments", "/v1/c2b/payments").await {
            open += items
                .iter()
                .filter(|p| crate::chaos::record::verification_status(p) == Some("unverified"))
                .count();
        }
    }
    open
}

/// Waits until nothing moves any more: the simulator settled everything and nothing is open,
/// or the deadlines have passed and the open set stopped changing, or the plan's timeout.
async fn settle(
    api: &Api,
    sim: &simulator::SimulatorHandle,
    plan: &ChaosPlan,
    not_before: tokio::time::Instant,
) -> Duration {
    let started = tokio::time::Instant::now();
    let quiet = plan.timings.quiet_after();
    let pending_filter = TxFilter {
        status: Some(TxStatus::Pending),
        ..TxFilter::default()
    };
    let mut last_open = usize::MAX;
    let mut stable = 0;
    let mut clean = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pending = sim.state().store.list(&pending_filter).len();
        let open = open_count(api).await;
        stable = if open == last_open { stable + 1 } else { 0 };
        last_open = open;
        clean = if pending == 0 && open == 0 { clean + 1 } else { 0 };
        let elapsed = started.elapsed();
        let may_stop = tokio::time::Instant::now() >= not_before;
        // Three quiet polls: callbacks held by reorder/delay faults (about a second) have landed.
        if may_stop && clean >= 3 {
            break;
        }
        if may_stop && elapsed >= quiet && stable >= 3 {
            break;
        }
        if elapsed >= plan.settle_timeout {
            break;
        }
    }
    started.elapsed()
}

/// Kills and restarts the child at seeded random moments of the drive.
async fn crash_schedule(
    child: Arc<tokio::sync::Mutex<ChildStack>>,
    http: reqwest::Client,
    plan: ChaosPlan,
    drive_for: Duration,
) -> Result<Vec<(DateTime<Utc>, CrashRecord)>, ChaosError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed ^ 0xC0A5);
    let mut at: Vec<f64> = (0..plan.crashes).map(|_| rng.gen_range(0.1..0.9)).collect();
    at.sort_by(f64::total_cmp);
    let start = tokio::time::Instant::now();
    let mut crashes = Vec::new();
    for fraction in at {
        tokio::time::sleep_until(start + drive_for.mul_f64(fraction)).await;
        let down = Duration::from_millis(rng.gen_range(200..2_000));
        let mut child = child.lock().await;
        let killed_at = Utc::now();
        child.kill().await;
        tokio::time::sleep(down).await;
        let restarting = Instant::now();
        child.start(&http).await?;
        crashes.push((
            killed_at,
            CrashRecord {
                killed_at: killed_at.to_rfc3339(),
                down_ms: down.as_millis() as u64,
                back_after_ms: (down + restarting.elapsed()).as_millis() as u64,
            },
        ));
    }
    Ok(crashes)
}

fn faults_fired(snapshot: &Value) -> BTreeMap<String, u64> {
    let mut fired = BTreeMap::new();
    for f in snapshot["fired"].as_array().into_iter().flatten() {
        let key = format!(
            "{} {}",
            f["endpoint"].as_str().unwrap_or("?"),
            f["kind"].as_str().unwrap_or("?")
        );
        *fired.entry(key).or_default() += 1;
    }
    fired
}

pub async fn run(options: RunOptions) -> Result<Report, ChaosError> {
    let RunOptions {
        plan,
        devstack_bin,
        moto_endpoint,
        out_dir,
    } = options;
    std::fs::create_dir_all(&out_dir)?;
    let begun = Instant::now();
    let sim_config = simulator_config(plan.seed);
    let sim = simulator::spawn(
        sim_config.clone(),
        "127.0.0.1:0".parse().map_err(|_| ChaosError::Setup("address".into()))?,
    )
    .await?;
    let sim_url = sim.base_url();
    let jwt_secret = random_key();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;

    let target = match plan.backend {
        BackendKind::Memory => {
            let stack = DevStack::start(in_process_options(&plan, &sim_url, &jwt_secret)?)
                .await
                .map_err(|e| ChaosError::Setup(format!("dev stack: {e}")))?;
            Target::InProcess(Box::new(stack))
        }
        BackendKind::Aws => {
            let endpoint = moto_endpoint
                .ok_or_else(|| ChaosError::Setup("the crash form needs moto: set MOTO_ENDPOINT".into()))?;
            let name = format!("chaos-{}-{}", std::process::id(), Utc::now().timestamp_millis());
            let mut aws = AwsResources::create(&endpoint, &name, plan.timings.queue_visibility_secs).await?;
            let proxy = super::moto_proxy::spawn(&endpoint).await?;
            aws.endpoint = proxy.url.clone();
            aws.proxy = Some(proxy);
            let bin = match devstack_bin {
                Some(bin) => bin,
                None => std::env::current_exe()?.with_file_name("devstack"),
            };
            let secrets = crate::dev_secrets_with_keys(&sim_config, &jwt_secret, &random_key());
            let mut child = ChildStack::new(bin, &plan, &aws, &sim_url, secrets, &jwt_secret, &out_dir)?;
            child.start(&http).await?;
            Target::Child(Arc::new(tokio::sync::Mutex::new(child)), Box::new(aws))
        }
    };
    let base_url = match &target {
        Target::InProcess(stack) => stack.base_url().to_owned(),
        Target::Child(child, _) => child.lock().await.base_url.clone(),
    };
    let api = Api::new(
        &base_url,
        token(&jwt_secret, "chaos-merchant", crate::ALL_SCOPES),
        token(
            &jwt_secret,
            "chaos-approver",
            &[
                checkout::auth::scopes::PAYOUTS_APPROVE,
                checkout::auth::scopes::PAYOUTS_READ,
            ],
        ),
    )?;

    // Setup, before any fault: registrations, a Daraja token for the customers, the URL a forger learns.
    register(&api).await?;
    let daraja_token = {
        let body: Value = http
            .get(format!("{sim_url}/oauth/v1/generate?grant_type=client_credentials"))
            .basic_auth(
                simulator::test_credentials::CONSUMER_KEY,
                Some(simulator::test_credentials::CONSUMER_SECRET),
            )
            .send()
            .await?
            .json()
            .await?;
        body["access_token"].as_str().unwrap_or_default().to_owned()
    };
    let registrations = simulator_json(&http, format!("{sim_url}/__control/c2b/registrations")).await?;
    let confirmation_url = registrations
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["shortcode"] == C2B_SHORTCODE)
        .and_then(|r| r["confirmation_url"].as_str())
        .ok_or_else(|| ChaosError::Setup("the simulator holds no confirmation URL".into()))?
        .to_owned();
    let customers = Customers {
        http: http.clone(),
        simulator_url: sim_url.clone(),
        daraja_token,
        confirmation_url,
    };
    let mix = Mix::generate(&plan);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Invoices exist before anyone pays them; faults start with the mix.
    drive::invoices(&api, &mix, plan.rate, &ledger).await;
    let faults = http
        .put(format!("{sim_url}/__control/faults"))
        .json(&plan.faults.rules())
        .send()
        .await?;
    if !faults.status().is_success() {
        return Err(ChaosError::Setup(format!("fault plan refused: {}", faults.status())));
    }

    let drive_started = Instant::now();
    let drive_for = Duration::from_secs_f64(mix.ops.len() as f64 / plan.rate.max(0.1));
    let crashes = match &target {
        Target::Child(child, _) if plan.crashes > 0 => Some(tokio::spawn(crash_schedule(
            child.clone(),
            http.clone(),
            plan.clone(),
            drive_for,
        ))),
        _ => None,
    };
    drive::mix(&api, &customers, &mix, plan.rate, &ledger).await;
    let crashes = match crashes {
        Some(task) => task
            .await
            .map_err(|e| ChaosError::Setup(format!("crash schedule: {e}")))??,
        None => Vec::new(),
    };
    let drive_secs = drive_started.elapsed().as_secs_f64();
    // After the last restart, jobs in flight at the kill come back after the visibility timeout.
    let not_before = tokio::time::Instant::now()
        + match crashes.is_empty() {
            true => Duration::ZERO,
            false => Duration::from_secs(u64::from(plan.timings.queue_visibility_secs) + 3),
        };
    let settle_secs = settle(&api, &sim, &plan, not_before).await.as_secs_f64();

    let ledger = Arc::try_unwrap(ledger)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_else(|arc| arc.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let observed = Observed::collect(&api, &mix, &ledger).await;
    let truth = Truth::new(sim.transactions());
    let fault_snapshot = simulator_json(&http, format!("{sim_url}/__control/faults")).await?;
    let kills: Vec<DateTime<Utc>> = crashes.iter().map(|(k, _)| *k).collect();
    let verdict = check(&Inputs {
        mix: &mix,
        ledger: &ledger,
        observed: &observed,
        truth: &truth,
        kills: &kills,
    });
    let dead_letters = target.dead_letters().await;
    let mut findings = verdict.findings;
    for problem in target.outbox_problems().await {
        let flow = if problem.starts_with("po_") {
            Flow::Payouts
        } else if problem.starts_with("c2b_") {
            Flow::C2b
        } else {
            Flow::Stk
        };
        findings.push(Finding {
            flow,
            check: Check::Outbox,
            record: problem.split(':').next().unwrap_or_default().to_owned(),
            detail: problem,
            truth: Value::Null,
        });
    }

    let mut report = Report {
        plan: plan.name.clone(),
        seed: plan.seed,
        backend: match plan.backend {
            BackendKind::Memory => "memory (in process)".into(),
            BackendKind::Aws => "aws (moto; dev stack a child process)".into(),
        },
        summary: format!(
            "{} payments, {} payouts, {} C2B payments ({} invoices, {} forged confirmations) at {}/s; faults: {}",
            plan.payments,
            plan.payouts,
            plan.c2b,
            plan.invoices,
            plan.forged_c2b,
            plan.rate,
            fault_line(&plan)
        ),
        records: BTreeMap::from([
            (Flow::Stk, observed.payments.len()),
            (Flow::Payouts, observed.payouts.len()),
            (Flow::C2b, observed.c2b_payments.len()),
            (Flow::Invoices, observed.invoices.len()),
        ]),
        findings,
        still_open: verdict.still_open,
        tolerated: verdict.tolerated,
        http: api.stats().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        crashes: crashes.into_iter().map(|(_, c)| c).collect(),
        faults_fired: faults_fired(&fault_snapshot),
        dead_letters: dead_letters.into_iter().filter(|(_, n)| *n > 0).collect(),
        notes: verdict.notes,
        drive_secs,
        settle_secs,
        total_secs: 0.0,
    };
    report
        .notes
        .extend(observed.errors.iter().map(|e| format!("could not read {e}")));
    if truth.unsettled > 0 {
        report.notes.push(format!(
            "{} simulator transactions or callbacks still unsettled at the end",
            truth.unsettled
        ));
    }
    target.shutdown().await;
    sim.shutdown().await;
    report.total_secs = begun.elapsed().as_secs_f64();
    let path = out_dir.join(format!("{}-report.json", plan.name));
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap_or_default())?;
    Ok(report)
}

fn fault_line(plan: &ChaosPlan) -> String {
    let f = &plan.faults;
    format!(
        "callbacks duplicate {} drop {} reorder {} delay {} ({} ms); endpoints 503-after {} 500-after {} spike arrest {} quota {}; slow queries {} ({} ms); seed {}",
        f.duplicate, f.drop, f.reorder, f.delay, f.delay_ms, f.http_503_after, f.http_500_after, f.spike_arrest, f.quota_violation, f.slow, f.slow_ms, f.seed
    )
}
