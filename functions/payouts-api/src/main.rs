//! `POST /v1/payouts`, `GET /v1/payouts`, `GET /v1/payouts/{id}`, `POST /v1/payouts/{id}/approve`,
//! `POST /v1/payouts/{id}/reject`: records payouts (write-ahead, limits and idempotency in one
//! transaction), queues them for the `b2c-payout` worker, and runs two-person approval. With
//! `FEATURE_PAYOUTS=off` every route answers 404 `feature_disabled`.

use checkout::api::auth::Authenticator;
use checkout::api::router::{Handlers, Payouts};
use checkout::aws::SdkConfig;
use checkout::config::{vars, ConfigError, Settings};
use checkout::repo::payouts::PayoutRepo;
use checkout::secrets::SecretPart;
use checkout::{lambda, wiring};

const FUNCTION: &str = "payouts-api";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<Handlers, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    // Every call that changes something is recorded in the audit trail.
    let audit = wiring::audit_log(&table);
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys, SecretPart::Jwt])?;
    let service = wiring::payouts_service(
        table.clone(),
        wiring::payout_queue(settings, sdk)?,
        secrets.clone(),
        wiring::clock(),
        settings.payouts()?,
        settings.payout_limits()?,
    );
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let enabled = settings.feature(vars::FEATURE_PAYOUTS)?;
    Ok(Handlers {
        audit: Some(audit),
        auth: Some(auth),
        payouts: Some(Payouts {
            service,
            repo: PayoutRepo::new(table),
        }),
        disabled_feature: (!enabled).then_some("payouts"),
        ..Handlers::default()
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run_http_function(FUNCTION, build).await
}

checkout::wiring_test!(FUNCTION, build);
