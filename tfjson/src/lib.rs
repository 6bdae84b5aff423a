//! Terraform JSON support for the generator: template escaping and reference scanning ([`expr`]), the
//! committed slice of the AWS provider schema ([`schema`]), and checks of generated documents against it
//! ([`conformance`]).

pub mod expr;
