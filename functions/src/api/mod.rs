//! The HTTP API: a request of plain types in, a status and a JSON body out. The Lambda adapter
//! ([`crate::lambda`]) and the local gateway both call [`handle`].

pub mod error;
pub mod request;

use crate::aws::{attr_s, Admit, AwsError};
use crate::model::{Job, TaskId, TenantId};
use crate::time::{parse_rfc3339, rfc3339};
use crate::{App, Function};
pub use error::ApiError;
use names::{api, routes, table as t, JobStatus};
use request::Params;
use serde_json::Value;

/// An HTTP request as the API sees it.
#[derive(Clone, Debug, Default)]
pub struct ApiRequest {
    pub method: String,
    /// The concrete path, e.g. `/jobs/<uuid>/logs` (no stage prefix).
    pub path: String,
    /// Query-string parameters in order; a name may repeat.
    pub query: Vec<(String, String)>,
    /// Headers; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `requestContext.identity.apiKeyId`: the API key API Gateway checked.
    pub api_key_id: Option<String>,
    pub request_id: String,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u32>,
}

/// `Retry-After` of a submit over the tenant's queue limit: about the time a few jobs take to
/// start and free their places.
pub const QUEUE_FULL_RETRY_AFTER_SECONDS: u32 = 30;
pub const LOGS_LIMIT: std::ops::RangeInclusive<u32> = 1..=500;
pub const LOGS_DEFAULT_LIMIT: u32 = 200;
pub const LIST_LIMIT: std::ops::RangeInclusive<u32> = 1..=100;
pub const LIST_DEFAULT_LIMIT: u32 = 20;

/// The route templates of `names::routes` (`/jobs/{task_id}`: matchit's syntax too), matched.
fn router() -> &'static matchit::Router<&'static str> {
    static ROUTER: std::sync::OnceLock<matchit::Router<&'static str>> = std::sync::OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut r = matchit::Router::new();
        for route in routes::ALL {
            // Two methods share a path; the first insert of it is the one kept.
            let _ = r.insert(route.path, route.path);
        }
        r
    })
}

/// Resolves a concrete path to its route and the `task_id` segment.
pub fn route_of(method: &str, path: &str) -> Option<(routes::Route, Option<String>)> {
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let matched = router().at(path).ok()?;
    let template = *matched.value;
    let route = routes::ALL.into_iter().find(|r| r.path == template && r.method.eq_ignore_ascii_case(method))?;
    Some((route, matched.params.get(routes::TASK_ID_PARAM).map(str::to_owned)))
}

/// Answers one API request. Never panics on input; AWS failures become a 500 with the request id.
pub async fn handle(app: &App, req: &ApiRequest) -> ApiResponse {
    // The route's function makes the calls (API Gateway invokes that function for the route).
    let work = Box::pin(dispatch(app, req));
    let answer = match route_of(&req.method, &req.path) {
        Some((route, _)) => crate::identity::acting_as(route.function, work).await,
        None => work.await,
    };
    match answer {
        Ok(r) => r,
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(request_id = ?req.request_id, status = e.status(), "request failed");
            }
            ApiResponse { status: e.status(), body: e.body(), retry_after: e.retry_after() }
        }
    }
}

async fn dispatch(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (route, id) = route_of(&req.method, &req.path).ok_or(ApiError::NoRoute)?;
    if !app.serves.contains(&route.function) {
        return Err(ApiError::NoRoute);
    }
    let tenant = match req.api_key_id.as_deref() {
        Some(key) => app.key_tenants.tenant_of(&app.store, app.clock.now_millis(), key).await.map_err(|e| {
            tracing::error!(request_id = ?req.request_id, error = %e, "AWS call failed reading the API key's tenant");
            ApiError::Internal { request_id: req.request_id.clone() }
        })?,
        None => None,
    };
    let tenant = tenant.ok_or(ApiError::Forbidden("the API key is not assigned to a tenant"))?;
    let tenant_name = tenant.as_str().to_string();
    let internal = move |e: AwsError| {
        tracing::error!(request_id = ?req.request_id, tenant = tenant_name.as_str(), error = %e, "AWS call failed");
        ApiError::Internal { request_id: req.request_id.clone() }
    };
    let ctx = Ctx { app, tenant, internal: &internal };
    match route.function {
        Function::Submit if route.path == routes::JOB_WEBHOOK => redeliver(&ctx, &request::task_id(id.as_deref())?).await,
        Function::Submit => {
            let answer = submit(&ctx, req).await;
            // Refused (not failed: a 5xx is the service's error, not the caller's), by the
            // API's error code.
            if let Err(e) = &answer {
                if e.status() < 500 {
                    app.store.metrics.count(app.clock.now_millis(), names::metrics::JOBS_REFUSED, &[(names::metrics::dim::REASON, e.code())]);
                }
            }
            answer
        }
        Function::List if route.path == routes::USAGE => usage(&ctx, req).await,
        Function::List => list(&ctx, req).await,
        Function::Status => status(&ctx, &request::task_id(id.as_deref())?).await,
        Function::Cancel => cancel(&ctx, &request::task_id(id.as_deref())?).await,
        Function::Logs => logs(&ctx, req, &request::task_id(id.as_deref())?).await,
        Function::Process | Function::Reconcile | Function::Webhook => Err(ApiError::NoRoute),
    }
}

