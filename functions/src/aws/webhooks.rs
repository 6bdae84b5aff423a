//! A finished job's webhook event: its messages on the webhooks queue, its rounds and attempts
//! on the job's item, and the tenant's lanes and parked attempts.

use super::*;

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

    /// Whether a parked attempt's own message, back, would only park again: `parked` is still in
    /// the tenant's set and every one of its `lanes` is held by a lease not yet run out, as read
    /// at once (`dynamodb:TransactGetItems`, consistent; authorized as `dynamodb:GetItem`). Then
    /// no lane is free to take, and whoever frees one wakes this entry or an older one: the
    /// message need not try the lanes and the set again (five writes each time it came back, the
    /// bulk of the emulator's work beside a noisy tenant). Anything else (a lane free, a lease
    /// run out, the entry gone) and it goes the whole way.
    pub async fn still_parked_behind_busy_lanes(&self, tenant: &str, lanes: u32, parked: &ParkedRound) -> Result<bool, AwsError> {
        use aws_sdk_dynamodb::types::{Get, TransactGetItem};
        let get = |key: String| {
            Get::builder()
                .table_name(&self.table)
                .key(t::TASK_ID, s(key))
                .build()
                .map(|g| TransactGetItem::builder().get(g).build())
                .map_err(|e| AwsError { op: "dynamodb:TransactGetItems", code: None, detail: e.to_string() })
        };
        let mut items = vec![get(t::webhook_parked_key(tenant))?];
        for lane in 0..lanes {
            items.push(get(t::webhook_lane_key(tenant, lane))?);
        }
        let r = self
            .client
            .transact_get_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("dynamodb:TransactGetItems", e))?;
        let now = self.clock.now_millis();
        let responses = r.responses();
        let Some((set, lanes_read)) = responses.split_first() else { return Ok(false) };
        let entry = parked.entry();
        let parked_still = parked_set(set.item.as_ref()).contains(&entry);
        let all_held = lanes_read.len() == lanes as usize
            && lanes_read.iter().all(|l| {
                l.item.as_ref().and_then(|i| i.get(t::LANE_UNTIL)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).is_some_and(|until| until >= now)
            });
        Ok(parked_still && all_held)
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
