//! Adapter: follows Asterisk's `Master.csv` and `queue_log`, and runs CDR
//! imports and exports off the event loop.
//!
//! **Following.** On every [`POLL`] tick the loop calls [`Cdr::poll`]. Per
//! file it reads the bytes appended since the last read (at most
//! [`BUDGET`] per tick, so a big backlog cannot stall the loop), feeds the
//! pure [`Follower`], and writes the rows *and* the follower's state in one
//! data transaction ([`ingest::commit`]): after a crash the state and the
//! rows agree, so nothing is lost or stored twice. The file stays open
//! between ticks; after reading to its end the path is checked again:
//! - another inode at the path: rotated. The old file is read through the
//!   open descriptor until it has not grown for [`ROTATION_QUIET_POLLS`]
//!   polls; then the new one is read from its start;
//! - the same inode, shorter than what was read: truncated; read again
//!   from the start;
//! - at start-up, a stored inode that is no longer at the path: the rotated
//!   file is looked for in the same directory (logrotate's `Master.csv.1`)
//!   and its rest is read first.
//!
//! A partial last line stays in the splitter until its end arrives. Open
//! calls and queue entries survive restarts by replay (see
//! [`crate::cdr::follow`]). Calls are flushed by wall-clock quiet time.
//! Retention: rows older than `cdr_retention_months` are deleted at start
//! and then daily.
//!
//! **Imports** read a file the console opened and passed over
//! (`control::fdpass`): regular files only, one import at a time, bounded
//! by [`IMPORT_MAX_BYTES`] and [`IMPORT_MAX_TIME`], cancelled when the
//! console goes away. Importing twice is harmless (same keys).
//!
//! **Exports and imports** run on a thread with the store behind an `Arc`;
//! an export streams its bytes back as [`Reply::Chunk`]s through the bounded
//! reply channel (back-pressure: a slow client slows the export, memory
//! stays bounded) and ends with [`Reply::StreamEnd`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use smol::channel::Sender;

use super::Daemon;
use crate::cdr::follow::{FileKind, Follower};
use crate::cdr::master_csv::MasterFormat;
use crate::cdr::record::IngestStateV1;
use crate::clock::Clock;
use crate::control::{
    CdrFileView, CdrStatusView, Command, ErrorCode, ExportRequest, IMPORT_MAX_BYTES,
    IMPORT_MAX_TIME, ImportView, Reply, StreamEndView,
};
use crate::model::SettingKey;
use crate::report::interval::{NamedInterval, parse_local};
use crate::report::{self, ExportOptions, Format, TimeRange, ingest};
use crate::store::Store;
use crate::store::data::Table;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_secs(1);
/// Most bytes read per file per poll: about 50 ms of work in a release
/// build, so a backlog never stalls the loop (HA heartbeats run on it). A
/// poll that used its budget asks for the next one at once.
const BUDGET: u64 = 1 << 20;
const CHUNK: usize = 256 * 1024;
/// Bytes per streamed reply.
const STREAM_CHUNK: usize = 256 * 1024;
const DAY_US: i64 = 86_400_000_000;
/// Polls a rotated file must stay unchanged before the new one is read.
const ROTATION_QUIET_POLLS: u32 = 3;
/// Longest silence on an export stream.
const KEEPALIVE: Duration = Duration::from_secs(20);

/// What a slot is configured to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Want {
    path: PathBuf,
    /// Column setting and time zone (Master.csv); a change rebuilds.
    signature: String,
}

struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Next byte to read.
    pos: u64,
}

struct Slot {
    role: &'static str,
    key: &'static [u8],
    want: Option<Want>,
    follower: Option<Follower>,
    open: Option<Open>,
    state: &'static str,
    detail: String,
    /// Polls in a row that found another file at the path while the open
    /// one did not grow.
    quiet_rotated: u32,
    /// The last poll stopped at its budget: more is waiting.
    behind: bool,
}

impl Slot {
    fn new(role: &'static str, key: &'static [u8]) -> Slot {
        Slot {
            role,
            key,
            want: None,
            follower: None,
            open: None,
            state: "off",
            detail: String::new(),
            quiet_rotated: 0,
            behind: false,
        }
    }
}

/// The followers, owned by the event loop.
pub struct Cdr {
    master: Slot,
    queue: Slot,
    next_prune_us: i64,
    /// Raised while an import runs: one at a time.
    importing: Arc<AtomicBool>,
}

