//! Hosted checkout sessions in the table.
//!
//! - item `CS#<id>`: the session document, attr `status`;
//! - `gsi1` `CS#OWNER#<client>#<shard>` / `<created>#<id>`: a merchant's sessions, newest first;
//! - `gsi2` `CS#ALL#<shard>` / `<created>#<id>`: every session (staff tools, the stack's checks);
//! - `gsi3` `OPEN#CS#<shard>` / `<expires>#<id>`: present only while the session is `open`, so
//!   the sweeper that closes expired sessions reads open ones only.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::listing::{newest_first, Cursor, ListFilter};
use super::{shard_of, time_sort_key};
use crate::domain::checkout_session::{CheckoutSession, CheckoutSessionId, SessionStatus};
use crate::domain::ClientId;
use crate::store::{Condition, Index, Item, StoreError, Table, Write};

pub fn key(id: &CheckoutSessionId) -> String {
    format!("CS#{id}")
}

const OPEN_PREFIX: &str = "OPEN#CS";

fn open_partition(shard: u32) -> String {
    format!("{OPEN_PREFIX}#{shard}")
}

/// Filters of `GET /v1/checkout/sessions`.
#[derive(Debug, Clone)]
pub struct SessionListFilter {
    /// `None` lists every merchant's sessions.
    pub owner: Option<ClientId>,
    pub status: Option<SessionStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub struct SessionPage {
    pub sessions: Vec<CheckoutSession>,
    pub next: Option<Cursor>,
}

#[derive(Clone)]
pub struct SessionRepo {
    table: Arc<dyn Table>,
}

impl SessionRepo {
    pub fn new(table: Arc<dyn Table>) -> SessionRepo {
        SessionRepo { table }
    }

    pub async fn get(&self, id: &CheckoutSessionId) -> Result<Option<CheckoutSession>, StoreError> {
        get(self.table.as_ref(), id).await
    }

    /// Creates the session; fails if the id exists.
    pub fn insert(session: &CheckoutSession) -> Write {
        Write::Put {
            item: to_item(session, 1),
            condition: Condition::Absent { now_epoch: 0 },
        }
    }

    /// Replaces the session read at `session.version`.
    pub fn update(session: &CheckoutSession) -> Write {
        Write::Put {
            item: to_item(session, session.version + 1),
            condition: Condition::VersionIs(session.version),
        }
    }

    pub async fn list(
        &self,
        filter: &SessionListFilter,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<SessionPage, StoreError> {
        let (index, prefix) = match &filter.owner {
            Some(owner) => (Index::Gsi1, format!("CS#OWNER#{owner}")),
            None => (Index::Gsi2, "CS#ALL".to_owned()),
        };
        let attrs = filter
            .status
            .map(|s| vec![("status".to_owned(), s.as_str().to_owned())])
            .unwrap_or_default();
        let list_filter = ListFilter {
            attrs,
            from: filter.from,
            to: filter.to,
        };
        let page = newest_first(self.table.as_ref(), index, &prefix, &list_filter, limit, cursor).await?;
        let sessions = page.items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPage {
            sessions,
            next: page.next,
        })
    }

    /// Open sessions whose expiry has passed at `now`, oldest first.
    pub async fn past_expiry(
        &self,
        now: DateTime<Utc>,
        limit_per_shard: usize,
    ) -> Result<Vec<CheckoutSession>, StoreError> {
        let read = from_item;
        let mut due = super::due_across_shards(
            self.table.as_ref(),
            OPEN_PREFIX,
            now,
            limit_per_shard,
            read,
            "checkout_session",
        )
        .await?;
        due.sort_by_key(|s| s.expires_at);
        Ok(due)
    }
}

pub async fn get(table: &dyn Table, id: &CheckoutSessionId) -> Result<Option<CheckoutSession>, StoreError> {
    match table.get(&key(id)).await? {
        Some(item) => from_item(&item).map(Some),
        None => Ok(None),
    }
}

fn to_item(session: &CheckoutSession, version: u64) -> Item {
    let mut stored = session.clone();
    stored.version = version;
    let doc = serde_json::to_string(&stored).unwrap_or_default();
    let id = session.id.as_str();
    let shard = shard_of(id);
    let created = time_sort_key(session.created_at, id);
    let mut item = Item::new(key(&session.id), version, doc)
        .with_index(
            Index::Gsi1,
            format!("CS#OWNER#{}#{shard}", session.owner),
            created.clone(),
        )
        .with_index(Index::Gsi2, format!("CS#ALL#{shard}"), created)
        .with_attr("status", session.status.as_str());
    if session.status == SessionStatus::Open {
        item = item.with_index(
            Index::Gsi3,
            open_partition(shard),
            time_sort_key(session.expires_at, id),
        );
    }
    item
}

pub fn from_item(item: &Item) -> Result<CheckoutSession, StoreError> {
    let mut session: CheckoutSession = serde_json::from_str(&item.doc)
        .map_err(|e| StoreError::Corrupt(format!("checkout session {}: {e}", item.key)))?;
    session.version = item.version;
    Ok(session)
}
