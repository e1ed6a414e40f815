//! `POST /v1/payouts`, `GET /v1/payouts`, `GET /v1/payouts/{id}`, `POST /v1/payouts/{id}/approve`,
//! `POST /v1/payouts/{id}/reject`: records payouts (write-ahead, limits and idempotency in one
//! transaction), queues them for the `b2c-payout` worker, and runs two-person approval.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::api::routes::{match_route, RouteId, RouteMatch};
use checkout::api::ApiError;
use checkout::repo::payouts::PayoutRepo;
use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("payouts-api");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let service = wiring::payouts_service(
        table.clone(),
        wiring::payout_queue(&settings, &sdk)?,
        secrets.clone(),
        wiring::clock(),
        settings.payouts()?,
        settings.payout_limits()?,
    );
    let repo = PayoutRepo::new(table);
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let app = Arc::new((service, repo, auth));
    lambda::serve_http(move |mut request| {
        let app = app.clone();
        async move {
            let (service, repo, auth) = (&app.0, &app.1, &app.2);
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