impl Default for Cdr {
    fn default() -> Self {
        Cdr {
            master: Slot::new("master_csv", ingest::MASTER_KEY),
            queue: Slot::new("queue_log", ingest::QUEUE_KEY),
            next_prune_us: i64::MIN,
            importing: Arc::new(AtomicBool::new(false)),
        }
    }
}

fn resolve(
    store: &Store,
    config: &crate::config::Config,
    key: SettingKey,
    auto: &str,
) -> Option<PathBuf> {
    let v = store.setting(key).ok()?;
    match v.as_str() {
        "off" => None,
        "auto" => Some(config.asterisk_log_dir.join(auto)),
        p => Some(PathBuf::from(p)),
    }
}

fn master_kind(store: &Store) -> Result<(FileKind, String), String> {
    let columns = store
        .setting(SettingKey::CdrColumns)
        .map_err(|e| e.to_string())?;
    let mapping = crate::cdr::columns::parse_columns(&columns)?;
    let tz = super::box_tz(store);
    let signature = format!("{columns}|{}", tz.iana_name().unwrap_or("fixed"));
    Ok((
        FileKind::Master(Box::new(MasterFormat { mapping, tz })),
        signature,
    ))
}

impl Cdr {
    /// Whether the last poll left bytes unread (poll again soon).
    pub fn behind(&self) -> bool {
        self.master.behind || self.queue.behind
    }

    /// One tick: follow both files, flush quiet calls, prune daily.
    pub fn poll(&mut self, daemon: &Daemon) {
        let store = &*daemon.store;
        let now_us = daemon.clock.wall().as_unix_micros();
        let now = Timestamp::from_microsecond(now_us).unwrap_or(Timestamp::UNIX_EPOCH);
        let master = resolve(
            store,
            &daemon.config,
            SettingKey::CdrMasterCsv,
            "cdr-csv/Master.csv",
        );
        match master_kind(store) {
            Ok((kind, signature)) => {
                let want = master.map(|path| Want { path, signature });
                step(&mut self.master, store, want, kind, now);
            }
            Err(e) => {
                self.master.state = "error";
                self.master.detail = format!("cdr_columns: {e}");
            }
        }
        let queue = resolve(store, &daemon.config, SettingKey::CdrQueueLog, "queue_log");
        let want = queue.map(|path| Want {
            path,
            signature: String::new(),
        });
        step(&mut self.queue, store, want, FileKind::QueueLog, now);
        if now_us >= self.next_prune_us {
            self.next_prune_us = now_us.saturating_add(DAY_US);
            prune(store, now);
        }
    }

    pub fn status(&self, store: &Store) -> Result<CdrStatusView, crate::store::StoreError> {
        let mut files = Vec::new();
        for slot in [&self.master, &self.queue] {
            let stored = ingest::load_state(store, slot.key)?.unwrap_or_default();
            let s = slot.follower.as_ref().map_or(&stored, |f| f.state());
            files.push(CdrFileView {
                role: slot.role.into(),
                path: slot
                    .want
                    .as_ref()
                    .map_or_else(|| s.path.clone(), |w| w.path.display().to_string()),
                state: slot.state.into(),
                detail: slot.detail.clone(),
                offset: s.offset,
                line: s.line,
                records: s.records,
                malformed: s.malformed,
                rows: s.rows,
                rotations: s.rotations,
                open: slot.follower.as_ref().map_or(0, |f| f.open_count() as u64),
                last_errors: s.last_errors.clone(),
            });
        }
        let calls = report::time_span(store, Table::Call)?;
        let entries = report::time_span(store, Table::QueueEntry)?;
        let view = CdrStatusView {
            files,
            calls: store.data_len(Table::Call)?,
            queue_entries: store.data_len(Table::QueueEntry)?,
            operator_events: store.data_len(Table::OperatorEvent)?,
            oldest_call_us: calls.map(|c| c.0),
            newest_call_us: calls.map(|c| c.1),
            oldest_queue_entry_us: entries.map(|c| c.0),
            newest_queue_entry_us: entries.map(|c| c.1),
        };
        store.release_mapped_pages();
        Ok(view)
    }
}

