//! `POST /v1/payouts`, `GET /v1/payouts`, `GET /v1/payouts/{id}`, `POST /v1/payouts/{id}/approve`,
//! `POST /v1/payouts/{id}/reject`: records payouts (write-ahead, limits and idempotency in one
//! transaction), queues them for the `b2c-payout` worker, and runs two-person approval. With
//! `FEATURE_PAYOUTS=off` every route answers 404 `feature_disabled`.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::api::ApiError;
use checkout::aws::SdkConfig;
use checkout::config::{vars, ConfigError, Settings};
use checkout::repo::payouts::PayoutRepo;
use checkout::secrets::SecretPart;
use checkout::services::payouts::PayoutsService;
use checkout::{api, aws, config, lambda, wiring};

const FUNCTION: &str = "payouts-api";

struct App {
    service: PayoutsService,
    repo: PayoutRepo,
    auth: Authenticator,
    enabled: bool,
}

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<App, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys, SecretPart::Jwt])?;
    let service = wiring::payouts_service(
        table.clone(),
        wiring::payout_queue(settings, sdk)?,
        secrets.clone(),
        wiring::clock(),
        settings.payouts()?,
        settings.payout_limits()?,
    );
    Ok(App {
        service,
        repo: PayoutRepo::new(table),
        auth: Authenticator::new(settings.jwt()?, secrets),
        enabled: settings.feature(vars::FEATURE_PAYOUTS)?,
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
            if !app.enabled {
                return ApiError::FeatureDisabled { feature: "payouts" }.to_response(&request.request_id);
            }
            let (service, repo, auth) = (&app.service, &app.repo, &app.auth);
            match match_route(&request.method, &request.path) {
                RouteMatch::Found { id, params } => {
                    request.path_params.extend(params);
                    match id {
                        RouteId::CreatePayout => api::payouts::create(service, auth, request).await,
                        RouteId::ListPayouts => api::payouts::list(repo, auth, request).await,
                        RouteId::GetPayout => api::payouts::get(repo, auth, request).await,
                        RouteId::ApprovePayout => api::payouts::review(service, auth, request, true).await,
                        RouteId::RejectPayout => api::payouts::review(service, auth, request, false).await,
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
