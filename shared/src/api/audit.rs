//! The audit trail at the HTTP edge: the record of every API call that changed something, and
//! the routes that show the trail.
//!
//! - `GET /v1/payments/{id}/audit`, `GET /v1/payouts/{id}/audit`, `GET /v1/c2b/payments/{id}/audit`:
//!   one resource's chain, oldest first (`limit`, `cursor`);
//! - `GET /v1/audit`: the merchant's entries, newest first; filters `kind` (one of
//!   `state_change`, `api_call`, `operator_action`, `webhook_endpoint_change`, `callback`),
//!   `action` (e.g. `payment.completed`, `POST /v1/payouts/{id}/approve`), `resource_id`, `from`,
//!   `to` (RFC 3339), `limit`, `cursor`.
//!
//! Scope `audit:read`. A chain belongs to the merchant its first entries named; another
//! merchant's resource is a 404, as a missing one is. Entries are shown exactly as stored, so a
//! merchant's auditor can recompute every hash from the answer.

use http::{Method, StatusCode};
use serde::Serialize;

use super::auth::Authenticator;
use super::errors::store_error;
use super::http::{ApiRequest, ApiResponse};
use super::payments::{page_params, range_params};
use super::problem::{ApiError, FieldError};
use super::respond;
use super::routes::RouteId;
use crate::audit::entry::ResourceRef;
use crate::audit::sources::{self, ApiCall};
use crate::audit::{repo, AuditEntry, AuditLog, EntryKind};
use crate::auth::scopes;
use crate::repo::listing::{newest_first, Cursor, ListFilter};
use crate::store::{Index, Table};
use crate::views::ListView;

/// An entry as the API shows it: the stored document, with its name.
#[derive(Debug, Serialize)]
pub struct AuditEntryView<'a> {
    pub object: &'static str,
    /// `<chain>:<seq>`.
    pub id: String,
    #[serde(flatten)]
    pub entry: &'a AuditEntry,
}

impl<'a> From<&'a AuditEntry> for AuditEntryView<'a> {
    fn from(entry: &'a AuditEntry) -> Self {
        AuditEntryView {
            object: "audit_entry",
            id: entry.name(),
            entry,
        }
    }
}

/// How a changing route is recorded; `None`: it changes nothing (reads, Safaricom's callbacks,
/// which are recorded with their verdicts by the callback queue's consumer).
pub fn kind_of(route: RouteId) -> Option<(EntryKind, &'static str)> {
    use RouteId::*;
    Some(match route {
        CreatePayment => (EntryKind::ApiCall, "payment"),
        CreatePayout => (EntryKind::ApiCall, "payout"),
        CreateExpectedPayment => (EntryKind::ApiCall, "expected_payment"),
        RedeliverEvent => (EntryKind::ApiCall, "event"),
        CreateCheckoutSession | ExpireCheckoutSession => (EntryKind::ApiCall, "checkout_session"),
        ApprovePayout | RejectPayout => (EntryKind::OperatorAction, "payout"),
        C2bRegister => (EntryKind::OperatorAction, "c2b_shortcode"),
        CreateWebhookEndpoint
        | UpdateWebhookEndpoint
        | DeleteWebhookEndpoint
        | RotateWebhookSecret
        | RedriveWebhookEndpoint => (EntryKind::WebhookEndpointChange, "webhook_endpoint"),
        _ => return None,
    })
}

