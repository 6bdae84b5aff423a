//! The jobs table: a job's submit, its moves between statuses with its tenant's counts, and the
//! tenant's parked jobs.

use super::*;

/// The jobs table.
#[derive(Clone, Debug)]
pub struct JobStore {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    pub clock: crate::time::Clock,
    /// Where a job that finishes with a webhook is announced (`sqs:SendMessage`).
    pub webhooks: Option<WebhookQueue>,
    /// Where a parked job is woken when its tenant's running place frees (`sqs:SendMessage`).
    pub jobs: Option<JobQueue>,
    /// Seconds before the sweep queues a finished job's webhook event its finishing function did
    /// not (`Config::recovery_grace_seconds`).
    pub announce_grace_seconds: i64,
    /// Where a job's start and end are counted.
    pub metrics: crate::metrics::Metrics,
    /// What a job's task costs: its end adds its usage to its tenant's day.
    pub pricing: crate::config::Pricing,
    /// Seconds a round being sent may go without progress past its next attempt's due time before
    /// the sweep ends it FAILED (`Config::webhook_stall_seconds`).
    pub webhook_stall_seconds: i64,
}

/// What a move's write did.
enum Written {
    /// Written: the job as it now is.
    Yes(Option<Job>),
    /// Written by a transaction, which answers no attributes: to be read back.
    Transacted,
    /// The job was not as read (another move got there first): read it again.
    JobChanged,
}

/// Which of a move's transaction items refused it: (the job's condition, the counter's).
fn cancelled_by(e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>) -> Option<(bool, bool)> {
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) = e.as_service_error()? else { return None };
    let failed = |i: usize| c.cancellation_reasons().get(i).and_then(|r| r.code()).is_some_and(|code| code == "ConditionalCheckFailed");
    Some((failed(0), failed(1)))
}

/// A parked job's entry on its tenant's counter: the oldest sorts first.
fn parked_entry(job: &Job) -> String {
    format!("{}|{}", job.created_at, job.task_id.as_str())
}

/// A counter item's parked set, oldest first.
pub(super) fn parked_set(item: Option<&HashMap<String, AttributeValue>>) -> Vec<String> {
    string_set(item, t::PARKED)
}

/// The string set `attr` of an item, sorted (empty when it has none).
pub(super) fn string_set(item: Option<&HashMap<String, AttributeValue>>, attr: &str) -> Vec<String> {
    let mut set = item.and_then(|i| i.get(attr)).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    set.sort();
    set
}

/// The job of a `stopping` entry (`<ended at, ms>|<task id>`) and when it ended (epoch ms).
pub fn stopping_entry(entry: &str) -> Option<(i64, TaskId)> {
    let (at, id) = entry.split_once('|')?;
    Some((at.parse().ok()?, TaskId::parse(id)?))
}

/// The job of a parked entry.
fn parked_job(entry: &str) -> Option<TaskId> {
    entry.rsplit('|').next().and_then(TaskId::parse)
}

/// Seconds after a job finished before the sweep queues a webhook event its finishing function
/// could not (the finishing function queues it at once; this is for a crash in between).
pub const ANNOUNCE_GRACE_SECONDS: i64 = names::pool::RECOVERY_GRACE_SECONDS;

/// One page of a tenant's jobs.
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub last_key: Option<HashMap<String, AttributeValue>>,
}

