//! The ECS cluster that runs the agent's tasks.

use super::*;

/// What RunTask is asked to start.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// `startedBy` and `clientToken`: the job's id, or a warm slot's `pool…` name.
    pub started_by: String,
    /// The task's tags: (key, value).
    pub tags: Vec<(&'static str, String)>,
    /// Container environment overrides: (name, value).
    pub environment: Vec<(String, String)>,
}

impl RunRequest {
    /// A job's cold task: started by the job's id, tagged with it and its tenant.
    pub fn for_job(task_id: &TaskId, tenant_id: &TenantId, environment: Vec<(String, String)>) -> RunRequest {
        RunRequest {
            started_by: task_id.as_str().to_owned(),
            tags: vec![(names::ecs::TASK_ID_TAG, task_id.as_str().to_owned()), (names::ecs::TENANT_TAG, tenant_id.as_str().to_owned())],
            environment,
        }
    }
}

/// What RunTask answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Started { task_arn: String },
    /// ECS refused (capacity, throttling, ...): `failures[]` as one readable reason.
    Refused { reason: String },
}

/// The ECS cluster that runs agent tasks.
#[derive(Clone, Debug)]
pub struct Tasks {
    pub client: aws_sdk_ecs::Client,
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub container: String,
}

impl Tasks {
    /// `ecs:RunTask` (with `ecs:TagResource` for the tags, and `iam:PassRole` on the task
    /// definition's execution role). `clientToken` = `startedBy` (the job's id, a slot's name),
    /// so a repeated call starts no second task: with the same parameters ECS answers the task
    /// it started, with others (a new manifest link) ConflictException naming it, taken as the
    /// answer.
    pub async fn run(&self, req: &RunRequest) -> Result<RunOutcome, AwsError> {
        use aws_sdk_ecs::types::*;
        let mut env = Vec::new();
        for (k, v) in &req.environment {
            env.push(KeyValuePair::builder().name(k).value(v).build());
        }
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder().name(&self.container).set_environment(Some(env)).build(),
            )
            .build();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.subnets.clone()))
                    .set_security_groups(Some(self.security_groups.clone()))
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .map_err(|e| AwsError { op: "ecs:RunTask", code: None, detail: e.to_string() })?,
            )
            .build();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let r = self
            .client
            .run_task()
            .cluster(&self.cluster)
            .task_definition(&self.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .client_token(&req.started_by)
            .started_by(&req.started_by)
            .set_tags(Some(req.tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .network_configuration(network)
            .overrides(overrides)
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            // The token already started a task, with other parameters: an earlier attempt whose
            // answer was lost signed its own manifest link. That task is this one's (ECS names
            // it in resourceIds) and no second one starts.
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(c)) if !c.resource_ids().is_empty() => {
                    return Ok(RunOutcome::Started { task_arn: c.resource_ids()[0].clone() });
                }
                _ => return Err(AwsError::from_sdk("ecs:RunTask", e)),
            },
        };
        if let Some(arn) = r.tasks().iter().find_map(|t| t.task_arn()) {
            return Ok(RunOutcome::Started { task_arn: arn.to_owned() });
        }
        let reason = r
            .failures()
            .iter()
            .map(|f| {
                let mut s = f.reason().unwrap_or("unknown").to_owned();
                if let Some(d) = f.detail() {
                    s.push_str(": ");
                    s.push_str(d);
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
        Ok(RunOutcome::Refused { reason: if reason.is_empty() { "RunTask started no task".into() } else { reason } })
    }

    /// What ECS says of a task (`ecs:DescribeTasks`), in the shape of its state-change event:
    /// its status and, once stopped, its stop code and its containers' exit codes. None for a task
    /// ECS no longer knows (stopped tasks are kept for about an hour).
    pub async fn describe(&self, task_arn: &str) -> Result<Option<names::ecs::TaskStateChange>, AwsError> {
        use names::ecs::{ContainerState, StopCode, TaskStatus};
        let r = self.client.describe_tasks().cluster(&self.cluster).tasks(task_arn).send().await.map_err(|e| AwsError::from_sdk("ecs:DescribeTasks", e))?;
        let Some(t) = r.tasks().first() else { return Ok(None) };
        Ok(Some(names::ecs::TaskStateChange {
            task_arn: t.task_arn().unwrap_or(task_arn).to_owned(),
            cluster_arn: t.cluster_arn().map(str::to_owned),
            last_status: t.last_status().and_then(TaskStatus::parse).unwrap_or_default(),
            desired_status: t.desired_status().and_then(TaskStatus::parse),
            started_by: t.started_by().map(str::to_owned),
            group: t.group().map(str::to_owned),
            launch_type: t.launch_type().map(|l| l.as_str().to_owned()),
            stop_code: t.stop_code().and_then(|c| StopCode::parse(c.as_str())),
            stopped_reason: t.stopped_reason().map(str::to_owned),
            containers: t
                .containers()
                .iter()
                .map(|c| ContainerState {
                    name: c.name().unwrap_or_default().to_owned(),
                    last_status: c.last_status().and_then(TaskStatus::parse),
                    exit_code: c.exit_code().map(i64::from),
                    reason: c.reason().map(str::to_owned),
                })
                .collect(),
            pull_started_at: t.pull_started_at().map(|d| crate::time::rfc3339(d.to_millis().unwrap_or_default())),
            started_at: t.started_at().map(|d| crate::time::rfc3339(d.to_millis().unwrap_or_default())),
            execution_stopped_at: t.execution_stopped_at().map(|d| crate::time::rfc3339(d.to_millis().unwrap_or_default())),
            stopped_at: t.stopped_at().map(|d| crate::time::rfc3339(d.to_millis().unwrap_or_default())),
        }))
    }

    /// `ecs:StopTask`. A task that is already gone is not an error.
    pub async fn stop(&self, task_arn: &str, reason: &str) -> Result<(), AwsError> {
        let r = self.client.stop_task().cluster(&self.cluster).task(task_arn).reason(reason).send().await;
        match r {
            Ok(_) => Ok(()),
            // ECS answers a task it no longer knows with InvalidParameterException (moto with a
            // ResourceNotFoundException, which StopTask does not model).
            Err(e) if e.as_service_error().is_some_and(|e| e.is_invalid_parameter_exception()) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk("ecs:StopTask", e);
                if e.code_is(&["ResourceNotFoundException"]) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// The last path segment of a task ARN: the id in the awslogs stream name.
pub fn ecs_task_id(task_arn: &str) -> String {
    task_arn.rsplit('/').next().unwrap_or(task_arn).to_owned()
}
