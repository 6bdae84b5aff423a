//! The webhook function: delivers a finished job's event to the URL its submit named, signed per
//! the Standard Webhooks specification, and retries on a schedule.
//!
//! Fed by the webhooks queue: the function that finishes a job queues its first delivery (and the
//! sweep queues any it could not). Each attempt is one message; a failed attempt queues the next
//! as a new message, delayed by the schedule (SQS delays stop at 15 minutes, so a longer wait is
//! chained through `not_before`). After the last retry the event goes to the dead-letter queue,
//! whose alarm fires. Every attempt is recorded on the job, so `GET /jobs/{id}` shows them.
//!
//! The destination is checked like the agent's egress, at send time: the host is resolved here,
//! every address it resolves to must be public, and the connection goes to exactly those
//! addresses (a second lookup cannot swap one in). No redirect is followed; only a 2xx answer is
//! a delivery.

use crate::aws::{AwsError, Delivery};
use crate::model::{Attempt, Job, TaskId};
use crate::time::rfc3339;
use crate::App;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use names::webhook::{self as wh, DeliveryState as State};
use std::net::{IpAddr, SocketAddr};

/// What one delivery message came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered(u16),
    /// The attempt failed; attempt `next` is queued `wait` seconds on.
    Retrying { next: u32, wait: u32, error: String },
    /// The last attempt failed; the event is in the dead-letter queue.
    DeadLettered(String),
    /// Not yet due: queued again for the rest of its wait.
    Deferred(u32),
    /// Every lane of its tenant is busy: parked until an attempt frees one; its own message
    /// comes back after the seconds given (None: a wake, whose event's own message is to come).
    Parked(Option<u32>),
    /// Nothing to send (an older round, a delivered event, a job that expired).
    Dropped(&'static str),
}

/// Processes a batch, its messages at once (each attempt may take up to the timeout); returns
/// the ids of the messages whose handling failed (an AWS call), which SQS delivers again.
pub async fn batch(app: &App, event: aws_lambda_events::event::sqs::SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    crate::identity::acting_as(crate::Function::Webhook, Box::pin(batch_as_webhook(app, event))).await
}

async fn batch_as_webhook(app: &App, event: aws_lambda_events::event::sqs::SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let handled = futures_util::future::join_all(event.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match record.body.as_deref().map(serde_json::from_str::<Delivery>) {
            Some(Ok(d)) => deliver(app, d).await,
            _ => Ok(Outcome::Dropped("malformed message")),
        };
        (id, outcome)
    }))
    .await;
    let mut resp = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for (id, outcome) in handled {
        match outcome {
            Ok(o) => tracing::info!(message_id = %id, outcome = ?o, "webhook message handled"),
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "webhook message failed; SQS delivers it again");
                resp.add_failure(id);
            }
        }
    }
    resp
}

/// Makes the attempt a message asks for (or queues it again while it is not due).
pub async fn deliver(app: &App, d: Delivery) -> Result<Outcome, AwsError> {
    crate::identity::acting_as(crate::Function::Webhook, Box::pin(deliver_as_webhook(app, d))).await
}

