use serde::{Deserialize, Serialize};

pub const TASK_ID_TAG: &str = "task_id";
pub const TENANT_TAG: &str = "tenant_id";
/// A warm slot's task: its slot's id.
pub const SLOT_TAG: &str = "slot_id";
/// `startedBy` is limited to 36 characters: exactly a UUID.
pub const STARTED_BY_MAX: usize = 36;
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
pub const EVENT_SOURCE: &str = "aws.ecs";

/// A task definition ARN's family part and revision
/// (`arn:aws:ecs:r:a:task-definition/family:7` -> (`arn:...:task-definition/family`, 7)); None
/// for an ARN without a revision.
pub fn revision_of(task_definition_arn: &str) -> Option<(&str, u32)> {
    let (family, revision) = task_definition_arn.rsplit_once(':')?;
    let revision = revision.parse().ok()?;
    family.contains("task-definition/").then_some((family, revision))
}

spelled_enum! {
    /// A task's or container's `lastStatus`/`desiredStatus`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        /// A status this code does not know (ECS adds some from time to time).
        #[serde(other)]
        #[default]
        Other = "OTHER",
    }
}

spelled_enum! {
    /// Why ECS stopped a task.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum StopCode {
        TaskFailedToStart = "TaskFailedToStart",
        EssentialContainerExited = "EssentialContainerExited",
        UserInitiated = "UserInitiated",
        ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
        SpotInterruption = "SpotInterruption",
        TerminationNotice = "TerminationNotice",
        #[serde(other)]
        Other = "Other",
    }
}

/// The `detail` of an `ECS Task State Change` event (the fields this system reads or, in the
/// Fargate stand-in, writes); unknown fields are ignored, as EventBridge adds them freely.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    pub task_arn: String,
    pub cluster_arn: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: Option<TaskStatus>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub launch_type: Option<String>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerState>,
    /// When the task began pulling its image, started, its containers stopped, and it stopped (RFC
    /// 3339, as ECS sends them; each absent until it happened). Fargate bills from the pull to
    /// the stop.
    pub pull_started_at: Option<String>,
    pub started_at: Option<String>,
    pub execution_stopped_at: Option<String>,
    pub stopped_at: Option<String>,
}

impl TaskStateChange {
    /// The task's billed time as far as this change tells it, epoch milliseconds: from its image
    /// pull (or its start) to its stop (or its containers' stop). None before it started.
    pub fn billed_window(&self, parse: impl Fn(&str) -> Option<i64>) -> Option<(i64, Option<i64>)> {
        let start = self.pull_started_at.as_deref().or(self.started_at.as_deref()).and_then(&parse)?;
        let end = self.stopped_at.as_deref().or(self.execution_stopped_at.as_deref()).and_then(&parse);
        Some((start, end))
    }
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub name: String,
    pub last_status: Option<TaskStatus>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}