impl JobStore {
    /// Records a new job, counting it among its tenant's queued ones, in one transaction
    /// (`dynamodb:TransactWriteItems`: PutItem of the job, only if no job has this id, and
    /// UpdateItem of the tenant's counter, only while it has fewer than its limit queued;
    /// `max_queued` when the counter carries none). Its token, made by the SDK and shared by its
    /// retries, makes a retry of a transaction whose answer was lost an answer, not "exists":
    /// before, the job and its count were two writes, and a lost answer of the PutItem gave the
    /// place back for a job that was created (the count one low; found by the fault-injection
    /// test, seed 1002).
    pub async fn put_new(&self, job: &Job, max_queued: u32) -> Result<Admit, AwsError> {
        let tenant = job.tenant_id.as_str();
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(job)))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", t::TASK_ID)
            .build()
            .map_err(|e| AwsError { op: "dynamodb:TransactWriteItems", code: None, detail: e.to_string() })?;
        let count = self.count_update_limited(tenant, 1, 0, Some(("#q", t::MAX_QUEUED, max_queued)), None)?;
        let r = self
            .client
            .transact_write_items()
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        match r {
            Ok(_) => Ok(Admit::Created),
            Err(e) => match cancelled_by(&e) {
                Some((true, _)) => Ok(Admit::Exists),
                Some((false, true)) => Ok(Admit::QueueFull),
                _ => Err(AwsError::from_sdk("dynamodb:TransactWriteItems", e)),
            },
        }
    }

    /// An UpdateItem of `tenant`'s counter that keeps it in the counters' partition of the sparse
    /// index and then sets `set` (which may go on with `ADD`).
    pub(super) fn counter_item(&self, tenant: &str, set: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(t::counter_key(tenant)))
            .update_expression(format!("SET #unf = :cp, #dl = if_not_exists(#dl, :zero), {set}"))
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_values(":cp", s(t::COUNTERS_PARTITION))
            .expression_attribute_values(":zero", n(0))
    }

    /// The counter change of a move, as one update of a transaction: `tenant`'s counts by
    /// (`queued`, `running`); with `max_running`, only while the running count is below the
    /// tenant's limit (the counter's, else `max_running`); with `stopping`, that entry joins the
    /// set of places kept for tasks that may still run.
    /// The job's end added to its tenant's usage of the day (`names::table::usage_key`): one job
    /// of its final status, the time its task ran for it and what that used. That time is the
    /// task's billed time as its stop event reports it (from its image pull to its stop; for a warm
    /// slot's job, from when the slot took it), else (a cancel, a timeout, an event without
    /// times) from RUNNING to now.
    fn usage_update(
        &self,
        job: &Job,
        to: JobStatus,
        task_window: Option<(i64, Option<i64>)>,
        model: Option<&names::api::ModelUsage>,
    ) -> Result<(aws_sdk_dynamodb::types::Update, names::api::JobUsage), AwsError> {
        let now = self.clock.now_millis();
        let day = crate::time::rfc3339(now).get(..10).unwrap_or_default().to_owned();
        let started = job.started_at.as_deref().and_then(crate::time::parse_rfc3339);
        let (from, until) = match task_window {
            Some((pull, stop)) if job.warm_slot.is_some() => (started.map(|s| s.max(pull)), stop.unwrap_or(now)),
            Some((pull, stop)) => (Some(pull), stop.unwrap_or(now)),
            None => (started, now),
        };
        let seconds = from.map_or(0.0, |s| (until - s).max(0) as f64 / 1000.0);
        let (vcpu, gb, cost) = self.pricing.of(seconds);
        let status = match to {
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            _ => "cancelled",
        };
        let figures = names::api::JobUsage { run_seconds: seconds, vcpu_seconds: vcpu, gb_seconds: gb, estimated_cost_usd: cost };
        let (model_in, model_out, model_cost) = model.map_or((0, 0, 0.0), |m| (m.all_input_tokens(), m.output_tokens, m.estimated_cost_usd.0));
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(t::TASK_ID, s(t::usage_key(job.tenant_id.as_str(), &day)))
            .update_expression("SET #day = :day ADD #jobs :one, #st :one, #run :run, #vcpu :vcpu, #gb :gb, #cost :cost, #min :min, #mout :mout, #mcost :mcost")
            .expression_attribute_names("#day", t::USAGE_DAY)
            .expression_attribute_names("#jobs", t::USAGE_JOBS)
            .expression_attribute_names("#st", status)
            .expression_attribute_names("#run", t::USAGE_RUN_SECONDS)
            .expression_attribute_names("#vcpu", t::USAGE_VCPU_SECONDS)
            .expression_attribute_names("#gb", t::USAGE_GB_SECONDS)
            .expression_attribute_names("#cost", t::USAGE_COST_USD)
            .expression_attribute_names("#min", t::USAGE_MODEL_INPUT_TOKENS)
            .expression_attribute_names("#mout", t::USAGE_MODEL_OUTPUT_TOKENS)
            .expression_attribute_names("#mcost", t::USAGE_MODEL_COST_USD)
            .expression_attribute_values(":day", s(&day))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":run", decimal(seconds))
            .expression_attribute_values(":vcpu", decimal(vcpu))
            .expression_attribute_values(":gb", decimal(gb))
            .expression_attribute_values(":cost", decimal(cost))
            .expression_attribute_values(":min", n(model_in))
            .expression_attribute_values(":mout", n(model_out))
            .expression_attribute_values(":mcost", decimal(model_cost))
            .build()
            .map_err(|e| AwsError { op: "dynamodb:TransactWriteItems", code: None, detail: e.to_string() })?;
        Ok((update, figures))
    }

    fn count_update(&self, tenant: &str, queued: i64, running: i64, max_running: Option<u32>, stopping: Option<&str>) -> Result<aws_sdk_dynamodb::types::Update, AwsError> {
        self.count_update_limited(tenant, queued, running, max_running.map(|m| ("#r", t::MAX_RUNNING, m)), stopping)
    }

    /// As [`count_update`](Self::count_update), with `limit` = (the count's placeholder, `#q` or
    /// `#r`; the limit's attribute on the counter; the default when it carries none).
    fn count_update_limited(&self, tenant: &str, queued: i64, running: i64, limit: Option<(&str, &str, u32)>, stopping: Option<&str>) -> Result<aws_sdk_dynamodb::types::Update, AwsError> {
        let add_stopping = if stopping.is_some() { ", #stp :stp" } else { "" };
        let mut u = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(t::TASK_ID, s(t::counter_key(tenant)))
            .update_expression(format!("SET #unf = :cp, #dl = if_not_exists(#dl, :zero), #ca = :now ADD #q :dq, #r :dr{add_stopping}"))
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_names("#ca", t::COUNTS_AT)
            .expression_attribute_names("#q", t::QUEUED_COUNT)
            .expression_attribute_names("#r", t::RUNNING_COUNT)
            .expression_attribute_values(":cp", s(t::COUNTERS_PARTITION))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .expression_attribute_values(":dq", n(queued))
            .expression_attribute_values(":dr", n(running));
        if let Some(entry) = stopping {
            u = u.expression_attribute_names("#stp", t::STOPPING).expression_attribute_values(":stp", AttributeValue::Ss(vec![entry.to_owned()]));
        }
        if let Some((count, limit, max)) = limit {
            u = u
                .condition_expression(format!("attribute_not_exists({count}) OR (attribute_not_exists(#lim) AND {count} < :max) OR {count} < #lim"))
                .expression_attribute_names("#lim", limit)
                .expression_attribute_values(":max", n(max));
        }
        u.build().map_err(|e| AwsError { op: "dynamodb:TransactWriteItems", code: None, detail: e.to_string() })
    }

    /// Parks a job whose tenant is at its running limit: its entry (`<created_at>|<task id>`, so
    /// the oldest sorts first) joins the set on the tenant's counter (`dynamodb:UpdateItem`;
    /// adding an entry twice is one entry).
    pub async fn park(&self, job: &Job) -> Result<(), AwsError> {
        self.counter_item(job.tenant_id.as_str(), "#ca = if_not_exists(#ca, :now) ADD #p :entry")
            .expression_attribute_names("#ca", t::COUNTS_AT)
            .expression_attribute_names("#p", t::PARKED)
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .expression_attribute_values(":entry", AttributeValue::Ss(vec![parked_entry(job)]))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    /// Wakes the tenant's oldest parked job that still waits: takes its entry off the set (only if
    /// it is still there: of two wakers, one wins) and sends its message at once. A crash between the two
    /// leaves the job to its own later message. True when a job was woken.
    pub async fn wake_parked(&self, tenant: &str) -> Result<bool, AwsError> {
        let Some(queue) = &self.jobs else { return Ok(false) };
        let item = self.item(&t::counter_key(tenant)).await?;
        let parked = parked_set(item.as_ref());
        for entry in &parked {
            let Some(task_id) = parked_job(entry) else { continue };
            // An entry of a job that no longer waits (cancelled while parked, or started by its own
            // message) is dropped, and the place goes to the next one.
            if self.unpark(tenant, entry).await? && self.get(&task_id).await?.is_some_and(|j| j.status == JobStatus::Queued) {
                queue.send_wake(&task_id).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Gives back the running place a job kept when it ended while its task might still run
    /// ([`end_while_task_may_run`](Self::end_while_task_may_run)), now that the task has stopped:
    /// its entry leaves the tenant's `stopping` set and the running count drops, in one write
    /// (`dynamodb:UpdateItem`, only while the entry is there: the task's event, a retry of it
    /// and the sweep may all try; one gives it back), then the tenant's oldest parked job is
    /// woken. True for the one that gave it back.
    pub async fn give_back_place(&self, job: &Job) -> Result<bool, AwsError> {
        match (&job.stopping, job.status.is_terminal()) {
            (Some(entry), true) => self.give_back_entry(job.tenant_id.as_str(), entry).await,
            _ => Ok(false),
        }
    }

    /// As [`give_back_place`](Self::give_back_place), by the tenant and the entry.
    pub async fn give_back_entry(&self, tenant: &str, entry: &str) -> Result<bool, AwsError> {
        let r = self
            .counter_item(tenant, "#ca = :now ADD #r :minus DELETE #stp :entry")
            .condition_expression("contains(#stp, :one)")
            .expression_attribute_names("#ca", t::COUNTS_AT)
            .expression_attribute_names("#r", t::RUNNING_COUNT)
            .expression_attribute_names("#stp", t::STOPPING)
            .expression_attribute_values(":now", n(self.clock.now_millis()))
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":entry", AttributeValue::Ss(vec![entry.to_owned()]))
            .expression_attribute_values(":one", s(entry))
            .send()
            .await;
        if !written(r)? {
            return Ok(false);
        }
        if let Err(e) = self.wake_parked(tenant).await {
            tracing::warn!(tenant, error = %e, "could not wake a parked job; its own message will");
        }
        Ok(true)
    }

    /// Drops the entries of jobs that no longer wait from the tenant's parked set (the sweep's
    /// part): a job started by its own message leaves its entry until a later job of its tenant
    /// ends, and a crash of that end's waking (after its job's end was written) leaves it for
    /// good. The number dropped.
    pub async fn prune_parked(&self, tenant: &str, parked: &[String]) -> Result<usize, AwsError> {
        let mut dropped = 0;
        for entry in parked {
            let waits = match parked_job(entry) {
                Some(task_id) => self.get(&task_id).await?.is_some_and(|j| j.status == JobStatus::Queued),
                None => false,
            };
            if !waits && self.unpark(tenant, entry).await? {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Takes one entry off the tenant's parked set (`dynamodb:UpdateItem`, only while it is
    /// there: of two takers, one wins). True for the winner.
    async fn unpark(&self, tenant: &str, entry: &str) -> Result<bool, AwsError> {
        self.take_from_set(&t::counter_key(tenant), entry).await
    }

    /// Takes `entry` off the parked set of the item `key` (`dynamodb:UpdateItem`, only while it is
    /// there: of two takers, one wins). True for the winner.
    pub(super) async fn take_from_set(&self, key: &str, entry: &str) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(key))
            .update_expression("DELETE #p :entry")
            .condition_expression("contains(#p, :one)")
            .expression_attribute_names("#p", t::PARKED)
            .expression_attribute_values(":entry", AttributeValue::Ss(vec![entry.to_owned()]))
            .expression_attribute_values(":one", s(entry))
            .send()
            .await;
        written(r)
    }

    /// The tenant of an API key: its item `apikey#<id>` (`dynamodb:GetItem`), None when it has
    /// none.
    pub async fn key_tenant(&self, api_key_id: &str) -> Result<Option<TenantId>, AwsError> {
        let item = self.item(&t::api_key_key(api_key_id)).await?;
        Ok(item.as_ref().and_then(|i| i.get(t::KEY_TENANT)).and_then(|v| v.as_s().ok()).filter(|s| !s.is_empty()).map(TenantId::new))
    }

    /// A tenant's counter as the table holds it (consistent; zeros when there is none).
    pub async fn counter(&self, tenant: &str) -> Result<Counter, AwsError> {
        let item = self.item(&t::counter_key(tenant)).await?;
        let get = |k: &str| item.as_ref().and_then(|i| i.get(k)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
        Ok(Counter {
            tenant: tenant.to_owned(),
            queued: get(t::QUEUED_COUNT).unwrap_or(0),
            running: get(t::RUNNING_COUNT).unwrap_or(0),
            counts_at: get(t::COUNTS_AT).unwrap_or(0),
            max_running: get(t::MAX_RUNNING),
            max_queued: get(t::MAX_QUEUED),
            parked: parked_set(item.as_ref()),
            stopping: string_set(item.as_ref(), t::STOPPING),
        })
    }

    /// `dynamodb:GetItem` (strongly consistent).
    pub async fn get(&self, task_id: &TaskId) -> Result<Option<Job>, AwsError> {
        Ok(self.item(task_id.as_str()).await?.as_ref().and_then(from_item))
    }

    /// The item of key `key` as it is now (`dynamodb:GetItem`, strongly consistent).
    pub async fn item(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:GetItem", e))?;
        Ok(r.item)
    }

    /// Moves the job to `to` if its status is one of `to`'s allowed predecessors, writing
    /// `updates` with it. Returns `None` when the job is in another state (or does not exist): the
    /// write was refused and nothing changed. When it was applied, the job as written.
    pub async fn transition(&self, task_id: &TaskId, to: JobStatus, updates: Updates) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_limited(task_id, to, updates, None).await?.job())
    }

    /// As [`transition`](Self::transition); a move that starts the job (into the running
    /// states) with `max_running` is refused (`AtLimit`) while its tenant has that many started.
    ///
    /// The job is read first (`dynamodb:GetItem`, consistent), and the write is conditional on the
    /// status read, so the tenant's counter changes by exactly this move (`dynamodb:UpdateItem`
    /// of the job, and of the counter when the move changes how the job counts). A status changed
    /// in between is read again. A crash between the two writes leaves the counter off by one
    /// until the sweep's recount corrects it.
    pub async fn transition_limited(&self, task_id: &TaskId, to: JobStatus, updates: Updates, max_running: Option<u32>) -> Result<Moved, AwsError> {
        self.transition_guarded(task_id, to, updates, max_running, SlotGuard::Any).await
    }

    /// As [`transition`](Self::transition), only while the job's warm slot is `slot_id`: a slot
    /// that ended moves back only the job it holds, never one that runs elsewhere.
    pub async fn transition_in_slot(&self, task_id: &TaskId, to: JobStatus, updates: Updates, slot_id: &str) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_guarded(task_id, to, updates, None, SlotGuard::Is(slot_id)).await?.job())
    }

    /// As [`transition`](Self::transition), only while no warm slot holds the job.
    pub async fn transition_without_slot(&self, task_id: &TaskId, to: JobStatus, updates: Updates) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_guarded(task_id, to, updates, None, SlotGuard::NoSlot).await?.job())
    }

    /// As [`transition`](Self::transition), for an end that does not come from the job's task
    /// (a cancel, a timeout): the task may still be at work (stopping takes ECS up to its stop
    /// timeout; a RunTask may be under way), so a job that held a running place keeps it, as an
    /// entry in its tenant's `stopping` set written with the move, until
    /// [`give_back_place`](Self::give_back_place) when the task has stopped. Without that, the
    /// tenant's next job starts beside the one still running, over `max_running` (soak seeds
    /// 3053 and 4176). A job that cannot have a task (no task, no slot, not marked cold: no
    /// delivery may start one any more) gives its place back at once.
    pub async fn end_while_task_may_run(&self, task_id: &TaskId, to: JobStatus, updates: Updates) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_full(task_id, to, updates, How { keep_place: true, ..How::default() }).await?.job())
    }

    async fn transition_guarded(&self, task_id: &TaskId, to: JobStatus, updates: Updates, max_running: Option<u32>, slot: SlotGuard<'_>) -> Result<Moved, AwsError> {
        self.transition_full(task_id, to, updates, How { max_running, slot, ..How::default() }).await
    }

    /// As [`transition`](Self::transition), from the job as the caller has just read it (`seen`,
    /// consistent): one read fewer on the way of an event; a job changed since is read again.
    pub async fn transition_seen(&self, seen: &Job, to: JobStatus, updates: Updates) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_full(&seen.task_id, to, updates, How { seen: Some(seen), ..How::default() }).await?.job())
    }

    /// As [`transition_seen`](Self::transition_seen), for an end its task's stop tells: the job's
    /// usage counts the task's billed time as ECS reports it (`task_window`, epoch ms), and the
    /// model usage its agent reported (`model`).
    pub async fn end_from_task(
        &self,
        seen: &Job,
        to: JobStatus,
        updates: Updates,
        task_window: Option<(i64, Option<i64>)>,
        model: Option<&names::api::ModelUsage>,
    ) -> Result<Option<Job>, AwsError> {
        Ok(self.transition_full(&seen.task_id, to, updates, How { seen: Some(seen), task_window, model, ..How::default() }).await?.job())
    }

    async fn transition_full(&self, task_id: &TaskId, to: JobStatus, updates: Updates, how: How<'_>) -> Result<Moved, AwsError> {
        let How { max_running, slot, keep_place, mut seen, task_window, model } = how;
        let from = to.allowed_predecessors();
        for _ in 0..5 {
            let current = match seen.take() {
                Some(job) => job.clone(),
                None => match self.get(task_id).await? {
                    Some(job) => job,
                    None => return Ok(Moved::Refused),
                },
            };
            if !from.contains(&current.status) {
                return Ok(Moved::Refused);
            }
            let holds = match slot {
                SlotGuard::Any => true,
                SlotGuard::Is(id) => current.warm_slot.as_deref() == Some(id),
                SlotGuard::NoSlot => current.warm_slot.is_none(),
            };
            if !holds {
                return Ok(Moved::Refused);
            }
            let (dq, mut dr) = (counted(to).0 - counted(current.status).0, counted(to).1 - counted(current.status).1);
            let now = crate::time::rfc3339(self.clock.now_millis());
            let mut set = vec![(t::STATUS, s(to.as_str())), (t::UPDATED_AT, s(&now))];
            // A running place kept for a task that may still run: no task can be started for a
            // job neither marked cold nor in a slot once it has ended (both marks need it
            // PROVISIONING), and the write is conditional on both staying absent.
            let may_run = current.ecs_task_arn.is_some() || current.warm_slot.is_some() || current.cold_start;
            let frees_place = keep_place && to.is_terminal() && dr < 0;
            let stopping = (frees_place && may_run).then(|| format!("{}|{}", self.clock.now_millis(), task_id.as_str()));
            if let Some(entry) = &stopping {
                dr = 0;
                set.push((t::STOPPING, s(entry)));
            }
            // A job that finishes with a webhook moves to the index's partition of events to
            // announce, in the same write, so no event is lost to a crash before it is queued.
            let announce = to.is_terminal() && current.webhook.is_some();
            if announce {
                set.push((t::UNFINISHED, s(t::WEBHOOKS_PARTITION)));
                set.push((t::WEBHOOK_STATE, s(names::webhook::DeliveryState::Pending.as_str())));
                set.push((t::DEADLINE_AT, n(self.clock.now_secs() + self.announce_grace_seconds)));
                set.push((t::WEBHOOK_ROUND_AT, n(self.clock.now_secs())));
            }
            set.extend(updates.iter().filter(|(k, _)| !(announce && [t::UNFINISHED, t::WEBHOOK_STATE, t::DEADLINE_AT].contains(k))).cloned());
            // An end adds the job to its tenant's usage of the day, in the same transaction: once.
            let usage = if to.is_terminal() { Some(self.usage_update(&current, to, task_window, model)?) } else { None };
            // The job's own item records the same figures, in the same write.
            if let Some((_, u)) = &usage {
                for (k, v) in [(t::USAGE_RUN_SECONDS, u.run_seconds), (t::USAGE_VCPU_SECONDS, u.vcpu_seconds), (t::USAGE_GB_SECONDS, u.gb_seconds), (t::USAGE_COST_USD, u.estimated_cost_usd)] {
                    set.push((k, decimal(v)));
                }
            }
            let expr: Vec<String> = (0..set.len()).map(|i| format!("#u{i} = :u{i}")).collect();
            // Any other finished job leaves the index of unfinished ones.
            let remove = to.is_terminal() && !announce;
            let update_expression = format!("SET {}{}", expr.join(", "), if remove { " REMOVE #unf" } else { "" });
            let mut names: HashMap<String, String> = set.iter().enumerate().map(|(i, (k, _))| (format!("#u{i}"), k.to_string())).collect();
            names.insert("#st".into(), t::STATUS.into());
            if remove {
                names.insert("#unf".into(), t::UNFINISHED.into());
            }
            let mut values: HashMap<String, AttributeValue> = set.iter().enumerate().map(|(i, (_, v))| (format!(":u{i}"), v.clone())).collect();
            values.insert(":cur".into(), s(current.status.as_str()));
            let mut condition = "#st = :cur".to_owned();
            if frees_place && !may_run {
                names.insert("#hc".into(), t::COLD_START.into());
                names.insert("#hw".into(), t::WARM_SLOT.into());
                condition.push_str(" AND attribute_not_exists(#hc) AND attribute_not_exists(#hw)");
            }
            match slot {
                SlotGuard::Any => {}
                SlotGuard::Is(id) => {
                    names.insert("#ws".into(), t::WARM_SLOT.into());
                    values.insert(":ws".into(), s(id));
                    condition.push_str(" AND #ws = :ws");
                }
                SlotGuard::NoSlot => {
                    names.insert("#ws".into(), t::WARM_SLOT.into());
                    condition.push_str(" AND attribute_not_exists(#ws)");
                }
            }
            let tenant = current.tenant_id.as_str();
            // The job's move, on an UpdateItem or on a transaction's Update (two SDK builders with
            // the same setters).
            macro_rules! job_move {
                ($builder:expr) => {
                    $builder
                        .table_name(&self.table)
                        .key(t::TASK_ID, s(task_id.as_str()))
                        .update_expression(update_expression)
                        .condition_expression(condition)
                        .set_expression_attribute_names(Some(names))
                        .set_expression_attribute_values(Some(values))
                };
            }
            let written = if (dq, dr) == (0, 0) && stopping.is_none() && usage.is_none() {
                let r = job_move!(self.client.update_item())
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                    .send()
                    .await;
                match r {
                    Ok(r) => Written::Yes(r.attributes.as_ref().and_then(from_item)),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Written::JobChanged,
                    Err(e) => return Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
                }
            } else {
                // The move and the tenant's counts in one transaction: no crash between two writes
                // leaks or double-counts a place, and a move that takes a running place is refused
                // whole at the limit. The SDK gives the call a ClientRequestToken its retries
                // share, so a retry of a transaction that was applied is answered, not applied again.
                let limit = if dr > 0 { max_running } else { None };
                let job_update = job_move!(aws_sdk_dynamodb::types::Update::builder())
                    .build()
                    .map_err(|e| AwsError { op: "dynamodb:TransactWriteItems", code: None, detail: e.to_string() })?;
                let mut tx = self.client.transact_write_items().transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(job_update).build());
                if (dq, dr) != (0, 0) || stopping.is_some() {
                    tx = tx.transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(self.count_update(tenant, dq, dr, limit, stopping.as_deref())?).build());
                }
                if let Some((u, _)) = usage {
                    tx = tx.transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(u).build());
                }
                let r = tx.send().await;
                match r {
                    Ok(_) => Written::Transacted,
                    Err(e) => match cancelled_by(&e) {
                        Some((true, _)) => Written::JobChanged,
                        Some((false, true)) => return Ok(Moved::AtLimit),
                        _ => return Err(AwsError::from_sdk("dynamodb:TransactWriteItems", e)),
                    },
                }
            };
            if let Written::JobChanged = written {
                continue;
            }
            // Side by side, none waiting for another (each is a call or a few): the job read back
            // after a transaction, a freed running place given to the tenant's oldest parked job,
            // and a finished job's webhook event queued. The last two best effort: a parked
            // job's own message comes back later anyway, and the sweep queues an event this
            // could not.
            let read_back = async {
                match written {
                    Written::Yes(moved) => Ok(moved),
                    _ => self.get(task_id).await,
                }
            };
            let wake = async {
                if dr < 0 {
                    if let Err(e) = self.wake_parked(tenant).await {
                        tracing::warn!(tenant, error = %e, "could not wake a parked job; its own message will");
                    }
                }
            };
            let announced = async {
                if announce {
                    if let Err(e) = self.announce(task_id).await {
                        tracing::warn!(task_id = task_id.as_str(), error = %e, "could not queue the job's webhook event; the sweep will");
                    }
                }
            };
            let (moved, (), ()) = tokio::join!(read_back, wake, announced);
            let moved = moved?;
            // Counted here, where the move applied: once per job, whichever function moved it.
            if let Some(job) = &moved {
                self.metrics.job_moved(self.clock.now_millis(), job, current.status, to);
            }
            return Ok(moved.map_or(Moved::Refused, Moved::Moved));
        }
        Err(AwsError { op: "dynamodb:UpdateItem", code: None, detail: format!("the job's status kept changing; {} not written", to.as_str()) })
    }

    /// Sets `queued_reason` of a job that is still in `status` (nothing when it has moved on) and,
    /// when given, moves its deadline to `deadline` (epoch seconds): a job waiting for its
    /// tenant's running jobs is not overdue while its message goes round.
    pub async fn set_queued_reason(&self, task_id: &TaskId, status: JobStatus, reason: names::job::QueuedReason, deadline: Option<i64>) -> Result<(), AwsError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .update_expression(if deadline.is_some() { "SET #qr = :qr, #dl = :dl" } else { "SET #qr = :qr" })
            .condition_expression("#st = :st")
            .expression_attribute_names("#qr", t::QUEUED_REASON)
            .expression_attribute_names("#st", t::STATUS)
            .expression_attribute_values(":qr", s(reason.as_str()))
            .expression_attribute_values(":st", s(status.as_str()));
        if let Some(deadline) = deadline {
            update = update.expression_attribute_names("#dl", t::DEADLINE_AT).expression_attribute_values(":dl", n(deadline));
        }
        let r = update.send().await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
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
        Ok(self
            .query_unfinished_before(t::UNFINISHED_PARTITION, Some(cutoff))
            .await?
            .iter()
            .filter_map(|m| {
                let task_id = TaskId::parse(m.get(t::TASK_ID)?.as_s().ok()?)?;
                let options = m.get(t::OPTIONS).and_then(|o| o.as_s().ok()).and_then(|o| serde_json::from_str::<JobOptions>(o).ok()).unwrap_or_default();
                Some(Overdue { task_id, timeout_seconds: options.timeout_seconds })
            })
            .collect())
    }
}

