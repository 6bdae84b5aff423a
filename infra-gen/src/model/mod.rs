//! The model: values, typed references, resources and the stack that synthesizes them.

pub mod block;
pub mod func;
pub mod iam;
pub mod resources;
pub mod stack;
pub mod val;

pub use block::{DataSource, Error, File, LocalRef, Meta, Output, Ref, Resource, VarRef, Variable};
pub use stack::{Grantee, Stack};
pub use val::{Val, ValMap};
