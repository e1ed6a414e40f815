//! `GET /v1/events`, `GET /v1/events/{id}`: the merchant's events (the outbox, see
//! [`crate::events`]), newest first.
//!
//! Query parameters of the list: `type` (one of the catalogue's names, code `invalid_value`),
//! `resource_id` (1-64 letters, digits, `_`; code `invalid_value`), `limit`, `cursor`.
//! Scope `events:read`. Only the token's merchant's events are ever listed or shown; another
//! merchant's event is a 404.

use http::StatusCode;
use serde::Serialize;

use super::auth::Authenticator;
use super::errors::store_error;
use super::http::{ApiRequest, ApiResponse};
use super::payments::page_params;
use super::problem::{ApiError, FieldError};
use super::respond;
use super::views::{timestamp, ListView};
use crate::auth::scopes;
use crate::events::repo::{self, EventFilter};
use crate::events::{Cause, EventRecord, EventType, ResourceKind};
use crate::store::Table;

/// What the API shows of an event.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub id: String,
    pub object: &'static str,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub resource: ResourceKind,
    pub resource_id: String,
    pub sequence: u64,
    pub cause: Cause,
    pub created_at: String,
    /// The resource's public view after the change.
    pub data: Box<serde_json::value::RawValue>,
    /// When the events function delivered it (`null` until then).
    pub handled_at: Option<String>,
}

impl From<&EventRecord> for EventView {
    fn from(e: &EventRecord) -> Self {
        EventView {
            id: e.id.clone(),
            object: "event",
            event_type: e.event_type,
            resource: e.resource,
            resource_id: e.resource_id.clone(),
            sequence: e.sequence,
            cause: e.cause,
            created_at: timestamp(e.occurred_at),
            data: e.data.clone(),
            handled_at: e.handled_at.map(timestamp),
        }
    }
}

fn is_id_like(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub async fn get(table: &dyn Table, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::EVENTS_READ).await?;
        let not_found = ApiError::NotFound { resource: "event" };
        let id = request
            .path_param("id")
            .filter(|id| id.starts_with("evt_") && is_id_like(id))
            .ok_or(not_found.clone())?;
        let event = repo::get(table, id)
            .await
            .map_err(store_error)?
            .ok_or(not_found.clone())?;
        // Another merchant's event is indistinguishable from a missing one.
        match &event.merchant {
            Some(merchant) if merchant == principal.merchant.as_str() => {}
            _ => return Err(not_found),
        }
        Ok(ApiResponse::json(StatusCode::OK, &EventView::from(&event)))
    })
    .await
}

pub async fn list(table: &dyn Table, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::EVENTS_READ).await?;
        request.only_query_params(&["type", "resource_id", "limit", "cursor"])?;
        let mut errors = Vec::new();
        let event_type = match request.query_param("type")? {
            None => None,
            Some(text) => {
                let parsed = EventType::parse(text);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "type",
                        "invalid_value",
                        "type must be one of the event catalogue's names, e.g. payment.completed",
                    ));
                }
                parsed
            }
        };
        let resource_id = match request.query_param("resource_id")? {
            None => None,
            Some(text) if is_id_like(text) => Some(text.to_owned()),
            Some(_) => {
                errors.push(FieldError::new(
                    "resource_id",
                    "invalid_value",
                    "resource_id must be a resource's id, e.g. pay_01J...",
                ));
                None
            }
        };
        let (limit, cursor) = page_params(&request, &mut errors)?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filter = EventFilter {
            merchant: principal.merchant.to_string(),
            event_type,
            resource_id,
        };
        let page = repo::list(table, &filter, limit, cursor.as_ref())
            .await
            .map_err(store_error)?;
        let view = ListView {
            data: page.events.iter().map(EventView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}
