//! DynamoDB [`Table`]: one table per environment, every repository sharing it by key prefix.
//!
//! Layout (all names fixed; see [`table_schema`]):
//!
//! | attribute            | type | meaning                                                        |
//! |----------------------|------|----------------------------------------------------------------|
//! | `pk`                 | S    | the item key (table partition key, no sort key)                |
//! | `v`                  | N    | version; conditions compare it (`0` for items made by `Add`)   |
//! | `doc`                | S    | the JSON document (`""` for items made by `Add`)               |
//! | `gsiNpk` / `gsiNsk`  | S    | key of sparse index `gsiN` (N = 1..4), present only if indexed |
//! | `a_<name>`           | S    | filterable attribute `<name>`                                  |
//! | `c_<name>`           | N    | atomic counter `<name>`                                        |
//! | `expires_at`         | N    | TTL, epoch seconds                                             |
//!
//! Table: on-demand billing, partition key `pk`; GSIs `gsi1..4` keyed `gsiNpk` (HASH) /
//! `gsiNsk` (RANGE), projection ALL; TTL enabled on `expires_at`. DynamoDB deletes expired items
//! up to days late, so reads hide them by comparing `expires_at` with the clock.
//!
//! GSI queries are eventually consistent (DynamoDB offers nothing else on a GSI): an item
//! written a moment ago may be missing from, or stale in, a query; `get` is strongly consistent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

mod schema;

pub use schema::{create_table, table_schema, TableSchema};

use super::memory::rules::{self, SortRange};
use super::{Bound, Condition, CounterAdd, Index, IndexKey, Item, Order, Query, StoreError, StoreStats, Table, Write};

const PK: &str = "pk";
const VERSION: &str = "v";
const DOC: &str = "doc";
const EXPIRES_AT: &str = "expires_at";
const ATTR_PREFIX: &str = "a_";
const COUNTER_PREFIX: &str = "c_";

fn index_pk(index: Index) -> &'static str {
    match index {
        Index::Gsi1 => "gsi1pk",
        Index::Gsi2 => "gsi2pk",
        Index::Gsi3 => "gsi3pk",
        Index::Gsi4 => "gsi4pk",
    }
}

fn index_sk(index: Index) -> &'static str {
    match index {
        Index::Gsi1 => "gsi1sk",
        Index::Gsi2 => "gsi2sk",
        Index::Gsi3 => "gsi3sk",
        Index::Gsi4 => "gsi4sk",
    }
}

/// The [`Table`] port on one DynamoDB table.
pub struct DynamoTable {
    client: Client,
    table: String,
    requests: AtomicU64,
    items_read: AtomicU64,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> DynamoTable {
        DynamoTable {
            client,
            table: table_name.into(),
            requests: AtomicU64::new(0),
            items_read: AtomicU64::new(0),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn count(&self, requests: u64, items_read: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.items_read.fetch_add(items_read, Ordering::Relaxed);
    }

    async fn write_one(&self, write: Write) -> Result<(), StoreError> {
        let result = match write {
            Write::Put { item, condition } => {
                let mut expr = Expr::default();
                let condition = expr.condition(&condition);
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(to_attributes(&item)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| sdk_error("PutItem", e))
            }
            Write::Delete { key, condition } => {
                let mut expr = Expr::default();
                let condition = expr.condition(&condition);
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key(PK, AttributeValue::S(key))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| sdk_error("DeleteItem", e))
            }
            Write::Add {
                key,
                counters,
                expires_at,
            } => {
                let mut expr = Expr::default();
                let (update, condition) = expr.add(&counters, expires_at)?;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key(PK, AttributeValue::S(key))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| sdk_error("UpdateItem", e))
            }
        };
        self.count(1, 0);
        result
    }

