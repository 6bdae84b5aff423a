//! Small, honest clients over the AWS calls the functions make: each method is one (or one
//! paginated) AWS API call, named by what it does for a job. IAM grants follow these calls
//! one-to-one (see the crate docs).

use crate::model::{Job, TaskId, TenantId, Target};
use aws_sdk_dynamodb::types::AttributeValue;
use names::job::JobOptions;
use names::{table as t, JobStatus, Output};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// An AWS call that failed: which call, the service's error code if any, and detail for the
/// log (never for the API caller).
#[derive(Debug, Clone)]
pub struct AwsError {
    pub op: &'static str,
    pub code: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed", self.op)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    fn from_sdk<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> AwsError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        let code = e.code().map(str::to_owned);
        let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
        AwsError { op, code, detail }
    }

    fn code_is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }

    /// Throttling is not a modeled error of any operation (each service spells it its own way), so
    /// it is told by the code.
    pub fn is_throttling(&self) -> bool {
        self.code_is(&["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"])
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The attributes a status change writes besides `status` and `updated_at`.
pub type Updates = Vec<(&'static str, AttributeValue)>;

pub fn attr_s(v: impl Into<String>) -> AttributeValue {
    s(v)
}
pub fn attr_n(v: impl ToString) -> AttributeValue {
    n(v)
}

/// The jobs table.
#[derive(Clone, Debug)]
pub struct JobStore {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub clock: crate::time::Clock,
}

/// One page of a tenant's jobs.
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub last_key: Option<HashMap<String, AttributeValue>>,
}

impl JobStore {
    /// `dynamodb:PutItem`, only if no job has this id. Returns false when one exists.
    pub async fn put_new(&self, job: &Job) -> Result<bool, AwsError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(job)))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", t::TASK_ID)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(AwsError::from_sdk("dynamodb:PutItem", e)),
        }
    }

    /// `dynamodb:GetItem` (strongly consistent).
    pub async fn get(&self, task_id: &TaskId) -> Result<Option<Job>, AwsError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:GetItem", e))?;
        Ok(r.item.as_ref().and_then(from_item))
    }

    /// `dynamodb:UpdateItem`: moves the job to `to` if its status is one of `to`'s allowed
    /// predecessors, writing `updates` with it. Returns false when the job is in another state
    /// (or does not exist): the write was refused and nothing changed. When it was applied, the
    /// job as written is returned.
    pub async fn transition(&self, task_id: &TaskId, to: JobStatus, updates: Updates) -> Result<Option<Job>, AwsError> {
        let from = to.allowed_predecessors();
        if from.is_empty() {
            return Ok(None);
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .expression_attribute_names("#st", t::STATUS)
            .expression_attribute_names("#ua", t::UPDATED_AT)
            .expression_attribute_values(":st", s(to.as_str()))
            .expression_attribute_values(":ua", s(crate::time::rfc3339(self.clock.now_millis())));
        let mut set = vec!["#st = :st".to_owned(), "#ua = :ua".to_owned()];
        for (i, (name, value)) in updates.into_iter().enumerate() {
            req = req
                .expression_attribute_names(format!("#u{i}"), name)
                .expression_attribute_values(format!(":u{i}"), value);
            set.push(format!("#u{i} = :u{i}"));
        }
        let mut preds = Vec::new();
        for (i, p) in from.iter().enumerate() {
            req = req.expression_attribute_values(format!(":p{i}"), s(p.as_str()));
            preds.push(format!(":p{i}"));
        }
        // A finished job leaves the index of unfinished ones.
        let remove = if to.is_terminal() {
            req = req.expression_attribute_names("#unf", t::UNFINISHED);
            " REMOVE #unf"
        } else {
            ""
        };
        let r = req
            .update_expression(format!("SET {}{remove}", set.join(", ")))
            .condition_expression(format!("#st IN ({})", preds.join(", ")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(r) => Ok(r.attributes.as_ref().and_then(from_item)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
        }
    }

    /// `dynamodb:Query` on the tenant index, newest first.
    pub async fn list_tenant(
        &self,
        tenant: &TenantId,
        status: Option<JobStatus>,
        limit: u32,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<JobPage, AwsError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(t::TENANT_INDEX)
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", t::TENANT_ID)
            .expression_attribute_values(":t", s(tenant.as_str()))
            .scan_index_forward(false)
            .limit(limit as i32)
            .set_exclusive_start_key(start);
        if let Some(st) = status {
            req = req
                .filter_expression("#st = :st")
                .expression_attribute_names("#st", t::STATUS)
                .expression_attribute_values(":st", s(st.as_str()));
        }
        let r = req.send().await.map_err(|e| AwsError::from_sdk("dynamodb:Query", e))?;
        Ok(JobPage {
            jobs: r.items().iter().filter_map(from_item).collect(),
            last_key: r.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// `dynamodb:Query` of the sparse index of unfinished jobs: those whose deadline is before
    /// `cutoff` (epoch seconds), oldest deadline first. Reads only what is in the index (the few
    /// unfinished jobs), never the table.
    pub async fn overdue(&self, cutoff: i64) -> Result<Vec<Overdue>, AwsError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(t::UNFINISHED_INDEX)
                .key_condition_expression("#u = :u AND #dl < :cut")
                .expression_attribute_names("#u", t::UNFINISHED)
                .expression_attribute_names("#dl", t::DEADLINE_AT)
                .expression_attribute_values(":u", s(t::UNFINISHED_PARTITION))
                .expression_attribute_values(":cut", n(cutoff))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("dynamodb:Query", e))?;
            out.extend(r.items().iter().filter_map(|m| {
                let task_id = TaskId::parse(m.get(t::TASK_ID)?.as_s().ok()?)?;
                let options = m.get(t::OPTIONS).and_then(|o| o.as_s().ok()).and_then(|o| serde_json::from_str::<JobOptions>(o).ok()).unwrap_or_default();
                Some(Overdue { task_id, timeout_seconds: options.timeout_seconds })
            }));
            match r.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }
}

/// An unfinished job past its deadline, as the sweep reads it from the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overdue {
    pub task_id: TaskId,
    pub timeout_seconds: u32,
}

pub fn to_item(job: &Job) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::new();
    m.insert(t::TASK_ID.into(), s(job.task_id.as_str()));
    m.insert(t::TENANT_ID.into(), s(job.tenant_id.as_str()));
    m.insert(t::STATUS.into(), s(job.status.as_str()));
    match &job.target {
        Target::Query(q) => m.insert(t::QUERY.into(), s(q)),
        Target::Url(u) => m.insert(t::URL.into(), s(u)),
        Target::Script => None,
    };
    if !job.steps.is_empty() {
        m.insert(t::STEPS.into(), s(serde_json::to_string(&job.steps).unwrap_or_default()));
    }
    m.insert(t::OPTIONS.into(), s(serde_json::to_string(&job.options).unwrap_or_default()));
    m.insert(t::CREATED_AT.into(), s(&job.created_at));
    m.insert(t::UPDATED_AT.into(), s(&job.updated_at));
    let mut opt_s = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), s(v));
        }
    };
    opt_s(t::STARTED_AT, &job.started_at);
    opt_s(t::FINISHED_AT, &job.finished_at);
    opt_s(t::ECS_TASK_ARN, &job.ecs_task_arn);
    opt_s(t::ECS_TASK_ID, &job.ecs_task_id);
    opt_s(t::ERROR_CODE, &job.error_code);
    opt_s(t::ERROR_MESSAGE, &job.error_message);
    opt_s(t::IDEMPOTENCY_KEY, &job.idempotency_key);
    if let Some(c) = job.exit_code {
        m.insert(t::EXIT_CODE.into(), n(c));
    }
    if let Some(step) = job.error_step {
        m.insert(t::ERROR_STEP.into(), n(step));
    }
    if let Some(d) = job.deadline_at {
        m.insert(t::DEADLINE_AT.into(), n(d));
    }
    m.insert(t::ATTEMPTS.into(), n(job.attempts));
    m.insert(t::REQUEST_HASH.into(), s(&job.request_hash));
    m.insert(t::EXPIRES_AT.into(), n(job.expires_at));
    if !job.status.is_terminal() {
        m.insert(t::UNFINISHED.into(), s(t::UNFINISHED_PARTITION));
    }
    m
}

