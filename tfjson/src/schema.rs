//! What the conformance check needs of the provider schema, projected from the one committed copy
//! ([`crate::provider`]): for each resource and data source type we may emit, its arguments (the
//! attributes a configuration may set), nested blocks with the JSON shape they take (a block of at
//! most one item is an object, others arrays) and the attributes other expressions may read.

use std::collections::{BTreeMap, BTreeSet};

use crate::provider::{BlockDef, ProviderSchema, ProviderSchemaError};
pub use crate::provider::Source;

/// Terraform's meta-arguments, accepted on every resource and data source.
pub const META_ARGUMENTS: [&str; 7] = ["connection", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioner"];

/// The provider schema: the types we may emit and the meta-arguments every type accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Where the schema came from (package and provider version).
    pub source: Source,
    /// Terraform's meta-arguments (`count`, `for_each`, `depends_on`, ...), allowed on every type.
    pub meta_arguments: BTreeSet<String>,
    /// Keyed by Terraform type; data sources carry a `data.` prefix (`data.aws_region`).
    pub types: BTreeMap<String, TypeSchema>,
}

/// Whether a type is declared under `resource` or `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSchema {
    pub kind: TypeKind,
    /// The type's top-level body: arguments and nested blocks (meta-arguments excluded).
    pub body: Body,
    /// Attributes other expressions may read: every attribute (computed ones such as `arn`, `id`,
    /// `url` included) and every block.
    pub attributes: BTreeSet<String>,
}

/// What a body (a type's top level or a nested block) accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body {
    pub arguments: BTreeMap<String, Argument>,
    pub blocks: BTreeMap<String, Block>,
}

/// An argument: a key whose value is an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argument {
    pub required: bool,
    /// The cty type in Terraform's JSON notation, compact (`"string"`, `["list","string"]`).
    pub value_type: String,
}

/// A nested block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub nesting: Nesting,
    pub required: bool,
    pub body: Body,
}

/// The JSON shape a nested block takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nesting {
    /// At most once: written as a JSON object.
    Single,
    /// Repeated: written as a JSON array of objects.
    List,
}

/// The schema could not be read.
pub type SchemaError = ProviderSchemaError;

fn body(b: &BlockDef) -> Body {
    let arguments = b
        .attributes
        .iter()
        .filter(|(_, a)| a.required || a.optional)
        .map(|(name, a)| (name.clone(), Argument { required: a.required, value_type: a.ty.to_string() }))
        .collect();
    let blocks = b
        .blocks
        .iter()
        .map(|(name, n)| {
            let nesting = if n.max_items == 1 { Nesting::Single } else { Nesting::List };
            (name.clone(), Block { nesting, required: n.min_items >= 1, body: body(&n.block) })
        })
        .collect();
    Body { arguments, blocks }
}

fn type_schema(kind: TypeKind, b: &BlockDef) -> TypeSchema {
    let attributes = b.attributes.keys().chain(b.blocks.keys()).cloned().collect();
    TypeSchema { kind, body: body(b), attributes }
}

impl Schema {
    /// The projection of a provider schema.
    pub fn from_provider(p: &ProviderSchema) -> Schema {
        let mut types: BTreeMap<String, TypeSchema> =
            p.resources.iter().map(|(name, b)| (name.clone(), type_schema(TypeKind::Resource, b))).collect();
        types.extend(p.data_sources.iter().map(|(name, b)| (format!("data.{name}"), type_schema(TypeKind::Data, b))));
        Schema { source: p.source.clone(), meta_arguments: META_ARGUMENTS.iter().map(|m| m.to_string()).collect(), types }
    }

    /// Parses a provider schema in the format `scripts/provider-schema.sh` writes, and projects it.
    pub fn from_json(json: &str) -> Result<Schema, SchemaError> {
        Ok(Schema::from_provider(&ProviderSchema::from_json(json)?))
    }

    /// The committed AWS schema, projected.
    pub fn aws() -> Schema {
        Schema::from_provider(&ProviderSchema::aws())
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

    #[test]
    fn committed_aws_schema_loads_and_has_what_the_generator_relies_on() {
        let s = Schema::aws();
        assert!(s.is_meta_argument("for_each") && s.is_meta_argument("depends_on"));

        let queue = s.resource("aws_sqs_queue").unwrap();
        assert!(queue.attributes.contains("arn") && queue.attributes.contains("url"));
        assert!(!queue.body.arguments.contains_key("arn"), "computed-only attributes are not arguments");
        assert_eq!(queue.body.blocks["timeouts"].nesting, Nesting::Single);

        let task = s.resource("aws_ecs_task_definition").unwrap();
        assert!(task.body.arguments["family"].required);
        assert_eq!(task.body.arguments["container_definitions"].value_type, "\"string\"");
        assert_eq!(task.body.blocks["volume"].nesting, Nesting::List);
        assert!(task.body.blocks["volume"].body.arguments["name"].required);
        assert!(task.body.blocks["volume"].body.blocks.contains_key("s3files_volume_configuration"));
        // A list block of at most one item takes an object, and a required one says so.
        let versioning = s.resource("aws_s3_bucket_versioning").unwrap();
        let vc = &versioning.body.blocks["versioning_configuration"];
        assert_eq!((vc.nesting, vc.required), (Nesting::Single, true));
        assert!(versioning.attributes.contains("versioning_configuration"), "blocks are readable too");

        let doc = s.data("aws_iam_policy_document").unwrap();
        assert!(doc.attributes.contains("json"));
        assert_eq!(doc.body.blocks["statement"].nesting, Nesting::List);
        assert!(s.resource("aws_iam_policy_document").is_none());
        assert!(s.data("aws_sqs_queue").is_none());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for json in ["{", "[]", r#"{"source": {}}"#] {
            let err = Schema::from_json(json).unwrap_err().to_string();
            assert!(err.contains("not in the format"), "{json}: {err}");
        }
    }
}
