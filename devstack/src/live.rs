//! The payment page's live channel in the dev stack: a WebSocket on the API port,
//! `GET /pay/live?session=<id>&lang=<code>` (the shape of the WebSocket API's URL on AWS), that pushes the page's status JSON (the one `GET
//! /pay/{session}/status` answers) whenever the session or its attempt's payment changes. The
//! pushes come from the outbox (an [`EventConsumer`], after the one that ends attempts), so the
//! page learns an outcome as soon as it is settled instead of at its next poll; the page falls
//! back to polling by itself when the socket fails.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use checkout::api::checkout::client_limits::Verdict;
use checkout::api::checkout::live::session_of;
use checkout::api::checkout::CheckoutPages;
use checkout::domain::CheckoutSessionId;
use checkout::events::handler::EventConsumer;
use checkout::events::EventRecord;
use checkout::pages::checkout::Lang;
use tokio::sync::broadcast;

/// Changes kept for a slow socket before it is told to read the state afresh.
const BACKLOG: usize = 1024;

/// Which sessions changed, for the open sockets.
pub struct LiveSessions {
    changes: broadcast::Sender<String>,
}

impl LiveSessions {
    pub fn new() -> Arc<LiveSessions> {
        let (changes, _) = broadcast::channel(BACKLOG);
        Arc::new(LiveSessions { changes })
    }
}

#[async_trait]
impl EventConsumer for LiveSessions {
    fn name(&self) -> &'static str {
        "live_status"
    }

    async fn consume(&self, event: &EventRecord) -> Result<(), String> {
        if let Some(session) = session_of(event) {
            // Nobody listening is fine: a page that is not open polls when it opens.
            let _ = self.changes.send(session.as_str().to_owned());
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
pub struct LiveQuery {
    session: Option<String>,
    lang: Option<String>,
}

/// What the socket route needs: the page's services and the changes.
pub struct LiveRoute {
    pub pages: Arc<CheckoutPages>,
    pub sessions: Arc<LiveSessions>,
}

pub async fn socket(
    State(route): State<Arc<LiveRoute>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Query(query): Query<LiveQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(Ok(id)) = query.session.as_deref().map(CheckoutSessionId::parse) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Verdict::Limited { .. } = route.pages.admit_live(Some(peer.ip()), &id) {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    let lang = query.lang.as_deref().and_then(Lang::from_query).unwrap_or_default();
    upgrade.on_upgrade(move |socket| push(socket, route, id, lang))
}

/// Sends the state now (a change between the page's render and this connection is not missed),
/// then after every change of the session, until the page stops waiting or goes away.
async fn push(mut socket: WebSocket, route: Arc<LiveRoute>, id: CheckoutSessionId, lang: Lang) {
    let mut changes = route.sessions.changes.subscribe();
    loop {
        let Ok(answer) = route.pages.status_answer(&id, lang).await else {
            break;
        };
        if socket.send(Message::Text(answer.json.into())).await.is_err() || !answer.waiting {
            break;
        }
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(changed) if changed == id.as_str() => break,
                    Ok(_) => continue,
                    // Missed some: read the state afresh.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                },
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