/// Reads a stored job; an item that is not a well-formed job is skipped (None), never a panic.
pub fn from_item(m: &HashMap<String, AttributeValue>) -> Option<Job> {
    let gs = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    let gn = |k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    let steps: Vec<names::job::Step> = match gs(t::STEPS) {
        Some(raw) => serde_json::from_str(&raw).ok()?,
        None => Vec::new(),
    };
    let target = match (gs(t::QUERY), gs(t::URL)) {
        (Some(q), _) => Target::Query(q),
        (None, Some(u)) => Target::Url(u),
        (None, None) if !steps.is_empty() => Target::Script,
        (None, None) => return None,
    };
    Some(Job {
        task_id: TaskId::parse(&gs(t::TASK_ID)?)?,
        tenant_id: TenantId::new(gs(t::TENANT_ID)?),
        status: JobStatus::parse(&gs(t::STATUS)?)?,
        target,
        options: gs(t::OPTIONS)
            .and_then(|o| serde_json::from_str::<JobOptions>(&o).ok())
            .unwrap_or_default(),
        steps,
        created_at: gs(t::CREATED_AT)?,
        updated_at: gs(t::UPDATED_AT).unwrap_or_default(),
        started_at: gs(t::STARTED_AT),
        finished_at: gs(t::FINISHED_AT),
        ecs_task_arn: gs(t::ECS_TASK_ARN),
        ecs_task_id: gs(t::ECS_TASK_ID),
        error_code: gs(t::ERROR_CODE),
        error_message: gs(t::ERROR_MESSAGE),
        exit_code: gn(t::EXIT_CODE),
        error_step: gn(t::ERROR_STEP),
        attempts: gn(t::ATTEMPTS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
        idempotency_key: gs(t::IDEMPOTENCY_KEY),
        request_hash: gs(t::REQUEST_HASH).unwrap_or_default(),
        deadline_at: gn(t::DEADLINE_AT),
        expires_at: gn(t::EXPIRES_AT).unwrap_or(0),
    })
}

/// The job queue.
#[derive(Clone, Debug)]
pub struct JobQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl JobQueue {
    /// `sqs:SendMessage` of `{"task_id": ...}`.
    pub async fn send(&self, task_id: &TaskId) -> Result<(), AwsError> {
        let body = serde_json::json!({ names::queue::MESSAGE_TASK_ID: task_id.as_str() }).to_string();
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs:SendMessage", e))?;
        Ok(())
    }
}

/// The outputs bucket.
#[derive(Clone, Debug)]
pub struct Outputs {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// What signs the upload forms (the function's role), and where.
    pub credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    pub region: Option<String>,
}

impl Outputs {
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str) -> Outputs {
        Outputs {
            client: aws_sdk_s3::Client::new(sdk),
            bucket: bucket.to_owned(),
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(|r| r.to_string()),
        }
    }
}

