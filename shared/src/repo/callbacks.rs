//! Every inbound callback, kept whatever happened to it.
//!
//! - item `CB#<queue message id>`: the record; written once (a redelivered message finds it);
//! - `gsi1` `CB#RES#<resource id>` / `<received>#<msg>`: the callbacks of one payment or payout;
//! - `gsi2` `CB#ANOMALY#<yyyy-mm-dd>` / `<received>#<msg>`: anomalies of a day, for operators.
//!
//! Retention (DynamoDB TTL on `expires_at`), decided here so every writer (the processor, each
//! handler, the settlers' transactions) gets it:
//! - a body whose path token did not verify ([`UNAUTHENTICATED_REASONS`]) is anyone's input on an
//!   unauthenticated URL: kept [`UNAUTHENTICATED_RETENTION_DAYS`] days, and at most
//!   [`MAX_UNAUTHENTICATED_BODY_BYTES`] of it (the rest dropped, `body_truncated` set), so a
//!   flood of junk costs bounded storage and leaves on its own;
//! - every other record holds a body Safaricom sent (phone numbers, customer names): kept
//!   [`RETENTION_DAYS`] days, long enough for disputes and reconciliation with the statement,
//!   then deleted. What a payment or payout needs for good (receipt, amounts, state) lives on
//!   its own item, not here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::time_sort_key;
use crate::store::{Condition, Index, Item, Write};

/// Days a record of a callback whose token verified is kept (its raw body carries personal data).
pub const RETENTION_DAYS: i64 = 90;
/// Days a record of a body that failed its token check is kept.
pub const UNAUTHENTICATED_RETENTION_DAYS: i64 = 7;
/// Bytes of an unauthenticated body that are kept (UTF-8, cut on a character boundary).
pub const MAX_UNAUTHENTICATED_BODY_BYTES: usize = 8 * 1024;
/// Reasons that mean the body was not authenticated by its path token: a wrong or forged token
/// (`invalid_token`), a queue message our intake did not write (`undecodable_envelope`), a body
/// posted to a route of another kind (`wrong_handler`). A handler adding such a reason adds it here.
pub const UNAUTHENTICATED_REASONS: &[&str] = &["invalid_token", "undecodable_envelope", "wrong_handler"];

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
    /// The body exactly as received (may hold personal data: the table is encrypted at rest, and
    /// the record expires). For an unauthenticated body, only its first
    /// [`MAX_UNAUTHENTICATED_BODY_BYTES`].
    pub body: String,
    /// Whether `body` was cut to [`MAX_UNAUTHENTICATED_BODY_BYTES`] when stored.
    #[serde(default)]
    pub body_truncated: bool,
    /// The received body's length in bytes (set when stored; 0 on records older than this field).
    #[serde(default)]
    pub body_bytes: usize,
}

impl CallbackRecord {
    /// Whether the body came with a genuine path token (see [`UNAUTHENTICATED_REASONS`]).
    pub fn is_authenticated(&self) -> bool {
        !UNAUTHENTICATED_REASONS.contains(&self.reason.as_str())
    }

    /// When the stored record expires: its retention counted from when it was received.
    pub fn expires_at(&self) -> DateTime<Utc> {
        let days = if self.is_authenticated() {
            RETENTION_DAYS
        } else {
            UNAUTHENTICATED_RETENTION_DAYS
        };
        self.received_at + chrono::Duration::days(days)
    }

    /// The record as stored: the body's size noted, an unauthenticated body cut to its bound.
    fn for_storage(&self) -> CallbackRecord {
        let mut stored = self.clone();
        if stored.body_bytes == 0 {
            stored.body_bytes = self.body.len();
        }
        if !self.is_authenticated() && self.body.len() > MAX_UNAUTHENTICATED_BODY_BYTES {
            let mut end = MAX_UNAUTHENTICATED_BODY_BYTES;
            while !self.body.is_char_boundary(end) {
                end -= 1;
            }
            stored.body.truncate(end);
            stored.body_truncated = true;
        }
        stored
    }
}

pub fn key(message_id: &str) -> String {
    format!("CB#{message_id}")
}