    async fn write_transaction(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let mut expr = Expr::default();
            let item = match write {
                Write::Put { item, condition } => {
                    let condition = expr.condition(&condition);
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attributes(&item)))
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values())
                        .build()
                        .map_err(build_error)?;
                    TransactWriteItem::builder().put(put).build()
                }
                Write::Delete { key, condition } => {
                    let condition = expr.condition(&condition);
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .key(PK, AttributeValue::S(key))
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values())
                        .build()
                        .map_err(build_error)?;
                    TransactWriteItem::builder().delete(delete).build()
                }
                Write::Add {
                    key,
                    counters,
                    expires_at,
                } => {
                    let (update, condition) = expr.add(&counters, expires_at)?;
                    let update = Update::builder()
                        .table_name(&self.table)
                        .key(PK, AttributeValue::S(key))
                        .update_expression(update)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values())
                        .build()
                        .map_err(build_error)?;
                    TransactWriteItem::builder().update(update).build()
                }
            };
            items.push(item);
        }
        // The token makes the SDK's own retries idempotent: a retry of a transaction that did
        // commit (but whose response was lost) succeeds instead of failing its conditions.
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(ulid::Ulid::new().to_string())
            .send()
            .await;
        self.count(1, 0);
        match result {
            Ok(_) => Ok(()),
            Err(error) => Err(transaction_error(error)),
        }
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        rules::validate_key(key)?;
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                self.count(1, 0);
                return Err(sdk_error("GetItem", error));
            }
        };
        self.count(1, u64::from(output.item.is_some()));
        let Some(attributes) = output.item else { return Ok(None) };
        let item = from_attributes(&attributes)?;
        Ok((!item.is_expired(rules::now_epoch())).then_some(item))
    }

    async fn write(&self, mut writes: Vec<Write>) -> Result<(), StoreError> {
        rules::validate_writes(&writes)?;
        match writes.pop() {
            Some(write) if writes.is_empty() => self.write_one(write).await,
            Some(last) => {
                writes.push(last);
                self.write_transaction(writes).await
            }
            None => Err(StoreError::Invalid("empty batch".into())),
        }
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        rules::validate_query(query)?;
        let Some(range) = SortRange::plan(query) else {
            return Ok(Vec::new());
        };
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let (pk, sk) = (index_pk(query.index), index_sk(query.index));
        let mut expr = Expr::default();
        let mut key_condition = format!(
            "{} = {}",
            expr.name(pk),
            expr.value(AttributeValue::S(query.partition.clone()))
        );
        let value = |b: &Bound| match b {
            Bound::Inclusive(s) | Bound::Exclusive(s) => s.clone(),
        };
        // `SortRange::plan` makes both bounds inclusive when there are two (a BETWEEN).
        let comparison = match (&range.lower, &range.upper) {
            (Some(lower), Some(upper)) => Some(("BETWEEN", vec![value(lower), value(upper)])),
            (Some(Bound::Inclusive(lower)), None) => Some((">=", vec![lower.clone()])),
            (Some(Bound::Exclusive(lower)), None) => Some((">", vec![lower.clone()])),
            (None, Some(Bound::Inclusive(upper))) => Some(("<=", vec![upper.clone()])),
            (None, Some(Bound::Exclusive(upper))) => Some(("<", vec![upper.clone()])),
            (None, None) => None,
        };
        if let Some((operator, values)) = comparison {
            let sort = expr.name(sk);
            let values: Vec<String> = values.into_iter().map(|v| expr.value(AttributeValue::S(v))).collect();
            key_condition = format!("{key_condition} AND {sort} {operator} {}", values.join(" AND "));
        }
        // Expired items are filtered server-side (they still count as read, as in memory).
        let expires = expr.name(EXPIRES_AT);
        let now = expr.value(number(rules::now_epoch()));
        let mut filter = format!("(attribute_not_exists({expires}) OR {expires} > {now})");
        for (name, value) in &query.filters {
            let name = expr.name(&format!("{ATTR_PREFIX}{name}"));
            let value = expr.value(AttributeValue::S(value.clone()));
            filter.push_str(&format!(" AND {name} = {value}"));
        }

        let filtered = !query.filters.is_empty();
        let mut found = Vec::new();
        let mut start_key = None;
        let mut page = 0u32;
        loop {
            let page_size = rules::page_limit(query.limit - found.len(), page, filtered);
            let result = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(query.index.name())
                .key_condition_expression(&key_condition)
                .filter_expression(&filter)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .scan_index_forward(query.order == Order::Ascending)
                .limit(i32::try_from(page_size).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(error) => {
                    self.count(1, 0);
                    return Err(sdk_error("Query", error));
                }
            };
            self.count(1, u64::try_from(output.scanned_count()).unwrap_or(0));
            for attributes in output.items() {
                let item = from_attributes(attributes)?;
                let sort_key = item
                    .indexes
                    .iter()
                    .find(|k| k.index == query.index)
                    .map(|k| k.sort.as_str());
                if sort_key.is_some_and(|s| range.keeps(s)) {
                    found.push(item);
                }
            }
            start_key = output.last_evaluated_key;
            if found.len() >= query.limit || start_key.is_none() {
                break;
            }
            page += 1;
        }
        found.truncate(query.limit);
        Ok(found)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            requests: self.requests.load(Ordering::Relaxed),
            items_read: self.items_read.load(Ordering::Relaxed),
        }
    }
}