impl Outputs {
    /// A pre-signed POST form for the job's file `name` (`screenshot.png`, `files/a.pdf`): its
    /// policy binds the key, the content type and at most `max_bytes` (signing needs
    /// `s3:PutObject` on the key; no AWS call is made). The SDK addresses the bucket as it
    /// addresses every request (virtual-hosted in AWS, path-style at an emulator), so the form's
    /// endpoint is read off a pre-signed PUT of the same key.
    pub async fn presign_post(
        &self,
        task_id: &TaskId,
        name: &str,
        content_type: &str,
        max_bytes: u64,
        expires: Duration,
    ) -> Result<names::manifest::Upload, AwsError> {
        use aws_sdk_s3::config::ProvideCredentials;
        let op = "s3:PutObject (POST form)";
        let err = |detail: String| AwsError { op, code: None, detail };
        let key = names::bucket::file_key(task_id.as_str(), name);
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk(op, e))?;
        let presigned = url::Url::parse(put.uri()).map_err(|e| err(e.to_string()))?;
        let endpoint = s3post::endpoint_of(&presigned, &key).map_err(|e| err(e.to_string()))?;
        let region = self.region.as_deref().ok_or_else(|| err("no region configured".into()))?;
        let provider = self.credentials.as_ref().ok_or_else(|| err("no credentials provider".into()))?;
        let creds = provider.provide_credentials().await.map_err(|e| err(format!("credentials: {e}")))?;
        let object = s3post::Object { endpoint, region, bucket: &self.bucket, key: &key, content_type, max_bytes };
        let credentials = s3post::Credentials {
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
        };
        s3post::form(&object, &credentials, std::time::SystemTime::now(), expires).map_err(|e| err(e.to_string()))
    }

    /// `s3:PutObject` of the job's manifest.
    pub async fn put_manifest(&self, task_id: &TaskId, manifest: &names::manifest::Manifest) -> Result<(), AwsError> {
        let body = serde_json::to_vec(manifest).map_err(|e| AwsError { op: "s3:PutObject", code: None, detail: e.to_string() })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(names::bucket::manifest_key(task_id.as_str()))
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", e))?;
        Ok(())
    }

    /// A pre-signed `GET` of the job's manifest (signing needs `s3:GetObject` on it).
    pub async fn presign_manifest(&self, task_id: &TaskId, expires: Duration) -> Result<String, AwsError> {
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(names::bucket::manifest_key(task_id.as_str()))
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }

    /// A pre-signed `GET` URL (signing needs `s3:GetObject` on the key; no AWS call is made). The
    /// captured HTML is served as a download: a page opened from the bucket's origin could run its
    /// scripts there.
    pub async fn presign_get(&self, task_id: &TaskId, output: Output, expires: Duration) -> Result<String, AwsError> {
        let cfg = presigning(expires)?;
        let mut req = self.client.get_object().bucket(&self.bucket).key(names::bucket::output_key(task_id.as_str(), output));
        if output == Output::Html {
            req = req.response_content_disposition(format!("attachment; filename=\"{}\"", output.file_name()));
        }
        let r = req
            .presigned(cfg)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }

    /// `s3:ListBucket` (ListObjectsV2 under the job's prefix): the outputs and the named files
    /// (`after-login.png`, from `files/`) that exist.
    pub async fn existing(&self, task_id: &TaskId) -> Result<Existing, AwsError> {
        let prefix = names::bucket::job_prefix(task_id.as_str());
        let r = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", e))?;
        let names: Vec<&str> = r.contents().iter().filter_map(|o| o.key()?.strip_prefix(&prefix)).collect();
        let mut outputs: Vec<Output> = names.iter().filter_map(|name| Output::ALL.into_iter().find(|o| o.file_name() == *name)).collect();
        outputs.sort();
        outputs.dedup();
        let mut files: Vec<String> = names.iter().filter_map(|n| n.strip_prefix(names::step::FILES_DIR)).map(str::to_owned).collect();
        files.sort();
        Ok(Existing { outputs, files })
    }

    /// A pre-signed `GET` of one of the job's named files (`files/<name>`).
    pub async fn presign_get_file(&self, task_id: &TaskId, name: &str, expires: Duration) -> Result<String, AwsError> {
        let key = names::bucket::file_key(task_id.as_str(), &format!("{}{name}", names::step::FILES_DIR));
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        Ok(r.uri().to_owned())
    }
}

