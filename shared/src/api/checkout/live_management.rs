//! [`ConnectionSender`] on API Gateway's management API (`POST`/`DELETE
//! https://<api>.execute-api.<region>.amazonaws.com/<stage>/@connections/<id>`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use super::live::{ConnectionSender, SendError};
use crate::repo::live_connections::ConnectionId;

/// One push waits this long at most: a batch of events must not wait on a slow management API
/// (the page polls meanwhile).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct ManagementApi {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ManagementApi {
    /// A client for the stage at `endpoint` (`https://<api>.execute-api.<region>.amazonaws.com/<stage>`).
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: &str) -> ManagementApi {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(PUSH_TIMEOUT)
            .build();
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .timeout_config(timeouts)
            // No retry: the page polls meanwhile, and the next change pushes again.
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        ManagementApi {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

/// `410 Gone` is the connection closed; anything else a failure.
fn classify<E, R>(error: SdkError<E, R>, gone: impl Fn(&E) -> bool) -> SendError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) if gone(service.err()) => SendError::Gone,
        _ => SendError::Failed(aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error).to_string()),
    }
}

#[async_trait]
impl ConnectionSender for ManagementApi {
    async fn send(&self, connection: &ConnectionId, message: &str) -> Result<(), SendError> {
        self.client
            .post_to_connection()
            .connection_id(connection.as_str())
            .data(Blob::new(message.as_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception()))
    }

    async fn close(&self, connection: &ConnectionId) -> Result<(), SendError> {
        self.client
            .delete_connection()
            .connection_id(connection.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception()))
    }
}
