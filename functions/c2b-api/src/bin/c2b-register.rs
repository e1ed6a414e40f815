//! Operator command: registers a shortcode's C2B validation and confirmation URLs with Daraja and
//! stores its rules, exactly as `POST /v1/c2b/registrations` does, without a JWT. It runs with the
//! `c2b-api` function's configuration (its environment variables and AWS credentials).

use std::process::ExitCode;

use checkout::api::c2b::{parse_registration, RegistrationView};
use checkout::api::ApiRequest;
use checkout::callback_token::CallbackTokens;
use checkout::daraja::check_c2b_url;
use checkout::domain::ClientId;
use checkout::secrets::SecretPart;
use checkout::services::c2b::registration::c2b_urls;
use checkout::{aws, config, wiring};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "c2b-register",
    about = "Registers a shortcode's C2B validation and confirmation URLs with Daraja and stores its rules.",
    long_about = "Registers a shortcode's C2B validation and confirmation URLs with Daraja (v2 by default) and \
stores its validation rules, as POST /v1/c2b/registrations does. The URLs are PUBLIC_BASE_URL + \
/c2b/validation/<token> and /c2b/confirmation/<token>, with a per-shortcode HMAC token; they are \
checked against Safaricom's URL rules (no mpesa, safaricom, exe, exec, cmd, sql, query; HTTPS \
unless C2B_ALLOW_HTTP=true) before Daraja is called. Running it again replaces the rules; \
\"URLs already registered\" counts as success.\n\n\
Environment (as for the c2b-api function): TABLE_NAME, SECRET_ID_DARAJA_APP, \
SECRET_ID_CALLBACK_KEYS, SECRET_ID_JWT (or CHECKOUT_SECRETS_JSON / CHECKOUT_SECRETS_FILE), \
DARAJA_BASE_URL, PUBLIC_BASE_URL, C2B_ALLOW_HTTP, plus the standard AWS \
configuration (AWS_PROFILE, AWS_REGION, ...).\n\n\
Example:\n  c2b-register --shortcode 600984 --owner merchant-a \\\n    \
--rules '{\"account_pattern\": \"INV-[0-9]{4}\", \"max_amount\": 150000}'\n\n\
Prints the stored registration as JSON; exits 1 with a problem description when refused.",
    after_help = "For the dev stack (in-memory), use the HTTP route with the printed dev token instead:\n  \
curl -X POST $API/v1/c2b/registrations -H \"Authorization: Bearer $TOKEN\" \
-H 'Content-Type: application/json' -d '{\"shortcode\": \"600984\"}'"
)]
struct Args {
    /// The paybill or till (store) number: 5 to 7 digits.
    #[arg(long)]
    shortcode: String,
    /// The API client (JWT `sub`) the shortcode belongs to; only it sees its payments.
    #[arg(long)]
    owner: String,
    /// Daraja registration API: v2 (masked MSISDNs) or v1 (hashed MSISDNs).
    #[arg(long, default_value = "v2")]
    version: String,
    /// What M-Pesa does when validation does not answer in time: Completed or Cancelled.
    #[arg(long, default_value = "Completed")]
    response_type: String,
    /// Validation's answer when its own dependencies fail: accept or reject.
    #[arg(long, default_value = "accept")]
    default_decision: String,
    /// Validation rules as JSON (same shape as the API's `rules`).
    #[arg(long, conflicts_with = "rules_file")]
    rules: Option<String>,
    /// A file holding the rules JSON.
    #[arg(long)]
    rules_file: Option<std::path::PathBuf>,
    /// Only build and check the URLs (reads the secret; stores nothing, calls nothing).
    #[arg(long)]
    check_only: bool,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("c2b-register: {message}");
    ExitCode::FAILURE
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let rules: Option<serde_json::Value> = match (&args.rules, &args.rules_file) {
        (Some(text), _) => Some(serde_json::from_str(text).map_err(|e| format!("--rules is not JSON: {e}"))?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            Some(serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?)
        }
        (None, None) => None,
    };
    let mut body = serde_json::json!({
        "shortcode": args.shortcode,
        "owner": args.owner,
        "version": args.version,
        "response_type": args.response_type,
        "default_decision": args.default_decision,
    });
    if let Some(rules) = rules {
        body["rules"] = rules;
    }
    // The same parser as the API, so the rules and their error codes are identical.
    let mut request = ApiRequest::new(http_method_post(), "/v1/c2b/registrations");
    request
        .headers
        .insert("content-type", "application/json".parse().map_err(|_| "header")?);
    request.body = body.to_string().into();
    let object = request.json_object(64 * 1024).map_err(|e| e.to_string())?;
    let owner = ClientId::parse(&args.owner).map_err(|e| format!("--owner: {e}"))?;
    let registration = parse_registration(&object, &owner).map_err(|e| problem_text(&e))?;

    // Exactly the c2b-api function's configuration: a variable it does not declare is refused.
    let settings = config::for_function("c2b-api").map_err(|e| e.to_string())?;
    let sdk = aws::sdk_config().await;
    // The c2b-api function's secrets (its wiring refuses any other set).
    let parts = [SecretPart::DarajaApp, SecretPart::CallbackKeys, SecretPart::Jwt];
    let secrets = wiring::secrets(&settings, Some(&sdk), &parts).map_err(|e| e.to_string())?;
    let registration_config = settings.c2b_registration().map_err(|e| e.to_string())?;
    if args.check_only {
        let secret = secrets.get().await.map_err(|e| e.to_string())?;
        let key = secret
            .callback_hmac_key
            .clone()
            .ok_or("the callback-keys secret has no callback_hmac_key")?;
        let tokens = CallbackTokens::new(key);
        let id = checkout::domain::c2b_path_tokens::TokenId::new(registration.shortcode.clone(), 0);
        let (validation, confirmation) = c2b_urls(&registration_config.public_base_url, &tokens, &id);
        for (which, url) in [("validation", validation), ("confirmation", confirmation)] {
            let shown = url.rsplit_once('/').map_or("", |(head, _)| head).to_owned();
            check_c2b_url(&url, registration_config.require_https)
                .map_err(|e| format!("the {which} URL {shown}/<token> would be refused: {e}"))?;
            println!("{which}: {shown}/<token> passes Safaricom's URL rules");
        }
        return Ok(());
    }
    let table = wiring::table(&settings, &sdk).map_err(|e| e.to_string())?;
    let daraja = wiring::daraja(&settings).map_err(|e| e.to_string())?;
    settings.verify().map_err(|e| e.to_string())?;
    let c2b = wiring::c2b_api(table, daraja, secrets, wiring::clock(), registration_config);
    let stored = c2b
        .registrar
        .register(registration)
        .await
        .map_err(|e| problem_text(&e.into()))?;
    let view = serde_json::to_string_pretty(&RegistrationView::from(&stored)).unwrap_or_default();
    println!("{view}");
    Ok(())
}

fn http_method_post() -> lambda_http::http::Method {
    lambda_http::http::Method::POST
}

/// The problem as the API would answer it, for the terminal.
fn problem_text(error: &checkout::api::ApiError) -> String {
    let response = error.to_response("cli");
    String::from_utf8_lossy(&response.body).into_owned()
}
