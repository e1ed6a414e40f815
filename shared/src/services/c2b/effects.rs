//! What a verified C2B confirmation does to the rest of the table. Only a verified confirmation
//! moves money ([`crate::domain::c2b_verification`]); once it is, in the same transaction as the
//! confirmation's own write:
//!
//! 1. **Its echo link.** The confirmation may be the C2B echo of one of our STK payments (Daraja
//!    sends one when the paybill has C2B URLs registered). By receipt: the receipt registry
//!    (`RCPT#<receipt>`) names the STK payment whose authenticated callback carried it. By
//!    reference, when the STK payment holds no receipt (it was completed by STK Query, which
//!    carries none, or its callback was dropped, or its push's answer was lost): an STK payment
//!    on the **same shortcode**, whose **reference equals the `BillRefNumber`** (trimmed,
//!    case-insensitive), for **the same amount**, **created between [`EchoWindow::before`] and
//!    [`EchoWindow::after`] around the confirmation's `TransTime`** (its receipt time; the time we
//!    received it when `TransTime` is unreadable), without a receipt yet. Of several, the one
//!    created last before the receipt time wins (a customer who retried an order pays the last
//!    prompt). The STK payment gets the receipt (and is completed, flagged `late` when it had
//!    been closed for a transport reason) with a conditional write on its version, the registry
//!    records both, and the confirmation becomes `stk_duplicate`: a notification, never new money.
//! 2. **What it pays.** Its account number's expected payment (invoice) is settled by its amount,
//!    once per receipt (conditional on the expected payment's version).
//!
//! The caller writes the confirmation itself (insert or update) and the registry item returned
//! here with the effects, and decides again from fresh reads if the transaction fails.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::domain::c2b::{C2bKind, C2bPayment, MatchOutcome, UnmatchedReason};
use crate::domain::expected_payment::{AppliedPayment, NotApplied};
use crate::domain::{
    decide, DarajaResult, Decision, Payment, PaymentEvent, PaymentId, ResultCode, Source, StkFinalResult,
};
use crate::engine::Slot;
use crate::metrics;
use crate::repo::c2b as repo;
use crate::repo::payments::PaymentRepo;
use crate::repo::receipts::ReceiptLink;
use crate::store::{StoreError, Table, Write};

/// Around a confirmation's receipt time, when the STK payment it echoes may have been created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoWindow {
    /// An STK prompt lives about a minute; the customer pays within it. Generous for clock skew.
    pub before: Duration,
    /// Our clock may run ahead of Safaricom's.
    pub after: Duration,
}

impl Default for EchoWindow {
    fn default() -> Self {
        EchoWindow {
            before: Duration::minutes(10),
            after: Duration::minutes(2),
        }
    }
}

/// A verified confirmation with its effects.
#[derive(Debug)]
pub struct Settled {
    /// The confirmation as it must be stored (kind, link, match filled in; version as read).
    pub payment: C2bPayment,
    /// The receipt registry as it must be stored (version as read; 0 = new).
    pub link: ReceiptLink,
    /// The STK payment (and its event) and expected payment writes, each conditional on what
    /// was read, named for the transaction.
    pub writes: Vec<(Slot, Write)>,
    /// The STK payment it echoes, when found by reference now.
    pub echo_of: Option<PaymentId>,
}

/// The effects of `payment` (verified) given the receipt registry item `link` as read (or a new
/// one naming this confirmation).
pub async fn settle_verified(
    table: &Arc<dyn Table>,
    mut payment: C2bPayment,
    mut link: ReceiptLink,
    window: EchoWindow,
    now: DateTime<Utc>,
) -> Result<Settled, StoreError> {
    let mut writes = Vec::new();
    let mut echo_of = None;
    if link.c2b_payment_id.is_none() {
        link.c2b_payment_id = Some(payment.id.clone());
        link.updated_at = now;
    }
    if let Some(stk) = link.stk_payment_id.clone() {
        if payment.linked_payment_id.as_ref() != Some(&stk) {
            payment = payment.linked_to_stk(&stk, now);
        }
    } else if payment.kind == C2bKind::Payment {
        if let Some((echoed, next)) = echo_target(table, &payment, window, now).await? {
            writes.push((Slot::EchoedPayment, PaymentRepo::update(&next)));
            // The echoed STK payment's own event, in the same transaction as its change.
            let mut stored = next.clone();
            stored.version += 1;
            if let Some(event) = crate::services::payments::flow::payment_event(&echoed, &stored, now) {
                writes.push((Slot::Event, crate::events::repo::insert(&event)));
            }
            link.stk_payment_id = Some(echoed.id.clone());
            link.updated_at = now;
            payment = payment.linked_to_stk(&echoed.id, now);
            echo_of = Some(echoed.id);
        }
    }
    let (matched, expected_writes) = match_expected(table.as_ref(), &payment, now).await?;
    payment.matched = matched;
    payment.updated_at = now;
    writes.extend(expected_writes.into_iter().map(|w| (Slot::ExpectedPayment, w)));
    Ok(Settled {
        payment,
        link,
        writes,
        echo_of,
    })
}

