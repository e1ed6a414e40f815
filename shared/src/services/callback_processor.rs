//! The callback queue's consumer: decodes each envelope and hands it to the handler for its
//! kind. A handler either finishes the message (applied, duplicate, anomaly: all recorded) or
//! asks for it again (a dependency failed); poison messages reach the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::metrics;
use crate::queue::consumer::{BatchHandler, Delivery};
use crate::repo::callbacks::{self, CallbackRecord, Verdict};
use crate::services::callback_intake::{CallbackEnvelope, CallbackKind};
use crate::store::{StoreError, Table};

/// A handler could not finish and the message must come back.
#[derive(Debug, thiserror::Error)]
#[error("retry later: {0}")]
pub struct Retry(pub String);

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Retry {
        Retry(e.to_string())
    }
}

/// A record of `envelope` as it was received, before a handler gives its verdict.
pub fn record_of(message_id: &str, envelope: &CallbackEnvelope, now: chrono::DateTime<chrono::Utc>) -> CallbackRecord {
    CallbackRecord {
        message_id: message_id.to_owned(),
        kind: envelope.kind.as_str().to_owned(),
        received_at: envelope.received_at,
        processed_at: now,
        source_ip: envelope.source_ip.clone(),
        request_id: envelope.request_id.clone(),
        resource_id: None,
        verdict: Verdict::Anomaly,
        reason: String::new(),
        body: envelope.body_text(),
        body_truncated: false,
        body_bytes: 0,
    }
}

/// Records a callback that changed no state with its verdict and reason (once: a redelivery finds
/// it written). An anomaly is counted (`CallbackAnomalies{Reason}`, with `Kind` when given) and
/// logged without the body.
pub async fn record_verdict(
    table: &dyn Table,
    mut record: CallbackRecord,
    verdict: Verdict,
    reason: &str,
    kind_dimension: Option<&str>,
) -> Result<Verdict, Retry> {
    record.verdict = verdict;
    record.reason = reason.to_owned();
    if verdict == Verdict::Anomaly {
        match kind_dimension {
            Some(kind) => metrics::count("CallbackAnomalies", 1, &[("Reason", reason), ("Kind", kind)]),
            None => metrics::count("CallbackAnomalies", 1, &[("Reason", reason)]),
        }
        tracing::warn!(reason, kind = %record.kind, resource_id = ?record.resource_id, source_ip = ?record.source_ip, "callback not applied");
    }
    record_alone(table, &record).await?;
    Ok(verdict)
}

