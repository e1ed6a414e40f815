//! The digest archive on S3: a bucket with Object Lock in compliance mode (the template's
//! `AuditDigestBucket`), so an archived digest cannot be changed or deleted by anyone within
//! its retention. The bucket's default retention applies to every object put.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use super::digest::{Digest, DigestArchive};

pub struct S3Archive {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Archive {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Archive {
        S3Archive {
            client,
            bucket: bucket.into(),
        }
    }
}

/// One archive call at most (the sweeper's worst case counts it after the digests' budget).
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// An S3 client; path-style addressing when an endpoint is overridden (moto on loopback has no
/// per-bucket host names).
pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let builder = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .timeout_config(timeouts);
    aws_sdk_s3::Client::from_conf(builder.build())
}

#[async_trait]
impl DigestArchive for S3Archive {
    async fn put(&self, digest: &Digest) -> Result<(), String> {
        let text = digest.archived_text();
        // Object Lock keeps every version, but a put to an existing key would add a newer one:
        // `If-None-Match: *` makes the key write-once (the bucket policy refuses puts without
        // it). Object Lock requires an integrity checksum on every put.
        let answer = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(Digest::archive_key(&digest.merchant, digest.seq))
            .content_type("application/json")
            .if_none_match("*")
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(text.clone().into_bytes()))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            // Already archived: fine if it is this digest (a retry), refused otherwise.
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                match self.get(&digest.merchant, digest.seq).await? {
                    Some(existing) if existing == text => Ok(()),
                    _ => Err(format!("{} is archived with other content", digest.name())),
                }
            }
            Err(error) => Err(format!("{}", aws_sdk_s3::error::DisplayErrorContext(error))),
        }
    }

    async fn get(&self, merchant: &str, seq: u64) -> Result<Option<String>, String> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(Digest::archive_key(merchant, seq))
            .send()
            .await;
        match answer {
            Ok(object) => {
                let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
                String::from_utf8(bytes.to_vec()).map(Some).map_err(|e| e.to_string())
            }
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_no_such_key() => Ok(None),
                _ => Err(format!("{}", aws_sdk_s3::error::DisplayErrorContext(error))),
            },
        }
    }
}
