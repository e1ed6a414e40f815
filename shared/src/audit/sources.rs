//! What each recorder appends: an event (a state change), a callback with its verdict, an API
//! call. Each is redacted here: events carry public views (phones masked), callbacks their
//! verdict and size but never their body, calls their route and status but never their body.

use chrono::{DateTime, Utc};

use super::entry::{Actor, EntryKind, ResourceRef, MAX_USER_AGENT};
use super::log::NewEntry;
use crate::events::{Cause, EventRecord, ResourceKind};
use crate::repo::callbacks::{CallbackRecord, Verdict};
use crate::repo::shard_of;

fn resource_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Payment => "payment",
        ResourceKind::Payout => "payout",
        ResourceKind::C2bPayment => "c2b_payment",
        ResourceKind::WebhookEndpoint => "webhook_endpoint",
        ResourceKind::CheckoutSession => "checkout_session",
    }
}

fn actor_of(cause: Cause) -> &'static str {
    match cause {
        Cause::Api => "api",
        Cause::Daraja | Cause::Sweeper => "system",
        Cause::Callback => "safaricom",
        Cause::Operator => "operator",
        Cause::Customer => "customer",
    }
}

/// A state change: the event's type, cause and the resource's public view after it.
pub fn of_event(event: &EventRecord) -> NewEntry {
    let cause = serde_json::to_value(event.cause).unwrap_or_default();
    let data: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
    NewEntry {
        chain: event.resource_id.clone(),
        source: event.id.clone(),
        merchant: event.merchant.clone(),
        kind: EntryKind::StateChange,
        action: event.event_type.as_str().to_owned(),
        actor: Actor {
            actor_type: actor_of(event.cause).to_owned(),
            ..Actor::default()
        },
        resource: Some(ResourceRef {
            resource_type: resource_type(event.resource).to_owned(),
            id: event.resource_id.clone(),
        }),
        outcome: "recorded".into(),
        detail: serde_json::json!({
            "event_id": event.id,
            "sequence": event.sequence,
            "cause": cause,
            "data": data,
        }),
        occurred_at: event.occurred_at,
    }
}

/// Callbacks that name no resource (forged, malformed) go to a chain per day and shard, so a
/// flood of junk never contends on one head.
pub fn unmatched_callbacks_chain(received_at: DateTime<Utc>, message_id: &str) -> String {
    format!("callbacks_{}_{}", received_at.format("%Y%m%d"), shard_of(message_id))
}

fn callback_resource_type(kind: &str) -> &'static str {
    if kind.starts_with("stk") {
        "payment"
    } else if kind.starts_with("c2b") {
        "c2b_payment"
    } else {
        "payout"
    }
}

/// A callback with its verdict: `applied`, `duplicate`, `ignored`, `anomaly`, or `forged` when
/// its path token did not verify. Never its body (it holds phones and names).
pub fn of_callback(record: &CallbackRecord) -> NewEntry {
    let outcome = if !record.is_authenticated() {
        "forged"
    } else {
        match record.verdict {
            Verdict::Applied => "applied",
            Verdict::Duplicate => "duplicate",
            Verdict::Ignored => "ignored",
            Verdict::Anomaly => "anomaly",
        }
    };
    let chain = match &record.resource_id {
        Some(id) => id.clone(),
        None => unmatched_callbacks_chain(record.received_at, &record.message_id),
    };
    NewEntry {
        chain,
        source: format!("cb_{}", record.message_id),
        merchant: None,
        kind: EntryKind::Callback,
        action: record.kind.clone(),
        actor: Actor {
            actor_type: "safaricom".into(),
            source_ip: record.source_ip.clone(),
            request_id: Some(record.request_id.clone()).filter(|r| !r.is_empty()),
            ..Actor::default()
        },
        resource: record.resource_id.as_ref().map(|id| ResourceRef {
            resource_type: callback_resource_type(&record.kind).to_owned(),
            id: id.clone(),
        }),
        outcome: outcome.into(),
        detail: serde_json::json!({
            "reason": record.reason,
            "message_id": record.message_id,
            "body_bytes": record.body_bytes.max(record.body.len()),
        }),
        occurred_at: record.received_at,
    }
}

