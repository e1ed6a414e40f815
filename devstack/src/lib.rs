//! The dev stack: every function's handler on one HTTP port with API Gateway's routes, the
//! Daraja simulator, in-memory storage and queue (or AWS ones from configuration), and the
//! callback processor consuming the queue. Tests start it in-process; `main.rs` runs it.

pub mod chaos;
pub mod example_shop;
mod handles;
mod http;
pub mod live;
pub mod load;
pub mod outbox;
pub mod payouts;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use checkout::api::auth::Authenticator;
use checkout::api::router::Handlers;
use checkout::audit::digest::{Digester, MemoryArchive};
use checkout::audit::AuditLog;
use checkout::auth::JwtSettings;
use checkout::clock::{Clock, SystemClock};
use checkout::daraja::{Daraja, HttpDaraja, RetryPolicy, StkTransactionType};
use checkout::domain::PaymentTimings;
use checkout::engine::sweep::Pacing;
use checkout::events::handler::EventHandler;
use checkout::webhooks::dispatch::WebhookDispatcher;
use checkout::webhooks::service::WebhookEndpoints;
use checkout::webhooks::target::TargetPolicy;
use http::Services;

/// Events the dev stack's stream delivers at once (each on its own task).
const EVENT_DELIVERIES_IN_FLIGHT: usize = 64;
use checkout::api::checkout::client_limits::PublicLimits;
use checkout::api::checkout::CheckoutPages;
use checkout::queue::consumer::{self, ConsumerOptions};
use checkout::queue::memory::{MemoryQueue, MemoryQueueOptions};
use checkout::queue::Queue;
use checkout::repo::payments::PaymentRepo;
use checkout::secrets::{Secret, SecretCache, StaticSecret};
use checkout::services::callback_intake::CallbackIntake;
use checkout::services::checkout::outcomes::AttemptOutcomes;
use checkout::services::checkout::sweep::SessionExpirySweep;
use checkout::services::checkout::CheckoutConfig;
use checkout::services::limits::LimitsConfig;
use checkout::services::payments::sweep::{ReconcileConfig, Reconciler, SweepReport};
use checkout::services::payments::{PaymentsConfig, PaymentsService};
use checkout::store::memory::MemoryTable;
use checkout::store::Table;
use checkout::{metrics, wiring};
use tokio::sync::watch;

/// Every scope a merchant's token may carry (tests mint merchant tokens with these).
pub const ALL_SCOPES: &[&str] = &[
    checkout::auth::scopes::PAYMENTS_WRITE,
    checkout::auth::scopes::PAYMENTS_READ,
    checkout::auth::scopes::PAYMENTS_READ_ALL,
    checkout::auth::scopes::PAYOUTS_WRITE,
    checkout::auth::scopes::PAYOUTS_READ,
    checkout::auth::scopes::PAYOUTS_APPROVE,
    checkout::auth::scopes::C2B_ADMIN,
    checkout::auth::scopes::C2B_WRITE,
    checkout::auth::scopes::C2B_READ,
    checkout::auth::scopes::OPS_READ,
    checkout::auth::scopes::EVENTS_READ,
    checkout::auth::scopes::WEBHOOKS_READ,
    checkout::auth::scopes::WEBHOOKS_WRITE,
    checkout::auth::scopes::AUDIT_READ,
    checkout::auth::scopes::CHECKOUT_WRITE,
    checkout::auth::scopes::CHECKOUT_READ,
];