impl Outputs {
    /// `s3:PutObject` of the job's secrets (`secrets/<task_id>.json`, a JSON object of name ->
    /// value), encrypted by the bucket's key like every object.
    pub async fn put_secrets(&self, task_id: &TaskId, secrets: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let body = serde_json::to_vec(secrets).map_err(|e| AwsError { op: "s3:PutObject", code: None, detail: e.to_string() })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(names::bucket::secrets_key(task_id.as_str()))
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", e))?;
        Ok(())
    }

    /// Pre-signed links to the job's secrets: a GET to read them, a DELETE to remove them once
    /// read (signing needs `s3:GetObject` and `s3:DeleteObject` on the key).
    pub async fn presign_secrets(&self, task_id: &TaskId, expires: Duration) -> Result<names::manifest::SecretLinks, AwsError> {
        let key = names::bucket::secrets_key(task_id.as_str());
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        let delete = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObject (presign)", e))?;
        Ok(names::manifest::SecretLinks { get: get.uri().to_owned(), delete: delete.uri().to_owned() })
    }

    /// `s3:DeleteObject` of the job's secrets (none there is fine).
    pub async fn delete_secrets(&self, task_id: &TaskId) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(names::bucket::secrets_key(task_id.as_str()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObject", e))?;
        Ok(())
    }

    /// The agent's `error.json` of the job, when it wrote one that reads as a report.
    pub async fn error_report(&self, task_id: &TaskId) -> Result<Option<AgentReport>, AwsError> {
        let key = names::bucket::output_key(task_id.as_str(), Output::Error);
        let body = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(o) => o.body.collect().await.map_err(|e| AwsError { op: "s3:GetObject", code: None, detail: e.to_string() })?.into_bytes(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(AwsError::from_sdk("s3:GetObject", e)),
        };
        // Written by the agent, which runs pages of the internet: read, never trusted (an
        // unknown code or a malformed file is as if there were none).
        Ok(serde_json::from_slice::<AgentReport>(&body).ok().filter(|r| names::job::ErrorCode::parse(&r.code).is_some()))
    }
}

/// What the agent reports in `error.json`: an error code of `names::job::ErrorCode`, a message
/// for the client, the failed step of a script.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct AgentReport {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub step: Option<u32>,
}

