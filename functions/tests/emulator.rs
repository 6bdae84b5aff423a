//! The emulator keeps the AWS semantics the functions rely on where moto alone does not
//! (testenv/py/moto_server.py): each behaviour as AWS documents it, tested on the stand-in itself.

mod common;

use common::*;
use functions::aws::{RunOutcome, RunRequest};
use functions::model::{TaskId, TenantId};

fn env(link: &str) -> Vec<(String, String)> {
    vec![(names::env::agent::MANIFEST_URL.to_string(), link.to_string())]
}

/// ECS RunTask's clientToken ("Ensuring idempotency", ECS API reference): the same token and
/// parameters answer the first task and start none; other parameters get ConflictException whose
/// resourceIds name it; the token is the cluster's own.
#[tokio::test]
async fn run_task_client_tokens_behave_as_in_ecs() {
    let app = app(&["emu"]).await;
    let id = TaskId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let tenant = TenantId::new("emu");
    let first = RunRequest::for_job(&id, &tenant, env("https://a.test/manifest"));
    let Ok(RunOutcome::Started { task_arn }) = app.tasks.run(&first).await else { panic!("the first RunTask starts a task") };
    // The same request again: the same task, and still one task for the token.
    assert_eq!(app.tasks.run(&first).await.unwrap(), RunOutcome::Started { task_arn: task_arn.clone() });
    let listed = app.tasks.client.list_tasks().cluster(&app.tasks.cluster).started_by(id.as_str()).send().await.unwrap();
    assert_eq!(listed.task_arns(), [task_arn.clone()]);
    // Other parameters: ConflictException naming the first task (asked of the raw client, which
    // the functions' Tasks::run reads as the answer).
    let err = app
        .tasks
        .client
        .run_task()
        .cluster(&app.tasks.cluster)
        .task_definition(&app.tasks.task_definition)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .client_token(id.as_str())
        .started_by("someone-else")
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(app.tasks.subnets.clone()))
                        .set_security_groups(Some(app.tasks.security_groups.clone()))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("a reused token with other parameters is refused");
    match err.as_service_error() {
        Some(aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(c)) => assert_eq!(c.resource_ids(), [task_arn.clone()]),
        other => panic!("expected ConflictException, got {other:?}"),
    }
    // A token is the cluster's: in another cluster it starts a task of its own.
    let other = app.tasks.client.create_cluster().cluster_name("emulator-other").send().await.unwrap();
    let mut elsewhere = app.tasks.clone();
    elsewhere.cluster = other.cluster().and_then(|c| c.cluster_arn()).unwrap().to_string();
    let Ok(RunOutcome::Started { task_arn: there }) = elsewhere.run(&first).await else { panic!("a task in the other cluster") };
    assert_ne!(there, task_arn);
}
