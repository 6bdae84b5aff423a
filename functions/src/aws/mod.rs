//! Small, honest clients over the AWS calls the functions make: each method is one (or one
//! paginated) AWS API call, named by what it does for a job. IAM grants follow these calls
//! one-to-one (see the crate docs).

use crate::model::{Attempt, Job, TaskId, TenantId, Target, Webhook};
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
    pub(crate) fn from_sdk<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> AwsError
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

type UpdateResult = Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
>;

/// An UpdateItem whose condition may refuse it: true when written, false when refused.
pub(crate) fn written(r: UpdateResult) -> Result<bool, AwsError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
    }
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
    /// Where a job that finishes with a webhook is announced (`sqs:SendMessage`).
    pub webhooks: Option<WebhookQueue>,
    /// Where a parked job is woken when its tenant's running place frees (`sqs:SendMessage`).
    pub jobs: Option<JobQueue>,
    /// Seconds before the sweep queues a finished job's webhook event its finishing function did
    /// not (`Config::recovery_grace_seconds`).
    pub announce_grace_seconds: i64,
    /// Seconds a round being sent may go without progress past its next attempt's due time before
    /// the sweep ends it FAILED (`Config::webhook_stall_seconds`).
    pub webhook_stall_seconds: i64,
}

/// What a move's write did.
enum Written {
    /// Written: the job as it now is.
    Yes(Option<Job>),
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
fn parked_set(item: Option<&HashMap<String, AttributeValue>>) -> Vec<String> {
    let mut parked = item.and_then(|i| i.get(t::PARKED)).and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
    parked.sort();
    parked
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
        let count = self.count_update_limited(tenant, 1, 0, Some(("#q", t::MAX_QUEUED, max_queued)))?;
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
    fn counter_item(&self, tenant: &str, set: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
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
    /// tenant's limit (the counter's, else `max_running`).
    fn count_update(&self, tenant: &str, queued: i64, running: i64, max_running: Option<u32>) -> Result<aws_sdk_dynamodb::types::Update, AwsError> {
        self.count_update_limited(tenant, queued, running, max_running.map(|m| ("#r", t::MAX_RUNNING, m)))
    }

    /// As [`count_update`](Self::count_update), with `limit` = (the count's placeholder, `#q` or
    /// `#r`; the limit's attribute on the counter; the default when it carries none).
    fn count_update_limited(&self, tenant: &str, queued: i64, running: i64, limit: Option<(&str, &str, u32)>) -> Result<aws_sdk_dynamodb::types::Update, AwsError> {
        let mut u = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(t::TASK_ID, s(t::counter_key(tenant)))
            .update_expression("SET #unf = :cp, #dl = if_not_exists(#dl, :zero), #ca = :now ADD #q :dq, #r :dr")
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
    async fn take_from_set(&self, key: &str, entry: &str) -> Result<bool, AwsError> {
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

    async fn transition_guarded(&self, task_id: &TaskId, to: JobStatus, updates: Updates, max_running: Option<u32>, slot: SlotGuard<'_>) -> Result<Moved, AwsError> {
        let from = to.allowed_predecessors();
        for _ in 0..5 {
            let Some(current) = self.get(task_id).await? else { return Ok(Moved::Refused) };
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
            let (dq, dr) = (counted(to).0 - counted(current.status).0, counted(to).1 - counted(current.status).1);
            let now = crate::time::rfc3339(self.clock.now_millis());
            let mut set = vec![(t::STATUS, s(to.as_str())), (t::UPDATED_AT, s(&now))];
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
            let written = if (dq, dr) == (0, 0) {
                let r = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(t::TASK_ID, s(task_id.as_str()))
                    .update_expression(update_expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
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
                let job_update = aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.table)
                    .key(t::TASK_ID, s(task_id.as_str()))
                    .update_expression(update_expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values))
                    .build()
                    .map_err(|e| AwsError { op: "dynamodb:TransactWriteItems", code: None, detail: e.to_string() })?;
                let r = self
                    .client
                    .transact_write_items()
                    .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(job_update).build())
                    .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(self.count_update(tenant, dq, dr, limit)?).build())
                    .send()
                    .await;
                match r {
                    // The job as written (a transaction answers no attributes).
                    Ok(_) => Written::Yes(self.get(task_id).await?),
                    Err(e) => match cancelled_by(&e) {
                        Some((true, _)) => Written::JobChanged,
                        Some((false, true)) => return Ok(Moved::AtLimit),
                        _ => return Err(AwsError::from_sdk("dynamodb:TransactWriteItems", e)),
                    },
                }
            };
            match written {
                Written::JobChanged => continue,
                Written::Yes(moved) => {
                    // Side by side, neither waiting for the other (each is a few calls): a freed
                    // running place goes to the tenant's oldest parked job, and a finished job's
                    // webhook event is queued. Both best effort: a parked job's own message comes
                    // back later anyway, and the sweep queues an event this could not.
                    let wake = async {
                        if dr < 0 {
                            if let Err(e) = self.wake_parked(tenant).await {
                                tracing::warn!(tenant, error = %e, "could not wake a parked job; its own message will");
                            }
                        }
                    };
                    let announced = async {
                        if let (true, Some(job)) = (announce, &moved) {
                            if let Err(e) = self.announce(&job.task_id).await {
                                tracing::warn!(task_id = task_id.as_str(), error = %e, "could not queue the job's webhook event; the sweep will");
                            }
                        }
                    };
                    tokio::join!(wake, announced);
                    return Ok(moved.map_or(Moved::Refused, Moved::Moved));
                }
            }
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

/// What a move requires of the job's warm slot, besides its status.
#[derive(Clone, Copy, Debug)]
enum SlotGuard<'a> {
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
        queued_reason: gs(t::QUEUED_REASON),
        request_hash: gs(t::REQUEST_HASH).unwrap_or_default(),
        deadline_at: gn(t::DEADLINE_AT),
        expires_at: gn(t::EXPIRES_AT).unwrap_or(0),
        warm_slot: gs(t::WARM_SLOT),
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

fn attempt_item(a: &Attempt) -> AttributeValue {
    let mut m = HashMap::from([("at".to_string(), s(&a.at)), ("attempt".to_string(), n(a.attempt)), ("duration_ms".to_string(), n(a.duration_ms))]);
    if let Some(c) = a.status_code {
        m.insert("status_code".into(), n(c));
    }
    if let Some(e) = &a.error {
        m.insert("error".into(), s(e));
    }
    AttributeValue::M(m)
}

/// A finished job's webhook event, one SQS message per attempt: the first is sent when the job
/// finishes, each retry is a new message (so SQS's receive count and redrive never count the
/// schedule), delayed up to SQS's 15 minutes and chained through `not_before` past that.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivery {
    pub task_id: String,
    /// The job's delivery round: a message of an older round is dropped.
    pub round: i64,
    /// 1 for the first attempt of the round.
    pub attempt: u32,
    /// Epoch seconds before which the attempt is not made (a longer wait than one SQS delay).
    #[serde(default)]
    pub not_before: i64,
    /// The body of the last attempt, on a dead-lettered event (for whoever reads the DLQ). Each
    /// attempt builds its own, so its output links are fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Why the last attempt failed (on a dead-lettered event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How many times this attempt's own message came back to find its tenant's webhook lanes
    /// busy: each wait is twice the last, up to `names::webhook::MAX_LANE_WAIT_SECONDS`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lane_waits: u32,
    /// When the attempt was first parked (epoch milliseconds): its place among its tenant's
    /// parked events, kept when it parks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked_at: Option<i64>,
    /// Sent by the attempt that freed a lane, to the oldest parked event; the event's own message
    /// is still to come, so a woken message that finds the lanes busy again sends none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub woken: bool,
}

/// A webhook attempt waiting for one of its tenant's lanes, as its entry in the tenant's parked
/// set (`names::table::webhook_parked_key`): `<parked at, ms>|<job>|<round>|<attempt>`, so the
/// oldest sorts first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedRound {
    pub parked_at: i64,
    pub task_id: String,
    pub round: i64,
    pub attempt: u32,
}

impl ParkedRound {
    pub fn entry(&self) -> String {
        format!("{:013}|{}|{}|{}", self.parked_at, self.task_id, self.round, self.attempt)
    }

    pub fn parse(entry: &str) -> Option<Self> {
        let mut parts = entry.split('|');
        let p = ParkedRound {
            parked_at: parts.next()?.parse().ok()?,
            task_id: parts.next()?.to_owned(),
            round: parts.next()?.parse().ok()?,
            attempt: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(p)
    }

    /// The message that wakes it.
    pub fn wake(&self) -> Delivery {
        Delivery { parked_at: Some(self.parked_at), woken: true, attempt: self.attempt, ..Delivery::first(&self.task_id, self.round) }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Delivery {
    /// The first attempt of a round.
    pub fn first(task_id: &str, round: i64) -> Delivery {
        Delivery { task_id: task_id.to_owned(), round, attempt: 1, not_before: 0, payload: None, last_error: None, lane_waits: 0, parked_at: None, woken: false }
    }

    /// This message's entry in its tenant's parked set.
    pub fn parked(&self, parked_at: i64) -> ParkedRound {
        ParkedRound { parked_at, task_id: self.task_id.clone(), round: self.round, attempt: self.attempt }
    }
}

/// The webhooks queue and its dead-letter queue.
#[derive(Clone, Debug)]
pub struct WebhookQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub dlq_url: String,
}

impl WebhookQueue {
    /// `sqs:SendMessage` of a delivery, visible `delay_seconds` from now (at most 900).
    pub async fn send(&self, d: &Delivery, delay_seconds: u32) -> Result<(), AwsError> {
        self.send_to(&self.url, d, delay_seconds.min(names::webhook::MAX_DELAY_SECONDS)).await
    }

    /// `sqs:SendMessage` of an event whose every attempt failed to the dead-letter queue.
    pub async fn dead_letter(&self, d: &Delivery) -> Result<(), AwsError> {
        self.send_to(&self.dlq_url, d, 0).await
    }

    async fn send_to(&self, url: &str, d: &Delivery, delay_seconds: u32) -> Result<(), AwsError> {
        let body = serde_json::to_string(d).map_err(|e| AwsError { op: "sqs:SendMessage", code: None, detail: e.to_string() })?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .delay_seconds(delay_seconds as i32)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sqs:SendMessage", e))?;
        Ok(())
    }
}

impl JobStore {
    /// Queues the first delivery of a finished job's event (`sqs:SendMessage`), then marks it
    /// queued (`dynamodb:UpdateItem`, only while it is still `PENDING`); it stays in the sweep's
    /// partition, due when its round would count as stalled.
    pub async fn announce(&self, task_id: &TaskId) -> Result<(), AwsError> {
        let Some(queue) = &self.webhooks else {
            return Err(AwsError { op: "sqs:SendMessage", code: None, detail: "no webhook queue is configured".into() });
        };
        queue.send(&Delivery::first(task_id.as_str(), 0), 0).await?;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .update_expression("SET #ws = :sending, #dl = :stall")
            .condition_expression("#ws = :pending")
            .expression_attribute_names("#ws", t::WEBHOOK_STATE)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_values(":stall", n(self.clock.now_secs() + self.webhook_stall_seconds))
            .expression_attribute_values(":sending", s(names::webhook::DeliveryState::Sending.as_str()))
            .expression_attribute_values(":pending", s(names::webhook::DeliveryState::Pending.as_str()))
            .send()
            .await;
        // Refused: marked already (the sweep and the finishing function both got there).
        written(r).map(|_| ())
    }

    /// Takes one of the tenant's `lanes` webhook lanes that no attempt holds, for `hold_ms`
    /// (`dynamodb:UpdateItem` per lane tried, only while the lane's lease has run out). The lane
    /// taken, or None when every lane is held.
    pub async fn take_lane(&self, tenant: &str, lanes: u32, holder: &str, hold_ms: i64) -> Result<Option<u32>, AwsError> {
        let now = self.clock.now_millis();
        // Start at a lane of the holder's choosing, so takers do not all race for the first.
        let first = holder.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        for i in 0..lanes {
            let lane = (first.wrapping_add(i)) % lanes.max(1);
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(t::TASK_ID, s(&t::webhook_lane_key(tenant, lane)))
                .update_expression("SET #u = :until, #h = :holder")
                .condition_expression("attribute_not_exists(#u) OR #u < :now")
                .expression_attribute_names("#u", t::LANE_UNTIL)
                .expression_attribute_names("#h", t::LANE_HOLDER)
                .expression_attribute_values(":until", n(now + hold_ms))
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            if written(r)? {
                return Ok(Some(lane));
            }
        }
        Ok(None)
    }

    /// Parks a webhook attempt whose tenant holds every lane: its entry joins the tenant's parked
    /// set (`dynamodb:UpdateItem`; adding an entry twice is one entry).
    /// True when the entry was added, false when it was there already.
    pub async fn park_round(&self, tenant: &str, parked: &ParkedRound) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(&t::webhook_parked_key(tenant)))
            .update_expression("ADD #p :entry")
            .condition_expression("attribute_not_exists(#p) OR NOT contains(#p, :e)")
            .expression_attribute_names("#p", t::PARKED)
            .expression_attribute_values(":entry", AttributeValue::Ss(vec![parked.entry()]))
            .expression_attribute_values(":e", s(parked.entry()))
            .send()
            .await;
        written(r)
    }

    /// Takes a parked webhook attempt off its tenant's set (of two takers, one wins). True for
    /// the winner.
    pub async fn unpark_round(&self, tenant: &str, parked: &ParkedRound) -> Result<bool, AwsError> {
        self.take_from_set(&t::webhook_parked_key(tenant), &parked.entry()).await
    }

    /// The tenant's parked webhook attempts, oldest first (`dynamodb:GetItem`).
    pub async fn parked_rounds(&self, tenant: &str) -> Result<Vec<ParkedRound>, AwsError> {
        let item = self.item(&t::webhook_parked_key(tenant)).await?;
        Ok(parked_set(item.as_ref()).iter().filter_map(|e| ParkedRound::parse(e)).collect())
    }

    /// Puts off a round's stall deadline while it waits for a lane: its message is alive, it came
    /// back (`dynamodb:UpdateItem`, only while `round` is the job's round and still being sent).
    /// False when it is not.
    pub async fn keep_waiting(&self, task_id: &TaskId, round: i64, deadline: i64) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .update_expression("SET #dl = :dl")
            .condition_expression("#r = :r AND #unf = :webhooks")
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_names("#r", t::WEBHOOK_ROUND)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_values(":dl", n(deadline))
            .expression_attribute_values(":r", n(round))
            .expression_attribute_values(":webhooks", s(t::WEBHOOKS_PARTITION))
            .send()
            .await;
        written(r)
    }

    /// Gives a lane back (`dynamodb:UpdateItem`, only while `holder` holds it: a lease that ran
    /// out and was taken by another attempt stays theirs).
    pub async fn free_lane(&self, tenant: &str, lane: u32, holder: &str) -> Result<(), AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(&t::webhook_lane_key(tenant, lane)))
            .update_expression("REMOVE #u, #h")
            .condition_expression("#h = :holder")
            .expression_attribute_names("#u", t::LANE_UNTIL)
            .expression_attribute_names("#h", t::LANE_HOLDER)
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        written(r).map(|_| ())
    }

    /// The sparse index's webhooks partition past its deadline at `now` (epoch seconds;
    /// `dynamodb:Query`): finished jobs whose event was not queued (PENDING), and rounds being
    /// sent that made no progress when an attempt was due (SENDING: stalled).
    pub async fn overdue_webhooks(&self, now: i64) -> Result<OverdueWebhooks, AwsError> {
        let mut overdue = OverdueWebhooks::default();
        // Only the overdue: rounds in flight stay in the partition for as long as they are sent.
        for m in self.query_unfinished_before(t::WEBHOOKS_PARTITION, Some(now)).await? {
            let Some(id) = m.get(t::TASK_ID).and_then(|v| v.as_s().ok()).and_then(|v| TaskId::parse(v)) else { continue };
            match m.get(t::WEBHOOK_STATE).and_then(|v| v.as_s().ok()).and_then(|v| names::webhook::DeliveryState::parse(v)) {
                Some(names::webhook::DeliveryState::Sending) => {
                    let round = m.get(t::WEBHOOK_ROUND).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
                    let attempts = m.get(t::WEBHOOK_ATTEMPTS).and_then(|v| v.as_l().ok()).map_or(0, Vec::len) as u32;
                    overdue.stalled.push((id, round, attempts));
                }
                _ => overdue.unannounced.push(id),
            }
        }
        Ok(overdue)
    }

    /// Ends a stalled round FAILED with an attempt that says so (`dynamodb:UpdateItem`, only while
    /// the round is `round`, still SENDING and still overdue at `now`: an attempt or a new round
    /// meanwhile moves its deadline). False when it moved on.
    pub async fn fail_stalled(&self, task_id: &TaskId, round: i64, attempt: &Attempt, now: i64) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .update_expression("SET #a = list_append(if_not_exists(#a, :none), :one), #ws = :failed REMOVE #unf")
            .condition_expression("#r = :r AND #ws = :sending AND #dl < :now AND #unf = :webhooks")
            .expression_attribute_names("#a", t::WEBHOOK_ATTEMPTS)
            .expression_attribute_names("#ws", t::WEBHOOK_STATE)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#r", t::WEBHOOK_ROUND)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":one", AttributeValue::L(vec![attempt_item(attempt)]))
            .expression_attribute_values(":failed", s(names::webhook::DeliveryState::Failed.as_str()))
            .expression_attribute_values(":sending", s(names::webhook::DeliveryState::Sending.as_str()))
            .expression_attribute_values(":r", n(round))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":webhooks", s(t::WEBHOOKS_PARTITION))
            .send()
            .await;
        written(r)
    }

    /// Appends an attempt to the job's current round and sets its delivery state
    /// (`dynamodb:UpdateItem`, only while `round` is the job's round and the attempt is the next
    /// one). False for an older round, or an attempt recorded already: two messages of one
    /// attempt (an SQS duplicate, a parked event's wake and its own message) record it once, and
    /// only the one recorded queues the next attempt (never two chains of retries).
    /// A round that ends (DELIVERED, FAILED) leaves the sweep's webhooks partition; one with a
    /// retry `next` seconds away (SENDING) stays, due when that retry would count as stalled.
    /// Either way the state is no longer PENDING: when the attempt lands before the announcing
    /// function's PENDING -> SENDING mark (whose condition then fails), the sweep does not queue
    /// the event again (each time a new chain of retries).
    pub async fn record_attempt(&self, task_id: &TaskId, round: i64, attempt: &Attempt, state: names::webhook::DeliveryState, next: Option<u32>) -> Result<bool, AwsError> {
        let u = self.client.update_item().table_name(&self.table).key(t::TASK_ID, s(task_id.as_str()));
        let u = match next {
            Some(wait) if state == names::webhook::DeliveryState::Sending => u
                .update_expression("SET #a = list_append(if_not_exists(#a, :none), :one), #ws = :ws, #unf = :webhooks, #dl = :stall")
                .expression_attribute_names("#dl", t::DEADLINE_AT)
                .expression_attribute_values(":webhooks", s(t::WEBHOOKS_PARTITION))
                .expression_attribute_values(":stall", n(self.clock.now_secs() + i64::from(wait) + self.webhook_stall_seconds)),
            _ => u.update_expression("SET #a = list_append(if_not_exists(#a, :none), :one), #ws = :ws REMOVE #unf"),
        };
        let r = u
            .condition_expression("#r = :r AND (attribute_not_exists(#a) OR size(#a) < :n)")
            .expression_attribute_values(":n", n(i64::from(attempt.attempt)))
            .expression_attribute_names("#a", t::WEBHOOK_ATTEMPTS)
            .expression_attribute_names("#ws", t::WEBHOOK_STATE)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#r", t::WEBHOOK_ROUND)
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":one", AttributeValue::L(vec![attempt_item(attempt)]))
            .expression_attribute_values(":ws", s(state.as_str()))
            .expression_attribute_values(":r", n(round))
            .send()
            .await;
        written(r)
    }

    /// Starts a new round of delivery of a finished job's event (`dynamodb:UpdateItem`, only
    /// for a finished job with a webhook, and not while its current round is younger than
    /// `REDELIVERY_COOLDOWN_SECONDS` and still sending): its attempts start again.
    pub async fn new_round(&self, task_id: &TaskId) -> Result<NewRound, AwsError> {
        let now = self.clock.now_secs();
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, s(task_id.as_str()))
            .update_expression("SET #r = #r + :one, #ws = :sending, #a = :none, #rat = :now, #unf = :webhooks, #dl = :stall")
            .condition_expression(
                "attribute_exists(#url) AND #st IN (:c, :f, :x) AND (attribute_not_exists(#rat) OR #rat < :cutoff OR NOT (#ws IN (:sending, :pending)))",
            )
            .expression_attribute_names("#rat", t::WEBHOOK_ROUND_AT)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_values(":webhooks", s(t::WEBHOOKS_PARTITION))
            .expression_attribute_values(":stall", n(now + self.webhook_stall_seconds))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":cutoff", n(now - names::webhook::REDELIVERY_COOLDOWN_SECONDS))
            .expression_attribute_values(":pending", s(names::webhook::DeliveryState::Pending.as_str()))
            .expression_attribute_names("#r", t::WEBHOOK_ROUND)
            .expression_attribute_names("#ws", t::WEBHOOK_STATE)
            .expression_attribute_names("#a", t::WEBHOOK_ATTEMPTS)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#url", t::WEBHOOK_URL)
            .expression_attribute_names("#st", t::STATUS)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":sending", s(names::webhook::DeliveryState::Sending.as_str()))
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":c", s(JobStatus::Completed.as_str()))
            .expression_attribute_values(":f", s(JobStatus::Failed.as_str()))
            .expression_attribute_values(":x", s(JobStatus::Cancelled.as_str()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(r) => Ok(r.attributes.as_ref().and_then(from_item).map_or(NewRound::NotEligible, NewRound::Started)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                // Which condition refused it: read the job as it is now.
                let Some(job) = self.get(task_id).await? else { return Ok(NewRound::NotEligible) };
                Ok(job.round_in_flight(now).map_or(NewRound::NotEligible, |retry_after| NewRound::InFlight { retry_after }))
            }
            Err(e) => Err(AwsError::from_sdk("dynamodb:UpdateItem", e)),
        }
    }
}

