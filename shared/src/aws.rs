//! The AWS SDK configuration, loaded once per process (a Lambda cold start) and shared by the
//! DynamoDB, SQS and Secrets Manager clients.
//!
//! The standard chain reads credentials and the endpoint from the environment, so
//! `AWS_ENDPOINT_URL` (e.g. moto in the dev stack) works without code here; the region comes
//! from `AWS_REGION`/`AWS_DEFAULT_REGION` or the profile, else [`DEFAULT_REGION`].
//!
//! The cached configuration's HTTP client belongs to the first Tokio runtime that uses it: one
//! runtime per process (as in Lambda). Tests that start several runtimes build their own.

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use tokio::sync::OnceCell;

/// Used when nothing in the environment names a region (local runs); Lambda always sets one.
pub const DEFAULT_REGION: &str = "us-east-1";

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The shared SDK configuration; the first call loads it, later ones clone it.
pub async fn sdk_config() -> SdkConfig {
    CONFIG
        .get_or_init(|| async {
            // Environment (`AWS_REGION`, always set in Lambda), then the profile, then the
            // default; never the EC2 metadata service, which a local run cannot reach.
            let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(ProfileFileRegionProvider::new())
                .or_else(DEFAULT_REGION);
            aws_config::defaults(BehaviorVersion::latest())
                .region(region)
                .load()
                .await
        })
        .await
        .clone()
}

pub fn dynamo_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

pub fn secrets_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// A configuration that does no I/O to build (fixed region, no credentials lookup): for tests that
/// wire a function's clients without calling AWS.
#[doc(hidden)]
pub fn offline_sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(DEFAULT_REGION))
        .build()
}
