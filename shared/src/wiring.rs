//! Builds adapters and services from configuration. Lambda functions call the pieces they need
//! (so a function reads only its own variables); the dev stack wires in-memory adapters instead.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::clock::{Clock, SystemClock};
use crate::config::{vars, ConfigError, Settings};
use crate::daraja::{Daraja, HttpDaraja, Operation, RetryPolicy};
use crate::engine::sweep::Pacing;
use crate::queue::sqs::SqsQueue;
use crate::queue::Queue;
use crate::repo::payments::PaymentRepo;
use crate::secrets::sources::{EnvSecret, FileSecret, SecretsManagerSecret};
use crate::secrets::{SecretCache, SecretPart, SecretSource};
use crate::services::callback_processor::CallbackProcessor;
use crate::services::payments::callbacks::StkCallbackHandler;
use crate::services::payments::flow::{PaymentFlow, PaymentSettler};
use crate::store::dynamo::DynamoTable;
use crate::store::Table;

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// The secrets a function reads: `parts`, the ones its code uses, which must be exactly those
/// `config::FUNCTIONS` declares for it (a `SECRET_ID_<PART>` each), so its IAM grants (checked
/// against that declaration by the template test) are what it loads. Each part from Secrets
/// Manager when its `SECRET_ID_<PART>` is set; otherwise all of them from the one JSON in
/// `CHECKOUT_SECRETS_JSON` or the file named by `CHECKOUT_SECRETS_FILE` (local runs).
/// `B2C_SHORTCODE`, where the function declares it, joins the view (it is not a secret).
pub fn secrets<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: Option<&SdkConfig>,
    parts: &[SecretPart],
) -> Result<Arc<SecretCache>, ConfigError> {
    if let Some(function) = settings.function() {
        for part in SecretPart::ALL {
            let var = crate::config::secret_id_var(part);
            let uses = parts.contains(&part);
            if uses != settings.declares(var) {
                return Err(ConfigError::Invalid {
                    name: var,
                    reason: if uses {
                        format!("{function} reads the {part} secret, which config::FUNCTIONS does not declare for it")
                    } else {
                        format!(
                            "config::FUNCTIONS declares it for {function}, whose code does not read the {part} secret"
                        )
                    },
                });
            }
        }
    }
    let ttl = Duration::from_secs(settings.parsed(vars::SECRETS_TTL_SECONDS, 300)?);
    let ids: Vec<(SecretPart, &'static str, Option<String>)> = parts
        .iter()
        .map(|part| {
            let var = crate::config::secret_id_var(*part);
            (*part, var, settings.optional(var))
        })
        .collect();
    let cache = if ids.iter().any(|(_, _, id)| id.is_some()) {
        let sdk = sdk.ok_or(ConfigError::Invalid {
            name: ids[0].1,
            reason: "needs AWS configuration".into(),
        })?;
        let client = crate::aws::secrets_client(sdk);
        let mut sources: Vec<(SecretPart, Arc<dyn SecretSource>)> = Vec::new();
        for (part, var, id) in ids {
            // All from Secrets Manager, or all from the local JSON: never a mix.
            let id = id.ok_or(ConfigError::Missing(var))?;
            sources.push((part, Arc::new(SecretsManagerSecret::new(client.clone(), id))));
        }
        SecretCache::split(sources, ttl)
    } else if settings.optional(vars::SECRETS_JSON).is_some() {
        SecretCache::merged(Arc::new(EnvSecret::new(vars::SECRETS_JSON)), parts, ttl)
    } else if let Some(path) = settings.optional(vars::SECRETS_FILE) {
        SecretCache::merged(Arc::new(FileSecret::new(path)), parts, ttl)
    } else {
        return Err(ConfigError::Missing(
            ids.first().map_or(vars::SECRETS_JSON, |(_, var, _)| *var),
        ));
    };
    let b2c_shortcode = if settings.declares(vars::B2C_SHORTCODE) {
        settings.optional(vars::B2C_SHORTCODE)
    } else {
        None
    };
    if let Some(code) = &b2c_shortcode {
        if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                name: vars::B2C_SHORTCODE,
                reason: "1-10 digits".into(),
            });
        }
    }
    Ok(Arc::new(cache.with_b2c_shortcode(b2c_shortcode)))
}

