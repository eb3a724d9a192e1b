//! Views of scheduled tasks and the mail outbox (`kpbx task`, `kpbx mail`).
//! Part of the control ABI: fields are only appended.

use serde::{Deserialize, Serialize};

/// `kpbx task run`: the run started in the background.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TaskStartedView {
    pub task: u64,
    pub run: u64,
    pub message: String,
}

/// One run in `kpbx task history`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TaskRunView {
    pub run: u64,
    pub task: u64,
    pub task_name: String,
    /// `scheduled` or `manual`.
    pub trigger: String,
    /// UTC µs.
    pub started_us: i64,
    pub finished_us: Option<i64>,
    /// The exported period, UTC µs, `[start, end)`.
    pub period_start_us: i64,
    pub period_end_us: i64,
    /// `running`, `done`, `failed`, `interrupted`.
    pub state: String,
    pub records: u64,
    pub file_name: String,
    pub file_bytes: u64,
    pub zipped: bool,
    pub error: String,
    pub deliveries: Vec<DeliveryView>,
    /// The scheduled time it ran for (UTC µs); `None` for a manual run.
    pub scheduled_us: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub recipient: String,
    /// `pending`, `sent`, `failed`.
    pub status: String,
    pub attempts: u32,
    /// When it was sent or failed (UTC µs); while pending, the next attempt.
    pub at_us: i64,
    /// Why it failed, or the last transient error while pending.
    pub detail: String,
}

/// One message in `kpbx mail outbox`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OutboxView {
    pub id: u64,
    pub queued_us: i64,
    pub subject: String,
    pub run: Option<u64>,
    pub deliveries: Vec<DeliveryView>,
}

/// `kpbx mail test`: what the server said.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MailTestView {
    pub address: String,
    pub delivered: bool,
    pub detail: String,
}
