//! DynamoDB Streams records, as the `events` Lambda function receives them.
//!
//! The event source mapping filters to inserts of event items (`pk` beginning `EVT#`); this
//! parser checks again, so a mapping without its filter delivers nothing twice and nothing else.
//! The answer lists the records that failed (`ReportBatchItemFailures`): the stream retries from
//! the first of them, and an event that keeps failing is left to the redrive sweep.

use serde::Deserialize;
use serde_json::Value;

use super::repo::KEY_PREFIX;

/// One stream record naming a new event item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedEvent {
    /// The stream's sequence number: what a batch-item failure names.
    pub sequence_number: String,
    /// The event's id (its key without `EVT#`).
    pub event_id: String,
}

#[derive(Deserialize)]
struct Records {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: Option<String>,
    #[serde(default)]
    dynamodb: Option<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(rename = "Keys", default)]
    keys: Option<Value>,
    #[serde(rename = "SequenceNumber", default)]
    sequence_number: Option<String>,
}

/// The new event items of a stream batch; records of anything else are skipped.
pub fn new_events(payload: &Value) -> Vec<StreamedEvent> {
    let Ok(batch) = Records::deserialize(payload) else {
        return Vec::new();
    };
    batch
        .records
        .into_iter()
        .filter(|r| r.event_name.as_deref() == Some("INSERT"))
        .filter_map(|r| {
            let change = r.dynamodb?;
            let key = change.keys?.get("pk")?.get("S")?.as_str()?.to_owned();
            let event_id = key.strip_prefix(KEY_PREFIX)?.to_owned();
            Some(StreamedEvent {
                sequence_number: change.sequence_number?,
                event_id,
            })
        })
        .collect()
}

/// The answer to a stream batch: the records to deliver again.
pub fn batch_response(failed: &[String]) -> Value {
    serde_json::json!({
        "batchItemFailures": failed
            .iter()
            .map(|seq| serde_json::json!({ "itemIdentifier": seq }))
            .collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inserts_of_event_items_are_delivered() {
        let payload = serde_json::json!({"Records": [
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "EVT#evt_pay_1_00000001"}}, "SequenceNumber": "100"}},
            {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "EVT#evt_pay_1_00000001"}}, "SequenceNumber": "101"}},
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "PAY#pay_1"}}, "SequenceNumber": "102"}},
            {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"N": "1"}}, "SequenceNumber": "103"}},
            {"eventName": "INSERT"}
        ]});
        assert_eq!(
            new_events(&payload),
            vec![StreamedEvent {
                sequence_number: "100".into(),
                event_id: "evt_pay_1_00000001".into()
            }]
        );
        assert!(new_events(&serde_json::json!({"nope": 1})).is_empty());
        assert!(new_events(&serde_json::json!("junk")).is_empty());
    }

    #[test]
    fn failures_are_reported_by_sequence_number() {
        assert_eq!(
            batch_response(&["7".into()]),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "7"}]})
        );
    }
}
