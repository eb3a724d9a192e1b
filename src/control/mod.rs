//! The control protocol between `kpbx` and `kpbxd`: one [`Command`] enum for
//! every request, one [`Reply`] enum for every answer, and the frame codec.
//!
//! Invariant: pure. The daemon's control adapter and the CLI do the I/O.
//!
//! These types are the protocol's ABI: a frame carries a protocol version, and
//! within a version new variants and fields are only ever appended (postcard
//! encodes variants by index). The golden-byte tests pin the layout. The
//! `*View` types are also the stable field names of `kpbx --json`.

pub mod fdpass;
pub mod tasks;
pub mod wire;

pub use tasks::{DeliveryView, MailTestView, OutboxView, TaskRunView, TaskStartedView};

use serde::{Deserialize, Serialize};

/// Every request the daemon understands. The CLI parses its arguments into
/// one of these, and so does the management API.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Command {
    /// Version, uptime, data dir, services.
    Status,
    /// The newest `limit` audit entries, newest first.
    AuditList {
        limit: u32,
    },
    /// Check the audit hash chain.
    AuditVerify,
    /// All system settings with their values and defaults.
    SystemShow,
    /// Set system settings, as one transaction.
    SystemSet {
        values: Vec<(String, String)>,
    },
    /// Reset system settings to their defaults, as one transaction.
    SystemUnset {
        keys: Vec<String>,
    },
    /// Provisioning objects of one kind (`device`, `account`...).
    ProvList {
        kind: String,
    },
    ProvShow {
        kind: String,
        id: String,
    },
    /// Create an object from `key=value` fields.
    ProvAdd {
        kind: String,
        fields: Vec<(String, String)>,
    },
    /// Change fields of an existing object.
    ProvSet {
        kind: String,
        id: String,
        fields: Vec<(String, String)>,
    },
    /// Delete objects, as one transaction.
    ProvDelete {
        kind: String,
        ids: Vec<String>,
    },
    /// Create or update objects from CSV text with a header row of field
    /// names, as one transaction; all rows or none.
    ProvImport {
        kind: String,
        csv: String,
    },
    /// Copy a template (built in or not) under a new name.
    ProvCopyTemplate {
        from: String,
        name: String,
        tenant: Option<String>,
    },
    /// The generated files.
    ProvFiles,
    /// One generated file's content, by path (`name` or `tenant/name`).
    ProvFile {
        path: String,
    },
    /// What a device's files would be, saving nothing.
    ProvRender {
        mac: String,
    },
    /// Change the HA configuration from `key=value` fields; a valid saved
    /// configuration (re)starts the HA runtime.
    HaConfigure {
        fields: Vec<(String, String)>,
    },
    /// The HA state of both nodes as this node sees it.
    HaStatus,
    /// Move the resource to the other node (active), or take it (passive).
    HaSwitch,
    /// Turn HA off on both nodes.
    HaDisable,
    /// Forget the pairing on both nodes; the active keeps the resource.
    HaUnpair,
    /// Pair again after an unpair.
    HaPair,
    /// The latest HA transitions, oldest first.
    HaEvents,
    /// The stored HA configuration (pairing code masked).
    HaShow,
    /// The last fetches of one device (or all), newest first.
    ProvLog {
        mac: Option<String>,
    },
    /// Devices that asked for files but are not configured, and blocked
    /// addresses.
    ProvUnknown,
    /// Redirection-server registrations: each device's state and last error.
    ProvRedirectStatus,
    /// Every pending redirection-server operation is retried now.
    ProvRedirectSync,
    /// The CDR followers: files, positions, counters, stored rows.
    CdrStatus,
    /// Read a whole `Master.csv` (`callcenter: false`) or `queue_log` file
    /// into the store. The daemon opens no path: the console opens the file
    /// with its caller's rights and passes the open descriptor with the
    /// request (`SCM_RIGHTS`, see [`fdpass::send_with_file`]); `path` is only
    /// the console's name for it, for messages. Regular files only, at most
    /// [`IMPORT_MAX_BYTES`] and [`IMPORT_MAX_TIME`]; closing the connection
    /// cancels the import.
    CdrImport {
        callcenter: bool,
        path: String,
    },
    /// Export calls or call-center rows. Answered by a stream: zero or more
    /// [`Reply::Chunk`]s, then [`Reply::StreamEnd`] (or an error).
    CdrExport(ExportRequest),
    /// Create a scheduled task from `key=value` fields; its id is assigned.
    TaskAdd {
        fields: Vec<(String, String)>,
    },
    TaskSet {
        id: u64,
        fields: Vec<(String, String)>,
    },
    TaskDelete {
        ids: Vec<u64>,
    },
    TaskList,
    TaskShow {
        id: u64,
    },
    /// Start a task in the background now; the schedule does not move.
    TaskRun {
        id: u64,
    },
    /// Runs of one task or all, newest first, with delivery per recipient.
    TaskHistory {
        id: Option<u64>,
        limit: u32,
    },
    /// Change the SMTP settings from `key=value` fields.
    MailConfigure {
        fields: Vec<(String, String)>,
    },
    MailShow,
    /// Send a test message now and report what the server said.
    MailTest {
        address: String,
    },
    /// Make every pending delivery due now.
    MailRetry,
    /// The newest messages of the outbox.
    MailOutbox {
        limit: u32,
    },
    /// Audit entries of a month (or one day of it), filtered, newest first,
    /// one page at a time.
    AuditQuery(AuditQuery),
    /// Every object one transaction touched, with a field-by-field diff.
    AuditShow {
        txid: u64,
    },
    /// Put every object of a transaction back as it was before it, as a new
    /// transaction; refused if later transactions touched them, unless
    /// `force`.
    AuditRestore {
        txid: u64,
        force: bool,
    },
    /// Users with their roles (password hashes never shown).
    UserList,
    /// Create a user from `key=value` fields (`name`, `role`, `tenant`,
    /// `email`, `password`).
    UserAdd {
        fields: Vec<(String, String)>,
    },
    UserSet {
        name: String,
        fields: Vec<(String, String)>,
    },
    UserDelete {
        names: Vec<String>,
    },
    /// Set a user's password (any user may set their own).
    UserPasswd {
        name: String,
        password: String,
    },
    /// Built-in and custom roles with their permissions.
    RoleList,
    /// Create a custom role (`name`, `permissions=area:read|write,...`).
    RoleAdd {
        fields: Vec<(String, String)>,
    },
    RoleSet {
        name: String,
        fields: Vec<(String, String)>,
    },
    RoleDelete {
        names: Vec<String>,
    },
    /// Export the audit entries of a month (or day), filtered, in `format`
    /// (`xlsx`, `csv`, `json`, `xml`). Answered by a stream of
    /// [`Reply::Chunk`]s, then [`Reply::StreamEnd`]. Paging is ignored.
    AuditExport {
        query: AuditQuery,
        format: String,
    },
    /// For each vendor in use (per tenant): the DHCP options, the URL to type
    /// into a phone by hand and the TFTP path that bring phones here.
    ProvUrls,
    /// What a device's files would be were template `template` (looked up
    /// as the device's own: its tenant's, else the shared one) to read
    /// `content` and the device to use it; the template editor's preview
    /// of unsaved text. Saves nothing.
    ProvPreview {
        mac: String,
        template: String,
        content: String,
    },
}

