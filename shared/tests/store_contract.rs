//! The storage contract: every test is one generic function over the [`Table`] port, run against
//! [`MemoryTable`] and against [`DynamoTable`] on moto (`MOTO_ENDPOINT`), so the two adapters
//! cannot drift apart.

mod support;

use std::sync::Arc;

use checkout::store::memory::MemoryTable;
use checkout::store::{Bound, Condition, CounterAdd, Index, Item, Order, Query, StoreError, StoreStats, Table, Write};
use support::now_epoch;

fn put(item: Item, condition: Condition) -> Write {
    Write::Put { item, condition }
}

fn add(key: &str, name: &str, delta: i64, max: Option<i64>) -> Write {
    Write::Add {
        key: key.into(),
        counters: vec![CounterAdd {
            name: name.into(),
            delta,
            max,
        }],
        expires_at: None,
    }
}

fn doc(n: u64) -> String {
    format!(r#"{{"n":{n}}}"#)
}

fn absent() -> Condition {
    Condition::Absent { now_epoch: now_epoch() }
}

fn keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

fn delta(before: StoreStats, after: StoreStats) -> StoreStats {
    StoreStats {
        requests: after.requests - before.requests,
        items_read: after.items_read - before.items_read,
    }
}

async fn put_then_get_round_trips_every_field(table: Arc<dyn Table>) {
    let mut item = Item::new("order#1", 1, r#"{"amount":100,"note":"ünïcode ✓"}"#.into())
        .with_index(Index::Gsi1, "client#a", "2024-01-01T00:00:00Z#order#1")
        .with_index(Index::Gsi3, "status#pending", "0001")
        .with_attr("status", "pending")
        .with_attr("reference", "")
        .expiring_at(now_epoch() + 3600);
    item.counters.insert("attempts".into(), 3);
    table.write(vec![put(item.clone(), Condition::Always)]).await.unwrap();
    assert_eq!(table.get("order#1").await.unwrap(), Some(item));
    assert_eq!(table.get("order#2").await.unwrap(), None);
}

async fn absent_condition_refuses_a_live_item(table: Arc<dyn Table>) {
    table
        .write(vec![put(Item::new("k", 1, doc(1)), absent())])
        .await
        .unwrap();
    let again = table.write(vec![put(Item::new("k", 1, doc(2)), absent())]).await;
    assert_eq!(again, Err(StoreError::ConditionFailed { index: 0 }));
    assert_eq!(table.get("k").await.unwrap().unwrap().doc, doc(1));
}

async fn conditional_put_refuses_stale_version(table: Arc<dyn Table>) {
    table
        .write(vec![put(Item::new("k", 1, doc(1)), absent())])
        .await
        .unwrap();
    table
        .write(vec![put(Item::new("k", 2, doc(2)), Condition::VersionIs(1))])
        .await
        .unwrap();
    let stale = table
        .write(vec![put(Item::new("k", 2, doc(3)), Condition::VersionIs(1))])
        .await;
    assert_eq!(stale, Err(StoreError::ConditionFailed { index: 0 }));
    let stored = table.get("k").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.doc), (2, doc(2)));
    // A version condition on a missing item fails too.
    let missing = table
        .write(vec![put(Item::new("nope", 1, doc(1)), Condition::VersionIs(0))])
        .await;
    assert_eq!(missing, Err(StoreError::ConditionFailed { index: 0 }));
    assert_eq!(table.get("nope").await.unwrap(), None);
}

async fn conditional_delete(table: Arc<dyn Table>) {
    table
        .write(vec![put(Item::new("k", 4, doc(1)), Condition::Always)])
        .await
        .unwrap();
    let wrong = table
        .write(vec![Write::Delete {
            key: "k".into(),
            condition: Condition::VersionIs(3),
        }])
        .await;
    assert_eq!(wrong, Err(StoreError::ConditionFailed { index: 0 }));
    let live = table
        .write(vec![Write::Delete {
            key: "k".into(),
            condition: absent(),
        }])
        .await;
    assert_eq!(live, Err(StoreError::ConditionFailed { index: 0 }));
    assert!(table.get("k").await.unwrap().is_some());
    table
        .write(vec![Write::Delete {
            key: "k".into(),
            condition: Condition::VersionIs(4),
        }])
        .await
        .unwrap();
    assert_eq!(table.get("k").await.unwrap(), None);
    // Deleting what is not there is fine unconditionally.
    table
        .write(vec![Write::Delete {
            key: "k".into(),
            condition: Condition::Always,
        }])
        .await
        .unwrap();
}

