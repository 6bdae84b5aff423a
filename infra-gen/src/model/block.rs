//! What the model's blocks are: the `Resource` and `DataSource` traits every typed block
//! implements, the file a block goes to, typed references to a block's attributes, the
//! meta-arguments (`count`, `depends_on`, `lifecycle`), variables, locals and outputs, and the
//! model's errors. The resource types (`resources`), IAM documents (`iam`) and the stack that
//! assembles them (`stack`) all build on it.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde_json::Value;

use super::val::Val;

/// A Terraform resource type.
pub trait Resource: Serialize {
    const TYPE: &'static str;
}

/// A Terraform data source type.
pub trait DataSource: Serialize {
    const TYPE: &'static str;
}

/// The file a block is written to: split by concern so a pull request's diff stays local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum File {
    /// Terraform and provider version constraints only.
    Versions,
    Main,
    Network,
    Security,
    Storage,
    Compute,
    Functions,
    Api,
    Observability,
    Outputs,
}

impl File {
    pub const ALL: [File; 10] = [
        File::Versions,
        File::Main,
        File::Network,
        File::Security,
        File::Storage,
        File::Compute,
        File::Functions,
        File::Api,
        File::Observability,
        File::Outputs,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            File::Versions => "versions.tf.json",
            File::Main => "main.tf.json",
            File::Network => "network.tf.json",
            File::Security => "security.tf.json",
            File::Storage => "storage.tf.json",
            File::Compute => "compute.tf.json",
            File::Functions => "functions.tf.json",
            File::Api => "api.tf.json",
            File::Observability => "observability.tf.json",
            File::Outputs => "outputs.tf.json",
        }
    }
}

/// What can go wrong while building or synthesizing a stack.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("`{0}` is declared twice; logical names must be unique per type")]
    Duplicate(String),
    #[error("`{0}` is not a valid logical name (use lower-case letters, digits and underscores, starting with a letter)")]
    InvalidName(String),
    #[error("references to undeclared names:\n  {}", .0.join("\n  "))]
    Unresolved(Vec<String>),
    #[error("malformed expression in {at}: {message}")]
    Expression { at: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A typed reference to a declared resource; its attribute methods (per type) render
/// `${type.name.attr}`.
pub struct Ref<T> {
    address: String,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref { address: self.address.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl<T> Ref<T> {
    pub(super) fn new(address: String) -> Self {
        Ref { address, _type: PhantomData }
    }

    /// `type.name`, as used in `depends_on`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// One instance of a `for_each` resource: `type.name[key]`.
    pub fn at(&self, key: &Val) -> Ref<T> {
        Ref::new(format!("{}[{}]", self.address, key.as_expr()))
    }

    pub(crate) fn attr(&self, name: &str) -> Val {
        Val::expr(format!("{}.{name}", self.address))
    }

    /// The address as an expression, e.g. for iterating a `for_each` resource.
    pub(crate) fn expr(&self) -> String {
        self.address.clone()
    }

    /// Every Terraform resource and data source exports `id`.
    pub fn id(&self) -> Val {
        self.attr("id")
    }
}

/// Declares the attributes a resource or data source type exports, as methods on its `Ref`.
macro_rules! exports {
    ($ty:ty { $($attr:ident),* $(,)? }) => {
        impl $crate::model::Ref<$ty> {
            $(
                pub fn $attr(&self) -> $crate::model::Val {
                    self.attr(stringify!($attr))
                }
            )*
        }
    };
}
pub(crate) use exports;

/// Meta-arguments any resource may carry.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Meta {
    pub count: Option<Val>,
    pub for_each: Option<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub lifecycle: Option<Lifecycle>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct Lifecycle {
    pub create_before_destroy: Option<bool>,
    pub prevent_destroy: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<String>,
    /// Checked at plan, before the resource is created or changed: a clear message instead of an
    /// error from AWS at apply (or after it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub precondition: Vec<Condition>,
    /// Checked once the resource or data source is known (`self` refers to it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postcondition: Vec<Condition>,
}

/// A custom condition: `condition` must be true, or Terraform stops with `error_message`.
#[derive(Clone, Debug, Serialize)]
pub struct Condition {
    pub condition: Val,
    pub error_message: String,
}

impl Condition {
    pub fn new(condition: Val, error_message: impl Into<String>) -> Condition {
        Condition { condition, error_message: error_message.into() }
    }
}

impl Meta {
    pub fn preconditions(conditions: Vec<Condition>) -> Meta {
        Meta { lifecycle: Some(Lifecycle { precondition: conditions, ..Lifecycle::default() }), ..Meta::default() }
    }
    pub fn postconditions(conditions: Vec<Condition>) -> Meta {
        Meta { lifecycle: Some(Lifecycle { postcondition: conditions, ..Lifecycle::default() }), ..Meta::default() }
    }
    pub fn for_each(v: Val) -> Meta {
        Meta { for_each: Some(v), ..Meta::default() }
    }
    pub fn depends_on<T>(refs: &[&Ref<T>]) -> Meta {
        Meta { depends_on: refs.iter().map(|r| r.address().to_string()).collect(), ..Meta::default() }
    }
}

/// A Terraform input variable.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Serialize)]
pub struct Variable {
    #[serde(rename = "type")]
    pub type_: String,
    pub default: Option<Value>,
    pub description: String,
    pub sensitive: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<Validation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Validation {
    pub condition: String,
    pub error_message: String,
}

impl Variable {
    pub fn new(type_: &str, default: impl Into<Value>, description: &str) -> Variable {
        Variable {
            type_: type_.into(),
            default: Some(default.into()),
            description: description.into(),
            sensitive: None,
            validation: Vec::new(),
        }
    }

    /// Adds a validation; `condition` uses `{v}` for the variable's own reference.
    pub fn validate(mut self, condition: &str, error_message: &str) -> Variable {
        self.validation.push(Validation {
            condition: condition.to_string(),
            error_message: error_message.into(),
        });
        self
    }
}

/// A reference to a declared variable.
#[derive(Clone, Debug)]
pub struct VarRef(pub(super) String);

impl VarRef {
    pub fn val(&self) -> Val {
        Val::expr(format!("var.{}", self.0))
    }
    pub(crate) fn expr(&self) -> String {
        format!("var.{}", self.0)
    }
}

/// A reference to a declared local value.
#[derive(Clone, Debug)]
pub struct LocalRef(pub(super) String);

impl LocalRef {
    pub fn val(&self) -> Val {
        Val::expr(format!("local.{}", self.0))
    }
}

/// A Terraform output.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Serialize)]
pub struct Output {
    pub value: Val,
    pub description: String,
    pub sensitive: Option<bool>,
}
