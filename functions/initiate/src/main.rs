//! `POST /v1/payments`: records the payment, then asks Daraja to prompt the customer.

use std::sync::Arc;

use checkout::api::auth::Authenticator;
use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("initiate");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let mut service = wiring::payments_service(
        table.clone(),
        wiring::daraja(&settings)?,
        secrets.clone(),
        wiring::clock(),
        settings.payments()?,
    );
    service.admission = Some(wiring::limits(table, settings.limits()?));
    let auth = Authenticator::new(settings.jwt()?, secrets);
    let app = Arc::new((service, auth));
    lambda::serve_http(move |request| {
        let app = app.clone();
        async move { api::payments::create(&app.0, &app.1, request).await }
    })
    .await
}