/// The tenants' secrets in SSM Parameter Store, below one path.
#[derive(Clone, Debug)]
pub struct TenantSecrets {
    pub client: aws_sdk_ssm::Client,
    /// `/<project>/<environment>/tenants/`.
    pub path: String,
}

impl TenantSecrets {
    /// `ssm:GetParameters` (with decryption) of the tenant's secrets `names`: their values by
    /// name, or the names that do not exist.
    pub async fn read(&self, tenant: &str, names: &[&str]) -> Result<Result<BTreeMap<String, String>, Vec<String>>, AwsError> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        // GetParameters takes at most 10 names.
        for chunk in names.chunks(10) {
            let params: Vec<String> = chunk.iter().map(|n| names::ssm::tenant_secret(&self.path, tenant, n)).collect();
            let r = self
                .client
                .get_parameters()
                .set_names(Some(params.clone()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ssm:GetParameters", e))?;
            for p in r.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    if let Some(i) = params.iter().position(|q| q == name) {
                        values.insert(chunk[i].to_owned(), value.to_owned());
                    }
                }
            }
            missing.extend(chunk.iter().filter(|n| !values.contains_key(**n)).map(|n| n.to_string()));
        }
        Ok(if missing.is_empty() { Ok(values) } else { Err(missing) })
    }
}

/// What a job has uploaded so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Existing {
    pub outputs: Vec<Output>,
    /// Named files of its steps, by file name (`invoice.pdf`).
    pub files: Vec<String>,
}

fn presigning(expires: Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig, AwsError> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
        .map_err(|e| AwsError { op: "presign", code: None, detail: e.to_string() })
}

/// What RunTask is asked to start.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub task_id: TaskId,
    pub tenant_id: TenantId,
    /// Container environment overrides: (name, value).
    pub environment: Vec<(String, String)>,
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
    /// definition's execution role). `clientToken` = task id, so a repeated call starts no
    /// second task.
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
            .client_token(req.task_id.as_str())
            .started_by(req.task_id.as_str())
            .tags(tag(names::ecs::TASK_ID_TAG, req.task_id.as_str()))
            .tags(tag(names::ecs::TENANT_TAG, req.tenant_id.as_str()))
            .network_configuration(network)
            .overrides(overrides)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs:RunTask", e))?;
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

/// One log event of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub message: String,
}

/// The agent's log group.
#[derive(Clone, Debug)]
pub struct AgentLogs {
    pub client: aws_sdk_cloudwatchlogs::Client,
    pub group: String,
}

/// A page of log events and CloudWatch's forward token.
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub forward_token: Option<String>,
}

impl AgentLogs {
    /// `logs:GetLogEvents`, oldest first from `start_ms`. A stream that does not exist yet is an
    /// empty page. `Err(None)` means CloudWatch rejected the token.
    pub async fn events(
        &self,
        stream: &str,
        start_ms: i64,
        limit: u32,
        token: Option<&str>,
    ) -> Result<LogPage, Option<AwsError>> {
        let r = self
            .client
            .get_log_events()
            .log_group_name(&self.group)
            .log_stream_name(stream)
            .start_time(start_ms)
            .start_from_head(true)
            .limit(limit as i32)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await;
        match r {
            Ok(r) => Ok(LogPage {
                events: r
                    .events()
                    .iter()
                    .map(|e| LogEvent { timestamp: e.timestamp().unwrap_or(0), message: e.message().unwrap_or("").to_owned() })
                    .collect(),
                forward_token: r.next_forward_token,
            }),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                Ok(LogPage { events: vec![], forward_token: None })
            }
            Err(e) if token.is_some() && e.as_service_error().is_some_and(|e| e.is_invalid_parameter_exception()) => Err(None),
            Err(e) => Err(Some(AwsError::from_sdk("logs:GetLogEvents", e))),
        }
    }
}