/// A merchant's API call that changed something, as the HTTP edge saw it.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub kind: EntryKind,
    /// `POST /v1/payouts/{id}/approve`: the route, not the path (ids are in `resource`).
    pub route: String,
    pub path: String,
    pub status: u16,
    pub subject: String,
    pub merchant: String,
    /// The caller acted with `platform:operator` on another merchant's resource.
    pub operator: bool,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub resource: Option<ResourceRef>,
    pub idempotency_key: Option<String>,
    /// The answer was a stored first response (`Idempotent-Replayed`): nothing changed again.
    pub replayed: bool,
    pub at: DateTime<Utc>,
}

/// An API call: on the resource's chain, or (a call that names none) on the merchant's own.
pub fn of_api_call(call: ApiCall) -> NewEntry {
    let chain = match &call.resource {
        Some(resource) => resource.id.clone(),
        None => format!("merchant_{}", call.merchant),
    };
    let user_agent = call.user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    let mut detail = serde_json::json!({
        "path": call.path,
        "status": call.status,
    });
    if let Some(key) = &call.idempotency_key {
        detail["idempotency_key"] = serde_json::json!(key.chars().take(255).collect::<String>());
    }
    if call.replayed {
        detail["replayed"] = serde_json::json!(true);
    }
    NewEntry {
        chain,
        source: format!("api_{}", call.request_id),
        merchant: Some(call.merchant.clone()),
        kind: call.kind,
        action: call.route,
        actor: Actor {
            actor_type: if call.operator { "operator" } else { "api" }.into(),
            subject: Some(call.subject),
            merchant: Some(call.merchant),
            source_ip: call.source_ip,
            user_agent,
            request_id: Some(call.request_id),
        },
        resource: call.resource,
        outcome: call.status.to_string(),
        detail,
        occurred_at: call.at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[test]
    fn a_callback_entry_keeps_the_verdict_and_never_the_body() {
        let at = Utc::now();
        let mut record = CallbackRecord {
            message_id: "m-1".into(),
            kind: "stk_callback".into(),
            received_at: at,
            processed_at: at,
            source_ip: Some("196.201.214.200".into()),
            request_id: "r-1".into(),
            resource_id: Some("pay_1".into()),
            verdict: Verdict::Applied,
            reason: "applied".into(),
            body: r#"{"PhoneNumber":254712345678,"FirstName":"Jane"}"#.into(),
            body_truncated: false,
            body_bytes: 0,
        };
        let entry = of_callback(&record);
        assert_eq!((entry.chain.as_str(), entry.outcome.as_str()), ("pay_1", "applied"));
        let text = serde_json::to_string(&entry.detail).unwrap() + &format!("{:?}", entry.actor);
        assert!(!text.contains("254712345678") && !text.contains("Jane"), "{text}");
        record.reason = "invalid_token".into();
        record.verdict = Verdict::Anomaly;
        record.resource_id = None;
        let forged = of_callback(&record);
        assert_eq!(forged.outcome, "forged");
        assert!(forged.chain.starts_with("callbacks_"), "{}", forged.chain);
    }

    #[test]
    fn an_event_entry_is_on_its_resource_chain() {
        let event = EventRecord::new(
            EventType::PayoutApproved,
            ResourceKind::Payout,
            "po_1",
            4,
            Some("shop".into()),
            Cause::Operator,
            Utc::now(),
            crate::events::empty_data(),
        );
        let entry = of_event(&event);
        assert_eq!(
            (
                entry.chain.as_str(),
                entry.action.as_str(),
                entry.actor.actor_type.as_str()
            ),
            ("po_1", "payout.approved", "operator")
        );
        assert_eq!(entry.source, event.id);
    }
}
