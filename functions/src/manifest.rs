//! What a job's task is handed: the job's manifest (its spec, a POST form for each file it can
//! produce, a link to its secrets object) and, for a cold task, the RunTask overrides that carry
//! only a link to it. The process function hands it to a cold task, the pool to a warm slot.

use crate::aws::AwsError;
use crate::model::Job;
use crate::App;
use names::job::ErrorCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// RunTask's limit on the overrides, JSON formatting included.
pub const OVERRIDE_LIMIT_CHARS: usize = 8192;

/// The job's manifest: the job spec and a POST form for each file the job can produce. The tenant
/// secrets the steps name are read from SSM and written to an object of their own, which the
/// manifest links to (a GET to read, a DELETE to remove). `Ok(Err(_))` when the job can never
/// start: a secret that does not exist.
pub async fn manifest(app: &App, job: &Job) -> Result<Result<names::manifest::Manifest, (ErrorCode, String)>, AwsError> {
    crate::identity::acting_as(crate::Function::Process, Box::pin(manifest_as_process(app, job))).await
}

async fn manifest_as_process(app: &App, job: &Job) -> Result<Result<names::manifest::Manifest, (ErrorCode, String)>, AwsError> {
    let expires = link_lifetime(app, job);
    let mut uploads = BTreeMap::new();
    for file in names::manifest::files(&job.spec()) {
        let form = app.outputs.presign_post(&job.task_id, &file.path, file.content_type, file.max_bytes, expires).await?;
        uploads.insert(file.path, form);
    }
    let spec = job.spec();
    let wanted = spec.secrets();
    let mut values = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        match app.secrets.read(job.tenant_id.as_str(), &wanted).await? {
            Ok(values) => values,
            Err(missing) => {
                let list = missing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                let path = names::ssm::tenant_secret(&app.config.tenant_secrets_path, job.tenant_id.as_str(), "");
                let whose = if spec.computer.is_some() { "job" } else { "job's steps" };
                return Ok(Err((ErrorCode::SecretNotFound, format!("the {whose} name secrets the tenant does not have: {list} (SSM parameters below {path})"))));
            }
        }
    };
    let model = match &spec.computer {
        None => None,
        Some(goal) => {
            let settings = &app.config.computer;
            // Allowed when it was submitted; a deploy since may have removed it.
            let Some(prices) = settings.models.get(&goal.model.key()).copied() else {
                return Ok(Err((ErrorCode::InvalidJob, format!("model `{}` is no longer one this deployment allows", goal.model.key()))));
            };
            if goal.model.provider == names::goal::Provider::Bedrock {
                let key = app.models.bedrock_key(job, &goal.model.id, expires).await?;
                values.insert(names::goal::BEDROCK_KEY_SECRET.to_owned(), key);
            }
            let region = app.outputs.region.as_deref().unwrap_or("us-east-1");
            Some(names::manifest::ModelGrant { endpoint: settings.endpoint(goal.model.provider, region), prices })
        }
    };
    let secrets = if values.is_empty() {
        None
    } else {
        let version = app.outputs.put_secrets(&job.task_id, &values).await?;
        Some(app.outputs.presign_secrets(&job.task_id, version.as_deref(), expires).await?)
    };
    Ok(Ok(names::manifest::Manifest { version: names::manifest::VERSION, job: spec, uploads, secrets, model }))
}

/// How long a job's links last: its timeout, Fargate's provisioning and the grace.
fn link_lifetime(app: &App, job: &Job) -> Duration {
    Duration::from_secs(u64::from(job.options.timeout_seconds) + crate::PROVISIONING_ALLOWANCE_SECONDS as u64 + u64::from(app.config.timeout_grace_seconds))
}

/// Hands the job to a cold task: writes its [`manifest`] and returns the container's environment
/// overrides, which carry only a pre-signed GET of it and the job's id. `Ok(Err(_))` when the
/// job can never start: a secret that does not exist, or overrides that would not fit RunTask's
/// limit (a custom endpoint of absurd length, say).
pub async fn overrides(app: &App, job: &Job) -> Result<Result<Vec<(String, String)>, (ErrorCode, String)>, AwsError> {
    crate::identity::acting_as(crate::Function::Process, Box::pin(overrides_as_process(app, job))).await
}

async fn overrides_as_process(app: &App, job: &Job) -> Result<Result<Vec<(String, String)>, (ErrorCode, String)>, AwsError> {
    let manifest = match manifest(app, job).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    app.outputs.put_manifest(&job.task_id, &manifest).await?;
    let link = app.outputs.presign_manifest(&job.task_id, link_lifetime(app, job)).await?;
    let environment = vec![
        (names::env::agent::MANIFEST_URL.to_owned(), link),
        (names::env::agent::TASK_ID.to_owned(), job.task_id.as_str().to_owned()),
    ];
    let size = override_chars(&app.config.container_name, &environment);
    if size > OVERRIDE_LIMIT_CHARS {
        return Ok(Err((
            ErrorCode::OverrideTooLarge,
            format!("the job's task overrides would be {size} characters, over ECS's limit of {OVERRIDE_LIMIT_CHARS}"),
        )));
    }
    Ok(Ok(environment))
}

/// The size of the overrides as ECS counts them: the JSON of the `overrides` structure.
pub fn override_chars(container: &str, environment: &[(String, String)]) -> usize {
    let env: Vec<_> = environment.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    json!({"containerOverrides": [{"name": container, "environment": env}]}).to_string().chars().count()
}