/// The printed dev token's scopes: every merchant scope and `platform:operator`, so the one
/// token can act across merchants locally (the dev stack has no identity provider key, so its
/// HS256 key may grant the operator scope).
pub const DEV_TOKEN_SCOPES: &[&str] = &[
    checkout::auth::scopes::PAYMENTS_WRITE,
    checkout::auth::scopes::PAYMENTS_READ,
    checkout::auth::scopes::PAYMENTS_READ_ALL,
    checkout::auth::scopes::PAYOUTS_WRITE,
    checkout::auth::scopes::PAYOUTS_READ,
    checkout::auth::scopes::PAYOUTS_APPROVE,
    checkout::auth::scopes::C2B_ADMIN,
    checkout::auth::scopes::C2B_WRITE,
    checkout::auth::scopes::C2B_READ,
    checkout::auth::scopes::OPS_READ,
    checkout::auth::scopes::EVENTS_READ,
    checkout::auth::scopes::WEBHOOKS_READ,
    checkout::auth::scopes::WEBHOOKS_WRITE,
    checkout::auth::scopes::AUDIT_READ,
    checkout::auth::scopes::CHECKOUT_WRITE,
    checkout::auth::scopes::CHECKOUT_READ,
    checkout::auth::scopes::PLATFORM_OPERATOR,
];

/// Where Daraja is.
pub enum DarajaTarget {
    /// Start the simulator in this process with this configuration, on this address.
    EmbeddedSimulator {
        config: Box<simulator::SimulatorConfig>,
        listen: SocketAddr,
    },
    /// Use a Daraja at this base URL (a separately run simulator, or the Safaricom sandbox).
    External { base_url: String },
}

/// Where state and the callback queue live.
pub enum Backend {
    Memory,
    /// DynamoDB/SQS/Secrets Manager from the standard AWS configuration (moto or real AWS):
    /// `TABLE_NAME`, `CALLBACK_QUEUE_URL`, and the four `SECRET_ID_<PART>` or `CHECKOUT_SECRETS_JSON`.
    Aws,
    /// Adapters built by the caller (tests run the stack on moto's DynamoDB and SQS this way);
    /// secrets are the dev stack's own.
    Provided {
        table: Arc<dyn Table>,
        callback_queue: Arc<dyn Queue>,
    },
}

pub struct Options {
    pub listen: SocketAddr,
    pub daraja: DarajaTarget,
    pub backend: Backend,
    /// HS256 key for dev tokens; random per run when absent.
    pub jwt_secret: Option<String>,
    pub timings: PaymentTimings,
    /// The public URL Daraja calls back on; defaults to the listen address.
    pub public_base_url: Option<String>,
    /// Print aggregated metrics this often (EMF lines).
    pub metrics_interval: Option<Duration>,
    /// Run the timeout sweeper this often (`None`: only when [`DevStack::sweep_now`] is called).
    pub sweep_interval: Option<Duration>,
    pub reconcile: ReconcileConfig,
    pub limits: LimitsConfig,
    /// The stack's clock (tests pass a manual one to move time).
    pub clock: Option<Arc<dyn Clock>>,
    /// B2C payouts: API settings, limits, the payout queue and worker, the payout sweep.
    pub payouts: payouts::PayoutOptions,
    /// The C2B verification sweep (Transaction Status by receipt).
    pub c2b_verify: checkout::services::c2b::verification::C2bVerifyConfig,
    /// Merchant webhooks may target private and loopback addresses over `http` (an explicit
    /// choice: a newcomer's local server; never in Lambda).
    pub webhooks_allow_private: bool,
    /// The shop's name on the payment page.
    pub checkout_display_name: String,
    /// Origins allowed to frame the payment page (besides the example shop's).
    pub checkout_origins: Vec<String>,
    /// Where the example shop listens (its own origin, allowed to frame the page); `None`: no shop.
    pub example_shop: Option<SocketAddr>,
    /// The payment page's per client and per session request limits.
    pub checkout_limits: checkout::api::checkout::client_limits::LimitsConfig,
}

