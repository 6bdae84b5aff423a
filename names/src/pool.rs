/// A slot's task is started by `pool` and the slot's 32 hex digits: 36 characters, ECS's
/// limit for `startedBy`, and never a job's id (a hyphenated UUID).
pub const STARTED_BY_PREFIX: &str = "pool";

pub fn started_by(slot_id: &str) -> String {
    format!("{STARTED_BY_PREFIX}{slot_id}")
}

/// The slot of a task's `startedBy`, when it is a slot's.
pub fn slot_of(started_by: &str) -> Option<&str> {
    started_by.strip_prefix(STARTED_BY_PREFIX).filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Seconds a slot waits for a job before it exits and is replaced.
pub const IDLE_SECONDS: i64 = 900;
/// Seconds its links last (they are signed with the dispatcher's role credentials: a slot
/// leaves before they can stop working).
pub const LINK_SECONDS: u64 = 1200;
/// The long poll of a slot's wake link (SQS's longest `WaitTimeSeconds`): an idle slot makes one
/// `ReceiveMessage` and one manifest GET per this many seconds, where it looked at its manifest
/// every 250 ms.
pub const WAKE_WAIT_SECONDS: u32 = 20;
/// A wake message, once received, stays hidden this long (SQS's longest visibility timeout,
/// 12 hours): the agent has no link to delete it, and its queue goes with its task.
pub const WAKE_VISIBILITY_SECONDS: u32 = 43_200;
/// A wake queue keeps a message this long (SQS's shortest retention): a wake not received by
/// then found its manifest at the slot's next look anyway.
pub const WAKE_RETENTION_SECONDS: u32 = 60;
/// A slot this close to its deadline is not given a job.
pub const CLAIM_MARGIN_SECONDS: i64 = 60;
/// The default of the functions' recovery grace (`Config::recovery_grace_seconds`): a step
/// that takes seconds, retries included, and has not happened this long after it began was
/// left by a function that died. A slot with no task this long after its item was made was
/// never started (its refill died between the item and RunTask's answer): its seat is free
/// again. A slot claimed this long ago and never handed over, by a job that does not name it,
/// was left by a dispatch that died between the two. A finished job's webhook event not
/// queued this long after it finished is queued by the sweep.
pub const RECOVERY_GRACE_SECONDS: i64 = 60;

/// A place in the pool: item `seat#<n>` (n below `warm_pool_size`) of the jobs table, naming
/// in [`SEAT_SLOT`] the slot that holds it. A refill starts a slot only for a seat it took by a
/// conditional write, so refills at once never start more slots than the pool has places.
pub fn seat_key(n: u32) -> String {
    format!("seat#{n}")
}
/// The attribute of a seat item naming its slot.
pub const SEAT_SLOT: &str = "slot_id";

spelled_enum! {
    /// Where a warm slot stands.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum SlotState {
        /// Started (or starting), waiting for a job.
        Idle = "IDLE",
        /// Given a job (`claimed_by`).
        Claimed = "CLAIMED",
        /// Its task ended; the item stays until its TTL.
        Gone = "GONE",
    }
}