struct Ctx<'a> {
    app: &'a App,
    tenant: TenantId,
    internal: &'a (dyn Fn(AwsError) -> ApiError + Sync),
}

impl Ctx<'_> {
    /// The caller's job: another tenant's job is not found, exactly like a missing one.
    async fn job(&self, task_id: &TaskId) -> Result<Job, ApiError> {
        match self.app.store.get(task_id).await.map_err(self.internal)? {
            Some(job) if job.tenant_id == self.tenant => Ok(job),
            _ => Err(ApiError::NotFound),
        }
    }
}

/// A typed body (`names::api`) as the answer.
fn ok(status: u16, body: impl serde::Serialize) -> Result<ApiResponse, ApiError> {
    let body = serde_json::to_value(body).expect("API bodies serialize");
    Ok(ApiResponse { status, body, retry_after: None })
}

async fn submit(ctx: &Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let body = request::parse_submit(&req.body, req.header("content-type"), &ctx.app.config.computer)?;
    if let Some(url) = &body.request.webhook_url {
        crate::webhook::check_url(&ctx.app.config, url).map_err(|m| ApiError::invalid("webhook.url", m))?;
    }
    let key = request::idempotency_key(req.header(routes::IDEMPOTENCY_KEY_HEADER))?;
    if body.tenant_id.as_deref().is_some_and(|t| t != ctx.tenant.as_str()) {
        return Err(ApiError::Forbidden("`tenant_id` does not match the API key's tenant"));
    }
    let task_id = match &key {
        Some(k) => TaskId::for_idempotency_key(&ctx.tenant, k),
        None => TaskId::new_random(),
    };
    let now = ctx.app.clock.now_millis();
    let created_at = rfc3339(now);
    let job = Job {
        task_id: task_id.clone(),
        tenant_id: ctx.tenant.clone(),
        status: JobStatus::Queued,
        target: body.request.target.clone(),
        options: body.request.options,
        steps: body.request.steps.clone(),
        created_at: created_at.clone(),
        updated_at: created_at,
        started_at: None,
        finished_at: None,
        ecs_task_arn: None,
        ecs_task_id: None,
        error_code: None,
        error_message: None,
        error_step: None,
        exit_code: None,
        usage: None,
        attempts: 0,
        idempotency_key: key,
        queued_reason: None,
        request_hash: body.request.fingerprint(),
        deadline_at: Some(now / 1000 + crate::QUEUE_ALLOWANCE_SECONDS),
        expires_at: now / 1000 + i64::from(ctx.app.config.job_ttl_days) * 86_400,
        webhook: body.request.webhook_url.clone().map(|url| crate::model::Webhook { url, ..Default::default() }),
        warm_slot: None,
        cold_start: false,
        stopping: None,
    };
    let store = &ctx.app.store;
    let max_queued = ctx.app.config.limits.max_queued;
    let admitted = store.put_new(&job, max_queued).await.map_err(ctx.internal)?;
    if admitted == Admit::QueueFull {
        // The tenant's own limit, as its counter carries it.
        let counter = store.counter(ctx.tenant.as_str()).await.map_err(ctx.internal)?;
        let max_queued = counter.max_queued.map_or(max_queued, |m| m.clamp(0, u32::MAX.into()) as u32);
        return Err(ApiError::TenantQueueFull { max_queued, retry_after: QUEUE_FULL_RETRY_AFTER_SECONDS });
    }
    if admitted == Admit::Exists {
        // The Idempotency-Key was used before: same request -> the same job; else a conflict.
        let existing = store.get(&task_id).await.map_err(ctx.internal)?;
        return match existing {
            Some(e) if e.tenant_id == ctx.tenant && e.request_hash == job.request_hash => {
                // A submit that stored the job and died before queueing it leaves a job no message
                // will start: the replay queues it (a second message of a queued job is ignored
                // by the dispatcher). A job waiting for its tenant's limit has its message going
                // round already.
                if e.status == JobStatus::Queued && e.view().queued_reason == Some(names::job::QueuedReason::Dispatch) {
                    ctx.app.queue.send(&task_id).await.map_err(ctx.internal)?;
                }
                ok(202, accepted(&e))
            }
            Some(_) => Err(ApiError::IdempotencyConflict),
            None => Err((ctx.internal)(AwsError {
                op: "dynamodb:GetItem",
                code: None,
                detail: "idempotent job vanished".into(),
            })),
        };
    }
    if let Err(e) = ctx.app.queue.send(&task_id).await {
        // Never leave a job QUEUED that no message will ever start.
        let reason = vec![
            (t::ERROR_CODE, attr_s(names::job::ErrorCode::EnqueueFailed.as_str())),
            (t::ERROR_MESSAGE, attr_s("the job could not be queued; submit it again")),
            (t::FINISHED_AT, attr_s(rfc3339(ctx.app.clock.now_millis()))),
        ];
        if let Err(e2) = store.transition(&task_id, JobStatus::Failed, reason).await {
            tracing::error!(task_id = task_id.as_str(), error = %e2, "could not mark unqueued job failed");
        }
        return Err((ctx.internal)(e));
    }
    ctx.app.store.metrics.count(ctx.app.clock.now_millis(), names::metrics::JOBS_SUBMITTED, &[]);
    ok(202, accepted(&job))
}

