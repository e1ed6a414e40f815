//! Runs every minute (EventBridge Scheduler): reconciles open payments past their grace period
//! with STK Query and times out the ones past their deadline; then, when `PAYOUT_QUEUE_URL` is
//! set (payouts enabled), sweeps open payouts (re-enqueues lost jobs, asks Transaction Status
//! about `sent`-too-long and `unknown` ones); and, when an initiator certificate is configured,
//! asks Transaction Status about unverified C2B confirmations; and delivers again the events the
//! stream did not deliver (the outbox's redrive), and makes the webhook attempts that are due;
//! then writes the audit digests (every merchant's chains that moved, archived to the Object
//! Lock bucket when `AUDIT_DIGEST_BUCKET` is set). Returns every sweep's report.

use std::sync::Arc;

use checkout::audit::digest::{DigestArchive, Digester};
use checkout::audit::s3::S3Archive;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::events::handler::EventHandler;
use checkout::secrets::SecretPart;
use checkout::services::c2b::verification::C2bVerifier;
use checkout::services::payments::sweep::Reconciler;
use checkout::services::payouts::sweep::PayoutReconciler;
use checkout::webhooks::dispatch::WebhookDispatcher;
use checkout::webhooks::target::TargetPolicy;
use checkout::{aws, config, lambda, metrics, wiring};
use lambda_runtime::{service_fn, LambdaEvent};

use checkout::services::checkout::outcomes::AttemptOutcomes;
use checkout::services::checkout::sweep::SessionExpirySweep;
use checkout::services::checkout::CheckoutConfig;

const FUNCTION: &str = "timeout-sweeper";

struct App {
    reconciler: Reconciler,
    /// Delivers events the stream did not (the outbox's redrive).
    events: EventHandler,
    /// Makes the webhook attempts that are due (retries, and attempts whose sender crashed).
    webhooks: WebhookDispatcher,
    payout_reconciler: Option<PayoutReconciler>,
    c2b_verifier: Option<C2bVerifier>,
    /// Anchors the audit chains that moved (and archives the digests when a bucket is set).
    digester: Digester,
    /// Closes checkout sessions past their expiry.
    sessions: SessionExpirySweep,
}

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<App, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    let secrets = wiring::secrets(
        settings,
        Some(sdk),
        &[
            SecretPart::DarajaApp,
            SecretPart::B2cInitiator,
            SecretPart::CallbackKeys,
        ],
    )?;
    // No retries inside the client: the sweep paces and backs off on its own (`wiring::daraja_use`).
    let daraja = wiring::daraja(settings)?;
    let payout_reconciler = match settings.optional(config::vars::PAYOUT_QUEUE_URL) {
        Some(_) => Some(wiring::payout_reconciler(
            table.clone(),
            daraja.clone(),
            secrets.clone(),
            wiring::security_credentials(settings)?,
            wiring::payout_queue(settings, sdk)?,
            wiring::clock(),
            settings.payout_reconcile()?,
            settings.payments_base_url()?,
        )),
        None => None,
    };
    let certificate_configured = settings.optional(config::vars::B2C_CERTIFICATE_PEM).is_some()
        || settings.optional(config::vars::B2C_CERTIFICATE_FILE).is_some();
    let c2b_verifier = match certificate_configured {
        true => Some(wiring::c2b_verifier(
            table.clone(),
            daraja.clone(),
            secrets.clone(),
            settings.b2c_certificate()?,
            wiring::clock(),
            // One time budget for the three sweeps that share this invocation.
            checkout::services::c2b::verification::C2bVerifyConfig {
                pacing: checkout::engine::sweep::Pacing {
                    time_budget: settings.reconcile()?.pacing.time_budget,
                    ..Default::default()
                },
                ..Default::default()
            },
            settings.payments_base_url()?,
        )),
        false => None,
    };
    let webhooks = wiring::webhook_dispatcher(
        table.clone(),
        secrets.clone(),
        wiring::clock(),
        TargetPolicy::production(),
    )?;
    // Never creates a session nor renders a page: no checkout configuration needed.
    let sessions = Arc::new(wiring::checkout_service(
        table.clone(),
        wiring::clock(),
        CheckoutConfig::default(),
    ));
    let events = EventHandler::new(table.clone(), wiring::clock())
        .with_consumer(Arc::new(wiring::audit_log(&table)))
        .with_consumer(Arc::new(AttemptOutcomes {
            service: sessions.clone(),
        }))
        .with_consumer(Arc::new(webhooks.clone()));
    let digester = Digester {
        table: table.clone(),
        clock: wiring::clock(),
        archive: settings
            .audit_digest_bucket()?
            .map(|bucket| Arc::new(S3Archive::new(checkout::audit::s3::client(sdk), bucket)) as Arc<dyn DigestArchive>),
    };
    let reconciler = wiring::reconciler(table, daraja, secrets, wiring::clock(), settings.reconcile()?);
    Ok(App {
        reconciler,
        events,
        webhooks,
        payout_reconciler,
        c2b_verifier,
        digester,
        sessions: SessionExpirySweep { service: sessions },
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let app = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    // The event (EventBridge Scheduler's input) carries nothing the sweep needs.
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            // Side by side, so both fit the function's timeout (each has its own time budget).
            let payout_sweep = async {
                match &app.payout_reconciler {
                    Some(payout_reconciler) => {
                        serde_json::to_value(payout_reconciler.sweep().await).unwrap_or_default()
                    }
                    None => serde_json::Value::Null,
                }
            };
            let c2b_sweep = async {
                match &app.c2b_verifier {
                    Some(verifier) => serde_json::to_value(verifier.sweep().await).unwrap_or_default(),
                    None => serde_json::Value::Null,
                }
            };
            let (report, payouts, c2b, events, webhooks, sessions) = tokio::join!(
                app.reconciler.sweep(),
                payout_sweep,
                c2b_sweep,
                app.events.redrive(),
                app.webhooks.sweep(),
                app.sessions.sweep()
            );
            // After the redrive, so this run's redriven events are in the heads it anchors.
            let digests = match app.digester.run().await {
                Ok(report) => serde_json::to_value(report).unwrap_or_default(),
                // Counted (alarmed with the archive failures); the next run digests what this
                // one did not.
                Err(error) => {
                    metrics::count("AuditDigestFailures", 1, &[]);
                    serde_json::json!({"error": error.to_string()})
                }
            };
            metrics::count("Sweeps", 1, &[]);
            let mut value = serde_json::to_value(report).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("payouts".into(), payouts);
                object.insert("c2b_verification".into(), c2b);
                object.insert("audit_digests".into(), digests);
                object.insert(
                    "checkout_sessions".into(),
                    serde_json::json!({"due": sessions.due, "closed": sessions.closed, "left_open": sessions.left_open, "errors": sessions.errors}),
                );
                object.insert(
                    "events_redriven".into(),
                    serde_json::json!({"examined": events.examined, "handled": events.handled, "failed": events.failed}),
                );
                object.insert(
                    "webhooks".into(),
                    serde_json::json!({"examined": webhooks.examined, "delivered": webhooks.delivered, "retrying": webhooks.retrying, "dead_lettered": webhooks.dead_lettered, "errors": webhooks.errors}),
                );
            }
            Ok::<_, std::convert::Infallible>(value)
        }
    }))
    .await
}

checkout::wiring_test!(FUNCTION, build);
