//! The payment page's open live connections (API Gateway WebSocket API), in a table of their own
//! (`LIVE_CONNECTIONS_TABLE`: no stream, items expire by TTL).
//!
//! - item `LIVE#<connection>`: which session and language the connection listens for;
//! - `gsi1` `LIVE#<session>` / `<connection>`: a session's connections, for the pushes.
//!
//! A connection that closed without its `$disconnect` (API Gateway does not promise one) is
//! forgotten when a push finds it gone, or by TTL after API Gateway's two-hour limit.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::checkout_session::CheckoutSessionId;
use crate::pages::checkout::Lang;
use crate::store::{Condition, Index, Item, Query, StoreError, Table, Write};

/// API Gateway closes a WebSocket connection after two hours at most; its item outlives it a
/// little, never forever.
pub const CONNECTION_LIFETIME: chrono::Duration = chrono::Duration::seconds(2 * 3600 + 300);

/// Open connections one session may have (a customer with the page open on a phone and a
/// laptop, a few reloads); more are refused, and the page polls.
pub const MAX_CONNECTIONS_PER_SESSION: usize = 5;

/// An API Gateway connection id (`L0SM9cOFvHcCIhw=`): what `@connections/{id}` is addressed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a connection id (1-128 letters, digits, '=', '-', '_', '+' or '/')")]
pub struct NotAConnectionId;

impl ConnectionId {
    pub fn parse(text: &str) -> Result<ConnectionId, NotAConnectionId> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '=' | '-' | '_' | '+' | '/');
        if (1..=128).contains(&text.len()) && text.chars().all(allowed) {
            Ok(ConnectionId(text.to_owned()))
        } else {
            Err(NotAConnectionId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = NotAConnectionId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        ConnectionId::parse(&text)
    }
}

impl From<ConnectionId> for String {
    fn from(id: ConnectionId) -> String {
        id.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One open connection of a session's page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveConnection {
    pub connection: ConnectionId,
    pub session: CheckoutSessionId,
    /// The page's language: pushes are the status JSON in it.
    pub lang: Lang,
    pub connected_at: DateTime<Utc>,
}

fn key(connection: &ConnectionId) -> String {
    format!("LIVE#{connection}")
}

fn session_partition(session: &CheckoutSessionId) -> String {
    format!("LIVE#{session}")
}

#[derive(Clone)]
pub struct LiveConnections {
    table: Arc<dyn Table>,
}

impl LiveConnections {
    pub fn new(table: Arc<dyn Table>) -> LiveConnections {
        LiveConnections { table }
    }

    /// Records the connection (a repeated `$connect` of the same id replaces it).
    pub async fn register(&self, connection: &LiveConnection) -> Result<(), StoreError> {
        let doc = serde_json::to_string(connection).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let item = Item::new(key(&connection.connection), 1, doc)
            .with_index(
                Index::Gsi1,
                session_partition(&connection.session),
                connection.connection.as_str(),
            )
            .expiring_at((connection.connected_at + CONNECTION_LIFETIME).timestamp());
        self.table
            .write(vec![Write::Put {
                item,
                condition: Condition::Always,
            }])
            .await
    }

    /// The session's open connections (at most a few more than
    /// [`MAX_CONNECTIONS_PER_SESSION`]: the index is read eventually consistently).
    pub async fn of_session(&self, session: &CheckoutSessionId) -> Result<Vec<LiveConnection>, StoreError> {
        let query = Query::new(
            Index::Gsi1,
            session_partition(session),
            crate::store::Order::Ascending,
            MAX_CONNECTIONS_PER_SESSION * 2,
        );
        let items = self.table.query(&query).await?;
        items
            .iter()
            .map(|item| serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(format!("{}: {e}", item.key))))
            .collect()
    }

    /// Forgets the connection (gone, closed, or finished); forgetting one twice is fine.
    pub async fn forget(&self, connection: &ConnectionId) -> Result<(), StoreError> {
        self.table
            .write(vec![Write::Delete {
                key: key(connection),
                condition: Condition::Always,
            }])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryTable;
    use proptest::prelude::*;

    fn session(n: u8) -> CheckoutSessionId {
        CheckoutSessionId::parse(&format!("cs_{}", format!("{n:02x}").repeat(16))).unwrap()
    }

    fn connection(id: &str, session: &CheckoutSessionId) -> LiveConnection {
        LiveConnection {
            connection: ConnectionId::parse(id).unwrap(),
            session: session.clone(),
            lang: Lang::Sw,
            connected_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_session_lists_its_own_connections_until_they_are_forgotten() {
        let live = LiveConnections::new(Arc::new(MemoryTable::new()));
        let (a, b) = (session(1), session(2));
        live.register(&connection("L0SM9cOFvHcCIhw=", &a)).await.unwrap();
        live.register(&connection("Other-Conn_1", &a)).await.unwrap();
        live.register(&connection("B0nly", &b)).await.unwrap();
        let of_a = live.of_session(&a).await.unwrap();
        assert_eq!(of_a.len(), 2);
        assert!(of_a.iter().all(|c| c.session == a && c.lang == Lang::Sw));
        live.forget(&ConnectionId::parse("L0SM9cOFvHcCIhw=").unwrap())
            .await
            .unwrap();
        live.forget(&ConnectionId::parse("L0SM9cOFvHcCIhw=").unwrap())
            .await
            .unwrap();
        let of_a = live.of_session(&a).await.unwrap();
        assert_eq!(of_a.len(), 1);
        assert_eq!(of_a[0].connection.as_str(), "Other-Conn_1");
        assert_eq!(live.of_session(&b).await.unwrap().len(), 1);
    }

    #[test]
    fn connection_ids_are_parsed() {
        for good in ["L0SM9cOFvHcCIhw=", "a", "x+y/z_-="] {
            assert!(ConnectionId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "semi;colon", "../x", &"a".repeat(129)] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_keeps_what_it_accepts(text in ".{0,200}") {
            if let Ok(id) = ConnectionId::parse(&text) {
                prop_assert_eq!(id.as_str(), text.as_str());
            }
        }
    }
}