/// Writes a callback record on its own (no state change with it). A redelivered message finds
/// its record already written, which is fine: it was recorded once.
pub async fn record_alone(table: &dyn Table, record: &CallbackRecord) -> Result<(), Retry> {
    match table.write(vec![callbacks::insert(record)]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
pub trait CallbackHandler: Send + Sync {
    /// Processes one envelope delivered as message `message_id` (stable across redeliveries).
    async fn handle(&self, message_id: &str, envelope: &CallbackEnvelope) -> Result<Verdict, Retry>;
}

pub struct CallbackProcessor {
    pub handlers: HashMap<CallbackKind, Arc<dyn CallbackHandler>>,
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Every callback's record, with its verdict, goes into the audit trail before the message
    /// is finished.
    pub audit: AuditLog,
}

impl CallbackProcessor {
    async fn process(&self, delivery: &Delivery) -> Result<(), Retry> {
        let envelope: CallbackEnvelope = match serde_json::from_str(&delivery.body) {
            Ok(envelope) => envelope,
            Err(error) => {
                // Not something our intake wrote: keep it for operators and finish.
                tracing::error!(%error, message_id = %delivery.id, "undecodable message on the callback queue");
                return self.record_undecodable(delivery).await;
            }
        };
        let Some(handler) = self.handlers.get(&envelope.kind) else {
            tracing::error!(
                kind = envelope.kind.as_str(),
                "no handler for callback kind; leaving it for the DLQ"
            );
            return Err(Retry(format!("no handler for {}", envelope.kind.as_str())));
        };
        let verdict = handler.handle(&delivery.id, &envelope).await?;
        self.audit_record(&delivery.id, Some((&envelope, verdict))).await?;
        let verdict_name = match verdict {
            Verdict::Applied => "applied",
            Verdict::Duplicate => "duplicate",
            Verdict::Ignored => "ignored",
            Verdict::Anomaly => "anomaly",
        };
        metrics::count(
            "CallbacksProcessed",
            1,
            &[("Kind", envelope.kind.as_str()), ("Verdict", verdict_name)],
        );
        Ok(())
    }

    /// Appends the callback's record (its verdict as first given: a redelivery finds the
    /// record, and its entry, already written). A failure asks for the message again, so no
    /// callback is finished without its entry.
    async fn audit_record(
        &self,
        message_id: &str,
        received: Option<(&CallbackEnvelope, Verdict)>,
    ) -> Result<(), Retry> {
        let stored = match self.table.get(&callbacks::key(message_id)).await? {
            Some(item) => callbacks::from_item(&item),
            None => None,
        };
        let record = match (stored, received) {
            (Some(record), _) => record,
            // Every handler records what it finishes; should one not, the entry is made from
            // what was received rather than left out.
            (None, Some((envelope, verdict))) => {
                tracing::warn!(
                    message_id,
                    "no callback record to audit; recording the envelope's verdict"
                );
                let mut record = record_of(message_id, envelope, self.clock.now());
                record.verdict = verdict;
                record.reason = "unrecorded".into();
                record
            }
            (None, None) => return Err(Retry(format!("callback record {message_id} not written yet"))),
        };
        self.audit.append(crate::audit::sources::of_callback(&record)).await?;
        Ok(())
    }

    async fn record_undecodable(&self, delivery: &Delivery) -> Result<(), Retry> {
        let now = self.clock.now();
        let record = CallbackRecord {
            message_id: delivery.id.clone(),
            kind: "unknown".into(),
            received_at: now,
            processed_at: now,
            source_ip: None,
            request_id: String::new(),
            resource_id: None,
            verdict: Verdict::Anomaly,
            reason: "undecodable_envelope".into(),
            // Bounded (and given a short retention) by `callbacks::insert`: an unauthenticated body.
            body: delivery.body.clone(),
            body_truncated: false,
            body_bytes: 0,
        };
        record_alone(self.table.as_ref(), &record).await?;
        self.audit_record(&delivery.id, None).await?;
        metrics::count("CallbackAnomalies", 1, &[("Reason", "undecodable_envelope")]);
        Ok(())
    }
}

#[async_trait]
impl BatchHandler for CallbackProcessor {
    async fn handle(&self, batch: Vec<Delivery>) -> Vec<String> {
        // Messages are independent; process them concurrently, report failures individually.
        let results = futures::future::join_all(batch.iter().map(|d| self.process(d))).await;
        batch
            .iter()
            .zip(results)
            .filter_map(|(delivery, result)| match result {
                Ok(()) => None,
                Err(retry) => {
                    tracing::warn!(message_id = %delivery.id, receive_count = delivery.receive_count, error = %retry, "callback will be retried");
                    Some(delivery.id.clone())
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback_token::{CallbackTokens, TokenPurpose};
    use crate::clock::ManualClock;
    use crate::domain::PaymentId;
    use crate::repo::callbacks::{MAX_UNAUTHENTICATED_BODY_BYTES, RETENTION_DAYS, UNAUTHENTICATED_RETENTION_DAYS};
    use crate::secrets::{Secret, SecretCache, StaticSecret};
    use crate::store::memory::MemoryTable;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn envelope(token: String, body: String, received_at: chrono::DateTime<chrono::Utc>) -> String {
        serde_json::to_string(&CallbackEnvelope {
            v: 1,
            kind: CallbackKind::StkCallback,
            token,
            received_at,
            source_ip: None,
            request_id: "req".into(),
            body,
            body_base64: false,
        })
        .unwrap()
    }

    /// Every path that records a callback (the processor itself, a handler alone, the settler in
    /// its transaction) stores it with its retention and, when unauthenticated, a bounded body.
    #[tokio::test]
    async fn every_writer_stores_callback_records_with_their_retention() {
        let now = chrono::Utc::now();
        let table = Arc::new(MemoryTable::new());
        let json = serde_json::json!({
            "daraja_consumer_key": "k", "daraja_consumer_secret": "s", "stk_shortcode": "174379",
            "stk_passkey": "p", "callback_hmac_key": KEY,
        });
        let secrets = Arc::new(SecretCache::new(
            Arc::new(StaticSecret(json.to_string())),
            std::time::Duration::from_secs(60),
        ));
        let processor = crate::wiring::callback_processor(table.clone(), secrets, Arc::new(ManualClock::new(now)));
        let junk = "z".repeat(40 * 1024);
        let genuine_token =
            CallbackTokens::new(Secret::new(KEY)).token_for(TokenPurpose::StkCallback, PaymentId::generate().as_str());
        let cancelled = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m-1","CheckoutRequestID":"ws_CO_1","ResultCode":1032,"ResultDesc":"Request cancelled by user"}}}"#;
        let batch = vec![
            Delivery {
                id: "undecodable".into(),
                body: junk.clone(),
                receive_count: 1,
            },
            Delivery {
                id: "forged".into(),
                body: envelope("pay_01ARZ3NDEKTSV4RRFFQ69G5FAV.forged".into(), junk.clone(), now),
                receive_count: 1,
            },
            // A genuine token for a payment we do not have: recorded by the settler.
            Delivery {
                id: "genuine".into(),
                body: envelope(genuine_token, cancelled.into(), now),
                receive_count: 1,
            },
        ];
        assert!(processor.handle(batch).await.is_empty(), "every message finishes");
        let record = |id: &'static str| {
            let table = table.clone();
            async move {
                let item = table.get(&callbacks::key(id)).await.unwrap().expect("recorded");
                (item.expires_at, callbacks::from_item(&item).expect("parses"))
            }
        };
        let day = 86_400;
        let (expires, undecodable) = record("undecodable").await;
        assert_eq!(undecodable.reason, "undecodable_envelope");
        assert_eq!(expires, Some(now.timestamp() + UNAUTHENTICATED_RETENTION_DAYS * day));
        assert!(undecodable.body_truncated && undecodable.body.len() == MAX_UNAUTHENTICATED_BODY_BYTES);
        let (expires, forged) = record("forged").await;
        assert_eq!(forged.reason, "invalid_token");
        assert_eq!(expires, Some(now.timestamp() + UNAUTHENTICATED_RETENTION_DAYS * day));
        assert!(forged.body_truncated && forged.body.len() == MAX_UNAUTHENTICATED_BODY_BYTES);
        assert_eq!(forged.body_bytes, junk.len());
        let (expires, genuine) = record("genuine").await;
        assert_eq!(genuine.reason, "unknown_payment");
        assert_eq!(expires, Some(now.timestamp() + RETENTION_DAYS * day));
        assert_eq!(genuine.body, cancelled);
    }
}