/// How a submit went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Created,
    /// A job with this id exists (an Idempotency-Key used before).
    Exists,
    /// The tenant has `max_queued` jobs queued: nothing was written.
    QueueFull,
}

/// How a status change went.
#[derive(Clone, Debug, PartialEq)]
pub enum Moved {
    Moved(Job),
    /// The job is not in a state it may move from (or does not exist).
    Refused,
    /// Starting it would put its tenant over `max_running`.
    AtLimit,
}

/// How a move is made, besides its status change.
#[derive(Clone, Copy, Debug, Default)]
struct How<'a> {
    /// A move that starts the job is refused while its tenant has this many started.
    max_running: Option<u32>,
    slot: SlotGuard<'a>,
    /// An end that keeps the job's running place while its task may still run.
    keep_place: bool,
    /// The job as the caller just read it, for the first try.
    seen: Option<&'a Job>,
    /// An end its task's stop tells: the task's billed time as ECS reports it (epoch ms: from its
    /// image pull, to its stop if known), what the job's usage counts.
    task_window: Option<(i64, Option<i64>)>,
    /// A computer-use job's model usage, as its agent's result reports it: added to its
    /// tenant's day with the rest of its usage.
    model: Option<&'a names::api::ModelUsage>,
}

/// What a move requires of the job's warm slot, besides its status.
#[derive(Clone, Copy, Debug, Default)]
enum SlotGuard<'a> {
    #[default]
    Any,
    /// The job's warm slot is this one.
    Is(&'a str),
    /// No warm slot holds the job.
    NoSlot,
}

