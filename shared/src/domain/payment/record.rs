//! The payment record: what a merchant asked for, what Daraja answered, and its timings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{HistoryEntry, PaymentStatus, Source};
use crate::domain::amount::Amount;
use crate::domain::checkout_session::CheckoutSessionId;
use crate::domain::client::ClientId;
use crate::domain::ids::PaymentId;
use crate::domain::msisdn::Msisdn;
use crate::domain::result_code::ResultCode;
use crate::domain::stk_outcome::FailureReason;
use crate::domain::text::{Description, Metadata, Reference};

/// Code and description exactly as Daraja sent them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DarajaResult {
    pub code: ResultCode,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub owner: ClientId,
    pub status: PaymentStatus,
    pub amount: Amount,
    pub phone: Msisdn,
    pub reference: Reference,
    pub description: Option<Description>,
    #[serde(default)]
    pub metadata: Metadata,
    /// The business short code charged, so a callback for another shortcode is recognised.
    pub shortcode: String,
    pub checkout_request_id: Option<String>,
    pub merchant_request_id: Option<String>,
    pub mpesa_receipt: Option<String>,
    pub result: Option<DarajaResult>,
    pub failure_reason: Option<FailureReason>,
    #[serde(default)]
    pub late: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<HistoryEntry>,
    /// After this instant with no final answer the payment becomes `timeout`.
    pub deadline_at: DateTime<Utc>,
    /// When reconciliation should next look at it; present only while open.
    pub next_check_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reconcile_attempts: u32,
    /// The hosted checkout session this payment is an attempt of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_session: Option<CheckoutSessionId>,
    /// Optimistic-concurrency version; storage writes only "from the version I read".
    #[serde(default)]
    pub version: u64,
}

/// What a merchant asked for, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub amount: Amount,
    pub phone: Msisdn,
    pub reference: Reference,
    pub description: Option<Description>,
    pub metadata: Metadata,
}

/// Timing rules for open payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTimings {
    /// How long after creation reconciliation first asks Daraja.
    pub first_check_after: chrono::Duration,
    /// How long after creation an open payment becomes `timeout`.
    pub deadline_after: chrono::Duration,
}

impl Default for PaymentTimings {
    fn default() -> Self {
        PaymentTimings {
            first_check_after: chrono::Duration::seconds(75),
            deadline_after: chrono::Duration::seconds(300),
        }
    }
}

impl Payment {
    pub fn create(
        id: PaymentId,
        owner: ClientId,
        shortcode: String,
        request: NewPayment,
        now: DateTime<Utc>,
        timings: PaymentTimings,
    ) -> Payment {
        Payment {
            id,
            owner,
            status: PaymentStatus::Pending,
            amount: request.amount,
            phone: request.phone,
            reference: request.reference,
            description: request.description,
            metadata: request.metadata,
            shortcode,
            checkout_request_id: None,
            merchant_request_id: None,
            mpesa_receipt: None,
            result: None,
            failure_reason: None,
            late: false,
            created_at: now,
            updated_at: now,
            history: vec![HistoryEntry {
                status: PaymentStatus::Pending,
                at: now,
                source: Source::Api,
            }],
            deadline_at: now + timings.deadline_after,
            next_check_at: Some(now + timings.first_check_after),
            reconcile_attempts: 0,
            checkout_session: None,
            version: 0,
        }
    }

    /// Reconciliation asked and learned nothing final (or the question failed): look again
    /// `after` from `now`, one more attempt counted (the sweep's backoff doubles per attempt).
    /// Before the deadline never later than the deadline (so it is timed out on time); at or past
    /// it, at `now + after` itself, so a payment that cannot be asked about moves to the back of
    /// the queue instead of staying first in it. Not a transition: status, history and
    /// `updated_at` stay as they are.
    pub fn check_again(&self, now: DateTime<Utc>, after: chrono::Duration) -> Payment {
        let mut next = self.not_before(now, after);
        if self.status.is_open() {
            next.reconcile_attempts = self.reconcile_attempts.saturating_add(1);
        }
        next
    }

    /// A sweep claims the payment (other sweeps see it as not due for `lease`), or hands it back
    /// unasked: the next check moves, no attempt is counted (asking nobody is not an attempt,
    /// so a sweep that stopped early does not lengthen this payment's backoff).
    pub fn not_before(&self, now: DateTime<Utc>, after: chrono::Duration) -> Payment {
        let mut next = self.clone();
        if self.status.is_open() {
            let at = now + after;
            next.next_check_at = Some(if now < self.deadline_at {
                at.min(self.deadline_at)
            } else {
                at
            });
        }
        next
    }

    /// Whether a verified success still completes this payment, flagged `late`: it was closed for
    /// a transport reason (no final answer in time, or the push provably not delivered), never by
    /// a final answer of Daraja's.
    pub fn closed_for_transport_reason(&self) -> bool {
        match self.status {
            PaymentStatus::Timeout => true,
            PaymentStatus::Failed => self.failure_reason == Some(FailureReason::DarajaUnavailable),
            _ => false,
        }
    }

    pub(super) fn moved_to(&self, status: PaymentStatus, source: Source, now: DateTime<Utc>) -> Payment {
        let mut next = self.clone();
        next.status = status;
        next.updated_at = now;
        next.history.push(HistoryEntry {
            status,
            at: now,
            source,
        });
        if !status.is_open() {
            next.next_check_at = None;
        }
        next
    }
}
