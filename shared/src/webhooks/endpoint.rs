//! A merchant's webhook endpoint: where its events are sent, which ones, and which generations
//! of its signing secret sign them.
//!
//! The signing secret is never stored: it is derived from the deployment's master key, the
//! endpoint's id and its `secret_generation` ([`super::signature::SigningSecret::derive`]).
//! Rotation moves to the next generation; the previous one keeps signing too (both signatures in
//! `webhook-signature`) until `previous_secret_until`, [`ROTATION_OVERLAP_HOURS`] later, so a
//! merchant can deploy the new secret without missing a notification.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::target::WebhookUrl;
use crate::domain::{ClientId, WebhookEndpointId};
use crate::events::EventType;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// At most this many endpoints per merchant (each event is one delivery per endpoint).
pub const MAX_ENDPOINTS_PER_MERCHANT: usize = 16;

/// An endpoint whose deliveries have failed without a success for this long is disabled when
/// one of them fails its last attempt (with a `webhook_endpoint.disabled` event).
pub const AUTO_DISABLE_AFTER_DAYS: i64 = 5;

/// A description is at most this many characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    /// Receives the events it subscribes to.
    Enabled,
    /// Receives nothing new (by the merchant's choice); its pending deliveries still finish.
    Disabled,
}

impl EndpointStatus {
    pub fn parse(text: &str) -> Option<EndpointStatus> {
        match text {
            "enabled" => Some(EndpointStatus::Enabled),
            "disabled" => Some(EndpointStatus::Disabled),
            _ => None,
        }
    }
}

/// The events an endpoint receives: every type (`["*"]` on the wire) or the listed ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "types")]
pub enum EventSelection {
    All,
    Only(Vec<EventType>),
}

impl EventSelection {
    pub fn includes(&self, event_type: EventType) -> bool {
        match self {
            EventSelection::All => true,
            EventSelection::Only(types) => types.contains(&event_type),
        }
    }

    /// Parses the API's `enabled_events`: `["*"]`, or one or more catalogue names (each at most
    /// once). The error names the first entry that is not one.
    pub fn parse(names: &[String]) -> Result<EventSelection, String> {
        if names.is_empty() {
            return Err("enabled_events must list at least one event type, or \"*\" for all".into());
        }
        if names.len() == 1 && names[0] == "*" {
            return Ok(EventSelection::All);
        }
        let mut types = Vec::with_capacity(names.len());
        for name in names {
            let parsed = EventType::parse(name)
                .ok_or_else(|| format!("{name:?} is not an event type (see the event catalogue), nor \"*\""))?;
            if !types.contains(&parsed) {
                types.push(parsed);
            }
        }
        Ok(EventSelection::Only(types))
    }

    /// As the API shows it.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventSelection::All => vec!["*"],
            EventSelection::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    /// The merchant whose events it receives.
    pub merchant: ClientId,
    pub url: WebhookUrl,
    pub events: EventSelection,
    #[serde(default)]
    pub description: Option<String>,
    pub status: EndpointStatus,
    /// The generation of the current signing secret (1 at creation).
    pub secret_generation: u32,
    /// Until when the previous generation also signs (after a rotation).
    #[serde(default)]
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Since when every attempt has failed (cleared by a success).
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was disabled for failing (cleared when the merchant enables it again).
    #[serde(default)]
    pub auto_disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl WebhookEndpoint {
    /// Whether an event of this type goes to this endpoint now.
    pub fn receives(&self, event_type: EventType) -> bool {
        self.status == EndpointStatus::Enabled && self.events.includes(event_type)
    }

    /// The secret generations that sign a message sent at `now`: the current one, and the
    /// previous one during a rotation's overlap.
    pub fn signing_generations(&self, now: DateTime<Utc>) -> Vec<u32> {
        let mut generations = vec![self.secret_generation];
        if let Some(until) = self.previous_secret_until {
            if now < until && self.secret_generation > 1 {
                generations.push(self.secret_generation - 1);
            }
        }
        generations
    }

    /// The endpoint after an attempt's outcome, if that changes it: a success ends a failing
    /// spell; a first failure starts one; a delivery failing its last attempt disables an
    /// endpoint failing for [`AUTO_DISABLE_AFTER_DAYS`]. Called only on those transitions, so a
    /// busy endpoint's item is not written on every attempt.
    pub fn after_outcome(&self, delivered: bool, dead_lettered: bool, now: DateTime<Utc>) -> Option<EndpointChange> {
        let mut next = self.clone();
        next.updated_at = now;
        if delivered {
            next.failing_since = None;
            return self.failing_since.is_some().then_some(EndpointChange::Recovered(next));
        }
        let since = *next.failing_since.get_or_insert(now);
        if dead_lettered
            && self.status == EndpointStatus::Enabled
            && now - since >= Duration::days(AUTO_DISABLE_AFTER_DAYS)
        {
            next.status = EndpointStatus::Disabled;
            next.auto_disabled_at = Some(now);
            return Some(EndpointChange::Disabled(next));
        }
        self.failing_since.is_none().then_some(EndpointChange::Failing(next))
    }

    /// The endpoint after a rotation at `now`: the next generation signs, the current one keeps
    /// signing for the overlap.
    pub fn rotated(&self, now: DateTime<Utc>) -> WebhookEndpoint {
        let mut next = self.clone();
        next.secret_generation = self.secret_generation.saturating_add(1);
        next.previous_secret_until = Some(now + Duration::hours(ROTATION_OVERLAP_HOURS));
        next.updated_at = now;
        next
    }
}

/// How an attempt's outcome changed its endpoint.
#[derive(Debug, Clone)]
pub enum EndpointChange {
    /// The first failure after a success (or ever): its failing spell starts.
    Failing(WebhookEndpoint),
    /// A success ended a failing spell.
    Recovered(WebhookEndpoint),
    /// Failing for days: disabled (its event says so).
    Disabled(WebhookEndpoint),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::target::TargetPolicy;

