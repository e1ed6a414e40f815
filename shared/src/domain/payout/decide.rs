//! The payout state machine: [`decide`] is the only place transitions are chosen (pure, returning
//! apply or ignore with a reason).

use chrono::{DateTime, Utc};

use super::result::decide_result;
use super::{Approval, ApprovalDecision, B2cFinalResult, Payout, PayoutSource, PayoutStatus};
use crate::domain::amount::Amount;
use crate::domain::b2c_outcome::PayoutFailureReason;
use crate::domain::client::ClientId;
use crate::domain::payment::DarajaResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutEvent {
    Approve {
        by: ClientId,
    },
    Reject {
        by: ClientId,
    },
    /// Daraja accepted the submission.
    DarajaAccepted {
        conversation_id: String,
    },
    /// Daraja refused the submission as a duplicate OriginatorConversationID: an earlier
    /// submission of this payout was accepted (its answer was lost).
    AlreadySubmitted,
    /// Daraja refused the submission definitively; nothing was sent.
    DarajaRefused {
        result: DarajaResult,
    },
    /// The final result POSTed to the ResultURL.
    Result(B2cFinalResult),
    /// Daraja's queue timeout POSTed to the QueueTimeOutURL: money may have moved.
    QueueTimeout,
    /// The sweeper found a `sent` payout with no result past its wait.
    NoResult,
    /// Transaction Status: the payout is `Completed`.
    StatusCompleted {
        result: DarajaResult,
        receipt: Option<String>,
        amount: Option<Amount>,
        recipient_name: Option<String>,
    },
    /// Transaction Status: Daraja does not know it (2032).
    StatusNotFound {
        result: DarajaResult,
    },
    /// Transaction Status: declined, cancelled or expired (money did not move).
    StatusDeclined {
        result: DarajaResult,
    },
}

/// Why an event changed nothing. `is_anomaly` separates harmless repeats from things to alert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutIgnored {
    Duplicate,
    NotApplicable {
        status: PayoutStatus,
    },
    /// A result that contradicts the payout's settled state (e.g. money moved after `failed`).
    ConflictingResult {
        status: PayoutStatus,
        reported: String,
    },
    /// The result names another OriginatorConversationID or ConversationID.
    ConversationMismatch {
        expected: String,
        reported: String,
    },
    /// A success whose amount differs from the payout's (or is missing).
    AmountMismatch {
        expected: Amount,
        reported: Option<Amount>,
    },
    /// A success result without a receipt.
    MissingReceipt,
    /// The creator tried to approve or reject its own payout.
    SelfApproval,
}