async fn deliver_as_webhook(app: &App, d: Delivery) -> Result<Outcome, AwsError> {
    let now = app.clock.now_secs();
    if d.not_before > now {
        let wait = u32::try_from(d.not_before - now).unwrap_or(u32::MAX);
        app.webhooks.send(&d, wait).await?;
        return Ok(Outcome::Deferred(wait));
    }
    let Some(task_id) = TaskId::parse(&d.task_id) else { return Ok(Outcome::Dropped("not a job id")) };
    if d.attempt == 0 {
        return Ok(Outcome::Dropped("attempts count from 1"));
    }
    let Some(job) = app.store.get(&task_id).await? else { return Ok(Outcome::Dropped("no such job")) };
    let Some(hook) = job.webhook.clone() else { return Ok(Outcome::Dropped("the job has no webhook")) };
    if !job.status.is_terminal() {
        return Ok(Outcome::Dropped("the job has not finished"));
    }
    if hook.round != d.round {
        return Ok(Outcome::Dropped("a message of an earlier round"));
    }
    if matches!(hook.state, Some(State::Delivered | State::Failed)) {
        return Ok(Outcome::Dropped("this round already ended"));
    }
    if hook.attempts.len() >= d.attempt as usize {
        // A second message of an attempt made already (an SQS duplicate, or a parked event's own
        // message after its wake made it).
        return Ok(Outcome::Dropped("this attempt was made already"));
    }
    let tenant = job.tenant_id.as_str();
    // One of the tenant's lanes, or parked until one frees: a tenant whose receiver hangs holds
    // its own lanes, not the invocations every tenant's deliveries share.
    let holder = uuid::Uuid::new_v4();
    let hold_ms = i64::try_from(app.config.webhook_timeout.as_millis()).unwrap_or(i64::MAX / 2) + wh::LANE_LEASE_MARGIN_SECONDS as i64 * 1000;
    // Its own message back while it is still parked and every lane is held: it waits again, at
    // the cost of one read (and a put-off of its stall deadline when that draws near).
    if let (Some(at), false) = (d.parked_at, d.woken) {
        if app.store.still_parked_behind_busy_lanes(tenant, wh::TENANT_LANES, &d.parked(at)).await? {
            return wait_again(app, &task_id, tenant, &d, &holder.to_string(), job.deadline_at).await;
        }
    }
    let lane = match app.store.take_lane(tenant, wh::TENANT_LANES, &holder.to_string(), hold_ms).await? {
        Some(lane) => {
            // Its own message, parked before: its entry goes (a wake would find it made).
            if let (Some(at), false) = (d.parked_at, d.woken) {
                if let Err(e) = app.store.unpark_round(tenant, &d.parked(at)).await {
                    tracing::warn!(tenant, error = %e, "could not take a parked entry off; a wake drops it");
                }
            }
            lane
        }
        None => match park(app, &task_id, tenant, &d, &holder.to_string(), hold_ms).await? {
            Parked::Lane(lane) => lane,
            Parked::Waiting(outcome) => return Ok(outcome),
        },
    };
    let started = std::time::Instant::now();
    let at = rfc3339(app.clock.now_millis());
    let sent = async {
        // Built at each attempt, never carried from the first: its output links are signed for an
        // hour, and the later retries of the schedule come hours after the first attempt. (A
        // message of an older version that carries a body is rebuilt too.)
        // Both at once: the body's links (a listing of the outputs) and the tenant's secrets.
        let (payload, secrets) = tokio::try_join!(payload(app, &job), app.signing.read(tenant))?;
        let result = match secrets {
            None => Err((None, format!("tenant {tenant} has no webhook signing secret (scripts/webhook-secret.sh create {tenant})"))),
            Some(secrets) => {
                let id = wh::event_id(task_id.as_str());
                match signature(&secrets, &id, now, &payload) {
                    Ok(sig) => send(&app.config, &hook.url, &id, now, &sig, &payload).await,
                    Err(e) => Err((None, e)),
                }
            }
        };
        Ok::<_, AwsError>((payload, result))
    }
    .await;
    // Recorded first (a function that dies between the send and the record sends the attempt
    // again: the narrower that gap, the rarer), then the lane is given back.
    let recorded = record(app, &task_id, tenant, d, sent, at, started).await;
    // Given back whatever came of it (a lane not given back is free when its lease runs out),
    // and handed to the tenant's oldest parked event.
    match app.store.free_lane(tenant, lane, &holder.to_string()).await {
        Ok(()) => {
            if let Err(e) = wake(app, tenant).await {
                tracing::warn!(tenant, error = %e, "could not wake a parked webhook event; its own message comes back");
            }
        }
        Err(e) => tracing::warn!(tenant, lane, error = %e, "could not give a webhook lane back; its lease runs out"),
    }
    recorded
}

/// What an attempt came to: the body sent, and the receiver's status or why none came.
type Sent = Result<(String, Result<u16, (Option<u16>, String)>), AwsError>;