/// The webhooks partition's overdue items ([`JobStore::overdue_webhooks`]).
#[derive(Debug, Default)]
pub struct OverdueWebhooks {
    /// Finished jobs whose event was never queued.
    pub unannounced: Vec<TaskId>,
    /// Rounds being sent that made no progress when due: (job, round, attempts made).
    pub stalled: Vec<(TaskId, i64, u32)>,
}

/// What [`JobStore::new_round`] did.
#[derive(Debug)]
pub enum NewRound {
    /// The job as written: its new round is on.
    Started(Job),
    /// Its current round began less than the cool-down ago and is still being sent: ask again
    /// after `retry_after` seconds.
    InFlight { retry_after: u32 },
    /// Not finished, or without a webhook.
    NotEligible,
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
        self.send_delayed(task_id, 0).await
    }

    /// `sqs:SendMessage` of `{"pool": "refill"}`: the process function starts the warm slots
    /// the pool lacks.
    pub async fn send_refill(&self) -> Result<(), AwsError> {
        let body = serde_json::json!({ names::queue::MESSAGE_POOL: names::queue::POOL_REFILL }).to_string();
        self.client.send_message().queue_url(&self.url).message_body(body).send().await.map_err(|e| AwsError::from_sdk("sqs:SendMessage", e))?;
        Ok(())
    }

    /// `sqs:SendMessage` of a wake-up of a waiting job (`names::queue::MESSAGE_WAKE`).
    pub async fn send_wake(&self, task_id: &TaskId) -> Result<(), AwsError> {
        let body = serde_json::json!({ names::queue::MESSAGE_TASK_ID: task_id.as_str(), names::queue::MESSAGE_WAKE: true }).to_string();
        self.client.send_message().queue_url(&self.url).message_body(body).send().await.map_err(|e| AwsError::from_sdk("sqs:SendMessage", e))?;
        Ok(())
    }

    /// `sqs:SendMessage` of the job's message, visible `delay_seconds` from now (at most 900).
    pub async fn send_delayed(&self, task_id: &TaskId, delay_seconds: u32) -> Result<(), AwsError> {
        let body = serde_json::json!({ names::queue::MESSAGE_TASK_ID: task_id.as_str() }).to_string();
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
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
    /// What signs the links handed to agents (the manifests', the upload forms', the secrets',
    /// a slot's): a session of the signer role when one is configured, else the function's
    /// own credentials.
    pub links: aws_sdk_s3::Client,
    pub credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    pub region: Option<String>,
}

