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
pub fn secrets<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: Option<&SdkConfig>,
) -> Result<Arc<SecretCache>, ConfigError> {
    let ttl = Duration::from_secs(settings.parsed(vars::SECRETS_TTL_SECONDS, 300)?);
    let source: Arc<dyn SecretSource> = if let Some(id) = settings.optional(vars::SECRET_ID) {
        let sdk = sdk.ok_or(ConfigError::Invalid {
            name: vars::SECRET_ID,
            reason: "needs AWS configuration".into(),
        })?;
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
pub fn daraja_without_retries<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
) -> Result<Arc<dyn Daraja>, ConfigError> {
    daraja_with_retries(
        settings,
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    )
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

pub fn table<F: Fn(&str) -> Option<String>>(
    settings: &Settings<F>,
    sdk: &SdkConfig,
) -> Result<Arc<dyn Table>, ConfigError> {
    Ok(Arc::new(DynamoTable::new(
        crate::aws::dynamo_client(sdk),
        settings.required(vars::TABLE_NAME)?,
    )))
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

/// The callback processor with a handler for every callback kind.
pub fn callback_processor(
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
) -> CallbackProcessor {
    use crate::services::callback_intake::CallbackKind;
    let settler = PaymentSettler {
        repo: PaymentRepo::new(table.clone()),
        table: table.clone(),
        clock: clock.clone(),
    };
    let c2b =
        crate::services::c2b_confirmations::C2bConfirmationHandler::new(table.clone(), secrets.clone(), clock.clone());
    let c2b_status: Arc<dyn crate::services::callback_processor::CallbackHandler> = Arc::new(
        crate::services::c2b_verification::C2bStatusHandler::new(table.clone(), secrets.clone(), clock.clone()),
    );
    let payouts: Arc<dyn crate::services::callback_processor::CallbackHandler> =
        Arc::new(crate::services::payout_callbacks::PayoutCallbackHandler {
            settler: crate::services::payout_settlement::PayoutSettler::new(table.clone(), clock.clone()),
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
    CallbackProcessor { handlers, table, clock }
}

/// The C2B validation service (`c2b-validation`).
pub fn c2b_validator(
    table: Arc<dyn Table>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    settings: crate::services::c2b_validation::ValidationSettings,
    known_sources: Vec<std::net::IpAddr>,
) -> crate::services::c2b_validation::C2bValidator {
    crate::services::c2b_validation::C2bValidator::new(table, secrets, clock, settings, known_sources)
}

/// The C2B registration, expected-payment and read services (`c2b-api`).
pub fn c2b_api(
    table: Arc<dyn Table>,
    daraja: Arc<dyn Daraja>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    registration: crate::services::c2b_registration::C2bRegistrationConfig,
) -> crate::api::c2b::C2bApi {
    crate::api::c2b::C2bApi {
        registrar: crate::services::c2b_registration::C2bRegistrar {
            table: table.clone(),
            daraja,
            secrets,
            clock: clock.clone(),
            config: registration,
        },
        expected: crate::services::expected_payments::ExpectedPaymentsService {
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
    config: crate::services::reconciliation::ReconcileConfig,
) -> crate::services::reconciliation::Reconciler {
    crate::services::reconciliation::Reconciler {
        repo: PaymentRepo::new(table.clone()),
        table: table.clone(),
        settler: PaymentSettler {
            repo: PaymentRepo::new(table.clone()),
            table,
            clock: clock.clone(),
        },
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
) -> Result<Arc<crate::services::b2c_credential::SecurityCredentials>, ConfigError> {
    Ok(Arc::new(crate::services::b2c_credential::SecurityCredentials::new(
        settings.b2c_certificate()?,
    )))
}

/// The payout API service (`payouts-api`), limits attached.
pub fn payouts_service(
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    secrets: Arc<SecretCache>,
    clock: Arc<dyn Clock>,
    config: crate::services::payouts::PayoutsConfig,
    limits: crate::services::payout_limits::PayoutLimitsConfig,
) -> crate::services::payouts::PayoutsService {
    crate::services::payouts::PayoutsService {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        limits: Some(Arc::new(crate::services::payout_limits::PayoutLimits {
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
    credentials: Arc<crate::services::b2c_credential::SecurityCredentials>,
    clock: Arc<dyn Clock>,
    config: crate::services::payout_worker::PayoutWorkerConfig,
) -> crate::services::payout_worker::PayoutWorker {
    crate::services::payout_worker::PayoutWorker {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        settler: crate::services::payout_settlement::PayoutSettler::new(table, clock.clone()),
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
    credentials: Arc<crate::services::b2c_credential::SecurityCredentials>,
    queue: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
    config: crate::services::payout_reconciliation::PayoutReconcileConfig,
    public_base_url: String,
) -> crate::services::payout_reconciliation::PayoutReconciler {
    crate::services::payout_reconciliation::PayoutReconciler {
        repo: crate::repo::payouts::PayoutRepo::new(table.clone()),
        settler: crate::services::payout_settlement::PayoutSettler::new(table, clock.clone()),
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
    config: crate::services::c2b_verification::C2bVerifyConfig,
    public_base_url: String,
) -> crate::services::c2b_verification::C2bVerifier {
    crate::services::c2b_verification::C2bVerifier {
        table,
        daraja,
        secrets,
        credentials: Arc::new(crate::services::b2c_credential::SecurityCredentials::new(
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