/// The STK payment `payment` echoes by reference, and that payment with the receipt applied.
async fn echo_target(
    table: &Arc<dyn Table>,
    payment: &C2bPayment,
    window: EchoWindow,
    now: DateTime<Utc>,
) -> Result<Option<(Payment, Payment)>, StoreError> {
    let (Some(amount), Some(reference)) = (payment.amount, payment.bill_ref_number.as_deref()) else {
        return Ok(None);
    };
    if reference.trim().is_empty() {
        return Ok(None);
    }
    let paid_at = payment.trans_time_at.unwrap_or(payment.received_at);
    let repo = PaymentRepo::new(table.clone());
    let candidates = repo
        .echo_candidates(
            payment.shortcode.as_str(),
            reference,
            paid_at - window.before,
            paid_at + window.after,
            25,
        )
        .await?;
    let plausible: Vec<Payment> = candidates
        .into_iter()
        .filter(|p| p.amount == amount && p.mpesa_receipt.is_none())
        .collect();
    if plausible.len() > 1 {
        metrics::count("C2bEchoCandidates", plausible.len() as u64, &[("Match", "several")]);
    }
    // The one created last before the receipt time (candidates are oldest first).
    let Some(echoed) = plausible
        .iter()
        .rev()
        .find(|p| p.created_at <= paid_at)
        .or(plausible.first())
        .cloned()
    else {
        return Ok(None);
    };
    let event = PaymentEvent::Final {
        outcome: StkFinalResult {
            checkout_request_id: echoed.checkout_request_id.clone().unwrap_or_default(),
            result: DarajaResult {
                code: ResultCode::new("0"),
                description: "Confirmed by its C2B confirmation (verified with Daraja)".into(),
            },
            receipt: Some(payment.trans_id.clone()),
            amount: Some(amount),
        },
        source: Source::C2bEcho,
    };
    match decide(&echoed, &event, now) {
        Decision::Apply(next) => Ok(Some((echoed, *next))),
        Decision::Ignore(why) => {
            tracing::warn!(payment_id = %echoed.id, reason = why.code(), "C2B echo not applied to the STK payment it matches");
            Ok(None)
        }
    }
}

/// What `payment` does to the expected payment of its account number, and the writes for it.
pub async fn match_expected(
    table: &dyn Table,
    payment: &C2bPayment,
    now: DateTime<Utc>,
) -> Result<(MatchOutcome, Vec<Write>), StoreError> {
    let (amount, account) = match (payment.amount, &payment.account_number) {
        (Some(amount), Some(account)) if payment.anomalies.is_empty() => (amount, account),
        (Some(_), None) if payment.anomalies.is_empty() => {
            return Ok((
                MatchOutcome::Unmatched {
                    reason: UnmatchedReason::NoAccountNumber,
                    expected_payment_id: None,
                },
                Vec::new(),
            ))
        }
        _ => {
            return Ok((
                MatchOutcome::Unmatched {
                    reason: UnmatchedReason::AmountAnomaly,
                    expected_payment_id: None,
                },
                Vec::new(),
            ))
        }
    };
    let Some(claim) = repo::get_claim(table, &payment.shortcode, account).await? else {
        return Ok((
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::UnknownAccount,
                expected_payment_id: None,
            },
            Vec::new(),
        ));
    };
    let applied = AppliedPayment {
        c2b_payment_id: payment.id.clone(),
        trans_id: payment.trans_id.clone(),
        amount,
        received_at: payment.received_at,
    };
    match claim.expected.apply(applied, now) {
        Ok(next) => Ok((
            MatchOutcome::Matched {
                expected_payment_id: next.id.clone(),
                resulting_status: next.status,
                amount_paid_after: next.amount_paid,
            },
            repo::update_expected(&next, &claim).to_vec(),
        )),
        Err(NotApplied::Expired) => Ok((
            MatchOutcome::Unmatched {
                reason: UnmatchedReason::Expired,
                expected_payment_id: Some(claim.expected.id.clone()),
            },
            Vec::new(),
        )),
    }
}
