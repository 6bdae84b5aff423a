//! A stand-in for the AWS Terraform provider, so that Terraform itself can validate and plan `generated/`
//! on machines that cannot download providers. It serves the real provider's schema (extracted from the pinned
//! CDK for Terraform bindings into `schema/aws.json`) over plugin protocol 6, plans computed attributes as
//! unknown, answers data sources with fixed plausible values, and never talks to AWS or applies anything.

pub mod data;
pub mod provider;
pub mod schema;
pub mod values;
