//! Every inbound callback, kept whatever happened to it.
//!
//! - item `CB#<queue message id>`: the record; written once (a redelivered message finds it);
//! - `gsi1` `CB#RES#<resource id>` / `<received>#<msg>`: the callbacks of one payment or payout;
//! - `gsi2` `CB#ANOMALY#<yyyy-mm-dd>` / `<received>#<msg>`: anomalies of a day, for operators.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time_sort_key;
use crate::store::{Condition, Index, Item, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Changed the resource's state.
    Applied,
    /// A repeat of something already applied.
    Duplicate,
    /// Valid, but does not apply in the resource's state (no change, not suspicious).
    Ignored,
    /// Not applied because it does not match what we know: flagged for operators.
    Anomaly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub message_id: String,
    pub kind: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub request_id: String,
    /// The payment/payout/C2B resource it names, when the token was genuine.
    pub resource_id: Option<String>,
    pub verdict: Verdict,
    /// Why: `applied`, `duplicate`, `invalid_token`, `amount_mismatch`, `malformed`, ...
    pub reason: String,
    /// The body exactly as received (may hold personal data: the table is encrypted at rest).
    pub body: String,
}

pub fn key(message_id: &str) -> String {
    format!("CB#{message_id}")
}

/// Writes the record once; a second delivery of the same message fails this condition.
pub fn insert(record: &CallbackRecord) -> Write {
    let doc = serde_json::to_string(record).unwrap_or_default();
    let sort = time_sort_key(record.received_at, &record.message_id);
    let mut item = Item::new(key(&record.message_id), 1, doc)
        .with_attr("verdict", serde_plain(&record.verdict))
        .with_attr("kind", record.kind.clone());
    if let Some(resource) = &record.resource_id {
        item = item.with_index(Index::Gsi1, format!("CB#RES#{resource}"), sort.clone());
    }
    if record.verdict == Verdict::Anomaly {
        item = item.with_index(
            Index::Gsi2,
            format!("CB#ANOMALY#{}", record.received_at.format("%Y-%m-%d")),
            sort,
        );
    }
    Write::Put {
        item,
        condition: Condition::Absent { now_epoch: 0 },
    }
}

fn serde_plain(verdict: &Verdict) -> String {
    serde_json::to_value(verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub fn from_item(item: &Item) -> Option<CallbackRecord> {
    serde_json::from_str(&item.doc).ok()
}
