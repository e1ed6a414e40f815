//! How a store failure reads to a use case's caller: worth retrying, or a bug. One rule (and one
//! log line) for every use case, so their error enums agree on it.

use crate::store::StoreError;

/// Whether a request that failed with `error` may succeed if sent again: the store was
/// unreachable, or a transaction conflicted (nothing was written, so the same writes may be sent
/// again). Anything else is a bug or a corrupt item. Logged here, once.
pub fn is_retryable(error: &StoreError) -> bool {
    match error {
        StoreError::Unavailable(detail) => {
            tracing::warn!(%detail, "store unavailable");
            true
        }
        StoreError::TransactionConflict => {
            tracing::warn!("transaction conflict");
            true
        }
        other => {
            tracing::error!(error = %other, "store error");
            false
        }
    }
}
