//! The AWS provider's schema as `scripts/provider-schema.sh` extracts it, the one committed copy
//! (`provider-schema/aws.json`): every resource and data source type in `types.txt` with each
//! attribute's cty type and required / optional / computed flags, and each nested block with its
//! nesting mode and item limits, as Terraform's own provider schema has them. tfstandin serves it
//! to Terraform; [`crate::schema::Schema`] projects it for the conformance check.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The committed schema, compiled in.
pub const AWS_JSON: &str = include_str!("../provider-schema/aws.json");

/// The types the generator may emit, one per line (`data.` prefix for data sources, `#` comments).
pub const TYPES_TXT: &str = include_str!("../provider-schema/types.txt");

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSchema {
    pub source: Source,
    /// The provider block's own configuration.
    pub provider: BlockDef,
    pub resources: BTreeMap<String, BlockDef>,
    pub data_sources: BTreeMap<String, BlockDef>,
}

/// Where the schema came from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Source {
    /// npm package and version, e.g. `@cdktn/provider-aws@25.7.0`.
    pub package: String,
    /// Terraform provider source, `hashicorp/aws`.
    pub provider: String,
    /// Version of the Terraform provider the package was generated from.
    pub provider_version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlockDef {
    #[serde(default)]
    pub attributes: BTreeMap<String, AttrDef>,
    #[serde(default)]
    pub blocks: BTreeMap<String, NestedDef>,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
pub struct NestedDef {
    pub nesting: NestingMode,
    pub min_items: u32,
    /// 0 means unlimited.
    pub max_items: u32,
    pub block: BlockDef,
}

/// A nested block's nesting mode, as Terraform's provider protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NestingMode {
    Single,
    List,
    Set,
}

/// The schema could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProviderSchemaError {
    #[error("the provider schema is not in the format scripts/provider-schema.sh writes ({0}); regenerate it")]
    Malformed(#[from] serde_json::Error),
}

impl ProviderSchema {
    pub fn from_json(json: &str) -> Result<ProviderSchema, ProviderSchemaError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The committed AWS schema.
    pub fn aws() -> ProviderSchema {
        ProviderSchema::from_json(AWS_JSON).expect("provider-schema/aws.json parses (a unit test checks)")
    }

    /// Every type, `data.`-prefixed for data sources, as `types.txt` lists them.
    pub fn type_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.resources.keys().cloned().collect();
        names.extend(self.data_sources.keys().map(|d| format!("data.{d}")));
        names.sort();
        names
    }
}

/// The types `types.txt` lists, sorted.
pub fn listed_types() -> Vec<String> {
    let mut names: Vec<String> = TYPES_TXT
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_schema_has_exactly_the_listed_types() {
        let s = ProviderSchema::aws();
        assert_eq!(s.type_names(), listed_types(), "rerun scripts/provider-schema.sh after changing types.txt");
        assert_eq!(s.source.provider, "hashicorp/aws");
    }

    #[test]
    fn nesting_and_flags_are_terraforms() {
        let s = ProviderSchema::aws();
        let vc = &s.resources["aws_s3_bucket_versioning"].blocks["versioning_configuration"];
        assert_eq!((vc.nesting, vc.min_items, vc.max_items), (NestingMode::List, 1, 1));
        let queue = &s.resources["aws_sqs_queue"];
        assert!(queue.attributes["arn"].computed && !queue.attributes["arn"].optional);
        let statement = &s.data_sources["aws_iam_policy_document"].blocks["statement"];
        assert_eq!(statement.block.blocks["condition"].nesting, NestingMode::Set);
    }

    #[test]
    fn a_malformed_schema_says_so() {
        let e = ProviderSchema::from_json("{").unwrap_err().to_string();
        assert!(e.contains("not in the format scripts/provider-schema.sh writes"), "{e}");
    }
}
