//! The sparse index's reads: every tenant's counter, the jobs waiting for a running place, a
//! recount of the unfinished jobs; and the writes that correct a counter.

use super::*;

/// A tenant's counter as the index holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub tenant: String,
    pub queued: i64,
    pub running: i64,
    pub counts_at: i64,
    /// The limits written on it (absent: the defaults).
    pub max_running: Option<i64>,
    pub max_queued: Option<i64>,
    /// The parked set's entries (`<created_at>|<task id>`).
    pub parked: Vec<String>,
    /// The running places kept by jobs that ended while their task may still run
    /// (`<ended at, ms>|<task id>`, `names::table::STOPPING`).
    pub stopping: Vec<String>,
}

impl JobStore {
    /// `dynamodb:Query` of the sparse index's partition `partition`, every page.
    pub(crate) async fn query_unfinished(&self, partition: &str) -> Result<Vec<HashMap<String, AttributeValue>>, AwsError> {
        self.query_unfinished_before(partition, None).await
    }

    /// As [`Self::query_unfinished`], only the items due before `cutoff` (epoch seconds) when given:
    /// the index's sort key is the deadline.
    pub(crate) async fn query_unfinished_before(&self, partition: &str, cutoff: Option<i64>) -> Result<Vec<HashMap<String, AttributeValue>>, AwsError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let q = self.client.query().table_name(&self.table).index_name(t::UNFINISHED_INDEX).expression_attribute_names("#u", t::UNFINISHED);
            let q = match cutoff {
                Some(c) => q
                    .key_condition_expression("#u = :u AND #dl < :cut")
                    .expression_attribute_names("#dl", t::DEADLINE_AT)
                    .expression_attribute_values(":cut", n(c)),
                None => q.key_condition_expression("#u = :u"),
            };
            let r = q
                .expression_attribute_values(":u", s(partition))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("dynamodb:Query", e))?;
            out.extend(r.items().iter().cloned());
            match r.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Every tenant's own limits, by tenant: the items of the `limits` partition of the sparse
    /// index (`names::table::limits_key`, written by Terraform from `tenant_limits`).
    pub async fn limit_overrides(&self) -> Result<HashMap<String, crate::config::LimitOverride>, AwsError> {
        let num = |m: &HashMap<String, AttributeValue>, k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u32>().ok()).filter(|n| *n > 0);
        Ok(self
            .query_unfinished(t::LIMITS_PARTITION)
            .await?
            .iter()
            .filter_map(|m| {
                let tenant = m.get(t::TASK_ID)?.as_s().ok()?.strip_prefix(t::LIMITS_PREFIX)?.to_owned();
                Some((tenant, crate::config::LimitOverride { max_running: num(m, t::MAX_RUNNING), max_queued: num(m, t::MAX_QUEUED) }))
            })
            .collect())
    }

    /// Every tenant's counter (from the index: eventually consistent).
    pub async fn counters(&self) -> Result<Vec<Counter>, AwsError> {
        let num = |m: &HashMap<String, AttributeValue>, k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(self
            .query_unfinished(t::COUNTERS_PARTITION)
            .await?
            .iter()
            .filter_map(|m| {
                let tenant = m.get(t::TASK_ID)?.as_s().ok()?.strip_prefix(t::COUNTER_PREFIX)?.to_owned();
                let opt = |k: &str| m.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
                Some(Counter {
                    tenant,
                    queued: num(m, t::QUEUED_COUNT),
                    running: num(m, t::RUNNING_COUNT),
                    counts_at: num(m, t::COUNTS_AT),
                    max_running: opt(t::MAX_RUNNING),
                    max_queued: opt(t::MAX_QUEUED),
                    parked: parked_set(Some(m)),
                    stopping: string_set(Some(m), t::STOPPING),
                })
            })
            .collect())
    }

    /// The jobs waiting for a running place (QUEUED, `TENANT_LIMIT`), by tenant, oldest first (from
    /// the index).
    pub async fn waiting_at_limit(&self) -> Result<HashMap<String, Vec<TaskId>>, AwsError> {
        let mut waiting: HashMap<String, Vec<(String, TaskId)>> = HashMap::new();
        let limit = names::job::QueuedReason::TenantLimit.as_str();
        for m in self.query_unfinished(t::UNFINISHED_PARTITION).await? {
            let get = |k: &str| m.get(k).and_then(|v| v.as_s().ok());
            if get(t::STATUS).map(String::as_str) != Some(JobStatus::Queued.as_str()) || get(t::QUEUED_REASON).map(String::as_str) != Some(limit) {
                continue;
            }
            if let (Some(tenant), Some(id)) = (get(t::TENANT_ID), get(t::TASK_ID).and_then(|i| TaskId::parse(i))) {
                waiting.entry(tenant.clone()).or_default().push((get(t::CREATED_AT).cloned().unwrap_or_default(), id));
            }
        }
        Ok(waiting
            .into_iter()
            .map(|(tenant, mut jobs)| {
                jobs.sort();
                (tenant, jobs.into_iter().map(|(_, id)| id).collect())
            })
            .collect())
    }

    /// (queued, running) of every tenant with unfinished jobs, counted from the index.
    pub async fn unfinished_counts(&self) -> Result<HashMap<String, (i64, i64)>, AwsError> {
        let mut counts: HashMap<String, (i64, i64)> = HashMap::new();
        for m in self.query_unfinished(t::UNFINISHED_PARTITION).await? {
            let (Some(tenant), Some(status)) = (
                m.get(t::TENANT_ID).and_then(|v| v.as_s().ok()),
                m.get(t::STATUS).and_then(|v| v.as_s().ok()).and_then(|v| JobStatus::parse(v)),
            ) else {
                continue;
            };
            let (q, r) = counted(status);
            let c = counts.entry(tenant.clone()).or_default();
            c.0 += q;
            c.1 += r;
        }
        Ok(counts)
    }

    /// Writes a tenant's limits onto its counter (`dynamodb:UpdateItem`; creates the counter).
    pub async fn set_limits(&self, tenant: &str, max_running: u32, max_queued: u32) -> Result<(), AwsError> {
        self.counter_item(tenant, "#ca = if_not_exists(#ca, :zero), #mr = :mr, #mq = :mq")
            .expression_attribute_names("#ca", t::COUNTS_AT)
            .expression_attribute_names("#mr", t::MAX_RUNNING)
            .expression_attribute_names("#mq", t::MAX_QUEUED)
            .expression_attribute_values(":mr", n(max_running))
            .expression_attribute_values(":mq", n(max_queued))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    /// Sets a tenant's counts (`dynamodb:UpdateItem`), only if its counter has not changed since
    /// it read `seen` (`counts_at`; `None`: there was no counter). False when it had.
    pub async fn correct_counts(&self, tenant: &str, queued: i64, running: i64, seen: Option<i64>) -> Result<bool, AwsError> {
        let mut req = self
            .counter_item(tenant, "#ca = :now, #q = :q, #r = :r")
            .expression_attribute_names("#ca", t::COUNTS_AT)
            .expression_attribute_names("#q", t::QUEUED_COUNT)
            .expression_attribute_names("#r", t::RUNNING_COUNT)
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .expression_attribute_values(":q", n(queued))
            .expression_attribute_values(":r", n(running));
        req = match seen {
            Some(at) => req.condition_expression("#ca = :seen").expression_attribute_values(":seen", n(at)),
            None => req.condition_expression("attribute_not_exists(#k)").expression_attribute_names("#k", t::TASK_ID),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
        }
    }
}

/// An unfinished job past its deadline, as the sweep reads it from the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overdue {
    pub task_id: TaskId,
    pub timeout_seconds: u32,
}
