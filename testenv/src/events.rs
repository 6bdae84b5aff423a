//! The events the functions receive, built as the typed values of `aws_lambda_events` and
//! `names::ecs`, for every place that hands one to a handler: the local stack's SQS poller and
//! Fargate stand-in, and the functions' tests. The handlers read the same types.

use aws_lambda_events::event::apigw::ApiGatewayProxyRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use names::ecs::TaskStateChange;

/// The account the emulator and the stand-ins use.
pub const ACCOUNT_ID: &str = "123456789012";

/// An `ECS Task State Change` event as EventBridge delivers it.
pub fn task_state_change(detail: TaskStateChange) -> EventBridgeEvent<TaskStateChange> {
    let mut event = EventBridgeEvent::<TaskStateChange>::default();
    event.version = Some("0".into());
    event.id = Some(unique_id());
    event.detail_type = names::ecs::TASK_STATE_CHANGE.into();
    event.source = names::ecs::EVENT_SOURCE.into();
    event.account = Some(ACCOUNT_ID.into());
    event.time = Some(chrono::Utc::now());
    event.region = Some(names::defaults::AWS_REGION.into());
    event.resources = Some(vec![detail.task_arn.clone()]);
    event.detail = detail;
    event
}

/// The event as the JSON a Lambda receives.
/// Records on the emulator's ECS task what a stopped task's state change says (its stop code and
/// reason, its containers' exit codes), as ECS records it before it sends the event: DescribeTasks
/// then answers as ECS does for that task (testenv/py/moto_server.py).
pub async fn record_stopped(endpoint: &str, detail: &TaskStateChange) -> Result<(), String> {
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/_testenv/ecs/stopped"))
        .header("content-type", "application/json")
        .body(serde_json::to_string(detail).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("recording the stop of {}: {e}", detail.task_arn))?;
    if r.status().is_success() {
        Ok(())
    } else {
        Err(format!("recording the stop of {}: {} {}", detail.task_arn, r.status(), r.text().await.unwrap_or_default()))
    }
}

pub fn to_json<T: serde::Serialize>(event: &T) -> serde_json::Value {
    serde_json::to_value(event).expect("events always serialize")
}

/// One message of an SQS batch: its id, body and how often SQS has delivered it, and, when it
/// came from a queue, its receipt handle, body digest and queue.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub receipt_handle: Option<String>,
    pub md5_of_body: Option<String>,
    pub queue_arn: Option<String>,
}

impl Delivery {
    pub fn new(message_id: impl Into<String>, body: impl Into<String>, receive_count: u32) -> Delivery {
        Delivery { message_id: message_id.into(), body: body.into(), receive_count, ..Delivery::default() }
    }
}

/// An SQS batch as the event source mapping delivers it.
pub fn sqs_event(deliveries: impl IntoIterator<Item = Delivery>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = deliveries
        .into_iter()
        .map(|d| {
            let mut m = SqsMessage::default();
            m.message_id = Some(d.message_id);
            m.body = Some(d.body);
            m.attributes.insert("ApproximateReceiveCount".into(), d.receive_count.to_string());
            m.receipt_handle = d.receipt_handle;
            m.md5_of_body = d.md5_of_body;
            m.event_source_arn = d.queue_arn;
            m.event_source = Some("aws:sqs".into());
            m.aws_region = Some(names::defaults::AWS_REGION.into());
            m
        })
        .collect();
    event
}

/// A request as API Gateway's REST proxy integration hands it to a Lambda: what the API key's
/// tenant and the route make of it.
#[derive(Clone, Debug, Default)]
pub struct ProxyRequest {
    pub method: String,
    /// The route's path template (`/jobs/{task_id}`).
    pub resource: String,
    /// The request's path below the stage (`/jobs/1234`).
    pub path: String,
    pub path_parameters: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub is_base64_encoded: bool,
    pub api_key: Option<String>,
    pub api_key_id: String,
    pub request_id: String,
    pub time_epoch_millis: i64,
}

