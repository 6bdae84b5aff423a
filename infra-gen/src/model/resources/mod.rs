//! Typed structs for exactly the AWS resource and data-source types the stack uses, one-to-one with
//! the provider's arguments (optional ones are omitted when unset, never `null`).

pub mod api;
pub mod compute;
pub mod iam;
pub mod network;
pub mod observability;
pub mod storage;