/// Placeholders for one expression set (`#n0` names, `:v0` values), so no attribute name or
/// value is ever spliced into an expression and reserved words cannot bite.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// DynamoDB refuses empty maps, so an expression with no placeholders sends none.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    fn condition(&mut self, condition: &Condition) -> Option<String> {
        match condition {
            Condition::Always => None,
            Condition::Absent { now_epoch } => {
                let (pk, expires) = (self.name(PK), self.name(EXPIRES_AT));
                let now = self.value(number(*now_epoch));
                Some(format!("attribute_not_exists({pk}) OR {expires} <= {now}"))
            }
            Condition::VersionIs(version) => {
                let v = self.name(VERSION);
                let expected = self.value(number(*version));
                Some(format!("{v} = {expected}"))
            }
        }
    }

    /// The update and condition expressions of an `Add`: counters are added, the item gets a
    /// version and document if new, and `expires_at` only if it has none.
    fn add(
        &mut self,
        counters: &[CounterAdd],
        expires_at: Option<i64>,
    ) -> Result<(String, Option<String>), StoreError> {
        let (v, doc) = (self.name(VERSION), self.name(DOC));
        let (zero, empty) = (self.value(number(0)), self.value(AttributeValue::S(String::new())));
        let mut set = vec![
            format!("{v} = if_not_exists({v}, {zero})"),
            format!("{doc} = if_not_exists({doc}, {empty})"),
        ];
        if let Some(expires_at) = expires_at {
            let e = self.name(EXPIRES_AT);
            let value = self.value(number(expires_at));
            set.push(format!("{e} = if_not_exists({e}, {value})"));
        }
        let mut adds = Vec::new();
        let mut conditions = Vec::new();
        for counter in counters {
            let name = self.name(&format!("{COUNTER_PREFIX}{}", counter.name));
            let delta = self.value(number(counter.delta));
            adds.push(format!("{name} {delta}"));
            if let Some(limit) = rules::max_minus_delta(counter.max, counter.delta, &counter.name)? {
                let limit_value = self.value(number(limit));
                // An absent counter counts as 0, which passes only if the delta alone fits.
                conditions.push(if limit >= 0 {
                    format!("(attribute_not_exists({name}) OR {name} <= {limit_value})")
                } else {
                    format!("{name} <= {limit_value}")
                });
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !adds.is_empty() {
            update.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        Ok((update, condition))
    }
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut attributes = HashMap::with_capacity(3 + item.indexes.len() * 2 + item.attrs.len() + item.counters.len());
    attributes.insert(PK.to_owned(), AttributeValue::S(item.key.clone()));
    attributes.insert(VERSION.to_owned(), number(item.version));
    attributes.insert(DOC.to_owned(), AttributeValue::S(item.doc.clone()));
    for key in &item.indexes {
        attributes.insert(index_pk(key.index).to_owned(), AttributeValue::S(key.partition.clone()));
        attributes.insert(index_sk(key.index).to_owned(), AttributeValue::S(key.sort.clone()));
    }
    for (name, value) in &item.attrs {
        attributes.insert(format!("{ATTR_PREFIX}{name}"), AttributeValue::S(value.clone()));
    }
    for (name, value) in &item.counters {
        attributes.insert(format!("{COUNTER_PREFIX}{name}"), number(value));
    }
    if let Some(expires_at) = item.expires_at {
        attributes.insert(EXPIRES_AT.to_owned(), number(expires_at));
    }
    attributes
}

fn from_attributes(attributes: &HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let key = string(attributes, PK, "?")?.ok_or_else(|| StoreError::Corrupt("item without pk".into()))?;
    let missing = |what: &str| StoreError::Corrupt(format!("item {key}: no {what}"));
    let version = parse_number::<u64>(attributes, VERSION, &key)?.ok_or_else(|| missing(VERSION))?;
    let doc = string(attributes, DOC, &key)?.ok_or_else(|| missing(DOC))?;
    let mut item = Item::new(key.clone(), version, doc);
    item.expires_at = parse_number::<i64>(attributes, EXPIRES_AT, &key)?;
    for index in Index::ALL {
        match (
            string(attributes, index_pk(index), &key)?,
            string(attributes, index_sk(index), &key)?,
        ) {
            (Some(partition), Some(sort)) => item.indexes.push(IndexKey { index, partition, sort }),
            (None, None) => {}
            _ => return Err(StoreError::Corrupt(format!("item {key}: half a {} key", index.name()))),
        }
    }
    for name in attributes.keys() {
        if let Some(attr) = name.strip_prefix(ATTR_PREFIX) {
            if let Some(value) = string(attributes, name, &key)? {
                item.attrs.insert(attr.to_owned(), value);
            }
        } else if let Some(counter) = name.strip_prefix(COUNTER_PREFIX) {
            if let Some(value) = parse_number::<i64>(attributes, name, &key)? {
                item.counters.insert(counter.to_owned(), value);
            }
        }
    }
    Ok(item)
}

fn string(attributes: &HashMap<String, AttributeValue>, name: &str, key: &str) -> Result<Option<String>, StoreError> {
    match attributes.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
        Some(_) => Err(StoreError::Corrupt(format!("item {key}: {name} is not a string"))),
    }
}

fn parse_number<T: std::str::FromStr>(
    attributes: &HashMap<String, AttributeValue>,
    name: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match attributes.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("item {key}: {name} is not an integer in range ({n})"))),
        Some(_) => Err(StoreError::Corrupt(format!("item {key}: {name} is not a number"))),
    }
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Invalid(format!("building a DynamoDB request: {error}"))
}

