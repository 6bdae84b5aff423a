pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// A signing secret is `whsec_` and the base64 of its key bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// Key bytes of a secret the script makes (Standard Webhooks asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// Seconds an attempt may take, connection included; longer is a failed attempt.
pub const TIMEOUT_SECONDS: u64 = 10;
/// Seconds an attempt may take to connect (of its `TIMEOUT_SECONDS`): a receiver that drops
/// packets costs this, not the whole timeout, of the delivery capacity all tenants share.
pub const CONNECT_TIMEOUT_SECONDS: u64 = 3;
/// A redelivery (`POST /jobs/{id}/webhook`) is refused (409 `webhook_in_flight`, with
/// `Retry-After`) while the current round began less than this ago and is still being sent:
/// a tenant redelivering at its rate limit would otherwise fill the delivery capacity every
/// tenant shares.
pub const REDELIVERY_COOLDOWN_SECONDS: i64 = 60;
/// Attempts of one tenant in flight at once, system-wide: each holds one of its tenant's
/// lanes (a leased item in the table). A tenant whose receiver hangs uses its own lanes, not
/// the delivery capacity every tenant shares (the mapping's `maximum_concurrency` invocations).
pub const TENANT_LANES: u32 = 2;
/// An event whose tenant holds every lane is parked (`names::table::webhook_parked_key`): the
/// attempt that frees a lane wakes the tenant's oldest parked event at once. Its own message
/// comes back too, in case a wake is lost (a function dying between the two writes): first
/// after this many seconds, each further wait twice the last, up to [`MAX_LANE_WAIT_SECONDS`]
/// or a quarter of the stall time, whichever is less (plus up to as much again, at random, so
/// waiting messages do not come back together). Neither is an attempt.
pub const LANE_WAIT_SECONDS: u32 = 2;
pub const MAX_LANE_WAIT_SECONDS: u32 = 300;
/// Parked entries a wake looks at, oldest first, to find one whose event still waits (an
/// entry of a round that was redelivered or sent by its own message meanwhile is dropped).
pub const WAKE_SCAN: usize = 20;
/// A lane is leased for the attempt's timeout and this much more: a function that died
/// holding it gives it back then.
pub const LANE_LEASE_MARGIN_SECONDS: u64 = 5;
/// Seconds before each retry after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h.
pub const DEFAULT_RETRY_SECONDS: [u32; 6] = [5, 300, 1800, 7200, 18000, 36000];
/// The longest wait a retry may ask for (10 h is chained from SQS delays of 15 min).
pub const MAX_RETRY_SECONDS: u32 = 86_400;
/// SQS's longest message delay: a longer wait is chained from several.
pub const MAX_DELAY_SECONDS: u32 = 900;
/// Seconds a round being sent may go without progress (an attempt made, or its first message
/// sent) past when its next attempt was due, before the sweep calls it FAILED: its message
/// is gone, moved by SQS to the webhooks DLQ after the function failed (or died) on every
/// receive. A parked event's own message puts the deadline off each time it comes back, so an
/// event that waits long for its tenant's lanes is not called stalled.
pub const STALL_SECONDS: i64 = 3600;
/// The error of the attempt a stalled round ends with.
pub const STALLED: &str = "no attempt came when one was due: the event's message was dead-lettered after the webhook function failed on every receive (an alarm says so); POST /jobs/{id}/webhook delivers it again";
/// Attempts of a round `GET /jobs/{id}` shows (the schedule makes at most 7).
pub const MAX_ATTEMPTS_SHOWN: usize = 20;

/// The event a finished job sends (`type` of the body).
pub fn event_type(status: super::JobStatus) -> Option<&'static str> {
    match status {
        super::JobStatus::Completed => Some("job.completed"),
        super::JobStatus::Failed => Some("job.failed"),
        super::JobStatus::Cancelled => Some("job.cancelled"),
        _ => None,
    }
}

/// `webhook-id`: a job finishes once, so its one event's id comes from the job's id and is
/// the same on every retry and redelivery (receivers deduplicate by it).
pub fn event_id(task_id: &str) -> String {
    format!("msg_{}", task_id.replace('-', ""))
}

spelled_enum! {
    /// Where a job's webhook delivery stands.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum DeliveryState {
        /// The job finished; its event is not yet queued.
        Pending = "PENDING",
        /// Queued: being sent, or waiting for a retry.
        Sending = "SENDING",
        /// A 2xx answer.
        Delivered = "DELIVERED",
        /// Every attempt failed; the event is in the webhooks dead-letter queue.
        Failed = "FAILED",
    }
}
