//! The SQS event source stand-in: long-polls a queue (the job queue, the webhooks queue) and hands
//! batches to its function's handler as Lambda's event source mapping does: with the mapping's
//! batch size, batching window and up to its maximum concurrency of invocations at once, each with
//! a batch of its own (all read from `generated/`), in the same `SqsEvent` shape, receive counts
//! included.
//! Messages the handler reports as failed, and every message of an invocation that crashed,
//! stay on the queue, come back after the visibility timeout, and go to the dead-letter queue
//! after the redrive policy's attempts — the emulator enforces that.
//!
//! Under a fault plan (`testenv::faults`), an invocation may crash at any AWS call, and a message
//! may be delivered twice at once (SQS's at-least-once delivery).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use testenv::events::{Delivery, Mapping};
use testenv::faults::Plan;
use tokio::sync::watch;

/// The function a queue feeds.
#[derive(Clone, Copy, Debug)]
pub enum Consumer {
    Process,
    Webhook,
}

impl Consumer {
    pub fn function(self) -> names::Function {
        match self {
            Consumer::Process => names::Function::Process,
            Consumer::Webhook => names::Function::Webhook,
        }
    }
}

/// One queue's event source mapping.
#[derive(Clone)]
pub struct Source {
    pub app: Arc<functions::App>,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub consumer: Consumer,
    pub mapping: Mapping,
    pub faults: Option<Arc<Plan>>,
}

/// Polls as Lambda's event source mapping does: `maximum_concurrency` pollers, each invoking the
/// function with a batch of its own, with the consuming function's role (`sqs` signs as the
/// function acting, functions::identity).
pub async fn run(source: Source, stop: watch::Receiver<bool>) {
    let function = source.consumer.function();
    let queue_arn = functions::identity::acting_as(function, queue_arn(&source)).await;
    let pollers: Vec<_> = (0..source.mapping.maximum_concurrency.max(1))
        .map(|_| tokio::spawn(functions::identity::acting_as(function, poll(source.clone(), queue_arn.clone(), stop.clone()))))
        .collect();
    for p in pollers {
        let _ = p.await;
    }
}

async fn queue_arn(source: &Source) -> String {
    source
        .sqs
        .get_queue_attributes()
        .queue_url(&source.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .ok()
        .and_then(|a| a.attributes)
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default()
}

/// One invocation of the consumer with `batch`: the message ids it failed, or None when it
/// crashed (every message then stays on the queue).
async fn invoke(source: &Source, batch: Vec<Delivery>) -> Option<Vec<String>> {
    let event = testenv::events::sqs_event(batch);
    let app = &source.app;
    let handled = testenv::faults::invoke(async {
        match source.consumer {
            Consumer::Process => functions::process::batch(app, event).await,
            Consumer::Webhook => functions::webhook::batch(app, event).await,
        }
    })
    .await;
    match handled {
        Ok(response) => Some(response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()),
        Err(crashed) => {
            eprintln!("local-stack: poller: {crashed}; its messages come back after the visibility timeout");
            None
        }
    }
}

async fn poll(source: Source, queue_arn: String, mut stop: watch::Receiver<bool>) {
    let Source { sqs, queue_url, mapping, faults, consumer, .. } = source.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let received = tokio::select! {
            r = sqs.receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(mapping.batch_size.clamp(1, 10) as i32)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send() => r,
            _ = stop.changed() => return,
        };
        let mut messages = match received {
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
        // With a batching window, Lambda gathers records until the batch is full or the window
        // has passed, and only then invokes: a lone message waits out the window.
        let window = Duration::from_secs(mapping.batching_window_seconds.into());
        let gathering = std::time::Instant::now();
        while (messages.len() as u32) < mapping.batch_size && gathering.elapsed() < window {
            let left = window.saturating_sub(gathering.elapsed());
            let more = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages((mapping.batch_size - messages.len() as u32).clamp(1, 10) as i32)
                .wait_time_seconds(left.as_secs().min(20) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            match more.map(|r| r.messages.unwrap_or_default()) {
                // (A long poll waits whole seconds; under one left, short polls.)
                Ok(none) if none.is_empty() => tokio::time::sleep(left.min(Duration::from_millis(100))).await,
                Ok(more) => messages.extend(more),
                Err(_) => break,
            }
        }
        let batch: Vec<Delivery> = messages
            .iter()
            .map(|m| {
                let count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Delivery {
                    message_id: m.message_id.clone().unwrap_or_default(),
                    body: m.body.clone().unwrap_or_default(),
                    receive_count: count,
                    receipt_handle: m.receipt_handle.clone(),
                    md5_of_body: m.md5_of_body.clone(),
                    queue_arn: Some(queue_arn.clone()),
                }
            })
            .collect();
        // SQS delivers at least once: a duplicate goes to another invocation at the same time.
        if let Some(plan) = &faults {
            let twice: Vec<Delivery> = batch.iter().filter(|d| plan.duplicate(&format!("{}#{}", d.message_id, d.receive_count))).cloned().collect();
            if !twice.is_empty() {
                let source = source.clone();
                tokio::spawn(functions::identity::acting_as(consumer.function(), async move {
                    invoke(&source, twice).await;
                }));
            }
        }
        let Some(failed) = invoke(&source, batch).await else { continue };
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
