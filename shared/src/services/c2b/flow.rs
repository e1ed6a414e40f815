//! C2B payments on the settle engine: a recorded confirmation (one per receipt, `TransID`) moves
//! through the same read → decide → effects → conditional write → event as payments and payouts.
//!
//! Two events reach it: a confirmation (from Safaricom, authenticated by its path token), which
//! creates the payment or is admitted beside it ([`admit_body`]), and a Transaction Status answer
//! about its receipt, which verifies or rejects it ([`decide_verification`]). Both decisions are
//! pure; what a verified confirmation does to other records (its receipt registry, the STK
//! payment it echoes, the invoice it pays) is its effects ([`settle_verified`]), written in the
//! same transaction.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::daraja::errors::redact_id;
use crate::domain::c2b::{C2bKind, C2bPayment, MatchOutcome, Shortcode, UnmatchedReason};
use crate::domain::c2b_verification::{
    admit_body, decide_verification, Admission, ConfirmationBody, StatusAnswer, Verification, VerificationDecision,
    VerificationStatus, VerificationTimings, VerifiedBy,
};
use crate::domain::{C2bPaymentId, ClientId};
use crate::engine::{self, Flow, IgnoreReason, Settled, Slot};
use crate::events::EventRecord;
use crate::metrics;
use crate::repo::c2b as repo;
use crate::repo::callbacks::Verdict;
use crate::repo::receipts::{self, ReceiptLink};
use crate::services::c2b::effects::{settle_verified, EchoWindow};
use crate::services::c2b::events::c2b_event;
use crate::store::{StoreError, Table, Write};

/// C2B payments on the settle engine. Its effects read other records (the receipt registry, echo
/// candidates, invoices), so it holds the table.
#[derive(Clone)]
pub struct C2bFlow {
    pub table: Arc<dyn Table>,
    pub echo_window: EchoWindow,
}

pub type C2bSettler = engine::Settler<C2bFlow>;
pub type C2bSettled = engine::Settled<C2bFlow>;

impl engine::Settler<C2bFlow> {
    pub fn c2b(table: Arc<dyn Table>, clock: Arc<dyn crate::clock::Clock>, echo_window: EchoWindow) -> C2bSettler {
        engine::Settler::new(
            C2bFlow {
                table: table.clone(),
                echo_window,
            },
            table,
            clock,
        )
    }
}

/// A confirmation as the handler read it (token, shortcode and body checked).
#[derive(Debug, Clone)]
pub struct NewConfirmation {
    /// The id the payment gets if this confirmation creates it.
    pub id: C2bPaymentId,
    pub trans_id: String,
    pub shortcode: Shortcode,
    /// The shortcode's merchant (`None`: not registered with us).
    pub owner: Option<ClientId>,
    pub body: ConfirmationBody,
    /// The shortcode trusts its confirmations (audited opt-in): verified on arrival.
    pub trusted: bool,
    pub timings: VerificationTimings,
}

#[derive(Debug, Clone)]
pub enum C2bEvent {
    Confirmation(Box<NewConfirmation>),
    StatusAnswer {
        answer: StatusAnswer,
        timings: VerificationTimings,
    },
}

/// Why a C2B event changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum C2bIgnored {
    /// The same confirmation again.
    Duplicate,
    /// The payment's verification was decided before this answer.
    AlreadyDecided,
    /// A confirmation that contradicts a verified one, or one too many ([`Admission::Anomaly`]).
    Anomaly(&'static str),
}

impl IgnoreReason for C2bIgnored {
    fn code(&self) -> &'static str {
        match self {
            C2bIgnored::Duplicate => "duplicate",
            C2bIgnored::AlreadyDecided => "already_decided",
            C2bIgnored::Anomaly(reason) => reason,
        }
    }

    fn is_anomaly(&self) -> bool {
        matches!(self, C2bIgnored::Anomaly(_))
    }

    fn is_duplicate(&self) -> bool {
        matches!(self, C2bIgnored::Duplicate | C2bIgnored::AlreadyDecided)
    }
}

fn newly(status: VerificationStatus, before: Option<&C2bPayment>, after: &C2bPayment) -> bool {
    after.verification.status == status && before.is_none_or(|b| b.verification.status != status)
}

/// The verdict and reason a newly recorded confirmation's callback record carries.
pub fn recorded_verdict(payment: &C2bPayment) -> (Verdict, String) {
    match payment.anomalies.first() {
        Some(anomaly) => (Verdict::Anomaly, anomaly.clone()),
        None if payment.verification.status == VerificationStatus::Verified => (Verdict::Applied, "applied".into()),
        None => (Verdict::Applied, "recorded_unverified".into()),
    }
}

