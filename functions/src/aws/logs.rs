//! The agent's log group.

use super::*;

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
