//! The job's types once validated: ids that are known to be well formed, the request the API
//! accepted, and the job record as the table stores it.

use names::api::{AttemptView, JobError, JobView, WebhookView};
use names::job::{JobOptions, QueuedReason};
use names::spec::JobSpec;
use names::step::Step;
use names::JobStatus;

/// A job id: a UUID in its lowercase hyphenated form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(String);

impl TaskId {
    pub fn new_random() -> TaskId {
        TaskId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// The id an idempotency key names: the same tenant and key always give the same job, so the
    /// table's key condition enforces idempotency without a second table or index.
    pub fn for_idempotency_key(tenant: &TenantId, key: &str) -> TaskId {
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2b9e_4d3a_4e8f_9a51_0c7d_2e6b_8f40);
        let name = format!("{}\n{}", tenant.as_str(), key);
        TaskId(uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).hyphenated().to_string())
    }

    pub fn parse(s: &str) -> Option<TaskId> {
        // Only the hyphenated form: it is what we hand out, and ECS `startedBy` holds exactly 36 chars.
        if s.len() != 36 {
            return None;
        }
        uuid::Uuid::try_parse(s).ok().map(|u| TaskId(u.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant, as configuration maps an API key to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(s: impl Into<String>) -> TenantId {
        TenantId(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the job opens first: a search for a query or a URL (never both), or nothing when its
/// steps begin with a `goto`; or a goal a model works towards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Query(String),
    Url(String),
    Script,
    Goal(Box<names::goal::Goal>),
}

impl Target {
    /// `query` and `url` as a spec and a view carry them.
    fn query_url(&self) -> (Option<String>, Option<String>) {
        match self {
            Target::Query(q) => (Some(q.clone()), None),
            Target::Url(u) => (None, Some(u.clone())),
            Target::Script | Target::Goal(_) => (None, None),
        }
    }

    pub fn goal(&self) -> Option<&names::goal::Goal> {
        match self {
            Target::Goal(g) => Some(g),
            _ => None,
        }
    }
}

/// A submit request after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    pub target: Target,
    pub options: JobOptions,
    pub steps: Vec<Step>,
    /// Where the job's completion webhook goes.
    pub webhook_url: Option<String>,
}

/// A job's completion webhook: where it goes and how its delivery went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    /// None until the job finishes.
    pub state: Option<names::webhook::DeliveryState>,
    /// 0 for the first delivery, one more for each redelivery.
    pub round: i64,
    /// The current round's attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the current round began (epoch seconds; None before the job finished).
    pub round_at: Option<i64>,
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When it was sent (RFC 3339).
    pub at: String,
    /// 1 for the first of its round.
    pub attempt: u32,
    /// The answer's HTTP status, if one came.
    pub status_code: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Attempt {
    pub fn view(&self) -> AttemptView {
        AttemptView {
            at: self.at.clone(),
            attempt: self.attempt,
            duration_ms: self.duration_ms,
            status_code: self.status_code,
            error: self.error.clone(),
        }
    }
}

impl JobRequest {
    pub fn spec(&self, task_id: &TaskId) -> JobSpec {
        let (query, url) = self.target.query_url();
        let computer = self.target.goal().cloned();
        JobSpec { task_id: task_id.as_str().to_owned(), query, url, options: self.options, steps: self.steps.clone(), computer }
    }


    /// A fingerprint of the normalized request: equal for requests that mean the same job, so
    /// a retried POST with the same Idempotency-Key is recognized even if its JSON is spelled
    /// differently.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut canonical = serde_json::to_string(&self.spec(&TaskId(String::new()))).unwrap_or_default();
        // Only with a webhook, so the fingerprints of requests without one stay as they were.
        if let Some(url) = &self.webhook_url {
            canonical.push_str("\nwebhook:");
            canonical.push_str(url);
        }
        Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A job as stored in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub task_id: TaskId,
    pub tenant_id: TenantId,
    pub status: JobStatus,
    pub target: Target,
    pub options: JobOptions,
    pub steps: Vec<Step>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub ecs_task_arn: Option<String>,
    pub ecs_task_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The failed step's index, when a step failed.
    pub error_step: Option<i64>,
    pub exit_code: Option<i64>,
    /// Once ended: what its task used for it (written with the end).
    pub usage: Option<names::api::JobUsage>,
    pub attempts: u32,
    pub idempotency_key: Option<String>,
    /// Why the job waits, while it is queued (`names::job::QueuedReason`).
    pub queued_reason: Option<String>,
    pub request_hash: String,
    /// Epoch seconds after which the sweep fails the job.
    pub deadline_at: Option<i64>,
    /// Epoch seconds: DynamoDB TTL.
    pub expires_at: i64,
    pub webhook: Option<Webhook>,
    /// The warm slot the job was handed to, if one.
    pub warm_slot: Option<String>,
    /// A delivery marked it to start cold (`names::table::COLD_START`): a RunTask may be under way.
    pub cold_start: bool,
    /// Ended while its task may still run: its entry in its tenant's `stopping` set, which keeps
    /// the running place until the task has stopped (`names::table::STOPPING`).
    pub stopping: Option<String>,
}

impl Job {
    /// Seconds until a redelivery is taken, when the current webhook round of this finished job
    /// began less than `REDELIVERY_COOLDOWN_SECONDS` before `now` (epoch seconds) and is still
    /// being sent; None when a new round may start.
    pub fn round_in_flight(&self, now: i64) -> Option<u32> {
        let hook = self.webhook.as_ref()?;
        let sending = matches!(hook.state, Some(names::webhook::DeliveryState::Sending | names::webhook::DeliveryState::Pending));
        let at = hook.round_at?;
        let cooldown = names::webhook::REDELIVERY_COOLDOWN_SECONDS;
        (sending && self.status.is_terminal() && at >= now - cooldown).then(|| u32::try_from(at + cooldown - now).unwrap_or(1).max(1))
    }

    pub fn request(&self) -> JobRequest {
        JobRequest {
            target: self.target.clone(),
            options: self.options,
            steps: self.steps.clone(),
            webhook_url: self.webhook.as_ref().map(|w| w.url.clone()),
        }
    }

    pub fn spec(&self) -> JobSpec {
        self.request().spec(&self.task_id)
    }

    /// The job as the API shows it (without outputs, which the status route adds).
    pub fn view(&self) -> JobView {
        let (query, url) = self.target.query_url();
        let reason = self.queued_reason.as_deref().and_then(QueuedReason::parse);
        let queued_reason = match self.status {
            JobStatus::Queued => Some(reason.filter(|r| *r != QueuedReason::Capacity).unwrap_or(QueuedReason::Dispatch)),
            // Claimed, but ECS refused its task: it waits for capacity and is tried again.
            JobStatus::Provisioning => reason.filter(|r| *r == QueuedReason::Capacity),
            _ => None,
        };
        let error = (self.error_code.is_some() || self.error_message.is_some()).then(|| JobError {
            code: self.error_code.clone(),
            message: self.error_message.clone(),
            step: self.error_step,
        });
        let webhook = self.webhook.as_ref().map(|w| WebhookView {
            url: w.url.clone(),
            id: names::webhook::event_id(self.task_id.as_str()),
            state: w.state,
            attempts: w.state.map(|_| w.attempts.iter().map(Attempt::view).collect()),
            redeliveries: (w.round > 0).then_some(w.round),
        });
        JobView {
            task_id: self.task_id.as_str().to_owned(),
            status: self.status,
            query,
            url,
            steps: self.steps.clone(),
            goal: self.target.goal().map(|g| g.goal.clone()),
            start_url: self.target.goal().and_then(|g| g.start_url.clone()),
            allowed_domains: self.target.goal().map(|g| g.allowed_domains.clone()).unwrap_or_default(),
            secrets: self.target.goal().map(|g| g.secrets.clone()).unwrap_or_default(),
            output_schema: self.target.goal().and_then(|g| g.output_schema.clone()),
            model: self.target.goal().map(|g| g.model.clone()),
            limits: self.target.goal().map(|g| g.limits),
            options: self.options,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            ecs_task_id: self.ecs_task_id.clone(),
            warm_start: (self.warm_slot.is_some() && self.status != JobStatus::Queued).then_some(true),
            queued_reason,
            error,
            exit_code: self.exit_code,
            webhook,
            outputs: None,
            usage: self.usage,
            answer: None,
            model_usage: None,
            cost: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids() {
        assert!(TaskId::parse("not-a-uuid").is_none());
        assert!(TaskId::parse("6F1C2B9E-4D3A-4E8F-9A51-0C7D2E6B8F40").is_some());
        assert!(TaskId::parse("6f1c2b9e4d3a4e8f9a510c7d2e6b8f40").is_none());
        let t = TenantId::new("t");
        assert_eq!(TaskId::for_idempotency_key(&t, "k"), TaskId::for_idempotency_key(&t, "k"));
        assert_ne!(TaskId::for_idempotency_key(&t, "k"), TaskId::for_idempotency_key(&TenantId::new("u"), "k"));
        assert_eq!(TaskId::new_random().as_str().len(), 36);
    }
}
