//! The second half of infra-gen: reading Terraform JSON back, at any git revision, with no access to
//! the model that wrote it. `analysis` indexes documents into facts (permissions, network rules,
//! exposure, references), `diff` compares two revisions for `infra-gen review`, `summary` renders
//! generated/README.md. Nothing here depends on the model or the constructs: a test holds that
//! boundary.

pub mod analysis;
pub mod diff;
pub mod summary;

pub use diff::{default_base, documents_at, Review};