impl Outputs {
    /// The bucket's client; the agents' links are signed by a session of `signer_role` (its
    /// ARN; empty: by the function's own credentials), renewed while less than `min_left`
    /// remains of it, so a link of up to `min_left` never outlives its credentials.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str, signer_role: &str, min_left: Duration) -> Outputs {
        let (links, credentials) = if signer_role.is_empty() {
            (aws_sdk_s3::Client::new(sdk), sdk.credentials_provider())
        } else {
            let session = aws_sdk_s3::config::SharedCredentialsProvider::new(SignerSession::new(sdk, signer_role, min_left));
            let conf = aws_sdk_s3::config::Builder::from(sdk)
                .credentials_provider(session.clone())
                // The session provider keeps its own credentials and renews them early; the
                // client's cache would hold them until ten seconds before they expire.
                .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
                .build();
            (aws_sdk_s3::Client::from_conf(conf), Some(session))
        };
        Outputs { client: aws_sdk_s3::Client::new(sdk), bucket: bucket.to_owned(), links, credentials, region: sdk.region().map(|r| r.to_string()) }
    }
}

/// How long a signer session lasts: the most `sts:AssumeRole` grants a role session assuming a
/// role (role chaining is capped at one hour).
pub const SIGNER_SESSION: Duration = Duration::from_secs(3600);

