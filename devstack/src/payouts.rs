//! B2C payouts in the dev stack: the payout routes' services, the payout queue (in memory, with a
//! dead-letter queue) consumed by the `b2c-payout` worker, and the payout sweep. The
//! SecurityCredential is computed from the simulator's public test certificate, exactly as
//! Lambda computes it from Safaricom's.

use std::sync::Arc;
use std::time::Duration;

use checkout::api::router::Payouts;
use checkout::clock::Clock;
use checkout::daraja::{Daraja, HttpDaraja, RetryPolicy};
use checkout::engine::sweep::Pacing;
use checkout::queue::memory::{MemoryQueue, MemoryQueueOptions};
use checkout::queue::Queue;
use checkout::repo::payouts::PayoutRepo;
use checkout::secrets::SecretCache;
use checkout::services::payouts::credential::SecurityCredentials;
use checkout::services::payouts::limits::PayoutLimitsConfig;
use checkout::services::payouts::sweep::{PayoutReconcileConfig, PayoutReconciler};
use checkout::services::payouts::worker::{PayoutWorker, PayoutWorkerConfig};
use checkout::services::payouts::PayoutsConfig;
use checkout::store::Table;
use checkout::wiring;

/// Wraps a table (tests: a table that fails a write the way a crash would).
pub type TableWrapper = Arc<dyn Fn(Arc<dyn Table>) -> Arc<dyn Table> + Send + Sync>;

/// Wraps a queue (tests: a queue that refuses messages the way an SQS outage would).
pub type QueueWrapper = Arc<dyn Fn(Arc<dyn Queue>) -> Arc<dyn Queue> + Send + Sync>;

#[derive(Clone)]
pub struct PayoutOptions {
    pub config: PayoutsConfig,
    pub limits: PayoutLimitsConfig,
    pub reconcile: PayoutReconcileConfig,
    /// How long a payout job the worker asked to retry stays invisible (the payout queue's
    /// visibility timeout), and receives before the dead-letter queue.
    pub retry_after: Duration,
    pub max_receives: u32,
    pub worker: PayoutWorkerOptions,
    /// Test hook: the table the worker writes through.
    pub worker_table: Option<TableWrapper>,
    /// Test hook: the queue `POST /v1/payouts` enqueues through (the worker and the sweeper use
    /// the real one).
    pub api_queue: Option<QueueWrapper>,
}

#[derive(Debug, Clone, Copy)]
pub struct PayoutWorkerOptions {
    /// Payouts of one batch submitted at once.
    pub concurrency: usize,
    /// Batches in flight at once (Lambda's maximum concurrency of the event source).
    pub batches: usize,
    pub batch_size: usize,
    /// How long a job holds a payout's submission lease.
    pub submission_lease: chrono::Duration,
}

impl Default for PayoutOptions {
    fn default() -> Self {
        PayoutOptions {
            config: PayoutsConfig::default(),
            limits: PayoutLimitsConfig::default(),
            reconcile: PayoutReconcileConfig::default(),
            retry_after: Duration::from_secs(30),
            max_receives: 5,
            worker: PayoutWorkerOptions {
                concurrency: 10,
                batches: 4,
                batch_size: 10,
                submission_lease: PayoutWorkerConfig::DEFAULT_SUBMISSION_LEASE,
            },
            worker_table: None,
            api_queue: None,
        }
    }
}

impl PayoutOptions {
    /// Fast retries and unpaced status queries, for tests.
    pub fn for_tests() -> PayoutOptions {
        PayoutOptions {
            retry_after: Duration::from_millis(300),
            reconcile: PayoutReconcileConfig {
                pacing: Pacing {
                    queries_per_second: 1000,
                    ..Pacing::default()
                },
                ..PayoutReconcileConfig::default()
            },
            ..PayoutOptions::default()
        }
    }
}

pub(crate) struct PayoutStack {
    pub queue: Arc<dyn Queue>,
    pub memory_queue: Option<Arc<MemoryQueue>>,
    pub worker: Arc<PayoutWorker>,
    pub reconciler: Arc<PayoutReconciler>,
    pub worker_options: PayoutWorkerOptions,
}

/// The payout stack, and the services of the payout routes (served by the stack's router).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    options: &PayoutOptions,
    table: Arc<dyn Table>,
    queue: Option<Arc<dyn Queue>>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    daraja_url: &str,
    public_base_url: &str,
    certificate_pem: &str,
) -> Result<(PayoutStack, Payouts), Box<dyn std::error::Error + Send + Sync>> {
    let (queue, memory_queue): (Arc<dyn Queue>, Option<Arc<MemoryQueue>>) = match queue {
        Some(queue) => (queue, None),
        None => {
            let memory = Arc::new(MemoryQueue::new(MemoryQueueOptions {
                visibility_timeout: options.retry_after,
                max_receives: options.max_receives,
            }));
            (memory.clone(), Some(memory))
        }
    };
    let credentials = Arc::new(SecurityCredentials::new(certificate_pem));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(256)
        .build()?;
    let daraja: Arc<dyn Daraja> = Arc::new(HttpDaraja::new(daraja_url.to_owned(), http, RetryPolicy::default()));
    let sweeper_http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    let sweeper_daraja: Arc<dyn Daraja> = Arc::new(HttpDaraja::new(
        daraja_url.to_owned(),
        sweeper_http,
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    ));
    let worker_table = match &options.worker_table {
        Some(wrap) => wrap(table.clone()),
        None => table.clone(),
    };
    let worker = Arc::new(wiring::payout_worker(
        worker_table,
        daraja,
        secrets.clone(),
        credentials.clone(),
        clock.clone(),
        PayoutWorkerConfig {
            public_base_url: public_base_url.to_owned(),
            concurrency: options.worker.concurrency,
            submission_lease: options.worker.submission_lease,
        },
    ));
    let reconciler = Arc::new(wiring::payout_reconciler(
        table.clone(),
        sweeper_daraja,
        secrets.clone(),
        credentials,
        queue.clone(),
        clock.clone(),
        options.reconcile,
        public_base_url.to_owned(),
    ));
    let api_queue = match &options.api_queue {
        Some(wrap) => wrap(queue.clone()),
        None => queue.clone(),
    };
    let service = wiring::payouts_service(
        table.clone(),
        api_queue,
        secrets,
        clock,
        options.config.clone(),
        options.limits.clone(),
    );
    let stack = PayoutStack {
        queue,
        memory_queue,
        worker,
        reconciler,
        worker_options: options.worker,
    };
    Ok((
        stack,
        Payouts {
            service,
            repo: PayoutRepo::new(table),
        },
    ))
}
