//! The Lambda functions of the job API (submit, status, logs, list, cancel) and of job processing
//! (process, reconcile). Their handlers arrive with the functions issue; the names they share with
//! the generator come from the `names` crate.

pub use names::Function;
