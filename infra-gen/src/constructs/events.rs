//! EventBridge: ECS task state changes of the agent cluster, and a schedule, both delivered to a
//! function with retries.

use crate::model::resources::compute::LambdaPermission;
use crate::model::resources::observability::{EventRetryPolicy, EventRule, EventTarget};
use crate::model::{func, Error, File, Ref, Stack, Val};

use super::agent::AgentService;
use super::function::Function;
use super::Context;

fn target(stack: &mut Stack, logical: &str, rule: &Ref<EventRule>, function: &Function) -> Result<(), Error> {
    stack.add(
        File::Observability,
        logical,
        EventTarget {
            rule: rule.name(),
            target_id: function.function.as_str().into(),
            arn: function.lambda.arn(),
            retry_policy: Some(EventRetryPolicy {
                maximum_event_age_in_seconds: Val::Int(3600),
                maximum_retry_attempts: Val::Int(10),
            }),
            ..Default::default()
        },
    )?;
    stack.add(
        File::Observability,
        logical,
        LambdaPermission {
            // Unique per function: two permissions with one id on one function fail at apply
            // ("The statement id ... provided already exists").
            statement_id: Val::lit("AllowEventBridge-") + &logical.replace('_', "-"),
            action: "lambda:InvokeFunction".into(),
            function_name: function.lambda.function_name(),
            principal: "events.amazonaws.com".into(),
            // The rule's ARN pins this account's rule. No source_account: AWS documents none for
            // EventBridge, and the condition can stop invocations (terraform-provider-aws#4116).
            source_arn: Some(rule.arn()),
            source_account: None,
        },
    )?;
    Ok(())
}

/// Every `ECS Task State Change` of the agent cluster goes to `function`.
pub fn task_state_changes(stack: &mut Stack, ctx: &Context, agent: &AgentService, function: &Function) -> Result<(), Error> {
    let pattern = func::jsonencode(&func::object([
        ("source", Val::List(vec![Val::lit(names::ecs::EVENT_SOURCE)])),
        ("detail-type", Val::List(vec![Val::lit(names::ecs::TASK_STATE_CHANGE)])),
        ("detail", func::object([("clusterArn", Val::List(vec![agent.cluster.arn()]))])),
    ]));
    let rule = stack.add(
        File::Observability,
        "task_state_changes",
        EventRule {
            name: ctx.prefix.clone() + "-task-state-changes",
            description: Some("Agent task state changes, to reconcile job status".into()),
            event_pattern: Some(pattern),
            ..Default::default()
        },
    )?;
    target(stack, "task_state_changes", &rule, function)
}

/// A schedule that invokes `function` (the timeout sweep).
pub fn schedule(stack: &mut Stack, ctx: &Context, expression: &str, function: &Function) -> Result<(), Error> {
    let rule = stack.add(
        File::Observability,
        "sweep",
        EventRule {
            name: ctx.prefix.clone() + "-sweep",
            description: Some("Stops and fails jobs that overran their timeout".into()),
            schedule_expression: Some(expression.into()),
            ..Default::default()
        },
    )?;
    target(stack, "sweep", &rule, function)
}
