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

spelled_enum! {
    /// One file a job can produce, by the name API responses and the agent's upload map use.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Output {
        Screenshot = "screenshot",
        Result = "result",
        Log = "logs",
        Html = "html",
        Error = "error",
    }
}

impl Output {
    pub fn file_name(self) -> &'static str {
        match self {
            Output::Screenshot => "screenshot.png",
            Output::Result => "result.json",
            Output::Log => "agent.log",
            Output::Html => "page.html",
            Output::Error => "error.json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Screenshot => "image/png",
            Output::Result | Output::Error => "application/json",
            Output::Log => "text/plain; charset=utf-8",
            Output::Html => "text/html; charset=utf-8",
        }
    }

    /// The largest file of this kind an upload form accepts: S3 refuses a larger one, and the
    /// agent does not try. (A full-page PNG of 16,384 px at 3,840 px wide fits; a log or result
    /// this large is a bug.)
    pub fn max_bytes(self) -> u64 {
        const MIB: u64 = 1024 * 1024;
        match self {
            Output::Screenshot => 40 * MIB,
            Output::Result => 4 * MIB,
            Output::Log => 8 * MIB,
            Output::Html => 16 * MIB,
            Output::Error => 256 * 1024,
        }
    }
}

spelled_enum! {
    /// Job status values; the lifecycle between them is below.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum JobStatus {
        Queued = "QUEUED",
        Provisioning = "PROVISIONING",
        Provisioned = "PROVISIONED",
        Running = "RUNNING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The states a job may be in for a write to move it to `self`. Terminal states have no
    /// successors, so nothing ever leaves them.
    pub fn allowed_predecessors(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            // Back to the queue: a warm slot's job whose slot ended before taking it.
            Queued => &[Provisioning, Running],
            Provisioning => &[Queued],
            Provisioned => &[Provisioning],
            // ECS events arrive out of order: RUNNING may be seen before the process function
            // recorded PROVISIONED.
            Running => &[Provisioning, Provisioned],
            Completed => &[Provisioning, Provisioned, Running],
            Failed => &[Queued, Provisioning, Provisioned, Running],
            Cancelled => &[Queued, Provisioning, Provisioned, Running],
        }
    }

    pub fn can_move_to(self, next: JobStatus) -> bool {
        next.allowed_predecessors().contains(&self)
    }
}

/// API routes: the REST API's resource paths and path parameter.
pub mod routes;

spelled_enum! {
    /// The Lambda functions of the stack.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Function {
        Submit = "submit",
        Status = "status",
        Logs = "logs",
        List = "list",
        Cancel = "cancel",
        Process = "process",
        Reconcile = "reconcile",
        /// Delivers the finished jobs' signed webhooks (fed by the webhooks queue).
        Webhook = "webhook",
    }
}

impl Function {
    /// Physical function name.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.as_str())
    }

    /// Name of the function's execution role.
    pub fn role_name(self, prefix: &str) -> String {
        format!("{}-function", self.name(prefix))
    }

    /// Where `make build` puts the function's deployment package, relative to the workspace root.
    pub fn zip_path(self) -> String {
        format!("target/lambda/{}/bootstrap.zip", self.as_str())
    }
}

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

#[cfg(test)]
mod tests;
