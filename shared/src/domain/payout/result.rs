//! Interpreting a B2C result Safaricom POSTed to our ResultURL: untrusted input, checked against
//! the payout before its outcome is applied.

use chrono::{DateTime, Utc};

use super::decide::{apply, ignore, not_applicable, same_success};
use super::{Payout, PayoutDecision, PayoutIgnored, PayoutSource, PayoutStatus};
use crate::domain::amount::Amount;
use crate::domain::b2c_outcome::{b2c_outcome, B2cOutcome, PayoutFailureReason};
use crate::domain::payment::DarajaResult;

/// A B2C result as Safaricom POSTed it to our ResultURL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2cFinalResult {
    pub originator_conversation_id: Option<String>,
    pub conversation_id: Option<String>,
    pub result: DarajaResult,
    pub receipt: Option<String>,
    /// `None` when absent or not a whole amount (it then cannot match ours).
    pub amount: Option<Amount>,
    pub recipient_name: Option<String>,
}

pub(super) fn decide_result(payout: &Payout, reported: &B2cFinalResult, now: DateTime<Utc>) -> PayoutDecision {
    use PayoutStatus::*;
    if let Some(ocid) = &reported.originator_conversation_id {
        if ocid != payout.originator_conversation_id() {
            return ignore(PayoutIgnored::ConversationMismatch {
                expected: payout.originator_conversation_id().to_owned(),
                reported: ocid.clone(),
            });
        }
    }
    if let (Some(ours), Some(theirs)) = (&payout.conversation_id, &reported.conversation_id) {
        if ours != theirs {
            return ignore(PayoutIgnored::ConversationMismatch {
                expected: ours.clone(),
                reported: theirs.clone(),
            });
        }
    }
    let outcome = b2c_outcome(&reported.result.code);
    if outcome == B2cOutcome::Completed {
        // A result is untrusted input: a success must carry our amount and a receipt.
        if reported.amount != Some(payout.amount) {
            return ignore(PayoutIgnored::AmountMismatch {
                expected: payout.amount,
                reported: reported.amount,
            });
        }
        if reported.receipt.as_deref().is_none_or(str::is_empty) {
            return ignore(PayoutIgnored::MissingReceipt);
        }
    }
    let conflicting = || {
        ignore(PayoutIgnored::ConflictingResult {
            status: payout.status,
            reported: reported.result.code.to_string(),
        })
    };
    let revived = payout.status == Failed && payout.failure_reason == Some(PayoutFailureReason::NotFoundAtDaraja);
    match (payout.status, outcome) {
        // Not a code we know: money may have moved. Transaction Status decides.
        (Unknown, B2cOutcome::Unrecognised) => {
            let same = payout.result.as_ref().map(|r| &r.code) == Some(&reported.result.code);
            return if same {
                ignore(PayoutIgnored::Duplicate)
            } else {
                let mut next = payout.clone();
                next.result = Some(reported.result.clone());
                next.updated_at = now;
                apply(next)
            };
        }
        (Pending | Sent | Unknown, _) => {}
        // Failed by "not found" (older releases did that): a genuine success shows money moved.
        (Failed, B2cOutcome::Completed) if revived => {}
        (Completed, B2cOutcome::Completed) => {
            return same_success(
                payout,
                reported.receipt.as_deref(),
                reported.recipient_name.as_deref(),
                &reported.result,
                now,
            )
        }
        (Failed, B2cOutcome::Failed(_)) => {
            let same = payout.result.as_ref().map(|r| &r.code) == Some(&reported.result.code);
            return if same {
                ignore(PayoutIgnored::Duplicate)
            } else {
                not_applicable(payout)
            };
        }
        _ => return conflicting(),
    }
    let mut next = match outcome {
        B2cOutcome::Completed => {
            let mut next = payout.moved_to(Completed, PayoutSource::Callback, None, now);
            next.mpesa_receipt = reported.receipt.clone();
            next.recipient_name = reported.recipient_name.clone();
            next.failure_reason = None;
            next
        }
        B2cOutcome::Failed(reason) => {
            let mut next = payout.moved_to(Failed, PayoutSource::Callback, None, now);
            next.failure_reason = Some(reason);
            next
        }
        B2cOutcome::Unrecognised => payout.became_unknown(PayoutSource::Callback, now),
    };
    next.result = Some(reported.result.clone());
    if next.conversation_id.is_none() {
        next.conversation_id = reported.conversation_id.clone();
    }
    apply(next)
}
