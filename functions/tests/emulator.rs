//! The emulator keeps the AWS semantics the functions rely on where moto alone does not
//! (testenv/py/moto_server.py): each behaviour as AWS documents it, tested on the stand-in itself.

mod common;

use common::*;
use functions::aws::{RunOutcome, RunRequest};
use functions::identity::acting_as;
use functions::model::{TaskId, TenantId};
use functions::Function;

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
    // As the agent posts it: through the VPC's endpoint (the bucket refuses upload forms from elsewhere).
    let resp = in_vpc().post(&form.url).multipart(multipart.part("file", file)).send().await.unwrap();
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
    let env = functions::manifest::overrides(&app, &job).await.unwrap().unwrap();
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

/// What an S3 error body says: (code, message).
fn s3_error(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let between = |open: &str, close: &str| text.split(open).nth(1).and_then(|r| r.split(close).next()).unwrap_or_default().to_owned();
    (between("<Code>", "</Code>"), between("<Message>", "</Message>"))
}

/// IAM as AWS authorizes each call (testenv/py/iam_authorize.py, with the policies of generated/):
/// a call its role does not allow is AccessDenied in the service's own shape; the bucket policy
/// refuses the agent's links and forms from outside the VPC's endpoint, and the endpoint's policy
/// refuses from inside it what it does not name; a missing key is 403 to a signer that may not
/// list the bucket; RunTask authorizes the task definition and the role it passes.
#[tokio::test]
async fn calls_are_authorized_as_iam_authorizes_them() {
    let tenant = "emu-iam";
    let app = app(&[tenant]).await;
    let id = submit(&app, tenant, r#"{"query": "iam"}"#).await;
    let task_id = TaskId::parse(&id).unwrap();
    let job = app.store.get(&task_id).await.unwrap().unwrap();

    // Identity policies, each service's AccessDenied: the status role reads jobs but writes none,
    // sends no message, and reads no slot manifest.
    let key = aws_sdk_dynamodb::types::AttributeValue::S(id.clone());
    let denied = acting_as(Function::Status, app.store.client.delete_item().table_name(&app.store.table).key(names::table::TASK_ID, key.clone()).send())
        .await
        .expect_err("status may not delete a job");
    let service = denied.as_service_error().map(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e).unwrap_or_default().to_owned());
    assert_eq!(service.as_deref(), Some("AccessDeniedException"), "{denied:?}");
    let message = format!("{:?}", denied);
    assert!(message.contains("assumed-role/fn-test-status-function") && message.contains("dynamodb:DeleteItem") && message.contains("no identity-based policy allows"), "{message}");
    acting_as(Function::Status, app.store.client.get_item().table_name(&app.store.table).key(names::table::TASK_ID, key).send()).await.expect("status reads a job");
    let denied = acting_as(Function::Status, app.queue.client.send_message().queue_url(&app.queue.url).message_body("{}").send()).await.expect_err("status sends no job");
    assert_eq!(denied.as_service_error().and_then(|e| aws_sdk_sqs::error::ProvideErrorMetadata::code(e).map(str::to_owned)).as_deref(), Some("AccessDenied"), "{denied:?}");
    let denied = acting_as(Function::Status, app.outputs.client.get_object().bucket(&app.config.bucket).key(names::bucket::slot_manifest_key("some-slot")).send())
        .await
        .expect_err("status reads no slot");
    assert_eq!(denied.raw_response().map(|r| r.status().as_u16()), Some(403), "{denied:?}");

    // S3's rule for a missing key: 403 to a principal that may not list the bucket. The reconciler
    // may read error reports but list only below a prefix, so it asks by listing, which it may.
    let report = names::bucket::output_key(&id, names::Output::Error);
    let missing = acting_as(Function::Reconcile, app.outputs.client.get_object().bucket(&app.config.bucket).key(&report).send()).await.expect_err("no report");
    assert_eq!(missing.raw_response().map(|r| r.status().as_u16()), Some(403), "{missing:?}");
    assert!(!acting_as(Function::Reconcile, app.outputs.exists(&report)).await.expect("the reconciler may list below jobs/"));
    assert!(acting_as(Function::Reconcile, app.outputs.error_report(&task_id)).await.expect("an absent report is no error").is_none());

    // The agent's links and forms, signed by the process role: from inside the VPC they work; the
    // bucket policy refuses them from anywhere else.
    let overrides = functions::manifest::overrides(&app, &job).await.unwrap().unwrap();
    let (code, raw) = agent_http("GET", &overrides[0].1, b"").await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&raw));
    let manifest: names::manifest::Manifest = serde_json::from_slice(&raw).unwrap();
    let form = &manifest.uploads[names::Output::Result.file_name()];
    let mut outside = reqwest::multipart::Form::new();
    for (k, v) in &form.fields {
        outside = outside.text(k.clone(), v.clone());
    }
    let file = reqwest::multipart::Part::bytes(b"{}".to_vec()).file_name("f").mime_str(names::Output::Result.content_type()).unwrap();
    let resp = reqwest::Client::new().post(&form.url).multipart(outside.part("file", file)).send().await.unwrap();
    let (code, body) = (resp.status().as_u16(), resp.bytes().await.unwrap());
    let (error, message) = s3_error(&body);
    assert_eq!((code, error.as_str()), (403, "AccessDenied"), "{message}");
    assert!(message.contains("explicit deny in a resource-based policy") && message.contains("UploadLinksOnlyFromTheVpc"), "{message}");
    assert_eq!(post(form, &form.fields, names::Output::Result.content_type(), b"{}".to_vec()).await.0, 204, "from inside the VPC");
    let secrets = acting_as(Function::Process, app.outputs.put_secrets(&task_id, &[("pw".to_owned(), "hunter2".to_owned())].into())).await.unwrap();
    let links = acting_as(Function::Process, app.outputs.presign_secrets(&task_id, secrets.as_deref(), std::time::Duration::from_secs(60))).await.unwrap();
    let (code, body) = http("GET", &links.get, b"").await;
    assert_eq!((code, s3_error(&body).0.as_str()), (403, "AccessDenied"), "secrets from outside: {}", s3_error(&body).1);
    assert_eq!(http("DELETE", &links.delete, b"").await.0, 403, "a secrets delete from outside");
    assert_eq!(agent_http("GET", &links.get, b"").await.0, 200, "secrets from inside");

    // The endpoint's policy: inside the VPC, only the process role's links of the agent's kinds
    // pass. An output link the status role signs for an API client does not.
    acting_as(Function::Process, app.outputs.client.put_object().bucket(&app.config.bucket).key(names::bucket::output_key(&id, names::Output::Result)).body(b"{}".to_vec().into()).send())
        .await
        .unwrap();
    let download = acting_as(Function::Status, app.outputs.presign_get(&task_id, names::Output::Result, std::time::Duration::from_secs(60))).await.unwrap();
    assert_eq!(http("GET", &download, b"").await.0, 200, "an API client downloads its output");
    let (code, body) = agent_http("GET", &download, b"").await;
    assert_eq!(code, 403);
    assert!(s3_error(&body).1.contains("VPC endpoint policy"), "{}", s3_error(&body).1);

    // RunTask: only the agent's family, and only passing the role the stack's task definition
    // names (iam:PassRole).
    let ecs = &app.tasks.client;
    let register = |family: String, role: String| {
        ecs.register_task_definition()
            .family(family)
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .execution_role_arn(role)
            .container_definitions(aws_sdk_ecs::types::ContainerDefinition::builder().name(names::agent::CONTAINER_NAME).image("agent:test").build())
            .send()
    };
    let family = names::agent::task_family(PREFIX);
    let foreign = register(unique("other-family"), format!("arn:aws:iam::{ACCOUNT}:role/{}", names::agent::execution_role_name(PREFIX))).await.unwrap();
    let elevated = register(family, format!("arn:aws:iam::{ACCOUNT}:role/admin")).await.unwrap();
    for (what, definition, action) in [("another family", foreign, "ecs:RunTask"), ("another role", elevated, "iam:PassRole")] {
        let mut tasks = app.tasks.clone();
        tasks.task_definition = definition.task_definition().and_then(|t| t.task_definition_arn()).unwrap().to_owned();
        let run = RunRequest::for_job(&TaskId::parse(&uuid::Uuid::new_v4().to_string()).unwrap(), &TenantId::new(tenant), env("https://a.test/m"));
        let refused = acting_as(Function::Process, tasks.run(&run)).await;
        let text = format!("{refused:?}");
        assert!(text.contains("AccessDeniedException") && text.contains(action), "{what}: {text}");
    }
}

