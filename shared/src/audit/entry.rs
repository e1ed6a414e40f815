//! One audit entry and how it is hashed.
//!
//! An entry's `hash` is `SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of the entry without its
//! hash)`, hex. Canonical JSON: object keys sorted, no spaces, integers only (the entry holds
//! no floats), so anyone can recompute a hash from the stored document with any JSON library.
//! Plain SHA-256, not a keyed MAC: an auditor verifies without any of our secrets; what stops
//! someone with table write access from rewriting a whole chain is the digests (see
//! [`super::digest`]), which are also kept where the table's writers cannot change them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A state change of a resource (from the outbox: one entry per event).
    StateChange,
    /// A merchant's API call that changed something.
    ApiCall,
    /// A person's decision or a change of configuration (approvals, rejections, C2B URL
    /// registrations), made through the API.
    OperatorAction,
    /// A webhook endpoint created, changed, rotated, redriven or deleted.
    WebhookEndpointChange,
    /// A callback from Safaricom with its verdict.
    Callback,
}

impl EntryKind {
    pub const ALL: [EntryKind; 5] = [
        EntryKind::StateChange,
        EntryKind::ApiCall,
        EntryKind::OperatorAction,
        EntryKind::WebhookEndpointChange,
        EntryKind::Callback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::StateChange => "state_change",
            EntryKind::ApiCall => "api_call",
            EntryKind::OperatorAction => "operator_action",
            EntryKind::WebhookEndpointChange => "webhook_endpoint_change",
            EntryKind::Callback => "callback",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Who or what acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    /// `api` (a token's holder), `safaricom` (a callback), `system` (our own sweeps and
    /// Daraja's synchronous answers), `operator` (a person deciding).
    #[serde(rename = "type")]
    pub actor_type: String,
    /// The token's subject (`sub`), when a token acted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject: Option<String>,
    /// The merchant the token acts for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merchant: Option<String>,
    /// The caller's address as the gateway saw it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source_ip: Option<String>,
    /// The caller's `User-Agent`, at most [`MAX_USER_AGENT`] characters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_agent: Option<String>,
    /// The request id of the call or callback.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
}

/// Characters of a `User-Agent` kept.
pub const MAX_USER_AGENT: usize = 256;

/// What the entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `payment`, `payout`, `c2b_payment`, `webhook_endpoint`, `expected_payment`, `c2b_shortcode`.
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
}

/// One entry of a chain, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The chain: the resource's id (`pay_...`), or a chain of its own for what has no
    /// resource (see [`super::sources`]).
    pub chain: String,
    /// 1, 2, 3 ...: contiguous within the chain.
    pub seq: u64,
    /// What was recorded, unique across the log (`evt_...` an event, `api_<request id>` a call,
    /// `cb_<message id>` a callback): the same thing is never appended twice.
    pub source: String,
    /// The merchant the chain belongs to (`None` while unknown, e.g. a forged callback).
    pub merchant: Option<String>,
    pub kind: EntryKind,
    /// `payment.completed`, `POST /v1/payouts/{id}/approve`, `stk_callback` ...
    pub action: String,
    pub actor: Actor,
    pub resource: Option<ResourceRef>,
    /// `applied`, `duplicate`, `ignored`, `anomaly`, `forged` (callbacks); the HTTP status
    /// (calls); `recorded` (state changes).
    pub outcome: String,
    /// Redacted detail: phones masked, no secrets, no callback bodies.
    pub detail: serde_json::Value,
    /// When what is recorded happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: String,
    /// Set by [`AuditEntry::seal`]; excluded from its own hash.
    #[serde(default)]
    pub hash: String,
}

impl AuditEntry {
    /// The hash the entry should carry, from everything but its `hash`.
    pub fn compute_hash(&self) -> String {
        chained_hash(&self.prev_hash, self)
    }

    /// Sets `hash`.
    pub fn seal(mut self) -> AuditEntry {
        self.hash = self.compute_hash();
        self
    }

    /// Whether the stored hash is the one its content gives.
    pub fn is_intact(&self) -> bool {
        self.hash == self.compute_hash()
    }

    /// `<chain>:<seq>`: how an entry is named in reports.
    pub fn name(&self) -> String {
        format!("{}:{}", self.chain, self.seq)
    }
}

/// `SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of doc without its "hash" field)`, hex: the
/// rule of entries and of digests alike.
pub fn chained_hash<T: Serialize>(prev_hash: &str, doc: &T) -> String {
    let mut value = serde_json::to_value(doc).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.remove("hash");
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(&value).as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON with object keys sorted at every level and no whitespace.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of `parts` joined by newlines, hex (digests).
pub fn hash_lines<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn entry(chain: &str, seq: u64, prev_hash: &str) -> AuditEntry {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        AuditEntry {
            chain: chain.into(),
            seq,
            source: format!("src_{chain}_{seq}"),
            merchant: Some("shop".into()),
            kind: EntryKind::StateChange,
            action: "payment.completed".into(),
            actor: Actor {
                actor_type: "system".into(),
                ..Actor::default()
            },
            resource: Some(ResourceRef {
                resource_type: "payment".into(),
                id: chain.into(),
            }),
            outcome: "recorded".into(),
            detail: serde_json::json!({"status": "completed", "amount": 1250, "phone": "2547****5678"}),
            occurred_at: at,
            recorded_at: at,
            prev_hash: prev_hash.into(),
            hash: String::new(),
        }
        .seal()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "é\"q"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"é\"q","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn a_known_entry_has_a_known_hash() {
        // Pinned: a change of the hashing rule (field names, order, separator) breaks every
        // stored chain, so it must be a deliberate, versioned change.
        let e = entry("pay_1", 1, GENESIS);
        assert_eq!(e.hash.len(), 64);
        assert!(e.is_intact());
        let mut value = serde_json::to_value(&e).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        let text = format!("{GENESIS}\n{}", canonical_json(&value));
        assert_eq!(e.hash, hex::encode(Sha256::digest(text.as_bytes())));
    }

    proptest! {
        /// Any change of any field changes the hash.
        #[test]
        fn any_edit_is_detected(outcome in "[a-z_]{1,12}", amount in 0i64..10_000_000, seq in 1u64..1000) {
            let original = entry("pay_1", 5, GENESIS);
            let mut edited = original.clone();
            edited.outcome = outcome.clone();
            edited.detail["amount"] = serde_json::json!(amount);
            edited.seq = seq;
            let same = outcome == original.outcome && amount == 1250 && seq == 5;
            prop_assert_eq!(edited.is_intact(), same);
        }
    }
}
