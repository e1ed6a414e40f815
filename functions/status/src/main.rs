//! The read-only API: `GET /v1/payments/{id}`, `GET /v1/payments`, `GET /v1/events[/{id}]`, the
//! audit trail (`GET /v1/audit`, `GET /v1/{payments,payouts,c2b/payments}/{id}/audit`),
//! and the readiness check
//! `GET /v1/ready` (`ops:read`). It holds only read permissions: GetItem/Query on the table, the
//! secret, GetQueueAttributes on the queues; it never writes or sends anything.

use checkout::api::auth::Authenticator;
use checkout::api::router::Handlers;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::repo::payments::PaymentRepo;
use checkout::secrets::SecretPart;
use checkout::services::readiness::Readiness;
use checkout::{lambda, wiring};

const FUNCTION: &str = "status";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::DarajaApp, SecretPart::Jwt])?;
    let readiness = Readiness {
        secrets: secrets.clone(),
        table: table.clone(),
        queues: vec![
            ("callback_queue", wiring::callback_queue(settings, sdk)?),
            ("payout_queue", wiring::payout_queue(settings, sdk)?),
        ],
        daraja: wiring::daraja(settings)?,
        timeout: checkout::services::readiness::CHECK_TIMEOUT,
    };
    Ok(Handlers {
        auth: Some(Authenticator::new(settings.jwt()?, secrets)),
        payment_reads: Some(PaymentRepo::new(table.clone())),
        readiness: Some(readiness),
        events: Some(table.clone()),
        audit_reads: Some(table),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
