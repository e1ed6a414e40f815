//! Idempotency records: one per (client, operation, key), claimed by a single conditional write
//! in the same transaction as the resource it creates, so exactly one request runs.
//!
//! Record shape follows AWS Lambda Powertools: status in-progress/completed, a hash of the
//! request, the stored first response, an in-progress expiry (so a crashed function does not
//! wedge a key) and a 24 h TTL.
//!
//! Retention ([`Retention`]): a record normally expires 24 h after it was created. A record
//! whose resource waits for a decision (a payout awaiting approval, which may wait for days) has
//! no expiry until the decision, then expires 24 h after it: a retry with the same key on day 2
//! still finds the first payout instead of creating a second one.

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
    CreateCheckoutSession,
    /// An attempt's payment, keyed by session and attempt number (never a caller's key).
    CheckoutAttempt,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::CreatePayment => "payment",
            Operation::CreatePayout => "payout",
            Operation::CreateExpectedPayment => "expected-payment",
            Operation::RegisterC2bUrls => "c2b-registration",
            Operation::CreateCheckoutSession => "checkout-session",
            Operation::CheckoutAttempt => "checkout-attempt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    InProgress { locked_until: DateTime<Utc> },
    Completed { status: u16, body: String },
}

/// How long a record is kept (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Retention {
    /// [`RETENTION`] from the record's creation.
    #[default]
    FromCreation,
    /// No expiry: the resource awaits a decision (a payout awaiting approval).
    UntilDecided,
    /// [`RETENTION`] from the decision.
    FromDecision { decided_at: DateTime<Utc> },
}

impl Retention {
    fn is_from_creation(&self) -> bool {
        *self == Retention::FromCreation
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    /// The resource the first request created (payment id, payout id, ...).
    pub resource_id: String,
    pub state: RecordState,
    pub created_at: DateTime<Utc>,
    /// Absent in records written before retention existed: those are [`Retention::FromCreation`].
    #[serde(default, skip_serializing_if = "Retention::is_from_creation")]
    pub retention: Retention,
    #[serde(skip)]
    pub version: u64,
}

impl IdempotencyRecord {
    /// When the table may drop the record (`None`: kept until a decision).
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self.retention {
            Retention::FromCreation => Some(self.created_at + RETENTION),
            Retention::UntilDecided => None,
            Retention::FromDecision { decided_at } => Some(decided_at + RETENTION),
        }
    }
}

pub const RETENTION: Duration = Duration::hours(24);

/// Where one request's idempotency record lives and what the request hashes to: all a use case
/// needs to claim the key inside its own creation transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIdentity {
    pub record_key: String,
    pub request_hash: String,
}

impl RequestIdentity {
    /// The identity of `operation` by `client` under `key`, for a request whose canonical form
    /// (parsed values, see [`request_hash`]) is `canonical`.
    pub fn new(
        client: &ClientId,
        operation: Operation,
        key: &IdempotencyKey,
        canonical: &serde_json::Value,
    ) -> RequestIdentity {
        RequestIdentity {
            record_key: record_key(client, operation, key),
            request_hash: request_hash(canonical),
        }
    }
}

/// The first response as stored for replays: the status and body the caller was answered.
///
/// Headers are not stored, as before this type existed: a replay's headers are derived (the
/// content type from the status, and `idempotent-replayed`), and a warning such as
/// `x-checkout-warning` describes the first answer only. So every record replays the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// Renders the first response for a use case's outcome. The API edge gives it to the use case,
/// so the use case stores (in its own transaction, atomically with its state change) exactly
/// the bytes the edge answers, without knowing HTTP.
pub type Render<'a, T> = &'a (dyn Fn(&T) -> StoredResponse + Send + Sync);

/// What an idempotent use case did with the request's key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed<T> {
    /// The key was free: this request claimed it and ran; its first response is stored.
    Ran(T),
    /// The key already had a record: nothing was done (nothing created, no limit spent). The
    /// edge resolves the record: a replay, a refusal, or finishing an abandoned request.
    Taken,
}

pub fn record_key(client: &ClientId, operation: Operation, key: &IdempotencyKey) -> String {
    // The client id cannot contain '#'; the key may, but it is last so the split is unambiguous.
    format!("IDEM#{}#{}#{}", client.as_str(), operation.label(), key.as_str())
}

/// SHA-256 of the canonical form of the parsed request: the same request typed differently
/// ("0712 345 678" vs "254712345678") is the same request.
pub fn request_hash(canonical: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    hex::encode(digest)
}

