//! The AWS provider schema (tfjson's one committed copy, written by `scripts/provider-schema.sh`)
//! translated into the schema that tf-provider serves over the plugin protocol.

use std::collections::HashMap;

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};

/// The one committed schema and its parser live in tfjson; the stand-in serves it.
pub use tfjson::provider::{
    AttrDef, BlockDef, NestedDef, NestingMode as Nesting, ProviderSchema as SchemaFile, Source,
};

/// (types, attributes, blocks) served, counting nested blocks' attributes.
pub fn size(s: &SchemaFile) -> (usize, usize, usize) {
    let types = s.resources.len() + s.data_sources.len();
    let (mut attributes, mut blocks) = count(&s.provider);
    for b in s.resources.values().chain(s.data_sources.values()) {
        let (a, n) = count(b);
        attributes += a;
        blocks += n;
    }
    (types, attributes, blocks)
}

fn count(b: &BlockDef) -> (usize, usize) {
    let mut attributes = b.attributes.len();
    let mut blocks = b.blocks.len();
    for nested in b.blocks.values() {
        let (a, n) = count(&nested.block);
        attributes += a;
        blocks += n;
    }
    (attributes, blocks)
}

/// The tf-provider schema of a block.
///
/// tf-provider 0.2.2 fixes the item limits per nesting mode: `Single` is 1..1, `Optional` a list of 0..1,
/// `List`/`Set` 0..unlimited, `Group` a never-null single. So an optional single block is served as a
/// group, and limits it cannot express (a required list, a set of at most one) are checked by
/// [`crate::values::check_item_limits`] when Terraform asks the provider to validate a configuration.
pub fn to_block(b: &BlockDef) -> Block {
    let attributes = b
        .attributes
        .iter()
        .map(|(name, a)| (name.clone(), to_attribute(a, name)))
        .collect();
    let blocks = b
        .blocks
        .iter()
        .map(|(name, nested)| {
            let block = to_block(&nested.block);
            let served = match (nested.nesting, nested.min_items, nested.max_items) {
                (Nesting::Single, 1, _) => NestedBlock::Single(block),
                (Nesting::Single, _, _) => NestedBlock::Group(block),
                (Nesting::List, _, 1) => NestedBlock::Optional(block),
                (Nesting::List, _, _) => NestedBlock::List(block),
                (Nesting::Set, _, _) => NestedBlock::Set(block),
            };
            (name.clone(), served)
        })
        .collect();
    Block {
        attributes,
        blocks,
        description: Description::plain(""),
        ..Default::default()
    }
}

fn to_attribute(a: &AttrDef, name: &str) -> Attribute {
    let constraint = match (a.required, a.optional, a.computed) {
        (true, _, _) => AttributeConstraint::Required,
        (false, true, true) => AttributeConstraint::OptionalComputed,
        (false, false, true) => AttributeConstraint::Computed,
        _ => AttributeConstraint::Optional,
    };
    Attribute {
        attr_type: cty_type(&a.ty).unwrap_or_else(|| panic!("attribute {name}: unknown type {}", a.ty)),
        description: Description::plain(""),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

/// Terraform's JSON notation of a cty type, as tf-provider models it.
pub fn cty_type(t: &serde_json::Value) -> Option<AttributeType> {
    use serde_json::Value as J;
    Some(match t {
        J::String(s) => match s.as_str() {
            "string" => AttributeType::String,
            "number" => AttributeType::Number,
            "bool" => AttributeType::Bool,
            "dynamic" => AttributeType::Any,
            _ => return None,
        },
        J::Array(pair) if pair.len() == 2 => match (pair[0].as_str()?, &pair[1]) {
            ("list", e) => AttributeType::List(Box::new(cty_type(e)?)),
            ("set", e) => AttributeType::Set(Box::new(cty_type(e)?)),
            ("map", e) => AttributeType::Map(Box::new(cty_type(e)?)),
            ("object", J::Object(fields)) => AttributeType::Object(
                fields
                    .iter()
                    .map(|(k, v)| Some((k.clone(), cty_type(v)?)))
                    .collect::<Option<HashMap<_, _>>>()?,
            ),
            _ => return None,
        },
        _ => return None,
    })
}

pub fn to_schema(block: &BlockDef) -> Schema {
    Schema {
        version: 0,
        block: to_block(block),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_type_translates() {
        let s = SchemaFile::aws();
        assert_eq!(s.source.package, "@cdktn/provider-aws@25.7.0");
        to_schema(&s.provider);
        for b in s.resources.values().chain(s.data_sources.values()) {
            to_schema(b);
        }
        let (types, attributes, blocks) = size(&s);
        assert!(
            types > 50 && attributes > 1000 && blocks > 100,
            "{types} {attributes} {blocks}"
        );
    }
}
