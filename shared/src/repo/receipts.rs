//! The receipt registry: which STK payment and which C2B confirmation carry one M-Pesa receipt.
//!
//! - item `RCPT#<receipt>`: a [`ReceiptLink`]. Both paths write it with a condition (absent, or
//!   the version they read) in the same transaction as their own write: an STK completion that
//!   carries the receipt, and the C2B confirmation of that receipt. Whichever comes second sees
//!   the first, so an STK payment to a paybill with C2B URLs is linked to its C2B echo in either
//!   arrival order, and a race between the two makes one transaction fail and re-decide.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{C2bPaymentId, PaymentId};
use crate::store::{Condition, Item, StoreError, Table, Write};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLink {
    pub receipt: String,
    pub stk_payment_id: Option<PaymentId>,
    pub c2b_payment_id: Option<C2bPaymentId>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

pub fn key(receipt: &str) -> String {
    format!("RCPT#{receipt}")
}

pub async fn get(table: &dyn Table, receipt: &str) -> Result<Option<ReceiptLink>, StoreError> {
    let Some(item) = table.get(&key(receipt)).await? else {
        return Ok(None);
    };
    let mut link: ReceiptLink =
        serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(format!("receipt link {}: {e}", item.key)))?;
    link.version = item.version;
    Ok(Some(link))
}

/// Writes `link` over the version it was read at (`link.version`, 0 = not there yet).
pub fn put(link: &ReceiptLink) -> Write {
    let doc = serde_json::to_string(link).unwrap_or_default();
    let item = Item::new(key(&link.receipt), link.version + 1, doc);
    let condition = match link.version {
        0 => Condition::Absent { now_epoch: 0 },
        v => Condition::VersionIs(v),
    };
    Write::Put { item, condition }
}
