//! The table as production has it (key schema, indexes, billing, TTL), and creating it: for
//! moto in tests and the dev stack, and for the template test to compare `template.yaml` with.

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;

use super::{build_error, index_pk, index_sk, sdk_error, EXPIRES_AT, PK};
use crate::store::{Index, StoreError};

/// What [`create_table`] creates: the production table's key schema, indexes, billing and TTL.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
    pub billing_mode: BillingMode,
    pub ttl_attribute: &'static str,
}

pub fn table_schema() -> Result<TableSchema, StoreError> {
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let mut attribute_definitions = vec![string_attribute(PK).map_err(build_error)?];
    let mut global_secondary_indexes = Vec::new();
    for index in Index::ALL {
        attribute_definitions.push(string_attribute(index_pk(index)).map_err(build_error)?);
        attribute_definitions.push(string_attribute(index_sk(index)).map_err(build_error)?);
        global_secondary_indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name())
                .key_schema(key(index_pk(index), KeyType::Hash).map_err(build_error)?)
                .key_schema(key(index_sk(index), KeyType::Range).map_err(build_error)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_error)?,
        );
    }
    Ok(TableSchema {
        attribute_definitions,
        key_schema: vec![key(PK, KeyType::Hash).map_err(build_error)?],
        global_secondary_indexes,
        billing_mode: BillingMode::PayPerRequest,
        ttl_attribute: EXPIRES_AT,
    })
}

/// Creates the table as production has it (or accepts an existing one with the same keys and
/// indexes), waits until it and its indexes are active, and enables TTL. For tests and the
/// dev stack; production tables come from infrastructure code with the same [`table_schema`].
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let schema = table_schema()?;
    let created = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(schema.attribute_definitions.clone()))
        .set_key_schema(Some(schema.key_schema.clone()))
        .set_global_secondary_indexes(Some(schema.global_secondary_indexes.clone()))
        .billing_mode(schema.billing_mode.clone())
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(sdk_error("CreateTable", error)),
    }
    wait_until_active(client, name, &schema).await?;
    enable_ttl(client, name, schema.ttl_attribute).await
}

async fn wait_until_active(client: &Client, name: &str, schema: &TableSchema) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 240;
    for _ in 0..ATTEMPTS {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        let Some(table) = described.table else {
            return Err(StoreError::Unavailable(format!("DescribeTable {name}: no description")));
        };
        if table.key_schema() != schema.key_schema.as_slice() {
            return Err(StoreError::Invalid(format!(
                "table {name} exists with a different key schema"
            )));
        }
        let indexes = table.global_secondary_indexes();
        for wanted in &schema.global_secondary_indexes {
            let same = indexes
                .iter()
                .any(|i| i.index_name() == Some(wanted.index_name()) && i.key_schema() == wanted.key_schema());
            if !same {
                return Err(StoreError::Invalid(format!(
                    "table {name} lacks index {:?} as specified",
                    wanted.index_name()
                )));
            }
        }
        // DynamoDB reports an index CREATING until backfilled; a missing status (older
        // emulators) is taken as active.
        let indexes_active = indexes.iter().all(|i| {
            i.index_status()
                .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
        });
        if table.table_status() == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(StoreError::Unavailable(format!(
        "table {name} not active after {}s",
        ATTEMPTS / 2
    )))
}

async fn enable_ttl(client: &Client, name: &str, attribute: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", e))?;
    if let Some(ttl) = described.time_to_live_description {
        let on = matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        if on && ttl.attribute_name() == Some(attribute) {
            return Ok(());
        }
    }
    let specification = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
        .map_err(build_error)?;
    match client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Real DynamoDB refuses to re-enable an enabled TTL; the describe above may have raced.
        Err(error) if error.message().is_some_and(|m| m.contains("already enabled")) => Ok(()),
        Err(error) => Err(sdk_error("UpdateTimeToLive", error)),
    }
}
