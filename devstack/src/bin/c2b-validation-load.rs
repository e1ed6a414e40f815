//! Open-loop load test of C2B validation through a running dev stack over loopback: registers a
//! shortcode (rules + an expected payment, so every request does the expected-payment read),
//! then POSTs validation requests to its `/c2b/validation/{token}` URL at a fixed rate. Latency is
//! measured from each request's *scheduled* start (no coordinated omission); every reply must
//! be the expected accept.
//!
//!   cargo run --profile perf -p devstack -- --profile fast --jwt-secret loadtest-secret-0123456789abcdef0123
//!   cargo run --profile perf -p devstack --bin c2b-validation-load -- --jwt-secret loadtest-secret-0123456789abcdef0123 --rate 1000 --seconds 10

use clap::Parser;
use devstack::load;

#[derive(Parser, Debug)]
#[command(about = "Load test of C2B validation through the dev stack: latency of POST /c2b/validation/{token}.")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    target: String,
    /// The dev stack's JWT key (`--jwt-secret` / `DEV_JWT_SECRET` of the stack).
    #[arg(long, env = "DEV_JWT_SECRET")]
    jwt_secret: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The shortcode registered for the run.
    #[arg(long, default_value = "600984")]
    shortcode: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let now = chrono::Utc::now().timestamp();
    let token = load::dev_token(&args.jwt_secret, "c2b-load", "c2b:admin c2b:write c2b:read");
    let client = load::client()?;

    // A shortcode whose rules need the expected-payment read on every request.
    let registration: serde_json::Value = client
        .post(format!("{}/v1/c2b/registrations", args.target))
        .bearer_auth(&token)
        .json(&serde_json::json!({"shortcode": args.shortcode,
            "rules": {"account_pattern": "LOAD-[0-9]+", "require_expected_payment": true, "max_amount": 150000}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let validation_url = registration["validation_url"]
        .as_str()
        .ok_or("no validation_url")?
        .to_owned();
    let account = format!("LOAD-{now}");
    client
        .post(format!("{}/v1/c2b/expected-payments", args.target))
        .bearer_auth(&token)
        .header("idempotency-key", format!("c2b-load-{now}"))
        .json(
            &serde_json::json!({"shortcode": args.shortcode, "account_number": account,
            "amount": {"rule": "minimum", "value": 10}}),
        )
        .send()
        .await?
        .error_for_status()?;
    let body = serde_json::json!({
        "TransactionType": "Pay Bill", "TransID": "TKL51ZDR4F", "TransTime": "20261121121325", "TransAmount": "500.00",
        "BusinessShortCode": args.shortcode, "BillRefNumber": account, "InvoiceNumber": "", "OrgAccountBalance": "",
        "ThirdPartyTransID": "", "MSISDN": "2547 ***** 126", "FirstName": "JANE", "MiddleName": "", "LastName": "DOE"
    })
    .to_string();

    let total = args.rate * args.seconds;
    let sent = load::open_loop(total, args.rate, |_| {
        client
            .post(&validation_url)
            .header("content-type", "application/json")
            .header("x-forwarded-for", "196.201.214.200")
            .body(body.clone())
    })
    .await;
    // Every reply must be Daraja's accept: `{"ResultCode": "0", ...}`.
    let mut accepted = 0;
    let mut other = std::collections::BTreeMap::<String, u64>::new();
    let mut errors = 0;
    for reply in &sent.replies {
        match reply {
            load::Reply::Answered { body: Some(body), .. } => match body["ResultCode"].as_str() {
                Some("0") => accepted += 1,
                Some(code) => *other.entry(code.to_owned()).or_default() += 1,
                None => errors += 1,
            },
            _ => errors += 1,
        }
    }
    println!(
        "sent {total} validations in {:.2} s ({:.0}/s offered at {}/s)",
        sent.sent_for.as_secs_f64(),
        total as f64 / sent.sent_for.as_secs_f64(),
        args.rate
    );
    println!("accepted {accepted}  other result codes {other:?}  errors {errors}");
    load::print_latency("POST /c2b/validation/{token}", &sent.latencies);
    if errors > 0 || !other.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
