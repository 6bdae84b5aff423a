//! Small, honest clients over the AWS calls the functions make: each method is one (or one
//! paginated) AWS API call, named by what it does for a job. IAM grants follow these calls
//! one-to-one (see the crate docs).
//!
//! One file per concern: `store` (the jobs table: submits, moves between statuses with the
//! tenant's counts, parked jobs), `index` (the sparse index: counters, waiting jobs, recounts),
//! `items` (a job as an item), `webhooks` (the webhooks queue, rounds, attempts, lanes), `queue`
//! (the job queue), `outputs` (the outputs bucket and its links), `secrets` (SSM Parameter
//! Store), `tasks` (ECS), `logs` (CloudWatch Logs). This file holds what they share: the error
//! and the attribute helpers.

use crate::model::{Attempt, Job, TaskId, TenantId, Target, Webhook};
use aws_sdk_dynamodb::types::AttributeValue;
use names::job::JobOptions;
use names::{table as t, JobStatus, Output};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// An AWS call that failed: which call, the service's error code if any, and detail for the
/// log (never for the API caller).
#[derive(Debug, Clone)]
pub struct AwsError {
    pub op: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed", self.op)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    pub(crate) fn from_sdk<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> AwsError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        let code = e.code().map(str::to_owned);
        let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
        AwsError { op, code, detail }
    }

    fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// Throttling is not a modeled error of any operation (each service spells it its own way), so
    /// it is told by the code.
    pub fn is_throttling(&self) -> bool {
        self.code_is(&["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"])
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

type UpdateResult = Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// An UpdateItem whose condition may refuse it: true when written, false when refused.
pub(crate) fn written(r: UpdateResult) -> Result<bool, AwsError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
    }
}

/// The attributes a status change writes besides `status` and `updated_at`.
pub type Updates = Vec<(&'static str, AttributeValue)>;

pub fn attr_s(v: impl Into<String>) -> AttributeValue {
    s(v)
}
pub fn attr_n(v: impl ToString) -> AttributeValue {
    n(v)
}

mod store;
mod index;
mod items;
mod webhooks;
mod queue;
mod outputs;
mod secrets;
mod tasks;
mod logs;
mod models;
mod wake;

pub use store::*;
pub use index::*;
pub use items::*;
pub use webhooks::*;
pub use queue::*;
pub use outputs::*;
pub use secrets::*;
pub use tasks::*;
pub use logs::*;
pub use models::*;
pub use wake::*;
