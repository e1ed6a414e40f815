//! C2B merchant and admin routes: `POST /v1/c2b/registrations` (`c2b:admin`),
//! `POST /v1/c2b/expected-payments` (`c2b:write`), `GET /v1/c2b/expected-payments/{id}`,
//! `GET /v1/c2b/payments/{id}` and `GET /v1/c2b/payments` (`c2b:read`).

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::{aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("c2b-api");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let c2b = wiring::c2b_api(
        table,
        wiring::daraja(&settings)?,
        secrets.clone(),
        wiring::clock(),
        settings.c2b_registration()?,
    );
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let app = Arc::new((c2b, auth));
    lambda::serve_http(move |request| {
        let app = app.clone();
        async move { app.0.handle(&app.1, request).await }
    })
    .await
}
