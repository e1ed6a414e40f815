//! `POST /c2b/validation/{token}`: answers Daraja's C2B validation (accept, or `C2B00011`..`16`)
//! well within its ~8 s deadline. The shortcode's rules are cached in the warm function and at
//! most one GetItem reads the account's expected payment, under `C2B_VALIDATION_BUDGET_MS`; if our
//! own dependencies fail or are slow, the shortcode's default decision answers. Changes nothing.

use std::sync::Arc;

use checkout::{api, aws, config, lambda, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::init_telemetry("c2b-validation");
    let settings = config::from_env();
    let sdk = aws::sdk_config().await;
    let table = wiring::table(&settings, &sdk)?;
    let secrets = wiring::secrets(&settings, Some(&sdk))?;
    let validator = Arc::new(wiring::c2b_validator(
        table,
        secrets,
        wiring::clock(),
        settings.c2b_validation()?,
        settings.callback_sources()?,
    ));
    // Every request needs the callback key: fetch it during init, not on the first payment.
    validator.warm_up().await;
    lambda::serve_http(move |request| {
        let validator = validator.clone();
        async move { api::c2b::validation(&validator, request).await }
    })
    .await
}