/// The Daraja client of the function `settings` is scoped to, retrying as [`daraja_use`] says
/// for it (unscoped settings, e.g. tools: the default policy).
pub fn daraja<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Arc<dyn Daraja>, ConfigError> {
    let retry = settings
        .function()
        .and_then(daraja_use)
        .map_or_else(RetryPolicy::default, |daraja| daraja.retry);
    daraja_with_retries(settings, retry)
}

fn daraja_with_retries<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    retry: RetryPolicy,
) -> Result<Arc<dyn Daraja>, ConfigError> {
    let base_url = settings.required(vars::DARAJA_BASE_URL)?;
    let http = reqwest::Client::builder()
        .timeout(settings.daraja_timeout()?)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| ConfigError::Invalid {
            name: vars::DARAJA_BASE_URL,
            reason: e.to_string(),
        })?;
    Ok(Arc::new(HttpDaraja::new(base_url, http, retry)))
}

// ------------------------------------------------------------------------------ Daraja budgets

/// What one invocation of a function may ask of Daraja: with the client's retry policy and
/// per-request timeout, this bounds how long the invocation can wait on Daraja, and the
/// function's `Timeout` in `template.yaml` must exceed it (`shared/tests/template.rs` checks
/// every function with [`invocation_worst_case`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DarajaWork {
    /// These calls, one after another (each with its own token fetch and retries).
    Calls(&'static [Operation]),
    /// One call per SQS message, `PAYOUT_WORKER_CONCURRENCY` messages of a batch at a time.
    PerMessage(Operation),
    /// A sweep: checks start until the time budget (`SWEEP_TIME_BUDGET_SECONDS`) is spent, each
    /// after its turn on the pace; the last ones started then finish.
    Sweep(&'static [Operation]),
    /// Cut off after a fixed time, whatever the client does (the readiness check).
    CutOff(Duration),
}

/// How a function's Daraja client retries by itself, and what an invocation asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DarajaUse {
    pub retry: RetryPolicy,
    pub work: DarajaWork,
}

/// No retry inside the client: the API's caller retries with its Idempotency-Key (and a push is
/// never resent anyway), and a sweep asks again at its next run. This keeps a synchronous
/// function under API Gateway's 30 s and a sweep inside its minute.
const NO_RETRIES: RetryPolicy = RetryPolicy {
    max_attempts: 1,
    base_delay: Duration::ZERO,
    max_delay: Duration::ZERO,
};

/// Time a function's `Timeout` keeps beyond its Daraja worst case, for the DynamoDB, SQS and
/// Secrets Manager requests around the calls (each a few milliseconds when AWS is well).
pub const NON_DARAJA_MARGIN: Duration = Duration::from_secs(3);

/// Each function that calls Daraja (`None`: it never does).
pub fn daraja_use(function: &str) -> Option<DarajaUse> {
    let (retry, work) = match function {
        "initiate" => (NO_RETRIES, DarajaWork::Calls(&[Operation::StkPush])),
        "c2b-api" => (NO_RETRIES, DarajaWork::Calls(&[Operation::C2bRegister])),
        "status" => (
            NO_RETRIES,
            DarajaWork::CutOff(crate::services::readiness::CHECK_TIMEOUT),
        ),
        "timeout-sweeper" => (
            NO_RETRIES,
            DarajaWork::Sweep(&[Operation::StkQuery, Operation::TransactionStatus]),
        ),
        // A worker nobody waits on: token fetches and provably unsent or rate-limited requests
        // are worth retrying there (a B2C request that may have been delivered never is).
        "b2c-payout" => (RetryPolicy::default(), DarajaWork::PerMessage(Operation::B2cPayment)),
        _ => return None,
    };
    Some(DarajaUse { retry, work })
}

/// Attempts the client makes for `op` at most: all of the policy's if any failure is retried.
fn attempts(retry: RetryPolicy, op: Operation) -> u32 {
    use crate::daraja::DarajaError;
    let failures = [
        (
            DarajaError::RateLimited {
                code: String::new(),
                message: String::new(),
            },
            false,
        ),
        (DarajaError::Unavailable { detail: String::new() }, true),
        (DarajaError::Unavailable { detail: String::new() }, false),
        (DarajaError::OutcomeUnknown { detail: String::new() }, false),
    ];
    if failures.iter().any(|(error, not_sent)| op.may_retry(error, *not_sent)) {
        retry.attempts()
    } else {
        1
    }
}