/// The typed REST proxy event for `r`.
pub fn api_gateway_proxy(r: ProxyRequest) -> ApiGatewayProxyRequest {
    let method = http::Method::from_bytes(r.method.as_bytes()).unwrap_or(http::Method::GET);
    let mut headers = http::HeaderMap::new();
    for (k, v) in &r.headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    }
    let query: query_map::QueryMap = r.query.iter().fold(std::collections::HashMap::<String, Vec<String>>::new(), |mut m, (k, v)| {
        m.entry(k.clone()).or_default().push(v.clone());
        m
    }).into();
    let mut e = ApiGatewayProxyRequest::default();
    e.resource = Some(r.resource.clone());
    e.path = Some(r.path.clone());
    e.http_method = method.clone();
    e.multi_value_headers = headers.clone();
    e.headers = headers;
    e.multi_value_query_string_parameters = query.clone();
    e.query_string_parameters = query;
    e.path_parameters = r.path_parameters.into_iter().collect();
    e.body = r.body;
    e.is_base64_encoded = r.is_base64_encoded;
    let c = &mut e.request_context;
    c.account_id = Some(ACCOUNT_ID.into());
    c.stage = Some(names::routes::STAGE.into());
    c.request_id = Some(r.request_id);
    c.protocol = Some("HTTP/1.1".into());
    c.resource_path = Some(r.resource);
    c.path = Some(format!("/{}{}", names::routes::STAGE, r.path));
    c.http_method = method;
    c.request_time_epoch = r.time_epoch_millis;
    c.apiid = Some("local".into());
    c.identity.api_key = r.api_key;
    c.identity.api_key_id = Some(r.api_key_id);
    c.identity.source_ip = Some("127.0.0.1".into());
    e
}

fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), N.fetch_add(1, Ordering::Relaxed) & 0xffff, chrono::Utc::now().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use names::ecs::{ContainerState, StopCode, TaskStatus};

    #[test]
    fn a_task_event_reads_back_as_ecs_writes_it() {
        let detail = TaskStateChange {
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/c/abc".into(),
            cluster_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/c".into()),
            last_status: TaskStatus::Stopped,
            desired_status: Some(TaskStatus::Stopped),
            started_by: Some("job".into()),
            group: None,
            launch_type: Some("FARGATE".into()),
            stop_code: Some(StopCode::EssentialContainerExited),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![ContainerState { name: "agent".into(), last_status: Some(TaskStatus::Stopped), exit_code: Some(5), reason: None }],
            pull_started_at: Some("2026-12-06T10:00:00.000Z".into()),
            started_at: Some("2026-12-06T10:00:31.000Z".into()),
            execution_stopped_at: Some("2026-12-06T10:01:31.000Z".into()),
            stopped_at: Some("2026-12-06T10:01:41.000Z".into()),
        };
        let json = to_json(&task_state_change(detail.clone()));
        assert_eq!(json["detail-type"], names::ecs::TASK_STATE_CHANGE);
        assert_eq!(json["detail"]["lastStatus"], "STOPPED");
        assert_eq!(json["detail"]["stopCode"], StopCode::EssentialContainerExited.as_str());
        assert_eq!(json["detail"]["containers"][0]["exitCode"], 5);
        assert_eq!((json["detail"]["pullStartedAt"].as_str(), json["detail"]["stoppedAt"].as_str()), (Some("2026-12-06T10:00:00.000Z"), Some("2026-12-06T10:01:41.000Z")));
        let back: EventBridgeEvent<TaskStateChange> = serde_json::from_value(json).unwrap();
        assert_eq!(back.detail, detail);
    }

    #[test]
    fn a_proxy_event_carries_the_key_id_path_and_query() {
        let e = api_gateway_proxy(ProxyRequest {
            method: "GET".into(),
            resource: names::routes::JOB.into(),
            path: "/jobs/abc".into(),
            path_parameters: vec![(names::routes::TASK_ID_PARAM.into(), "abc".into())],
            query: vec![("limit".into(), "2".into())],
            headers: vec![(names::routes::API_KEY_HEADER.into(), "k".into())],
            api_key_id: "key-1".into(),
            ..ProxyRequest::default()
        });
        let json = to_json(&e);
        assert_eq!(json["requestContext"]["identity"]["apiKeyId"], "key-1");
        assert_eq!(json["pathParameters"][names::routes::TASK_ID_PARAM], "abc");
        assert_eq!(json["queryStringParameters"]["limit"], "2");
        assert_eq!(json["httpMethod"], "GET");
        let back: ApiGatewayProxyRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back.path.as_deref(), Some("/jobs/abc"));
    }

    #[test]
    fn an_sqs_batch_carries_the_receive_count() {
        let e = sqs_event([Delivery::new("m1", "{}", 3)]);
        let json = to_json(&e);
        assert_eq!(json["Records"][0]["attributes"]["ApproximateReceiveCount"], "3");
        assert_eq!(json["Records"][0]["messageId"], "m1");
    }
}