/// DynamoDB's writes are atomic (a condition and its write are one step; a transaction's
/// conditions hold for all its writes or none is made), where moto's threaded server lets requests
/// interleave: concurrent conditional increments never pass their bound, and a cancelled
/// transaction leaves every other request's writes in place (moto's restores whole tables).
#[tokio::test]
async fn conditional_writes_and_transactions_are_atomic_as_in_dynamodb() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, TransactWriteItem, Update};
    emulator();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let table = table();
    let key = |k: &str| V::S(k.to_owned());
    let counter = unique("atomic");
    let increment = || {
        ddb.update_item()
            .table_name(&table)
            .key(names::table::TASK_ID, key(&counter))
            .update_expression("ADD #n :one")
            .condition_expression("attribute_not_exists(#n) OR #n < :max")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", V::N("1".into()))
            .expression_attribute_values(":max", V::N("10".into()))
            .send()
    };
    let results = futures_util::future::join_all((0..60).map(|_| increment())).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10, "exactly the bound's worth of increments pass");
    let item = ddb.get_item().table_name(&table).key(names::table::TASK_ID, key(&counter)).consistent_read(true).send().await.unwrap();
    assert_eq!(item.item().unwrap()["n"], V::N("10".into()));

    // A transaction whose second condition fails: nothing of it is written, the reasons say
    // which, and writes other requests made meanwhile all stay.
    let (a, b) = (unique("tx-a"), unique("tx-b"));
    let update = |k: &str, condition: &str| {
        Update::builder()
            .table_name(&table)
            .key(names::table::TASK_ID, key(k))
            .update_expression("SET #v = :v")
            .condition_expression(condition)
            .expression_attribute_names("#v", "v")
            .expression_attribute_values(":v", V::S("written".into()))
            .build()
            .unwrap()
    };
    let mut others = Vec::new();
    for round in 0..20 {
        let tx = ddb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update(&a, "attribute_not_exists(#v)")).build())
            .transact_items(TransactWriteItem::builder().update(update(&b, "attribute_exists(#v)")).build())
            .send();
        let round_others: Vec<String> = (0..8).map(|i| format!("{a}-other-{round}-{i}")).collect();
        let puts = futures_util::future::join_all(round_others.iter().map(|k| ddb.put_item().table_name(&table).item(names::table::TASK_ID, key(k)).send()));
        let (tx, puts) = tokio::join!(tx, puts);
        assert!(puts.iter().all(|p| p.is_ok()));
        others.extend(round_others);
        let err = tx.expect_err("the second condition fails");
        let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) = err.as_service_error() else {
            panic!("{err:?}")
        };
        let codes: Vec<Option<&str>> = c.cancellation_reasons().iter().map(|r| r.code()).collect();
        // (AWS names an item that did not cancel it with the code "None".)
        assert_eq!(codes, [Some("None"), Some("ConditionalCheckFailed")], "{c:?}");
    }
    for k in [&a, &b] {
        let got = ddb.get_item().table_name(&table).key(names::table::TASK_ID, key(k)).consistent_read(true).send().await.unwrap();
        assert!(got.item().is_none(), "{k} was written by a cancelled transaction");
    }
    for k in &others {
        let got = ddb.get_item().table_name(&table).key(names::table::TASK_ID, key(k)).consistent_read(true).send().await.unwrap();
        assert!(got.item().is_some(), "{k}, written while a transaction was cancelled, was undone");
    }
}

