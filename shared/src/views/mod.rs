//! What the API and the event stream show of a resource: its public view. Phone numbers are
//! always masked. Views are built from domain types and know nothing of HTTP, so use cases and
//! events can carry them as well as the handlers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::domain::{DarajaResult, FailureReason, HistoryEntry, Metadata, Payment, PaymentStatus, Source};

#[derive(Debug, Clone, Serialize)]
pub struct ResultView {
    pub code: String,
    pub description: String,
}

impl From<&DarajaResult> for ResultView {
    fn from(r: &DarajaResult) -> Self {
        ResultView {
            code: r.code.as_str().to_owned(),
            description: r.description.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub status: PaymentStatus,
    pub at: String,
    pub source: Source,
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&HistoryEntry> for HistoryView {
    fn from(h: &HistoryEntry) -> Self {
        HistoryView {
            status: h.status,
            at: timestamp(h.at),
            source: h.source,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    pub id: String,
    pub object: &'static str,
    pub status: PaymentStatus,
    pub amount: u64,
    pub currency: &'static str,
    pub phone: String,
    pub reference: String,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub checkout_request_id: Option<String>,
    pub mpesa_receipt: Option<String>,
    pub result: Option<ResultView>,
    pub failure_reason: Option<FailureReason>,
    pub late: bool,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<HistoryView>,
    /// The hosted checkout session this payment is an attempt of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_session: Option<String>,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        PaymentView {
            id: p.id.to_string(),
            object: "payment",
            status: p.status,
            amount: p.amount.shillings(),
            currency: "KES",
            phone: p.phone.masked(),
            reference: p.reference.to_string(),
            description: p.description.as_ref().map(ToString::to_string),
            metadata: p.metadata.clone(),
            checkout_request_id: p.checkout_request_id.clone(),
            mpesa_receipt: p.mpesa_receipt.clone(),
            result: p.result.as_ref().map(ResultView::from),
            failure_reason: p.failure_reason,
            late: p.late,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            history: p.history.iter().map(HistoryView::from).collect(),
            checkout_session: p.checkout_session.as_ref().map(ToString::to_string),
        }
    }
}

/// The list envelope shared by every collection endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ListView<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

pub mod c2b;
pub mod checkout;
pub mod payout;
pub mod webhooks;

pub use payout::PayoutView;
