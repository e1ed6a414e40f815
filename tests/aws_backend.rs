//! The whole STK flow on the AWS adapters (DynamoDB and SQS on moto's server), and the cost in
//! DynamoDB requests of one completed payment. Needs `MOTO_ENDPOINT` (the README test command
//! starts moto and sets it); fails loudly without it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};
use checkout::queue::sqs::{create_queue_with_dlq, SqsQueue};
use checkout::store::dynamo::{create_table, DynamoTable};
use checkout::store::Table;
use devstack::{Backend, Options};
use reqwest::StatusCode;
use support::{key, payment_body, Harness};

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .expect("MOTO_ENDPOINT not set: run scripts/test.sh, or start moto_server and export MOTO_ENDPOINT")
}

async fn moto() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await
}

#[tokio::test]
async fn a_payment_completes_on_dynamodb_and_sqs_in_at_most_eleven_dynamodb_requests() {
    let sdk = moto().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!(
        "e2e-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    create_table(&dynamo, &name).await.expect("table on moto");
    let (queue_url, _dlq) = create_queue_with_dlq(&sqs, &name, 30, 5).await.expect("queue on moto");
    let table = Arc::new(DynamoTable::new(dynamo.clone(), name.clone()));
    let observer = DynamoTable::new(dynamo, name);
    let stack_table: Arc<dyn Table> = table.clone();
    let h = Harness::start_with(Options {
        backend: Backend::Provided {
            table: stack_table,
            callback_queue: Arc::new(SqsQueue::new(sqs, queue_url)),
        },
        ..Options::for_tests()
    })
    .await;

    let before = table.stats();
    let reply = h.create_payment(&key(), &payment_body("254733000001", 1500)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let after_initiation = table.stats().requests - before.requests;

    // Watch through a separate adapter so the observation is not counted.
    let payment_key = format!("PAY#{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let item = observer.get(&payment_key).await.unwrap().expect("payment stored");
        let doc: serde_json::Value = serde_json::from_str(&item.doc).unwrap();
        if doc["status"] == "completed" {
            assert!(doc["mpesa_receipt"].is_string());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never completed: {doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The processor counts its write when moto has answered it; let the count settle.
    let mut requests = table.stats().requests - before.requests;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = table.stats().requests - before.requests;
        if now == requests {
            break;
        }
        requests = now;
    }
    println!("DynamoDB requests for one completed payment: {requests} ({after_initiation} while initiating)");
    // 4 initiating (the phone's window read, the merchant's daily caps reserved outside the
    // creation transaction because that item is hot, the creation transaction, Daraja's answer)
    // and 2 settling (the payment read, its transaction with the callback record); then the
    // audit trail's 5: the API call's entry (its chain's head read, the two-item transaction)
    // and the callback's (its record read, the head read, the transaction). The events' own
    // entries are appended by the events function, not counted here (no stream on this table).
    assert!(
        requests <= 6 + 5,
        "{requests} DynamoDB requests for one completed payment (target: 11 or fewer)"
    );

    // The API reads it back from DynamoDB too.
    let shown = h.payment(&id).await;
    assert_eq!(shown["status"], "completed");
    h.shutdown().await;
}