fn accepted(job: &Job) -> api::Accepted {
    api::Accepted { task_id: job.task_id.as_str().to_owned(), status: job.status, created_at: job.created_at.clone() }
}

async fn status(ctx: &Ctx<'_>, task_id: &TaskId) -> Result<ApiResponse, ApiError> {
    let job = ctx.job(task_id).await?;
    ok(200, crate::view::status_body(ctx.app, &job).await.map_err(ctx.internal)?)
}


/// `POST /jobs/{id}/webhook`: sends a finished job's event again.
async fn redeliver(ctx: &Ctx<'_>, task_id: &TaskId) -> Result<ApiResponse, ApiError> {
    let job = ctx.job(task_id).await?;
    if job.webhook.is_none() {
        return Err(ApiError::NoWebhook);
    }
    if !job.status.is_terminal() {
        return Err(ApiError::JobNotFinished(job.status));
    }
    // Refused from the job as read, without a write (a tenant redelivering at its rate limit is
    // mostly refused); the write's condition decides the rest.
    if let Some(retry_after) = job.round_in_flight(ctx.app.clock.now_secs()) {
        return Err(ApiError::WebhookInFlight { retry_after });
    }
    match crate::webhook::redeliver(ctx.app, task_id).await.map_err(ctx.internal)? {
        crate::aws::NewRound::Started(job) => match job.view().webhook {
            Some(webhook) => ok(202, api::Redelivery { task_id: task_id.as_str().to_owned(), status: job.status, webhook }),
            None => Err(ApiError::NoWebhook),
        },
        crate::aws::NewRound::InFlight { retry_after } => Err(ApiError::WebhookInFlight { retry_after }),
        // It lost its webhook or its end in between: it cannot have.
        crate::aws::NewRound::NotEligible => Err(ApiError::NoWebhook),
    }
}

