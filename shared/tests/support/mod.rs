//! Helpers shared by the contract tests: reaching moto, unique resource names, clients.
#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};
use checkout::store::dynamo::{create_table, DynamoTable};
use checkout::store::Table;

/// moto's URL, from `MOTO_ENDPOINT`. The AWS half of the contract must fail loudly, never pass
/// silently, when moto is not there.
pub fn moto_endpoint() -> String {
    match std::env::var("MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => endpoint.trim().to_owned(),
        _ => panic!(
            "MOTO_ENDPOINT not set: run the README test command, or start moto_server and export MOTO_ENDPOINT \
             (e.g. `.venv/bin/moto_server -H 127.0.0.1 -p 5077 &` and `export MOTO_ENDPOINT=http://127.0.0.1:5077`)"
        ),
    }
}

/// A name no other test (in this or a concurrent process) uses: tests share one moto server.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// SDK configuration for moto: fixed dummy credentials and region, set here rather than read
/// from the environment, so a developer's real AWS profile is never used by a test.
pub async fn moto_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto_endpoint())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto-tests"))
        .load()
        .await
}

pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&moto_config().await)
}

pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto_config().await)
}

pub async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto_config().await)
}

/// A fresh table on moto, created exactly as production's.
pub async fn dynamo_table() -> Arc<dyn Table> {
    let client = dynamo_client().await;
    let name = unique("contract");
    if let Err(error) = create_table(&client, &name).await {
        panic!("creating table {name} on moto at {} failed: {error}", moto_endpoint());
    }
    Arc::new(DynamoTable::new(client, name))
}
