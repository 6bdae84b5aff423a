//! The warm pool: `warm_pool_size` agent tasks started ahead of their jobs, each waiting for
//! exactly one job and exiting after it, so a job runs about a second after its submit instead
//! of after Fargate's 30-60 s of provisioning.
//!
//! A slot is an item of the jobs table (`slot#<id>`, in the sparse index's `slots` partition by
//! its idle deadline) and a task started by `pool<id>`, whose environment carries only pre-signed
//! links to its manifest's place (`slots/<id>/manifest.json`): a GET the agent polls and a DELETE
//! it uses once it has read it. The container holds no AWS credentials, as a cold task.
//!
//! - Dispatch (the process function): a claimed job takes an idle slot by a conditional write
//!   (`IDLE` -> `CLAIMED` by this job), records it on the job (only if the job has none: one slot
//!   per job under concurrent deliveries; the loser gives its slot back), writes the job's manifest
//!   at the slot's place and moves the job to RUNNING. No idle slot: the cold path, as before.
//! - A slot's end (the reconciler, on its task's STOPPED event): its job's manifest still there
//!   means the job was never taken, and it goes back to the queue (a new message); otherwise the
//!   job ends as a cold task's would. Either way the slot is retired and the pool refilled.
//! - Refill (the process function, asked by a `{"pool": "refill"}` message, which the reconciler
//!   sends when a slot ends and on every sweep, and after each claim): starts the slots the pool
//!   lacks, one per free seat it takes (`seat#<n>` items, n below the pool's size; see
//!   [`refill`]), so refills at once never overshoot. An idle slot leaves by itself at its
//!   deadline (15 min, before its links expire).

use crate::aws::{attr_n, attr_s, written as conditional, AwsError, RunOutcome, RunRequest};
use crate::model::{Job, TaskId};
use crate::time::rfc3339;
use crate::App;
use aws_sdk_dynamodb::types::AttributeValue;
use names::pool::{self as p, SlotState};
use names::{table as t, JobStatus};
use std::collections::HashMap;
use std::time::Duration;

/// A slot as its item holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub id: String,
    pub state: SlotState,
    pub task_arn: Option<String>,
    pub claimed_by: Option<String>,
    /// Epoch seconds: when it stops waiting.
    pub deadline: i64,
    pub handed_over: bool,
    /// Epoch milliseconds when its item was made.
    pub created_at: i64,
    /// Epoch seconds when it was claimed.
    pub claimed_at: i64,
    /// Whether its agent took its job, once its end decided it.
    pub taken: Option<bool>,
    /// The task definition (with its revision) its task runs; None for a slot made before
    /// slots recorded it.
    pub task_definition: Option<String>,
    /// Its wake queue's URL (none: made before slots had one, or without a name prefix).
    pub wake_url: Option<String>,
}

fn slot_from(m: &HashMap<String, AttributeValue>) -> Option<Slot> {
    let gs = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(Slot {
        id: gs(t::TASK_ID)?.strip_prefix(t::SLOT_PREFIX)?.to_owned(),
        state: SlotState::parse(&gs(t::SLOT_STATE)?)?,
        task_arn: gs(t::ECS_TASK_ARN),
        claimed_by: gs(t::CLAIMED_BY),
        deadline: m.get(t::DEADLINE_AT).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
        handed_over: m.get(t::HANDED_OVER).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        created_at: gs(t::CREATED_AT).and_then(|c| crate::time::parse_rfc3339(&c)).unwrap_or(0),
        claimed_at: m.get(t::CLAIMED_AT).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
        taken: m.get(t::SLOT_TAKEN).and_then(|v| v.as_bool().ok()).copied(),
        task_definition: gs(t::SLOT_TASK_DEFINITION),
        wake_url: gs(t::SLOT_WAKE_URL),
    })
}

/// The slot items' calls (`dynamodb:UpdateItem`, `GetItem`, and `Query` of the index).
impl crate::aws::JobStore {
    fn slot_update(&self, slot_id: &str, expression: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key(t::TASK_ID, attr_s(t::slot_key(slot_id))).update_expression(expression)
    }