async fn expired_items_are_absent(table: Arc<dyn Table>) {
    let now = now_epoch();
    let expired = Item::new("gone", 1, doc(1))
        .with_index(Index::Gsi2, "p", "2")
        .expiring_at(now - 10);
    let live = |k: &str, sort: &str| {
        Item::new(k, 1, doc(1))
            .with_index(Index::Gsi2, "p", sort)
            .expiring_at(now + 3600)
    };
    table
        .write(vec![
            put(expired, Condition::Always),
            put(live("a", "1"), Condition::Always),
            put(live("b", "3"), Condition::Always),
        ])
        .await
        .unwrap();
    assert_eq!(table.get("gone").await.unwrap(), None);
    let before = table.stats();
    let found = table
        .query(&Query::new(Index::Gsi2, "p", Order::Ascending, 10))
        .await
        .unwrap();
    assert_eq!(keys(&found), ["a", "b"]);
    // The expired item was still read (DynamoDB deletes it late and bills the read).
    assert_eq!(delta(before, table.stats()).items_read, 3);

    // Absent: an expired item counts as absent, judged by the caller's clock.
    table
        .write(vec![put(
            Item::new("gone", 7, doc(7)),
            Condition::Absent { now_epoch: now },
        )])
        .await
        .unwrap();
    assert_eq!(table.get("gone").await.unwrap().unwrap().version, 7);
    let refused = table
        .write(vec![put(
            Item::new("a", 2, doc(2)),
            Condition::Absent { now_epoch: now },
        )])
        .await;
    assert_eq!(refused, Err(StoreError::ConditionFailed { index: 0 }));
    let later = Condition::Absent { now_epoch: now + 7200 };
    table.write(vec![put(Item::new("a", 2, doc(2)), later)]).await.unwrap();
    assert_eq!(table.get("a").await.unwrap().unwrap().version, 2);
}