/// `kpbx cdr export` / `kpbx callcenter export`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub callcenter: bool,
    /// Local times (`YYYY-MM-DD[ HH:MM[:SS]]`) in the box's time zone;
    /// both, or a named `interval`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `current-day`, `previous-week`…
    pub interval: Option<String>,
    /// `csv`, `csv-detailed`, `xlsx`, `xlsx-detailed`, `json`, `xml`.
    pub format: String,
    pub mask: bool,
    /// CSV delimiter: `,` or `;`.
    pub delimiter: u8,
    pub bom: bool,
    /// Call center, detailed formats: include operator events.
    pub operator_events: bool,
}

/// `kpbx audit list` with a period and filters.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `YYYY-MM`; the current month (box time zone) when absent.
    #[serde(default)]
    pub month: Option<String>,
    /// Day of the month, 1 to 31.
    #[serde(default)]
    pub day: Option<u8>,
    #[serde(default)]
    pub user: Option<String>,
    /// Object type (`setting`, `device`...).
    #[serde(default)]
    pub object_type: Option<String>,
    /// `create`, `update` or `delete`.
    #[serde(default)]
    pub action: Option<String>,
    /// Page number from 1.
    #[serde(default)]
    pub page: u32,
    /// Entries per page (1 to 1000); 0 means the default (50).
    #[serde(default)]
    pub page_size: u32,
    /// Columns to show (see `audit::COLUMNS`); empty means all.
    #[serde(default)]
    pub columns: Vec<String>,
}