/// A new registry item naming `payment` (the receipt not registered before).
fn fresh_link(payment: &C2bPayment, now: DateTime<Utc>) -> ReceiptLink {
    ReceiptLink {
        receipt: payment.trans_id.clone(),
        stk_payment_id: None,
        c2b_payment_id: Some(payment.id.clone()),
        updated_at: now,
        version: 0,
    }
}

#[async_trait]
impl Flow for C2bFlow {
    type Id = str;
    type Entity = C2bPayment;
    type Event = C2bEvent;
    type Ignored = C2bIgnored;

    const UNKNOWN_REASON: &'static str = "unknown_receipt";

    async fn load(&self, table: &dyn Table, trans_id: &str) -> Result<Option<C2bPayment>, StoreError> {
        repo::get_payment_by_trans_id(table, trans_id).await
    }

    fn decide(payment: &C2bPayment, event: &C2bEvent, now: DateTime<Utc>) -> Result<C2bPayment, C2bIgnored> {
        match event {
            C2bEvent::Confirmation(confirmation) => match admit_body(payment, &confirmation.body, now) {
                Admission::Duplicate => Err(C2bIgnored::Duplicate),
                Admission::Anomaly { reason } => Err(C2bIgnored::Anomaly(reason)),
                Admission::Alternative => {
                    // Kept until verification decides which body is real.
                    let mut next = payment.clone();
                    next.alternatives.push(confirmation.body.clone());
                    next.updated_at = now;
                    Ok(next)
                }
                Admission::VerifiedNow { next: verification } => {
                    // Daraja confirmed this body's amount before it arrived.
                    let mut chosen = payment.clone();
                    chosen.alternatives.push(confirmation.body.clone());
                    let mut chosen = chosen.choosing(chosen.alternatives.len());
                    chosen.verification = verification;
                    Ok(chosen)
                }
            },
            C2bEvent::StatusAnswer { answer, timings } => match decide_verification(payment, answer, now, *timings) {
                VerificationDecision::AlreadyDecided => Err(C2bIgnored::AlreadyDecided),
                VerificationDecision::Recorded { next } => {
                    let mut updated = payment.clone();
                    updated.verification = next;
                    Ok(updated)
                }
                VerificationDecision::Rejected { next } => {
                    let mut rejected = payment.clone();
                    rejected.verification = next;
                    rejected.matched = MatchOutcome::Unmatched {
                        reason: UnmatchedReason::VerificationFailed,
                        expected_payment_id: None,
                    };
                    rejected.updated_at = now;
                    Ok(rejected)
                }
                VerificationDecision::Verified { body, next } => {
                    let mut chosen = payment.choosing(body);
                    chosen.verification = next;
                    Ok(chosen)
                }
            },
        }
    }

    fn create(event: &C2bEvent, now: DateTime<Utc>) -> Option<C2bPayment> {
        let C2bEvent::Confirmation(c) = event else {
            return None;
        };
        // Verified at once when its shortcode trusts its confirmations; by its receipt when it is
        // one of our STK payments' (found by the effects); otherwise by Transaction Status.
        let verification = match c.trusted {
            true => Verification::verified(VerifiedBy::TrustedConfirmation, now),
            false => Verification::pending(now, c.timings),
        };
        Some(C2bPayment::from_body(
            c.id.clone(),
            c.trans_id.clone(),
            c.shortcode.clone(),
            c.owner.clone(),
            C2bKind::Payment,
            None,
            c.body.clone(),
            MatchOutcome::Unmatched {
                // An unreadable amount never pays anything, verified or not.
                reason: match c.body.amount {
                    Some(_) => UnmatchedReason::Unverified,
                    None => UnmatchedReason::AmountAnomaly,
                },
                expected_payment_id: None,
            },
            verification,
            now,
        ))
    }

    fn update(after: &C2bPayment) -> Write {
        repo::update_payment(after)
    }

    fn insert(after: &C2bPayment) -> Vec<Write> {
        repo::insert_payment(after).to_vec()
    }

    fn version(payment: &C2bPayment) -> u64 {
        payment.version
    }

    fn set_version(payment: &mut C2bPayment, version: u64) {
        payment.version = version;
    }

    fn resource_id(payment: &C2bPayment) -> String {
        payment.id.to_string()
    }