    fn endpoint(events: EventSelection) -> WebhookEndpoint {
        let now = Utc::now();
        WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            merchant: ClientId::parse("shop").unwrap(),
            url: WebhookUrl::parse("https://hooks.example.com/mpesa", TargetPolicy::production()).unwrap(),
            events,
            description: None,
            status: EndpointStatus::Enabled,
            secret_generation: 1,
            previous_secret_until: None,
            failing_since: None,
            auto_disabled_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn selections_parse_star_or_catalogue_names_and_say_which_entry_is_wrong() {
        assert_eq!(EventSelection::parse(&["*".into()]), Ok(EventSelection::All));
        assert_eq!(
            EventSelection::parse(&["payment.completed".into(), "payment.completed".into()]),
            Ok(EventSelection::Only(vec![EventType::PaymentCompleted]))
        );
        let error = EventSelection::parse(&["payment.completed".into(), "payment.paid".into()]).unwrap_err();
        assert!(error.contains("payment.paid"), "{error}");
        assert!(EventSelection::parse(&[]).is_err());
        assert!(EventSelection::parse(&["*".into(), "payment.sent".into()]).is_err());
    }

    #[test]
    fn a_disabled_endpoint_or_an_unselected_type_receives_nothing() {
        let mut e = endpoint(EventSelection::Only(vec![EventType::PaymentCompleted]));
        assert!(e.receives(EventType::PaymentCompleted));
        assert!(!e.receives(EventType::PaymentFailed));
        e.status = EndpointStatus::Disabled;
        assert!(!e.receives(EventType::PaymentCompleted));
        assert!(endpoint(EventSelection::All).receives(EventType::C2bPaymentLinked));
    }

    #[test]
    fn an_endpoint_failing_for_five_days_is_disabled_when_a_delivery_dead_letters() {
        let start = Utc::now();
        let e = endpoint(EventSelection::All);
        let Some(EndpointChange::Failing(failing)) = e.after_outcome(false, false, start) else {
            panic!("the first failure starts a spell");
        };
        assert_eq!(failing.failing_since, Some(start));
        // Further failures change nothing; a dead letter before 5 days disables nothing.
        assert!(failing.after_outcome(false, false, start + Duration::days(1)).is_none());
        assert!(failing.after_outcome(false, true, start + Duration::days(4)).is_none());
        let Some(EndpointChange::Disabled(disabled)) =
            failing.after_outcome(false, true, start + Duration::days(AUTO_DISABLE_AFTER_DAYS))
        else {
            panic!("failing for 5 days and a dead letter disables it");
        };
        assert_eq!(disabled.status, EndpointStatus::Disabled);
        assert!(disabled.auto_disabled_at.is_some());
        // A success ends the spell.
        let Some(EndpointChange::Recovered(recovered)) = failing.after_outcome(true, false, start) else {
            panic!("a success ends the spell");
        };
        assert_eq!(recovered.failing_since, None);
        assert!(
            e.after_outcome(true, false, start).is_none(),
            "a success on a healthy endpoint"
        );
    }

    #[test]
    fn after_a_rotation_both_generations_sign_until_the_overlap_ends() {
        let e = endpoint(EventSelection::All);
        let now = Utc::now();
        assert_eq!(e.signing_generations(now), vec![1]);
        let rotated = e.rotated(now);
        assert_eq!(rotated.signing_generations(now), vec![2, 1]);
        let later = now + Duration::hours(ROTATION_OVERLAP_HOURS) + Duration::seconds(1);
        assert_eq!(rotated.signing_generations(later), vec![2]);
        // Rotating again during the overlap retires generation 1 at once.
        assert_eq!(rotated.rotated(now).signing_generations(now), vec![3, 2]);
    }
}