impl Command {
    /// Whether the command changes configuration (and so needs write access).
    pub fn is_change(&self) -> bool {
        // No wildcard: a new command must say whether it changes anything.
        match self {
            Command::SystemSet { .. }
            | Command::SystemUnset { .. }
            | Command::ProvAdd { .. }
            | Command::ProvSet { .. }
            | Command::ProvDelete { .. }
            | Command::ProvImport { .. }
            | Command::ProvCopyTemplate { .. }
            | Command::HaConfigure { .. }
            | Command::HaSwitch
            | Command::HaDisable
            | Command::HaUnpair
            | Command::HaPair
            | Command::ProvRedirectSync
            | Command::AuditRestore { .. }
            | Command::UserAdd { .. }
            | Command::UserSet { .. }
            | Command::UserDelete { .. }
            | Command::UserPasswd { .. }
            | Command::RoleAdd { .. }
            | Command::RoleSet { .. }
            | Command::RoleDelete { .. } => true,
            Command::Status
            | Command::AuditList { .. }
            | Command::AuditVerify
            | Command::SystemShow
            | Command::ProvList { .. }
            | Command::ProvShow { .. }
            | Command::ProvFiles
            | Command::ProvFile { .. }
            | Command::ProvRender { .. }
            | Command::ProvLog { .. }
            | Command::ProvUnknown
            | Command::HaStatus
            | Command::HaEvents
            | Command::HaShow
            | Command::ProvRedirectStatus
            | Command::CdrStatus
            | Command::CdrExport(_)
            | Command::AuditQuery(_)
            | Command::AuditExport { .. }
            | Command::AuditShow { .. }
            | Command::UserList
            | Command::RoleList => false,
            // Writes call records, not configuration; still for writers only.
            Command::CdrImport { .. } => true,
            Command::TaskAdd { .. }
            | Command::TaskSet { .. }
            | Command::TaskDelete { .. }
            | Command::MailConfigure { .. } => true,
            // Runs and sends, but changes no configuration; for writers only.
            Command::TaskRun { .. } | Command::MailTest { .. } | Command::MailRetry => true,
            Command::TaskList
            | Command::TaskShow { .. }
            | Command::TaskHistory { .. }
            | Command::MailShow
            | Command::MailOutbox { .. } => false,
            Command::ProvUrls | Command::ProvPreview { .. } => false,
        }
    }
}

/// Largest file `cdr import` reads.
pub const IMPORT_MAX_BYTES: u64 = 512 << 20;
/// Longest a `cdr import` may run before the daemon stops it.
pub const IMPORT_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(600);

/// A request frame: the command plus anything about the caller the daemon
/// cannot learn from the socket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: Command,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(StatusView),
    Audit(Vec<AuditView>),
    Verified(VerifyView),
    Settings(Vec<SettingView>),
    Committed(CommitView),
    Error(ErrorView),
    Objects(Vec<ObjectView>),
    Files(FilesView),
    FileContents(Vec<FileContentView>),
    HaStatus(Box<HaStatusView>),
    HaEvents(Vec<HaEventView>),
    Fetches(Vec<FetchView>),
    Unknown(UnknownView),
    Redirects(Vec<RedirectView>),
    CdrStatus(CdrStatusView),
    Imported(ImportView),
    /// A piece of a streamed answer; more replies follow.
    Chunk(Vec<u8>),
    /// The end of a streamed answer.
    StreamEnd(StreamEndView),
    TaskStarted(TaskStartedView),
    TaskHistory(Vec<TaskRunView>),
    Outbox(Vec<OutboxView>),
    MailTested(MailTestView),
    AuditPage(AuditPageView),
    AuditTransaction(AuditTransactionView),
    /// `kpbx prov urls`.
    ProvUrls(Vec<ProvUrlView>),
}