/// The longest waits between `attempts` attempts.
fn backoffs(retry: RetryPolicy, attempts: u32) -> Duration {
    (1..attempts).map(|r| retry.backoff_cap(r)).sum()
}

/// The longest one logical call of `op` can take with this client (see `HttpDaraja`): a token
/// fetch (its attempts, each up to the request timeout, and their backoff), the call's attempts
/// and backoff, and once per call a refused cached token: one more request and a fresh token.
pub fn worst_call(retry: RetryPolicy, request_timeout: Duration, op: Operation) -> Duration {
    let token_attempts = attempts(retry, Operation::Token);
    let token = request_timeout * token_attempts + backoffs(retry, token_attempts);
    let call_attempts = attempts(retry, op);
    token * 2 + request_timeout * (call_attempts + 1) + backoffs(retry, call_attempts)
}

/// The longest one invocation of the function `settings` is scoped to can wait on Daraja, from
/// its configuration (or the code's defaults): `None` if it never calls Daraja. `batch_size` is
/// its SQS event source's batch size, for a queue consumer.
pub fn invocation_worst_case<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    batch_size: Option<u32>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(function) = settings.function() else {
        return Ok(None);
    };
    let Some(daraja) = daraja_use(function) else {
        return Ok(None);
    };
    let request_timeout = settings.daraja_timeout()?;
    let call = |op| worst_call(daraja.retry, request_timeout, op);
    let worst = match daraja.work {
        DarajaWork::Calls(ops) => ops.iter().map(|op| call(*op)).sum(),
        DarajaWork::PerMessage(op) => {
            let concurrency = settings.payout_worker()?.concurrency.max(1) as u32;
            let rounds = batch_size.unwrap_or(1).max(1).div_ceil(concurrency);
            call(op) * rounds
        }
        DarajaWork::Sweep(ops) => {
            // Both sweeps run side by side, each with its own budget and pace: the longer one.
            let payments = settings.reconcile()?;
            let payouts = settings.payout_reconcile()?;
            let (payments, payouts) = (payments.pacing, payouts.pacing);
            let budget = payments.time_budget.max(payouts.time_budget);
            // A started check may wait for its turn behind the others in flight.
            let turn = |pacing: Pacing| {
                Duration::from_secs_f64(pacing.concurrency.max(1) as f64 / f64::from(pacing.queries_per_second.max(1)))
            };
            let wait = turn(payments).max(turn(payouts));
            let slowest = ops.iter().map(|op| call(*op)).max().unwrap_or_default();
            // Then the audit digests, within their own budget (plus the last one's S3 put).
            let digests = crate::audit::digest::DIGEST_TIME_BUDGET + crate::audit::s3::OPERATION_TIMEOUT;
            budget + wait + slowest + digests
        }
        DarajaWork::CutOff(limit) => limit,
    };
    Ok(Some(worst))
}

pub fn table<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<Arc<dyn Table>, ConfigError> {
    Ok(Arc::new(DynamoTable::new(
        crate::aws::dynamo_client(sdk),
        settings.required(vars::TABLE_NAME)?,
    )))
}

/// The live channel's connections table.
pub fn live_connections<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<crate::repo::live_connections::LiveConnections, ConfigError> {
    Ok(crate::repo::live_connections::LiveConnections::new(Arc::new(
        DynamoTable::new(
            crate::aws::dynamo_client(sdk),
            settings.required(crate::config::vars::LIVE_CONNECTIONS_TABLE)?,
        ),
    )))
}

/// Pushes to the live channel's connections, from the events function: the page's status
/// (the shop's name, the prompt's deadline) to each open page of a changed session.
pub fn live_push<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
    table: Arc<dyn Table>,
) -> Result<crate::api::checkout::live::LivePush, ConfigError> {
    let service = Arc::new(checkout_service(table, clock(), settings.checkout()?));
    Ok(crate::api::checkout::live::LivePush {
        answers: crate::api::checkout::StatusAnswers {
            service,
            prompt_after: settings.timings()?.deadline_after,
        },
        connections: live_connections(settings, sdk)?,
        sender: Arc::new(crate::api::checkout::live_management::ManagementApi::new(
            sdk,
            &settings.live_management_url()?,
        )),
    })
}

pub fn callback_queue<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<Arc<dyn Queue>, ConfigError> {
    Ok(Arc::new(SqsQueue::new(
        crate::aws::sqs_client(sdk),
        settings.required(vars::CALLBACK_QUEUE_URL)?,
    )))
}

