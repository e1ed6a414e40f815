//! `GET /v1/payments/{id}` and `GET /v1/payments`.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::repo::payments::PaymentRepo;
use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("status");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let repo = PaymentRepo::new(wiring::table(&settings, &sdk)?);
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let app = Arc::new((repo, auth));
    lambda::serve_http(move |request| {
        let app = app.clone();
        async move {
            if request.path_param("id").is_some() {
                api::payments::get(&app.0, &app.1, request).await
            } else {
                api::payments::list(&app.0, &app.1, request).await
            }
        }
    })
    .await
}