/// Maps an SDK failure: a failed condition on a single write is write 0; validation is the
/// caller's fault; a single write on an item of a transaction in progress is a
/// `TransactionConflict` (nothing written, safe to resend); everything else (throttling, 5xx,
/// network, timeouts, a missing table) may pass and is `Unavailable`.
fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ConstructionFailure(_) => StoreError::Invalid(format!(
            "{operation}: request not built: {}",
            DisplayErrorContext(&error)
        )),
        SdkError::ServiceError(context) => service_error(
            operation,
            context.err().code().unwrap_or("UnknownError"),
            context.err().message().unwrap_or(""),
        ),
        _ => StoreError::Unavailable(format!("{operation}: {}", DisplayErrorContext(&error))),
    }
}

/// A service error's code, as a [`StoreError`].
fn service_error(operation: &str, code: &str, message: &str) -> StoreError {
    match code {
        "ConditionalCheckFailedException" => StoreError::ConditionFailed { index: 0 },
        "TransactionConflictException" => StoreError::TransactionConflict,
        "ValidationException" | "SerializationException" => {
            StoreError::Invalid(format!("{operation}: {code}: {message}"))
        }
        _ => StoreError::Unavailable(format!("{operation}: {code}: {message}")),
    }
}

fn transaction_error<R: std::fmt::Debug>(error: SdkError<TransactWriteItemsError, R>) -> StoreError {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
        return sdk_error("TransactWriteItems", error);
    };
    let mut codes: Vec<String> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None").to_owned())
        .collect();
    if codes.is_empty() {
        // Without structured reasons, DynamoDB's message still lists them:
        // "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"
        codes = reasons_from_message(cancelled.message().unwrap_or(""));
    }
    cancellation(&codes)
}

