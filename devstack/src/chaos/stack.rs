//! The system under test: the dev stack in this process (memory backend), or the devstack binary
//! as a child process on moto's DynamoDB and SQS, which the run kills with SIGKILL and restarts
//! on the same table and queues. The simulator always lives in the runner, so its ground truth
//! survives every crash.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Region};
use checkout::queue::sqs::{create_queue_with_dlq, SqsQueue};
use checkout::queue::Queue;
use checkout::store::dynamo::create_table;

use super::plan::ChaosPlan;
use super::ChaosError;
use crate::{Backend, DarajaTarget, DevStack, Options};

/// Moto's endpoint and the table and queues of one run.
pub struct AwsResources {
    /// What the dev stack is given: the serialising proxy in front of moto, once installed.
    pub endpoint: String,
    pub proxy: Option<super::moto_proxy::MotoProxy>,
    pub table: String,
    pub callback_queue: String,
    pub callback_dlq: String,
    pub payout_queue: String,
    pub payout_dlq: String,
    sdk: aws_config::SdkConfig,
}

impl AwsResources {
    /// A fresh table and fresh queues (with dead-letter queues) on moto.
    pub async fn create(endpoint: &str, name: &str, visibility_secs: u32) -> Result<AwsResources, ChaosError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "chaos"))
            .load()
            .await;
        let dynamo = checkout::aws::dynamo_client(&sdk);
        let sqs = checkout::aws::sqs_client(&sdk);
        create_table(&dynamo, name)
            .await
            .map_err(|e| ChaosError::Setup(format!("table on moto: {e}")))?;
        let (callback_queue, callback_dlq) =
            create_queue_with_dlq(&sqs, &format!("{name}-callbacks"), visibility_secs, 5)
                .await
                .map_err(|e| ChaosError::Setup(format!("callback queue on moto: {e}")))?;
        let (payout_queue, payout_dlq) = create_queue_with_dlq(&sqs, &format!("{name}-payouts"), visibility_secs, 5)
            .await
            .map_err(|e| ChaosError::Setup(format!("payout queue on moto: {e}")))?;
        Ok(AwsResources {
            endpoint: endpoint.to_owned(),
            proxy: None,
            table: name.to_owned(),
            callback_queue,
            callback_dlq,
            payout_queue,
            payout_dlq,
            sdk,
        })
    }

    /// Deletes the run's table and queues: moto keeps everything in memory, and its transactions
    /// copy whole tables, so leftovers make every later run slower and bigger.
    pub async fn delete(&self) {
        let dynamo = checkout::aws::dynamo_client(&self.sdk);
        if let Err(error) = dynamo.delete_table().table_name(&self.table).send().await {
            tracing::warn!(%error, table = %self.table, "could not delete the run's table");
        }
        let sqs = checkout::aws::sqs_client(&self.sdk);
        for url in [
            &self.callback_queue,
            &self.callback_dlq,
            &self.payout_queue,
            &self.payout_dlq,
        ] {
            let _ = sqs.delete_queue().queue_url(url.as_str()).send().await;
        }
    }

    /// Messages in a dead-letter queue (read and left to expire: the run is over).
    pub async fn dead_letters(&self, url: &str) -> usize {
        let queue = SqsQueue::new(checkout::aws::sqs_client(&self.sdk), url);
        let mut n = 0;
        for _ in 0..100 {
            match queue.receive(10, Duration::from_millis(200)).await {
                Ok(batch) if !batch.is_empty() => {
                    for message in batch.iter().take(5usize.saturating_sub(n)) {
                        eprintln!("chaos: dead letter on {url}: {}", describe_dead_letter(&message.body));
                    }
                    n += batch.len();
                }
                _ => break,
            }
        }
        n
    }
}

/// The devstack binary as a child process.
pub struct ChildStack {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    child: Option<tokio::process::Child>,
    pub starts: usize,
    pub base_url: String,
}