fn prune(store: &Store, now: Timestamp) {
    let months = store
        .setting(SettingKey::CdrRetentionMonths)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if months == 0 {
        return;
    }
    let cutoff = now
        .to_zoned(TimeZone::UTC)
        .checked_sub(jiff::Span::new().months(months))
        .map(|z| z.timestamp().as_microsecond());
    match cutoff.map(|c| ingest::prune(store, c)) {
        Ok(Ok(n)) if n > 0 => {
            log::info!("cdr: retention removed {n} rows older than {months} months")
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => log::error!("cdr: retention: {e}"),
        Err(e) => log::error!("cdr: retention: {e}"),
    }
}

fn step(slot: &mut Slot, store: &Store, want: Option<Want>, kind: FileKind, now: Timestamp) {
    slot.behind = false;
    if want != slot.want {
        slot.want = want;
        slot.follower = None;
        slot.open = None;
    }
    let Some(want) = slot.want.clone() else {
        slot.state = "off";
        slot.detail.clear();
        return;
    };
    if let Err(e) = follow(slot, store, &want.path, kind, now) {
        if slot.state != "error" || slot.detail != e {
            log::warn!("cdr {}: {e}", slot.role);
        }
        slot.state = "error";
        slot.detail = e;
        // Start over from the stored state next time.
        slot.follower = None;
        slot.open = None;
    }
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// The file in `dir` with this device and inode, if any (a rotated log).
fn find_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .take(10_000)
        .flatten()
        .find_map(|e| {
            let meta = e.metadata().ok()?;
            (meta.is_file() && identity(&meta) == (dev, ino)).then(|| e.path())
        })
}

/// Bytes kept of a file's start.
const HEAD: usize = 64;

/// The first (up to [`HEAD`]) bytes of a file.
fn read_head(file: &File) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; HEAD];
    let mut n = 0;
    while n < HEAD {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(n);
    buf
}

/// Whether the file still starts with `head` (a shorter file does not).
fn same_head(file: &File, head: &[u8]) -> bool {
    head.is_empty() || read_head(file).starts_with(head)
}

