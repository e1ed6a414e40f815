//! The payment page's live channel on AWS: an API Gateway WebSocket API.
//!
//! - `$connect` (`wss://<api>/<stage>?session=cs_...&lang=sw`) is authorised by the session
//!   alone, as the page is: an open session, counted per client address and per session like a
//!   page load, at most [`MAX_CONNECTIONS_PER_SESSION`] connections each; the connection is
//!   recorded in the connections table ([`LiveConnections`]). Any refusal leaves the page
//!   polling, which it does by itself.
//! - `$disconnect` forgets it; `$default` (the page sends nothing) is ignored.
//! - [`LivePush`], a consumer of the outbox in the events function, pushes the page's status JSON
//!   (the one `GET /pay/{session}/status` answers) to each of the session's connections through
//!   the `@connections` management API whenever the session or its attempt's payment changes;
//!   once the page has its outcome the connection is closed. A push is best effort: it never
//!   fails the event (the page polls every few seconds; retrying a push minutes later helps
//!   nobody), a connection found gone is forgotten.
//!
//! API Gateway cannot send on a connection before `$connect` has answered, so the page asks for
//! the status once when its socket opens: a change between the page's render and the connection
//! is never missed.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;

use super::client_limits::{PublicLimits, Verdict};
use super::page::StatusAnswers;
use crate::clock::Clock;
use crate::domain::checkout_session::{CheckoutSessionId, SessionStatus};
use crate::events::handler::EventConsumer;
use crate::events::{EventRecord, ResourceKind};
use crate::metrics;
use crate::pages::checkout::Lang;
use crate::repo::checkout_sessions::SessionRepo;
use crate::repo::live_connections::{ConnectionId, LiveConnection, LiveConnections, MAX_CONNECTIONS_PER_SESSION};

/// The session an event is about: a session's own event, or its attempt's payment's.
pub fn session_of(event: &EventRecord) -> Option<CheckoutSessionId> {
    let id = match event.resource {
        ResourceKind::CheckoutSession => event.resource_id.clone(),
        ResourceKind::Payment => {
            #[derive(serde::Deserialize)]
            struct Linked {
                checkout_session: Option<String>,
            }
            serde_json::from_str::<Linked>(event.data.get())
                .ok()?
                .checkout_session?
        }
        _ => return None,
    };
    CheckoutSessionId::parse(&id).ok()
}

/// Sends to one WebSocket connection (API Gateway's `@connections` API).
#[async_trait]
pub trait ConnectionSender: Send + Sync {
    async fn send(&self, connection: &ConnectionId, message: &str) -> Result<(), SendError>;
    /// Closes the connection from our side.
    async fn close(&self, connection: &ConnectionId) -> Result<(), SendError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed (`410 GoneException`): forget it.
    #[error("the connection is gone")]
    Gone,
    /// Anything else (throttled, unreachable): the page polls meanwhile.
    #[error("push failed: {0}")]
    Failed(String),
}

// ------------------------------------------------------------------ $connect / $disconnect

/// What the WebSocket API's routes need.
pub struct LiveGateway {
    pub sessions: SessionRepo,
    pub connections: LiveConnections,
    /// The page routes' limits (per client address, per session), per warm instance; the stage's
    /// throttle bounds the whole API.
    pub limits: PublicLimits,
    pub clock: Arc<dyn Clock>,
}

/// The parts of API Gateway's WebSocket proxy event that are used.
#[derive(Debug, serde::Deserialize)]
struct WebSocketEvent {
    #[serde(rename = "requestContext")]
    context: RequestContext,
    #[serde(rename = "queryStringParameters", default)]
    query: Option<HashMap<String, String>>,
}

#[derive(Debug, serde::Deserialize)]
struct RequestContext {
    #[serde(rename = "routeKey")]
    route_key: String,
    #[serde(rename = "connectionId")]
    connection_id: String,
    #[serde(default)]
    identity: Identity,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Identity {
    #[serde(rename = "sourceIp")]
    source_ip: Option<String>,
}

impl LiveGateway {
    /// Answers one WebSocket API event (`$connect`, `$disconnect`, `$default`) with the status
    /// API Gateway acts on (`$connect`: anything but 2xx refuses the connection).
    pub async fn handle(&self, event: &serde_json::Value) -> serde_json::Value {
        let status = match serde_json::from_value::<WebSocketEvent>(event.clone()) {
            Ok(event) => self.route(event).await,
            Err(error) => {
                tracing::warn!(%error, "not a WebSocket API event");
                StatusCode::BAD_REQUEST
            }
        };
        serde_json::json!({ "statusCode": status.as_u16() })
    }

    async fn route(&self, event: WebSocketEvent) -> StatusCode {
        let Ok(connection) = ConnectionId::parse(&event.context.connection_id) else {
            return StatusCode::BAD_REQUEST;
        };
        match event.context.route_key.as_str() {
            "$connect" => {
                let query = event.query.unwrap_or_default();
                let client = event.context.identity.source_ip.unwrap_or_else(|| "unknown".to_owned());
                let status = self
                    .connect(
                        connection,
                        query.get("session").map(String::as_str),
                        query.get("lang").map(String::as_str),
                        &client,
                    )
                    .await;
                metrics::count("LiveConnects", 1, &[("Outcome", connect_outcome(status))]);
                status
            }
            "$disconnect" => match self.connections.forget(&connection).await {
                Ok(()) => StatusCode::OK,
                Err(error) => {
                    // Its item expires by TTL; a push that finds it gone forgets it sooner.
                    tracing::warn!(%error, "could not forget a closed live connection");
                    StatusCode::OK
                }
            },
            _ => StatusCode::OK,
        }
    }

