//! A minimal Lambda runtime API on loopback, to run the real `bootstrap` binary the way Lambda
//! does: the binary asks for the next event, gets ours, and posts its answer back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub struct Invocation {
    /// The handler's answer (or the runtime error it reported).
    pub response: serde_json::Value,
    pub ok: bool,
    /// From spawning the process to receiving its answer.
    pub elapsed: Duration,
}

/// The functions' environment as infra-gen sets it, from a test configuration.
pub fn function_env(function: names::Function, c: &functions::Config) -> Vec<(String, String)> {
    use names::contract::EnvVar::*;
    // Every variable the contract names for the function, from the configuration (a new
    // variable is a compile error here, not a binary that exits at start-up).
    let mut env: Vec<(&str, String)> = vec![(names::env::FUNCTION, function.as_str().to_owned())];
    for (var, _) in names::contract::env_vars(function) {
        let value = match var {
            TableName => c.table.clone(),
            QueueUrl => c.queue_url.clone(),
            JobTtlDays => c.job_ttl_days.to_string(),
            BucketName => c.bucket.clone(),
            LogGroup => c.log_group.clone(),
            ClusterArn => c.cluster_arn.clone(),
            TaskDefinition => c.task_definition.clone(),
            LinkSignerRoleArn => c.link_signer_role_arn.clone(),
            SubnetIds => c.subnet_ids.join(","),
            SecurityGroupIds => c.security_group_ids.join(","),
            ContainerName => c.container_name.clone(),
            MaxAttempts => c.max_attempts.to_string(),
            TimeoutGraceSeconds => c.timeout_grace_seconds.to_string(),
            TenantSecretsPath => c.tenant_secrets_path.clone(),
            TenantLimitDefaults => format!(r#"{{"max_running": {}, "max_queued": {}}}"#, c.limits.max_running, c.limits.max_queued),
            WebhookQueueUrl => c.webhook_queue_url.clone(),
            WebhookDlqUrl => c.webhook_dlq_url.clone(),
            WebhookSecretsPath => c.webhook_secrets_path.clone(),
            WebhookRetrySeconds => c.webhook_retry_seconds.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            WarmPoolSize => c.warm_pool_size.to_string(),
            MetricsNamespace => c.metrics_namespace.clone(),
            FargatePricing => serde_json::json!({"vcpu": c.pricing.vcpu, "memory_gb": c.pricing.memory_gb, "vcpu_hour": c.pricing.vcpu_hour, "gb_hour": c.pricing.gb_hour}).to_string(),
            ComputerUse => serde_json::to_string(&c.computer).unwrap(),
            ModelRoleArn => c.model_role_arn.clone(),
            NamePrefix => c.name_prefix.clone(),
        };
        env.push((var.name(), value));
    }
    env.extend([
        ("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{}", function.as_str())),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "local".into()),
    ]);
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Starts `binary` with `env` under a runtime API that hands it `event`, and waits for its answer.
pub async fn invoke(binary: &str, env: &[(String, String)], event: serde_json::Value) -> Invocation {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel::<(bool, Vec<u8>)>();
    let served = Arc::new(AtomicBool::new(false));
    let event = Arc::new(event.to_string());
    let server = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(connection(sock, tx.clone(), served.clone(), event.clone()));
        }
    });
    let start = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the function binary");
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    let elapsed = start.elapsed();
    let _ = child.kill().await;
    server.abort();
    let (ok, body) = got.expect("the function answered in time").expect("an answer");
    Invocation { response: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null), ok, elapsed }
}

async fn connection(
    mut sock: TcpStream,
    tx: mpsc::UnboundedSender<(bool, Vec<u8>)>,
    served: Arc<AtomicBool>,
    event: Arc<String>,
) {
    let mut buf = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes of body.
        let (head, body) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    break (head, body);
                }
            }
            let mut chunk = [0u8; 8192];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        if path.ends_with("/invocation/next") {
            if served.swap(true, Ordering::SeqCst) {
                // The next event never comes: the process is killed first.
                std::future::pending::<()>().await;
            }
            let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 30_000;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{}",
                event.len(),
                event
            );
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        } else {
            let ok = path.ends_with("/response");
            let _ = sock.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}").await;
            let _ = tx.send((ok, body));
        }
    }
}

/// An API Gateway REST proxy event, as API Gateway sends it to a Lambda proxy integration.
pub fn api_gateway_event(method: &str, resource: &str, path: &str, task_id: Option<&str>, api_key_id: &str, body: Option<&str>) -> serde_json::Value {
    let event = testenv::events::api_gateway_proxy(testenv::events::ProxyRequest {
        method: method.into(),
        resource: resource.into(),
        path: path.into(),
        path_parameters: task_id.map(|id| (names::routes::TASK_ID_PARAM.to_string(), id.to_string())).into_iter().collect(),
        headers: vec![("Content-Type".into(), "application/json".into()), (names::routes::API_KEY_HEADER.into(), "secret".into())],
        body: body.map(str::to_owned),
        api_key: Some("secret".into()),
        api_key_id: api_key_id.into(),
        request_id: "api-request-1".into(),
        ..Default::default()
    });
    testenv::events::to_json(&event)
}
