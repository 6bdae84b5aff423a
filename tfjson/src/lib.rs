//! Terraform JSON support for the generator: template escaping and reference scanning ([`expr`]), the
//! one committed copy of the AWS provider schema ([`provider`]; tfstandin serves it), its projection for
//! the checks ([`schema`]), and checks of generated documents against it ([`conformance`]).

pub mod conformance;
pub mod expr;
pub mod provider;
pub mod schema;

pub use conformance::{check, Counts, Problem, Report, Violation};
pub use expr::{escape_literal, interpolations, references, ExprError, Reference};
pub use schema::{Schema, SchemaError};