    /// Admits a page's connection for `session`: [`StatusCode::OK`], or why not.
    pub async fn connect(
        &self,
        connection: ConnectionId,
        session: Option<&str>,
        lang: Option<&str>,
        client: &str,
    ) -> StatusCode {
        let Some(session) = session.and_then(|s| CheckoutSessionId::parse(s).ok()) else {
            return StatusCode::NOT_FOUND;
        };
        if let Verdict::Limited { .. } = self.limits.admit(client, session.as_str(), false) {
            return StatusCode::TOO_MANY_REQUESTS;
        }
        match self.sessions.get(&session).await {
            Ok(Some(found)) if found.status == SessionStatus::Open => {}
            // Nothing more will happen to it: the page shows its outcome without a channel.
            Ok(Some(_)) => return StatusCode::GONE,
            Ok(None) => return StatusCode::NOT_FOUND,
            Err(error) => {
                tracing::warn!(%error, "live connect: session unreadable");
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        match self.connections.of_session(&session).await {
            Ok(open) if open.len() >= MAX_CONNECTIONS_PER_SESSION => return StatusCode::TOO_MANY_REQUESTS,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "live connect: connections unreadable");
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        let record = LiveConnection {
            connection,
            session,
            lang: lang.and_then(Lang::from_query).unwrap_or_default(),
            connected_at: self.clock.now(),
        };
        match self.connections.register(&record).await {
            Ok(()) => StatusCode::OK,
            Err(error) => {
                tracing::warn!(%error, "live connect: not recorded");
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

fn connect_outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::OK => "connected",
        StatusCode::NOT_FOUND => "unknown_session",
        StatusCode::GONE => "session_closed",
        StatusCode::TOO_MANY_REQUESTS => "limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "refused",
    }
}

// ------------------------------------------------------------------ pushes from the outbox

/// Pushes a session's status to its open pages (a consumer of the outbox; after the one that
/// ends attempts, so the status already says how an attempt ended).
pub struct LivePush {
    pub answers: StatusAnswers,
    pub connections: LiveConnections,
    pub sender: Arc<dyn ConnectionSender>,
}

/// What one event's pushes did (for tests and the metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushReport {
    pub sent: usize,
    pub gone: usize,
    pub failed: usize,
    pub closed: usize,
}

impl LivePush {
    /// Pushes `session`'s status to each of its connections.
    pub async fn push(&self, session: &CheckoutSessionId) -> Result<PushReport, String> {
        let connections = self
            .connections
            .of_session(session)
            .await
            .map_err(|e| format!("connections unreadable: {e}"))?;
        let mut report = PushReport::default();
        if connections.is_empty() {
            return Ok(report);
        }
        let mut by_lang = HashMap::new();
        for connection in &connections {
            let status = match by_lang.entry(connection.lang) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(
                    self.answers
                        .answer(session, connection.lang)
                        .await
                        .map_err(|e| format!("status unreadable: {e}"))?,
                ),
            };
            match self.sender.send(&connection.connection, &status.json).await {
                Ok(()) => {
                    report.sent += 1;
                    if !status.waiting {
                        // The page has its outcome: nothing more to push.
                        let _ = self.sender.close(&connection.connection).await;
                        self.forget(&connection.connection).await;
                        report.closed += 1;
                    }
                }
                Err(SendError::Gone) => {
                    self.forget(&connection.connection).await;
                    report.gone += 1;
                }
                Err(SendError::Failed(error)) => {
                    tracing::warn!(%error, "live push failed; the page polls");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn forget(&self, connection: &ConnectionId) {
        if let Err(error) = self.connections.forget(connection).await {
            tracing::warn!(%error, "could not forget a live connection; it expires by TTL");
        }
    }
}

#[async_trait]
impl EventConsumer for LivePush {
    fn name(&self) -> &'static str {
        "live_status"
    }

    async fn consume(&self, event: &EventRecord) -> Result<(), String> {
        let Some(session) = session_of(event) else {
            return Ok(());
        };
        match self.push(&session).await {
            Ok(report) => {
                if report.sent > 0 {
                    metrics::count("LivePushes", report.sent as u64, &[("Outcome", "sent")]);
                }
                if report.failed > 0 {
                    metrics::count("LivePushes", report.failed as u64, &[("Outcome", "failed")]);
                }
            }
            // Best effort: the page polls; the event's other consumers must not run again for it.
            Err(error) => {
                // Never the session id in logs: it is the page's credential.
                tracing::warn!(%error, "live push skipped; the page polls");
                metrics::count("LivePushes", 1, &[("Outcome", "failed")]);
            }
        }
        Ok(())
    }
}
