//! A job as a DynamoDB item, and back.

use super::*;

pub fn to_item(job: &Job) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::new();
    m.insert(t::TASK_ID.into(), s(job.task_id.as_str()));
    m.insert(t::TENANT_ID.into(), s(job.tenant_id.as_str()));
    m.insert(t::STATUS.into(), s(job.status.as_str()));
    match &job.target {
        Target::Query(q) => m.insert(t::QUERY.into(), s(q)),
        Target::Url(u) => m.insert(t::URL.into(), s(u)),
        Target::Script => None,
        Target::Goal(g) => m.insert(t::GOAL.into(), s(serde_json::to_string(g).unwrap_or_default())),
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
    opt_s(t::QUEUED_REASON, &job.queued_reason);
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
    if let Some(slot) = &job.warm_slot {
        m.insert(t::WARM_SLOT.into(), s(slot));
    }
    if let Some(w) = &job.webhook {
        m.insert(t::WEBHOOK_URL.into(), s(&w.url));
        m.insert(t::WEBHOOK_ROUND.into(), n(w.round));
    }
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
    let steps: Vec<names::step::Step> = match gs(t::STEPS) {
        Some(raw) => serde_json::from_str(&raw).ok()?,
        None => Vec::new(),
    };
    let target = match (gs(t::QUERY), gs(t::URL)) {
        (None, None) if gs(t::GOAL).is_some() => Target::Goal(Box::new(serde_json::from_str(&gs(t::GOAL)?).ok()?)),
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
        usage: {
            let gf = |k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<f64>().ok());
            gf(t::USAGE_RUN_SECONDS).map(|run_seconds| names::api::JobUsage {
                run_seconds,
                vcpu_seconds: gf(t::USAGE_VCPU_SECONDS).unwrap_or(0.0),
                gb_seconds: gf(t::USAGE_GB_SECONDS).unwrap_or(0.0),
                estimated_cost_usd: gf(t::USAGE_COST_USD).unwrap_or(0.0),
            })
        },
        error_step: gn(t::ERROR_STEP),
        attempts: gn(t::ATTEMPTS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
        idempotency_key: gs(t::IDEMPOTENCY_KEY),
        queued_reason: gs(t::QUEUED_REASON),
        request_hash: gs(t::REQUEST_HASH).unwrap_or_default(),
        deadline_at: gn(t::DEADLINE_AT),
        expires_at: gn(t::EXPIRES_AT).unwrap_or(0),
        warm_slot: gs(t::WARM_SLOT),
        cold_start: m.get(t::COLD_START).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        stopping: gs(t::STOPPING),
        webhook: gs(t::WEBHOOK_URL).map(|url| Webhook {
            url,
            state: gs(t::WEBHOOK_STATE).and_then(|v| names::webhook::DeliveryState::parse(&v)),
            round: gn(t::WEBHOOK_ROUND).unwrap_or(0),
            attempts: m.get(t::WEBHOOK_ATTEMPTS).and_then(|v| v.as_l().ok()).map(|l| l.iter().filter_map(attempt_from).collect()).unwrap_or_default(),
            round_at: gn(t::WEBHOOK_ROUND_AT),
        }),
    })
}

fn attempt_from(v: &AttributeValue) -> Option<Attempt> {
    let m = v.as_m().ok()?;
    let gn = |k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok());
    Some(Attempt {
        at: m.get("at")?.as_s().ok()?.clone(),
        attempt: gn("attempt")? as u32,
        status_code: gn("status_code").map(|c| c as u16),
        error: m.get("error").and_then(|v| v.as_s().ok()).cloned(),
        duration_ms: gn("duration_ms").unwrap_or(0),
    })
}

pub(super) fn attempt_item(a: &Attempt) -> AttributeValue {
    let mut m = HashMap::from([("at".to_string(), s(&a.at)), ("attempt".to_string(), n(a.attempt)), ("duration_ms".to_string(), n(a.duration_ms))]);
    if let Some(c) = a.status_code {
        m.insert("status_code".into(), n(c));
    }
    if let Some(e) = &a.error {
        m.insert("error".into(), s(e));
    }
    AttributeValue::M(m)
}