/// Credentials of a session of the signer role (`sts:AssumeRole`, by the function's own
/// credentials), whose expiry is known: Lambda's environment credentials carry none, so a link
/// they sign may stop working before its own expiry with nothing to tell. Kept while more than
/// `min_left` remains, then renewed.
#[derive(Debug)]
struct SignerSession {
    sdk: aws_config::SdkConfig,
    role: String,
    min_left: Duration,
    provider: tokio::sync::OnceCell<aws_config::sts::AssumeRoleProvider>,
    current: tokio::sync::Mutex<Option<aws_credential_types::Credentials>>,
}

impl SignerSession {
    fn new(sdk: &aws_config::SdkConfig, role: &str, min_left: Duration) -> SignerSession {
        SignerSession { sdk: sdk.clone(), role: role.to_owned(), min_left, provider: tokio::sync::OnceCell::new(), current: tokio::sync::Mutex::new(None) }
    }

    async fn credentials(&self) -> aws_credential_types::provider::Result {
        use aws_credential_types::provider::ProvideCredentials;
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| fresh_enough(c.expiry(), std::time::SystemTime::now(), self.min_left)) {
            return Ok(c.clone());
        }
        let provider = self
            .provider
            .get_or_init(|| async {
                aws_config::sts::AssumeRoleProvider::builder(&self.role)
                    .session_name("agent-links")
                    .session_length(SIGNER_SESSION)
                    .configure(&self.sdk)
                    .build()
                    .await
            })
            .await;
        let fresh = provider.provide_credentials().await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

/// Whether credentials expiring at `expiry` (None: never) have more than `min_left` to live.
pub fn fresh_enough(expiry: Option<std::time::SystemTime>, now: std::time::SystemTime, min_left: Duration) -> bool {
    expiry.is_none_or(|e| e.duration_since(now).is_ok_and(|left| left > min_left))
}

impl aws_credential_types::provider::ProvideCredentials for SignerSession {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(self.credentials())
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
            .links
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