impl PayoutIgnored {
    pub fn is_anomaly(&self) -> bool {
        matches!(
            self,
            PayoutIgnored::ConflictingResult { .. }
                | PayoutIgnored::ConversationMismatch { .. }
                | PayoutIgnored::AmountMismatch { .. }
                | PayoutIgnored::MissingReceipt
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            PayoutIgnored::Duplicate => "duplicate",
            PayoutIgnored::NotApplicable { .. } => "not_applicable",
            PayoutIgnored::ConflictingResult { .. } => "conflicting_result",
            PayoutIgnored::ConversationMismatch { .. } => "conversation_mismatch",
            PayoutIgnored::AmountMismatch { .. } => "amount_mismatch",
            PayoutIgnored::MissingReceipt => "missing_receipt",
            PayoutIgnored::SelfApproval => "self_approval",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutDecision {
    /// Store this (a transition, or new facts without one, e.g. a receipt or a "not found" answer).
    Apply(Box<Payout>),
    Ignore(PayoutIgnored),
}

pub(super) fn apply(next: Payout) -> PayoutDecision {
    PayoutDecision::Apply(Box::new(next))
}

pub(super) fn ignore(why: PayoutIgnored) -> PayoutDecision {
    PayoutDecision::Ignore(why)
}

pub(super) fn not_applicable(payout: &Payout) -> PayoutDecision {
    ignore(PayoutIgnored::NotApplicable { status: payout.status })
}

/// The payout state machine: what `event` does to `payout` at `now`.
pub fn decide(payout: &Payout, event: &PayoutEvent, now: DateTime<Utc>) -> PayoutDecision {
    use PayoutStatus::*;
    match event {
        PayoutEvent::Approve { by } | PayoutEvent::Reject { by } => {
            if payout.status != AwaitingApproval {
                return not_applicable(payout);
            }
            if by == payout.creator() {
                return ignore(PayoutIgnored::SelfApproval);
            }
            let approved = matches!(event, PayoutEvent::Approve { .. });
            let (status, decision) = if approved {
                (Pending, ApprovalDecision::Approved)
            } else {
                (Rejected, ApprovalDecision::Rejected)
            };
            let mut next = payout.moved_to(status, PayoutSource::Approval, Some(by.clone()), now);
            next.approval = Some(Approval {
                decision,
                by: by.clone(),
                at: now,
            });
            if approved {
                next.next_check_at = Some(now + payout.timings.requeue());
            }
            apply(next)
        }
        PayoutEvent::DarajaAccepted { conversation_id } => match payout.status {
            Pending => {
                let mut next = payout.submitted(now);
                next.conversation_id = Some(conversation_id.clone());
                apply(next)
            }
            // A concurrent duplicate submission recorded `sent` first: keep the id it lacked.
            Sent | Unknown | Completed if payout.conversation_id.is_none() => {
                let mut next = payout.clone();
                next.conversation_id = Some(conversation_id.clone());
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::AlreadySubmitted => match payout.status {
            Pending => apply(payout.submitted(now)),
            _ => not_applicable(payout),
        },
        PayoutEvent::DarajaRefused { result } => match payout.status {
            // An earlier submission may have reached Daraja (its answer was lost, or we crashed),
            // so it may have been paid: a refusal of this one proves nothing about that one.
            // Transaction Status decides, never a guess.
            Pending if payout.earlier_attempt_may_have_paid() => {
                let mut next = payout.became_unknown(PayoutSource::Daraja, now);
                next.result = Some(result.clone());
                apply(next)
            }
            Pending => {
                let mut next = payout.moved_to(Failed, PayoutSource::Daraja, None, now);
                next.result = Some(result.clone());
                next.failure_reason = Some(PayoutFailureReason::DarajaRejected);
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::QueueTimeout => match payout.status {
            Pending | Sent => apply(payout.became_unknown(PayoutSource::Callback, now)),
            Unknown => ignore(PayoutIgnored::Duplicate),
            _ => not_applicable(payout),
        },
        PayoutEvent::NoResult => match payout.status {
            Sent => apply(payout.became_unknown(PayoutSource::Reconciliation, now)),
            _ => not_applicable(payout),
        },
        PayoutEvent::Result(reported) => decide_result(payout, reported, now),
        PayoutEvent::StatusCompleted {
            result,
            receipt,
            amount,
            recipient_name,
        } => {
            if let Some(reported) = amount {
                if *reported != payout.amount {
                    return ignore(PayoutIgnored::AmountMismatch {
                        expected: payout.amount,
                        reported: Some(*reported),
                    });
                }
            }
            match payout.status {
                Pending | Sent | Unknown => {
                    let mut next = payout.moved_to(Completed, PayoutSource::Reconciliation, None, now);
                    next.result = Some(result.clone());
                    next.mpesa_receipt = receipt.clone();
                    next.recipient_name = recipient_name.clone().or_else(|| payout.recipient_name.clone());
                    next.failure_reason = None;
                    apply(next)
                }
                Completed => same_success(payout, receipt.as_deref(), recipient_name.as_deref(), result, now),
                // Failed by "not found" (older releases did that): the money did move after all.
                Failed if payout.failure_reason == Some(PayoutFailureReason::NotFoundAtDaraja) => {
                    let mut next = payout.moved_to(Completed, PayoutSource::Reconciliation, None, now);
                    next.result = Some(result.clone());
                    next.mpesa_receipt = receipt.clone();
                    next.recipient_name = recipient_name.clone().or_else(|| payout.recipient_name.clone());
                    next.failure_reason = None;
                    apply(next)
                }
                status => ignore(PayoutIgnored::ConflictingResult {
                    status,
                    reported: result.code.to_string(),
                }),
            }
        }
        // Recorded, never a failure: Daraja may not search by the identifier we could give it,
        // and a payout it accepted may still have paid. Past the deadline operators are alarmed.
        PayoutEvent::StatusNotFound { result } => match payout.status {
            Sent | Unknown => {
                let mut next = payout.clone();
                next.not_found_answers.push(now);
                next.result = Some(result.clone());
                apply(next)
            }
            _ => not_applicable(payout),
        },
        PayoutEvent::StatusDeclined { result } => match payout.status {
            Sent | Unknown => {
                let mut next = payout.moved_to(Failed, PayoutSource::Reconciliation, None, now);
                next.result = Some(result.clone());
                next.failure_reason = Some(PayoutFailureReason::DeclinedAtDaraja);
                apply(next)
            }
            Failed => ignore(PayoutIgnored::Duplicate),
            Completed => ignore(PayoutIgnored::ConflictingResult {
                status: Completed,
                reported: result.code.to_string(),
            }),
            _ => not_applicable(payout),
        },
    }
}

/// A success for a payout already `completed`: a duplicate, the receipt it lacked, or a conflict.
pub(super) fn same_success(
    payout: &Payout,
    receipt: Option<&str>,
    recipient_name: Option<&str>,
    result: &DarajaResult,
    now: DateTime<Utc>,
) -> PayoutDecision {
    match (payout.mpesa_receipt.as_deref(), receipt) {
        (None, Some(receipt)) => {
            let mut next = payout.clone();
            next.mpesa_receipt = Some(receipt.to_owned());
            if next.recipient_name.is_none() {
                next.recipient_name = recipient_name.map(str::to_owned);
            }
            next.updated_at = now;
            apply(next)
        }
        (_, None) => ignore(PayoutIgnored::Duplicate),
        (Some(ours), Some(theirs)) if ours == theirs => ignore(PayoutIgnored::Duplicate),
        _ => ignore(PayoutIgnored::ConflictingResult {
            status: PayoutStatus::Completed,
            reported: result.code.to_string(),
        }),
    }
}