/// Records an attempt's result and queues what follows it: the next attempt, or the event to the
/// dead-letter queue after the last.
async fn record(app: &App, task_id: &TaskId, tenant: &str, d: Delivery, sent: Sent, at: String, started: std::time::Instant) -> Result<Outcome, AwsError> {
    let now = app.clock.now_secs();
    let (payload, result) = sent?;
    let (status_code, error) = match &result {
        Ok(code) => (Some(*code), None),
        Err((code, e)) => (*code, Some(e.clone())),
    };
    let attempt = Attempt { at, attempt: d.attempt, status_code, error: error.clone(), duration_ms: started.elapsed().as_millis() as u64 };
    let schedule = &app.config.webhook_retry_seconds;
    let state = match (&result, schedule.get(d.attempt as usize - 1)) {
        (Ok(_), _) => State::Delivered,
        (Err(_), Some(_)) => State::Sending,
        (Err(_), None) => State::Failed,
    };
    // Recorded before the next message is queued: a failure here has SQS repeat this attempt,
    // never start a second chain of retries.
    let next = schedule.get(d.attempt as usize - 1).copied().filter(|_| result.is_err());
    if !app.store.record_attempt(task_id, d.round, &attempt, state, next).await? {
        return Ok(Outcome::Dropped("a message of an earlier round, or of an attempt recorded already"));
    }
    // Counted once recorded (an attempt recorded already is not counted again); a delivery's
    // latency from the event's own time (the job's end).
    let now_ms = app.clock.now_millis();
    let outcome = match state {
        State::Delivered => "delivered",
        State::Failed => "gave_up",
        _ => "failed",
    };
    app.store.metrics.count(now_ms, names::metrics::WEBHOOK_ATTEMPTS, &[(names::metrics::dim::OUTCOME, outcome)]);
    if state == State::Delivered {
        let finished = serde_json::from_str::<serde_json::Value>(&payload).ok().and_then(|v| v["timestamp"].as_str().and_then(crate::time::parse_rfc3339));
        if let Some(f) = finished {
            app.store.metrics.emit(now_ms, names::metrics::WEBHOOK_LATENCY, &[], (now_ms - f).max(0) as f64);
        }
    }
    let error = error.unwrap_or_default();
    match (result, schedule.get(d.attempt as usize - 1)) {
        (Ok(code), _) => Ok(Outcome::Delivered(code)),
        (Err(_), Some(&wait)) => {
            let next = Delivery { attempt: d.attempt + 1, not_before: now + i64::from(wait), ..Delivery::first(&d.task_id, d.round) };
            app.webhooks.send(&next, wait).await?;
            Ok(Outcome::Retrying { next: next.attempt, wait, error })
        }
        (Err(_), None) => {
            tracing::warn!(task_id = task_id.as_str(), tenant, attempts = d.attempt, error = error.as_str(), "webhook failed every attempt; event dead-lettered");
            app.webhooks.dead_letter(&Delivery { payload: Some(payload), last_error: Some(error.clone()), ..d }).await?;
            Ok(Outcome::DeadLettered(error))
        }
    }
}

/// What parking an attempt came to.
enum Parked {
    /// A lane freed meanwhile, and is this attempt's.
    Lane(u32),
    /// Parked (or dropped: its round moved on).
    Waiting(Outcome),
}

/// Parks an attempt whose tenant holds every lane: its entry joins the tenant's parked set, then
/// (unless it is a wake, whose own message is still to come) its own message is queued again, in
/// case no wake comes, and the round's stall deadline is put off past it.
async fn park(app: &App, task_id: &TaskId, tenant: &str, d: &Delivery, holder: &str, hold_ms: i64) -> Result<Parked, AwsError> {
    let parked = d.parked(d.parked_at.unwrap_or_else(|| app.clock.now_millis()));
    // A lane freed between the refusal and the park found no entry to wake: look once more. Not
    // when the entry was there already (its own message back, a wake and its message both
    // here): whoever added it looked after adding it, and a lane freed since then found it, or an
    // older entry, waiting, and woke one.
    if app.store.park_round(tenant, &parked).await? {
        if let Some(lane) = app.store.take_lane(tenant, wh::TENANT_LANES, holder, hold_ms).await? {
            // (Lost to a waker: its wake finds this attempt made.)
            app.store.unpark_round(tenant, &parked).await?;
            return Ok(Parked::Lane(lane));
        }
    }
    if d.woken {
        return Ok(Parked::Waiting(Outcome::Parked(None)));
    }
    Ok(Parked::Waiting(wait_again(app, task_id, tenant, &Delivery { parked_at: Some(parked.parked_at), ..d.clone() }, holder, None).await?))
}

