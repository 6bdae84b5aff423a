/// awslogs stream prefix of the agent container.
pub const AGENT_STREAM_PREFIX: &str = "agent";

pub fn agent_group(prefix: &str) -> String {
    format!("/ecs/{prefix}-agent")
}

/// The stream awslogs writes for one task: `prefix/container/ecs-task-id`.
pub fn agent_stream(ecs_task_id: &str) -> String {
    format!("{AGENT_STREAM_PREFIX}/{}/{ecs_task_id}", super::agent::CONTAINER_NAME)
}

pub fn function_group(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

pub fn api_access_group(prefix: &str) -> String {
    format!("/aws/apigateway/{prefix}-api")
}

pub fn flow_log_group(prefix: &str) -> String {
    format!("/aws/vpc/{prefix}-flow-logs")
}

/// The log group API Gateway writes a stage's execution logs to (its name is API Gateway's).
pub fn api_execution_group(api_id: &str, stage: &str) -> String {
    format!("API-Gateway-Execution-Logs_{api_id}/{stage}")
}

/// Every log group of the stack whose prefix is `prefix`: the functions', the agent's, the
/// API's access and execution logs, the flow logs. (The execution group's name holds the API's
/// id, which is known only after it exists: any id, this stack's stage.)
pub fn stack_groups(prefix: &str) -> Vec<String> {
    vec![
        function_group(&format!("{prefix}-*")),
        agent_group(prefix),
        api_access_group(prefix),
        flow_log_group(prefix),
        api_execution_group("*", super::routes::STAGE),
    ]
}

/// The `msg` of the agent's log line for each model turn of a computer-use job (its `turn`,
/// `text`, `actions`, `failed`, `tokens`, `model_ms`): what `jobsctl submit --goal --wait` follows.
pub const MODEL_TURN: &str = "model turn";