/// How Lambda's event source mapping feeds a function from a queue, as `generated/` declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Messages per invocation at most (`batch_size`; one receive takes at most 10).
    pub batch_size: u32,
    /// Invocations at once at most (`scaling_config.maximum_concurrency`).
    pub maximum_concurrency: u32,
    /// Seconds spent gathering records before invoking, unless the batch fills first
    /// (`maximum_batching_window_in_seconds`; absent: 0, SQS's default).
    pub batching_window_seconds: u32,
}

/// The event source mappings of `generated/`, by the function they invoke (`process`, `webhook`).
pub fn mappings(root: &std::path::Path) -> Result<std::collections::BTreeMap<String, Mapping>, String> {
    let path = root.join("generated/functions.tf.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::collections::BTreeMap::new();
    for (name, m) in doc["resource"]["aws_lambda_event_source_mapping"].as_object().into_iter().flatten() {
        let function = m["function_name"]
            .as_str()
            .and_then(|f| f.strip_prefix("${aws_lambda_function.")?.split('.').next())
            .ok_or_else(|| format!("event source mapping {name}: function_name is not a function's reference"))?;
        let number = |v: &serde_json::Value, what: &str| v.as_u64().map(|n| n as u32).ok_or_else(|| format!("event source mapping {name}: no {what}"));
        out.insert(
            function.to_string(),
            Mapping {
                batch_size: number(&m["batch_size"], "batch_size")?,
                maximum_concurrency: number(&m["scaling_config"]["maximum_concurrency"], "maximum_concurrency")?,
                batching_window_seconds: if m["maximum_batching_window_in_seconds"].is_null() { 0 } else { number(&m["maximum_batching_window_in_seconds"], "maximum_batching_window_in_seconds")? },
            },
        );
    }
    Ok(out)
}

/// A scheduled event as EventBridge's rule sends it (the sweep).
pub fn scheduled() -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": unique_id(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": names::defaults::AWS_REGION,
        "resources": [],
        "detail": {}
    })
}

#[cfg(test)]
mod mapping_tests {
    #[test]
    fn the_queues_feed_process_and_webhook_as_generated_declares() {
        let m = super::mappings(&crate::root()).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["process", "webhook"]);
        assert!(m.values().all(|m| m.batch_size >= 1 && m.maximum_concurrency >= 2), "{m:?}");
        // No batching window: with one, Lambda holds a lone job or webhook event that long
        // before invoking (the local pollers wait it out too).
        assert!(m.values().all(|m| m.batching_window_seconds == names::defaults::BATCHING_WINDOW_SECONDS), "{m:?}");
        assert_eq!(names::defaults::BATCHING_WINDOW_SECONDS, 0);
    }
}
