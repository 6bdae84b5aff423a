//! Terraform JSON support for the generator: template escaping and reference scanning ([`expr`]), the
//! one committed copy of the AWS provider schema ([`provider`]; tfstandin serves it), its projection for
//! the checks ([`schema`]), the one walk over a document's references ([`walk`]), and checks of generated
//! documents against the schema ([`conformance`]).

pub mod conformance;
pub mod expr;
pub mod provider;
pub mod schema;
pub mod walk;

pub use conformance::{check, Counts, Problem, Report, Violation};
pub use expr::{escape_literal, interpolations, references, ExprError, Reference};
pub use schema::{Schema, SchemaError};