fn to_item(key: &str, record: &IdempotencyRecord, version: u64) -> Item {
    let doc = serde_json::to_string(record).unwrap_or_default();
    let item = Item::new(key, version, doc);
    match record.expires_at() {
        Some(at) => item.expiring_at(at.timestamp()),
        None => item,
    }
}

/// The claim: succeeds only if no live record exists under the key; kept [`Retention::FromCreation`].
pub fn claim(key: &str, request_hash: String, resource_id: &str, now: DateTime<Utc>, lock_for: Duration) -> Write {
    claim_kept(key, request_hash, resource_id, now, lock_for, Retention::FromCreation)
}

/// The claim, kept as `retention` says.
pub fn claim_kept(
    key: &str,
    request_hash: String,
    resource_id: &str,
    now: DateTime<Utc>,
    lock_for: Duration,
    retention: Retention,
) -> Write {
    let record = IdempotencyRecord {
        request_hash,
        resource_id: resource_id.to_owned(),
        state: RecordState::InProgress {
            locked_until: now + lock_for,
        },
        created_at: now,
        retention,
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

/// The resource was decided at `decided_at`: from then on the record (read at `record.version`)
/// expires as any other, [`RETENTION`] after the decision. `None` when it was not waiting.
pub fn decided(key: &str, record: &IdempotencyRecord, decided_at: DateTime<Utc>) -> Option<Write> {
    if record.retention != Retention::UntilDecided {
        return None;
    }
    let mut kept = record.clone();
    kept.retention = Retention::FromDecision { decided_at };
    Some(Write::Put {
        item: to_item(key, &kept, record.version + 1),
        condition: Condition::VersionIs(record.version),
    })
}

/// [`complete`] with a rendered first response.
pub fn complete_with(key: &str, record: &IdempotencyRecord, response: &StoredResponse) -> Write {
    complete(key, record, response.status, response.body.clone())
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
            retention: Retention::FromCreation,
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

    fn item_of(write: &Write) -> &Item {
        match write {
            Write::Put { item, .. } => item,
            other => panic!("not a put: {other:?}"),
        }
    }

    #[test]
    fn records_awaiting_a_decision_never_expire_until_it_then_expire_a_day_after_it() {
        let now = Utc::now();
        let lock = Duration::seconds(60);
        let standard = claim("IDEM#a#payout#k", "h".into(), "po_1", now, lock);
        assert_eq!(item_of(&standard).expires_at, Some((now + RETENTION).timestamp()));

        let waiting = claim_kept(
            "IDEM#a#payout#k",
            "h".into(),
            "po_1",
            now,
            lock,
            Retention::UntilDecided,
        );
        assert_eq!(item_of(&waiting).expires_at, None);
        let mut record = from_item(item_of(&waiting)).unwrap();
        assert_eq!(record.retention, Retention::UntilDecided);
        // Storing the first response keeps it waiting.
        let completed = complete("IDEM#a#payout#k", &record, 202, "{}".into());
        assert_eq!(item_of(&completed).expires_at, None);
        record = from_item(item_of(&completed)).unwrap();

        let decided_at = now + Duration::days(3);
        let released = decided("IDEM#a#payout#k", &record, decided_at).expect("it was waiting");
        let item = item_of(&released);
        assert_eq!(item.expires_at, Some((decided_at + RETENTION).timestamp()));
        assert_eq!(item.version, record.version + 1);
        assert!(matches!(&released, Write::Put { condition: Condition::VersionIs(v), .. } if *v == record.version));
        let record = from_item(item).unwrap();
        assert!(matches!(record.state, RecordState::Completed { status: 202, .. }));
        // Deciding again changes nothing; nor does deciding a record that never waited.
        assert_eq!(decided("IDEM#a#payout#k", &record, decided_at), None);
        assert_eq!(decided("k", &from_item(item_of(&standard)).unwrap(), decided_at), None);
    }

    #[test]
    fn records_written_before_retention_existed_read_as_kept_from_creation() {
        let now = Utc::now();
        let mut old = Item::new(
            "IDEM#a#payment#k",
            2,
            serde_json::json!({"request_hash": "h", "resource_id": "pay_1", "created_at": now,
                "state": {"state": "completed", "status": 202, "body": "{}"}})
            .to_string(),
        );
        old.expires_at = Some((now + RETENTION).timestamp());
        let record = from_item(&old).unwrap();
        assert_eq!(record.retention, Retention::FromCreation);
        // And a standard record is written exactly as before (no new field in the document).
        assert!(!item_of(&claim("k", "h".into(), "pay_1", now, Duration::seconds(1)))
            .doc
            .contains("retention"));
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
