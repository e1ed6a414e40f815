//! `/v1/webhook-endpoints` (a merchant's endpoints), `GET /v1/events/{id}/deliveries` and
//! `POST /v1/events/{id}/redeliver`. Scopes `webhooks:read` and `webhooks:write`. The signing
//! secret (`whsec_...`) is in the answer of a creation and of a rotation only.
//!
//! Fields: `url` (https, public; code `invalid_url`), `enabled_events` (`["*"]` or catalogue
//! names; code `invalid_value`), `description` (at most 200 characters; code `too_long`),
//! `status` on update (`enabled` or `disabled`; code `invalid_value`).

use http::StatusCode;
use serde::Serialize;

use super::auth::Authenticator;
use super::http::{ApiRequest, ApiResponse, JsonObject};
use super::problem::{ApiError, FieldError};
use super::respond;
use crate::auth::scopes;
use crate::domain::WebhookEndpointId;
use crate::views::webhooks::{DeliveryView, EndpointView};
use crate::views::ListView;
use crate::webhooks::endpoint::{EndpointStatus, EventSelection, MAX_DESCRIPTION_CHARS};
use crate::webhooks::service::{EndpointChanges, NewEndpoint, WebhookEndpoints, WithSecret};
use crate::webhooks::target::{TargetPolicy, WebhookUrl};

const MAX_BODY_BYTES: usize = 8 * 1024;

fn with_secret(created: &WithSecret) -> EndpointView {
    EndpointView {
        secret: Some(created.secret.to_whsec()),
        ..EndpointView::from(&created.endpoint)
    }
}

fn list_of<T: Serialize>(data: Vec<T>) -> ApiResponse {
    ApiResponse::json(
        StatusCode::OK,
        &ListView {
            data,
            next_cursor: None,
        },
    )
}

fn endpoint_id(request: &ApiRequest) -> Result<WebhookEndpointId, ApiError> {
    request
        .path_param("id")
        .and_then(|id| WebhookEndpointId::parse(id).ok())
        .ok_or(ApiError::NotFound {
            resource: "webhook endpoint",
        })
}

fn event_id(request: &ApiRequest) -> Result<String, ApiError> {
    request
        .path_param("id")
        .filter(|id| {
            id.starts_with("evt_") && id.len() <= 96 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map(str::to_owned)
        .ok_or(ApiError::NotFound { resource: "event" })
}

fn url_field(
    body: &JsonObject,
    policy: TargetPolicy,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<WebhookUrl> {
    match body.get("url") {
        None if required => {
            errors.push(FieldError::new("url", "required", "url is required"));
            None
        }
        None => None,
        Some(serde_json::Value::String(text)) => match WebhookUrl::parse(text, policy) {
            Ok(url) => Some(url),
            Err(error) => {
                errors.push(FieldError::new("url", "invalid_url", format!("url {error}")));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("url", "invalid_type", "url must be a string"));
            None
        }
    }
}

fn events_field(body: &JsonObject, required: bool, errors: &mut Vec<FieldError>) -> Option<EventSelection> {
    let invalid = |errors: &mut Vec<FieldError>, message: String| {
        errors.push(FieldError::new("enabled_events", "invalid_value", message));
        None
    };
    match body.get("enabled_events") {
        None if required => {
            errors.push(FieldError::new(
                "enabled_events",
                "required",
                "enabled_events is required: [\"*\"] for every event, or a list of event types",
            ));
            None
        }
        None => None,
        Some(serde_json::Value::Array(items)) if items.len() <= 64 => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(name) => names.push(name.to_owned()),
                    None => return invalid(errors, "enabled_events must be a list of strings".into()),
                }
            }
            match EventSelection::parse(&names) {
                Ok(selection) => Some(selection),
                Err(message) => invalid(errors, message),
            }
        }
        Some(_) => invalid(errors, "enabled_events must be a list of at most 64 event types".into()),
    }
}