async fn cancel(ctx: &Ctx<'_>, task_id: &TaskId) -> Result<ApiResponse, ApiError> {
    // A concurrent status change can refuse the conditional write; read again and retry.
    for _ in 0..3 {
        let job = ctx.job(task_id).await?;
        if job.status.is_terminal() {
            return Err(ApiError::JobFinished(job.status));
        }
        let updates = vec![
            (t::FINISHED_AT, attr_s(rfc3339(ctx.app.clock.now_millis()))),
            (t::ERROR_CODE, attr_s(names::job::ErrorCode::Cancelled.as_str())),
            (t::ERROR_MESSAGE, attr_s("cancelled by the API caller")),
        ];
        let Some(cancelled) =
            ctx.app.store.end_while_task_may_run(task_id, JobStatus::Cancelled, updates).await.map_err(ctx.internal)?
        else {
            continue;
        };
        // The write returned the job as stored, so a task ARN recorded meanwhile is seen here;
        // a task started after it is stopped by the process function, which finds CANCELLED.
        // A job handed to a slot by a dispatch that had not yet recorded the slot's task runs (or
        // is about to run) on the slot's.
        let slot_task = match (&cancelled.ecs_task_arn, &cancelled.warm_slot) {
            (None, Some(slot)) => ctx.app.store.slot(slot).await.map_err(ctx.internal)?.filter(|s| s.claimed_by.as_deref() == Some(task_id.as_str())).and_then(|s| s.task_arn),
            _ => None,
        };
        if let Some(arn) = cancelled.ecs_task_arn.as_ref().or(slot_task.as_ref()) {
            if let Err(e) = ctx.app.tasks.stop(arn, "job cancelled").await {
                // The job is cancelled either way; the agent also exits by its own deadline.
                tracing::error!(task_id = task_id.as_str(), tenant = ctx.tenant.as_str(), error = %e, "could not stop cancelled task");
            }
        }
        return ok(200, cancelled.view());
    }
    Err((ctx.internal)(AwsError { op: "cancel", code: None, detail: "status kept changing".into() }))
}

async fn logs(ctx: &Ctx<'_>, req: &ApiRequest, task_id: &TaskId) -> Result<ApiResponse, ApiError> {
    let params = Params::new(&req.query, &["limit", "next_token"])?;
    let limit = params.limit(LOGS_LIMIT, LOGS_DEFAULT_LIMIT)?;
    let token = params.next_token()?;
    let job = ctx.job(task_id).await?;
    let stream = job.ecs_task_id.as_deref().map(names::logs::agent_stream);
    let mut body = api::LogPage {
        task_id: task_id.as_str().to_owned(),
        ecs_task_id: job.ecs_task_id.clone(),
        log_group: ctx.app.logs.group.clone(),
        log_stream: stream.clone(),
        status: job.status,
        events: Vec::new(),
        count: 0,
        next_token: None,
    };
    let Some(stream) = stream else { return ok(200, body) };
    let start = parse_rfc3339(&job.created_at).unwrap_or(0);
    let page = match ctx.app.logs.events(&stream, start, limit, token).await {
        Ok(p) => p,
        Err(None) => return Err(ApiError::invalid("next_token", "`next_token` is not a token this API issued")),
        Err(Some(e)) => return Err((ctx.internal)(e)),
    };
    body.events = page
        .events
        .iter()
        .map(|e| api::LogEvent { timestamp: e.timestamp, time: rfc3339(e.timestamp), message: e.message.clone() })
        .collect();
    body.count = body.events.len();
    // CloudWatch hands back the token it was given at the end of the stream: stop there.
    body.next_token = page.forward_token.filter(|n| Some(n.as_str()) != token && !body.events.is_empty());
    ok(200, body)
}

async fn list(ctx: &Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let params = Params::new(&req.query, &["status", "limit", "next_token"])?;
    let status = match params.get("status")? {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid("status", format!("`status` must be one of {}", all.join(", ")))
        })?),
    };
    let limit = params.limit(LIST_LIMIT, LIST_DEFAULT_LIMIT)?;
    let start = match params.next_token()? {
        None => None,
        Some(tok) => Some(list_token::decode(tok, &ctx.tenant).ok_or_else(|| {
            ApiError::invalid("next_token", "`next_token` is not a token this API issued")
        })?),
    };
    let page = ctx.app.store.list_tenant(&ctx.tenant, status, limit, start).await.map_err(ctx.internal)?;
    let jobs: Vec<api::JobView> = page.jobs.iter().map(Job::view).collect();
    ok(200, api::JobList { count: jobs.len(), jobs, next_token: page.last_key.as_ref().and_then(list_token::encode) })
}