/// One thing to configure so that phones find this box (`kpbx prov urls`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProvUrlView {
    /// Empty outside multitenant mode.
    pub tenant: String,
    pub brand: String,
    /// `DHCP option 66`, `by hand: ...`, `TFTP`.
    pub setting: String,
    pub value: String,
}

/// `kpbx cdr status`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CdrStatusView {
    pub files: Vec<CdrFileView>,
    pub calls: u64,
    pub queue_entries: u64,
    pub operator_events: u64,
    /// Start time of the oldest and newest stored call, UTC µs.
    pub oldest_call_us: Option<i64>,
    pub newest_call_us: Option<i64>,
    pub oldest_queue_entry_us: Option<i64>,
    pub newest_queue_entry_us: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CdrFileView {
    /// `master_csv` or `queue_log`.
    pub role: String,
    pub path: String,
    /// `following`, `waiting` (no file yet), `off`, `error`.
    pub state: String,
    pub detail: String,
    /// Just past the last record handled.
    pub offset: u64,
    pub line: u64,
    pub records: u64,
    pub malformed: u64,
    pub rows: u64,
    pub rotations: u64,
    /// Calls / queue entries still open.
    pub open: u64,
    /// The last malformed records: (line, reason).
    pub last_errors: Vec<(u64, String)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ImportView {
    pub path: String,
    pub records: u64,
    pub malformed: u64,
    pub rows: u64,
    pub last_errors: Vec<(u64, String)>,
}

/// Summary closing a stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StreamEndView {
    pub rows: u64,
    pub bytes: u64,
    /// The range exported, UTC µs, `[from, to)`.
    pub from_us: i64,
    pub to_us: i64,
}

/// `kpbx prov redirect status`: one device's (MAC's) registration on its
/// redirection server.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RedirectView {
    pub mac: String,
    /// The device's redirection server now (empty: none, or no device).
    pub server: String,
    /// Provisioned on the redirection server: the service holds this MAC for
    /// the device's server and nothing is pending (read-only).
    pub provisioned: bool,
    /// The server the service holds the MAC for, per the last success.
    pub registered_on: String,
    /// Operations still to do, e.g. `register on office`.
    pub pending: Vec<String>,
    /// `due`, `waiting`, `held` (server disabled), `parked` (needs a change
    /// or a sync), or empty when nothing is pending.
    pub state: String,
    pub attempts: u32,
    /// UTC microseconds.
    pub next_attempt_us: Option<i64>,
    pub last_attempt_us: Option<i64>,
    pub last_error: String,
}

/// `kpbx audit list` with a period: one page.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditPageView {
    /// `YYYY-MM`.
    pub month: String,
    pub day: Option<u8>,
    pub page: u32,
    pub page_size: u32,
    /// More entries follow on the next page.
    pub more: bool,
    /// The columns asked for, in order.
    pub columns: Vec<String>,
    pub entries: Vec<AuditView>,
}

/// `kpbx audit show TXID`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditTransactionView {
    pub txid: u64,
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub user: String,
    pub source: String,
    pub objects: Vec<AuditObjectView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditObjectView {
    pub index: u32,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub description: String,
    pub fields: Vec<FieldDiffView>,
}

/// One field before and after; secrets are masked and flagged.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FieldDiffView {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub secret: bool,
    pub changed: bool,
}

