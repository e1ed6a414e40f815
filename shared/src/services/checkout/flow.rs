//! Checkout sessions on the settle engine: the page (an attempt started), the payments (an
//! attempt's outcome), the shop and the sweeper (closing) all move sessions through
//! [`SessionSettler`], and every change writes its event ([`session_event`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::checkout_session::{
    decide, ChangedBy, CheckoutSession, CheckoutSessionId, SessionDecision, SessionEvent, SessionIgnored, SessionStatus,
};
use crate::engine::{self, Flow, IgnoreReason};
use crate::events::{Cause, EventRecord, EventType, ResourceKind};
use crate::metrics;
use crate::repo::checkout_sessions::{self as repo, SessionRepo};
use crate::store::{StoreError, Table, Write};
use crate::views::checkout::CheckoutSessionView;

#[derive(Debug, Clone, Copy, Default)]
pub struct SessionFlow;

pub type SessionSettler = engine::Settler<SessionFlow>;
pub type SessionSettled = engine::Settled<SessionFlow>;

impl engine::Settler<SessionFlow> {
    pub fn sessions(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> SessionSettler {
        engine::Settler::new(SessionFlow, table, clock)
    }
}

impl IgnoreReason for SessionIgnored {
    fn code(&self) -> &'static str {
        SessionIgnored::code(self)
    }

    fn is_anomaly(&self) -> bool {
        SessionIgnored::is_anomaly(self)
    }

    fn is_duplicate(&self) -> bool {
        matches!(self, SessionIgnored::Duplicate)
    }
}

#[async_trait]
impl Flow for SessionFlow {
    type Id = CheckoutSessionId;
    type Entity = CheckoutSession;
    type Event = SessionEvent;
    type Ignored = SessionIgnored;

    const UNKNOWN_REASON: &'static str = "unknown_checkout_session";

    async fn load(&self, table: &dyn Table, id: &CheckoutSessionId) -> Result<Option<CheckoutSession>, StoreError> {
        repo::get(table, id).await
    }

    fn decide(
        session: &CheckoutSession,
        event: &SessionEvent,
        now: DateTime<Utc>,
    ) -> Result<CheckoutSession, SessionIgnored> {
        match decide(session, event, now) {
            SessionDecision::Apply(next) => Ok(*next),
            SessionDecision::Ignore(why) => Err(why),
        }
    }

    fn update(after: &CheckoutSession) -> Write {
        SessionRepo::update(after)
    }

    fn version(session: &CheckoutSession) -> u64 {
        session.version
    }

    fn set_version(session: &mut CheckoutSession, version: u64) {
        session.version = version;
    }

    fn resource_id(session: &CheckoutSession) -> String {
        session.id.to_string()
    }

    fn event(before: Option<&CheckoutSession>, after: &CheckoutSession, now: DateTime<Utc>) -> Option<EventRecord> {
        match before {
            Some(before) => session_event(before, after, now),
            None => Some(session_created(after, now)),
        }
    }

    fn observe(outcome: &SessionSettled) {
        match outcome {
            SessionSettled::Applied { before, after } if before.status != after.status => {
                metrics::count("CheckoutSessionTransitions", 1, &[("Status", after.status.as_str())]);
                tracing::info!(session = ?after.id, from = before.status.as_str(), to = after.status.as_str(), "checkout session moved");
            }
            SessionSettled::Unchanged { why, entity } if why.is_anomaly() => {
                metrics::count("CallbackAnomalies", 1, &[("Reason", why.code())]);
                tracing::warn!(session = ?entity.id, reason = why.code(), "anomalous checkout session event not applied");
            }
            _ => {}
        }
    }
}

fn cause_of(by: ChangedBy) -> Cause {
    match by {
        ChangedBy::Merchant => Cause::Api,
        ChangedBy::Customer => Cause::Customer,
        ChangedBy::Payment => Cause::Callback,
        ChangedBy::Sweeper => Cause::Sweeper,
    }
}

fn event_of(event_type: EventType, session: &CheckoutSession, now: DateTime<Utc>) -> EventRecord {
    EventRecord::new(
        event_type,
        ResourceKind::CheckoutSession,
        session.id.as_str(),
        session.version,
        Some(session.owner.to_string()),
        cause_of(session.last_changed_by),
        now,
        crate::events::data_of(&CheckoutSessionView::from(session)),
    )
}

/// The event of a new session (at version 1).
pub fn session_created(session: &CheckoutSession, now: DateTime<Utc>) -> EventRecord {
    event_of(EventType::CheckoutSessionCreated, session, now)
}

/// The event of a change from `before` to `after`: a new status, else a new attempt or an
/// attempt that failed (a late success on a completed session changes an attempt only: no
/// event of the session, the payment's own `payment.completed` tells it).
pub fn session_event(before: &CheckoutSession, after: &CheckoutSession, now: DateTime<Utc>) -> Option<EventRecord> {
    let event_type = match (before.status, after.status) {
        (b, SessionStatus::Completed) if b != SessionStatus::Completed => EventType::CheckoutSessionCompleted,
        (SessionStatus::Open, SessionStatus::Expired) => EventType::CheckoutSessionExpired,
        _ if after.attempts.len() > before.attempts.len() => EventType::CheckoutSessionAttemptStarted,
        (SessionStatus::Open, SessionStatus::Open) => EventType::CheckoutSessionAttemptFailed,
        _ => return None,
    };
    Some(event_of(event_type, after, now))
}