/// TransactWriteItems' ClientRequestToken as DynamoDB honours it: an identical request with a
/// token used before is answered as a success and applied no more; with other parameters it is
/// IdempotentParameterMismatchException. moto ignored the token, so a retry of a transaction whose
/// answer was lost (the SDK fills the token in and its retries share it) was refused by its own
/// condition: a claim lost that way left its job PROVISIONING with no delivery (soak seed 5043).
#[tokio::test]
async fn a_transaction_sent_again_with_its_token_is_answered_not_applied_again() {
    use aws_sdk_dynamodb::types::{AttributeValue as V, TransactWriteItem, Update};
    emulator();
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let table = table();
    let k = unique("token");
    let claim = |value: &str| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&table)
                    .key(names::table::TASK_ID, V::S(k.clone()))
                    .update_expression("SET #v = :v ADD #n :one")
                    .condition_expression("attribute_not_exists(#v)")
                    .expression_attribute_names("#v", "v")
                    .expression_attribute_names("#n", "n")
                    .expression_attribute_values(":v", V::S(value.into()))
                    .expression_attribute_values(":one", V::N("1".into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let token = unique("t");
    for _ in 0..2 {
        ddb.transact_write_items().client_request_token(&token).transact_items(claim("a")).send().await.expect("the same request, the same answer");
    }
    let got = ddb.get_item().table_name(&table).key(names::table::TASK_ID, V::S(k.clone())).consistent_read(true).send().await.unwrap();
    assert_eq!(got.item().unwrap()["n"], V::N("1".into()), "applied once");
    let err = ddb.transact_write_items().client_request_token(&token).transact_items(claim("b")).send().await.expect_err("other parameters");
    assert!(err.as_service_error().is_some_and(|e| e.is_idempotent_parameter_mismatch_exception()), "{err:?}");
    // Without the token it is a new request, which its condition refuses.
    let err = ddb.transact_write_items().client_request_token(unique("other")).transact_items(claim("a")).send().await.expect_err("a new request");
    assert!(err.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()), "{err:?}");
}