/// The audit trail on `table`.
pub fn audit_log(table: &Arc<dyn Table>) -> crate::audit::AuditLog {
    crate::audit::AuditLog::new(table.clone(), clock())
}

/// The callback processor with a handler for every callback kind.
pub fn callback_processor(
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
) -> CallbackProcessor {
    use crate::services::callback_intake::CallbackKind;
    let settler = PaymentSettler::new(PaymentFlow, table.clone(), clock.clone());
    let c2b =
        crate::services::c2b::confirmations::C2bConfirmationHandler::new(table.clone(), secrets.clone(), clock.clone());
    let c2b_status: Arc<dyn crate::services::callback_processor::CallbackHandler> = Arc::new(
        crate::services::c2b::verification::C2bStatusHandler::new(table.clone(), secrets.clone(), clock.clone()),
    );
    let payouts: Arc<dyn crate::services::callback_processor::CallbackHandler> =
        Arc::new(crate::services::payouts::callbacks::PayoutCallbackHandler {
            settler: crate::services::payouts::flow::PayoutSettler::payouts(table.clone(), clock.clone()),
            table: table.clone(),
            secrets: secrets.clone(),
            clock: clock.clone(),
        });
    let stk = StkCallbackHandler {
        settler,
        table: table.clone(),
        secrets,
        clock: clock.clone(),
    };
    let mut handlers: std::collections::HashMap<
        CallbackKind,
        Arc<dyn crate::services::callback_processor::CallbackHandler>,
    > = std::collections::HashMap::new();
    handlers.insert(CallbackKind::StkCallback, Arc::new(stk));
    for kind in [
        CallbackKind::B2cResult,
        CallbackKind::B2cTimeout,
        CallbackKind::TransactionStatusResult,
        CallbackKind::TransactionStatusTimeout,
    ] {
        handlers.insert(kind, payouts.clone());
    }
    handlers.insert(CallbackKind::C2bConfirmation, Arc::new(c2b));
    handlers.insert(CallbackKind::C2bStatusResult, c2b_status.clone());
    handlers.insert(CallbackKind::C2bStatusTimeout, c2b_status);
    CallbackProcessor {
        handlers,
        audit: crate::audit::AuditLog::new(table.clone(), clock.clone()),
        table,
        clock,
    }
}

/// The C2B validation service (`c2b-validation`).
pub fn c2b_validator(
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    settings: crate::services::c2b::validation::ValidationSettings,
    known_sources: Vec<std::net::IpAddr>,
) -> crate::services::c2b::validation::C2bValidator {
    crate::services::c2b::validation::C2bValidator::new(table, secrets, clock, settings, known_sources)
}

/// The C2B registration, expected-payment and read services (`c2b-api`).
pub fn c2b_api(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    registration: crate::services::c2b::registration::C2bRegistrationConfig,
) -> crate::api::c2b::C2bApi {
    crate::api::c2b::C2bApi {
        registrar: crate::services::c2b::registration::C2bRegistrar {
            table: table.clone(),
            daraja,
            secrets,
            clock: clock.clone(),
            config: registration,
        },
        expected: crate::services::c2b::expected_payments::ExpectedPaymentsService {
            table: table.clone(),
            clock: clock.clone(),
            idempotency_lock: chrono::Duration::seconds(60),
        },
        table,
        clock,
    }
}

/// The initiation service (limits are attached by the caller when configured).
pub fn payments_service(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    config: crate::services::payments::PaymentsConfig,
) -> crate::services::payments::PaymentsService {
    crate::services::payments::PaymentsService {
        repo: PaymentRepo::new(table.clone()),
        table,
        daraja,
        secrets,
        clock,
        config,
        admission: None,
    }
}

/// Checkout sessions on `table`. The events function and the sweeper, which never create a
/// session nor render a page, pass [`CheckoutConfig::default`](crate::services::checkout::CheckoutConfig).
pub fn checkout_service(
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    config: crate::services::checkout::CheckoutConfig,
) -> crate::services::checkout::CheckoutService {
    crate::services::checkout::CheckoutService {
        repo: crate::repo::checkout_sessions::SessionRepo::new(table.clone()),
        payment_repo: PaymentRepo::new(table.clone()),
        table,
        clock,
        config,
    }
}

