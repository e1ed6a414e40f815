//! B2C results, B2C queue timeouts and Transaction Status results from the callback queue:
//! verify the per-payout path token, parse per Daraja's quirks, and settle the payout with a
//! conditional write (the callback record in the same transaction). Anything that does not match
//! (unknown payout, another conversation, a different amount) is recorded as an anomaly, never
//! applied; repeats are recorded as duplicates and change nothing.

use std::sync::Arc;

use async_trait::async_trait;

use crate::callback_token::{CallbackTokens, TokenPurpose};
use crate::clock::Clock;
use crate::daraja::callbacks::{parse_b2c_result, parse_transaction_status_result, B2cResult, TransactionStatusResult};
use crate::daraja::timestamp::nairobi_to_utc;
use crate::domain::payout::{B2cFinalResult, PayoutEvent};
use crate::domain::{b2c_outcome, B2cOutcome, DarajaResult, FailureCategory, PayoutId};
use crate::engine::Settle;
use crate::metrics;
use crate::repo::callbacks::{CallbackRecord, Verdict};
use crate::repo::payouts::{record_float, FloatBalance};
use crate::secrets::SecretCache;
use crate::services::callback_intake::{CallbackEnvelope, CallbackKind};
use crate::services::callback_processor::{record_of, record_verdict, CallbackHandler, Retry};
use crate::services::payouts::flow::{PayoutSettled, PayoutSettler};
use crate::store::Table;

/// Handles [`CallbackKind::B2cResult`], [`CallbackKind::B2cTimeout`],
/// [`CallbackKind::TransactionStatusResult`] and [`CallbackKind::TransactionStatusTimeout`].
pub struct PayoutCallbackHandler {
    pub settler: PayoutSettler,
    pub table: Arc<dyn Table>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
}

fn purpose(kind: CallbackKind) -> Option<TokenPurpose> {
    match kind {
        CallbackKind::B2cResult => Some(TokenPurpose::B2cResult),
        CallbackKind::B2cTimeout => Some(TokenPurpose::B2cTimeout),
        CallbackKind::TransactionStatusResult => Some(TokenPurpose::TransactionStatusResult),
        CallbackKind::TransactionStatusTimeout => Some(TokenPurpose::TransactionStatusTimeout),
        _ => None,
    }
}

/// What a Transaction Status result means for a payout; `Err(reason)` when it changes nothing.
fn status_event(status: &TransactionStatusResult) -> Result<PayoutEvent, &'static str> {
    if status.is_not_found() {
        return Ok(PayoutEvent::StatusNotFound {
            result: status.result.clone(),
        });
    }
    if !status.result.code.is_success() {
        // The query itself failed (e.g. our credential): says nothing about the payout.
        if let B2cOutcome::Failed(reason) = b2c_outcome(&status.result.code) {
            if reason.category() == FailureCategory::Operator {
                metrics::count("PayoutOperatorAlarms", 1, &[("Reason", reason.as_str())]);
                tracing::error!(
                    reason = reason.as_str(),
                    "Transaction Status refused for an operator problem"
                );
            }
        }
        return Err("status_query_failed");
    }
    if status.is_completed() {
        let amount = match &status.params.amount {
            None => None,
            Some(Ok(amount)) => Some(*amount),
            Some(Err(_)) => return Err("amount_mismatch"),
        };
        return Ok(PayoutEvent::StatusCompleted {
            result: status.result.clone(),
            receipt: status.params.receipt.clone().or_else(|| status.transaction_id.clone()),
            amount,
            recipient_name: status.params.credit_party_name.clone(),
        });
    }
    let reported = status
        .params
        .status
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if matches!(reported.as_str(), "declined" | "cancelled" | "expired" | "failed") {
        let description = format!(
            "{} (TransactionStatus: {})",
            status.result.description,
            status.params.status.as_deref().unwrap_or_default()
        );
        return Ok(PayoutEvent::StatusDeclined {
            result: DarajaResult {
                code: status.result.code.clone(),
                description,
            },
        });
    }
    // `Pending` or a status we do not know: not final yet.
    Err("not_final")
}