/// STS's AssumeRole as IAM authorizes it: a principal assumes a role only when its identity
/// policy allows it on the role and the role's trust policy allows the principal (a trust policy
/// must allow explicitly, even a role assuming itself). The process role assumes itself (the
/// session that signs the agents' links); no other function may assume it, nor it another role;
/// and a principal whose policy allows it is still refused by a role that does not trust it.
#[tokio::test]
async fn assuming_a_role_needs_both_the_grant_and_the_trust() {
    use aws_credential_types::provider::ProvideCredentials;
    let app = app(&["emu-sts"]).await;
    let sdk = function_sdk(&app.config).await;
    let role_of = |f: Function| format!("arn:aws:iam::{ACCOUNT}:role/{}", f.role_name(&names::defaults::name_prefix(PROJECT, ENVIRONMENT)));
    let assume = |role: String, sdk: aws_config::SdkConfig| async move {
        aws_config::sts::AssumeRoleProvider::builder(role).session_name("emu").configure(&sdk).build().await.provide_credentials().await
    };
    let session = acting_as(Function::Process, assume(role_of(Function::Process), sdk.clone())).await.expect("the process role assumes itself");
    assert!(session.expiry().is_some(), "a session's expiry is known");
    for (who, role) in [(Function::Process, role_of(Function::Status)), (Function::Status, role_of(Function::Process))] {
        let refused = acting_as(who, assume(role.clone(), sdk.clone())).await.expect_err("not granted, not trusted");
        let text = format!("{refused:?}");
        assert!(text.contains("AccessDenied") && text.contains("sts:AssumeRole"), "{} assuming {role}: {text}", who.as_str());
    }
    // Granted by its own policy, but the status role trusts only Lambda: refused.
    let key = ("ASIATESTENVSTSGRANTED", "testenv-secret-sts-granted");
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_of(Function::Status)}]});
    let registration = serde_json::json!({"principals": {key.0: {
        "arn": format!("arn:aws:iam::{ACCOUNT}:role/granted"),
        "session_arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/granted/emu"),
        "account": ACCOUNT,
        "secret": key.1,
        "policies": [{"name": "granted", "policy": policy}],
    }}});
    let r = reqwest::Client::new().post(format!("{}/_testenv/iam", emulator().endpoint)).body(registration.to_string()).send().await.unwrap();
    assert!(r.status().is_success());
    let refused = aws_config::sts::AssumeRoleProvider::builder(role_of(Function::Status))
        .session_name("emu")
        .configure(&sdk)
        .build_from_provider(aws_credential_types::Credentials::new(key.0, key.1, None, None, "test"))
        .await
        .provide_credentials()
        .await
        .expect_err("the role's trust does not allow it");
    let text = format!("{refused:?}");
    assert!(text.contains("AccessDenied") && text.contains("fn-test-status-function") && text.contains("no policy allows"), "{text}");
}