async fn transaction_is_all_or_nothing_and_names_the_failing_write(table: Arc<dyn Table>) {
    table
        .write(vec![put(Item::new("b", 1, doc(1)), Condition::Always)])
        .await
        .unwrap();
    let batch = vec![
        put(Item::new("a", 1, doc(1)), absent()),
        put(Item::new("b", 2, doc(2)), Condition::VersionIs(9)),
        add("c", "n", 1, None),
        Write::Delete {
            key: "d".into(),
            condition: Condition::VersionIs(1),
        },
    ];
    assert_eq!(table.write(batch).await, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(table.get("a").await.unwrap(), None);
    assert_eq!(table.get("b").await.unwrap().unwrap().version, 1);
    assert_eq!(table.get("c").await.unwrap(), None);

    // Several failing writes: the first in batch order is named.
    let batch = vec![
        put(Item::new("x", 1, doc(1)), Condition::Always),
        put(Item::new("b", 2, doc(2)), absent()),
        put(Item::new("y", 1, doc(1)), Condition::VersionIs(1)),
    ];
    assert_eq!(table.write(batch).await, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(table.get("x").await.unwrap(), None);

    // A counter over its max fails the whole batch too.
    table.write(vec![add("limit", "n", 5, Some(5))]).await.unwrap();
    let batch = vec![put(Item::new("a", 1, doc(1)), absent()), add("limit", "n", 1, Some(5))];
    assert_eq!(table.write(batch).await, Err(StoreError::ConditionFailed { index: 1 }));
    assert_eq!(table.get("a").await.unwrap(), None);

    let batch = vec![
        put(Item::new("a", 1, doc(1)), absent()),
        put(Item::new("b", 2, doc(2)), Condition::VersionIs(1)),
        add("c", "n", 2, Some(10)),
        Write::Delete {
            key: "limit".into(),
            condition: Condition::Always,
        },
    ];
    table.write(batch).await.unwrap();
    assert_eq!(table.get("a").await.unwrap().unwrap().version, 1);
    assert_eq!(table.get("b").await.unwrap().unwrap().version, 2);
    assert_eq!(table.get("c").await.unwrap().unwrap().counters["n"], 2);
    assert_eq!(table.get("limit").await.unwrap(), None);
}

async fn invalid_batches_are_refused_before_any_request(table: Arc<dyn Table>) {
    let before = table.stats();
    let duplicate = vec![
        put(Item::new("k", 1, doc(1)), Condition::Always),
        add("k", "n", 1, None),
    ];
    assert!(matches!(table.write(duplicate).await, Err(StoreError::Invalid(_))));
    assert!(matches!(table.write(vec![]).await, Err(StoreError::Invalid(_))));
    let too_many: Vec<Write> = (0..26)
        .map(|i| put(Item::new(format!("k{i}"), 1, doc(1)), Condition::Always))
        .collect();
    assert!(matches!(table.write(too_many).await, Err(StoreError::Invalid(_))));
    let two_keys_one_index =
        Item::new("k", 1, doc(1))
            .with_index(Index::Gsi1, "p", "1")
            .with_index(Index::Gsi1, "p", "2");
    assert!(matches!(
        table.write(vec![put(two_keys_one_index, Condition::Always)]).await,
        Err(StoreError::Invalid(_))
    ));
    let empty_index_key = Item::new("k", 1, doc(1)).with_index(Index::Gsi1, "", "1");
    assert!(matches!(
        table.write(vec![put(empty_index_key, Condition::Always)]).await,
        Err(StoreError::Invalid(_))
    ));
    let huge = Item::new("k", 1, "x".repeat(401 * 1024));
    assert!(matches!(
        table.write(vec![put(huge, Condition::Always)]).await,
        Err(StoreError::Invalid(_))
    ));
    let same_counter_twice = Write::Add {
        key: "k".into(),
        counters: vec![
            CounterAdd {
                name: "n".into(),
                delta: 1,
                max: None,
            },
            CounterAdd {
                name: "n".into(),
                delta: 1,
                max: None,
            },
        ],
        expires_at: None,
    };
    assert!(matches!(
        table.write(vec![same_counter_twice]).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(table.get("").await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        table.query(&Query::new(Index::Gsi1, "", Order::Ascending, 1)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(table.stats(), before, "refused requests never reach the store");
    // The largest documents DynamoDB takes are fine.
    table
        .write(vec![put(Item::new("k", 1, "x".repeat(390 * 1024)), Condition::Always)])
        .await
        .unwrap();
}

async fn counters_are_created_added_and_capped(table: Arc<dyn Table>) {
    let now = now_epoch();
    let bucket = |delta: i64, max: Option<i64>, expires_at: i64| Write::Add {
        key: "bucket".into(),
        counters: vec![
            CounterAdd {
                name: "count".into(),
                delta,
                max,
            },
            CounterAdd {
                name: "sum".into(),
                delta: delta * 100,
                max: None,
            },
        ],
        expires_at: Some(expires_at),
    };
    table.write(vec![bucket(3, Some(5), now + 60)]).await.unwrap();
    let created = table.get("bucket").await.unwrap().unwrap();
    assert_eq!((created.version, created.doc.as_str()), (0, ""));
    assert_eq!(created.counters.get("count"), Some(&3));
    assert_eq!(created.counters.get("sum"), Some(&300));
    assert_eq!(created.expires_at, Some(now + 60));

    // 3 + 3 > 5: refused, nothing changes (not even the uncapped counter).
    assert_eq!(
        table.write(vec![bucket(3, Some(5), now + 999)]).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    // 3 + 2 == 5: allowed; expires_at is never moved once set.
    table.write(vec![bucket(2, Some(5), now + 999)]).await.unwrap();
    let full = table.get("bucket").await.unwrap().unwrap();
    assert_eq!(
        (full.counters["count"], full.counters["sum"], full.expires_at),
        (5, 500, Some(now + 60))
    );
    assert_eq!(
        table.write(vec![bucket(1, Some(5), now + 60)]).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    // Negative deltas release capacity.
    table.write(vec![bucket(-2, Some(5), now + 60)]).await.unwrap();
    assert_eq!(table.get("bucket").await.unwrap().unwrap().counters["count"], 3);

    // An absent counter counts as 0: a delta over max fails even on a new item.
    assert_eq!(
        table.write(vec![add("fresh", "n", 6, Some(5))]).await,
        Err(StoreError::ConditionFailed { index: 0 })
    );
    assert_eq!(table.get("fresh").await.unwrap(), None);
    table.write(vec![add("fresh", "n", 5, Some(5))]).await.unwrap();

    // Adding to a put item keeps its document; a put replaces the whole item, counters too.
    table
        .write(vec![put(Item::new("doc", 3, doc(3)), Condition::Always)])
        .await
        .unwrap();
    table.write(vec![add("doc", "views", 1, None)]).await.unwrap();
    let with_counter = table.get("doc").await.unwrap().unwrap();
    assert_eq!(
        (
            with_counter.version,
            with_counter.doc.clone(),
            with_counter.counters["views"]
        ),
        (3, doc(3), 1)
    );
    table
        .write(vec![put(Item::new("doc", 4, doc(4)), Condition::VersionIs(3))])
        .await
        .unwrap();
    assert!(table.get("doc").await.unwrap().unwrap().counters.is_empty());
}

async fn concurrent_increments_never_exceed_max(table: Arc<dyn Table>) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let table = table.clone();
            tokio::spawn(async move { table.write(vec![add("limit", "n", 1, Some(5))]).await })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => succeeded += 1,
            Err(StoreError::ConditionFailed { index: 0 }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(succeeded, 5);
    assert_eq!(table.get("limit").await.unwrap().unwrap().counters["n"], 5);
}

async fn sparse_index_membership_follows_the_item(table: Arc<dyn Table>) {
    let query = |index| Query::new(index, "p", Order::Ascending, 10);
    let indexed = Item::new("k", 1, doc(1))
        .with_index(Index::Gsi1, "p", "s")
        .with_attr("status", "a");
    table.write(vec![put(indexed, Condition::Always)]).await.unwrap();
    assert_eq!(keys(&table.query(&query(Index::Gsi1)).await.unwrap()), ["k"]);
    assert!(table.query(&query(Index::Gsi2)).await.unwrap().is_empty());

    // Re-put without the gsi1 key (and without the attribute): out of gsi1, into gsi2.
    let moved = Item::new("k", 2, doc(2)).with_index(Index::Gsi2, "p", "s");
    table
        .write(vec![put(moved.clone(), Condition::VersionIs(1))])
        .await
        .unwrap();
    assert!(table.query(&query(Index::Gsi1)).await.unwrap().is_empty());
    assert_eq!(table.query(&query(Index::Gsi2)).await.unwrap(), vec![moved]);
    assert!(table.get("k").await.unwrap().unwrap().attrs.is_empty());

    // A changed index key moves the item within the index; a delete removes it.
    let resorted = Item::new("k", 3, doc(3)).with_index(Index::Gsi2, "q", "t");
    table.write(vec![put(resorted, Condition::VersionIs(2))]).await.unwrap();
    assert!(table.query(&query(Index::Gsi2)).await.unwrap().is_empty());
    assert_eq!(
        keys(
            &table
                .query(&Query::new(Index::Gsi2, "q", Order::Ascending, 10))
                .await
                .unwrap()
        ),
        ["k"]
    );
    table
        .write(vec![Write::Delete {
            key: "k".into(),
            condition: Condition::Always,
        }])
        .await
        .unwrap();
    assert!(table
        .query(&Query::new(Index::Gsi2, "q", Order::Ascending, 10))
        .await
        .unwrap()
        .is_empty());
}

async fn query_bounds_and_order(table: Arc<dyn Table>) {
    let writes: Vec<Write> = ["s1", "s2", "s3", "s4", "s5"]
        .iter()
        .map(|s| {
            put(
                Item::new(format!("k{s}"), 1, doc(1)).with_index(Index::Gsi1, "p", *s),
                Condition::Always,
            )
        })
        .chain([put(
            Item::new("other", 1, doc(1)).with_index(Index::Gsi1, "p2", "s3"),
            Condition::Always,
        )])
        .collect();
    table.write(writes).await.unwrap();
    let run = |lower: Option<Bound>, upper: Option<Bound>, order: Order, limit: usize| {
        let table = table.clone();
        async move {
            let query = Query {
                lower,
                upper,
                ..Query::new(Index::Gsi1, "p", order, limit)
            };
            let items = table.query(&query).await.unwrap();
            items.iter().map(|i| i.indexes[0].sort.clone()).collect::<Vec<_>>()
        }
    };
    let inc = |s: &str| Some(Bound::Inclusive(s.into()));
    let exc = |s: &str| Some(Bound::Exclusive(s.into()));
    use Order::{Ascending as Asc, Descending as Desc};

    assert_eq!(run(None, None, Asc, 10).await, ["s1", "s2", "s3", "s4", "s5"]);
    assert_eq!(run(None, None, Desc, 10).await, ["s5", "s4", "s3", "s2", "s1"]);
    assert_eq!(run(inc("s2"), inc("s4"), Asc, 10).await, ["s2", "s3", "s4"]);
    assert_eq!(run(inc("s2"), exc("s4"), Asc, 10).await, ["s2", "s3"]);
    assert_eq!(run(exc("s2"), inc("s4"), Asc, 10).await, ["s3", "s4"]);
    assert_eq!(run(exc("s2"), exc("s4"), Desc, 10).await, ["s3"]);
    assert_eq!(run(exc("s2"), None, Asc, 10).await, ["s3", "s4", "s5"]);
    assert_eq!(run(inc("s2"), None, Desc, 10).await, ["s5", "s4", "s3", "s2"]);
    assert_eq!(run(None, exc("s3"), Desc, 10).await, ["s2", "s1"]);
    assert_eq!(run(None, inc("s3"), Asc, 10).await, ["s1", "s2", "s3"]);
    // Bounds between stored keys, and ranges that cannot match.
    assert_eq!(run(inc("s2a"), exc("s5"), Asc, 10).await, ["s3", "s4"]);
    assert_eq!(run(inc("s3"), inc("s3"), Asc, 10).await, ["s3"]);
    assert!(run(exc("s3"), inc("s3"), Asc, 10).await.is_empty());
    assert!(run(inc("s4"), inc("s2"), Asc, 10).await.is_empty());
    assert!(run(None, inc(""), Asc, 10).await.is_empty());
    assert_eq!(run(inc(""), None, Asc, 1).await, ["s1"]);
    // Limits keep the first items in the requested order.
    assert_eq!(run(None, None, Asc, 2).await, ["s1", "s2"]);
    assert_eq!(run(None, None, Desc, 2).await, ["s5", "s4"]);
    assert_eq!(run(exc("s1"), exc("s5"), Desc, 2).await, ["s4", "s3"]);
    assert!(run(None, None, Asc, 0).await.is_empty());
    assert!(table
        .query(&Query::new(Index::Gsi1, "nobody", Order::Ascending, 10))
        .await
        .unwrap()
        .is_empty());
}

async fn filters_with_limit_count_matches_not_items_read(table: Arc<dyn Table>) {
    // 100 items; every 10th (9, 19, ...) is paid, and every 20th of those is also "big".
    for chunk in (0..100u64).collect::<Vec<_>>().chunks(25) {
        let writes = chunk
            .iter()
            .map(|i| {
                let status = if i % 10 == 9 { "paid" } else { "pending" };
                let size = if i % 20 == 19 { "big" } else { "small" };
                let item = Item::new(format!("k{i:03}"), 1, doc(*i))
                    .with_index(Index::Gsi3, "p", format!("{i:03}"))
                    .with_attr("status", status)
                    .with_attr("size", size);
                put(item, Condition::Always)
            })
            .collect();
        table.write(writes).await.unwrap();
    }
    let filtered = |filters: &[(&str, &str)], order, limit| Query {
        filters: filters.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        ..Query::new(Index::Gsi3, "p", order, limit)
    };
    let before = table.stats();
    let paid = table
        .query(&filtered(&[("status", "paid")], Order::Ascending, 3))
        .await
        .unwrap();
    assert_eq!(keys(&paid), ["k009", "k019", "k029"]);
    // Read in pages of 25 then 50: the third match is on the second page, so 75 items are
    // read, not all 100, and not just 30.
    assert_eq!(delta(before, table.stats()).items_read, 75);

    let paid_big = table
        .query(&filtered(&[("status", "paid"), ("size", "big")], Order::Descending, 2))
        .await
        .unwrap();
    assert_eq!(keys(&paid_big), ["k099", "k079"]);
    let none = table
        .query(&filtered(&[("status", "refunded")], Order::Ascending, 5))
        .await
        .unwrap();
    assert!(none.is_empty());
    let missing_attr = table
        .query(&filtered(&[("colour", "red")], Order::Ascending, 5))
        .await
        .unwrap();
    assert!(missing_attr.is_empty());
    let all_paid = table
        .query(&filtered(&[("status", "paid")], Order::Ascending, 100))
        .await
        .unwrap();
    assert_eq!(all_paid.len(), 10);
}

async fn stats_count_requests_and_items_read(table: Arc<dyn Table>) {
    assert_eq!(table.stats(), StoreStats::default());
    let writes: Vec<Write> = (0..5)
        .map(|i| {
            put(
                Item::new(format!("k{i}"), 1, doc(i)).with_index(Index::Gsi1, "p", format!("{i}")),
                Condition::Always,
            )
        })
        .collect();
    table.write(writes).await.unwrap();
    assert_eq!(
        table.stats(),
        StoreStats {
            requests: 1,
            items_read: 0
        },
        "a batch is one request"
    );
    let _ = table.write(vec![put(Item::new("k0", 1, doc(0)), absent())]).await;
    assert_eq!(
        table.stats(),
        StoreStats {
            requests: 2,
            items_read: 0
        },
        "a failed write is still a request"
    );
    table.get("k1").await.unwrap();
    assert_eq!(
        table.stats(),
        StoreStats {
            requests: 3,
            items_read: 1
        }
    );
    table.get("missing").await.unwrap();
    assert_eq!(
        table.stats(),
        StoreStats {
            requests: 4,
            items_read: 1
        }
    );
    let before = table.stats();
    let three = table
        .query(&Query::new(Index::Gsi1, "p", Order::Descending, 3))
        .await
        .unwrap();
    assert_eq!(keys(&three), ["k4", "k3", "k2"]);
    let used = delta(before, table.stats());
    assert_eq!(used.items_read, 3, "an unfiltered query reads only what it returns");
    assert!(used.requests >= 1);
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// The in-memory adapter.
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryTable::new())).await
                }
            )*
        }

        /// The DynamoDB adapter, on moto.
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::dynamo_table().await).await
                }
            )*
        }
    };
}

