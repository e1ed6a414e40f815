//! SQS [`Queue`] (standard queue with a redrive policy to a dead-letter queue).
//!
//! The visibility timeout and `maxReceiveCount` belong to the queue (infrastructure, or
//! [`create_queue_with_dlq`] in tests and the dev stack), not to this adapter.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;

use super::memory::{validate_body, MAX_RECEIVE_BATCH};
use super::{Message, Queue, QueueError};

/// SQS's longest long poll.
const MAX_WAIT_SECONDS: u64 = 20;

pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// `WaitTimeSeconds` for a wait: whole seconds rounded up (so a short wait still long-polls
/// instead of becoming a busy loop of empty short polls), at most 20; zero stays zero.
pub fn wait_seconds(wait: Duration) -> i32 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    i32::try_from(seconds.min(MAX_WAIT_SECONDS)).unwrap_or(20)
}

/// Service errors that are the request's fault; everything else may pass (throttling, 5xx,
/// network, timeouts) and is `Unavailable`.
fn sqs_error<E, R>(operation: &str, error: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("UnknownError");
            let message = context.err().message().unwrap_or("");
            let refused = matches!(
                code,
                "InvalidMessageContents"
                    | "ReceiptHandleIsInvalid"
                    | "InvalidParameterValue"
                    | "MissingParameter"
                    | "ValidationException"
                    | "AWS.SimpleQueueService.InvalidParameterValue"
                    | "InvalidAddress"
            ) || code.contains("ReceiptHandleIsInvalid")
                || code.contains("InvalidMessageContents");
            if refused {
                QueueError::Refused(format!("{operation}: {code}: {message}"))
            } else {
                QueueError::Unavailable(format!("{operation}: {code}: {message}"))
            }
        }
        SdkError::ConstructionFailure(_) => QueueError::Refused(format!(
            "{operation}: request not built: {}",
            DisplayErrorContext(&error)
        )),
        _ => QueueError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error))),
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        validate_body(body)?;
        let output = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sqs_error("SendMessage", e))?;
        output
            .message_id
            .ok_or_else(|| QueueError::Unavailable("SendMessage returned no message id".into()))
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, QueueError> {
        let max = max.min(MAX_RECEIVE_BATCH);
        if max == 0 {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .wait_time_seconds(wait_seconds(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        let mut messages = Vec::new();
        for message in output.messages.unwrap_or_default() {
            let (Some(id), Some(receipt)) = (message.message_id.clone(), message.receipt_handle.clone()) else {
                return Err(QueueError::Unavailable(
                    "ReceiveMessage returned a message without id or receipt".into(),
                ));
            };
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|count| count.parse().ok())
                .unwrap_or_else(|| {
                    // Not worth failing the batch over: the count only steers retries.
                    tracing::warn!(message_id = %id, "ReceiveMessage returned no ApproximateReceiveCount; assuming 1");
                    1
                });
            messages.push(Message {
                id,
                body: message.body.unwrap_or_default(),
                receipt,
                receive_count,
            });
        }
        Ok(messages)
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(drop)
            .map_err(|e| sqs_error("DeleteMessage", e))
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sqs_error("GetQueueAttributes", e))?
            .attributes
            .unwrap_or_default();
        Ok(attributes
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
}

/// Creates `name` and its dead-letter queue `name-dlq` (or finds them, if they exist with the
/// same attributes), with a redrive after `max_receives` receives. Returns `(queue_url,
/// dlq_url)`. For tests and the dev stack; production queues come from infrastructure code.
pub async fn create_queue_with_dlq(
    client: &Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receives: u32,
) -> Result<(String, String), QueueError> {
    let dlq_name = format!("{name}-dlq");
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| QueueError::Unavailable(format!("CreateQueue {dlq_name}: no queue URL")))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::Unavailable(format!("GetQueueAttributes {dlq_name}: no QueueArn")))?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() });
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_secs.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", e))?
        .queue_url
        .ok_or_else(|| QueueError::Unavailable(format!("CreateQueue {name}: no queue URL")))?;
    Ok((queue_url, dlq_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(wait_seconds(Duration::ZERO), 0);
        assert_eq!(wait_seconds(Duration::from_millis(200)), 1);
        assert_eq!(wait_seconds(Duration::from_secs(2)), 2);
        assert_eq!(wait_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(wait_seconds(Duration::from_secs(600)), 20);
    }
}
