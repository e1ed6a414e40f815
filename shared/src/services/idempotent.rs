//! The parts of an idempotent create that every resource shares: the record a request claimed,
//! what to do when a key already has a record, storing the first response for replays, how a
//! creation transaction failed (and whether it may have committed), the bounded jittered retry
//! of one cancelled by a `TransactionConflict`, and a record's retention once its resource is
//! decided. Each service keeps only what is its own: how to finish an abandoned request.

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::payments::store_error;
use crate::api::{ApiError, ApiResponse};
use crate::idempotency::{self, Existing, IdempotencyRecord, RecordState, Retention};
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

/// Why a creation transaction (idempotency claim + resource + limits) did not commit.
#[derive(Debug)]
pub enum CreationFailure {
    /// The key already has a record (a replay, a request in progress, or another body).
    KeyTaken,
    /// A limit refused the request.
    Refused(ApiError),
    /// The store failed; `nothing_written` when the transaction definitely did not commit
    /// (a conflict that outlived its retries), not when its outcome is unknown (a timeout).
    Store { error: StoreError, nothing_written: bool },
}

impl CreationFailure {
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

/// What a request whose key already has a record gets.
pub enum Resumed {
    /// The answer to give (a replay of the first response).
    Answer(ApiResponse),
    /// The first request died mid-way: the caller finishes it from the stored resource and
    /// stores the answer with [`finish_abandoned`].
    Abandoned(IdempotencyRecord),
}

/// Classifies the existing record under `record_key` for a request hashing to `hash`.
pub async fn resume(table: &dyn Table, record_key: &str, hash: &str, now: DateTime<Utc>) -> Result<Resumed, ApiError> {
    let item = table
        .get(record_key)
        .await
        .map_err(store_error)?
        .ok_or(ApiError::Unavailable)?;
    let record = idempotency::from_item(&item).ok_or(ApiError::Internal)?;
    match idempotency::classify(&record, hash, now) {
        Existing::Mismatch => Err(ApiError::IdempotencyKeyReused),
        Existing::InProgress => Err(ApiError::RequestInProgress),
        Existing::Replay { status, body } => Ok(Resumed::Answer(replay(status, body))),
        Existing::Abandoned => Ok(Resumed::Abandoned(record)),
    }
}

/// The stored first response, exactly as it was, marked as a replay.
pub fn replay(status: u16, body: String) -> ApiResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = ApiResponse::raw_json(status, body.into());
    if status.as_u16() >= 400 {
        response.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
    }
    response.with_header("idempotent-replayed", "true")
}

pub fn body_text(response: &ApiResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// Stores `response` as the first response of the request holding `record`. A failure is
/// logged, not returned: the resource exists, and a retry with the key finishes the record.
pub async fn store_first_response(
    table: &dyn Table,
    record_key: &str,
    record: &IdempotencyRecord,
    response: &ApiResponse,
) {
    let write = idempotency::complete(record_key, record, response.status.as_u16(), body_text(response));
    if let Err(error) = table.write(vec![write]).await {
        tracing::warn!(%error, resource_id = %record.resource_id, "could not store the first response");
    }
}

/// Stores the answer an abandoned request finished with; another request finishing it first is fine.
pub async fn finish_abandoned(
    table: &dyn Table,
    record_key: &str,
    record: &IdempotencyRecord,
    response: ApiResponse,
) -> Result<ApiResponse, ApiError> {
    let write = idempotency::complete(record_key, record, response.status.as_u16(), body_text(&response));
    match table.write(vec![write]).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(response),
        Err(error) => Err(store_error(error)),
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
        assert!(CreationFailure::KeyTaken.nothing_written());
        assert!(CreationFailure::Refused(ApiError::Unavailable).nothing_written());
        let unknown = CreationFailure::Store {
            error: StoreError::Unavailable("timeout".into()),
            nothing_written: false,
        };
        assert!(!unknown.nothing_written());
    }
}
