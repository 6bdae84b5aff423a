//! The job queue.

use super::*;

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
