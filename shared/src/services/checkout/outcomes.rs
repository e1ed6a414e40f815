//! Ends a session's attempt when its payment settles: an [`EventConsumer`] of the outbox (after
//! the audit trail and before webhooks). Idempotent by design: ending an attempt that already
//! ended is a duplicate the engine ignores, so a redelivered event does nothing twice.

use std::sync::Arc;

use async_trait::async_trait;

use super::service::{attempt_end, CheckoutService};
use crate::domain::checkout_session::{CheckoutSessionId, SessionEvent};
use crate::domain::PaymentId;
use crate::engine::Settle;
use crate::events::handler::EventConsumer;
use crate::events::{EventRecord, EventType};

pub struct AttemptOutcomes {
    pub service: Arc<CheckoutService>,
}

/// The payment events that can end an attempt (a late `payment.completed` after `timed_out`
/// included).
fn ends_an_attempt(event_type: EventType) -> bool {
    matches!(
        event_type,
        EventType::PaymentCompleted
            | EventType::PaymentFailed
            | EventType::PaymentCancelled
            | EventType::PaymentTimedOut
    )
}

#[async_trait]
impl EventConsumer for AttemptOutcomes {
    fn name(&self) -> &'static str {
        "checkout_sessions"
    }

    async fn consume(&self, event: &EventRecord) -> Result<(), String> {
        if !ends_an_attempt(event.event_type) {
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Linked {
            checkout_session: Option<String>,
        }
        let linked: Linked = serde_json::from_str(event.data.get()).map_err(|e| e.to_string())?;
        let Some(session_id) = linked.checkout_session.and_then(|s| CheckoutSessionId::parse(&s).ok()) else {
            return Ok(());
        };
        let payment_id = PaymentId::parse(&event.resource_id).map_err(|e| e.to_string())?;
        // The payment as stored now (a later change may have moved it past this event).
        let Some(payment) = self
            .service
            .payment_repo
            .get(&payment_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let Some(end) = attempt_end(&payment) else {
            return Ok(());
        };
        let change = SessionEvent::AttemptEnded { payment_id, end };
        self.service
            .settler()
            .settle(Settle::new(&session_id, &change))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