impl Options {
    /// A stack on free loopback ports with a fast simulator: what tests use.
    pub fn for_tests() -> Options {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            daraja: DarajaTarget::EmbeddedSimulator {
                config: Box::new(simulator::SimulatorConfig::fast_for_tests()),
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            backend: Backend::Memory,
            jwt_secret: None,
            timings: PaymentTimings::default(),
            public_base_url: None,
            metrics_interval: None,
            sweep_interval: None,
            reconcile: ReconcileConfig {
                pacing: Pacing {
                    queries_per_second: 1000,
                    ..Pacing::default()
                },
                ..ReconcileConfig::default()
            },
            limits: LimitsConfig::default(),
            clock: None,
            payouts: payouts::PayoutOptions::for_tests(),
            c2b_verify: checkout::services::c2b::verification::C2bVerifyConfig {
                pacing: Pacing {
                    queries_per_second: 1000,
                    ..Pacing::default()
                },
                ..Default::default()
            },
            // Tests point webhooks at local servers.
            webhooks_allow_private: true,
            checkout_display_name: "Dev Shop".into(),
            checkout_origins: Vec::new(),
            example_shop: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            checkout_limits: Default::default(),
        }
    }
}

/// Storage, queue and secrets, as the backend provides them.
struct Adapters {
    table: Arc<dyn Table>,
    callback_queue: Arc<dyn Queue>,
    memory_queue: Option<Arc<MemoryQueue>>,
    secrets: Arc<SecretCache>,
    /// The table's stream of new event items (the in-memory table's; DynamoDB Streams in AWS).
    event_stream: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

pub struct DevStack {
    /// The example shop (its page opens the payment modal), when it runs.
    example_shop_url: Option<String>,
    base_url: String,
    simulator_url: String,
    jwt_secret: Secret,
    table: Arc<dyn Table>,
    callback_queue: Arc<dyn Queue>,
    memory_queue: Option<Arc<MemoryQueue>>,
    simulator: Option<simulator::SimulatorHandle>,
    reconciler: Arc<Reconciler>,
    payout_stack: Arc<payouts::PayoutStack>,
    c2b_verifier: Arc<checkout::services::c2b::verification::C2bVerifier>,
    event_handler: Arc<EventHandler>,
    webhooks: WebhookDispatcher,
    digester: Digester,
    /// Closes checkout sessions past their expiry (part of the timeout sweep).
    session_expiry: Arc<SessionExpirySweep>,
    audit_archive: Arc<MemoryArchive>,
    /// Whether the table streams its events to the handler (the in-memory table does).
    streams_events: bool,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    c2b_validation_delay: Arc<AtomicU64>,
    secrets: Arc<SecretCache>,
}

fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The secret JSON the dev stack runs with: the simulator's public test credentials, and fresh
/// random keys for callback tokens, limit keys' phone hashes and JWTs (or the given JWT key).
fn dev_secrets(sim: &simulator::SimulatorConfig, jwt_secret: &str) -> String {
    dev_secrets_with_keys(sim, jwt_secret, &random_key())
}

/// [`dev_secrets`] with a given callback key: a stack restarted on the same table (the chaos
/// suite's crash form, through `CHECKOUT_SECRETS_JSON`) must accept the callback URLs it gave out.
pub fn dev_secrets_with_keys(sim: &simulator::SimulatorConfig, jwt_secret: &str, callback_hmac_key: &str) -> String {
    let app = sim.apps.first();
    let stk = sim.stk_shortcodes.first();
    serde_json::json!({
        "daraja_consumer_key": app.map(|a| a.consumer_key.clone()).unwrap_or_default(),
        "daraja_consumer_secret": app.map(|a| a.consumer_secret.clone()).unwrap_or_default(),
        "stk_shortcode": stk.map(|s| s.shortcode.clone()).unwrap_or_default(),
        "stk_passkey": stk.map(|s| s.passkey.clone()).unwrap_or_default(),
        "b2c_shortcode": sim.org_shortcodes.first().map(|o| o.shortcode.clone()),
        "b2c_initiator_name": sim.initiators.first().map(|i| i.name.clone()),
        "b2c_initiator_password": sim.initiators.first().map(|i| i.password.clone()),
        // The simulator's initiator has every role: it verifies C2B receipts too.
        "c2b_initiator_name": sim.initiators.first().map(|i| i.name.clone()),
        "c2b_initiator_password": sim.initiators.first().map(|i| i.password.clone()),
        // No `limits_hmac_key`: it is derived from the callback key, so a restarted stack keeps
        // its phones' limit counters.
        "callback_hmac_key": callback_hmac_key,
        "jwt_hs256_secret": jwt_secret,
    })
    .to_string()
}

impl DevStack {
    pub async fn start(options: Options) -> Result<DevStack, Box<dyn std::error::Error + Send + Sync>> {
        let clock: Arc<dyn Clock> = options.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let jwt_secret = options.jwt_secret.clone().unwrap_or_else(random_key);
        let (simulator, daraja_url, sim_config) = match options.daraja {
            DarajaTarget::EmbeddedSimulator { config, listen } => {
                let handle = simulator::spawn((*config).clone(), listen).await?;
                let url = handle.base_url();
                (Some(handle), url, *config)
            }
            DarajaTarget::External { base_url } => (None, base_url, simulator::SimulatorConfig::default()),
        };

        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let public_base_url = options.public_base_url.clone().unwrap_or_else(|| base_url.clone());
        let c2b_public_base_url = public_base_url.clone();
        let payout_public_base_url = public_base_url.clone();

        let settings = checkout::config::from_env();
        let dev_secrets = || {
            Arc::new(SecretCache::new(
                Arc::new(StaticSecret(dev_secrets(&sim_config, &jwt_secret))),
                Duration::from_secs(3600),
            ))
        };
        let Adapters {
            table,
            callback_queue,
            memory_queue,
            secrets,
            event_stream,
        } = match options.backend {
            Backend::Memory => {
                let queue = Arc::new(MemoryQueue::new(MemoryQueueOptions {
                    visibility_timeout: Duration::from_secs(30),
                    max_receives: 5,
                }));
                let table_clock = clock.clone();
                let table = MemoryTable::with_clock(Arc::new(move || table_clock.now().timestamp()));
                let event_stream = Some(table.stream_inserts(checkout::events::repo::KEY_PREFIX));
                Adapters {
                    table: Arc::new(table),
                    callback_queue: queue.clone(),
                    memory_queue: Some(queue),
                    secrets: dev_secrets(),
                    event_stream,
                }
            }
            Backend::Provided { table, callback_queue } => Adapters {
                table,
                callback_queue,
                memory_queue: None,
                secrets: dev_secrets(),
                // A provided table streams nothing here: the redrive sweep delivers its events.
                event_stream: None,
            },
            Backend::Aws => {
                let sdk = checkout::aws::sdk_config().await;
                Adapters {
                    table: wiring::table(&settings, &sdk)?,
                    callback_queue: wiring::callback_queue(&settings, &sdk)?,
                    memory_queue: None,
                    secrets: wiring::secrets(&settings, Some(&sdk), &checkout::secrets::SecretPart::ALL)?,
                    // DynamoDB Streams feeds the deployed events function; locally the sweep does.
                    event_stream: None,
                }
            }
        };

        // One Daraja call's bound (DARAJA_TIMEOUT_MS, 15 s by default), as in Lambda.
        let daraja_timeout = settings.daraja_timeout()?;
        let http = reqwest::Client::builder().timeout(daraja_timeout).build()?;
        let daraja: Arc<dyn Daraja> = Arc::new(HttpDaraja::new(daraja_url.clone(), http, RetryPolicy::default()));
        let c2b_daraja = daraja.clone();
        let sweeper_http = reqwest::Client::builder().timeout(daraja_timeout).build()?;
        let sweeper_daraja: Arc<dyn Daraja> = Arc::new(HttpDaraja::new(
            daraja_url.clone(),
            sweeper_http,
            RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
        ));
        let ready_daraja = sweeper_daraja.clone();
        let verifier_daraja = sweeper_daraja.clone();
        let reconciler = Arc::new(wiring::reconciler(
            table.clone(),
            sweeper_daraja,
            secrets.clone(),
            clock.clone(),
            options.reconcile,
        ));
        let admission = wiring::limits(table.clone(), options.limits.clone());
        let payments_service = || PaymentsService {
            repo: PaymentRepo::new(table.clone()),
            table: table.clone(),
            daraja: daraja.clone(),
            secrets: secrets.clone(),
            clock: clock.clone(),
            config: PaymentsConfig {
                public_base_url: public_base_url.clone(),
                transaction_type: StkTransactionType::CustomerPayBillOnline,
                party_b: None,
                timings: options.timings,
                idempotency_lock: chrono::Duration::seconds(60),
            },
            admission: Some(admission.clone()),
        };
        let payments = payments_service();
        // The example shop's origin frames the page (its modal), so it is bound first.
        let shop = match options.example_shop {
            Some(listen) => Some(example_shop::bind(listen).await?),
            None => None,
        };
        let mut checkout_origins = options.checkout_origins.clone();
        checkout_origins.extend(shop.as_ref().map(|(_, origin)| origin.clone()));
        // Hosted checkout: sessions, and the page whose attempts are payments like any other.
        let checkout_service = Arc::new(wiring::checkout_service(
            table.clone(),
            clock.clone(),
            CheckoutConfig {
                public_base_url: public_base_url.clone(),
                display_name: options.checkout_display_name.clone(),
                allowed_origins: checkout_origins,
                ..CheckoutConfig::default()
            },
        ));
        // The page's live channel: a WebSocket on this port, fed by the outbox.
        let live_sessions = live::LiveSessions::new();
        let checkout_pages = Arc::new(CheckoutPages {
            service: checkout_service.clone(),
            payments: Arc::new(payments_service()),
            limits: PublicLimits::new(options.checkout_limits),
            live: Some(
                checkout::api::checkout::LiveChannel::parse(&format!(
                    "{}/pay/live",
                    base_url.replacen("http", "ws", 1)
                ))
                .map_err(|e| format!("live channel: {e}"))?,
            ),
        });
        let live_route = Arc::new(live::LiveRoute {
            pages: checkout_pages.clone(),
            sessions: live_sessions.clone(),
        });
        let session_expiry = Arc::new(SessionExpirySweep {
            service: checkout_service.clone(),
        });
        let known_sources: Vec<IpAddr> = checkout::config::DEFAULT_CALLBACK_SOURCES
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        // C2B: plain HTTP is fine for the simulator; rules are re-read every second so an edit
        // shows at once (Lambda caches them for C2B_RULES_CACHE_SECONDS).
        let c2b = wiring::c2b_api(
            table.clone(),
            c2b_daraja,
            secrets.clone(),
            clock.clone(),
            checkout::services::c2b::registration::C2bRegistrationConfig {
                public_base_url: c2b_public_base_url,
                require_https: false,
            },
        );
        let c2b_validator = wiring::c2b_validator(
            table.clone(),
            secrets.clone(),
            clock.clone(),
            checkout::services::c2b::validation::ValidationSettings {
                rules_ttl: Duration::from_secs(1),
                ..checkout::services::c2b::validation::ValidationSettings::default()
            },
            known_sources,
        );
        let c2b_validation_delay = Arc::new(AtomicU64::new(0));
        let payout_queue = match (
            &memory_queue,
            settings.optional(checkout::config::vars::PAYOUT_QUEUE_URL),
        ) {
            (None, Some(_)) => Some(wiring::payout_queue(&settings, &checkout::aws::sdk_config().await)?),
            _ => None,
        };
        let certificate = settings
            .b2c_certificate()
            .unwrap_or_else(|_| simulator::test_credentials::INITIATOR_CERT_PEM.to_owned());
        let c2b_verifier = Arc::new(wiring::c2b_verifier(
            table.clone(),
            verifier_daraja,
            secrets.clone(),
            certificate.clone(),
            clock.clone(),
            options.c2b_verify,
            payout_public_base_url.clone(),
        ));
        let (payout_stack, payout_handlers) = payouts::build(
            &options.payouts,
            table.clone(),
            payout_queue,
            secrets.clone(),
            clock.clone(),
            &daraja_url,
            &payout_public_base_url,
            &certificate,
        )?;
        let payout_stack = Arc::new(payout_stack);
        let readiness = checkout::services::readiness::Readiness {
            secrets: secrets.clone(),
            table: table.clone(),
            queues: vec![
                ("callback_queue", callback_queue.clone()),
                ("payout_queue", payout_stack.queue.clone()),
            ],
            daraja: ready_daraja,
            timeout: Duration::from_secs(3),
        };
        let webhook_policy = TargetPolicy {
            allow_private: options.webhooks_allow_private,
        };
        let webhooks = wiring::webhook_dispatcher(table.clone(), secrets.clone(), clock.clone(), webhook_policy)?;
        let audit = AuditLog::new(table.clone(), clock.clone());
        // Digests archived in memory, as the template archives them to an Object Lock bucket.
        let audit_archive = Arc::new(MemoryArchive::new());
        let digester = Digester {
            table: table.clone(),
            clock: clock.clone(),
            archive: Some(audit_archive.clone()),
        };
        // Every route (the dev stack is every function at once); every field is named, so a new
        // flow's services cannot be left out here.
        let handlers = Handlers {
            auth: Some(Authenticator::new(
                JwtSettings {
                    leeway_seconds: 30,
                    ..JwtSettings::default()
                },
                secrets.clone(),
            )),
            payments: Some(payments),
            payment_reads: Some(PaymentRepo::new(table.clone())),
            payouts: Some(payout_handlers),
            c2b: Some(c2b),
            c2b_validation: Some(c2b_validator),
            callbacks: Some(CallbackIntake {
                queue: callback_queue.clone(),
                clock: clock.clone(),
                known_sources: checkout::config::DEFAULT_CALLBACK_SOURCES
                    .iter()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            }),
            // The same checks as in Lambda, against the stack's own adapters.
            readiness: Some(readiness),
            events: Some(table.clone()),
            audit: Some(audit.clone()),
            audit_reads: Some(table.clone()),
            webhooks: Some(WebhookEndpoints {
                dispatcher: webhooks.clone(),
                policy: webhook_policy,
            }),
            checkout: Some(checkout_service.clone()),
            checkout_pages: Some(checkout_pages),
            health_and_openapi: true,
            disabled_feature: None,
        };
        let services = Arc::new(Services {
            handlers,
            c2b_validation_delay: c2b_validation_delay.clone(),
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        // The events function: fed by the table's stream, as DynamoDB Streams feeds it in AWS.
        let event_handler = Arc::new(
            EventHandler::new(table.clone(), clock.clone())
                .with_consumer(Arc::new(audit))
                .with_consumer(Arc::new(AttemptOutcomes {
                    service: checkout_service.clone(),
                }))
                .with_consumer(live_sessions)
                .with_consumer(Arc::new(webhooks.clone())),
        );
        let streams_events = event_stream.is_some();
        if let Some(mut stream) = event_stream {
            let handler = event_handler.clone();
            let mut rx = shutdown_rx.clone();
            let in_flight = Arc::new(tokio::sync::Semaphore::new(EVENT_DELIVERIES_IN_FLIGHT));
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        key = stream.recv() => {
                            let Some(key) = key else { break };
                            let Some(id) = key.strip_prefix(checkout::events::repo::KEY_PREFIX) else { continue };
                            // Each event on its own task (as a stream's shards run side by side),
                            // so a slow webhook endpoint holds up no other event; at most
                            // EVENT_DELIVERIES_IN_FLIGHT at once.
                            let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                            let handler = handler.clone();
                            let id = id.to_owned();
                            tokio::spawn(async move {
                                if let Err(error) = handler.deliver(&id).await {
                                    // Left unhandled: the redrive sweep delivers it again.
                                    tracing::warn!(%error, event_id = %id, "event delivery failed");
                                }
                                drop(permit);
                            });
                        }
                        _ = rx.changed() => break,
                    }
                }
            }));
        }

        let processor = Arc::new(wiring::callback_processor(
            table.clone(),
            secrets.clone(),
            clock.clone(),
        ));
        tasks.push(tokio::spawn(consumer::run(
            callback_queue.clone(),
            processor,
            ConsumerOptions::default(),
            shutdown_rx.clone(),
        )));
        let worker_options = payout_stack.worker_options;
        tasks.push(tokio::spawn(consumer::run(
            payout_stack.queue.clone(),
            payout_stack.worker.clone(),
            ConsumerOptions {
                batch_size: worker_options.batch_size,
                concurrency: worker_options.batches,
                ..ConsumerOptions::default()
            },
            shutdown_rx.clone(),
        )));
        if let Some(interval) = options.sweep_interval {
            let mut rx = shutdown_rx.clone();
            let payout_reconciler = payout_stack.reconciler.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {
                            payout_reconciler.sweep().await;
                        }
                        _ = rx.changed() => break,
                    }
                }
            }));
        }

        if let Some(interval) = options.sweep_interval {
            let mut rx = shutdown_rx.clone();
            let reconciler = reconciler.clone();
            let c2b_verifier = c2b_verifier.clone();
            let event_handler = event_handler.clone();
            let webhooks = webhooks.clone();
            let digester = digester.clone();
            let session_expiry = session_expiry.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {
                            tokio::join!(reconciler.sweep(), c2b_verifier.sweep(), event_handler.redrive(), webhooks.sweep(), session_expiry.sweep());
                            if let Err(error) = digester.run().await {
                                tracing::warn!(%error, "audit digests not written this sweep");
                            }
                        }
                        _ = rx.changed() => break,
                    }
                }
            }));
        }

        if let Some(interval) = options.metrics_interval {
            let mut rx = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => metrics::flush(),
                        _ = rx.changed() => break,
                    }
                }
            }));
        }

        let live_channel = axum::Router::new()
            .route("/pay/live", axum::routing::get(live::socket))
            .with_state(live_route);
        let app = axum::Router::new()
            .fallback(http::dispatch)
            .with_state(services)
            .merge(live_channel);
        let mut rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                });
            if let Err(error) = server.await {
                tracing::error!(%error, "dev stack server stopped");
            }
        }));

        let example_shop_url = match shop {
            Some((listener, origin)) => {
                let now = chrono::Utc::now().timestamp();
                // The shop's server holds its token; its pages never see it.
                let token = checkout::auth::jwt::mint_hs256(
                    &Secret::new(jwt_secret.clone()),
                    &serde_json::json!({"sub": "example-shop", "scope": "checkout:write checkout:read",
                        "iat": now, "exp": now + 30 * 24 * 3600}),
                );
                tasks.push(example_shop::spawn(
                    listener,
                    origin.clone(),
                    base_url.clone(),
                    token,
                    shutdown_rx.clone(),
                ));
                Some(origin)
            }
            None => None,
        };

        Ok(DevStack {
            example_shop_url,
            base_url,
            simulator_url: daraja_url,
            jwt_secret: Secret::new(jwt_secret),
            table,
            callback_queue,
            memory_queue,
            simulator,
            reconciler,
            payout_stack,
            c2b_verifier,
            event_handler,
            webhooks,
            digester,
            session_expiry,
            audit_archive,
            streams_events,
            shutdown,
            tasks,
            c2b_validation_delay,
            secrets,
        })
    }
}
