//! The committed AWS provider schema (`schema/aws.json`, written by `scripts/provider-schema.sh`) and its
//! translation into the schema that tf-provider serves over the plugin protocol.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};

/// The schema data, compiled into the binary so the stand-in needs no files at run time.
pub const AWS_JSON: &str = include_str!("../schema/aws.json");

#[derive(Debug, Deserialize)]
pub struct SchemaFile {
    pub source: Source,
    pub provider: BlockDef,
    pub resources: BTreeMap<String, BlockDef>,
    pub data_sources: BTreeMap<String, BlockDef>,
}

#[derive(Debug, Deserialize)]
pub struct Source {
    pub package: String,
    pub provider_version: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlockDef {
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrDef>,
    #[serde(default)]
    pub blocks: BTreeMap<String, NestedDef>,
}

#[derive(Debug, Deserialize)]
pub struct AttrDef {
    /// A cty type in Terraform's JSON notation: `"string"`, `["list","string"]`, `["object",{...}]`.
    #[serde(rename = "type")]
    pub ty: serde_json::Value,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub computed: bool,
}

#[derive(Debug, Deserialize)]
pub struct NestedDef {
    pub nesting: Nesting,
    pub min_items: u32,
    /// 0 means unlimited.
    pub max_items: u32,
    pub block: BlockDef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nesting {
    Single,
    List,
    Set,
}

impl SchemaFile {
    pub fn load() -> Self {
        serde_json::from_str(AWS_JSON).expect("schema/aws.json is valid (a unit test parses it)")
    }

    /// (types, attributes, blocks) served, counting nested blocks' attributes.
    pub fn size(&self) -> (usize, usize, usize) {
        let types = self.resources.len() + self.data_sources.len();
        let (mut attributes, mut blocks) = self.provider.count();
        for b in self.resources.values().chain(self.data_sources.values()) {
            let (a, n) = b.count();
            attributes += a;
            blocks += n;
        }
        (types, attributes, blocks)
    }
}

impl BlockDef {
    fn count(&self) -> (usize, usize) {
        let mut attributes = self.attributes.len();
        let mut blocks = self.blocks.len();
        for nested in self.blocks.values() {
            let (a, n) = nested.block.count();
            attributes += a;
            blocks += n;
        }
        (attributes, blocks)
    }

    /// The tf-provider schema of this block.
    ///
    /// tf-provider 0.2.2 fixes the item limits per nesting mode: `Single` is 1..1, `Optional` a list of 0..1,
    /// `List`/`Set` 0..unlimited, `Group` a never-null single. So an optional single block is served as a
    /// group, and limits it cannot express (a required list, a set of at most one) are checked by
    /// [`crate::values::check_item_limits`] when Terraform asks the provider to validate a configuration.
    pub fn to_block(&self) -> Block {
        let attributes = self
            .attributes
            .iter()
            .map(|(name, a)| (name.clone(), a.to_attribute(name)))
            .collect();
        let blocks = self
            .blocks
            .iter()
            .map(|(name, nested)| {
                let block = nested.block.to_block();
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
}

impl AttrDef {
    fn to_attribute(&self, name: &str) -> Attribute {
        let constraint = match (self.required, self.optional, self.computed) {
            (true, _, _) => AttributeConstraint::Required,
            (false, true, true) => AttributeConstraint::OptionalComputed,
            (false, false, true) => AttributeConstraint::Computed,
            _ => AttributeConstraint::Optional,
        };
        Attribute {
            attr_type: cty_type(&self.ty)
                .unwrap_or_else(|| panic!("attribute {name}: unknown type {}", self.ty)),
            description: Description::plain(""),
            constraint,
            sensitive: false,
            deprecated: false,
        }
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
        block: block.to_block(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_type_translates() {
        let s = SchemaFile::load();
        assert_eq!(s.source.package, "@cdktn/provider-aws@25.7.0");
        to_schema(&s.provider);
        for b in s.resources.values().chain(s.data_sources.values()) {
            to_schema(b);
        }
        let (types, attributes, blocks) = s.size();
        assert!(
            types > 50 && attributes > 1000 && blocks > 100,
            "{types} {attributes} {blocks}"
        );
    }

    #[test]
    fn serves_exactly_the_types_the_generator_may_emit() {
        let listed = include_str!("../../infra-gen/provider-schema/types.txt");
        let mut want: Vec<String> = listed
            .lines()
            .map(|l| l.split('#').next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        want.sort();
        let s = SchemaFile::load();
        let mut served: Vec<String> = s.resources.keys().cloned().collect();
        served.extend(s.data_sources.keys().map(|d| format!("data.{d}")));
        served.sort();
        assert_eq!(
            served, want,
            "rerun scripts/provider-schema.sh after changing types.txt"
        );
    }

    #[test]
    fn types_and_nesting_are_terraforms() {
        let s = SchemaFile::load();
        let versioning = &s.resources["aws_s3_bucket_versioning"];
        let vc = &versioning.blocks["versioning_configuration"];
        assert_eq!(
            (vc.nesting, vc.min_items, vc.max_items),
            (Nesting::List, 1, 1)
        );
        assert!(vc.block.attributes["status"].required);
        let queue = &s.resources["aws_sqs_queue"];
        assert!(queue.attributes["arn"].computed && !queue.attributes["arn"].optional);
        let doc = &s.data_sources["aws_iam_policy_document"];
        let statement = &doc.blocks["statement"];
        assert_eq!(statement.nesting, Nesting::List);
        assert_eq!(statement.block.blocks["condition"].nesting, Nesting::Set);
        assert_eq!(
            cty_type(&statement.block.attributes["actions"].ty),
            Some(AttributeType::Set(Box::new(AttributeType::String)))
        );
    }
}
