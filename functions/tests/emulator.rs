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

/// Sends a POST form as a browser (and the agent) does: the policy's fields, then the file.
async fn post(form: &names::manifest::Upload, fields: &std::collections::BTreeMap<String, String>, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in fields {
        multipart = multipart.text(k.clone(), v.clone());
    }
    let file = reqwest::multipart::Part::bytes(body).file_name("f").mime_str(content_type).unwrap();
    let resp = reqwest::Client::new().post(&form.url).multipart(multipart.part("file", file)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// S3's checks of pre-signed requests (SigV4 query authentication; browser-based uploads with a
/// POST policy): links and forms the functions sign pass, and S3 refuses, as S3 answers, a link
/// whose signature was tampered with or that expired, a form whose key or content type is not
/// the policy's, a file over its content-length-range, and a form field the policy does not name.
#[tokio::test]
async fn pre_signed_requests_are_checked_as_s3_checks_them() {
    let tenant = "emu-links";
    let app = app(&[tenant]).await;
    let id = submit(&app, tenant, r#"{"query": "links"}"#).await;
    let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
    let env = functions::process::overrides(&app, &job).await.unwrap().unwrap();
    // The manifest link (a GET signed by the SDK) works, and refuses any change.
    let link = &env[0].1;
    let (code, raw) = http("GET", link, b"").await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&raw));
    let manifest: names::manifest::Manifest = serde_json::from_slice(&raw).unwrap();
    let tampered = link.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let (code, body) = http("GET", &tampered[..tampered.len() - 1], b"").await;
    assert_eq!(code, 403);
    assert!(String::from_utf8_lossy(&body).contains("<Code>SignatureDoesNotMatch</Code>"));
    let other_key = link.replace("manifest.json", "result.json");
    assert_eq!(http("GET", &other_key, b"").await.0, 403, "a link signs its key");
    // A link past its expiry.
    let short = app.outputs.presign_secrets(&job.task_id, None, std::time::Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, body) = http("GET", &short.get, b"").await;
    assert_eq!(code, 403);
    assert!(String::from_utf8_lossy(&body).contains("Request has expired"), "{}", String::from_utf8_lossy(&body));

    // The result's upload form (s3post): as signed it uploads; each deviation is refused.
    let form = &manifest.uploads[names::Output::Result.file_name()];
    let content_type = names::Output::Result.content_type();
    let (code, body) = post(form, &form.fields, content_type, b"{}".to_vec()).await;
    assert_eq!(code, 204, "{body}");
    let (code, body) = post(form, &form.fields, content_type, vec![b' '; form.max_bytes as usize + 1]).await;
    assert_eq!((code, body.contains("<Code>EntityTooLarge</Code>")), (400, true), "{body}");
    let mut fields = form.fields.clone();
    let key = fields.get_mut("key").expect("a key field");
    *key = key.replace("result.json", "screenshot.png");
    let (code, body) = post(form, &fields, content_type, b"{}".to_vec()).await;
    assert_eq!((code, body.contains("Policy Condition failed")), (403, true), "another key: {body}");
    let mut fields = form.fields.clone();
    fields.insert("acl".into(), "public-read".into());
    let (code, body) = post(form, &fields, content_type, b"{}".to_vec()).await;
    assert_eq!((code, body.contains("Extra input fields: acl")), (403, true), "{body}");
    let mut fields = form.fields.clone();
    let signature = fields.get_mut("x-amz-signature").expect("a signature field");
    signature.replace_range(0..1, if signature.starts_with('0') { "1" } else { "0" });
    let (code, body) = post(form, &fields, content_type, b"{}".to_vec()).await;
    assert_eq!((code, body.contains("SignatureDoesNotMatch")), (403, true), "{body}");
}