fn follow(
    slot: &mut Slot,
    store: &Store,
    path: &Path,
    kind: FileKind,
    now: Timestamp,
) -> Result<(), String> {
    let now_us = now.as_microsecond();
    let path_text = path.display().to_string();
    let commit = |rows: &crate::cdr::follow::Rows, f: &mut Follower| {
        f.state_mut().updated_us = now_us;
        ingest::commit(store, rows, Some((slot.key, f.state()))).map_err(|e| format!("store: {e}"))
    };
    if slot.follower.is_none() {
        let stored = ingest::load_state(store, slot.key)
            .map_err(|e| format!("store: {e}"))?
            .filter(|s| s.path == path_text)
            .unwrap_or_else(|| IngestStateV1 {
                path: path_text.clone(),
                line: 1,
                replay_line: 1,
                ..IngestStateV1::default()
            });
        slot.follower = Some(Follower::resume(kind, stored));
        slot.open = None;
    }
    let Some(follower) = slot.follower.as_mut() else {
        return Ok(());
    };
    if slot.open.is_none() {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                slot.state = "waiting";
                slot.detail = format!("{path_text} does not exist yet");
                return Ok(());
            }
            Err(e) => return Err(format!("{path_text}: {e}")),
        };
        let st = follower.state().clone();
        let (target, pos) = if st.ino == 0 && st.dev == 0 {
            (path.to_path_buf(), 0)
        } else if (st.dev, st.ino) == identity(&meta) {
            let rewritten = File::open(path)
                .map(|f| !same_head(&f, &st.head))
                .unwrap_or(false);
            if meta.len() < st.offset || rewritten {
                follower.rotate();
                (path.to_path_buf(), 0)
            } else {
                (path.to_path_buf(), follower.read_from())
            }
        } else {
            let dir = path.parent().unwrap_or(Path::new("/"));
            match find_inode(dir, st.dev, st.ino) {
                Some(old) => {
                    log::info!("cdr {}: finishing rotated {}", slot.role, old.display());
                    (old, follower.read_from())
                }
                None => {
                    follower.rotate();
                    (path.to_path_buf(), 0)
                }
            }
        };
        let mut file = File::open(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("{}: {e}", target.display()))?;
        file.seek(SeekFrom::Start(pos))
            .map_err(|e| format!("{}: {e}", target.display()))?;
        let (dev, ino) = identity(&meta);
        let s = follower.state_mut();
        s.dev = dev;
        s.ino = ino;
        s.path = path_text.clone();
        slot.open = Some(Open {
            file,
            dev,
            ino,
            pos,
        });
        commit(&Default::default(), follower)?;
    }
    let Some(open) = slot.open.as_mut() else {
        return Ok(());
    };
    slot.state = "following";
    slot.detail.clear();
    // Read what was appended, within the budget.
    let mut buf = vec![0u8; CHUNK];
    let mut read = 0u64;
    let mut at_end = false;
    while read < BUDGET {
        let n = match open.file.read(&mut buf) {
            Ok(0) => {
                at_end = true;
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{path_text}: read: {e}")),
        };
        open.pos += n as u64;
        read += n as u64;
        let rows = follower.feed(&buf[..n]);
        commit(&rows, follower)?;
    }
    slot.behind = !at_end && read >= BUDGET;
    if at_end {
        // Learn the file's first bytes; a change of them is a rewrite.
        if !same_head(&open.file, &follower.state().head) {
            log::info!("cdr {}: {path_text} was rewritten in place", slot.role);
            open.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| format!("{path_text}: {e}"))?;
            open.pos = 0;
            follower.rotate();
            commit(&Default::default(), follower)?;
            return Ok(());
        }
        let head = read_head(&open.file);
        if head.len() > follower.state().head.len() {
            follower.state_mut().head = head;
            commit(&Default::default(), follower)?;
        }
        match std::fs::metadata(path) {
            Ok(meta) if identity(&meta) != (open.dev, open.ino) => {
                // Asterisk may still write to the renamed file until it
                // reopens its log (queue_log): drain it until it has been
                // quiet for a few polls, then switch.
                slot.quiet_rotated = if read == 0 { slot.quiet_rotated + 1 } else { 0 };
                if slot.quiet_rotated < ROTATION_QUIET_POLLS {
                    let rows = follower.tick(now);
                    if !rows.is_empty() {
                        commit(&rows, follower)?;
                    }
                    return Ok(());
                }
                slot.quiet_rotated = 0;
                log::info!("cdr {}: {path_text} was rotated", slot.role);
                let file = File::open(path).map_err(|e| format!("{path_text}: {e}"))?;
                let meta = file.metadata().map_err(|e| format!("{path_text}: {e}"))?;
                let (dev, ino) = identity(&meta);
                follower.rotate();
                let s = follower.state_mut();
                s.dev = dev;
                s.ino = ino;
                *open = Open {
                    file,
                    dev,
                    ino,
                    pos: 0,
                };
                commit(&Default::default(), follower)?;
            }
            Ok(meta) if meta.len() < open.pos => {
                log::info!("cdr {}: {path_text} was truncated", slot.role);
                open.file
                    .seek(SeekFrom::Start(0))
                    .map_err(|e| format!("{path_text}: {e}"))?;
                open.pos = 0;
                follower.rotate();
                commit(&Default::default(), follower)?;
            }
            // Same file, or none at the path yet (rotation in progress).
            _ => {}
        }
    }
    let rows = follower.tick(now);
    if !rows.is_empty() {
        commit(&rows, follower)?;
    }
    Ok(())
}

/// Handles the commands that run off the loop; gives back the others.
pub fn offload(
    daemon: &Daemon,
    command: Command,
    upload: Option<Upload>,
    reply: &Sender<Reply>,
) -> Option<Command> {
    match command {
        Command::CdrStatus => {
            let r = daemon.cdr.borrow().status(&daemon.store).map_or_else(
                |e| Reply::error(ErrorCode::Store, e.to_string()),
                Reply::CdrStatus,
            );
            let _ = reply.try_send(r);
            None
        }
        Command::CdrImport { callcenter, path } => {
            let answer = match upload {
                Some(upload) => start_import(daemon, callcenter, path, upload, reply.clone()),
                None => Err(
                    "cdr import needs the file itself: run `kpbx cdr import FILE` on the box \
                     (the daemon opens no path a client names)"
                        .to_string(),
                ),
            };
            if let Err(e) = answer {
                let _ = reply.try_send(Reply::error(ErrorCode::Invalid, e));
            }
            None
        }
        Command::CdrExport(request) => {
            match prepare_export(daemon, &request) {
                Ok((range, format, opts)) => spawn_export(
                    daemon,
                    request.callcenter,
                    range,
                    format,
                    opts,
                    reply.clone(),
                ),
                Err(e) => {
                    let _ = reply.try_send(Reply::error(ErrorCode::Invalid, e));
                }
            }
            None
        }
        other => Some(other),
    }
}