/// The id of what the call acted on: the path's `{id}`, else the answer's `id` (a creation),
/// else the answer's `shortcode` (a C2B registration).
fn resource_id(request: &ApiRequest, response: &ApiResponse) -> Option<String> {
    if let Some(id) = request.path_param("id") {
        return Some(id.to_owned());
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    ["id", "shortcode"]
        .iter()
        .find_map(|field| match &body[*field] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|id| (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// Records a call that changed something (a 2xx answer of a changing route). The change is
/// already made: a failure to record it is counted and logged (`AuditAppendFailures`, alarmed),
/// never turned into an error answer the caller would retry.
pub async fn record_call(
    log: &AuditLog,
    auth: &Authenticator,
    route: RouteId,
    route_path: &str,
    request: &ApiRequest,
    response: &ApiResponse,
) {
    let Some((kind, resource_type)) = kind_of(route) else {
        return;
    };
    if !response.status.is_success() {
        return;
    }
    let Ok(principal) = auth.authenticate(request).await else {
        return;
    };
    let resource = resource_id(request, response).map(|id| ResourceRef {
        resource_type: resource_type.to_owned(),
        id,
    });
    let call = ApiCall {
        kind,
        route: format!("{} {route_path}", request.method),
        path: request.path.clone(),
        status: response.status.as_u16(),
        subject: principal.client.to_string(),
        merchant: principal.merchant.to_string(),
        operator: principal.is_operator(),
        source_ip: request.source_ip.map(|ip| ip.to_string()),
        user_agent: request.header("user-agent").map(str::to_owned),
        request_id: request.request_id.clone(),
        resource,
        idempotency_key: request.header("idempotency-key").map(str::to_owned),
        replayed: response.headers.contains_key("idempotent-replayed"),
        at: log.clock.now(),
    };
    log.append_or_count(sources::of_api_call(call)).await;
}

/// Whether `request` is one [`record_call`] may record (cheap test before authenticating).
pub fn records(route: RouteId, method: &Method) -> bool {
    method != Method::GET && method != Method::HEAD && kind_of(route).is_some()
}

fn id_like(text: &str, prefix: &str) -> bool {
    text.starts_with(prefix)
        && (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `GET /v1/{payments,payouts,c2b/payments}/{id}/audit`: one resource's chain, oldest first.
pub async fn of_resource(
    table: &dyn Table,
    auth: &Authenticator,
    request: ApiRequest,
    resource: &'static str,
    id_prefix: &'static str,
) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::AUDIT_READ).await?;
        request.only_query_params(&["limit", "cursor"])?;
        let not_found = ApiError::NotFound { resource };
        let id = request
            .path_param("id")
            .filter(|id| id_like(id, id_prefix))
            .ok_or(not_found.clone())?;
        let mut errors = Vec::new();
        let (limit, cursor) = page_params(&request, &mut errors)?;
        // A cursor of another listing (another chain, `GET /v1/audit`) is refused, not read as
        // an empty page.
        if cursor
            .as_ref()
            .is_some_and(|c| !c.sort_key().ends_with(&format!("#{id}")))
        {
            errors.push(FieldError::new(
                "cursor",
                "invalid_cursor",
                "use the next_cursor of a previous page of this resource's audit trail",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let head = repo::head(table, id)
            .await
            .map_err(store_error)?
            .ok_or(not_found.clone())?;
        let reachable = match &head.merchant {
            Some(merchant) => principal.merchant.as_str() == merchant || principal.is_operator(),
            None => principal.is_operator(),
        };
        if !reachable {
            return Err(not_found);
        }
        let after = cursor
            .as_ref()
            .and_then(|c| c.sort_key().get(..16))
            .and_then(|digits| digits.parse::<u64>().ok())
            .unwrap_or(0);
        let mut entries = repo::chain_page(table, id, after, limit + 1)
            .await
            .map_err(store_error)?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = match (more, entries.last()) {
            (true, Some(last)) => Some(Cursor::at_sort_key(format!("{:016}#{}", last.seq, last.chain)).encode()),
            _ => None,
        };
        let view = ListView {
            data: entries.iter().map(AuditEntryView::from).collect(),
            next_cursor,
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}

/// `GET /v1/audit`: the merchant's entries, newest first.
pub async fn list(table: &dyn Table, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::AUDIT_READ).await?;
        request.only_query_params(&["kind", "action", "resource_id", "from", "to", "limit", "cursor"])?;
        let mut errors = Vec::new();
        let mut attrs = Vec::new();
        if let Some(text) = request.query_param("kind")? {
            match EntryKind::parse(text) {
                Some(kind) => attrs.push(("kind".to_owned(), kind.as_str().to_owned())),
                None => errors.push(FieldError::new(
                    "kind",
                    "invalid_value",
                    "kind must be one of state_change, api_call, operator_action, webhook_endpoint_change, callback",
                )),
            }
        }
        if let Some(text) = request.query_param("action")? {
            let valid = (1..=100).contains(&text.len())
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/{} ".contains(&b));
            match valid {
                true => attrs.push(("action".to_owned(), text.to_owned())),
                false => errors.push(FieldError::new(
                    "action",
                    "invalid_value",
                    "action is an event type (payment.completed), a route (POST /v1/payouts/{id}/approve) or a callback kind (stk_callback)",
                )),
            }
        }
        if let Some(text) = request.query_param("resource_id")? {
            match id_like(text, "") {
                true => attrs.push(("chain".to_owned(), text.to_owned())),
                false => errors.push(FieldError::new(
                    "resource_id",
                    "invalid_value",
                    "resource_id must be a resource's id, e.g. pay_01J...",
                )),
            }
        }
        let (from, to) = range_params(&request, &mut errors)?;
        let (limit, cursor) = page_params(&request, &mut errors)?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filter = ListFilter { attrs, from, to };
        let page = newest_first(
            table,
            Index::Gsi2,
            &repo::merchant_prefix(principal.merchant.as_str()),
            &filter,
            limit,
            cursor.as_ref(),
        )
        .await
        .map_err(store_error)?;
        let entries = page
            .items
            .iter()
            .map(repo::entry_from_item)
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        let view = ListView {
            data: entries.iter().map(AuditEntryView::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        };
        Ok(ApiResponse::json(StatusCode::OK, &view))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::ROUTES;

    /// Every authenticated route that changes something is recorded: a new one left out of
    /// [`kind_of`] fails here rather than going unaudited.
    #[test]
    fn every_changing_authenticated_route_is_recorded() {
        for route in ROUTES.iter().filter(|r| r.authenticated) {
            let changes = route.method != Method::GET && route.method != Method::HEAD;
            assert_eq!(
                records(route.id, &route.method),
                changes,
                "{} {}: recorded by the audit trail exactly when it changes something",
                route.method,
                route.path
            );
        }
    }
}
