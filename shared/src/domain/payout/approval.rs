//! Two-person approval: payouts above the threshold wait for a principal other than their
//! creator.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Payout;
use crate::domain::client::ClientId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub decision: ApprovalDecision,
    pub by: ClientId,
    pub at: DateTime<Utc>,
}

impl Payout {
    /// The principal who created it (two-person approval: never its approver).
    pub fn creator(&self) -> &ClientId {
        self.created_by.as_ref().unwrap_or(&self.owner)
    }
}