    /// A new confirmation registers its receipt; one verified now (on arrival or by its answer)
    /// also links the STK payment it echoes and pays its invoice ([`settle_verified`]).
    async fn effects(
        &self,
        table: &dyn Table,
        before: Option<&C2bPayment>,
        after: &mut C2bPayment,
        now: DateTime<Utc>,
        _attempt: u32,
    ) -> Result<Vec<(Slot, Write)>, StoreError> {
        let created = before.is_none();
        if !created && !newly(VerificationStatus::Verified, before, after) {
            return Ok(Vec::new());
        }
        let link = receipts::get(table, &after.trans_id).await?;
        if created && link.as_ref().is_some_and(|l| l.stk_payment_id.is_some()) {
            // The receipt of an STK payment of ours: its authenticated callback carried it.
            after.verification = Verification::verified(VerifiedBy::StkReceipt, now);
        }
        let mut link = link.unwrap_or_else(|| fresh_link(after, now));
        if after.verification.status != VerificationStatus::Verified {
            link.c2b_payment_id = Some(after.id.clone());
            link.updated_at = now;
            return Ok(vec![(Slot::ReceiptLink, receipts::put(&link))]);
        }
        let settled = settle_verified(&self.table, after.clone(), link, self.echo_window, now).await?;
        *after = settled.payment;
        let mut writes = vec![(Slot::ReceiptLink, receipts::put(&settled.link))];
        writes.extend(settled.writes);
        Ok(writes)
    }

    fn event(before: Option<&C2bPayment>, after: &C2bPayment, now: DateTime<Utc>) -> Option<EventRecord> {
        c2b_event(before, after, now)
    }

    fn applied_verdict(event: &C2bEvent, before: Option<&C2bPayment>, after: &C2bPayment) -> (Verdict, String) {
        match (event, before) {
            (_, None) => recorded_verdict(after),
            (C2bEvent::Confirmation(_), Some(_)) if newly(VerificationStatus::Verified, before, after) => {
                (Verdict::Applied, "applied".into())
            }
            (C2bEvent::Confirmation(_), Some(_)) => (Verdict::Applied, "alternative_recorded".into()),
            (C2bEvent::StatusAnswer { .. }, Some(_)) => match after.verification.status {
                VerificationStatus::Verified => (Verdict::Applied, "verified".into()),
                VerificationStatus::Rejected => {
                    let reason = after.verification.rejection.map_or("rejected", |r| r.as_str());
                    (Verdict::Anomaly, format!("verification_{reason}"))
                }
                VerificationStatus::Unverified => (Verdict::Ignored, "recorded".into()),
            },
        }
    }

    fn observe(outcome: &C2bSettled) {
        match outcome {
            Settled::Created { after } => observe_recorded(after, &recorded_verdict(after).1),
            Settled::Applied { before, after } => {
                let trans_id = redact_id(&after.trans_id);
                if newly(VerificationStatus::Verified, Some(before), after) {
                    metrics::count("C2bVerifications", 1, &[("Result", "verified")]);
                    tracing::info!(%trans_id, c2b_payment_id = %after.id, "C2B confirmation verified with Daraja");
                } else if newly(VerificationStatus::Rejected, Some(before), after) {
                    let reason = format!(
                        "verification_{}",
                        after.verification.rejection.map_or("rejected", |r| r.as_str())
                    );
                    metrics::count("C2bVerifications", 1, &[("Result", "rejected")]);
                    metrics::count("C2bVerificationRejected", 1, &[("Reason", reason.as_str())]);
                    tracing::warn!(%trans_id, %reason, "C2B confirmation rejected by Daraja's answer: it settles nothing");
                } else if after.alternatives.len() > before.alternatives.len() {
                    metrics::count("C2bConfirmationAlternatives", 1, &[]);
                    tracing::warn!(c2b_payment_id = %after.id, %trans_id, "a different confirmation for an unverified receipt: kept for verification");
                }
            }
            Settled::Unchanged { entity, why } if why.is_anomaly() => {
                metrics::count(
                    "CallbackAnomalies",
                    1,
                    &[("Reason", why.code()), ("Kind", "c2b_confirmation")],
                );
                tracing::warn!(c2b_payment_id = %entity.id, reason = why.code(), "C2B confirmation not applied");
            }
            Settled::Unchanged {
                entity,
                why: C2bIgnored::Duplicate,
            } => {
                tracing::info!(c2b_payment_id = %entity.id, "duplicate C2B confirmation");
            }
            _ => {}
        }
    }
}

fn observe_recorded(payment: &C2bPayment, reason: &str) {
    metrics::count(
        "C2bConfirmations",
        1,
        &[("Kind", payment.kind.as_str()), ("Match", payment.matched.status())],
    );
    if !matches!(reason, "applied" | "recorded_unverified") {
        metrics::count(
            "CallbackAnomalies",
            1,
            &[("Reason", reason), ("Kind", "c2b_confirmation")],
        );
    }
    if let Some(linked) = &payment.linked_payment_id {
        metrics::count("C2bStkLinks", 1, &[("Order", "stk_first")]);
        tracing::info!(c2b_payment_id = %payment.id, payment_id = %linked, "C2B confirmation of an STK payment");
    }
    tracing::info!(
        c2b_payment_id = %payment.id,
        shortcode = %payment.shortcode,
        trans_id = %redact_id(&payment.trans_id),
        kind = payment.kind.as_str(),
        matched = payment.matched.status(),
        "C2B payment recorded"
    );
}
