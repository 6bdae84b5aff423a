//! The jobs table as `generated/` declares it (`aws_dynamodb_table.jobs`: attributes, keys, every
//! global secondary index with its projection, TTL), created in moto. The tests and the local stack
//! use this one definition, so they run against the schema that is deployed, sparse index included.

use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeValue,
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::Value;

/// The table's schema, read from the Terraform JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    pub hash_key: String,
    pub range_key: Option<String>,
    /// (name, DynamoDB scalar type `S`/`N`/`B`)
    pub attributes: Vec<(String, String)>,
    pub indexes: Vec<IndexSchema>,
    pub ttl_attribute: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IndexSchema {
    pub name: String,
    pub hash_key: String,
    pub range_key: Option<String>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

fn field(v: &Value, key: &str, what: &str) -> Result<String, String> {
    v.get(key).and_then(Value::as_str).map(String::from).ok_or_else(|| format!("{what}: no string `{key}` in {v}"))
}

impl TableSchema {
    /// `aws_dynamodb_table.<logical>` of the `*.tf.json` files in `dir`.
    pub fn from_dir(dir: &Path, logical: &str) -> Result<TableSchema, String> {
        let files = crate::taskdef::read_dir(dir).map_err(|e| e.to_string())?;
        let table = files
            .values()
            .find_map(|d| d.pointer(&format!("/resource/aws_dynamodb_table/{logical}")))
            .ok_or_else(|| format!("{} declares no aws_dynamodb_table.{logical}", dir.display()))?;
        let what = format!("aws_dynamodb_table.{logical}");
        let mut attributes = Vec::new();
        for a in table.get("attribute").and_then(Value::as_array).into_iter().flatten() {
            attributes.push((field(a, "name", &what)?, field(a, "type", &what)?));
        }
        let mut indexes = Vec::new();
        for i in table.get("global_secondary_index").and_then(Value::as_array).into_iter().flatten() {
            indexes.push(IndexSchema {
                name: field(i, "name", &what)?,
                hash_key: field(i, "hash_key", &what)?,
                range_key: i.get("range_key").and_then(Value::as_str).map(String::from),
                projection: field(i, "projection_type", &what)?,
                non_key_attributes: i
                    .get("non_key_attributes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect(),
            });
        }
        let ttl = table.get("ttl").and_then(|t| if t.is_array() { t.get(0) } else { Some(t) });
        Ok(TableSchema {
            hash_key: field(table, "hash_key", &what)?,
            range_key: table.get("range_key").and_then(Value::as_str).map(String::from),
            attributes,
            indexes,
            ttl_attribute: ttl.filter(|t| t["enabled"] == true).and_then(|t| t.get("attribute_name")?.as_str().map(String::from)),
        })
    }

    /// Creates the table `name` with this schema (on-demand), and turns on its TTL.
    pub async fn create(&self, ddb: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), String> {
        let err = |what: &'static str| move |e: &dyn std::fmt::Display| format!("{what} of table {name}: {e}");
        let key = |attr: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(attr).key_type(kind).build().map_err(|e| err("key")(&e));
        let mut req = ddb.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
        for (attr, ty) in &self.attributes {
            let ty = ScalarAttributeType::from(ty.as_str());
            req = req.attribute_definitions(AttributeDefinition::builder().attribute_name(attr).attribute_type(ty).build().map_err(|e| err("attribute")(&e))?);
        }
        req = req.key_schema(key(&self.hash_key, KeyType::Hash)?);
        if let Some(r) = &self.range_key {
            req = req.key_schema(key(r, KeyType::Range)?);
        }
        for i in &self.indexes {
            let mut projection = Projection::builder().projection_type(ProjectionType::from(i.projection.as_str()));
            for a in &i.non_key_attributes {
                projection = projection.non_key_attributes(a);
            }
            let mut index = GlobalSecondaryIndex::builder().index_name(&i.name).key_schema(key(&i.hash_key, KeyType::Hash)?).projection(projection.build());
            if let Some(r) = &i.range_key {
                index = index.key_schema(key(r, KeyType::Range)?);
            }
            req = req.global_secondary_indexes(index.build().map_err(|e| err("index")(&e))?);
        }
        req.send().await.map_err(|e| err("create")(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        if let Some(attr) = &self.ttl_attribute {
            ddb.update_time_to_live()
                .table_name(name)
                .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name(attr).enabled(true).build().map_err(|e| err("TTL")(&e))?)
                .send()
                .await
                .map_err(|e| err("TTL")(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        }
        Ok(())
    }
}

/// Creates the jobs table `name` in moto exactly as `generated/` under `root` declares it.
pub async fn create_jobs_table(ddb: &aws_sdk_dynamodb::Client, root: &Path, name: &str) -> Result<(), String> {
    TableSchema::from_dir(&root.join("generated"), "jobs")?.create(ddb, name).await
}

/// What Terraform writes beside each API key (and generation): the item naming its tenant
/// (`names::table::api_key_key`), as `generated/` declares it.
pub async fn put_api_key(ddb: &aws_sdk_dynamodb::Client, table: &str, api_key_id: &str, tenant: &str) -> Result<(), String> {
    ddb.put_item()
        .table_name(table)
        .item(names::table::TASK_ID, AttributeValue::S(names::table::api_key_key(api_key_id)))
        .item(names::table::KEY_TENANT, AttributeValue::S(tenant.to_owned()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("PutItem of API key {api_key_id}'s tenant: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

/// What Terraform writes for a tenant with limits of its own (`tenant_limits`): the item the
/// reconciler lists in the `limits` partition of the sparse index (`names::table::limits_key`).
pub async fn put_limits(ddb: &aws_sdk_dynamodb::Client, table: &str, tenant: &str, max_running: Option<u32>, max_queued: Option<u32>) -> Result<(), String> {
    let mut req = ddb
        .put_item()
        .table_name(table)
        .item(names::table::TASK_ID, AttributeValue::S(names::table::limits_key(tenant)))
        .item(names::table::UNFINISHED, AttributeValue::S(names::table::LIMITS_PARTITION.into()))
        .item(names::table::DEADLINE_AT, AttributeValue::N("0".into()));
    for (name, value) in [(names::table::MAX_RUNNING, max_running), (names::table::MAX_QUEUED, max_queued)] {
        if let Some(v) = value {
            req = req.item(name, AttributeValue::N(v.to_string()));
        }
    }
    req.send().await.map(|_| ()).map_err(|e| format!("PutItem of {tenant}'s limits: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_jobs_table_has_its_indexes_and_ttl() {
        let schema = TableSchema::from_dir(&crate::root().join("generated"), "jobs").unwrap();
        assert_eq!(schema.hash_key, names::table::TASK_ID);
        assert_eq!(schema.ttl_attribute.as_deref(), Some(names::table::EXPIRES_AT));
        let names: Vec<&str> = schema.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, [names::table::TENANT_INDEX, names::table::UNFINISHED_INDEX]);
        let unfinished = &schema.indexes[1];
        assert_eq!((unfinished.hash_key.as_str(), unfinished.range_key.as_deref()), (names::table::UNFINISHED, Some(names::table::DEADLINE_AT)));
        assert!(schema.attributes.contains(&(names::table::DEADLINE_AT.to_string(), names::table::KEY_TYPE_NUMBER.to_string())));
    }
}