/// A file passed with a `cdr import` request, and the flag its
/// connection raises when the client goes away.
pub struct Upload {
    pub file: File,
    pub cancel: Arc<AtomicBool>,
}

/// Checks the passed file and starts its import on a thread; the answer
/// goes back through the loop.
fn start_import(
    daemon: &Daemon,
    callcenter: bool,
    path: String,
    upload: Upload,
    reply: Sender<Reply>,
) -> Result<(), String> {
    let meta = upload.file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{path}: not a regular file"));
    }
    if meta.len() > IMPORT_MAX_BYTES {
        return Err(format!(
            "{path}: {} bytes, more than the import limit of {} MiB",
            meta.len(),
            IMPORT_MAX_BYTES >> 20
        ));
    }
    let kind = if callcenter {
        FileKind::QueueLog
    } else {
        master_kind(&daemon.store)?.0
    };
    let importing = Arc::clone(&daemon.cdr.borrow().importing);
    if importing.swap(true, Ordering::AcqRel) {
        return Err("another cdr import is running; try again when it has finished".into());
    }
    let store = Arc::clone(&daemon.store);
    let events = daemon.events.clone();
    let guard = Bounded {
        inner: upload.file,
        left: IMPORT_MAX_BYTES,
        deadline: Instant::now() + IMPORT_MAX_TIME,
        cancel: upload.cancel,
    };
    let spawned = std::thread::Builder::new()
        .name("cdr-import".into())
        .spawn(move || {
            let r = ingest::import(&store, kind, guard).map_err(|e| format!("{path}: {e}"));
            importing.store(false, Ordering::Release);
            let answer = match r {
                Ok(s) => {
                    log::info!(
                        "cdr: imported {path}: {} records, {} rows",
                        s.records,
                        s.rows
                    );
                    Reply::Imported(ImportView {
                        path,
                        records: s.records,
                        malformed: s.malformed,
                        rows: s.rows,
                        last_errors: s.last_errors,
                    })
                }
                Err(e) => {
                    log::warn!("cdr: import stopped: {e}");
                    Reply::error(ErrorCode::Invalid, e)
                }
            };
            // Through the loop: the answer waits for the HA peer like any
            // change's.
            let _ = events.send_blocking(super::Event::Answer {
                change: true,
                answer,
                reply,
            });
        });
    spawned.map(drop).map_err(|e| {
        daemon
            .cdr
            .borrow()
            .importing
            .store(false, Ordering::Release);
        log::error!("cdr: cannot start an import thread: {e}");
        "cannot start the import now".to_string()
    })
}

/// The import's reader: stops at the size limit, the deadline, or when the
/// client has gone (every read checks; a read is at most one buffer).
struct Bounded {
    inner: File,
    left: u64,
    deadline: Instant,
    cancel: Arc<AtomicBool>,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("cancelled: the console went away"));
        }
        if Instant::now() > self.deadline {
            return Err(std::io::Error::other(format!(
                "stopped after {} s, the import time limit",
                IMPORT_MAX_TIME.as_secs()
            )));
        }
        let n = self.inner.read(buf)?;
        // The file may grow while it is read; the limit holds anyway.
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            std::io::Error::other(format!(
                "larger than the import limit of {} MiB",
                IMPORT_MAX_BYTES >> 20
            ))
        })?;
        Ok(n)
    }
}