/// Limits as an admission control on the payment service.
pub fn limits(
    table: Arc<dyn Table>,
    config: crate::services::limits::LimitsConfig,
) -> Arc<dyn crate::services::limits::AdmissionControl> {
    Arc::new(crate::services::limits::Limits { table, config })
}

/// The timeout sweeper.
pub fn reconciler(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    config: crate::services::payments::sweep::ReconcileConfig,
) -> crate::services::payments::sweep::Reconciler {
    crate::services::payments::sweep::Reconciler {
        repo: PaymentRepo::new(table.clone()),
        table: table.clone(),
        settler: PaymentSettler::new(PaymentFlow, table, clock.clone()),
        daraja,
        secrets,
        clock,
        config,
    }
}

/// The payout queue (`PAYOUT_QUEUE_URL`).
pub fn payout_queue<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<Arc<dyn Queue>, ConfigError> {
    Ok(Arc::new(SqsQueue::new(
        crate::aws::sqs_client(sdk),
        settings.required(vars::PAYOUT_QUEUE_URL)?,
    )))
}

/// The SecurityCredential builder for B2C and Transaction Status (`B2C_CERTIFICATE_PEM` / `_FILE`).
pub fn security_credentials<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
) -> Result<Arc<crate::services::payouts::credential::SecurityCredentials>, ConfigError> {
    Ok(Arc::new(
        crate::services::payouts::credential::SecurityCredentials::new(settings.b2c_certificate()?),
    ))
}

/// The payout API service (`payouts-api`), limits attached.
pub fn payouts_service(
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    config: crate::services::payouts::PayoutsConfig,
    limits: crate::services::payouts::limits::PayoutLimitsConfig,
) -> crate::services::payouts::PayoutsService {
    crate::services::payouts::PayoutsService {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        limits: Some(Arc::new(crate::services::payouts::limits::PayoutLimits {
            table: table.clone(),
            config: limits,
        })),
        table,
        queue,
        secrets,
        clock,
        config,
    }
}

/// The payout queue's consumer (`b2c-payout`).
pub fn payout_worker(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    credentials: Arc<crate::services::payouts::credential::SecurityCredentials>,
    clock: Arc<dyn Clock>,
    config: crate::services::payouts::worker::PayoutWorkerConfig,
) -> crate::services::payouts::worker::PayoutWorker {
    crate::services::payouts::worker::PayoutWorker {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        settler: crate::services::payouts::flow::PayoutSettler::payouts(table, clock.clone()),
        daraja,
        secrets,
        credentials,
        clock,
        config,
    }
}

/// The payout sweep of the timeout sweeper.
#[allow(clippy::too_many_arguments)]
pub fn payout_reconciler(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    credentials: Arc<crate::services::payouts::credential::SecurityCredentials>,
    queue: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
    config: crate::services::payouts::sweep::PayoutReconcileConfig,
    public_base_url: String,
) -> crate::services::payouts::sweep::PayoutReconciler {
    crate::services::payouts::sweep::PayoutReconciler {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        settler: crate::services::payouts::flow::PayoutSettler::payouts(table, clock.clone()),
        daraja,
        secrets,
        credentials,
        queue,
        clock,
        config,
        public_base_url,
    }
}

/// The C2B verification sweep of the timeout sweeper (its own SecurityCredential cache: the C2B
/// initiator's password is not the B2C one).
#[allow(clippy::too_many_arguments)]
pub fn c2b_verifier(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    certificate_pem: String,
    clock: Arc<dyn Clock>,
    config: crate::services::c2b::verification::C2bVerifyConfig,
    public_base_url: String,
) -> crate::services::c2b::verification::C2bVerifier {
    crate::services::c2b::verification::C2bVerifier {
        table,
        daraja,
        secrets,
        credentials: Arc::new(crate::services::payouts::credential::SecurityCredentials::new(
            certificate_pem,
        )),
        clock,
        config,
        public_base_url,
    }
}

/// The Safaricom-facing intake (the `callback` and `c2b-confirmation` functions): the callback
/// queue and the published source addresses.
pub fn callback_intake<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<crate::services::callback_intake::CallbackIntake, ConfigError> {
    Ok(crate::services::callback_intake::CallbackIntake {
        queue: callback_queue(settings, sdk)?,
        clock: clock(),
        known_sources: settings.callback_sources()?,
    })
}

