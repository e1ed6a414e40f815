//! The edge that faces Safaricom: make the callback durable on the queue, then acknowledge.
//! It applies nothing and rejects nothing it can store, so it is fast and cannot lose anything;
//! the processor decides what the callback means.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::metrics;
use crate::queue::{Queue, QueueError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    StkCallback,
    B2cResult,
    B2cTimeout,
    TransactionStatusResult,
    TransactionStatusTimeout,
    C2bConfirmation,
    /// Transaction Status about a C2B receipt (verifying a confirmation).
    C2bStatusResult,
    C2bStatusTimeout,
}

impl CallbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackKind::StkCallback => "stk_callback",
            CallbackKind::B2cResult => "b2c_result",
            CallbackKind::B2cTimeout => "b2c_timeout",
            CallbackKind::TransactionStatusResult => "transaction_status_result",
            CallbackKind::TransactionStatusTimeout => "transaction_status_timeout",
            CallbackKind::C2bConfirmation => "c2b_confirmation",
            CallbackKind::C2bStatusResult => "c2b_status_result",
            CallbackKind::C2bStatusTimeout => "c2b_status_timeout",
        }
    }
}

/// What goes on the callback queue: the request as received, nothing interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackEnvelope {
    pub v: u8,
    pub kind: CallbackKind,
    /// The path token, verified by the processor.
    pub token: String,
    pub received_at: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub request_id: String,
    /// The body; base64 when it was not UTF-8.
    pub body: String,
    #[serde(default)]
    pub body_base64: bool,
}

impl CallbackEnvelope {
    pub fn body_bytes(&self) -> Vec<u8> {
        if self.body_base64 {
            STANDARD.decode(&self.body).unwrap_or_default()
        } else {
            self.body.clone().into_bytes()
        }
    }

    /// The body as text for records (lossy for the rare non-UTF-8 body, which stays base64).
    pub fn body_text(&self) -> String {
        self.body.clone()
    }
}

/// Largest body accepted; Daraja's are a few KiB. Keeps the envelope under the SQS limit.
pub const MAX_CALLBACK_BODY_BYTES: usize = 128 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("callback body exceeds {MAX_CALLBACK_BODY_BYTES} bytes")]
    TooLarge,
    #[error("queue unavailable: {0}")]
    Queue(#[from] QueueError),
}

pub struct CallbackIntake {
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Published Safaricom callback source addresses: a second signal, alerted on, never trusted alone.
    pub known_sources: Vec<std::net::IpAddr>,
}

impl CallbackIntake {
    /// Durably queues the callback. Only after `Ok` may the caller acknowledge Safaricom.
    pub async fn accept(
        &self,
        kind: CallbackKind,
        token: &str,
        body: &[u8],
        source_ip: Option<std::net::IpAddr>,
        request_id: &str,
    ) -> Result<String, IntakeError> {
        if body.len() > MAX_CALLBACK_BODY_BYTES {
            metrics::count(
                "CallbacksRefused",
                1,
                &[("Kind", kind.as_str()), ("Reason", "too_large")],
            );
            return Err(IntakeError::TooLarge);
        }
        let (body, body_base64) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (STANDARD.encode(body), true),
        };
        let known_source = source_ip.is_some_and(|ip| self.known_sources.contains(&ip));
        if !known_source && !self.known_sources.is_empty() {
            metrics::count("CallbackUnknownSource", 1, &[("Kind", kind.as_str())]);
            tracing::warn!(kind = kind.as_str(), source_ip = ?source_ip, "callback from an address outside the allow-list");
        }
        let envelope = CallbackEnvelope {
            v: 1,
            kind,
            token: token.chars().take(256).collect(),
            received_at: self.clock.now(),
            source_ip: source_ip.map(|ip| ip.to_string()),
            request_id: request_id.to_owned(),
            body,
            body_base64,
        };
        let message = serde_json::to_string(&envelope).unwrap_or_default();
        let id = self.queue.send(&message).await?;
        metrics::count("CallbacksReceived", 1, &[("Kind", kind.as_str())]);
        Ok(id)
    }
}
