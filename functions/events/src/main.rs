//! The events function: DynamoDB Streams on the table, filtered to new event items (the outbox),
//! delivers each event to its consumers ([`EventHandler`]) and marks it handled. Records that
//! fail are reported as batch-item failures so the stream retries them; an event that still is
//! not handled is delivered again by the sweeper's redrive, so none is lost after the stream's
//! 24 hours. Its consumers: the audit trail (one entry per event), the checkout attempts' ends,
//! the payment pages' live channel (each open page of a changed session gets its status), then
//! the webhook dispatcher (each event fans out to the merchant's subscribed endpoints, attempt 1
//! at once; retries are the sweeper's).

use std::sync::Arc;

use checkout::aws::SdkConfig;
use checkout::config::{ConfigError, Settings};
use checkout::events::handler::{Delivery, EventHandler};
use checkout::events::stream;
use checkout::secrets::SecretPart;
use checkout::webhooks::target::TargetPolicy;
use checkout::{aws, config, lambda, metrics, wiring};
use lambda_runtime::{service_fn, LambdaEvent};

use checkout::services::checkout::outcomes::AttemptOutcomes;

const FUNCTION: &str = "events";

/// Everything the function needs, from its configuration (no I/O).
fn build<F: Fn(&str) -> Option<String>>(settings: &Settings<F>, sdk: &SdkConfig) -> Result<EventHandler, ConfigError> {
    let table = wiring::table(settings, sdk)?;
    let secrets = wiring::secrets(settings, Some(sdk), &[SecretPart::CallbackKeys])?;
    let webhooks = wiring::webhook_dispatcher(table.clone(), secrets, wiring::clock(), TargetPolicy::production())?;
    // Ends checkout attempts whose payment settled.
    let sessions = Arc::new(wiring::checkout_service(
        table.clone(),
        wiring::clock(),
        settings.checkout()?,
    ));
    // The audit entry first; the open payment pages after the attempt has ended (their status
    // says how); webhooks last: an attempt may wait seconds on a merchant's server.
    Ok(EventHandler::new(table.clone(), wiring::clock())
        .with_consumer(Arc::new(wiring::audit_log(&table)))
        .with_consumer(Arc::new(AttemptOutcomes { service: sessions }))
        .with_consumer(Arc::new(wiring::live_push(settings, sdk, table.clone())?))
        .with_consumer(Arc::new(webhooks)))
}

/// Delivers a stream batch, its events side by side (a webhook attempt may wait up to 10 s; one
/// merchant's slow endpoint must not hold up the batch's other events); the answer names the
/// records to retry.
async fn handle(handler: &EventHandler, payload: &serde_json::Value) -> serde_json::Value {
    let records = stream::new_events(payload);
    let outcomes = futures::future::join_all(records.iter().map(|record| handler.deliver(&record.event_id))).await;
    let mut failed = Vec::new();
    for (record, outcome) in records.into_iter().zip(outcomes) {
        match outcome {
            Ok(Delivery::Handled | Delivery::AlreadyHandled) => {}
            Ok(Delivery::Unknown) => {
                // Streamed, so written: a read that missed it is retried.
                tracing::warn!(event_id = %record.event_id, "streamed event not found; retrying");
                failed.push(record.sequence_number);
            }
            Ok(Delivery::Failed { .. }) => failed.push(record.sequence_number),
            Err(error) => {
                tracing::warn!(%error, event_id = %record.event_id, "event delivery failed; retrying");
                failed.push(record.sequence_number);
            }
        }
    }
    // After the first failure the stream retries from it; report the rest too.
    metrics::flush();
    stream::batch_response(&failed)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_telemetry(FUNCTION);
    let settings = config::for_function(FUNCTION)?;
    let handler = Arc::new(build(&settings, &aws::sdk_config().await)?);
    settings.verify()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&handler, &event.payload).await) }
    }))
    .await
}

checkout::wiring_test!(FUNCTION, build);

#[cfg(test)]
mod tests {
    use super::*;
    use checkout::events::{Cause, EventRecord, EventType, ResourceKind};
    use checkout::store::memory::MemoryTable;
    use checkout::store::Table;

    #[tokio::test]
    async fn a_stream_batch_marks_its_events_handled_and_reports_the_missing_one() {
        let table: Arc<dyn Table> = Arc::new(MemoryTable::new());
        let event = EventRecord::new(
            EventType::PaymentCreated,
            ResourceKind::Payment,
            "pay_1",
            1,
            Some("shop".into()),
            Cause::Api,
            chrono::Utc::now(),
            checkout::events::empty_data(),
        );
        table.write(vec![checkout::events::repo::insert(&event)]).await.unwrap();
        let handler = EventHandler::new(table.clone(), wiring::clock());
        let payload = serde_json::json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": format!("EVT#{}", event.id)}}, "SequenceNumber": "1"}},
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVT#evt_missing_00000001"}}, "SequenceNumber": "2"}}
        ]});
        let answer = handle(&handler, &payload).await;
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2"}]})
        );
        let stored = checkout::events::repo::get(table.as_ref(), &event.id)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.handled_at.is_some());
        assert_eq!(stored.deliveries, 1);
        // A retry of the same batch does nothing twice.
        handle(&handler, &payload).await;
        let again = checkout::events::repo::get(table.as_ref(), &event.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.deliveries, 1);
    }
}
