//! The SQS event source stand-in: long-polls a queue (the job queue, the webhooks queue) and hands
//! batches to its function's handler as Lambda would (the same `SqsEvent` shape, receive counts included). Messages the
//! handler reports as failed stay on the queue, come back after the visibility timeout, and go to
//! the dead-letter queue after the redrive policy's attempts — the emulator enforces that.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tokio::sync::watch;

/// The function a queue feeds.
#[derive(Clone, Copy, Debug)]
pub enum Consumer {
    Process,
    Webhook,
}

impl Consumer {
    fn function(self) -> names::Function {
        match self {
            Consumer::Process => names::Function::Process,
            Consumer::Webhook => names::Function::Webhook,
        }
    }
}

/// Polls as Lambda's event source mapping does: with the consuming function's role (`sqs` signs
/// as the function acting, functions::identity).
pub async fn run(app: std::sync::Arc<functions::App>, sqs: aws_sdk_sqs::Client, queue_url: String, consumer: Consumer, stop: watch::Receiver<bool>) {
    functions::identity::acting_as(consumer.function(), poll(app, sqs, queue_url, consumer, stop)).await
}

async fn poll(app: std::sync::Arc<functions::App>, sqs: aws_sdk_sqs::Client, queue_url: String, consumer: Consumer, mut stop: watch::Receiver<bool>) {
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()
        .and_then(|a| a.attributes)
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    loop {
        if *stop.borrow() {
            return;
        }
        let received = tokio::select! {
            r = sqs.receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send() => r,
            _ = stop.changed() => return,
        };
        let messages = match received {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(e) => {
                eprintln!("local-stack: poller: receive failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let event = testenv::events::sqs_event(messages.iter().map(|m| {
            let count = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            testenv::events::Delivery {
                message_id: m.message_id.clone().unwrap_or_default(),
                body: m.body.clone().unwrap_or_default(),
                receive_count: count,
                receipt_handle: m.receipt_handle.clone(),
                md5_of_body: m.md5_of_body.clone(),
                queue_arn: Some(queue_arn.clone()),
            }
        }));
        let response = match consumer {
            Consumer::Process => functions::process::batch(&app, event).await,
            Consumer::Webhook => functions::webhook::batch(&app, event).await,
        };
        let failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone()?).build().ok()
            })
            .collect();
        if !done.is_empty() {
            if let Err(e) = sqs.delete_message_batch().queue_url(&queue_url).set_entries(Some(done)).send().await {
                eprintln!("local-stack: poller: delete failed (the messages will be redelivered): {e}");
            }
        }
    }
}
