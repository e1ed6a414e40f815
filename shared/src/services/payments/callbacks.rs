//! STK Push callbacks from the queue: verify the path token, parse per Daraja's quirks, and
//! settle the payment. Anything that does not match is recorded as an anomaly, never applied.

use std::sync::Arc;

use async_trait::async_trait;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::callbacks::parse_stk_callback;
use crate::domain::{PaymentEvent, PaymentId, Source, StkFinalResult};
use crate::engine::Settle;
use crate::metrics;
use crate::repo::callbacks::{CallbackRecord, Verdict};
use crate::secrets::SecretCache;
use crate::services::callback_intake::CallbackEnvelope;
use crate::services::callback_processor::{record_alone, record_of, CallbackHandler, Retry};
use crate::services::payments::flow::{PaymentSettler, Settled};
use crate::store::Table;

pub struct StkCallbackHandler {
    pub settler: PaymentSettler,
    pub table: Arc<dyn Table>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
}

impl StkCallbackHandler {
    async fn anomaly(&self, mut record: CallbackRecord, reason: &str) -> Result<Verdict, Retry> {
        record.verdict = Verdict::Anomaly;
        record.reason = reason.to_owned();
        metrics::count("CallbackAnomalies", 1, &[("Reason", reason)]);
        tracing::warn!(reason, resource_id = ?record.resource_id, source_ip = ?record.source_ip, "STK callback not applied");
        record_alone(self.table.as_ref(), &record).await?;
        Ok(Verdict::Anomaly)
    }
}

#[async_trait]
impl CallbackHandler for StkCallbackHandler {
    async fn handle(&self, message_id: &str, envelope: &CallbackEnvelope) -> Result<Verdict, Retry> {
        let secrets = self.secrets.get().await.map_err(|e| Retry(e.to_string()))?;
        let now = self.clock.now();
        let mut record = record_of(message_id, envelope, now);
        let tokens = CallbackTokens::from_secrets(&secrets);
        let Some(payment_id) = tokens
            .verify(TokenPurpose::StkCallback, &envelope.token)
            .and_then(|id| PaymentId::parse(id).ok())
        else {
            return self.anomaly(record, "invalid_token").await;
        };
        record.resource_id = Some(payment_id.to_string());
        let callback = match parse_stk_callback(&envelope.body_bytes()) {
            Ok(callback) => callback,
            Err(error) => {
                tracing::warn!(%error, payment_id = %payment_id, "malformed STK callback");
                return self.anomaly(record, "malformed").await;
            }
        };
        let event = PaymentEvent::Final {
            outcome: StkFinalResult {
                checkout_request_id: callback.checkout_request_id.clone(),
                result: callback.result.clone(),
                receipt: callback.receipt.clone(),
                // A fractional or unparsable amount cannot match ours: it becomes an amount mismatch.
                amount: callback.amount.and_then(Result::ok),
            },
            source: Source::Callback,
        };
        let settled = self
            .settler
            .settle(Settle::new(&payment_id, &event).recording(Some(record)))
            .await?;
        if matches!(settled, Settled::Unknown) {
            metrics::count("CallbackAnomalies", 1, &[("Reason", "unknown_payment")]);
        }
        Ok(settled.verdict())
    }
}