    /// The slot's retirement (GONE, out of the index) while `condition` holds; the caller adds
    /// what else the condition names (`#st` and `:gone` are named here).
    fn retirement(&self, slot_id: &str, condition: &str) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.slot_update(slot_id, "SET #st = :gone REMOVE #unf")
            .condition_expression(condition)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_values(":gone", attr_s(SlotState::Gone.as_str()))
    }

    /// A new idle slot whose task will run `task_definition` (only if no item has its key).
    pub async fn create_slot(&self, slot_id: &str, deadline: i64, task_definition: &str) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #st = :idle, #unf = :slots, #dl = :dl, #ex = :ex, #ca = :now, #def = :def")
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", t::TASK_ID)
            .expression_attribute_names("#def", t::SLOT_TASK_DEFINITION)
            .expression_attribute_values(":def", attr_s(task_definition))
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_names("#unf", t::UNFINISHED)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_names("#ex", t::EXPIRES_AT)
            .expression_attribute_names("#ca", t::CREATED_AT)
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .expression_attribute_values(":slots", attr_s(t::SLOTS_PARTITION))
            .expression_attribute_values(":dl", attr_n(deadline))
            .expression_attribute_values(":ex", attr_n(self.clock.now_secs() + 86_400))
            .expression_attribute_values(":now", attr_s(rfc3339(self.clock.now_millis())))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// The slot holding pool seat `n`, if any (`dynamodb:GetItem`, consistent).
    pub async fn seat(&self, n: u32) -> Result<Option<String>, AwsError> {
        Ok(self.item(&p::seat_key(n)).await?.and_then(|i| i.get(p::SEAT_SLOT).and_then(|v| v.as_s().ok()).cloned()))
    }

    /// Gives seat `n` to `slot_id`, only while it is still held by `held` (none: free). False
    /// when another refill took it first.
    pub async fn take_seat(&self, n: u32, held: Option<&str>, slot_id: &str) -> Result<bool, AwsError> {
        let u = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, attr_s(p::seat_key(n)))
            .update_expression("SET #slot = :new")
            .expression_attribute_names("#slot", p::SEAT_SLOT)
            .expression_attribute_values(":new", attr_s(slot_id));
        let u = match held {
            Some(old) => u.condition_expression("#slot = :old").expression_attribute_values(":old", attr_s(old)),
            None => u.condition_expression("attribute_not_exists(#slot)"),
        };
        Ok(conditional(u.send().await)?)
    }

    /// Records the task a slot runs in, only while the slot waits without one: false when the
    /// slot was given up meanwhile (a refill found it too long without a task) or has another.
    pub async fn set_slot_task(&self, slot_id: &str, task_arn: &str) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #arn = :arn")
            .condition_expression("#st = :idle AND (attribute_not_exists(#arn) OR #arn = :arn)")
            .expression_attribute_names("#arn", t::ECS_TASK_ARN)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_values(":arn", attr_s(task_arn))
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Records a slot's wake queue, before its task is started, only while the slot waits
    /// without a task: false when it was given up meanwhile.
    pub async fn set_slot_wake(&self, slot_id: &str, wake_url: &str) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #wake = :wake")
            .condition_expression("#st = :idle AND attribute_not_exists(#arn)")
            .expression_attribute_names("#wake", t::SLOT_WAKE_URL)
            .expression_attribute_names("#arn", t::ECS_TASK_ARN)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_values(":wake", attr_s(wake_url))
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Gives up a slot that never got its task, only while it still has none: false when its
    /// task was recorded meanwhile.
    pub async fn abandon_slot(&self, slot_id: &str) -> Result<bool, AwsError> {
        let r = self
            .retirement(slot_id, "#st = :idle AND attribute_not_exists(#arn)")
            .expression_attribute_names("#arn", t::ECS_TASK_ARN)
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Every slot of the index (eventually consistent; a claim is a conditional write).
    pub async fn slots(&self) -> Result<Vec<Slot>, AwsError> {
        Ok(self.query_unfinished(t::SLOTS_PARTITION).await?.iter().filter_map(slot_from).collect())
    }

    /// `dynamodb:GetItem` of a slot (consistent).
    pub async fn slot(&self, slot_id: &str) -> Result<Option<Slot>, AwsError> {
        Ok(self.item(&t::slot_key(slot_id)).await?.as_ref().and_then(slot_from))
    }

    /// Gives the slot to the job: only while it is idle, has its task, runs `task_definition`
    /// (the dispatch's own: its agent reads the manifests this code writes) and is not about to
    /// leave (or is this job's already, not handed over: the SDK's retry of a claim whose answer
    /// was lost is the claim, not a refusal that would leave the slot claimed by no one's
    /// dispatch).
    pub async fn claim_slot(&self, slot_id: &str, task_id: &TaskId, task_definition: &str) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #st = :claimed, #by = :job, #cat = :now")
            .condition_expression(
                "(#st = :idle AND attribute_exists(#arn) AND #dl > :min AND attribute_not_exists(#h) AND #def = :def) OR (#st = :claimed AND #by = :job AND attribute_not_exists(#h))",
            )
            .expression_attribute_names("#def", t::SLOT_TASK_DEFINITION)
            .expression_attribute_values(":def", attr_s(task_definition))
            .expression_attribute_names("#cat", t::CLAIMED_AT)
            .expression_attribute_values(":now", attr_n(self.clock.now_secs()))
            .expression_attribute_names("#h", t::HANDED_OVER)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_names("#by", t::CLAIMED_BY)
            .expression_attribute_names("#arn", t::ECS_TASK_ARN)
            .expression_attribute_names("#dl", t::DEADLINE_AT)
            .expression_attribute_values(":claimed", attr_s(SlotState::Claimed.as_str()))
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .expression_attribute_values(":job", attr_s(task_id.as_str()))
            .expression_attribute_values(":min", attr_n(self.clock.now_secs() + p::CLAIM_MARGIN_SECONDS))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// A claim given back (the job took another slot meanwhile), only while no job was handed
    /// over to it: a slot that was ever given a manifest never takes another job.
    pub async fn release_slot(&self, slot_id: &str, task_id: &TaskId) -> Result<(), AwsError> {
        let r = self
            .slot_update(slot_id, "SET #st = :idle REMOVE #by")
            .condition_expression("#by = :job AND #st = :claimed AND attribute_not_exists(#h)")
            .expression_attribute_names("#h", t::HANDED_OVER)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_names("#by", t::CLAIMED_BY)
            .expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str()))
            .expression_attribute_values(":claimed", attr_s(SlotState::Claimed.as_str()))
            .expression_attribute_values(":job", attr_s(task_id.as_str()))
            .send()
            .await;
        conditional(r)?;
        Ok(())
    }

    /// Marks the slot as handed the job (before its manifest is written), only while the job
    /// holds its claim: false when the claim was given back meanwhile.
    pub async fn slot_handed_over(&self, slot_id: &str, task_id: &TaskId) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #h = :yes")
            .condition_expression("#st = :claimed AND #by = :job")
            .expression_attribute_names("#h", t::HANDED_OVER)
            .expression_attribute_names("#st", t::SLOT_STATE)
            .expression_attribute_names("#by", t::CLAIMED_BY)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":claimed", attr_s(SlotState::Claimed.as_str()))
            .expression_attribute_values(":job", attr_s(task_id.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Records whether the slot's agent took its job, unless an earlier try recorded it: the
    /// verdict that holds.
    pub async fn decide_taken(&self, slot_id: &str, taken: bool) -> Result<bool, AwsError> {
        let r = self
            .slot_update(slot_id, "SET #tk = :tk")
            .condition_expression("attribute_not_exists(#tk)")
            .expression_attribute_names("#tk", t::SLOT_TAKEN)
            .expression_attribute_values(":tk", AttributeValue::Bool(taken))
            .send()
            .await;
        if conditional(r)? {
            return Ok(taken);
        }
        Ok(self.slot(slot_id).await?.and_then(|s| s.taken).unwrap_or(taken))
    }

    /// Retires a slot left claimed by `task_id` (see [`retire_left_claims`]), only while it still
    /// is, and only while it was `handed_over` or not as said: false when a hand-over came
    /// meanwhile (or the slot's end retired it first).
    pub async fn retire_left_claim(&self, slot_id: &str, task_id: &TaskId, handed_over: bool) -> Result<bool, AwsError> {
        let handed = if handed_over { "#h = :true" } else { "attribute_not_exists(#h)" };
        let mut u = self.retirement(slot_id, &format!("#st = :claimed AND #by = :job AND {handed}"));
        if handed_over {
            u = u.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        let r = u
            .expression_attribute_names("#by", t::CLAIMED_BY)
            .expression_attribute_names("#h", t::HANDED_OVER)
            .expression_attribute_values(":claimed", attr_s(SlotState::Claimed.as_str()))
            .expression_attribute_values(":job", attr_s(task_id.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Retires an idle slot, only while it is idle (not claimed meanwhile).
    pub async fn retire_idle_slot(&self, slot_id: &str) -> Result<bool, AwsError> {
        let r = self.retirement(slot_id, "#st = :idle").expression_attribute_values(":idle", attr_s(SlotState::Idle.as_str())).send().await;
        Ok(conditional(r)?)
    }

    /// A slot whose task ended: out of the index, kept until its TTL.
    pub async fn retire_slot(&self, slot_id: &str) -> Result<(), AwsError> {
        let r = self.retirement(slot_id, "attribute_exists(#k)").expression_attribute_names("#k", t::TASK_ID).send().await;
        conditional(r)?;
        Ok(())
    }

    /// Records the slot on the job, only if the job (still provisioning) has none: false when
    /// another delivery recorded one first.
    pub async fn set_warm_slot(&self, task_id: &TaskId, slot_id: &str) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, attr_s(task_id.as_str()))
            .update_expression("SET #ws = :slot")
            .condition_expression("#st = :prov AND attribute_not_exists(#ws) AND attribute_not_exists(#cold)")
            .expression_attribute_names("#cold", t::COLD_START)
            .expression_attribute_names("#ws", t::WARM_SLOT)
            .expression_attribute_names("#st", t::STATUS)
            .expression_attribute_values(":slot", attr_s(slot_id))
            .expression_attribute_values(":prov", attr_s(JobStatus::Provisioning.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Marks the (provisioning) job as started cold, only while no slot holds it: false when a
    /// delivery recorded a slot first (then the job is that slot's, and no task may be started).
    pub async fn mark_cold(&self, task_id: &TaskId) -> Result<bool, AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, attr_s(task_id.as_str()))
            .update_expression("SET #cold = :yes")
            .condition_expression("#st = :prov AND attribute_not_exists(#ws)")
            .expression_attribute_names("#cold", t::COLD_START)
            .expression_attribute_names("#ws", t::WARM_SLOT)
            .expression_attribute_names("#st", t::STATUS)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":prov", attr_s(JobStatus::Provisioning.as_str()))
            .send()
            .await;
        Ok(conditional(r)?)
    }

    /// Forgets the job's slot (one that ended before taking it), only if it is still `slot_id`.
    pub async fn clear_warm_slot(&self, task_id: &TaskId, slot_id: &str) -> Result<(), AwsError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(t::TASK_ID, attr_s(task_id.as_str()))
            .update_expression("REMOVE #ws")
            .condition_expression("#ws = :slot")
            .expression_attribute_names("#ws", t::WARM_SLOT)
            .expression_attribute_values(":slot", attr_s(slot_id))
            .send()
            .await;
        conditional(r)?;
        Ok(())
    }
}

/// What a dispatch came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Handed to the slot's task.
    Warm { slot_id: String, task_arn: String },
    /// No slot: start a cold task.
    Cold,
    /// The job can never start (`Err` of [`crate::manifest::manifest`]).
    Invalid(names::job::ErrorCode, String),
}

/// Hands a claimed (PROVISIONING) job to an idle slot, or says to go cold.
pub async fn dispatch(app: &App, job: &Job) -> Result<Dispatch, AwsError> {
    let store = &app.store;
    let task_id = &job.task_id;
    let mut recorded = job.warm_slot.clone();
    let slot = loop {
        match recorded.take() {
            // An earlier delivery chose a slot: go on with it while it is this job's.
            Some(id) => match store.slot(&id).await? {
                Some(s) if s.state == SlotState::Claimed && s.claimed_by.as_deref() == Some(task_id.as_str()) => break s,
                // Handed this job, whatever became of it since: the job is that slot's (its end
                // ends the job, or sends it back to the queue if its agent never took it).
                // Choosing again would run it twice.
                Some(s) if s.handed_over && s.claimed_by.as_deref() == Some(task_id.as_str()) => break s,
                _ => {
                    // It ended before taking the job: forget it and choose again.
                    store.clear_warm_slot(task_id, &id).await?;
                }
            },
            None => {
                if app.config.warm_pool_size == 0 {
                    return Ok(Dispatch::Cold);
                }
                // Only slots of this release: an agent of another task definition (a deploy
                // replaced it) may not read the manifest this code writes.
                let mine = app.config.task_definition.as_str();
                let mut idle: Vec<Slot> = store
                    .slots()
                    .await?
                    .into_iter()
                    .filter(|s| s.state == SlotState::Idle && s.task_arn.is_some() && s.task_definition.as_deref() == Some(mine))
                    .collect();
                // The ones closest to leaving first.
                idle.sort_by_key(|s| s.deadline);
                let mut claimed = None;
                for s in idle {
                    if store.claim_slot(&s.id, task_id, mine).await? {
                        claimed = Some(s);
                        break;
                    }
                }
                let Some(s) = claimed else { return Ok(Dispatch::Cold) };
                if store.set_warm_slot(task_id, &s.id).await? {
                    break Slot { state: SlotState::Claimed, claimed_by: Some(task_id.as_str().to_owned()), ..s };
                }
                // Another delivery of this job recorded a slot first: give this one back and
                // follow that one (or go cold if the job moved on).
                store.release_slot(&s.id, task_id).await?;
                match store.get(task_id).await? {
                    Some(j) if j.status == JobStatus::Provisioning && j.warm_slot.is_some() => recorded = j.warm_slot,
                    _ => return Ok(Dispatch::Cold),
                }
            }
        }
    };
    let task_arn = slot.task_arn.clone().unwrap_or_default();
    // While the slot is this job's, its manifest is written, again by a later delivery: the mark
    // comes before the manifest, so a dispatch that died between the two left a slot marked and
    // empty. Writing it again after the agent took it is harmless: the agent reads one
    // manifest, and its release (the delete marker) stays what the slot's end goes by.
    if slot.state == SlotState::Claimed {
        let manifest = match crate::manifest::manifest(app, job).await? {
            Ok(m) => m,
            Err((code, why)) => {
                store.release_slot(&slot.id, task_id).await?;
                return Ok(Dispatch::Invalid(code, why));
            }
        };
        // Recorded first: a slot's end that finds no mark knows no manifest was ever written.
        if !slot.handed_over && !store.slot_handed_over(&slot.id, task_id).await? {
            // The claim was given back (this dispatch took longer than the recovery grace):
            // the slot may be another job's now. This job goes cold.
            store.clear_warm_slot(task_id, &slot.id).await?;
            return Ok(Dispatch::Cold);
        }
        app.outputs.put_slot_manifest(&slot.id, &manifest).await?;
        // The slot reads its manifest as soon as this arrives. Without it (a failed send, a
        // slot without a queue), at its long poll's end: later, never wrong.
        if let Some(url) = &slot.wake_url {
            if let Err(e) = app.wakes.wake(url).await {
                tracing::warn!(slot = slot.id.as_str(), error = %e, "a warm slot could not be woken; it finds its job at its next look");
            }
        }
    }
    Ok(Dispatch::Warm { slot_id: slot.id, task_arn })
}

/// Starts the slots the pool lacks; returns how many were started. The pool has
/// `warm_pool_size` seats (`names::pool::seat_key`); a seat is free when no slot holds it or its
/// slot no longer waits (claimed, gone, or too close to its deadline to be given a job). A slot
/// is started only for a seat this refill took by a conditional write, so refills at once (after
/// claims, slot ends and sweeps) never start more than the free seats: before, each started the
/// whole deficit it had counted, up to several times the pool.
pub async fn refill(app: &App) -> Result<usize, AwsError> {
    let now = app.clock.now_secs();
    let mut started = 0;
    for seat in 0..app.config.warm_pool_size {
        let held = app.store.seat(seat).await?;
        if let Some(slot_id) = &held {
            let slot = app.store.slot(slot_id).await?;
            let waiting = slot.as_ref().is_some_and(|s| s.state == SlotState::Idle && s.deadline > now + p::CLAIM_MARGIN_SECONDS);
            // A slot still without a task long after it was made: its refill died before the
            // task was started or recorded. Its seat is free; should its task exist after all,
            // its RUNNING event finds the slot given up and stops it.
            let never_started = slot.as_ref().is_some_and(|s| {
                s.state == SlotState::Idle && s.task_arn.is_none() && s.created_at + app.config.recovery_grace_seconds * 1000 < app.clock.now_millis()
            });
            // An idle slot of an older task definition (a deploy registered a new one): it would
            // never be given a job, so it gives its seat to a slot of this release.
            let superseded = slot.as_ref().filter(|s| s.state == SlotState::Idle && superseded(s.task_definition.as_deref(), &app.config.task_definition));
            if let Some(old) = superseded {
                if !app.store.retire_idle_slot(slot_id).await? {
                    continue;
                }
                if let Some(arn) = &old.task_arn {
                    app.tasks.stop(arn, "warm slot of an older task definition").await?;
                }
                tracing::info!(slot = slot_id.as_str(), task_definition = old.task_definition.as_deref().unwrap_or("unrecorded"), "a warm slot of an older task definition was retired");
            } else if never_started {
                if app.store.abandon_slot(slot_id).await? {
                    tracing::warn!(slot = slot_id.as_str(), "a warm slot never got its task; its seat is free again");
                    if let Some(url) = slot.as_ref().and_then(|s| s.wake_url.as_deref()) {
                        app.wakes.delete(url).await?;
                    }
                } else {
                    continue;
                }
            } else if waiting {
                continue;
            }
        }
        let Some((link, idle)) = lifetimes(app.outputs.signing_seconds_left().await) else {
            tracing::info!("the signing credentials expire too soon for a warm slot; the next refill starts it");
            return Ok(started);
        };
        // The slot's item first, idle and waiting: a refill that reads the seat while this one
        // starts the slot sees its place taken (a seat naming a slot with no item is free).
        let slot_id = uuid::Uuid::new_v4().simple().to_string();
        let deadline = app.clock.now_secs() + idle;
        if !app.store.create_slot(&slot_id, deadline, &app.config.task_definition).await? {
            continue;
        }
        if !app.store.take_seat(seat, held.as_deref(), &slot_id).await? {
            // Another refill took it first.
            app.store.retire_slot(&slot_id).await?;
            continue;
        }
        if start_slot(app, &slot_id, link, deadline).await? {
            started += 1;
            app.store.metrics.count(app.clock.now_millis(), names::metrics::POOL_REFILLS, &[]);
        }
    }
    Ok(started)
}

/// Whether a slot that runs `slot` (its task definition, as recorded) is of an older release than
/// `current`: a lower revision of the same family, or unrecorded (made before slots recorded it).
/// A newer revision is not: a function still running the older release (its environment not yet
/// replaced by the deploy) must not retire the new release's slots.
pub fn superseded(slot: Option<&str>, current: &str) -> bool {
    let Some(slot) = slot else { return true };
    match (names::ecs::revision_of(slot), names::ecs::revision_of(current)) {
        (Some((family, old)), Some((current_family, new))) => family == current_family && old < new,
        _ => false,
    }
}

/// A slot's (link lifetime, idle seconds) when its links are signed with credentials that have
/// `credentials_left` seconds to live: links never outlive them, and the slot leaves two minutes
/// before its links expire. None when too little is left to be worth a slot (the SDK renews
/// credentials minutes before they expire: the next refill signs with fresh ones).
pub fn lifetimes(credentials_left: Option<u64>) -> Option<(u64, i64)> {
    let link = credentials_left.map_or(p::LINK_SECONDS, |left| left.saturating_sub(60).min(p::LINK_SECONDS));
    let idle = (link as i64 - 120).min(p::IDLE_SECONDS);
    (idle >= 300).then_some((link, idle))
}

/// A new slot's links and task (its item made, its seat taken); retired when its task cannot start.
async fn start_slot(app: &App, id: &str, link: u64, deadline: i64) -> Result<bool, AwsError> {
    let id = id.to_owned();
    let (get, release) = app.outputs.presign_slot(&id, Duration::from_secs(link)).await?;
    let env = names::env::agent::SLOT_MANIFEST_URL;
    let mut environment = vec![
        (env.to_owned(), get),
        (names::env::agent::SLOT_RELEASE_URL.to_owned(), release),
        (names::env::agent::SLOT_DEADLINE.to_owned(), deadline.to_string()),
        (names::env::agent::TASK_ID.to_owned(), p::started_by(&id)),
    ];
    // Its wake queue, recorded on the slot before its task exists: whatever ends the slot
    // from here (its task's stop, a failed start) knows what to delete.
    let wake = if app.wakes.enabled() {
        let url = app.wakes.create(&id).await?;
        if !app.store.set_slot_wake(&id, &url).await? {
            app.wakes.delete(&url).await?;
            return Ok(false);
        }
        let creds = app.outputs.signing_credentials().await?;
        let region = app.outputs.region.clone().unwrap_or_else(|| names::defaults::AWS_REGION.to_owned());
        let link = crate::aws::presign_receive(&creds, &region, &url, std::time::SystemTime::now(), Duration::from_secs(link))
            .map_err(|detail| AwsError { op: "sqs:ReceiveMessage (presign)", code: None, detail })?;
        environment.push((names::env::agent::SLOT_WAKE_URL.to_owned(), link));
        Some(url)
    } else {
        None
    };
    let unmake = |wake: Option<String>| async move {
        match wake {
            Some(url) => app.wakes.delete(&url).await,
            None => Ok(()),
        }
    };
    let req = RunRequest { started_by: p::started_by(&id), tags: vec![(names::ecs::SLOT_TAG, id.clone())], environment };
    match app.tasks.run(&req).await {
        Ok(RunOutcome::Started { task_arn }) => {
            if !app.store.set_slot_task(&id, &task_arn).await? {
                // Given up while it started (too slow a start): its task must not run beside
                // the slot that took its seat.
                tracing::warn!(slot = id.as_str(), task_arn = task_arn.as_str(), "a warm slot was given up while it started; its task is stopped");
                app.tasks.stop(&task_arn, "warm slot given up").await?;
                return Ok(false);
            }
            tracing::info!(slot = id.as_str(), task_arn = task_arn.as_str(), "warm slot started");
            Ok(true)
        }
        Ok(RunOutcome::Refused { reason }) => {
            tracing::warn!(slot = id.as_str(), reason = reason.as_str(), "a warm slot could not be started");
            app.store.retire_slot(&id).await?;
            unmake(wake).await?;
            Ok(false)
        }
        Err(e) => {
            app.store.retire_slot(&id).await?;
            unmake(wake).await?;
            Err(e)
        }
    }
}

/// Slots left claimed by a dispatch that died between the claim and the hand-over (the sweep):
/// claimed over the recovery grace ago, never handed over, by a job that does not name them.
/// Such a slot lost its seat when it was claimed (the refill started another in its place), so
/// it is not given back to the pool but stopped and retired. Returns how many.
pub async fn retire_left_claims(app: &App, slots: &[Slot]) -> Result<usize, AwsError> {
    let now = app.clock.now_secs();
    let mut retired = 0;
    for s in slots.iter().filter(|s| s.state == SlotState::Claimed && s.claimed_at + app.config.recovery_grace_seconds < now) {
        let Some(job) = s.claimed_by.as_deref().and_then(TaskId::parse) else { continue };
        let found = app.store.get(&job).await?;
        if s.handed_over {
            // Held by a job that finished (cancelled before its dispatch recorded the slot's task,
            // failed by the sweep, or ended while the slot's own STOPPED event was lost: Lambda
            // drops an asynchronous event after its two retries): nothing is left for the slot's
            // end to decide. Its task is stopped and the slot retired here, so the pool refills.
            if found.as_ref().is_none_or(|j| j.status.is_terminal()) {
                if let Some(arn) = &s.task_arn {
                    app.tasks.stop(arn, "its job finished").await?;
                }
                if app.store.retire_left_claim(&s.id, &job, true).await? {
                    tracing::warn!(slot = s.id.as_str(), task_id = job.as_str(), "a warm slot held by a finished job; stopped and retired");
                    retired += 1;
                }
            }
            continue;
        }
        let named = found.is_some_and(|j| j.warm_slot.as_deref() == Some(s.id.as_str()) && j.status == JobStatus::Provisioning);
        if named {
            // Its job's next delivery goes on with it.
            continue;
        }
        if let Some(arn) = &s.task_arn {
            app.tasks.stop(arn, "warm slot left claimed").await?;
        }
        if app.store.retire_left_claim(&s.id, &job, false).await? {
            tracing::warn!(slot = s.id.as_str(), task_id = job.as_str(), "a warm slot left claimed by a dispatch that died; stopped");
            retired += 1;
        }
    }
    Ok(retired)
}

/// A slot's task runs (the reconciler): the task of a slot whose refill died after RunTask is
/// recorded on its slot here; a task whose slot was given up (or is unknown) is stopped, so the
/// pool never runs more tasks than seats.
pub async fn slot_running(app: &App, slot_id: &str, task_arn: &str) -> Result<crate::task_state::Outcome, AwsError> {
    use crate::task_state::Outcome;
    let slot = app.store.slot(slot_id).await?;
    match slot {
        Some(s) if s.task_arn.as_deref() == Some(task_arn) => Ok(Outcome::Ignored("a warm slot's task")),
        Some(s) if s.state == SlotState::Idle && s.task_arn.is_none() && app.store.set_slot_task(slot_id, task_arn).await? => {
            tracing::warn!(slot = slot_id, task_arn, "a warm slot's task recorded from its RUNNING event (its refill did not)");
            Ok(Outcome::Ignored("a warm slot's task, recorded"))
        }
        _ => {
            // Gone, unknown, or running another task: this one has no seat.
            if app.store.slot(slot_id).await?.is_some_and(|s| s.task_arn.as_deref() == Some(task_arn)) {
                return Ok(Outcome::Ignored("a warm slot's task"));
            }
            tracing::warn!(slot = slot_id, task_arn, "a task of a warm slot that was given up; stopped");
            app.tasks.stop(task_arn, "warm slot given up").await?;
            Ok(Outcome::Ignored("a given-up warm slot's task, stopped"))
        }
    }
}

/// A slot's task stopped (the reconciler): its job ends, or goes back to the queue when it was
/// never taken; the slot is retired and the pool asked to refill.
pub async fn slot_stopped(app: &App, slot_id: &str, detail: &names::ecs::TaskStateChange) -> Result<crate::task_state::Outcome, AwsError> {
    use crate::task_state::Outcome;
    let Some(slot) = app.store.slot(slot_id).await? else { return Ok(Outcome::Ignored("unknown slot")) };
    // Nothing waits on its wake queue any more; deleted after the job's end (which a client
    // waits for), before the slot's retirement (a retried event finds it still to do).
    let unwake = || async {
        match &slot.wake_url {
            Some(url) => app.wakes.delete(url).await,
            None => Ok(()),
        }
    };
    if slot.state == SlotState::Gone {
        // (A slot retired before its task stopped still has its queue.)
        unwake().await?;
        // The same event again, after it was handled (the sweep refills what it missed); or the
        // first, for a slot the sweep retired when its job ended (timed out, cancelled) before
        // the task stopped: that job's kept running place is free now.
        if let Some(job_id) = slot.claimed_by.as_deref().and_then(TaskId::parse) {
            if let Some(job) = app.store.get(&job_id).await?.filter(|j| j.warm_slot.as_deref() == Some(slot_id)) {
                if app.store.give_back_place(&job).await? {
                    return Ok(Outcome::Ignored("a retired slot's job ended before its task stopped; its running place given back"));
                }
            }
        }
        return Ok(Outcome::Ignored("a slot already retired"));
    }
    let mut outcome = Outcome::Ignored("an idle slot ended");
    if let Some(job_id) = slot.claimed_by.as_deref().and_then(TaskId::parse) {
        // Taken: the agent deleted the manifest through its release link (a delete marker of the
        // versioned bucket, which a duplicate delivery writing the manifest again after the take
        // does not hide), or the job's agent.log is there (the agent uploads it last for a job
        // it ran). Nothing was handed over without the mark, which precedes the manifest. The
        // verdict is recorded before anything acts on it: this end may run again (a retried or
        // duplicate event), after the manifest is deleted below, and must decide as it did.
        let taken = match slot.taken {
            Some(taken) => taken,
            None => {
                let seen = slot.handed_over
                    && (app.outputs.slot_manifest_released(slot_id).await?
                        || app.outputs.exists(&names::bucket::output_key(job_id.as_str(), names::Output::Log)).await?);
                app.store.decide_taken(slot_id, seen).await?
            }
        };
        if taken {
            // The job ends as a cold task's would.
            let as_job = names::ecs::TaskStateChange { started_by: Some(job_id.as_str().to_owned()), ..detail.clone() };
            outcome = crate::task_state::job_task_change(app, &as_job, Some(slot_id)).await?;
        } else {
            // Never taken: back to the queue (not an attempt of the job's). Safe to repeat when
            // the event comes again: a job already queued by an earlier try is sent again (a
            // duplicate message is ignored), and the manifest goes last, so a retry still sees
            // that the job was not taken.
            let deadline = app.clock.now_secs() + crate::QUEUE_ALLOWANCE_SECONDS;
            let back = vec![(t::QUEUED_REASON, attr_s(names::job::QueuedReason::Dispatch.as_str())), (t::DEADLINE_AT, attr_n(deadline))];
            // Only the job this slot holds: one whose slot was cleared and that runs elsewhere
            // (a slot left CLAIMED by a crash) stays where it is.
            let moved = app.store.transition_in_slot(&job_id, JobStatus::Queued, back, slot_id).await?.is_some();
            let queued = moved || app.store.get(&job_id).await?.is_some_and(|j| j.status == JobStatus::Queued && j.warm_slot.as_deref() == Some(slot_id));
            if queued {
                app.queue.send(&job_id).await?;
                app.store.clear_warm_slot(&job_id, slot_id).await?;
                tracing::warn!(task_id = job_id.as_str(), slot = slot_id, "a warm slot ended before taking its job; the job is queued again");
                outcome = Outcome::Applied(JobStatus::Queued);
            } else if let Some(job) = app.store.get(&job_id).await?.filter(|j| j.warm_slot.as_deref() == Some(slot_id)) {
                // Ended (cancelled, timed out) while this slot held it: the running place it
                // kept is free now.
                app.store.give_back_place(&job).await?;
            }
            app.outputs.delete_slot_manifest(slot_id).await?;
        }
    }
    unwake().await?;
    app.store.retire_slot(slot_id).await?;
    app.queue.send_refill().await?;
    Ok(outcome)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_never_outlive_the_credentials_that_sign_them() {
        assert_eq!(lifetimes(None), Some((p::LINK_SECONDS, p::IDLE_SECONDS)), "static keys: the full lifetimes");
        assert_eq!(lifetimes(Some(12 * 3600)), Some((p::LINK_SECONDS, p::IDLE_SECONDS)));
        // 10 minutes of credentials left: links of 9, a slot that waits 7.
        assert_eq!(lifetimes(Some(600)), Some((540, 420)));
        assert_eq!(lifetimes(Some(400)), None, "too short to be worth a slot");
        assert_eq!(lifetimes(Some(0)), None);
    }

    #[test]
    fn a_slot_is_superseded_by_a_later_revision_of_its_family_only() {
        let td = |r: &str| format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/app-dev-agent{r}");
        assert!(superseded(Some(&td(":3")), &td(":4")), "an older revision");
        assert!(superseded(None, &td(":4")), "a slot made before slots recorded their task definition");
        assert!(!superseded(Some(&td(":4")), &td(":4")), "this release's own");
        assert!(!superseded(Some(&td(":5")), &td(":4")), "a newer release's: a function of the older one leaves it");
        assert!(!superseded(Some(&td(":3")), &td("")), "no revision to compare");
        let other = "arn:aws:ecs:eu-west-1:123456789012:task-definition/other-agent:1";
        assert!(!superseded(Some(other), &td(":4")), "another family is not compared");
    }
}
