//! Newest-first pages over sharded index partitions, with an opaque cursor.
//!
//! Each shard is queried below the cursor; results are merged and cut to the page size. The
//! cursor is the sort key of the last item returned, so items not taken from one shard this time
//! come on the next page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{time_bound, INDEX_SHARDS};
use crate::store::{Bound, Index, Item, Order, Query, StoreError, Table};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Equality filters on item attributes.
    pub attrs: Vec<(String, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    const PREFIX: &'static str = "c1.";

    pub fn parse(text: &str) -> Option<Cursor> {
        let body = text.strip_prefix(Self::PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
        let sort = String::from_utf8(bytes).ok()?;
        // A sort key is 16 digits, '#', an id.
        let valid =
            sort.len() > 17 && sort.as_bytes()[..16].iter().all(u8::is_ascii_digit) && sort.as_bytes()[16] == b'#';
        valid.then_some(Cursor(sort))
    }

    /// A cursor at an index sort key (`<16 digits>#...`, as [`Cursor::parse`] accepts).
    pub fn at_sort_key(sort: String) -> Cursor {
        Cursor(sort)
    }

    /// The sort key the cursor stands at.
    pub fn sort_key(&self) -> &str {
        &self.0
    }

    pub fn encode(&self) -> String {
        format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(self.0.as_bytes()))
    }
}

pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// `partition_prefix` + `#<shard>` are the partitions searched.
pub async fn newest_first(
    table: &dyn Table,
    index: Index,
    partition_prefix: &str,
    filter: &ListFilter,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<Page, StoreError> {
    let mut upper: Option<Bound> = filter
        .to
        .map(|to| Bound::Exclusive(time_bound(to + chrono::Duration::milliseconds(1))));
    if let Some(cursor) = cursor {
        let below_cursor = Bound::Exclusive(cursor.0.clone());
        upper = match upper {
            Some(Bound::Exclusive(to)) if to < cursor.0 => Some(Bound::Exclusive(to)),
            _ => Some(below_cursor),
        };
    }
    let lower = filter.from.map(|from| Bound::Inclusive(time_bound(from)));
    let mut merged: Vec<(String, Item)> = Vec::new();
    // Shards are independent; query them concurrently.
    let queries: Vec<Query> = (0..INDEX_SHARDS)
        .map(|shard| Query {
            index,
            partition: format!("{partition_prefix}#{shard}"),
            lower: lower.clone(),
            upper: upper.clone(),
            order: Order::Descending,
            filters: filter.attrs.clone(),
            limit: limit + 1,
        })
        .collect();
    let results = futures::future::join_all(queries.iter().map(|q| table.query(q))).await;
    for result in results {
        for item in result? {
            let sort = item
                .indexes
                .iter()
                .find(|k| k.index == index)
                .map(|k| k.sort.clone())
                .unwrap_or_default();
            merged.push((sort, item));
        }
    }
    merged.sort_by(|a, b| b.0.cmp(&a.0));
    let has_more = merged.len() > limit;
    merged.truncate(limit);
    let next = if has_more {
        merged.last().map(|(sort, _)| Cursor(sort.clone()))
    } else {
        None
    };
    Ok(Page {
        items: merged.into_iter().map(|(_, item)| item).collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor("0001763724605123#pay_01".into());
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for junk in ["", "c1.", "abc", "c1.!!!", "c1.MDAx"] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }
}
