//! The AWS provider schema slice that `scripts/provider-schema.sh` extracts into
//! `infra-gen/provider-schema/aws.json`: for each resource and data source type we emit, its arguments, nested
//! blocks and exported attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

/// The provider schema: the types we may emit and the meta-arguments every type accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Schema {
    /// Where the schema came from (package and provider version).
    pub source: Source,
    /// Terraform's meta-arguments (`count`, `for_each`, `depends_on`, ...), allowed on every type.
    pub meta_arguments: BTreeSet<String>,
    /// Types asked for in `types.txt` that the provider does not have.
    #[serde(default)]
    pub missing_types: Vec<String>,
    /// Keyed by Terraform type; data sources carry a `data.` prefix (`data.aws_region`).
    pub types: BTreeMap<String, TypeSchema>,
}

/// Provenance of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Source {
    /// npm package and version, e.g. `@cdktn/provider-aws@25.7.0`.
    pub package: String,
    /// Terraform provider source, `hashicorp/aws`.
    pub provider: String,
    /// Version of the Terraform provider the package was generated from.
    pub provider_version: String,
}

/// Whether a type is declared under `resource` or `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeKind {
    Resource,
    Data,
}

impl TypeKind {
    /// The top-level key of a Terraform JSON document that declares this kind.
    pub fn section(self) -> &'static str {
        match self {
            TypeKind::Resource => "resource",
            TypeKind::Data => "data",
        }
    }
}

/// One resource or data source type.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TypeSchema {
    pub kind: TypeKind,
    /// The type's top-level body: arguments and nested blocks (meta-arguments excluded).
    #[serde(flatten)]
    pub body: Body,
    /// Attributes other expressions may read: computed ones (`arn`, `id`, `url`) and the arguments.
    pub attributes: BTreeSet<String>,
}

/// What a body (a type's top level or a nested block) accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Body {
    pub arguments: BTreeMap<String, Argument>,
    pub blocks: BTreeMap<String, Block>,
}

/// An argument: a key whose value is an expression.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Argument {
    pub required: bool,
    /// Value type as the bindings declare it: `string`, `number`, `bool`, `any`, `list(string)`,
    /// `map(string)`, `map(object)`, ...
    #[serde(rename = "type")]
    pub value_type: String,
}

/// A nested block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Block {
    pub nesting: Nesting,
    pub required: bool,
    #[serde(flatten)]
    pub body: Body,
}

/// How many times a nested block may appear, which decides its JSON shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nesting {
    /// At most once: written as a JSON object.
    Single,
    /// Repeated: written as a JSON array of objects.
    List,
}

/// The schema file could not be read.
#[derive(Debug)]
pub enum SchemaError {
    /// Not JSON of the shape `scripts/provider-schema.sh` writes.
    Malformed(serde_json::Error),
    /// A `data.`-prefixed key that is not a data source, or the other way round.
    KindMismatch { ty: String },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Malformed(e) => write!(
                f,
                "the provider schema is not in the format scripts/provider-schema.sh writes (line {}, column {}); regenerate it",
                e.line(),
                e.column()
            ),
            SchemaError::KindMismatch { ty } => {
                write!(f, "provider schema type `{ty}`: only data sources, and all of them, are prefixed with `data.`")
            }
        }
    }
}

impl std::error::Error for SchemaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SchemaError::Malformed(e) => Some(e),
            SchemaError::KindMismatch { .. } => None,
        }
    }
}

impl Schema {
    /// Parses the schema JSON (typically `include_str!` of `provider-schema/aws.json`).
    pub fn from_json(json: &str) -> Result<Schema, SchemaError> {
        let schema: Schema = serde_json::from_str(json).map_err(SchemaError::Malformed)?;
        for (key, ty) in &schema.types {
            if key.starts_with("data.") != (ty.kind == TypeKind::Data) {
                return Err(SchemaError::KindMismatch { ty: key.clone() });
            }
        }
        Ok(schema)
    }

    /// The schema of a type, by kind and bare Terraform name (`aws_region`, not `data.aws_region`).
    pub fn get(&self, kind: TypeKind, ty: &str) -> Option<&TypeSchema> {
        match kind {
            TypeKind::Resource => self.types.get(ty),
            TypeKind::Data => self.types.get(&format!("data.{ty}")),
        }
        .filter(|t| t.kind == kind)
    }

    /// A resource type's schema.
    pub fn resource(&self, ty: &str) -> Option<&TypeSchema> {
        self.get(TypeKind::Resource, ty)
    }

    /// A data source type's schema, by bare name (`aws_region`).
    pub fn data(&self, ty: &str) -> Option<&TypeSchema> {
        self.get(TypeKind::Data, ty)
    }

    /// Whether `key` is a Terraform meta-argument.
    pub fn is_meta_argument(&self, key: &str) -> bool {
        self.meta_arguments.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = include_str!("../../infra-gen/provider-schema/aws.json");

    #[test]
    fn committed_aws_schema_loads_and_has_what_the_generator_relies_on() {
        let s = Schema::from_json(AWS).unwrap();
        assert!(s.missing_types.is_empty(), "{:?}", s.missing_types);
        assert!(s.is_meta_argument("for_each") && s.is_meta_argument("depends_on"));

        let queue = s.resource("aws_sqs_queue").unwrap();
        assert!(queue.attributes.contains("arn") && queue.attributes.contains("url"));
        assert!(
            !queue.body.arguments.contains_key("arn"),
            "computed-only attributes are not arguments"
        );
        assert_eq!(queue.body.blocks["timeouts"].nesting, Nesting::Single);

        let task = s.resource("aws_ecs_task_definition").unwrap();
        assert!(task.body.arguments["family"].required);
        assert_eq!(
            task.body.arguments["container_definitions"].value_type,
            "string"
        );
        assert_eq!(task.body.blocks["volume"].nesting, Nesting::List);
        assert!(task.body.blocks["volume"].body.arguments["name"].required);
        // Not s3_files_volume_configuration: names come from the provider docs, not camelCase.
        assert!(task.body.blocks["volume"]
            .body
            .blocks
            .contains_key("s3files_volume_configuration"));

        let doc = s.data("aws_iam_policy_document").unwrap();
        assert!(doc.attributes.contains("json"));
        assert_eq!(doc.body.blocks["statement"].nesting, Nesting::List);
        assert!(s.resource("aws_iam_policy_document").is_none());
        assert!(s.data("aws_sqs_queue").is_none());
    }

    #[test]
    fn committed_aws_schema_covers_exactly_the_listed_types() {
        let listed: BTreeSet<&str> = include_str!("../../infra-gen/provider-schema/types.txt")
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .collect();
        let s = Schema::from_json(AWS).unwrap();
        let extracted: BTreeSet<&str> = s
            .types
            .keys()
            .chain(&s.missing_types)
            .map(String::as_str)
            .collect();
        assert_eq!(
            listed, extracted,
            "provider-schema/aws.json is stale: run scripts/provider-schema.sh"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("{", "not in the format"),
            ("[]", "not in the format"),
            (
                r#"{"source": {"package": "p", "provider": "hashicorp/aws", "provider_version": "1"}, "meta_arguments": [],
                   "types": {"aws_region": {"kind": "data", "arguments": {}, "blocks": {}, "attributes": []}}}"#,
                "`aws_region`",
            ),
        ];
        for (json, want) in cases {
            let err = Schema::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