contract!(
    put_then_get_round_trips_every_field,
    absent_condition_refuses_a_live_item,
    conditional_put_refuses_stale_version,
    conditional_delete,
    expired_items_are_absent,
    transaction_is_all_or_nothing_and_names_the_failing_write,
    invalid_batches_are_refused_before_any_request,
    counters_are_created_added_and_capped,
    concurrent_increments_never_exceed_max,
    sparse_index_membership_follows_the_item,
    query_bounds_and_order,
    filters_with_limit_count_matches_not_items_read,
    stats_count_requests_and_items_read,
);

/// `create_table` builds what production has, and accepts a table that already exists.
#[tokio::test]
async fn dynamo_table_schema_matches_production() {
    let client = support::dynamo_client().await;
    let name = support::unique("schema");
    checkout::store::dynamo::create_table(&client, &name).await.unwrap();
    checkout::store::dynamo::create_table(&client, &name).await.unwrap();
    let table = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let schema = checkout::store::dynamo::table_schema().unwrap();
    assert_eq!(table.key_schema(), schema.key_schema.as_slice());
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
    );
    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| i.index_name().unwrap_or(""))
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["gsi1", "gsi2", "gsi3", "gsi4"]);
    for index in table.global_secondary_indexes() {
        let projection = index.projection().and_then(|p| p.projection_type());
        assert_eq!(projection, Some(&aws_sdk_dynamodb::types::ProjectionType::All));
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

/// DynamoDB's transaction conflicts: while a `TransactWriteItems` is in progress on an item,
/// another transaction on it is cancelled with `TransactionConflict` and a single write on it is
/// refused (`TransactionConflictException`); reads see the last committed state. moto does not
/// emulate this (its transactions are instantaneous), so these run against the in-memory table
/// only; `store::dynamo` maps DynamoDB's codes to the same error (unit-tested there).
mod transaction_conflicts {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{add, doc, put, Condition, Item, MemoryTable, StoreError, Table, Write};

    fn held_for(hold: Duration) -> Arc<MemoryTable> {
        Arc::new(MemoryTable::new().with_transaction_hold(hold))
    }

    /// Starts a two-write transaction on `a` and `b` and returns once it holds them.
    async fn transaction_in_progress(table: &Arc<MemoryTable>) -> tokio::task::JoinHandle<Result<(), StoreError>> {
        let held = table.clone();
        let task = tokio::spawn(async move {
            held.write(vec![
                put(Item::new("a", 1, doc(1)), Condition::Always),
                add("b", "n", 1, Some(10)),
            ])
            .await
        });
        // The transaction holds its keys from the moment it is prepared; wait for that.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while table.write(vec![add("b", "probe", 0, None)]).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a transaction in progress never held its items"
            );
            tokio::task::yield_now().await;
        }
        task
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_to_items_of_a_transaction_in_progress_are_refused_and_retryable() {
        let table = held_for(Duration::from_millis(300));
        let first = transaction_in_progress(&table).await;

        // Another transaction touching `b`: cancelled, and nothing of it written (not even `c`).
        let other = table
            .write(vec![
                add("b", "n", 1, Some(10)),
                put(Item::new("c", 1, doc(3)), Condition::Always),
            ])
            .await;
        assert_eq!(other, Err(StoreError::TransactionConflict));
        // Single writes on held items: refused too (put, add, delete).
        assert_eq!(
            table
                .write(vec![put(Item::new("a", 2, doc(2)), Condition::Always)])
                .await,
            Err(StoreError::TransactionConflict)
        );
        assert_eq!(
            table.write(vec![add("b", "n", 5, None)]).await,
            Err(StoreError::TransactionConflict)
        );
        assert_eq!(
            table
                .write(vec![Write::Delete {
                    key: "a".into(),
                    condition: Condition::Always
                }])
                .await,
            Err(StoreError::TransactionConflict)
        );
        // Reads are not blocked: they see what is committed (nothing yet).
        assert_eq!(table.get("a").await.unwrap(), None);
        // Items the transaction does not hold are unaffected.
        table
            .write(vec![put(Item::new("d", 1, doc(4)), Condition::Always)])
            .await
            .unwrap();

        first.await.unwrap().unwrap();
        assert_eq!(table.get("a").await.unwrap().unwrap().doc, doc(1));
        assert_eq!(table.get("b").await.unwrap().unwrap().counters["n"], 1);
        assert_eq!(
            table.get("c").await.unwrap(),
            None,
            "the cancelled transaction wrote nothing"
        );
        // Once committed the items are free: the refused writes succeed when sent again.
        table
            .write(vec![
                add("b", "n", 1, Some(10)),
                put(Item::new("c", 1, doc(3)), Condition::Always),
            ])
            .await
            .unwrap();
        assert_eq!(table.get("b").await.unwrap().unwrap().counters["n"], 2);
        assert!(table.conflicts() >= 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_condition_wins_over_a_conflict() {
        let table = held_for(Duration::from_millis(300));
        table
            .write(vec![put(Item::new("x", 1, doc(1)), Condition::Always)])
            .await
            .unwrap();
        let first = transaction_in_progress(&table).await;
        let refused = table
            .write(vec![
                add("b", "n", 1, None),
                put(Item::new("x", 1, doc(2)), Condition::VersionIs(7)),
            ])
            .await;
        assert_eq!(refused, Err(StoreError::ConditionFailed { index: 1 }));
        first.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_abandoned_by_its_caller_still_commits_and_releases_its_items() {
        let table = held_for(Duration::from_millis(200));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            table.write(vec![
                put(Item::new("a", 1, doc(1)), Condition::Always),
                add("b", "n", 1, None),
            ]),
        )
        .await;
        assert!(abandoned.is_err(), "the caller stopped waiting during the hold");
        assert_eq!(table.get("b").await.unwrap().unwrap().counters["n"], 1);
        table.write(vec![add("b", "n", 1, None)]).await.unwrap();
        assert_eq!(table.get("b").await.unwrap().unwrap().counters["n"], 2);
    }

    /// A hot item in many concurrent transactions: some are cancelled, none is half applied, and
    /// the counter is exactly the number that committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transactions_on_one_hot_item_conflict_but_stay_exact() {
        let table = held_for(Duration::from_millis(5));
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let table = table.clone();
                tokio::spawn(async move {
                    table
                        .write(vec![
                            put(Item::new(format!("own#{n}"), 1, doc(n)), Condition::Always),
                            add("hot", "n", 1, None),
                        ])
                        .await
                })
            })
            .collect();
        let mut committed = 0;
        let mut conflicts = 0;
        for (n, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(()) => committed += 1,
                Err(StoreError::TransactionConflict) => {
                    conflicts += 1;
                    assert_eq!(table.get(&format!("own#{n}")).await.unwrap(), None);
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert!(conflicts > 0, "50 transactions on one item at once must conflict");
        assert_eq!(table.get("hot").await.unwrap().unwrap().counters["n"], committed);
    }
}