fn b2c_event(result: &B2cResult) -> PayoutEvent {
    PayoutEvent::Result(B2cFinalResult {
        originator_conversation_id: result.originator_conversation_id.clone(),
        conversation_id: result.conversation_id.clone(),
        result: result.result.clone(),
        receipt: result.receipt().map(str::to_owned),
        // A fractional or unparsable amount cannot match ours: it becomes an amount mismatch.
        amount: result.params.amount.and_then(Result::ok),
        recipient_name: result.params.receiver_public_name.clone(),
    })
}

impl PayoutCallbackHandler {
    async fn finish(&self, record: CallbackRecord, verdict: Verdict, reason: &str) -> Result<Verdict, Retry> {
        record_verdict(self.table.as_ref(), record, verdict, reason, None).await
    }

    async fn settle(&self, id: &PayoutId, event: &PayoutEvent, record: CallbackRecord) -> Result<PayoutSettled, Retry> {
        let settled = self
            .settler
            .settle(Settle::new(id, event).recording(Some(record)))
            .await?;
        if matches!(settled, PayoutSettled::Unknown) {
            metrics::count("CallbackAnomalies", 1, &[("Reason", "unknown_payout")]);
            tracing::warn!(payout_id = %id, "callback for a payout we do not have");
        }
        Ok(settled)
    }

    /// The balances a genuine result reported become the latest known float (if newer).
    async fn record_float(&self, result: &B2cResult, settled: &PayoutSettled) {
        let (Some(payout), Some(completed_at)) = (settled.entity(), result.params.completed_at) else {
            return;
        };
        let cents = |v: &Option<Result<crate::daraja::KesDecimal, crate::daraja::MoneyError>>| {
            v.as_ref().and_then(|r| r.as_ref().ok()).map(|d| d.cents())
        };
        let balance = FloatBalance {
            shortcode: payout.shortcode.clone(),
            utility_cents: cents(&result.params.utility_account_funds),
            working_cents: cents(&result.params.working_account_funds),
            charges_paid_cents: cents(&result.params.charges_paid_account_funds),
            as_of: nairobi_to_utc(completed_at),
            payout_id: payout.id.to_string(),
        };
        if balance.utility_cents.is_none() && balance.working_cents.is_none() && balance.charges_paid_cents.is_none() {
            return;
        }
        match record_float(self.table.as_ref(), &balance).await {
            Ok(true) => {
                if let Some(utility) = balance.utility_cents {
                    metrics::gauge(
                        "B2cUtilityFloatKes",
                        utility as f64 / 100.0,
                        &[("Shortcode", &balance.shortcode)],
                    );
                }
            }
            Ok(false) => {}
            // Best effort: the next result records a newer balance anyway.
            Err(error) => tracing::warn!(%error, "could not record the latest float"),
        }
    }
}

