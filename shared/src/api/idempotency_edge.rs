//! The idempotency edge of the create endpoints, in the manner of zero2prod's `idempotency`
//! module (`try_processing`, `save_response`), with one difference: the key is claimed by the
//! use case, in the transaction that creates the resource, and the first response is stored by
//! the use case too, with the state change it shows (for a payment, in the transaction that
//! records Daraja's answer). So a resource never exists without its claim, and a replay never
//! shows a state that was not recorded. The edge therefore works around the use case:
//!
//! 1. it names the request ([`RequestIdentity`]: record key and request hash) and gives the
//!    use case the renderer of the first response ([`stored`] of the handler's rendering), so
//!    the use case stores exactly the bytes the edge answers, without knowing HTTP;
//! 2. when the use case reports the key [`Claimed::Taken`](crate::idempotency::Claimed),
//!    [`IdempotencyEdge::try_processing`] decides: replay the stored first response, refuse the
//!    key reused with another body (422 `idempotency_key_reused`) or still running elsewhere
//!    (409 `request_in_progress`), or take over a request whose runner died;
//! 3. a request taken over is finished from what the use case recovers, and its answer saved
//!    ([`IdempotencyEdge::save_response`]) for the replays after it.
//!
//! The ordering is the use case's: a request is checked (limits, secrets, fields) before its
//! key is claimed, exactly as a first request is.

use std::future::Future;

use chrono::{DateTime, Utc};
use http::StatusCode;

use super::http::ApiResponse;
use super::problem::ApiError;
use crate::api::errors::store_error;
use crate::idempotency::{self, Existing, IdempotencyRecord, RequestIdentity, StoredResponse};
use crate::store::{StoreError, Table};

/// The first response as the record stores it: status and body (see [`StoredResponse`] for
/// why not the headers).
pub fn stored(response: &ApiResponse) -> StoredResponse {
    StoredResponse {
        status: response.status.as_u16(),
        body: String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// The stored first response, exactly as it was, marked as a replay.
pub fn replay(stored: StoredResponse) -> ApiResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = ApiResponse::raw_json(status, stored.body.into());
    if status.as_u16() >= 400 {
        response.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
    }
    response.with_header("idempotent-replayed", "true")
}

/// What a request whose key already has a record does next (zero2prod's `NextAction`).
#[derive(Debug)]
pub enum NextAction {
    /// The same request finished: answer with its first response.
    ReturnSavedResponse(ApiResponse),
    /// The same request's runner died mid-way (its lock expired): finish it from the resource
    /// the record names, then [`IdempotencyEdge::save_response`].
    FinishAbandoned(IdempotencyRecord),
}

/// One idempotent request at the API edge.
pub struct IdempotencyEdge<'a> {
    table: &'a dyn Table,
    identity: RequestIdentity,
}