    /// The job's manifest at a warm slot's place (`s3:PutObject`), where the slot's agent polls.
    pub async fn put_slot_manifest(&self, slot_id: &str, manifest: &names::manifest::Manifest) -> Result<(), AwsError> {
        let body = serde_json::to_vec(manifest).map_err(|e| AwsError { op: "s3:PutObject", code: None, detail: e.to_string() })?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(names::bucket::slot_manifest_key(slot_id))
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", e))?;
        Ok(())
    }

    /// A slot's links: a pre-signed GET and DELETE of its manifest's place (signing needs
    /// `s3:GetObject` and `s3:DeleteObject` there; no AWS call is made).
    pub async fn presign_slot(&self, slot_id: &str, expires: Duration) -> Result<(String, String), AwsError> {
        let key = names::bucket::slot_manifest_key(slot_id);
        let get = self.links.get_object().bucket(&self.bucket).key(&key).presigned(presigning(expires)?).await;
        let get = get.map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        let delete = self.links.delete_object().bucket(&self.bucket).key(&key).presigned(presigning(expires)?).await;
        let delete = delete.map_err(|e| AwsError::from_sdk("s3:DeleteObject (presign)", e))?;
        Ok((get.uri().to_owned(), delete.uri().to_owned()))
    }

    /// Seconds until the credentials this client signs with expire (None: they do not, as
    /// static keys). A pre-signed link stops working when they do, whatever its own expiry.
    pub async fn signing_seconds_left(&self) -> Option<u64> {
        use aws_sdk_s3::config::ProvideCredentials;
        let creds = self.credentials.as_ref()?.provide_credentials().await.ok()?;
        Some(creds.expiry()?.duration_since(std::time::SystemTime::now()).map_or(0, |d| d.as_secs()))
    }

