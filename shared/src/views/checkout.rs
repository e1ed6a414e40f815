//! What the API (and the event stream) shows of a hosted checkout session. Phones are masked.

use serde::Serialize;

use super::timestamp;
use crate::domain::checkout_session::{Attempt, AttemptEnd, CheckoutSession, ClosedBy, SessionStatus};
use crate::domain::{FailureReason, Metadata};

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub number: u32,
    pub payment_id: String,
    pub phone: String,
    /// `open`, `completed` or `failed`.
    pub status: &'static str,
    pub failure_reason: Option<FailureReason>,
    pub mpesa_receipt: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

impl From<&Attempt> for AttemptView {
    fn from(a: &Attempt) -> Self {
        let (status, failure_reason, mpesa_receipt) = match &a.end {
            None => ("open", None, None),
            Some(AttemptEnd::Completed { receipt }) => ("completed", None, receipt.clone()),
            Some(AttemptEnd::Failed { reason }) => ("failed", Some(reason.unwrap_or(FailureReason::Unknown)), None),
        };
        AttemptView {
            number: a.number,
            payment_id: a.payment_id.to_string(),
            phone: a.phone.masked(),
            status,
            failure_reason,
            mpesa_receipt,
            started_at: timestamp(a.started_at),
            ended_at: a.ended_at.map(timestamp),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckoutSessionView {
    pub id: String,
    pub object: &'static str,
    /// The page to send the customer to (or to open in the modal).
    pub url: String,
    pub status: SessionStatus,
    pub closed_by: Option<ClosedBy>,
    pub amount: u64,
    pub currency: &'static str,
    pub reference: String,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub metadata: Metadata,
    pub payment_id: Option<String>,
    pub attempts: Vec<AttemptView>,
    pub attempts_left: u32,
    pub max_attempts: u32,
    pub created_at: String,
    pub expires_at: String,
    pub updated_at: String,
}

impl From<&CheckoutSession> for CheckoutSessionView {
    fn from(s: &CheckoutSession) -> Self {
        CheckoutSessionView {
            id: s.id.to_string(),
            object: "checkout_session",
            url: s.url.clone(),
            status: s.status,
            closed_by: s.closed_by,
            amount: s.amount.shillings(),
            currency: "KES",
            reference: s.reference.to_string(),
            description: s.description.as_ref().map(ToString::to_string),
            phone: s.phone.as_ref().map(|p| p.masked()),
            success_url: s.success_url.as_str().to_owned(),
            cancel_url: s.cancel_url.as_str().to_owned(),
            metadata: s.metadata.clone(),
            payment_id: s.payment_id.as_ref().map(ToString::to_string),
            attempts: s.attempts.iter().map(AttemptView::from).collect(),
            attempts_left: if s.status == SessionStatus::Open {
                s.attempts_left()
            } else {
                0
            },
            max_attempts: s.max_attempts,
            created_at: timestamp(s.created_at),
            expires_at: timestamp(s.expires_at),
            updated_at: timestamp(s.updated_at),
        }
    }
}
