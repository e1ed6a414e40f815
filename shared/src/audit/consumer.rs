//! The audit trail as a consumer of the outbox: one entry per event, appended once (the event
//! id is the entry's source, so a redelivered event appends nothing).

use async_trait::async_trait;

use super::log::AuditLog;
use super::sources;
use crate::events::handler::EventConsumer;
use crate::events::EventRecord;

#[async_trait]
impl EventConsumer for AuditLog {
    fn name(&self) -> &'static str {
        "audit"
    }

    async fn consume(&self, event: &EventRecord) -> Result<(), String> {
        self.append(sources::of_event(event))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