/// `GET /usage`: the caller's jobs, running time and estimated cost by day, from its usage items
/// (one a day, added to as each job ends), never from its jobs.
async fn usage(ctx: &Ctx<'_>, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    use names::defaults::{USAGE_DEFAULT_DAYS, USAGE_MAX_DAYS};
    let params = Params::new(&req.query, &["from", "to"])?;
    let day = |name: &str| -> Result<Option<time::Date>, ApiError> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        match params.get(name)? {
            None => Ok(None),
            Some(v) => time::Date::parse(v, &format).map(Some).map_err(|_| ApiError::invalid(name, format!("`{name}` must be a day, YYYY-MM-DD"))),
        }
    };
    let today = time::OffsetDateTime::from_unix_timestamp(ctx.app.clock.now_secs()).map(|t| t.date()).unwrap_or(time::Date::MIN);
    let to = day("to")?.unwrap_or(today);
    let from = day("from")?.unwrap_or(to - time::Duration::days(USAGE_DEFAULT_DAYS - 1));
    if from > to {
        return Err(ApiError::invalid("from", "`from` is after `to`"));
    }
    if (to - from).whole_days() >= USAGE_MAX_DAYS {
        return Err(ApiError::invalid("to", format!("at most {USAGE_MAX_DAYS} days a request")));
    }
    let show = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let mut days = Vec::new();
    let mut d = from;
    while d <= to {
        days.push(show(d));
        d = d.next_day().unwrap_or(time::Date::MAX);
        if d == time::Date::MAX {
            break;
        }
    }
    let found = ctx.app.store.usage(ctx.tenant.as_str(), &days).await.map_err(ctx.internal)?;
    let mut total = api::UsageTotals::default();
    let days: Vec<api::UsageDay> = found
        .into_iter()
        .map(|(day, usage)| {
            total.add(&usage);
            api::UsageDay { day, usage }
        })
        .collect();
    ok(200, api::Usage { tenant_id: ctx.tenant.as_str().to_owned(), from: show(from), to: show(to), days, total })
}

/// The list route's `next_token`: DynamoDB's last evaluated key of the tenant index, as hex of
/// compact JSON. Decoding checks it names the caller's tenant, so a token cannot read others' jobs.
mod list_token {
    use crate::model::{TaskId, TenantId};
    use aws_sdk_dynamodb::types::AttributeValue;
    use names::table as t;
    use std::collections::HashMap;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// The last key of a page as an opaque, URL-safe token (base64url of a JSON triple).
    pub fn encode(key: &HashMap<String, AttributeValue>) -> Option<String> {
        let get = |k: &str| key.get(k).and_then(|v| v.as_s().ok()).cloned();
        let v = serde_json::json!([get(t::TASK_ID)?, get(t::TENANT_ID)?, get(t::CREATED_AT)?]);
        Some(URL_SAFE_NO_PAD.encode(v.to_string()))
    }

    /// The key back, only for the tenant it was made for and only when well-formed.
    pub fn decode(token: &str, tenant: &TenantId) -> Option<HashMap<String, AttributeValue>> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (task_id, tenant_id, created_at): (String, String, String) = serde_json::from_slice(&bytes).ok()?;
        if tenant_id != tenant.as_str() || TaskId::parse(&task_id).is_none() || crate::time::parse_rfc3339(&created_at).is_none() {
            return None;
        }
        Some(HashMap::from([
            (t::TASK_ID.to_owned(), AttributeValue::S(task_id)),
            (t::TENANT_ID.to_owned(), AttributeValue::S(tenant_id)),
            (t::CREATED_AT.to_owned(), AttributeValue::S(created_at)),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve() {
        let id = "6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40";
        assert_eq!(route_of("POST", "/jobs").unwrap().0.function, Function::Submit);
        assert_eq!(route_of("GET", "/jobs/").unwrap().0.function, Function::List);
        let (r, got) = route_of("GET", &format!("/jobs/{id}/logs")).unwrap();
        assert_eq!((r.function, got.as_deref()), (Function::Logs, Some(id)));
        assert_eq!(route_of("DELETE", &format!("/jobs/{id}")).unwrap().0.function, Function::Cancel);
        assert!(route_of("PUT", "/jobs").is_none());
        assert!(route_of("GET", "/other").is_none());
        assert!(route_of("GET", "/jobs/a/b/c").is_none());
        assert!(route_of("GET", &format!("/jobs/{id}/other")).is_none());
        assert!(route_of("GET", "/").is_none());
    }

    #[test]
    fn list_tokens_round_trip_and_stay_with_their_tenant() {
        let mut key = std::collections::HashMap::new();
        key.insert(t::TASK_ID.to_owned(), attr_s("6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40"));
        key.insert(t::TENANT_ID.to_owned(), attr_s("a"));
        key.insert(t::CREATED_AT.to_owned(), attr_s("2024-05-01T12:00:00.000Z"));
        let tok = list_token::encode(&key).unwrap();
        assert_eq!(list_token::decode(&tok, &TenantId::new("a")), Some(key));
        assert_eq!(list_token::decode(&tok, &TenantId::new("b")), None);
        assert_eq!(list_token::decode("zz", &TenantId::new("a")), None);
        assert_eq!(list_token::decode("abc", &TenantId::new("a")), None);
    }
}