impl Moved {
    /// The job as written, when the move was.
    pub fn job(self) -> Option<Job> {
        match self {
            Moved::Moved(job) => Some(job),
            Moved::Refused | Moved::AtLimit => None,
        }
    }
}

/// (queued, running): how a job in `status` counts for its tenant.
pub fn counted(status: JobStatus) -> (i64, i64) {
    match status {
        JobStatus::Queued => (1, 0),
        JobStatus::Provisioning | JobStatus::Provisioned | JobStatus::Running => (0, 1),
        JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => (0, 0),
    }
}

impl JobStore {
    /// A tenant's usage on each of `days` that has any (`names::table::usage_key`), in the order
    /// given: one GetItem a day, sixteen at a time.
    pub async fn usage(&self, tenant: &str, days: &[String]) -> Result<Vec<(String, names::api::UsageTotals)>, AwsError> {
        let mut out = Vec::new();
        for chunk in days.chunks(16) {
            let reads = chunk.iter().map(|day| async move {
                let r = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key(t::TASK_ID, s(t::usage_key(tenant, day)))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("dynamodb:GetItem", e))?;
                Ok::<_, AwsError>(r.item.map(|item| {
                    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                    let u = names::api::UsageTotals {
                        jobs: num(t::USAGE_JOBS) as u64,
                        completed: num("completed") as u64,
                        failed: num("failed") as u64,
                        cancelled: num("cancelled") as u64,
                        run_seconds: num(t::USAGE_RUN_SECONDS),
                        vcpu_seconds: num(t::USAGE_VCPU_SECONDS),
                        gb_seconds: num(t::USAGE_GB_SECONDS),
                        estimated_cost_usd: num(t::USAGE_COST_USD),
                        model_input_tokens: num(t::USAGE_MODEL_INPUT_TOKENS) as u64,
                        model_output_tokens: num(t::USAGE_MODEL_OUTPUT_TOKENS) as u64,
                        model_cost_usd: num(t::USAGE_MODEL_COST_USD),
                    };
                    (day.clone(), u)
                }))
            });
            for r in futures_util::future::join_all(reads).await {
                out.extend(r?);
            }
        }
        Ok(out)
    }
}

/// A decimal figure of usage: six decimals, which DynamoDB adds exactly.
fn decimal(v: f64) -> AttributeValue {
    AttributeValue::N(format!("{v:.6}"))
}