impl<'a> IdempotencyEdge<'a> {
    pub fn new(table: &'a dyn Table, identity: RequestIdentity) -> IdempotencyEdge<'a> {
        IdempotencyEdge { table, identity }
    }

    /// What the use case claims the key with.
    pub fn identity(&self) -> &RequestIdentity {
        &self.identity
    }

    /// The key already has a record: replay it, refuse, or hand over an abandoned request.
    pub async fn try_processing(&self, now: DateTime<Utc>) -> Result<NextAction, ApiError> {
        let item = self
            .table
            .get(&self.identity.record_key)
            .await
            .map_err(store_error)?
            // The claim failed, yet no record: it expired meanwhile. Retrying claims afresh.
            .ok_or(ApiError::Unavailable)?;
        let record = idempotency::from_item(&item).ok_or(ApiError::Internal)?;
        match idempotency::classify(&record, &self.identity.request_hash, now) {
            Existing::Mismatch => Err(ApiError::IdempotencyKeyReused),
            Existing::InProgress => Err(ApiError::RequestInProgress),
            Existing::Replay { status, body } => {
                Ok(NextAction::ReturnSavedResponse(replay(StoredResponse { status, body })))
            }
            Existing::Abandoned => Ok(NextAction::FinishAbandoned(record)),
        }
    }

    /// Stores `response` as the first response of the abandoned request `record`, and answers
    /// it. Another request finishing it first is fine (its answer shows the same resource).
    pub async fn save_response(
        &self,
        record: &IdempotencyRecord,
        response: ApiResponse,
    ) -> Result<ApiResponse, ApiError> {
        let write = idempotency::complete_with(&self.identity.record_key, record, &stored(&response));
        match self.table.write(vec![write]).await {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(response),
            Err(error) => Err(store_error(error)),
        }
    }

    /// The answer to a request whose key the use case found taken: a replay, a refusal, or an
    /// abandoned request finished with `recover` (given the record's resource id: the use
    /// case's own recovery) and answered with `render` of what it recovered.
    pub async fn resolve<T, E, Fut>(
        &self,
        now: DateTime<Utc>,
        recover: impl FnOnce(String) -> Fut,
        render: impl Fn(&T) -> ApiResponse,
    ) -> Result<ApiResponse, ApiError>
    where
        Fut: Future<Output = Result<T, E>>,
        ApiError: From<E>,
    {
        match self.try_processing(now).await? {
            NextAction::ReturnSavedResponse(response) => Ok(response),
            NextAction::FinishAbandoned(record) => {
                let outcome = recover(record.resource_id.clone()).await?;
                self.save_response(&record, render(&outcome)).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::*;
    use crate::domain::ClientId;
    use crate::idempotency::{IdempotencyKey, Operation};
    use crate::store::memory::MemoryTable;

    fn identity(amount: u64) -> RequestIdentity {
        RequestIdentity::new(
            &ClientId::parse("merchant-a").unwrap(),
            Operation::CreatePayment,
            &IdempotencyKey::parse("order-1").unwrap(),
            &json!({"amount": amount}),
        )
    }

    /// What a use case writes: the claim (locked for a minute from `at`), and optionally the
    /// first response it rendered.
    async fn first_request(table: &MemoryTable, at: DateTime<Utc>, answered: Option<&ApiResponse>) {
        let id = identity(100);
        let lock = Duration::seconds(60);
        let claim = idempotency::claim(&id.record_key, id.request_hash.clone(), "pay_1", at, lock);
        table.write(vec![claim]).await.unwrap();
        if let Some(response) = answered {
            let record = idempotency::from_item(&table.get(&id.record_key).await.unwrap().unwrap()).unwrap();
            let write = idempotency::complete_with(&id.record_key, &record, &stored(response));
            table.write(vec![write]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_replay_is_the_first_answer_exactly_marked_as_replayed() {
        let answers = [
            ApiResponse::json(StatusCode::ACCEPTED, &json!({"id": "pay_1", "status": "sent"})),
            ApiError::DarajaUnavailable {
                resource_id: "pay_1".into(),
            }
            .to_response("req-1"),
        ];
        for first in answers {
            let table = MemoryTable::new();
            first_request(&table, Utc::now(), Some(&first)).await;
            let edge = IdempotencyEdge::new(&table, identity(100));
            let NextAction::ReturnSavedResponse(replayed) = edge.try_processing(Utc::now()).await.unwrap() else {
                panic!("a finished request replays");
            };
            assert_eq!((replayed.status, &replayed.body), (first.status, &first.body));
            assert_eq!(replayed.headers["content-type"], first.headers["content-type"]);
            assert_eq!(replayed.headers["idempotent-replayed"], "true");
            // Only the stored status and body: the first answer's own headers are not replayed.
            assert!(!replayed.headers.contains_key("retry-after"));
        }
    }

    #[tokio::test]
    async fn another_body_is_refused_and_a_running_request_is_waited_for() {
        let table = MemoryTable::new();
        first_request(&table, Utc::now(), None).await;
        let reused = IdempotencyEdge::new(&table, identity(101))
            .try_processing(Utc::now())
            .await;
        let reused = reused.unwrap_err().to_response("r");
        assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            reused.body_json::<serde_json::Value>().unwrap()["code"],
            "idempotency_key_reused"
        );
        let running = IdempotencyEdge::new(&table, identity(100))
            .try_processing(Utc::now())
            .await;
        let running = running.unwrap_err().to_response("r");
        assert_eq!(running.status, StatusCode::CONFLICT);
        assert_eq!(
            running.body_json::<serde_json::Value>().unwrap()["code"],
            "request_in_progress"
        );
        assert_eq!(running.headers["retry-after"], "1");
    }

    #[tokio::test]
    async fn an_abandoned_request_is_finished_from_its_resource_and_then_replayed() {
        let table = MemoryTable::new();
        let now = Utc::now();
        first_request(&table, now - Duration::minutes(2), None).await;
        let edge = IdempotencyEdge::new(&table, identity(100));
        let render = |id: &String| ApiResponse::json(StatusCode::ACCEPTED, &json!({"id": id}));
        let answer = edge
            .resolve(now, |id| async move { Ok::<_, ApiError>(id) }, render)
            .await
            .unwrap();
        assert_eq!(answer.body_json::<serde_json::Value>().unwrap()["id"], "pay_1");
        assert!(!answer.headers.contains_key("idempotent-replayed"));
        // Saved: the next retry replays it, without recovering again.
        let again = edge
            .resolve(now, |_| async { Err::<String, _>(ApiError::Internal) }, render)
            .await
            .unwrap();
        assert_eq!((again.status, &again.body), (answer.status, &answer.body));
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }

    #[tokio::test]
    async fn a_request_finished_by_another_taker_answers_all_the_same() {
        let table = MemoryTable::new();
        let now = Utc::now();
        first_request(&table, now - Duration::minutes(2), None).await;
        let edge = IdempotencyEdge::new(&table, identity(100));
        let NextAction::FinishAbandoned(record) = edge.try_processing(now).await.unwrap() else {
            panic!("the lock expired");
        };
        let first = ApiResponse::json(StatusCode::ACCEPTED, &json!({"taker": 1}));
        edge.save_response(&record, first.clone()).await.unwrap();
        // A second taker of the same record loses the write, and still answers.
        let second = ApiResponse::json(StatusCode::ACCEPTED, &json!({"taker": 2}));
        assert_eq!(edge.save_response(&record, second.clone()).await.unwrap(), second);
        let NextAction::ReturnSavedResponse(replayed) = edge.try_processing(now).await.unwrap() else {
            panic!("finished");
        };
        assert_eq!(replayed.body, first.body);
    }

    #[tokio::test]
    async fn a_record_gone_meanwhile_asks_for_a_retry() {
        let table = MemoryTable::new();
        let edge = IdempotencyEdge::new(&table, identity(100));
        assert_eq!(
            edge.try_processing(Utc::now()).await.unwrap_err(),
            ApiError::Unavailable
        );
    }
}