/// Queues a parked attempt's own message again, in case no wake comes: each wait twice the last
/// (a tenant's backlog behind a hanging receiver costs few messages), at most a quarter of the
/// stall time, plus up to as much again at random (so they do not come back together). The
/// round's stall deadline is put off past it, unless `deadline` (the round's, as read) is far
/// enough ahead already: past the wait and half the stall time.
async fn wait_again(app: &App, task_id: &TaskId, tenant: &str, d: &Delivery, holder: &str, deadline: Option<i64>) -> Result<Outcome, AwsError> {
    let stall = app.config.webhook_stall_seconds;
    let cap = wh::MAX_LANE_WAIT_SECONDS.min(u32::try_from(stall / 4).unwrap_or(u32::MAX)).max(1);
    let base = wh::LANE_WAIT_SECONDS.saturating_mul(1 << d.lane_waits.min(8)).min(cap);
    let wait = base + u32::from(u16::from_le_bytes([holder.as_bytes()[0], holder.as_bytes()[1]])) % (base + 1);
    let now = app.clock.now_secs();
    let far_enough = deadline.is_some_and(|dl| dl >= now + i64::from(wait) + stall / 2);
    if !far_enough && !app.store.keep_waiting(task_id, d.round, now + i64::from(wait) + stall).await? {
        if let Some(at) = d.parked_at {
            app.store.unpark_round(tenant, &d.parked(at)).await?;
        }
        return Ok(Outcome::Dropped("the round ended or moved on"));
    }
    app.webhooks.send(&Delivery { lane_waits: d.lane_waits + 1, woken: false, ..d.clone() }, wait).await?;
    Ok(Outcome::Parked(Some(wait)))
}

/// Hands a freed lane to the tenant's oldest parked attempt that still waits: takes its entry off
/// the set (of two wakers, one wins) and queues its wake at once. Entries of attempts that no
/// longer wait (made by their own message, or of a round redelivered since) are dropped on the
/// way. A function that dies between the two leaves the attempt to its own message. True when
/// one was woken.
async fn wake(app: &App, tenant: &str) -> Result<bool, AwsError> {
    for parked in app.store.parked_rounds(tenant).await?.into_iter().take(wh::WAKE_SCAN) {
        if !app.store.unpark_round(tenant, &parked).await? {
            continue;
        }
        let waits = match TaskId::parse(&parked.task_id) {
            Some(id) => app.store.get(&id).await?.and_then(|j| j.webhook).is_some_and(|h| {
                h.round == parked.round && !matches!(h.state, Some(State::Delivered | State::Failed)) && h.attempts.len() + 1 == parked.attempt as usize
            }),
            None => false,
        };
        if waits {
            app.webhooks.send(&parked.wake(), 0).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// The event's body: its type, when the job finished, and the job's status body (the one
/// `GET /jobs/{id}` answers, with links to its outputs, without the webhook's own record).
pub async fn payload(app: &App, job: &Job) -> Result<String, AwsError> {
    let mut data = crate::view::status_body(app, job).await?;
    data.webhook = None;
    let event = names::api::WebhookEvent {
        kind: wh::event_type(job.status).unwrap_or("job.finished").to_owned(),
        timestamp: job.finished_at.clone().unwrap_or_else(|| job.updated_at.clone()),
        data,
    };
    Ok(serde_json::to_string(&event).expect("events serialize"))
}

/// `webhook-signature`: `v1,<base64 of HMAC-SHA256 of "{id}.{timestamp}.{body}">` for each
/// secret, separated by spaces (two while a tenant's secrets rotate).
pub fn signature(secrets: &[String], id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    use hmac::{KeyInit, Mac};
    let mut out = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let key = secret
            .strip_prefix(wh::SECRET_PREFIX)
            .and_then(|k| B64.decode(k).ok())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("signing secret {} of the tenant is not `{}` and base64", i + 1, wh::SECRET_PREFIX))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        out.push(format!("v1,{}", B64.encode(mac.finalize().into_bytes())));
    }
    if out.is_empty() {
        return Err("the tenant's signing secret parameter is empty".into());
    }
    Ok(out.join(" "))
}

/// Whether a webhook URL may be used at all: https (http only in local mode), and a host that,
/// when it is an address, is a public one. Names are checked when the event is sent.
pub fn check_url(config: &crate::Config, raw: &str) -> Result<url::Url, String> {
    let url = names::job::rules::url_field("webhook.url", raw).map_err(|e| e.message)?;
    if url.scheme() != "https" && !(config.webhook_allow_http && url.scheme() == "http") {
        return Err("`webhook.url` must be an https URL".into());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    if let Some(ip) = literal_ip(&url) {
        config.webhook_egress.check(&ip.to_string(), ip, port).map_err(|e| format!("`webhook.url` is refused: {e}"))?;
    }
    Ok(url)
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    }
}

/// Resolves the destination, checks every address, and POSTs the body to exactly those
/// addresses: the answer's status, or (the status if one came, why it failed).
async fn send(config: &crate::Config, raw: &str, id: &str, timestamp: i64, signature: &str, body: &str) -> Result<u16, (Option<u16>, String)> {
    let url = check_url(config, raw).map_err(|e| (None, e))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match literal_ip(&url) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => match tokio::time::timeout(config.webhook_timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err((None, format!("cannot resolve {host}: {e}"))),
            Err(_) => return Err((None, format!("resolving {host} took longer than {} s", config.webhook_timeout.as_secs()))),
        },
    };
    if addrs.is_empty() {
        return Err((None, format!("{host} resolves to no address")));
    }
    // Every address must pass: a name that also resolves to an internal one is refused whole.
    for a in &addrs {
        config.webhook_egress.check(&host, a.ip(), port).map_err(|e| (None, format!("refused destination: {host} resolves to {e}")))?;
    }
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.webhook_timeout)
        .connect_timeout(std::time::Duration::from_secs(wh::CONNECT_TIMEOUT_SECONDS).min(config.webhook_timeout))
        .no_proxy()
        .user_agent(concat!("job-webhooks/", env!("CARGO_PKG_VERSION")));
    if literal_ip(&url).is_none() {
        client = client.resolve_to_addrs(&host, &addrs);
    }
    let client = client.build().map_err(|e| (None, format!("HTTP client: {e}")))?;
    let r = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(wh::ID_HEADER, id)
        .header(wh::TIMESTAMP_HEADER, timestamp.to_string())
        .header(wh::SIGNATURE_HEADER, signature)
        .body(body.to_owned())
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
        Ok(resp) if resp.status().is_redirection() => {
            Err((Some(resp.status().as_u16()), format!("HTTP {}: redirects are not followed", resp.status().as_u16())))
        }
        Ok(resp) => Err((Some(resp.status().as_u16()), format!("HTTP {}", resp.status().as_u16()))),
        Err(e) if e.is_timeout() => Err((None, format!("no answer within {} s", config.webhook_timeout.as_secs()))),
        Err(e) if e.is_connect() => Err((None, format!("cannot connect: {}", root_cause(&e)))),
        Err(e) => Err((None, root_cause(&e))),
    }
}

