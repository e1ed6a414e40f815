//! Builds adapters and services from configuration. Lambda functions call the pieces they need
//! (so a function reads only its own variables); the dev stack wires in-memory adapters instead.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::clock::{Clock, SystemClock};
use crate::config::{vars, ConfigError, Settings};
use crate::daraja::{Daraja, HttpDaraja, RetryPolicy};
use crate::queue::sqs::SqsQueue;
use crate::queue::Queue;
use crate::repo::payments::PaymentRepo;
use crate::secrets::sources::{EnvSecret, FileSecret, SecretsManagerSecret};
use crate::secrets::{SecretCache, SecretSource};
use crate::services::callback_processor::CallbackProcessor;
use crate::services::settlement::PaymentSettler;
use crate::services::stk_callbacks::StkCallbackHandler;
use crate::store::dynamo::DynamoTable;
use crate::store::Table;

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Secrets Manager when `SECRET_ID` is set; otherwise the JSON in `CHECKOUT_SECRETS_JSON` or the
/// file named by `CHECKOUT_SECRETS_FILE` (local runs).
pub fn secrets<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: Option<&SdkConfig>) -> Result<Arc<SecretCache>, ConfigError> {
    let ttl = Duration::from_secs(settings.parsed(vars::SECRETS_TTL_SECONDS, 300)?);
    let source: Arc<dyn SecretSource> = if let Some(id) = settings.optional(vars::SECRET_ID) {
        let sdk = sdk.ok_or(ConfigError::Invalid { name: vars::SECRET_ID, reason: "needs AWS configuration".into() })?;
        Arc::new(SecretsManagerSecret::new(crate::aws::secrets_client(sdk), id))
    } else if settings.optional(vars::SECRETS_JSON).is_some() {
        Arc::new(EnvSecret::new(vars::SECRETS_JSON))
    } else if let Some(path) = settings.optional(vars::SECRETS_FILE) {
        Arc::new(FileSecret::new(path))
    } else {
        return Err(ConfigError::Missing(vars::SECRET_ID));
    };
    Ok(Arc::new(SecretCache::new(source, ttl)))
}

pub fn daraja<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Arc<dyn Daraja>, ConfigError> {
    daraja_with_retries(settings, RetryPolicy::default())
}

/// A Daraja client that never retries by itself (the sweeper paces and backs off on its own).
pub fn daraja_without_retries<F: Fn(&str) -> Option<String>>(settings: &Settings<F>) -> Result<Arc<dyn Daraja>, ConfigError> {
    daraja_with_retries(settings, RetryPolicy { max_attempts: 1, ..RetryPolicy::default() })
}

fn daraja_with_retries<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, retry: RetryPolicy) -> Result<Arc<dyn Daraja>, ConfigError> {
    let base_url = settings.required(vars::DARAJA_BASE_URL)?;
    let http = reqwest::Client::builder()
        .timeout(settings.daraja_timeout()?)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| ConfigError::Invalid { name: vars::DARAJA_BASE_URL, reason: e.to_string() })?;
    Ok(Arc::new(HttpDaraja::new(base_url, http, retry)))
}

pub fn table<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Arc<dyn Table>, ConfigError> {
    Ok(Arc::new(DynamoTable::new(crate::aws::dynamo_client(sdk), settings.required(vars::TABLE_NAME)?)))
}

pub fn callback_queue<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Arc<dyn Queue>, ConfigError> {
    Ok(Arc::new(SqsQueue::new(crate::aws::sqs_client(sdk), settings.required(vars::CALLBACK_QUEUE_URL)?)))
}

/// The callback processor with a handler for every callback kind.
pub fn callback_processor(table: Arc<dyn Table>, secrets: Arc<SecretCache>, clock: Arc<dyn Clock>) -> CallbackProcessor {
    use crate::services::callback_intake::CallbackKind;
    let settler = PaymentSettler { repo: PaymentRepo::new(table.clone()), table: table.clone(), clock: clock.clone() };
    let stk = StkCallbackHandler { settler, table: table.clone(), secrets, clock: clock.clone() };
    let mut handlers: std::collections::HashMap<CallbackKind, Arc<dyn crate::services::callback_processor::CallbackHandler>> =
        std::collections::HashMap::new();
    handlers.insert(CallbackKind::StkCallback, Arc::new(stk));
    CallbackProcessor { handlers, table, clock }
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

/// Limits as an admission control on the payment service.
pub fn limits(table: Arc<dyn Table>, config: crate::services::limits::LimitsConfig) -> Arc<dyn crate::services::limits::AdmissionControl> {
    Arc::new(crate::services::limits::Limits { table, config })
}

/// The timeout sweeper.
pub fn reconciler(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    config: crate::services::reconciliation::ReconcileConfig,
) -> crate::services::reconciliation::Reconciler {
    crate::services::reconciliation::Reconciler {
        repo: PaymentRepo::new(table.clone()),
        table: table.clone(),
        settler: PaymentSettler { repo: PaymentRepo::new(table.clone()), table, clock: clock.clone() },
        daraja,
        secrets,
        clock,
        config,
    }
}
