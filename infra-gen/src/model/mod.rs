//! The model: values, typed references, resources and the stack that synthesizes them.

pub mod func;
pub mod iam;
pub mod resources;
pub mod stack;
pub mod val;

pub use stack::{DataSource, Error, File, Grantee, LocalRef, Meta, Output, Ref, Resource, Stack, VarRef, Variable};
pub use val::{Val, ValMap};
