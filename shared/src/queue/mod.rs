//! The queue port: callbacks and payout requests become durable here before anything acts on them.
//!
//! Semantics are SQS standard queues: at-least-once delivery, a visibility timeout, a receive
//! count, and a dead-letter queue after `max_receives`. Consumers must be idempotent.

pub mod consumer;
pub mod memory;
pub mod sqs;

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// Handle used to acknowledge this delivery.
    pub receipt: String,
    /// 1 on first delivery.
    pub receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("message refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Returns once the message is durably stored; the message id.
    async fn send(&self, body: &str) -> Result<String, QueueError>;

    /// Up to `max` messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, QueueError>;

    /// Deletes a delivered message; it will not be delivered again.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;

    /// Messages waiting (approximate, as SQS counts them): proves the queue answers, for the
    /// readiness check. Reads only the queue's attributes, never a message.
    async fn depth(&self) -> Result<u64, QueueError>;
}

/// SQS limits a message body to 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