#[async_trait]
impl CallbackHandler for PayoutCallbackHandler {
    async fn handle(&self, message_id: &str, envelope: &CallbackEnvelope) -> Result<Verdict, Retry> {
        let secrets = self.secrets.get().await.map_err(|e| Retry(e.to_string()))?;
        let mut record = record_of(message_id, envelope, self.clock.now());
        let tokens = CallbackTokens::from_secrets(&secrets);
        let id = purpose(envelope.kind)
            .and_then(|purpose| tokens.verify(purpose, &envelope.token))
            .and_then(|id| PayoutId::parse(id).ok());
        let Some(id) = id else {
            return self.finish(record, Verdict::Anomaly, "invalid_token").await;
        };
        record.resource_id = Some(id.to_string());
        let body = envelope.body_bytes();
        match envelope.kind {
            CallbackKind::B2cResult => {
                let result = match parse_b2c_result(&body) {
                    Ok(result) => result,
                    Err(error) => {
                        tracing::warn!(%error, payout_id = %id, "malformed B2C result");
                        return self.finish(record, Verdict::Anomaly, "malformed").await;
                    }
                };
                let settled = self.settle(&id, &b2c_event(&result), record).await?;
                if settled.verdict() != Verdict::Anomaly {
                    self.record_float(&result, &settled).await;
                }
                Ok(settled.verdict())
            }
            CallbackKind::B2cTimeout => {
                // Undocumented body: only a contradicting OriginatorConversationID stops it. A
                // timeout never fails a payout; it makes it `unknown` for Transaction Status.
                if let Ok(parsed) = parse_b2c_result(&body) {
                    if parsed
                        .originator_conversation_id
                        .as_deref()
                        .is_some_and(|o| o != id.as_str())
                    {
                        return self.finish(record, Verdict::Anomaly, "conversation_mismatch").await;
                    }
                }
                Ok(self.settle(&id, &PayoutEvent::QueueTimeout, record).await?.verdict())
            }
            CallbackKind::TransactionStatusResult => {
                let status = match parse_transaction_status_result(&body) {
                    Ok(status) => status,
                    Err(error) => {
                        tracing::warn!(%error, payout_id = %id, "malformed Transaction Status result");
                        return self.finish(record, Verdict::Anomaly, "malformed").await;
                    }
                };
                if status
                    .params
                    .originator_conversation_id
                    .as_deref()
                    .is_some_and(|o| o != id.as_str())
                {
                    return self.finish(record, Verdict::Anomaly, "conversation_mismatch").await;
                }
                match status_event(&status) {
                    Ok(event) => Ok(self.settle(&id, &event, record).await?.verdict()),
                    Err(reason @ "amount_mismatch") => self.finish(record, Verdict::Anomaly, reason).await,
                    Err(reason) => {
                        metrics::count("PayoutStatusAnswers", 1, &[("Answer", reason)]);
                        self.finish(record, Verdict::Ignored, reason).await
                    }
                }
            }
            CallbackKind::TransactionStatusTimeout => {
                // The sweeper asks again at its next check.
                self.finish(record, Verdict::Ignored, "status_query_timeout").await
            }
            _ => self.finish(record, Verdict::Anomaly, "wrong_handler").await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(body: &str) -> TransactionStatusResult {
        parse_transaction_status_result(body.as_bytes()).unwrap()
    }

    fn ts(code: &str, params: &str) -> String {
        format!(
            r#"{{"Result":{{"ResultType":0,"ResultCode":{code},"ResultDesc":"desc","OriginatorConversationID":"x","ConversationID":"c","TransactionID":"TKL0000000","ResultParameters":{{"ResultParameter":[{params}]}}}}}}"#
        )
    }

    #[test]
    fn transaction_status_answers() {
        let completed = ts(
            "0",
            r#"{"Key":"TransactionStatus","Value":"Completed"},{"Key":"Amount","Value":2500.0},{"Key":"ReceiptNo","Value":"TKL632NMUA"}"#,
        );
        match status_event(&status(&completed)) {
            Ok(PayoutEvent::StatusCompleted { receipt, amount, .. }) => {
                assert_eq!(receipt.as_deref(), Some("TKL632NMUA"));
                assert_eq!(amount.map(|a| a.shillings()), Some(2500));
            }
            other => panic!("{other:?}"),
        }
        let fractional = ts(
            "0",
            r#"{"Key":"TransactionStatus","Value":"Completed"},{"Key":"Amount","Value":2500.5}"#,
        );
        assert_eq!(status_event(&status(&fractional)).unwrap_err(), "amount_mismatch");
        assert!(matches!(
            status_event(&status(&ts("2032", r#"{"Key":"x"}"#))),
            Ok(PayoutEvent::StatusNotFound { .. })
        ));
        assert!(matches!(
            status_event(&status(&ts("\"2032\"", r#"{"Key":"x"}"#))),
            Ok(PayoutEvent::StatusNotFound { .. })
        ));
        let declined = ts("0", r#"{"Key":"TransactionStatus","Value":"Declined"}"#);
        assert!(matches!(
            status_event(&status(&declined)),
            Ok(PayoutEvent::StatusDeclined { .. })
        ));
        let pending = ts("0", r#"{"Key":"TransactionStatus","Value":"Pending"}"#);
        assert_eq!(status_event(&status(&pending)).unwrap_err(), "not_final");
        assert_eq!(
            status_event(&status(&ts("2001", r#"{"Key":"x"}"#))).unwrap_err(),
            "status_query_failed"
        );
    }
}