/// `kpbx ha status`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HaStatusView {
    /// `disabled`, `enabled` or `coordinator`.
    pub role: String,
    /// `disabled`, `unpaired`, `pairing`, `init`, `passive`, `active`, or
    /// `failed` when the runtime could not start (see `detail`).
    pub state: String,
    pub detail: String,
    pub paired: bool,
    pub local: HaNodeView,
    pub remote: HaNodeView,
    /// `nobody`, `local`, `remote` or `both`.
    pub holder: String,
    pub resources: Vec<String>,
    pub paths: Vec<HaPathView>,
    /// A heartbeat path is past the warning threshold while the peer is heard.
    pub degraded: bool,
    pub peer_out_of_service: bool,
    pub ping_group: Vec<String>,
    pub ping_seen: u8,
    pub peer_ping_seen: Option<u8>,
    pub epoch: u64,
    pub counters: HaCountersView,
    /// Data sync (replication of the store).
    pub sync: HaSyncView,
}

/// The replication state in `kpbx ha status`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct HaSyncView {
    /// Active node: `alone`, `sync`, `async` or `catching up`; passive
    /// node: `following` or `receiving snapshot`; `alone` without a peer.
    pub mode: String,
    /// `primary`, `secondary` or `none`.
    pub role: String,
    /// The last transaction in this node's store, and its hash (hex): two
    /// nodes at the same sequence and hash hold the same data.
    pub local_seq: u64,
    pub local_hash: String,
    /// On the active node the peer's last acknowledged transaction; on
    /// the passive node the active node's last one.
    pub peer_seq: Option<u64>,
    /// Transactions the passive node lacks.
    pub lag: Option<u64>,
    /// Commits waiting for the peer's acknowledgement.
    pub waiting: u64,
    /// Local changes are refused: this node follows the active node.
    pub replica: bool,
    pub last_error: String,
    /// The last archive of transactions that lost to the other history.
    pub last_archive: String,
    /// Sessions ended because the peer's input was refused.
    pub rejected: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HaNodeView {
    /// Empty when unknown (the secondary learns no serial of the coordinator).
    pub serial: String,
    pub sync_ip: String,
    pub lan_ip: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HaPathView {
    /// `sync` or `lan`.
    pub path: String,
    /// Milliseconds since the last valid heartbeat; `None` = never heard.
    pub heartbeat_age_ms: Option<u64>,
    /// Silent past the warning threshold.
    pub warning: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HaCountersView {
    pub heartbeats_sent: u64,
    pub heartbeats_received: u64,
    pub forged: u64,
    pub replayed: u64,
    pub malformed: u64,
    pub foreign_source: u64,
    pub unauthenticated: u64,
    pub pairing_failures: u64,
}

/// One HA transition or notable event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HaEventView {
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub state: String,
    pub reason: String,
}

/// A configuration object as fields (secrets masked).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ObjectView {
    pub object_type: String,
    pub id: String,
    /// Part of the built-in catalogue (read-only).
    pub builtin: bool,
    pub fields: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FilesView {
    pub files: Vec<FileView>,
    /// Devices that got no file, and why.
    pub problems: Vec<String>,
    /// Devices that got their files with something left out (a time zone
    /// their phones cannot express...), and what.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Devices that get no file by their configuration (disabled, no
    /// account), and why.
    #[serde(default)]
    pub idle: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// `name`, or `tenant/name` in multitenant mode.
    pub path: String,
    /// The device's MAC, empty for a model-wide file.
    pub device: String,
    pub size: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FileContentView {
    pub path: String,
    pub content: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// UTC, microseconds since the Unix epoch.
    pub started_us: i64,
    pub data_dir: String,
    pub control_socket: String,
    pub schema: u32,
    pub objects: u64,
    pub audit_entries: u64,
    pub last_txid: Option<u64>,
    pub store_bytes: u64,
    pub services: Vec<ServiceView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub name: String,
    /// `running`, `disabled`, `failed`...
    pub state: String,
    pub detail: String,
    /// The address a network service is bound to.
    pub listen: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditView {
    pub txid: u64,
    pub index: u32,
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub user: String,
    /// An IP address, or `console`.
    pub source: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub description: String,
    pub before: Option<Vec<(String, String)>>,
    pub after: Option<Vec<(String, String)>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VerifyView {
    pub entries: u64,
    pub ok: bool,
    pub first_bad: Option<BadEntryView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BadEntryView {
    pub txid: u64,
    pub index: u32,
    pub reason: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SettingView {
    pub key: String,
    pub value: String,
    pub default: String,
    pub is_default: bool,
    pub help: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CommitView {
    /// `None` when nothing changed.
    pub txid: Option<u64>,
    pub changes: Vec<ChangeView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ChangeView {
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub description: String,
}

/// Why a request failed. `code` is stable for scripts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorView {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be decoded.
    BadRequest,
    /// The request broke a rule; nothing was changed.
    Invalid,
    NotFound,
    /// The caller may not do this.
    Denied,
    /// The store failed.
    Store,
    /// The daemon is busy or shutting down.
    Unavailable,
    /// Later changes stand in the way (an audit restore); nothing was
    /// changed.
    Conflict,
}

impl Reply {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Reply {
        Reply::Error(ErrorView {
            code,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_layout_is_pinned() {
        let bytes = |c: Command| postcard::to_stdvec(&Request { command: c }).unwrap();
        assert_eq!(bytes(Command::Status), [0]);
        assert_eq!(bytes(Command::AuditList { limit: 20 }), [1, 20]);
        assert_eq!(bytes(Command::AuditVerify), [2]);
        assert_eq!(bytes(Command::SystemShow), [3]);
        assert_eq!(
            bytes(Command::SystemSet {
                values: vec![("a".into(), "b".into())]
            }),
            [4, 1, 1, b'a', 1, b'b']
        );
        assert_eq!(
            bytes(Command::SystemUnset {
                keys: vec!["a".into()]
            }),
            [5, 1, 1, b'a']
        );
    }

    #[test]
    fn cdr_layout_is_pinned() {
        let bytes = |c: Command| postcard::to_stdvec(&Request { command: c }).unwrap();
        assert_eq!(bytes(Command::CdrStatus), [28]);
        assert_eq!(
            bytes(Command::CdrImport {
                callcenter: true,
                path: "/f".into()
            }),
            [29, 1, 2, b'/', b'f']
        );
        assert_eq!(
            postcard::to_stdvec(&Reply::Chunk(vec![7])).unwrap(),
            [16, 1, 7]
        );
        let end = Reply::StreamEnd(StreamEndView {
            rows: 1,
            bytes: 2,
            from_us: 0,
            to_us: 1,
        });
        assert_eq!(postcard::to_stdvec(&end).unwrap(), [17, 1, 2, 0, 2]);
    }

    #[test]
    fn changes_are_told_from_reads() {
        let change = Command::ProvDelete {
            kind: "device".into(),
            ids: vec![],
        };
        assert!(change.is_change());
        assert!(Command::HaSwitch.is_change());
        assert!(!Command::ProvRender { mac: "x".into() }.is_change());
        assert!(!Command::AuditVerify.is_change());
    }

    #[test]
    fn json_field_names_are_stable() {
        let v = serde_json::to_value(CommitView {
            txid: Some(3),
            changes: vec![ChangeView {
                action: "update".into(),
                object_type: "setting".into(),
                object_id: "hostname".into(),
                description: "d".into(),
            }],
        })
        .unwrap();
        assert_eq!(
            v.to_string(),
            r#"{"changes":[{"action":"update","description":"d","object_id":"hostname","object_type":"setting"}],"txid":3}"#
        );
        let e = serde_json::to_value(ErrorCode::BadRequest).unwrap();
        assert_eq!(e, "bad_request");
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FetchView {
    pub device: String,
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub protocol: String,
    pub address: String,
    pub user_agent: String,
    pub file: String,
    pub result: String,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UnknownView {
    pub devices: Vec<UnknownDeviceView>,
    pub blocked: Vec<BlockedView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UnknownDeviceView {
    pub mac: String,
    pub first_us: i64,
    pub last_us: i64,
    pub count: u64,
    pub address: String,
    pub user_agent: String,
    pub file: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BlockedView {
    pub address: String,
    pub seconds_left: u64,
}
