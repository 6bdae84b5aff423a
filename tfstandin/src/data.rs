//! What the stand-in's data sources read: fixed, plausible values for one fictitious account, and a real
//! rendering of `aws_iam_policy_document`. Nothing here talks to AWS.

use rmpv::Value;
use serde_json::{json, Map, Value as Json};

use crate::schema::{AttrDef, BlockDef};
use crate::values::{fill_nulls, get};

pub const ACCOUNT_ID: &str = "123456789012";
pub const DEFAULT_REGION: &str = "us-east-1";

/// The zone letters of every region (`a,b` unless this variable says otherwise, e.g. `a,c,d` as in
/// regions and accounts without a `b` zone): tests use it to plan against such a region.
pub const ZONES_ENV: &str = "TFSTANDIN_AVAILABILITY_ZONES";

fn zone_letters() -> Vec<String> {
    std::env::var(ZONES_ENV)
        .unwrap_or_else(|_| "a,b".into())
        .split(',')
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The state a data source of type `name` (e.g. `aws_region`) reads for `config`, in `region`.
pub fn read(name: &str, block: &BlockDef, mut config: Value, region: &str) -> Value {
    let region = get(&config, "region")
        .and_then(Value::as_str)
        .unwrap_or(region)
        .to_owned();
    let policy = (name == "aws_iam_policy_document").then(|| policy_document(&config));
    fill_nulls(block, &mut config, &mut |attr, def| {
        Some(match (name, attr) {
            ("aws_caller_identity", "account_id" | "id") => ACCOUNT_ID.into(),
            ("aws_caller_identity", "arn") => {
                format!("arn:aws:iam::{ACCOUNT_ID}:user/tfstandin").into()
            }
            ("aws_caller_identity", "user_id") => "AIDATFSTANDIN00000000".into(),
            ("aws_region", "region" | "name" | "id") => region.as_str().into(),
            ("aws_region", "endpoint") => format!("ec2.{region}.amazonaws.com").into(),
            ("aws_region", "description") => format!("Stand-in region {region}").into(),
            ("aws_partition", "partition" | "id") => "aws".into(),
            ("aws_partition", "dns_suffix") => "amazonaws.com".into(),
            ("aws_partition", "reverse_dns_prefix") => "com.amazonaws".into(),
            ("aws_availability_zones", "names") => {
                let names: Vec<String> = zone_letters().iter().map(|z| format!("{region}{z}")).collect();
                strings(&names.iter().map(String::as_str).collect::<Vec<_>>())
            }
            ("aws_availability_zones", "zone_ids") => {
                let ids: Vec<String> = (1..=zone_letters().len()).map(|i| format!("use1-az{i}")).collect();
                strings(&ids.iter().map(String::as_str).collect::<Vec<_>>())
            }
            ("aws_availability_zones", "group_names") => strings(&[&region]),
            ("aws_availability_zones", "id" | "region") => region.as_str().into(),
            ("aws_iam_policy_document", "json") => {
                serde_json::to_string_pretty(policy.as_ref()?).ok()?.into()
            }
            ("aws_iam_policy_document", "minified_json") => {
                serde_json::to_string(policy.as_ref()?).ok()?.into()
            }
            ("aws_iam_policy_document", "id") => {
                let text = serde_json::to_string(policy.as_ref()?).ok()?;
                format!("{:x}", fnv1a(text.as_bytes())).into()
            }
            _ if def.computed => placeholder(def)?,
            _ => return None,
        })
    });
    config
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}

/// A known value of the attribute's type, for computed attributes nobody reads.
fn placeholder(def: &AttrDef) -> Option<Value> {
    match &def.ty {
        Json::String(s) => match s.as_str() {
            "string" => Some("tfstandin".into()),
            "number" => Some(0.into()),
            "bool" => Some(false.into()),
            _ => None,
        },
        Json::Array(pair) => match pair.first()?.as_str()? {
            "list" | "set" => Some(Value::Array(Vec::new())),
            "map" => Some(Value::Map(Vec::new())),
            _ => None,
        },
        _ => None,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One string when there is one, else the list: the provider's rendering of a set of strings.
fn one_or_many(mut items: Vec<String>) -> Json {
    if items.len() == 1 {
        Json::String(items.remove(0))
    } else {
        items.sort();
        Json::from(items)
    }
}

/// The IAM policy JSON that the AWS provider renders for an `aws_iam_policy_document` configuration.
pub fn policy_document(config: &Value) -> Json {
    let mut doc = Map::new();
    let version = get(config, "version")
        .and_then(Value::as_str)
        .unwrap_or("2012-10-17");
    doc.insert("Version".into(), version.into());
    if let Some(id) = get(config, "policy_id").and_then(Value::as_str) {
        doc.insert("Id".into(), id.into());
    }
    let statements = get(config, "statement")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let rendered: Vec<Json> = statements.iter().map(statement).collect();
    doc.insert("Statement".into(), Json::from(rendered));
    Json::Object(doc)
}

fn statement(s: &Value) -> Json {
    let mut out = Map::new();
    if let Some(sid) = get(s, "sid").and_then(Value::as_str) {
        out.insert("Sid".into(), sid.into());
    }
    out.insert(
        "Effect".into(),
        get(s, "effect")
            .and_then(Value::as_str)
            .unwrap_or("Allow")
            .into(),
    );
    for (attr, key) in [
        ("actions", "Action"),
        ("not_actions", "NotAction"),
        ("resources", "Resource"),
        ("not_resources", "NotResource"),
    ] {
        let items = string_list(get(s, attr));
        if !items.is_empty() {
            out.insert(key.into(), one_or_many(items));
        }
    }
    for (attr, key) in [
        ("principals", "Principal"),
        ("not_principals", "NotPrincipal"),
    ] {
        let blocks = get(s, attr)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if blocks.is_empty() {
            continue;
        }
        let mut by_type = Map::new();
        let mut wildcard = false;
        for p in blocks {
            let ty = get(p, "type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let ids = string_list(get(p, "identifiers"));
            wildcard |= ty == "*" && ids.iter().all(|i| i == "*");
            by_type.insert(ty, one_or_many(ids));
        }
        out.insert(
            key.into(),
            if wildcard {
                json!("*")
            } else {
                Json::Object(by_type)
            },
        );
    }
    let conditions = get(s, "condition")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !conditions.is_empty() {
        let mut by_test = Map::new();
        for c in conditions {
            let test = get(c, "test")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let variable = get(c, "variable")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let values = string_list(get(c, "values"));
            let entry = by_test
                .entry(test)
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(vars) = entry {
                vars.insert(variable, one_or_many(values));
            }
        }
        out.insert("Condition".into(), Json::Object(by_test));
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaFile;
    use crate::values::map;

    #[test]
    fn account_region_and_zones_are_plausible() {
        let s = SchemaFile::aws();
        let nulls = |b: &BlockDef| {
            map(b
                .attributes
                .keys()
                .map(|k| (k.as_str(), Value::Nil))
                .collect())
        };
        let me = read(
            "aws_caller_identity",
            &s.data_sources["aws_caller_identity"],
            nulls(&s.data_sources["aws_caller_identity"]),
            "eu-west-1",
        );
        assert_eq!(get(&me, "account_id").unwrap().as_str(), Some(ACCOUNT_ID));
        let zones = read(
            "aws_availability_zones",
            &s.data_sources["aws_availability_zones"],
            nulls(&s.data_sources["aws_availability_zones"]),
            "eu-west-1",
        );
        assert_eq!(
            string_list(get(&zones, "names")),
            ["eu-west-1a", "eu-west-1b"]
        );
        let part = read(
            "aws_partition",
            &s.data_sources["aws_partition"],
            nulls(&s.data_sources["aws_partition"]),
            "eu-west-1",
        );
        assert_eq!(
            get(&part, "dns_suffix").unwrap().as_str(),
            Some("amazonaws.com")
        );
    }

    #[test]
    fn policy_documents_render_like_the_provider() {
        let statement = map(vec![
            ("sid", "Send".into()),
            ("effect", Value::Nil),
            ("actions", Value::Array(vec!["sqs:SendMessage".into()])),
            (
                "resources",
                Value::Array(vec!["arn:b".into(), "arn:a".into()]),
            ),
            (
                "principals",
                Value::Array(vec![map(vec![
                    ("type", "Service".into()),
                    (
                        "identifiers",
                        Value::Array(vec!["lambda.amazonaws.com".into()]),
                    ),
                ])]),
            ),
            (
                "condition",
                Value::Array(vec![map(vec![
                    ("test", "StringEquals".into()),
                    ("variable", "aws:SourceAccount".into()),
                    ("values", Value::Array(vec![ACCOUNT_ID.into()])),
                ])]),
            ),
        ]);
        let doc = policy_document(&map(vec![("statement", Value::Array(vec![statement]))]));
        assert_eq!(
            doc,
            json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "Send", "Effect": "Allow", "Action": "sqs:SendMessage",
                "Resource": ["arn:a", "arn:b"],
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
            }]})
        );
    }
}
