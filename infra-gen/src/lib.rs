//! infra-gen: typed AWS resources (model), constructs with secure defaults, and the app that wires
//! them into the whole stack, synthesized as Terraform JSON.

pub mod model;
pub mod app;
pub mod constructs;

pub use app::{build, synth, synth_files, AppConfig, TERRAFORM_MIN_VERSION};
pub mod output;
pub mod review;
