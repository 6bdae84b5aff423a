//! Walks object values (msgpack, as Terraform sends them) along a block schema: marks what a real provider
//! would only know after apply, fills what a data source reads, and checks the block item limits that
//! tf-provider cannot put in the served schema.

use rmpv::Value;
use tf_provider::{AttributePath, Diagnostic, Diagnostics};

use crate::schema::{AttrDef, BlockDef, Nesting};

/// Terraform's msgpack encoding of an unknown value: extension 0.
pub fn unknown() -> Value {
    Value::Ext(0, Vec::new())
}

pub fn is_unknown(v: &Value) -> bool {
    matches!(v, Value::Ext(0, _))
}

/// The value of `key` in a msgpack map.
pub fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn get_mut<'v>(v: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    match v {
        Value::Map(m) => m
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Replaces every null attribute for which `fill` returns a value, in `block` and its nested blocks.
pub fn fill_nulls(
    block: &BlockDef,
    value: &mut Value,
    fill: &mut dyn FnMut(&str, &AttrDef) -> Option<Value>,
) {
    if !matches!(value, Value::Map(_)) {
        return;
    }
    for (name, attr) in &block.attributes {
        if let Some(v) = get_mut(value, name) {
            if v.is_nil() {
                if let Some(new) = fill(name, attr) {
                    *v = new;
                }
            }
        }
    }
    for (name, nested) in &block.blocks {
        let Some(v) = get_mut(value, name) else {
            continue;
        };
        match (nested.nesting, v) {
            (Nesting::Single, v @ Value::Map(_)) => fill_nulls(&nested.block, v, fill),
            (Nesting::List | Nesting::Set, Value::Array(items)) => {
                for item in items {
                    fill_nulls(&nested.block, item, fill);
                }
            }
            _ => {}
        }
    }
}

/// The planned new state of a resource: the proposed state with every null computed attribute unknown, as
/// a provider that learns them on create would plan it.
pub fn plan(block: &BlockDef, mut proposed: Value) -> Value {
    fill_nulls(block, &mut proposed, &mut |_, attr| {
        attr.computed.then(unknown)
    });
    proposed
}

/// Reports block item counts outside the schema's limits with Terraform's own wording, for the limits the
/// served schema cannot carry (see [`crate::schema::to_block`]).
pub fn check_item_limits(
    block: &BlockDef,
    value: &Value,
    path: &AttributePath,
    diags: &mut Diagnostics,
) {
    if !matches!(value, Value::Map(_)) {
        return;
    }
    for (name, nested) in &block.blocks {
        let Some(v) = get(value, name) else { continue };
        if is_unknown(v) {
            continue;
        }
        let at = path.clone().attribute(name.clone());
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Nil => Vec::new(),
            other => vec![other],
        };
        // An unknown item (a dynamic block over an unknown collection) may stand for any number of them.
        let countable = !items.iter().any(|i| is_unknown(i));
        let n = items.len() as u32;
        if nested.nesting != Nesting::Single && countable {
            if n < nested.min_items {
                diags.add_error(error(
                    format!("Insufficient {name} blocks"),
                    format!(
                        "At least {} \"{name}\" blocks are required.",
                        nested.min_items
                    ),
                    at.clone(),
                ));
            }
            if nested.max_items > 0 && n > nested.max_items {
                diags.add_error(error(
                    format!("Too many {name} blocks"),
                    format!(
                        "No more than {} \"{name}\" blocks are allowed",
                        nested.max_items
                    ),
                    at.clone(),
                ));
            }
        }
        for (i, item) in items.into_iter().enumerate() {
            let at = match nested.nesting {
                Nesting::List => at.clone().index(i as i64),
                _ => at.clone(),
            };
            check_item_limits(&nested.block, item, &at, diags);
        }
    }
}

/// A diagnostic built field by field: `Diagnostic::new` appends a backtrace to the detail whenever
/// RUST_BACKTRACE is set, and Terraform would print it to the user.
fn error(summary: String, detail: String, attribute: AttributePath) -> Diagnostic {
    Diagnostic {
        summary: summary.into(),
        detail: detail.into(),
        attribute,
    }
}

/// A msgpack map from string keys, for tests.
#[cfg(test)]
pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaFile;

    #[test]
    fn plan_marks_null_computed_attributes_unknown_in_nested_blocks_too() {
        let s = SchemaFile::aws();
        let versioning = &s.resources["aws_s3_bucket_versioning"];
        let proposed = map(vec![
            ("bucket", Value::from("b")),
            ("id", Value::Nil),
            ("mfa", Value::Nil),
            ("expected_bucket_owner", Value::Nil),
            ("region", Value::Nil),
            (
                "versioning_configuration",
                Value::Array(vec![map(vec![
                    ("status", Value::from("Enabled")),
                    ("mfa_delete", Value::Nil),
                ])]),
            ),
        ]);
        let planned = plan(versioning, proposed);
        assert!(is_unknown(get(&planned, "id").unwrap()));
        assert!(
            get(&planned, "mfa").unwrap().is_nil(),
            "optional, not computed: stays null"
        );
        assert_eq!(get(&planned, "bucket").unwrap().as_str(), Some("b"));
        let vc = &get(&planned, "versioning_configuration")
            .unwrap()
            .as_array()
            .unwrap()[0];
        assert!(is_unknown(get(vc, "mfa_delete").unwrap()));
    }

    #[test]
    fn item_limits_use_terraforms_words() {
        let s = SchemaFile::aws();
        let versioning = &s.resources["aws_s3_bucket_versioning"];
        let mut diags = Diagnostics::default();
        let config = map(vec![
            ("bucket", Value::from("b")),
            ("versioning_configuration", Value::Array(vec![])),
        ]);
        check_item_limits(versioning, &config, &AttributePath::root(), &mut diags);
        assert_eq!(diags.errors.len(), 1);
        assert_eq!(
            diags.errors[0].summary,
            "Insufficient versioning_configuration blocks"
        );
    }
}
