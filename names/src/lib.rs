//! One definition of every name that the generator, the functions and the agent share: tables,
//! attributes, indexes, environment variables, S3 keys, statuses, routes and log names.
//!
//! Renaming anything here is one change the compiler carries to every crate. Patterns that depend on
//! the deployment (project and environment) take a `prefix`: infra-gen passes a Terraform expression
//! (`${local.name_prefix}`), the local stack passes a concrete `infra-demo-dev`.

/// An enum whose variants each have one spelling, declared once: the enum, `ALL`, `as_str`,
/// `parse` and `Display` come from one table (`Variant = "spelling"`).
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:expr),+ $(,)? }) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// In the OpenAPI document: a string, one of the spellings.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// The HTTP API's bodies and its OpenAPI document.
pub mod api;

/// The job as the API accepts it, the table stores it and the agent receives it (`AGENT_JOB`).
pub mod spec;

/// The steps of a scripted job and their rules.
pub mod step;

/// Computer-use jobs: a goal in words, the model, its limits and the rules.
pub mod goal;

/// The computer-use tool version each model takes.
pub mod tools;

/// Which destinations the browser (and a webhook delivery) may reach.
pub mod egress;

/// A job's options, error codes, queued reasons and the rules a submitted job must meet.
pub mod job;

/// The job's manifest: what the process function hands the agent, as one S3 object the agent
/// reads through a pre-signed GET (the RunTask override carries only that link). Independent of
/// RunTask: a task started ahead of time takes its job the same way.
pub mod manifest;

/// Default Terraform variable values that other crates (the local stack) must agree with.
pub mod defaults;

/// Terraform variables that code outside infra-gen sets (the local stack evaluates generated/
/// with its own values for them).
pub mod vars;

/// The jobs table: its name pattern, key, index and attribute names.
pub mod table;

/// Queues: the job queue and its dead-letter queue.
pub mod queue;

/// The warm pool: tasks started ahead of their jobs (`warm_pool_size`), each taking exactly one
/// job through a manifest written at its slot's place, then exiting.
pub mod pool;

/// Signed completion webhooks, per the Standard Webhooks specification
/// (<https://www.standardwebhooks.com/>): the headers, the secrets' form, the events and the
/// retry schedule.
pub mod webhook;

/// The outputs bucket and the key layout of a job's outputs.
pub mod bucket;
pub use bucket::Output;
pub use job::JobStatus;

/// API routes: the REST API's resource paths and path parameter.
pub mod routes;

/// The Lambda functions of the stack.
pub mod function;
pub use function::Function;

/// Environment variables: what infra-gen sets on each function and on the agent container.
pub mod env;

/// What each function needs from its deployment: the environment variables it reads and the AWS
/// calls it makes. infra-gen sets exactly these variables and grants exactly these calls; the
/// functions read their configuration from the same table.
pub mod contract;

/// The agent container and its task.
pub mod agent;

/// CloudWatch Logs names.
pub mod logs;

/// SSM parameters the operator creates and the task definition injects into the agent container
/// as secrets (Terraform variable `agent_secrets`).
pub mod ssm;

/// ECS tags and `startedBy` that carry the job's id on its task.
pub mod ecs;

/// The metrics (CloudWatch Embedded Metric Format): names, units, dimensions.
pub mod metrics;

#[cfg(test)]
mod tests;