fn prepare_export(
    daemon: &Daemon,
    r: &ExportRequest,
) -> Result<(TimeRange, Format, ExportOptions), String> {
    let tz = super::box_tz(&daemon.store);
    let format = Format::from_name(&r.format).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!(
            "unknown format {:?} (known: {})",
            r.format,
            names.join(", ")
        )
    })?;
    let (start, end) = match (&r.from, &r.to, &r.interval) {
        (Some(from), Some(to), None) => (parse_local(from, &tz)?, parse_local(to, &tz)?),
        (None, None, Some(name)) => {
            let interval = NamedInterval::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = NamedInterval::ALL.iter().map(|i| i.name()).collect();
                format!("unknown interval {name:?} (known: {})", names.join(", "))
            })?;
            let now = Timestamp::from_microsecond(daemon.clock.wall().as_unix_micros())
                .map_err(|e| e.to_string())?;
            interval.bounds(now, &tz)?
        }
        _ => return Err("give --from and --to, or --interval".into()),
    };
    if end < start {
        return Err("--to is before --from".into());
    }
    let tmp = daemon.config.data_dir.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    let opts = ExportOptions {
        tz,
        mask: r.mask,
        csv: crate::export::csv::CsvOptions {
            delimiter: r.delimiter,
            bom: r.bom,
        },
        xlsx: crate::export::xlsx::XlsxOptions { tempdir: Some(tmp) },
        operator_events: r.operator_events,
    };
    Ok((TimeRange::new(start, end), format, opts))
}

/// Sends what is written as [`Reply::Chunk`]s of [`STREAM_CHUNK`] bytes.
pub(super) struct ChunkWriter {
    tx: Sender<Reply>,
    buf: Vec<u8>,
    written: u64,
}

impl ChunkWriter {
    pub(super) fn new(tx: Sender<Reply>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(STREAM_CHUNK),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(STREAM_CHUNK));
        self.tx
            .send_blocking(Reply::Chunk(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = STREAM_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() >= STREAM_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn spawn_export(
    daemon: &Daemon,
    callcenter: bool,
    range: TimeRange,
    format: Format,
    opts: ExportOptions,
    reply: Sender<Reply>,
) {
    let store = Arc::clone(&daemon.store);
    let spawned = std::thread::Builder::new()
        .name("cdr-export".into())
        .spawn(move || {
            let mut out = ChunkWriter::new(reply.clone());
            // XLSX writes nothing until it is assembled: empty chunks keep
            // the connection and the client's read timeout alive meanwhile.
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let keepalive = {
                let tx = reply.clone();
                std::thread::Builder::new()
                    .name("cdr-keepalive".into())
                    .spawn(move || {
                        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                            stopped.recv_timeout(KEEPALIVE)
                        {
                            if tx.send_blocking(Reply::Chunk(Vec::new())).is_err() {
                                return;
                            }
                        }
                    })
            };
            let result = if callcenter {
                report::export_queue(&store, range, format, &opts, &mut out)
            } else {
                report::export_calls(&store, range, format, &opts, &mut out)
            };
            drop(stop);
            if let Ok(k) = keepalive {
                let _ = k.join();
            }
            store.release_mapped_pages();
            let result = result.and_then(|s| {
                out.flush()
                    .map_err(|e| report::ReportError::Export(e.into()))?;
                Ok(s)
            });
            let answer = match result {
                Ok(s) => Reply::StreamEnd(StreamEndView {
                    rows: s.rows,
                    bytes: s.bytes,
                    from_us: range.start_us,
                    to_us: range.end_us,
                }),
                Err(e) => {
                    log::warn!("cdr: export failed: {e}");
                    Reply::error(ErrorCode::Invalid, format!("export failed: {e}"))
                }
            };
            let _ = reply.send_blocking(answer);
        });
    if let Err(e) = spawned {
        log::error!("cdr: cannot start an export thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounded(bytes: &[u8], left: u64, deadline: Instant) -> Bounded {
        let mut inner = tempfile::tempfile().unwrap();
        inner.write_all(bytes).unwrap();
        inner.rewind().unwrap();
        Bounded {
            inner,
            left,
            deadline,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn an_import_stops_at_its_limits() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut all = String::new();
        bounded(b"abc", 3, later).read_to_string(&mut all).unwrap();
        assert_eq!(all, "abc");
        let e = bounded(b"abcd", 3, later).read_to_end(&mut Vec::new());
        assert!(e.unwrap_err().to_string().contains("import limit"));
        let e = bounded(b"abc", 3, Instant::now() - Duration::from_secs(1))
            .read_to_end(&mut Vec::new());
        assert!(e.unwrap_err().to_string().contains("time limit"));
        let b = bounded(b"abc", 3, later);
        b.cancel.store(true, Ordering::Relaxed);
        let e = { b }.read_to_end(&mut Vec::new());
        assert!(e.unwrap_err().to_string().contains("cancelled"));
    }
}