/// A free loopback port (the child's API keeps it across restarts: callback URLs name it).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub async fn wait_healthy(http: &reqwest::Client, base_url: &str, within: Duration) -> Result<(), ChaosError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let ok = http
            .get(format!("{base_url}/v1/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ChaosError::Setup(format!(
                "the dev stack at {base_url} never became healthy"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl ChildStack {
    pub fn new(
        bin: PathBuf,
        plan: &ChaosPlan,
        aws: &AwsResources,
        simulator_url: &str,
        secrets_json: String,
        jwt_secret: &str,
        log_dir: &Path,
    ) -> Result<ChildStack, ChaosError> {
        let port = free_port()?;
        let t = &plan.timings;
        let args: Vec<String> = vec![
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--backend".into(),
            "aws".into(),
            // One argument: a random secret may start with `-` and would read as a flag.
            format!("--jwt-secret={jwt_secret}"),
            "--first-check-seconds".into(),
            t.payment_first_check_secs.to_string(),
            "--deadline-seconds".into(),
            t.payment_deadline_secs.to_string(),
            "--sweep-interval".into(),
            t.sweep_interval_secs.to_string(),
            "--sweep-lease-seconds".into(),
            t.sweep_lease_secs.to_string(),
            "--sweep-backoff-seconds".into(),
            t.sweep_backoff_secs.to_string(),
            "--c2b-verify-interval-seconds".into(),
            t.c2b_verify_interval_secs.to_string(),
            "--c2b-verify-deadline-seconds".into(),
            t.c2b_verify_deadline_secs.to_string(),
            "--metrics-interval".into(),
            "3600".into(),
        ];
        let mut env: Vec<(String, String)> = plan.stack_env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        use checkout::config::vars;
        env.extend(
            [
                ("AWS_ENDPOINT_URL", aws.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                ("AWS_REGION", "us-east-1".into()),
                (vars::TABLE_NAME, aws.table.clone()),
                (vars::CALLBACK_QUEUE_URL, aws.callback_queue.clone()),
                (vars::PAYOUT_QUEUE_URL, aws.payout_queue.clone()),
                (vars::DARAJA_BASE_URL, simulator_url.to_owned()),
                (vars::SECRETS_JSON, secrets_json),
                (
                    "RUST_LOG",
                    std::env::var("CHAOS_DEVSTACK_LOG").unwrap_or_else(|_| "warn".into()),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        if !bin.is_file() {
            return Err(ChaosError::Setup(format!(
                "no devstack binary at {} (build it: cargo build -p devstack --bins)",
                bin.display()
            )));
        }
        Ok(ChildStack {
            bin,
            args,
            env,
            log_dir: log_dir.to_owned(),
            child: None,
            starts: 0,
            base_url: format!("http://127.0.0.1:{port}"),
        })
    }

    pub async fn start(&mut self, http: &reqwest::Client) -> Result<(), ChaosError> {
        let log_path = self.log_dir.join(format!("devstack-{}.log", self.starts));
        let log = std::fs::File::create(&log_path)?;
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        self.starts += 1;
        let healthy = wait_healthy(http, &self.base_url, Duration::from_secs(60));
        tokio::pin!(healthy);
        // A child that exits (bad flags, a port in use) fails the start at once, with its log.
        let exited = tokio::select! {
            result = &mut healthy => { self.child = Some(child); return result; }
            status = child.wait() => status,
        };
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        Err(ChaosError::Setup(format!(
            "the dev stack exited ({exited:?}): {}",
            log.lines().take(20).collect::<Vec<_>>().join("\n")
        )))
    }

    /// SIGKILL: no shutdown hook, no flush, whatever was in flight is cut.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// The in-process stack's options: the same settings (parsed from the same variables) as the
/// child process gets, the simulator outside it.
pub fn in_process_options(plan: &ChaosPlan, simulator_url: &str, jwt_secret: &str) -> Result<Options, ChaosError> {
    let map = plan.stack_env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let settings = checkout::config::from_map(map);
    let config = |e: checkout::config::ConfigError| ChaosError::Setup(format!("settings: {e}"));
    let t = plan.timings;
    let lease = chrono::Duration::seconds(t.sweep_lease_secs);
    let backoff = chrono::Duration::seconds(t.sweep_backoff_secs);
    Ok(Options {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        daraja: DarajaTarget::External {
            base_url: simulator_url.to_owned(),
        },
        backend: Backend::Memory,
        jwt_secret: Some(jwt_secret.to_owned()),
        timings: checkout::domain::PaymentTimings {
            first_check_after: chrono::Duration::seconds(t.payment_first_check_secs),
            deadline_after: chrono::Duration::seconds(t.payment_deadline_secs),
        },
        public_base_url: None,
        metrics_interval: None,
        sweep_interval: Some(Duration::from_secs(t.sweep_interval_secs.max(1))),
        reconcile: checkout::services::payments::sweep::ReconcileConfig {
            lease,
            backoff_base: backoff,
            backoff_max: chrono::Duration::seconds(t.sweep_backoff_max_secs()),
            ..settings.reconcile().map_err(config)?
        },
        limits: settings.limits().map_err(config)?,
        clock: None,
        payouts: crate::payouts::PayoutOptions {
            config: settings.payouts().map_err(config)?,
            limits: settings.payout_limits().map_err(config)?,
            reconcile: checkout::services::payouts::sweep::PayoutReconcileConfig {
                lease,
                ..settings.payout_reconcile().map_err(config)?
            },
            retry_after: Duration::from_secs(2),
            worker: crate::payouts::PayoutWorkerOptions {
                submission_lease: settings.payout_submission_lease().map_err(config)?,
                ..crate::payouts::PayoutOptions::default().worker
            },
            ..crate::payouts::PayoutOptions::default()
        },
        c2b_verify: checkout::services::c2b::verification::C2bVerifyConfig {
            timings: checkout::domain::c2b_verification::VerificationTimings {
                interval: chrono::Duration::seconds(t.c2b_verify_interval_secs),
                deadline: chrono::Duration::seconds(t.c2b_verify_deadline_secs),
            },
            pacing: checkout::engine::sweep::Pacing {
                // The sweeps' one pace (SWEEP_QUERIES_PER_SECOND), as in the child process.
                queries_per_second: settings.reconcile().map_err(config)?.pacing.queries_per_second,
                // The long form verifies thousands of confirmations against a simulator that
                // answers slowly on purpose; more at once keeps up with its creation rate.
                concurrency: 32,
                ..Default::default()
            },
            batch_per_shard: 500,
            ..Default::default()
        },
        webhooks_allow_private: false,
        checkout_display_name: "Chaos Shop".into(),
        checkout_origins: Vec::new(),
        example_shop: None,
        checkout_limits: Default::default(),
    })
}

/// What the run drives.
pub enum Target {
    InProcess(Box<DevStack>),
    Child(Arc<tokio::sync::Mutex<ChildStack>>, Box<AwsResources>),
}

impl Target {
    /// The outbox invariant over everything the run stored (in process, also that every event
    /// was delivered by the stream).
    pub async fn outbox_problems(&self) -> Vec<String> {
        match self {
            Target::InProcess(stack) => stack.outbox_problems(Duration::from_secs(10)).await,
            Target::Child(_, aws) => {
                let table: Arc<dyn checkout::store::Table> = Arc::new(checkout::store::dynamo::DynamoTable::new(
                    checkout::aws::dynamo_client(&aws.sdk),
                    aws.table.clone(),
                ));
                crate::outbox::problems(&table, false, Duration::from_secs(10)).await
            }
        }
    }

    pub async fn dead_letters(&self) -> Vec<(String, usize)> {
        match self {
            Target::InProcess(stack) => {
                let mut out = Vec::new();
                if let Some(q) = stack.memory_queue() {
                    out.push(("callbacks".to_owned(), q.dead_letters().len()));
                }
                if let Some(q) = stack.payout_queue() {
                    out.push(("payouts".to_owned(), q.dead_letters().len()));
                }
                out
            }
            Target::Child(_, aws) => vec![
                ("callbacks".to_owned(), aws.dead_letters(&aws.callback_dlq).await),
                ("payouts".to_owned(), aws.dead_letters(&aws.payout_dlq).await),
            ],
        }
    }

    pub async fn shutdown(self) {
        match self {
            Target::InProcess(stack) => stack.shutdown().await,
            Target::Child(child, aws) => {
                child.lock().await.kill().await;
                aws.delete().await;
            }
        }
    }
}

/// What a dead-lettered message was, without its body (which may carry a phone number): the
/// callback envelope's kind, receipt time and request id, or the payout job as it is.
fn describe_dead_letter(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove("body");
            fields.remove("token");
            serde_json::Value::Object(fields).to_string()
        }
        _ => format!("{} bytes, not JSON", body.len()),
    }
}
