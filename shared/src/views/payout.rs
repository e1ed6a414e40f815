//! What the API (and the event stream) shows of a payout. The phone is masked, also inside
//! `recipient_name` (Safaricom sends `254712345678 - JANE DOE`).

use serde::Serialize;

use super::{timestamp, ResultView};
use crate::domain::msisdn::mask_phone_like;
use crate::domain::payout::{Approval, Payout, PayoutHistoryEntry};
use crate::domain::{FailureCategory, Metadata, PayoutFailureReason, PayoutKind, PayoutSource, PayoutStatus};

#[derive(Debug, Clone, Serialize)]
pub struct PayoutHistoryView {
    pub status: PayoutStatus,
    pub at: String,
    pub source: PayoutSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl From<&PayoutHistoryEntry> for PayoutHistoryView {
    fn from(h: &PayoutHistoryEntry) -> Self {
        PayoutHistoryView {
            status: h.status,
            at: timestamp(h.at),
            source: h.source,
            by: h.by.as_ref().map(ToString::to_string),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub decision: crate::domain::ApprovalDecision,
    pub by: String,
    pub at: String,
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        ApprovalView {
            decision: a.decision,
            by: a.by.to_string(),
            at: timestamp(a.at),
        }
    }
}

/// What the API shows of a payout. The phone is masked, also inside `recipient_name`
/// (Safaricom sends `254712345678 - JANE DOE`).
#[derive(Debug, Clone, Serialize)]
pub struct PayoutView {
    pub id: String,
    pub object: &'static str,
    pub status: PayoutStatus,
    pub amount: u64,
    pub currency: &'static str,
    pub phone: String,
    pub kind: PayoutKind,
    pub remarks: String,
    pub occasion: Option<String>,
    pub metadata: Metadata,
    pub conversation_id: Option<String>,
    pub originator_conversation_id: String,
    pub mpesa_receipt: Option<String>,
    pub recipient_name: Option<String>,
    pub result: Option<ResultView>,
    pub failure_reason: Option<PayoutFailureReason>,
    /// `operator` (our configuration or float: never the recipient's fault), `recipient`, `unknown`.
    pub failure_category: Option<FailureCategory>,
    pub requires_approval: bool,
    pub approval: Option<ApprovalView>,
    pub submit_attempts: u32,
    /// Who created it (the token's `sub`): never its approver.
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<PayoutHistoryView>,
}

/// Masks runs of 9+ digits (phone numbers) inside free text.
fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\u{0}')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(&if digits.len() >= 9 {
            mask_phone_like(&digits)
        } else {
            digits.clone()
        });
        digits.clear();
        if c != '\u{0}' {
            out.push(c);
        }
    }
    out
}

impl From<&Payout> for PayoutView {
    fn from(p: &Payout) -> Self {
        PayoutView {
            id: p.id.to_string(),
            object: "payout",
            status: p.status,
            amount: p.amount.shillings(),
            currency: "KES",
            phone: p.phone.masked(),
            kind: p.kind,
            remarks: p.remarks.to_string(),
            occasion: p.occasion.as_ref().map(ToString::to_string),
            metadata: p.metadata.clone(),
            conversation_id: p.conversation_id.clone(),
            originator_conversation_id: p.originator_conversation_id().to_owned(),
            mpesa_receipt: p.mpesa_receipt.clone(),
            recipient_name: p.recipient_name.as_deref().map(mask_digit_runs),
            result: p.result.as_ref().map(ResultView::from),
            failure_reason: p.failure_reason,
            failure_category: p.failure_reason.map(PayoutFailureReason::category),
            requires_approval: p.requires_approval,
            approval: p.approval.as_ref().map(ApprovalView::from),
            submit_attempts: p.submit_attempts,
            created_by: p.creator().to_string(),
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            history: p.history.iter().map(PayoutHistoryView::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_names_are_masked() {
        assert_eq!(mask_digit_runs("254712345678 - JANE DOE"), "2547****5678 - JANE DOE");
        assert_eq!(mask_digit_runs("JANE DOE"), "JANE DOE");
        assert_eq!(mask_digit_runs("600992 - Shop"), "600992 - Shop");
    }
}
