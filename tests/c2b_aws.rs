//! C2B on the AWS adapters (DynamoDB and SQS on moto's server): registration, an expected
//! payment, a validated and confirmed payment settling it, a duplicate confirmation, the
//! account-number filter, and the STK + C2B receipt link, through DynamoDB transactions and
//! conditions. Needs `MOTO_ENDPOINT` (the README test command starts moto and sets it).

mod support;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};
use checkout::queue::sqs::{create_queue_with_dlq, SqsQueue};
use checkout::store::dynamo::{create_table, DynamoTable};
use checkout::store::Table;
use devstack::{Backend, Options};
use reqwest::StatusCode;
use serde_json::json;
use support::{key, Harness};

async fn moto() -> SdkConfig {
    let endpoint = std::env::var("MOTO_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .expect("MOTO_ENDPOINT not set: run scripts/test.sh, or start moto_server and export MOTO_ENDPOINT");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await
}

#[tokio::test]
async fn c2b_payments_are_recorded_once_and_matched_on_dynamodb() {
    let sdk = moto().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!(
        "c2b-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    create_table(&dynamo, &name).await.expect("table on moto");
    let (queue_url, _dlq) = create_queue_with_dlq(&sqs, &name, 30, 5).await.expect("queue on moto");
    let table: Arc<dyn Table> = Arc::new(DynamoTable::new(dynamo, name));
    let h = Harness::start_with(Options {
        backend: Backend::Provided {
            table,
            callback_queue: Arc::new(SqsQueue::new(sqs, queue_url)),
        },
        ..Options::for_tests()
    })
    .await;
    h.sim_put(
        "/__control/faults",
        &json!({"rules": [{"endpoint": "c2b_confirmation", "kind": "duplicate", "probability": 1.0}]}),
    )
    .await;
    h.register_shortcode(json!({"shortcode": "600984", "rules": {"require_expected_payment": true}}))
        .await;
    let body = json!({"shortcode": "600984", "account_number": "INV-1", "amount": {"rule": "exact", "value": 500}});
    let invoice = h.create_expected(&key(), &body).await;
    assert_eq!(invoice.status, StatusCode::CREATED, "{}", invoice.body);
    assert_eq!(
        h.create_expected(&key(), &body).await.status,
        StatusCode::CONFLICT,
        "one live expected payment per account"
    );

    let ocid = h.c2b_simulate("600984", "254712345678", 500, "inv-1").await;
    let tx = h.wait_c2b_tx(&ocid).await;
    assert_eq!(tx["status"], "completed", "{tx:#}");
    let receipt = tx["receipt"].as_str().unwrap();
    let p = h.wait_c2b_payment("600984", receipt, |_| true).await;
    assert_eq!(
        p["verification"]["status"], "unverified",
        "no money moves on a confirmation's word"
    );
    // Transaction Status confirms the receipt; then it settles the invoice.
    let p = h.verify_c2b("600984", receipt).await;
    assert_eq!(p["verification"]["status"], "verified");
    assert_eq!(p["match"]["expected_payment_status"], "paid");
    // The duplicate delivery arrives too; the receipt is recorded once, the invoice paid once.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let inv = h
        .get(&format!(
            "/v1/c2b/expected-payments/{}",
            invoice.body["id"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(
        (inv["amount_paid"].as_u64(), inv["payment_count"].as_u64()),
        (Some(500), Some(1))
    );
    // GSI queries are eventually consistent: poll the filtered list.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.c2b_payments("?shortcode=600984&account_number=INV-1").await.len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the account filter never found the payment"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.get(&format!("/v1/c2b/payments/{}", p["id"].as_str().unwrap()))
            .await
            .body["trans_id"],
        receipt
    );

    // An STK payment to a paybill with C2B URLs: its echo is linked, not new money.
    h.register_shortcode(json!({"shortcode": "174379"})).await;
    let reply = h
        .create_payment(
            &key(),
            &json!({"amount": 100, "phone": "254712300009", "reference": "ORDER-S"}),
        )
        .await;
    let pay_id = reply.body["id"].as_str().unwrap().to_owned();
    let done = h.wait_for_status(&pay_id, "completed").await;
    let echo = h
        .wait_c2b_payment("174379", done["mpesa_receipt"].as_str().unwrap(), |p| {
            p["kind"] == "stk_duplicate"
        })
        .await;
    assert_eq!(echo["payment_id"], pay_id.as_str());
    h.shutdown().await;
}