/// The webhook dispatcher of a deployed function: production targets only (public `https`,
/// checked again after DNS at send time).
pub fn webhook_dispatcher(
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    policy: crate::webhooks::target::TargetPolicy,
) -> Result<crate::webhooks::dispatch::WebhookDispatcher, ConfigError> {
    let sender = crate::webhooks::target::WebhookSender::new(policy).map_err(|e| ConfigError::Invalid {
        name: "webhooks",
        reason: e.to_string(),
    })?;
    Ok(crate::webhooks::dispatch::WebhookDispatcher {
        table,
        sender: Arc::new(sender),
        secrets,
        clock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{examples, for_function_from_map};

    fn sdk() -> SdkConfig {
        crate::aws::offline_sdk_config()
    }

    #[test]
    fn a_function_loads_exactly_the_secrets_it_declares() {
        let env = examples::env("c2b-validation", false);
        let settings = for_function_from_map("c2b-validation", env.clone()).unwrap();
        let cache = secrets(&settings, Some(&sdk()), &[SecretPart::CallbackKeys]).unwrap();
        assert_eq!(cache.parts(), [SecretPart::CallbackKeys].into());
        // Code that reads a secret the declaration (and so IAM) does not grant fails at start ...
        let more = secrets(
            &settings,
            Some(&sdk()),
            &[SecretPart::CallbackKeys, SecretPart::DarajaApp],
        );
        assert!(
            matches!(&more, Err(ConfigError::Invalid { name, .. }) if *name == vars::SECRET_ID_DARAJA_APP),
            "{:?}",
            more.err()
        );
        // ... and so does a declaration (a grant) the code does not use.
        let fewer = secrets(&settings, Some(&sdk()), &[]);
        assert!(matches!(&fewer, Err(ConfigError::Invalid { name, .. }) if *name == vars::SECRET_ID_CALLBACK_KEYS));
        settings.verify().unwrap();
    }

    #[test]
    fn secrets_come_all_from_secrets_manager_or_all_from_the_local_json() {
        let parts = [SecretPart::DarajaApp, SecretPart::CallbackKeys, SecretPart::Jwt];
        let mut env = examples::env("initiate", false);
        env.remove(vars::SECRET_ID_JWT);
        let settings = for_function_from_map("initiate", env).unwrap();
        assert_eq!(
            secrets(&settings, Some(&sdk()), &parts).err(),
            Some(ConfigError::Missing(vars::SECRET_ID_JWT))
        );
        let mut local: std::collections::HashMap<String, String> = examples::env("initiate", false)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("SECRET_ID_"))
            .collect();
        let settings = for_function_from_map("initiate", local.clone()).unwrap();
        assert_eq!(
            secrets(&settings, None, &parts).err(),
            Some(ConfigError::Missing(vars::SECRET_ID_DARAJA_APP))
        );
        local.insert(vars::SECRETS_JSON.into(), examples::value(vars::SECRETS_JSON).into());
        let settings = for_function_from_map("initiate", local).unwrap();
        assert_eq!(secrets(&settings, None, &parts).unwrap().parts(), parts.into());
    }

    #[tokio::test]
    async fn payouts_api_takes_the_b2c_shortcode_from_configuration() {
        // A merged local file that also holds the initiator's password: payouts-api keeps only
        // the callback-keys and JWT parts of it.
        let path = std::env::temp_dir().join(format!("checkout-wiring-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"b2c_initiator_password": "never-read-here", "callback_hmac_key": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}"#,
        )
        .unwrap();
        let mut env = examples::env("payouts-api", false);
        env.remove(vars::SECRET_ID_JWT);
        env.remove(vars::SECRET_ID_CALLBACK_KEYS);
        env.insert(vars::SECRETS_FILE.into(), path.display().to_string());
        env.insert(vars::B2C_SHORTCODE.into(), "600992".into());
        let settings = for_function_from_map("payouts-api", env.clone()).unwrap();
        let cache = secrets(&settings, None, &[SecretPart::CallbackKeys, SecretPart::Jwt]).unwrap();
        let view = cache.get().await.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(view.b2c_shortcode.as_deref(), Some("600992"));
        assert!(
            view.b2c_initiator_password.is_none(),
            "payouts-api never holds the initiator password"
        );
        env.insert(vars::B2C_SHORTCODE.into(), "60a".into());
        let settings = for_function_from_map("payouts-api", env).unwrap();
        assert!(secrets(&settings, None, &[SecretPart::CallbackKeys, SecretPart::Jwt]).is_err());
    }
}