/// `Some(None)`: present and null or empty (cleared).
fn description_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<Option<String>> {
    if !body.values.contains_key("description") {
        return None;
    }
    match body.get("description") {
        None => Some(None),
        Some(serde_json::Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
            errors.push(FieldError::new(
                "description",
                "too_long",
                format!("description is at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
            None
        }
        Some(serde_json::Value::String(text)) if text.chars().any(char::is_control) => {
            errors.push(FieldError::new(
                "description",
                "invalid_value",
                "description must not contain control characters",
            ));
            None
        }
        Some(serde_json::Value::String(text)) => Some((!text.trim().is_empty()).then(|| text.trim().to_owned())),
        Some(_) => {
            errors.push(FieldError::new(
                "description",
                "invalid_type",
                "description must be a string",
            ));
            None
        }
    }
}

fn status_field(body: &JsonObject, errors: &mut Vec<FieldError>) -> Option<EndpointStatus> {
    let value = body.get("status")?;
    match value.as_str().and_then(EndpointStatus::parse) {
        Some(status) => Some(status),
        None => {
            errors.push(FieldError::new(
                "status",
                "invalid_value",
                "status must be enabled or disabled",
            ));
            None
        }
    }
}

pub async fn create(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        let body = request.json_object(MAX_BODY_BYTES)?;
        let mut errors = body.unknown_fields(&["url", "enabled_events", "description"]);
        let url = url_field(&body, service.policy, true, &mut errors);
        let events = events_field(&body, true, &mut errors);
        let description = description_field(&body, &mut errors).flatten();
        let (Some(url), Some(events), true) = (url, events, errors.is_empty()) else {
            return Err(ApiError::Validation(errors));
        };
        let created = service
            .create(
                &principal.merchant,
                NewEndpoint {
                    url,
                    events,
                    description,
                },
            )
            .await?;
        Ok(ApiResponse::json(StatusCode::CREATED, &with_secret(&created)))
    })
    .await
}

pub async fn list(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_READ).await?;
        request.only_query_params(&[])?;
        let endpoints = service.list(&principal.merchant).await?;
        Ok(list_of(endpoints.iter().map(EndpointView::from).collect()))
    })
    .await
}

pub async fn get(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_READ).await?;
        let endpoint = service.get(&principal.merchant, &endpoint_id(&request)?).await?;
        Ok(ApiResponse::json(StatusCode::OK, &EndpointView::from(&endpoint)))
    })
    .await
}

pub async fn update(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        let id = endpoint_id(&request)?;
        let body = request.json_object(MAX_BODY_BYTES)?;
        let mut errors = body.unknown_fields(&["url", "enabled_events", "description", "status"]);
        let changes = EndpointChanges {
            url: url_field(&body, service.policy, false, &mut errors),
            events: events_field(&body, false, &mut errors),
            description: description_field(&body, &mut errors),
            status: status_field(&body, &mut errors),
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let endpoint = service.update(&principal.merchant, &id, changes).await?;
        Ok(ApiResponse::json(StatusCode::OK, &EndpointView::from(&endpoint)))
    })
    .await
}

pub async fn delete(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        service.delete(&principal.merchant, &endpoint_id(&request)?).await?;
        Ok(ApiResponse {
            status: StatusCode::NO_CONTENT,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        })
    })
    .await
}

pub async fn rotate_secret(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        let rotated = service
            .rotate_secret(&principal.merchant, &endpoint_id(&request)?)
            .await?;
        Ok(ApiResponse::json(StatusCode::OK, &with_secret(&rotated)))
    })
    .await
}

pub async fn deliveries(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_READ).await?;
        request.only_query_params(&[])?;
        let deliveries = service.deliveries(&principal.merchant, &event_id(&request)?).await?;
        Ok(list_of(deliveries.iter().map(DeliveryView::from).collect()))
    })
    .await
}

pub async fn redeliver(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        let event = event_id(&request)?;
        // An empty body redelivers to every endpoint that receives the event.
        let only = if request.body.is_empty() {
            None
        } else {
            let body = request.json_object(MAX_BODY_BYTES)?;
            let mut errors = body.unknown_fields(&["endpoint_id"]);
            let only = match body.get("endpoint_id") {
                None => None,
                Some(value) => match value.as_str().and_then(|id| WebhookEndpointId::parse(id).ok()) {
                    Some(id) => Some(id),
                    None => {
                        errors.push(FieldError::new(
                            "endpoint_id",
                            "invalid_value",
                            "endpoint_id must be a webhook endpoint's id (we_...)",
                        ));
                        None
                    }
                },
            };
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            only
        };
        let deliveries = service.redeliver(&principal.merchant, &event, only.as_ref()).await?;
        Ok(ApiResponse::json(
            StatusCode::ACCEPTED,
            &ListView {
                data: deliveries.iter().map(DeliveryView::from).collect::<Vec<_>>(),
                next_cursor: None,
            },
        ))
    })
    .await
}

pub async fn redrive(service: &WebhookEndpoints, auth: &Authenticator, request: ApiRequest) -> ApiResponse {
    respond(&request.request_id, async {
        let principal = auth.require(&request, scopes::WEBHOOKS_WRITE).await?;
        let done = service.redrive(&principal.merchant, &endpoint_id(&request)?).await?;
        Ok(ApiResponse::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"object": "webhook_redrive", "redriven": done.redriven, "more": done.more}),
        ))
    })
    .await
}