/// A cancelled transaction's reasons (one per write, `None` for writes that were fine), as a
/// [`StoreError`]: a failed condition is definitive and wins; then validation; then a conflict
/// with another transaction (nothing was written: resend); the rest (throttling) is transient.
fn cancellation(codes: &[String]) -> StoreError {
    if let Some(index) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
        return StoreError::ConditionFailed { index };
    }
    if codes.iter().any(|c| c == "ValidationError") {
        return StoreError::Invalid(format!("TransactWriteItems cancelled: {codes:?}"));
    }
    if codes.iter().any(|c| c == "TransactionConflict") {
        return StoreError::TransactionConflict;
    }
    // ThrottlingError, ProvisionedThroughputExceeded...: retryable.
    StoreError::Unavailable(format!("TransactWriteItems cancelled: {codes:?}"))
}

fn reasons_from_message(message: &str) -> Vec<String> {
    let Some(start) = message.rfind('[') else {
        return Vec::new();
    };
    let Some(end) = message[start..].find(']') else {
        return Vec::new();
    };
    message[start + 1..start + end]
        .split(',')
        .map(|code| code.trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_read_from_the_message() {
        let message = "Transaction cancelled, please refer cancellation reasons for specific reasons \
                       [None, ConditionalCheckFailed]";
        assert_eq!(reasons_from_message(message), vec!["None", "ConditionalCheckFailed"]);
        assert!(reasons_from_message("no list").is_empty());
    }

    #[test]
    fn transaction_conflicts_are_their_own_retryable_error() {
        let codes = |list: &[&str]| list.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            cancellation(&codes(&["None", "TransactionConflict", "None"])),
            StoreError::TransactionConflict
        );
        // A failed condition is definitive: it wins over a conflict on another write.
        assert_eq!(
            cancellation(&codes(&["TransactionConflict", "ConditionalCheckFailed"])),
            StoreError::ConditionFailed { index: 1 }
        );
        assert!(matches!(
            cancellation(&codes(&["None", "ThrottlingError"])),
            StoreError::Unavailable(_)
        ));
        // A single PutItem/UpdateItem/DeleteItem on an item of a transaction in progress.
        assert_eq!(
            service_error("PutItem", "TransactionConflictException", "in progress"),
            StoreError::TransactionConflict
        );
        assert!(matches!(
            service_error("PutItem", "ProvisionedThroughputExceededException", ""),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn items_round_trip_through_attributes() {
        let mut item = Item::new("k", 3, "{}".into())
            .with_index(Index::Gsi1, "p", "s")
            .with_index(Index::Gsi3, "p3", "s3")
            .with_attr("status", "paid")
            .expiring_at(99);
        item.counters.insert("n".into(), -4);
        assert_eq!(from_attributes(&to_attributes(&item)), Ok(item));
    }

    #[test]
    fn unreadable_items_are_corrupt() {
        let mut attributes = to_attributes(&Item::new("k", 1, "{}".into()));
        attributes.insert(VERSION.into(), AttributeValue::S("one".into()));
        assert!(matches!(from_attributes(&attributes), Err(StoreError::Corrupt(_))));
        attributes.insert(VERSION.into(), number(1));
        attributes.insert("gsi2pk".into(), AttributeValue::S("only half".into()));
        assert!(matches!(from_attributes(&attributes), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn add_expressions_keep_absent_counters_at_zero() {
        let mut expr = Expr::default();
        let adds = [
            CounterAdd {
                name: "a".into(),
                delta: 1,
                max: Some(5),
            },
            CounterAdd {
                name: "b".into(),
                delta: 7,
                max: Some(5),
            },
        ];
        let (update, condition) = expr.add(&adds, Some(10)).unwrap();
        assert!(update.starts_with("SET ") && update.contains(" ADD "), "{update}");
        let condition = condition.unwrap();
        // `a` may start absent; `b` cannot fit even from zero, so it must exist (and be <= -2).
        assert_eq!(condition.matches("attribute_not_exists").count(), 1, "{condition}");
    }
}