/// SQS's checks of a query-signed request (a warm slot's wake link: a `ReceiveMessage` GET signed
/// by the process function's session), which moto does not make: the signature over the action,
/// queue and wait; the link's expiry (400 RequestExpired); the access key (403
/// InvalidClientTokenId); and IAM, by the signer's policies: the process role may receive from
/// the wake queues alone, the status role from none. A valid link is answered in the query
/// protocol's XML, as SQS answers a GET.
#[tokio::test]
async fn a_query_signed_sqs_link_is_checked_as_sqs_checks_it() {
    use aws_credential_types::provider::ProvideCredentials;
    let app = app(&[]).await;
    let sdk = function_sdk(&app.config).await;
    let provider = sdk.credentials_provider().unwrap();
    let (process, status) = (
        acting_as(Function::Process, async { provider.provide_credentials().await }).await.unwrap(),
        acting_as(Function::Status, async { provider.provide_credentials().await }).await.unwrap(),
    );
    let slot = uuid::Uuid::new_v4().simple().to_string();
    let queue = acting_as(Function::Process, app.wakes.create(&slot)).await.expect("the process role makes a wake queue");
    let link = |creds: &aws_credential_types::Credentials, url: &str, seconds: u64| {
        functions::aws::presign_receive(creds, names::defaults::AWS_REGION, url, std::time::SystemTime::now(), std::time::Duration::from_secs(seconds)).unwrap()
    };
    let error = |body: &[u8]| s3_error(body).0;
    assert_ne!(process.access_key_id(), status.access_key_id(), "each role's own key");

    acting_as(Function::Process, app.wakes.wake(&queue)).await.unwrap();
    let (code, body) = http("GET", &link(&process, &queue, 60), b"").await;
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("<ReceiveMessageResponse") && text.contains("<Body>wake</Body>"), "the query protocol's answer: {text}");

    let (code, body) = http("GET", &link(&status, &queue, 60), b"").await;
    assert_eq!((code, error(&body).as_str()), (403, "AccessDenied"), "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("sqs:ReceiveMessage"), "{}", String::from_utf8_lossy(&body));
    let (code, body) = http("GET", &link(&process, &app.config.webhook_queue_url, 60), b"").await;
    assert_eq!((code, error(&body).as_str()), (403, "AccessDenied"), "the process role receives from no other queue through a link");
    let unknown = aws_credential_types::Credentials::new("AKIAUNKNOWNUNKNOWN00", "secret", None, None, "test");
    let (code, body) = http("GET", &link(&unknown, &queue, 60), b"").await;
    assert_eq!((code, error(&body).as_str()), (403, "InvalidClientTokenId"));
    let short = link(&process, &queue, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (code, body) = http("GET", &short, b"").await;
    assert_eq!((code, error(&body).as_str()), (400, "RequestExpired"), "{}", String::from_utf8_lossy(&body));
    acting_as(Function::Process, app.wakes.delete(&queue)).await.unwrap();
    acting_as(Function::Process, app.wakes.delete(&queue)).await.expect("a queue already gone is deleted");
}