    /// Whether a slot's manifest was ever deleted (`s3:ListBucketVersions` under `slots/`): the
    /// bucket is versioned, so the agent's DELETE through its release link leaves a delete
    /// marker that a later write of the manifest (a duplicate delivery's) does not hide.
    pub async fn slot_manifest_released(&self, slot_id: &str) -> Result<bool, AwsError> {
        let key = names::bucket::slot_manifest_key(slot_id);
        Ok(self.versions_of(&key).await?.delete_markers().iter().any(|m| m.key() == Some(key.as_str())))
    }

    /// The jobs with a secrets object or version in the bucket (`s3:ListBucketVersions` under
    /// `secrets/`, the first thousand).
    pub async fn secret_holders(&self) -> Result<Vec<TaskId>, AwsError> {
        let listed = self.versions_of(names::bucket::SECRETS_PREFIX).await?;
        let keys = listed.versions().iter().filter_map(|v| v.key()).chain(listed.delete_markers().iter().filter_map(|m| m.key()));
        let mut ids: Vec<TaskId> = keys
            .filter_map(|k| k.strip_prefix(names::bucket::SECRETS_PREFIX)?.strip_suffix(".json").and_then(TaskId::parse))
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup_by(|a, b| a.as_str() == b.as_str());
        Ok(ids)
    }

