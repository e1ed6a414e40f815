//! Idempotency records: one per (client, operation, key), claimed by a single conditional write
//! in the same transaction as the resource it creates, so exactly one request runs.
//!
//! Record shape follows AWS Lambda Powertools: status in-progress/completed, a hash of the
//! request, the stored first response, an in-progress expiry (so a crashed function does not
//! wedge a key) and a 24 h TTL.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::ClientId;
use crate::store::{Condition, Item, Write};

/// The `Idempotency-Key` header value: 1-255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Option<IdempotencyKey> {
        let ok = !value.is_empty() && value.len() <= 255 && value.bytes().all(|b| (0x20..=0x7e).contains(&b));
        ok.then(|| IdempotencyKey(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which API operation a key belongs to; keys are scoped per caller and operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreatePayment,
    CreatePayout,
    CreateExpectedPayment,
    RegisterC2bUrls,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::CreatePayment => "payment",
            Operation::CreatePayout => "payout",
            Operation::CreateExpectedPayment => "expected-payment",
            Operation::RegisterC2bUrls => "c2b-registration",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    InProgress { locked_until: DateTime<Utc> },
    Completed { status: u16, body: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// The resource the first request created (payment id, payout id, ...).
    pub resource_id: String,
    pub state: RecordState,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub version: u64,
}

pub const RETENTION: Duration = Duration::hours(24);

pub fn record_key(client: &ClientId, operation: Operation, key: &IdempotencyKey) -> String {
    // The client id cannot contain '#'; the key may, but it is last so the split is unambiguous.
    format!("IDEM#{}#{}#{}", client.as_str(), operation.label(), key.as_str())
}

/// SHA-256 of the canonical form of the parsed request: the same request typed differently
/// ("0712 345 678" vs "254712345678") is the same request.
pub fn request_hash(canonical: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_item(key: &str, record: &IdempotencyRecord, version: u64) -> Item {
    let doc = serde_json::to_string(record).unwrap_or_default();
    Item::new(key, version, doc).expiring_at((record.created_at + RETENTION).timestamp())
}

/// The claim: succeeds only if no live record exists under the key.
pub fn claim(key: &str, request_hash: String, resource_id: &str, now: DateTime<Utc>, lock_for: Duration) -> Write {
    let record = IdempotencyRecord {
        request_hash,
        resource_id: resource_id.to_owned(),
        state: RecordState::InProgress {
            locked_until: now + lock_for,
        },
        created_at: now,
        version: 1,
    };
    Write::Put {
        item: to_item(key, &record, 1),
        condition: Condition::Absent {
            now_epoch: now.timestamp(),
        },
    }
}

/// Stores the first response, replacing the in-progress record read at `record.version`.
pub fn complete(key: &str, record: &IdempotencyRecord, status: u16, body: String) -> Write {
    let mut done = record.clone();
    done.state = RecordState::Completed { status, body };
    Write::Put {
        item: to_item(key, &done, record.version + 1),
        condition: Condition::VersionIs(record.version),
    }
}

pub fn from_item(item: &Item) -> Option<IdempotencyRecord> {
    let mut record: IdempotencyRecord = serde_json::from_str(&item.doc).ok()?;
    record.version = item.version;
    Some(record)
}

/// What to do with a request whose key already has a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Same request, finished: answer with the stored response.
    Replay { status: u16, body: String },
    /// Same request, still running elsewhere.
    InProgress,
    /// Same request, but the runner died (lock expired): finish it from the stored resource.
    Abandoned,
    /// Different request under the same key.
    Mismatch,
}

pub fn classify(record: &IdempotencyRecord, request_hash: &str, now: DateTime<Utc>) -> Existing {
    if record.request_hash != request_hash {
        return Existing::Mismatch;
    }
    match &record.state {
        RecordState::Completed { status, body } => Existing::Replay {
            status: *status,
            body: body.clone(),
        },
        RecordState::InProgress { locked_until } if *locked_until > now => Existing::InProgress,
        RecordState::InProgress { .. } => Existing::Abandoned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(IdempotencyKey::parse("order-1234").is_some());
        assert!(IdempotencyKey::parse("with space ok").is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("tab\there").is_none());
        assert!(IdempotencyKey::parse("ключ").is_none());
    }

    #[test]
    fn classification() {
        let now = Utc::now();
        let mut r = IdempotencyRecord {
            request_hash: "h".into(),
            resource_id: "pay_1".into(),
            state: RecordState::InProgress {
                locked_until: now + Duration::seconds(10),
            },
            created_at: now,
            version: 1,
        };
        assert_eq!(classify(&r, "other", now), Existing::Mismatch);
        assert_eq!(classify(&r, "h", now), Existing::InProgress);
        assert_eq!(classify(&r, "h", now + Duration::seconds(11)), Existing::Abandoned);
        r.state = RecordState::Completed {
            status: 202,
            body: "{}".into(),
        };
        assert_eq!(
            classify(&r, "h", now),
            Existing::Replay {
                status: 202,
                body: "{}".into()
            }
        );
    }

    #[test]
    fn hashes_are_stable_and_distinct() {
        let a = request_hash(&serde_json::json!({"amount": 1, "phone": "254712345678"}));
        let b = request_hash(&serde_json::json!({"phone": "254712345678", "amount": 1}));
        let c = request_hash(&serde_json::json!({"amount": 2, "phone": "254712345678"}));
        assert_eq!(a, b, "object keys are sorted by serde_json's map");
        assert_ne!(a, c);
    }
}
