//! The job as a whole, as the API accepts it, the table stores it and the agent receives it
//! (`AGENT_JOB`): a first target (a query or a URL) and the steps after it, each by its rules.

use serde::{Deserialize, Serialize};

use crate::job::{rules, JobOptions, SpecError};
use crate::goal::Goal;
use crate::step::{check_all, Step};

/// What a valid spec asks the browser to open first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidTarget {
    Query(String),
    Url(url::Url),
    /// No first navigation: the steps begin with a `goto`.
    Steps,
    /// A computer-use job: a model decides each action.
    Goal,
}

/// `query`/`url` and `steps` together: one navigation first (or a script that begins with
/// one), then the steps, each by its rules.
pub fn target(query: Option<&str>, url: Option<&str>, steps: &[Step]) -> Result<ValidTarget, SpecError> {
    check_all(steps)?;
    match (query, url) {
        (Some(q), None) => rules::query(q).map(ValidTarget::Query),
        (None, Some(u)) => rules::url(u).map(ValidTarget::Url),
        (Some(_), Some(_)) => Err(SpecError::new("url", "give either `query` or `url`, not both")),
        (None, None) => match steps.first() {
            Some(Step::Goto { .. }) => Ok(ValidTarget::Steps),
            Some(_) => Err(SpecError::new("steps[0]", "without `query` or `url`, the first step must be a `goto`")),
            None => Err(SpecError::new("query", "`query`, `url` or `steps` is required")),
        },
    }
}

impl JobSpec {
    /// The spec by [`rules`]: its first target, or the first field that breaks one.
    pub fn validate(&self) -> Result<ValidTarget, SpecError> {
        if self.task_id.trim().is_empty() {
            return Err(SpecError::new("task_id", "`task_id` must not be empty"));
        }
        rules::options(&self.options)?;
        match &self.computer {
            Some(goal) => {
                if self.query.is_some() || self.url.is_some() || !self.steps.is_empty() {
                    let field = if self.query.is_some() { "query" } else if self.url.is_some() { "url" } else { "steps" };
                    return Err(SpecError::new(field, format!("`goal` takes no `{field}`: the model decides what to open (`start_url` sets the first page)")));
                }
                goal.check().map(|()| ValidTarget::Goal)
            }
            None => target(self.query.as_deref(), self.url.as_deref(), &self.steps),
        }
    }

    /// The secrets the job names (its steps', or its goal's and its model's key), each once.
    pub fn secrets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.steps.iter().filter_map(Step::secret).collect();
        names.extend(self.computer.iter().flat_map(Goal::secret_names));
        names.sort();
        names.dedup();
        names
    }
}

/// What the agent is asked to do: a `query` or a `url`, or `steps` that begin with a `goto`,
/// or both (the steps after the first navigation). The API validates that before a spec
/// exists, and the agent again before it starts ([`JobSpec::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub options: JobOptions,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// A computer-use job (never with `query`, `url` or `steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer: Option<Goal>,
}
