//! The read-only API: `GET /v1/payments/{id}`, `GET /v1/payments`, `GET /v1/events[/{id}]`,
//! and the readiness check
//! `GET /v1/ready` (`ops:read`). It holds only read permissions: GetItem/Query on the table, the
//! secret, GetQueueAttributes on the queues; it never writes or sends anything.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::api::ApiError;
use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::repo::payments::PaymentRepo;
use checkout::secrets::SecretPart;
use checkout::services::readiness::Readiness;
use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "status";

struct App {
    table: std::sync::Arc<dyn checkout::store::Table>,
    repo: PaymentRepo,
    auth: Authenticator,
    readiness: Readiness,
}

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<App, ConfigError> {
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
    Ok(App {
        repo: PaymentRepo::new(table.clone()),
        table,
        auth: Authenticator::new(settings.jwt()?, secrets),
        readiness,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let app = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda::serve_http(move |mut request| {
        let app = app.clone();
        async move {
            match match_route(&request.method, &request.path) {
                RouteMatch::Found { id, params } => {
                    request.path_params.extend(params);
                    match id {
                        RouteId::GetPayment => api::payments::get(&app.repo, &app.auth, request).await,
                        RouteId::ListPayments => api::payments::list(&app.repo, &app.auth, request).await,
                        RouteId::Ready => api::ready::ready(&app.readiness, &app.auth, request).await,
                        RouteId::ListEvents => api::events::list(app.table.as_ref(), &app.auth, request).await,
                        RouteId::GetEvent => api::events::get(app.table.as_ref(), &app.auth, request).await,
                        _ => ApiError::RouteNotFound.to_response(&request.request_id),
                    }
                }
                RouteMatch::MethodNotAllowed => ApiError::MethodNotAllowed.to_response(&request.request_id),
                RouteMatch::NotFound => ApiError::RouteNotFound.to_response(&request.request_id),
            }
        }
    })
    .await
}

checkout::wiring_test!(FUNCTION, build);
