//! Appending to the log: one conditional transaction per entry, of the chain's head and the
//! entry itself.
//!
//! The head moves from the version read to the next, so two appenders to one chain never both
//! take the same number (the loser reads the head again); the entry's item is keyed by its
//! source, so the same event, call or callback appended twice (a stream redelivery, a crash
//! between the append and the caller's own bookkeeping) is refused and reported as
//! [`Appended::AlreadyRecorded`]. Contention is per resource, never per merchant.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::chain::Head;
use super::entry::{Actor, AuditEntry, EntryKind, ResourceRef, GENESIS};
use super::repo;
use crate::clock::Clock;
use crate::engine::{Batch, CommitError, Slot, MAX_ATTEMPTS};
use crate::metrics;
use crate::store::{StoreError, Table};

/// Something to record, before it has a place in its chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub chain: String,
    pub source: String,
    /// The merchant, when the recorder knows it; otherwise the chain's.
    pub merchant: Option<String>,
    pub kind: EntryKind,
    pub action: String,
    pub actor: Actor,
    pub resource: Option<ResourceRef>,
    pub outcome: String,
    pub detail: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Appended as this entry.
    Appended(Box<AuditEntry>),
    /// Its source was appended before: nothing written.
    AlreadyRecorded,
}

#[derive(Clone)]
pub struct AuditLog {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

impl AuditLog {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> AuditLog {
        AuditLog { table, clock }
    }

    /// Appends `new` at the end of its chain, once.
    pub async fn append(&self, new: NewEntry) -> Result<Appended, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let head = repo::head(self.table.as_ref(), &new.chain).await?;
            let now = self.clock.now();
            let (seq, prev_hash, version, chain_merchant) = match &head {
                Some(h) => (h.seq + 1, h.hash.clone(), h.version, h.merchant.clone()),
                None => (1, GENESIS.to_owned(), 0, None),
            };
            // A chain's merchant is fixed by the first entry that knows it.
            let merchant = chain_merchant.or_else(|| new.merchant.clone());
            let entry = AuditEntry {
                chain: new.chain.clone(),
                seq,
                source: new.source.clone(),
                merchant: merchant.clone(),
                kind: new.kind,
                action: new.action.clone(),
                actor: new.actor.clone(),
                resource: new.resource.clone(),
                outcome: new.outcome.clone(),
                detail: new.detail.clone(),
                occurred_at: new.occurred_at,
                recorded_at: now,
                prev_hash,
                hash: String::new(),
            }
            .seal();
            let next_head = Head {
                chain: new.chain.clone(),
                seq,
                hash: entry.hash.clone(),
                merchant,
                updated_at: now,
                version,
            };
            let mut batch = Batch::new();
            // The entry first: when both conditions fail, "already recorded" is the answer.
            batch
                .push(Slot::AuditEntry, repo::insert_entry(&entry))
                .push(Slot::AuditHead, repo::write_head(&next_head));
            match batch.commit(self.table.as_ref()).await {
                Ok(()) => {
                    metrics::count("AuditEntriesAppended", 1, &[("Kind", entry.kind.as_str())]);
                    return Ok(Appended::Appended(Box::new(entry)));
                }
                Err(CommitError::Refused { slot: Slot::AuditEntry }) => return Ok(Appended::AlreadyRecorded),
                Err(CommitError::Refused { .. }) | Err(CommitError::Store(StoreError::TransactionConflict)) => {
                    // Another entry of this chain went first: read the head again.
                    tokio::time::sleep(pause(attempt)).await;
                }
                Err(CommitError::Store(error)) => return Err(error),
            }
        }
        Err(StoreError::Unavailable("audit chain kept moving under us".into()))
    }

    /// [`AuditLog::append`], and a failure counted (`AuditAppendFailures{Kind}`, alarmed) and
    /// logged, for recorders that cannot make their caller retry (an API call already answered).
    pub async fn append_or_count(&self, new: NewEntry) -> Option<Appended> {
        let kind = new.kind;
        let source = new.source.clone();
        match self.append(new).await {
            Ok(appended) => Some(appended),
            Err(error) => {
                metrics::count("AuditAppendFailures", 1, &[("Kind", kind.as_str())]);
                tracing::error!(%error, %source, kind = kind.as_str(), "audit entry not appended");
                None
            }
        }
    }
}

/// A short jittered pause, growing with the attempt (1-2 ms, 2-4 ms, ... at most 64-128 ms).
fn pause(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let base = 1u64 << attempt.min(6);
    std::time::Duration::from_millis(base + rand::thread_rng().gen_range(0..=base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryTable;

    pub fn new_entry(chain: &str, source: &str, merchant: Option<&str>) -> NewEntry {
        NewEntry {
            chain: chain.into(),
            source: source.into(),
            merchant: merchant.map(str::to_owned),
            kind: EntryKind::StateChange,
            action: "payment.created".into(),
            actor: Actor {
                actor_type: "api".into(),
                ..Actor::default()
            },
            resource: None,
            outcome: "recorded".into(),
            detail: serde_json::json!({}),
            occurred_at: chrono::Utc::now(),
        }
    }

    fn log() -> AuditLog {
        AuditLog::new(
            Arc::new(MemoryTable::new()),
            Arc::new(ManualClock::new(chrono::Utc::now())),
        )
    }

    #[tokio::test]
    async fn entries_are_numbered_linked_and_appended_once() {
        let log = log();
        let Appended::Appended(first) = log.append(new_entry("pay_1", "a", None)).await.unwrap() else {
            panic!("appended")
        };
        assert_eq!(
            (first.seq, first.prev_hash.as_str(), first.merchant.clone()),
            (1, GENESIS, None)
        );
        let Appended::Appended(second) = log.append(new_entry("pay_1", "b", Some("shop"))).await.unwrap() else {
            panic!("appended")
        };
        assert_eq!((second.seq, second.prev_hash.clone()), (2, first.hash.clone()));
        // The same source again: nothing written.
        assert_eq!(
            log.append(new_entry("pay_1", "a", None)).await.unwrap(),
            Appended::AlreadyRecorded
        );
        // The merchant known since "b" is the chain's from then on.
        let Appended::Appended(third) = log.append(new_entry("pay_1", "c", None)).await.unwrap() else {
            panic!("appended")
        };
        assert_eq!((third.seq, third.merchant.as_deref()), (3, Some("shop")));
        let entries = repo::whole_chain(log.table.as_ref(), "pay_1").await.unwrap();
        let head = repo::head(log.table.as_ref(), "pay_1").await.unwrap();
        let verified = super::super::chain::verify("pay_1", &entries, head.as_ref()).unwrap();
        assert_eq!(verified.entries, 3);
    }

    #[tokio::test]
    async fn concurrent_appenders_to_one_chain_never_fork_it() {
        let log = log();
        let appends = (0..24).map(|i| {
            let log = log.clone();
            async move { log.append(new_entry("pay_hot", &format!("s{i}"), Some("shop"))).await }
        });
        let results = futures::future::join_all(appends).await;
        assert!(results.iter().all(|r| matches!(r, Ok(Appended::Appended(_)))));
        let entries = repo::whole_chain(log.table.as_ref(), "pay_hot").await.unwrap();
        let head = repo::head(log.table.as_ref(), "pay_hot").await.unwrap();
        assert_eq!(
            super::super::chain::verify("pay_hot", &entries, head.as_ref())
                .unwrap()
                .entries,
            24
        );
    }
}