/// Writes the record once; a second delivery of the same message fails this condition.
/// Its retention ([`CallbackRecord::expires_at`]) and body bound are applied here.
pub fn insert(record: &CallbackRecord) -> Write {
    let stored = record.for_storage();
    let doc = serde_json::to_string(&stored).unwrap_or_default();
    let sort = time_sort_key(record.received_at, &record.message_id);
    let mut item = Item::new(key(&record.message_id), 1, doc)
        .with_attr("verdict", serde_plain(&record.verdict))
        .with_attr("kind", record.kind.clone())
        .expiring_at(record.expires_at().timestamp());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reason: &str, body: String) -> CallbackRecord {
        let received_at = chrono::DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        CallbackRecord {
            message_id: "m-1".into(),
            kind: "stk_callback".into(),
            received_at,
            processed_at: received_at,
            source_ip: None,
            request_id: "r".into(),
            resource_id: None,
            verdict: Verdict::Anomaly,
            reason: reason.into(),
            body,
            body_truncated: false,
            body_bytes: 0,
        }
    }

    fn stored(record: &CallbackRecord) -> (Item, CallbackRecord) {
        let Write::Put { item, .. } = insert(record) else {
            panic!("a record is a Put");
        };
        let parsed = from_item(&item).expect("the stored document parses");
        (item, parsed)
    }

    #[test]
    fn bodies_that_failed_their_token_check_are_kept_a_week_and_bounded() {
        for reason in UNAUTHENTICATED_REASONS {
            let junk = record(reason, "x".repeat(200 * 1024));
            let (item, parsed) = stored(&junk);
            let days = (item.expires_at.unwrap() - junk.received_at.timestamp()) / 86_400;
            assert_eq!(days, UNAUTHENTICATED_RETENTION_DAYS, "{reason}");
            assert_eq!(parsed.body.len(), MAX_UNAUTHENTICATED_BODY_BYTES, "{reason}");
            assert!(parsed.body_truncated);
            assert_eq!(parsed.body_bytes, 200 * 1024);
            assert!(
                item.doc.len() < MAX_UNAUTHENTICATED_BODY_BYTES + 1024,
                "the item is bounded"
            );
        }
        // A cut never splits a character: 3-byte characters across the bound.
        let (_, parsed) = stored(&record("invalid_token", "€".repeat(4000)));
        assert!(parsed.body.len() <= MAX_UNAUTHENTICATED_BODY_BYTES && parsed.body.chars().all(|c| c == '€'));
        assert_eq!(parsed.body.len(), MAX_UNAUTHENTICATED_BODY_BYTES / 3 * 3);
        // A short one is kept whole, and not flagged.
        let (_, parsed) = stored(&record("invalid_token", "{}".into()));
        assert_eq!(
            (parsed.body.as_str(), parsed.body_truncated, parsed.body_bytes),
            ("{}", false, 2)
        );
    }

    #[test]
    fn genuine_callbacks_are_kept_whole_for_the_retention_period() {
        let body = format!(r#"{{"Body":{{"pad":"{}"}}}}"#, "y".repeat(20 * 1024));
        for (reason, verdict) in [
            ("applied", Verdict::Applied),
            ("duplicate", Verdict::Duplicate),
            ("amount_mismatch", Verdict::Anomaly),
            ("malformed", Verdict::Anomaly),
        ] {
            let mut genuine = record(reason, body.clone());
            genuine.verdict = verdict;
            let (item, parsed) = stored(&genuine);
            assert_eq!(
                item.expires_at,
                Some(genuine.received_at.timestamp() + RETENTION_DAYS * 86_400),
                "{reason}"
            );
            assert_eq!(parsed.body, body, "{reason}: kept whole");
            assert!(!parsed.body_truncated);
        }
    }

    #[test]
    fn records_written_before_retention_still_read() {
        let old = r#"{"message_id":"m","kind":"stk_callback","received_at":"2025-01-01T00:00:00Z",
            "processed_at":"2025-01-01T00:00:00Z","source_ip":null,"request_id":"r","resource_id":null,
            "verdict":"applied","reason":"applied","body":"{}"}"#;
        let parsed = from_item(&Item::new("CB#m", 1, old.into())).expect("an old record parses");
        assert!(!parsed.body_truncated && parsed.body_bytes == 0);
    }
}