    /// `s3:ListBucketVersions` with `key` as the prefix: its versions and delete markers (and
    /// those of longer keys, which the callers filter out).
    async fn versions_of(&self, key: &str) -> Result<aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput, AwsError> {
        self.client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucketVersions", e))
    }

    /// Whether `key` exists, asked by listing it (`s3:ListBucket` with the key as prefix), not by
    /// reading it: S3 answers a GET or HEAD of a missing key with 403 AccessDenied, not 404, to a
    /// principal that may not list the bucket, and the functions may list only below a prefix.
    pub async fn exists(&self, key: &str) -> Result<bool, AwsError> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", e))?;
        Ok(listed.contents().iter().any(|o| o.key() == Some(key)))
    }

    /// `s3:DeleteObject` of a slot's manifest (none there is not an error).
    pub async fn delete_slot_manifest(&self, slot_id: &str) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(names::bucket::slot_manifest_key(slot_id))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObject", e))?;
        Ok(())
    }

    /// A pre-signed `GET` of the job's manifest (signing needs `s3:GetObject` on it).
    pub async fn presign_manifest(&self, task_id: &TaskId, expires: Duration) -> Result<String, AwsError> {
        let r = self
            .links
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
    /// value), encrypted by the bucket's key like every object. Returns the version the write
    /// made (the bucket is versioned), which the agent's DELETE removes for good.
    pub async fn put_secrets(&self, task_id: &TaskId, secrets: &BTreeMap<String, String>) -> Result<Option<String>, AwsError> {
        let body = serde_json::to_vec(secrets).map_err(|e| AwsError { op: "s3:PutObject", code: None, detail: e.to_string() })?;
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(names::bucket::secrets_key(task_id.as_str()))
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:PutObject", e))?;
        Ok(put.version_id().map(str::to_owned))
    }

    /// Pre-signed links to the job's secrets: a GET to read them (the current version), a DELETE
    /// to remove them once read: of `version` when the write made one, so that nothing of it
    /// stays behind as a noncurrent version (signing needs `s3:GetObject` and
    /// `s3:DeleteObjectVersion`).
    pub async fn presign_secrets(&self, task_id: &TaskId, version: Option<&str>, expires: Duration) -> Result<names::manifest::SecretLinks, AwsError> {
        let key = names::bucket::secrets_key(task_id.as_str());
        let get = self
            .links
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:GetObject (presign)", e))?;
        let delete = self
            .links
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_version_id(version.map(str::to_owned))
            .presigned(presigning(expires)?)
            .await
            .map_err(|e| AwsError::from_sdk("s3:DeleteObjectVersion (presign)", e))?;
        Ok(names::manifest::SecretLinks { get: get.uri().to_owned(), delete: delete.uri().to_owned() })
    }

    /// Every version of the job's secrets, and any delete marker, deleted for good
    /// (`s3:ListBucketVersions` under `secrets/`, `s3:DeleteObjectVersion`): what a crashed agent
    /// or an earlier attempt left. Returns how many were deleted (none there is fine).
    pub async fn purge_secrets(&self, task_id: &TaskId) -> Result<usize, AwsError> {
        let key = names::bucket::secrets_key(task_id.as_str());
        let listed = self.versions_of(&key).await?;
        let versions = listed.versions().iter().filter(|v| v.key() == Some(key.as_str())).filter_map(|v| v.version_id());
        let markers = listed.delete_markers().iter().filter(|m| m.key() == Some(key.as_str())).filter_map(|m| m.version_id());
        let ids: Vec<String> = versions.chain(markers).map(str::to_owned).collect();
        for id in &ids {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .version_id(id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3:DeleteObjectVersion", e))?;
        }
        Ok(ids.len())
    }

    /// The agent's `error.json` of the job, when it wrote one that reads as a report.
    pub async fn error_report(&self, task_id: &TaskId) -> Result<Option<AgentReport>, AwsError> {
        let key = names::bucket::output_key(task_id.as_str(), Output::Error);
        // Most failed jobs have none: asked first (see `exists`), read only when there.
        if !self.exists(&key).await? {
            return Ok(None);
        }
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

/// The tenants' webhook signing secrets in SSM Parameter Store, one SecureString per tenant.
#[derive(Clone, Debug)]
pub struct SigningSecrets {
    pub client: aws_sdk_ssm::Client,
    /// `/<project>/<environment>/webhooks/`.
    pub path: String,
}

impl SigningSecrets {
    /// `ssm:GetParameters` (with decryption) of the tenant's signing secrets: one, or two while
    /// they rotate (newest first); None when the tenant has none.
    pub async fn read(&self, tenant: &str) -> Result<Option<Vec<String>>, AwsError> {
        let name = names::ssm::webhook_secret(&self.path, tenant);
        let r = self
            .client
            .get_parameters()
            .names(&name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ssm:GetParameters", e))?;
        Ok(r.parameters().iter().find(|p| p.name() == Some(name.as_str())).and_then(|p| p.value()).map(|v| v.split_whitespace().map(str::to_owned).collect()))
    }
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
    /// `startedBy` and `clientToken`: the job's id, or a warm slot's `pool…` name.
    pub started_by: String,
    /// The task's tags: (key, value).
    pub tags: Vec<(&'static str, String)>,
    /// Container environment overrides: (name, value).
    pub environment: Vec<(String, String)>,
}

impl RunRequest {
    /// A job's cold task: started by the job's id, tagged with it and its tenant.
    pub fn for_job(task_id: &TaskId, tenant_id: &TenantId, environment: Vec<(String, String)>) -> RunRequest {
        RunRequest {
            started_by: task_id.as_str().to_owned(),
            tags: vec![(names::ecs::TASK_ID_TAG, task_id.as_str().to_owned()), (names::ecs::TENANT_TAG, tenant_id.as_str().to_owned())],
            environment,
        }
    }
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
    /// definition's execution role). `clientToken` = `startedBy` (the job's id, a slot's name),
    /// so a repeated call starts no second task: with the same parameters ECS answers the task
    /// it started, with others (a new manifest link) ConflictException naming it, taken as the
    /// answer.
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
            .client_token(&req.started_by)
            .started_by(&req.started_by)
            .set_tags(Some(req.tags.iter().map(|(k, v)| tag(k, v)).collect()))
            .network_configuration(network)
            .overrides(overrides)
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            // The token already started a task, with other parameters: an earlier attempt whose
            // answer was lost signed its own manifest link. That task is this one's (ECS names
            // it in resourceIds) and no second one starts.
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(c)) if !c.resource_ids().is_empty() => {
                    return Ok(RunOutcome::Started { task_arn: c.resource_ids()[0].clone() });
                }
                _ => return Err(AwsError::from_sdk("ecs:RunTask", e)),
            },
        };
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

    /// What ECS says of a task (`ecs:DescribeTasks`), in the shape of its state-change event:
    /// its status and, once stopped, its stop code and its containers' exit codes. None for a task
    /// ECS no longer knows (stopped tasks are kept for about an hour).
    pub async fn describe(&self, task_arn: &str) -> Result<Option<names::ecs::TaskStateChange>, AwsError> {
        use names::ecs::{ContainerState, StopCode, TaskStatus};
        let r = self.client.describe_tasks().cluster(&self.cluster).tasks(task_arn).send().await.map_err(|e| AwsError::from_sdk("ecs:DescribeTasks", e))?;
        let Some(t) = r.tasks().first() else { return Ok(None) };
        Ok(Some(names::ecs::TaskStateChange {
            task_arn: t.task_arn().unwrap_or(task_arn).to_owned(),
            cluster_arn: t.cluster_arn().map(str::to_owned),
            last_status: t.last_status().and_then(TaskStatus::parse).unwrap_or_default(),
            desired_status: t.desired_status().and_then(TaskStatus::parse),
            started_by: t.started_by().map(str::to_owned),
            group: t.group().map(str::to_owned),
            launch_type: t.launch_type().map(|l| l.as_str().to_owned()),
            stop_code: t.stop_code().and_then(|c| StopCode::parse(c.as_str())),
            stopped_reason: t.stopped_reason().map(str::to_owned),
            containers: t
                .containers()
                .iter()
                .map(|c| ContainerState {
                    name: c.name().unwrap_or_default().to_owned(),
                    last_status: c.last_status().and_then(TaskStatus::parse),
                    exit_code: c.exit_code().map(i64::from),
                    reason: c.reason().map(str::to_owned),
                })
                .collect(),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn a_signing_session_is_renewed_before_its_longest_link_could_outlive_it() {
        let now = SystemTime::now();
        let min_left = Duration::from_secs(1380);
        assert!(fresh_enough(None, now, min_left), "credentials without an expiry (static keys) never need renewing");
        assert!(fresh_enough(Some(now + SIGNER_SESSION), now, min_left), "a fresh session");
        assert!(fresh_enough(Some(now + Duration::from_secs(1381)), now, min_left));
        assert!(!fresh_enough(Some(now + Duration::from_secs(1380)), now, min_left), "a link of min_left would end with it");
        assert!(!fresh_enough(Some(now - Duration::from_secs(1)), now, min_left), "expired");
    }
}