/// The innermost error's words (reqwest's outer one only says "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `POST /jobs/{id}/webhook`: a new round of delivery of a finished job's event (same
/// `webhook-id`, a fresh body, the schedule from its start), unless the current round is young
/// and still being sent (`NewRound::InFlight`) or the job has not finished or has no webhook.
pub async fn redeliver(app: &App, task_id: &TaskId) -> Result<crate::aws::NewRound, AwsError> {
    let started = app.store.new_round(task_id).await?;
    if let crate::aws::NewRound::Started(job) = &started {
        let round = job.webhook.as_ref().map_or(0, |w| w.round);
        app.webhooks
            .send(&Delivery::first(task_id.as_str(), round), 0)
            .await?;
    }
    Ok(started)
}

/// A new signing secret, `whsec_` and the base64 of 32 random bytes: for the local stack and
/// the tests (in AWS, scripts/webhook-secret.sh makes them).
pub fn new_secret() -> String {
    let bytes: Vec<u8> = uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect();
    format!("{}{}", wh::SECRET_PREFIX, B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_specification_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
        let sig = signature(&[secret.clone()], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature(&["whsec_AAAA".into(), secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#).unwrap();
        assert!(two.ends_with(" v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), "{two}");
        assert!(signature(&["nope".into()], "m", 1, "{}").unwrap_err().contains("whsec_"));
        assert!(signature(&[], "m", 1, "{}").is_err());
    }

    #[test]
    fn urls_are_https_to_public_hosts() {
        let c = crate::Config::defaults();
        assert!(check_url(&c, "https://hooks.example.com/x").is_ok());
        assert!(check_url(&c, "http://hooks.example.com/x").unwrap_err().contains("https"));
        for bad in ["https://127.0.0.1/", "https://169.254.169.254/latest", "https://10.0.0.1:8443/", "https://[::1]/", "https://[fd00:ec2::254]/", "https://[::ffff:169.254.170.2]/"] {
            assert!(check_url(&c, bad).unwrap_err().contains("refused"), "{bad}");
        }
        assert!(check_url(&c, "https://93.184.216.34:8443/hook").is_ok(), "any port of a public address");
        let local = crate::Config { webhook_allow_http: true, ..crate::Config::defaults() };
        assert!(check_url(&local, "http://hooks.example.com/x").is_ok());
        assert!(check_url(&c, "ftp://x/").is_err());
    }
}
