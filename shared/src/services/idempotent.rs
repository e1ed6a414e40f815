//! The parts of an idempotent create that every resource shares: the record a request claimed,
//! storing the first response for replays, how a creation transaction failed (and whether it may
//! have committed), the bounded jittered retry of one cancelled by a `TransactionConflict`, and a
//! record's retention once its resource is decided. Each service keeps only what is its own: how
//! to recover the outcome of an abandoned request.
//!
//! What a key that already has a record gets (a replay, a refusal, the takeover of an abandoned
//! request) is decided at the API edge (`api::idempotency`), which knows what a response is.

use chrono::{DateTime, Utc};

use crate::idempotency::{self, IdempotencyRecord, RecordState, Retention, StoredResponse};
use crate::store::{StoreError, Table};

/// The record [`idempotency::claim`] wrote, as this request holds it.
pub fn claimed(
    request_hash: String,
    resource_id: &str,
    now: DateTime<Utc>,
    lock: chrono::Duration,
) -> IdempotencyRecord {
    claimed_kept(request_hash, resource_id, now, lock, Retention::FromCreation)
}

/// The record [`idempotency::claim_kept`] wrote with `retention`, as this request holds it.
pub fn claimed_kept(
    request_hash: String,
    resource_id: &str,
    now: DateTime<Utc>,
    lock: chrono::Duration,
    retention: Retention,
) -> IdempotencyRecord {
    IdempotencyRecord {
        request_hash,
        resource_id: resource_id.to_owned(),
        state: RecordState::InProgress {
            locked_until: now + lock,
        },
        created_at: now,
        retention,
        version: 1,
    }
}

/// The resource behind the record under `record_key` was decided at `decided_at`: the record
/// now expires a retention period after it (it was kept while the decision was awaited).
/// Re-read and retried on a race (e.g. the first response being stored at the same moment). A
/// failure is logged and counted, not returned: the decision stands, the record is only kept
/// longer than it needs to be.
pub async fn start_retention_at_decision(table: &dyn Table, record_key: &str, decided_at: DateTime<Utc>) {
    let mut last_error = None;
    for attempt in 0..5u32 {
        let item = match table.get(record_key).await {
            Ok(Some(item)) => item,
            Ok(None) => return,
            Err(error) => {
                last_error = Some(error);
                continue;
            }
        };
        let Some(record) = idempotency::from_item(&item) else {
            last_error = Some(StoreError::Corrupt(format!("idempotency record {}", item.key)));
            break;
        };
        let Some(write) = idempotency::decided(record_key, &record, decided_at) else {
            return;
        };
        match table.write(vec![write]).await {
            Ok(()) => return,
            Err(error @ (StoreError::ConditionFailed { .. } | StoreError::TransactionConflict)) => {
                last_error = Some(error);
                let pause = 1 + rand::random::<u64>() % (4u64 << attempt);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            Err(error) => {
                last_error = Some(error);
                break;
            }
        }
    }
    crate::metrics::count("IdempotencyRetentionNotStarted", 1, &[]);
    tracing::error!(error = ?last_error, "an idempotency record stays without expiry after its resource was decided");
}

/// Why a creation transaction (idempotency claim + resource + limits) did not commit; `E` is
/// the use case's own error, for a refusal.
#[derive(Debug)]
pub enum CreationFailure<E> {
    /// The key already has a record (a replay, a request in progress, or another body).
    KeyTaken,
    /// A limit refused the request.
    Refused(E),
    /// The store failed; `nothing_written` when the transaction definitely did not commit
    /// (a conflict that outlived its retries), not when its outcome is unknown (a timeout).
    Store { error: StoreError, nothing_written: bool },
}

impl<E> CreationFailure<E> {
    /// Whether the transaction definitely did not commit, so reservations taken for it may be
    /// given back. Unknown outcomes keep them (an over-count, never an over-spend).
    pub fn nothing_written(&self) -> bool {
        match self {
            CreationFailure::KeyTaken | CreationFailure::Refused(_) => true,
            CreationFailure::Store { nothing_written, .. } => *nothing_written,
        }
    }
}

/// How many times a creation transaction cancelled by `TransactionConflict` is sent again.
/// Creations conflict only on their own items (the key, a phone's window), so a conflict is
/// a burst of requests for one key or phone; the bound keeps a request under ~0.4 s.
pub const CONFLICT_RETRIES: u32 = 6;

/// The pause before conflict retry `n` (1-based): full jitter over an exponential ceiling
/// (4, 8, 16, ... ms, at most 100 ms), so colliding requests spread out instead of meeting again.
pub fn conflict_pause(n: u32) -> std::time::Duration {
    let ceiling = (2u64 << n.min(6)).min(100);
    std::time::Duration::from_millis(1 + rand::random::<u64>() % ceiling)
}

/// Stores `response` as the first response of the request holding `record`. A failure is
/// logged, not returned: the resource exists, and a retry with the key finishes the record.
pub async fn store_first_response(
    table: &dyn Table,
    record_key: &str,
    record: &IdempotencyRecord,
    response: &StoredResponse,
) {
    let write = idempotency::complete_with(record_key, record, response);
    if let Err(error) = table.write(vec![write]).await {
        tracing::warn!(%error, resource_id = %record.resource_id, "could not store the first response");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_pauses_are_jittered_and_bounded() {
        let mut total = std::time::Duration::ZERO;
        for n in 1..=CONFLICT_RETRIES {
            let ceiling = std::time::Duration::from_millis((2u64 << n).min(100));
            for _ in 0..200 {
                let pause = conflict_pause(n);
                assert!(
                    pause >= std::time::Duration::from_millis(1) && pause <= ceiling,
                    "{pause:?}"
                );
            }
            total += ceiling;
        }
        assert!(
            total <= std::time::Duration::from_millis(400),
            "the retries' worst case: {total:?}"
        );
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|_| conflict_pause(6)).collect();
        assert!(distinct.len() > 1, "jittered");
    }

    #[test]
    fn only_failures_that_wrote_nothing_let_reservations_go() {
        assert!(CreationFailure::<()>::KeyTaken.nothing_written());
        assert!(CreationFailure::Refused(()).nothing_written());
        let unknown = CreationFailure::<()>::Store {
            error: StoreError::Unavailable("timeout".into()),
            nothing_written: false,
        };
        assert!(!unknown.nothing_written());
    }
}
