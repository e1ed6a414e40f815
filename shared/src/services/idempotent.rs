//! The parts of an idempotent create that every resource shares: the record a request claimed,
//! what to do when a key already has a record, and storing the first response for replays.
//! Each service keeps only what is its own: how to finish an abandoned request.

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::payments::store_error;
use crate::api::{ApiError, ApiResponse};
use crate::idempotency::{self, Existing, IdempotencyRecord, RecordState};
use crate::store::{StoreError, Table};

/// The record [`idempotency::claim`] wrote, as this request holds it.
pub fn claimed(
    request_hash: String,
    resource_id: &str,
    now: DateTime<Utc>,
    lock: chrono::Duration,
) -> IdempotencyRecord {
    IdempotencyRecord {
        request_hash,
        resource_id: resource_id.to_owned(),
        state: RecordState::InProgress {
            locked_until: now + lock,
        },
        created_at: now,
        version: 1,
    }
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
