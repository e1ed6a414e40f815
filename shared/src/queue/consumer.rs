//! Drives a batch handler from a [`Queue`] the way the Lambda SQS event source does: receive a
//! batch, hand it over, delete what succeeded, leave failures to come back after the visibility
//! timeout (and reach the dead-letter queue after too many receives). Used by the dev stack and
//! by tests; in Lambda the runtime delivers the batch and [`BatchHandler`] is called directly.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Message, Queue};

/// One message as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

impl From<&Message> for Delivery {
    fn from(m: &Message) -> Self {
        Delivery {
            id: m.id.clone(),
            body: m.body.clone(),
            receive_count: m.receive_count,
        }
    }
}

#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Processes a batch; returns the ids of messages that must be delivered again
    /// (a partial batch failure).
    async fn handle(&self, batch: Vec<Delivery>) -> Vec<String>;
}

#[derive(Debug, Clone, Copy)]
pub struct ConsumerOptions {
    pub batch_size: usize,
    pub wait: Duration,
    /// Pause after a failed receive, so an unreachable queue is not hammered.
    pub error_backoff: Duration,
    /// Batches handled at once.
    pub concurrency: usize,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            batch_size: 10,
            wait: Duration::from_millis(200),
            error_backoff: Duration::from_millis(500),
            concurrency: 4,
        }
    }
}

/// Runs until `shutdown` becomes true.
pub async fn run(
    queue: Arc<dyn Queue>,
    handler: Arc<dyn BatchHandler>,
    options: ConsumerOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let received = tokio::select! {
            r = queue.receive(options.batch_size, options.wait) => r,
            _ = shutdown.changed() => break,
        };
        let messages = match received {
            Ok(messages) if messages.is_empty() => continue,
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "queue receive failed");
                tokio::time::sleep(options.error_backoff).await;
                continue;
            }
        };
        let queue = queue.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            handle_batch(queue.as_ref(), handler.as_ref(), messages).await;
            drop(permit);
        });
    }
    // Let batches in flight finish.
    let _ = permits.acquire_many(options.concurrency.max(1) as u32).await;
}

/// Hands one received batch to the handler and acknowledges what succeeded.
pub async fn handle_batch(queue: &dyn Queue, handler: &dyn BatchHandler, messages: Vec<Message>) {
    let failed = handler.handle(messages.iter().map(Delivery::from).collect()).await;
    for message in &messages {
        if failed.contains(&message.id) {
            continue;
        }
        if let Err(error) = queue.ack(&message.receipt).await {
            // Not fatal: the message comes back and the handler is idempotent.
            tracing::warn!(%error, message_id = %message.id, "ack failed");
        }
    }
}
