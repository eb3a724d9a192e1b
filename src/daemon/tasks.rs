//! The scheduled-task adapter: feeds the pure [`Scheduler`] with the stored
//! tasks, the box's time zone and the clock, runs each started task's export
//! on a worker thread, and queues the report mail in the outbox.
//!
//! Durability: when a task starts, its run record and its scheduler
//! progress (`settled until`) are written before the work begins; when it
//! ends, the finished run record and the outbox message are written in one
//! transaction. A run cut short by a stop stays "interrupted" in the
//! history; the scheduler does not repeat it (at most one catch-up run).

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::{Bound, ControlFlow};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use smol::channel::Sender;

use crate::export::zip::{ZipPolicy, zip_if_larger};
use crate::mail::message::{self, Report};
use crate::mail::outbox::Message;
use crate::model::task::{ReportFormat, TaskType, ZipRule};
use crate::model::{Kind, MAIL_ID, Object, SettingKey, Task};
use crate::report::{self, ExportOptions, Format, TimeRange};
use crate::schedule::record::{self as runs, Run};
use crate::schedule::{Period, RunNowError, Scheduler, Start, TaskId, TaskSpec, Trigger};
use crate::store::data::{Order, Table};
use crate::store::{Store, StoreError};

use super::Event;
use super::mail::Mail;

/// What a finished export thread hands back.
pub struct Output {
    pub records: u64,
    pub file_name: String,
    pub file_bytes: u64,
    pub zipped: bool,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: Vec<u8>,
}

pub struct Tasks {
    scheduler: Scheduler,
    specs: BTreeMap<u64, TaskSpec>,
    tz_name: String,
    /// Task id → run id, while running.
    running: BTreeMap<u64, u64>,
    tmp_dir: PathBuf,
}

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn stored_tasks(store: &Store) -> Result<Vec<Task>, StoreError> {
    Ok(store
        .list(Kind::Task)?
        .into_iter()
        .filter_map(|o| match o {
            Object::Task(t) => Some(t),
            _ => None,
        })
        .collect())
}

impl Tasks {
    /// Loads the stored tasks; a task's missed scheduled run (box down) is
    /// made once by the first tick.
    pub fn new(store: &Store, data_dir: &std::path::Path, now: Timestamp) -> Tasks {
        let tz_name = store
            .setting(SettingKey::Timezone)
            .unwrap_or_else(|_| "UTC".into());
        let mut t = Tasks {
            scheduler: Scheduler::new(super::named_tz(&tz_name)),
            specs: BTreeMap::new(),
            tz_name,
            running: BTreeMap::new(),
            tmp_dir: data_dir.join("tmp"),
        };
        let _ = std::fs::remove_dir_all(&t.tmp_dir);
        match stored_tasks(store) {
            Ok(tasks) => {
                for task in tasks {
                    let settled = store
                        .data_get(Table::TaskRun, &runs::settled_key(task.id))
                        .ok()
                        .flatten()
                        .and_then(|b| runs::decode_settled(&b).ok())
                        .map(ts);
                    if let Err(e) =
                        t.scheduler
                            .restore_task(TaskId(task.id), task.spec(), settled, now)
                    {
                        log::error!("task {}: {e}", task.id);
                    }
                    if settled.is_none() {
                        persist_settled(store, task.id, now);
                    }
                    t.specs.insert(task.id, task.spec());
                }
            }
            Err(e) => log::error!("tasks: cannot read the tasks: {e}"),
        }
        t
    }

    /// Brings the scheduler in line with the stored tasks and time zone
    /// after a configuration change.
    pub fn sync(&mut self, store: &Store, now: Timestamp) {
        let tz_name = store
            .setting(SettingKey::Timezone)
            .unwrap_or_else(|_| "UTC".into());
        if tz_name != self.tz_name {
            self.scheduler.set_time_zone(super::named_tz(&tz_name), now);
            self.tz_name = tz_name;
        }
        let tasks = match stored_tasks(store) {
            Ok(t) => t,
            Err(e) => {
                log::error!("tasks: {e}");
                return;
            }
        };
        let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
        for gone in self
            .specs
            .keys()
            .copied()
            .filter(|id| !ids.contains(id))
            .collect::<Vec<_>>()
        {
            self.scheduler.remove_task(TaskId(gone));
            self.specs.remove(&gone);
            let _ = store.data_write(|t| t.delete(Table::TaskRun, &runs::settled_key(gone)));
        }
        for task in tasks {
            let spec = task.spec();
            if self.specs.get(&task.id) != Some(&spec) {
                if let Err(e) = self.scheduler.set_task(TaskId(task.id), spec, now) {
                    log::error!("task {}: {e}", task.id);
                }
                persist_settled(store, task.id, now);
                self.specs.insert(task.id, spec);
            }
        }
    }

    /// The next scheduled run of `task`, if any.
    pub fn next_run(&self, task: &Task, now: Timestamp) -> Option<Timestamp> {
        crate::schedule::next_run(&task.spec(), now, &super::named_tz(&self.tz_name))
    }

    pub fn is_running(&self, task: u64) -> bool {
        self.running.contains_key(&task)
    }

    /// The run in progress of `task`.
    pub fn running_run(&self, task: u64) -> Option<u64> {
        self.running.get(&task).copied()
    }

    /// Starts what is due at `now`.
    pub fn tick(
        &mut self,
        store: &Arc<Store>,
        hostname: &str,
        now: Timestamp,
        events: &Sender<Event>,
    ) {
        if self.scheduler.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        for start in self.scheduler.handle_timeout(now) {
            if let Some(until) = self.scheduler.settled_until(start.task) {
                persist_settled(store, start.task.0, until);
            }
            self.start(store, hostname, start, now, events);
        }
    }

    /// `kpbx task run`: starts the task now, without moving its schedule.
    pub fn run_now(
        &mut self,
        store: &Arc<Store>,
        hostname: &str,
        task: u64,
        now: Timestamp,
        events: &Sender<Event>,
    ) -> Result<u64, String> {
        let start = self
            .scheduler
            .run_now(TaskId(task), now)
            .map_err(|e| match e {
                RunNowError::UnknownTask => format!("task {task} does not exist"),
                RunNowError::AlreadyRunning => format!("task {task} is already running"),
                RunNowError::OutOfRange => format!("task {task}: time out of range"),
            })?;
        self.start(store, hostname, start, now, events)
            .ok_or_else(|| format!("task {task} could not start (see the log)"))
    }

    fn start(
        &mut self,
        store: &Arc<Store>,
        hostname: &str,
        start: Start,
        now: Timestamp,
        events: &Sender<Event>,
    ) -> Option<u64> {
        let id = start.task.0;
        let fail = |s: &mut Scheduler, e: String| {
            log::error!("task {id}: {e}");
            s.task_finished(start.task);
            None
        };
        let task = match store.get(Kind::Task, &id.to_string()) {
            Ok(Some(Object::Task(t))) => t,
            Ok(_) => return fail(&mut self.scheduler, "no longer configured".into()),
            Err(e) => return fail(&mut self.scheduler, e.to_string()),
        };
        let run_id = match next_run_id(store) {
            Ok(r) => r,
            Err(e) => return fail(&mut self.scheduler, e.to_string()),
        };
        let run = Run {
            run: run_id,
            task: id,
            task_name: task.name.clone(),
            scheduled_us: match start.trigger {
                Trigger::Scheduled(t) => Some(us(t)),
                Trigger::Manual => None,
            },
            started_us: us(now),
            period_start_us: us(start.period.start),
            period_end_us: us(start.period.end),
            ..Run::default()
        };
        if let Err(e) = store.data_write(|t| {
            t.put(
                Table::TaskRun,
                &runs::run_key(run_id),
                &runs::encode_run(&run),
            )
        }) {
            return fail(&mut self.scheduler, e.to_string());
        }
        log::info!(
            "task {id} {:?}: run {run_id} started ({})",
            task.name,
            match start.trigger {
                Trigger::Scheduled(_) => "scheduled",
                Trigger::Manual => "manual",
            }
        );
        let job = Job {
            store: store.clone(),
            task,
            period: start.period,
            tz: super::named_tz(&self.tz_name),
            tmp_dir: self.tmp_dir.clone(),
            run: run_id,
            hostname: hostname.to_string(),
            date: now.as_second(),
        };
        let events = events.clone();
        let spawned = std::thread::Builder::new()
            .name("kpbxd-task".into())
            .spawn(move || {
                let result = job.run();
                let _ = events.send_blocking(Event::TaskDone {
                    task: id,
                    run: run_id,
                    result,
                });
            });
        if let Err(e) = spawned {
            return fail(&mut self.scheduler, format!("cannot start a thread: {e}"));
        }
        self.running.insert(id, run_id);
        Some(run_id)
    }

    /// Records the end of a run and queues its mail, in one transaction.
    pub fn done(
        &mut self,
        store: &Store,
        mail: &mut Mail,
        task: u64,
        run_id: u64,
        result: Result<Output, String>,
        now: Timestamp,
    ) {
        self.running.remove(&task);
        self.scheduler.task_finished(TaskId(task));
        let mut run = match store
            .data_get(Table::TaskRun, &runs::run_key(run_id))
            .map_err(|e| e.to_string())
            .and_then(|b| b.ok_or_else(|| "run record missing".to_string()))
            .and_then(|b| runs::decode_run(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                log::error!("task {task} run {run_id}: {e}");
                return;
            }
        };
        run.finished_us = Some(us(now));
        let written = match result {
            Err(e) => {
                log::error!("task {task} run {run_id}: {e}");
                run.error = e;
                store.data_write(|t| {
                    t.put(
                        Table::TaskRun,
                        &runs::run_key(run_id),
                        &runs::encode_run(&run),
                    )
                })
            }
            Ok(out) => {
                run.records = out.records;
                run.file_name = out.file_name;
                run.file_bytes = out.file_bytes;
                run.zipped = out.zipped;
                let queued = Mail::next_id(store).and_then(|mid| {
                    let retry = retry_window(store);
                    let message = Message::new(
                        mid,
                        us(now),
                        out.subject,
                        Some(run_id),
                        retry,
                        &out.recipients,
                    );
                    run.message = Some(mid);
                    mail.queue(store, &message, &out.body, |t| {
                        t.put(
                            Table::TaskRun,
                            &runs::run_key(run_id),
                            &runs::encode_run(&run),
                        )
                    })
                });
                if queued.is_ok() {
                    log::info!(
                        "task {task} run {run_id}: {} records, {} bytes{}, mail queued for {} recipients",
                        run.records,
                        run.file_bytes,
                        if run.zipped { " zipped" } else { "" },
                        out.recipients.len()
                    );
                }
                queued
            }
        };
        if let Err(e) = written {
            log::error!("task {task} run {run_id}: cannot record the run: {e}");
        }
    }

    /// Runs, newest first, of one task or all.
    pub fn history(store: &Store, task: Option<u64>, limit: usize) -> Result<Vec<Run>, StoreError> {
        let mut out = Vec::new();
        let from = runs::run_key(0);
        let to = runs::run_key(u64::MAX);
        store.data_scan(
            Table::TaskRun,
            (Bound::Included(&from[..]), Bound::Included(&to[..])),
            Order::Descending,
            |_, v| {
                let r = runs::decode_run(v)?;
                if task.is_none_or(|t| t == r.task) {
                    out.push(r);
                }
                Ok(if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        Ok(out)
    }
}

fn retry_window(store: &Store) -> std::time::Duration {
    let minutes = match store.get(Kind::Mail, MAIL_ID) {
        Ok(Some(Object::Mail(m))) => m.retry_minutes,
        _ => 24 * 60,
    };
    std::time::Duration::from_secs(u64::from(minutes) * 60)
}

fn persist_settled(store: &Store, task: u64, until: Timestamp) {
    if let Err(e) = store.data_write(|t| {
        t.put(
            Table::TaskRun,
            &runs::settled_key(task),
            &runs::encode_settled(us(until)),
        )
    }) {
        log::error!("task {task}: cannot save its schedule progress: {e}");
    }
}

fn next_run_id(store: &Store) -> Result<u64, StoreError> {
    let mut last = 0;
    let from = runs::run_key(0);
    let to = runs::run_key(u64::MAX);
    store.data_scan(
        Table::TaskRun,
        (Bound::Included(&from[..]), Bound::Included(&to[..])),
        Order::Descending,
        |k, _| {
            last = runs::key_id(k).unwrap_or(0);
            Ok(ControlFlow::Break(()))
        },
    )?;
    Ok(last + 1)
}

/// Addresses of every user with the supervisor role and an e-mail address.
fn supervisors(store: &Store) -> Vec<String> {
    match store.list(Kind::User) {
        Ok(users) => users
            .into_iter()
            .filter_map(|o| match o {
                Object::User(u)
                    if u.role == crate::model::access::SUPERVISOR && !u.email.is_empty() =>
                {
                    Some(u.email)
                }
                _ => None,
            })
            .collect(),
        Err(e) => {
            log::error!("tasks: cannot read the users: {e}");
            Vec::new()
        }
    }
}

/// One run's work, on a worker thread: export, zip, build the mail.
struct Job {
    store: Arc<Store>,
    task: Task,
    period: Period,
    tz: TimeZone,
    tmp_dir: PathBuf,
    run: u64,
    hostname: String,
    date: i64,
}

fn format_of(f: ReportFormat) -> Format {
    match f {
        ReportFormat::Xlsx => Format::Xlsx,
        ReportFormat::XlsxDetailed => Format::XlsxDetailed,
        ReportFormat::Csv => Format::Csv,
        ReportFormat::CsvDetailed => Format::CsvDetailed,
        ReportFormat::Json => Format::Json,
        ReportFormat::Xml => Format::Xml,
    }
}

fn content_type(f: ReportFormat, zipped: bool) -> &'static str {
    if zipped {
        return "application/zip";
    }
    match f {
        ReportFormat::Xlsx | ReportFormat::XlsxDetailed => {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        ReportFormat::Csv | ReportFormat::CsvDetailed => "text/csv; charset=utf-8",
        ReportFormat::Json => "application/json",
        ReportFormat::Xml => "application/xml",
    }
}

impl Job {
    fn run(self) -> Result<Output, String> {
        let mail = match self.store.get(Kind::Mail, MAIL_ID) {
            Ok(Some(Object::Mail(m))) => m,
            Ok(_) => return Err("mail is not configured (kpbx mail configure)".into()),
            Err(e) => return Err(e.to_string()),
        };
        let mut recipients = self.task.recipients.clone();
        if self.task.notify_supervisors {
            for s in supervisors(&self.store) {
                if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&s)) {
                    recipients.push(s);
                }
            }
        }
        if recipients.is_empty() {
            return Err("no recipients (no supervisor has an e-mail address)".into());
        }
        std::fs::create_dir_all(&self.tmp_dir)
            .map_err(|e| format!("{}: {e}", self.tmp_dir.display()))?;
        let local = |t: Timestamp| t.to_zoned(self.tz.clone()).date();
        let start = local(self.period.start);
        // The period's end is exclusive: name the last day it covers.
        let last = local(
            self.period
                .end
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap_or(self.period.end),
        );
        let period_text = if start == last {
            start.to_string()
        } else {
            format!("{start} to {last}")
        };
        let stem = match self.task.task_type {
            TaskType::SendCdr => "cdr",
            TaskType::SendCallCenterCdr => "callcenter-cdr",
        };
        let base = if start == last {
            format!("{stem}-{start}")
        } else {
            format!("{stem}-{start}_{last}")
        };
        let file_name = format!("{base}.{}", self.task.format.extension());
        let path = self
            .tmp_dir
            .join(format!("run-{}.{}", self.run, self.task.format.extension()));
        let zip_path = self.tmp_dir.join(format!("run-{}.zip", self.run));
        let result = self.export(&path, &zip_path, &file_name);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&zip_path);
        let (records, file, zipped) = result?;
        let file_name = if zipped {
            format!("{base}.zip")
        } else {
            file_name
        };
        let title = format!("{} \"{}\"", self.task.task_type.title(), self.task.name);
        let body = message::report(&Report {
            sender: &mail.sender,
            recipients: &recipients,
            title: &title,
            period: &period_text,
            records,
            file_name: &file_name,
            content_type: content_type(self.task.format, zipped),
            file: &file,
            zipped,
            hostname: &self.hostname,
            date: self.date,
            unique: self.run,
        })?;
        Ok(Output {
            records,
            file_bytes: file.len() as u64,
            file_name,
            zipped,
            subject: message::subject(&title, &period_text),
            recipients,
            body,
        })
    }

    /// Exports to `path`, zips to `zip_path` when the rule says so, and
    /// returns the records, the bytes to attach and whether they are zipped.
    fn export(
        &self,
        path: &std::path::Path,
        zip_path: &std::path::Path,
        entry: &str,
    ) -> Result<(u64, Vec<u8>, bool), String> {
        let opts = ExportOptions {
            tz: self.tz.clone(),
            mask: self.task.mask_numbers,
            operator_events: self.task.operator_events,
            ..ExportOptions::default()
        };
        let range = TimeRange::new(self.period.start, self.period.end);
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let format = format_of(self.task.format);
        let summary = match self.task.task_type {
            TaskType::SendCdr => report::export_calls(&self.store, range, format, &opts, &mut out),
            TaskType::SendCallCenterCdr => {
                report::export_queue(&self.store, range, format, &opts, &mut out)
            }
        }
        .map_err(|e| format!("export: {e}"))?;
        out.flush().map_err(|e| format!("export: {e}"))?;
        drop(out);
        let policy = match self.task.zip {
            ZipRule::Never => None,
            ZipRule::OverMb(n) => Some(ZipPolicy::from_megabytes(u64::from(n))),
        };
        let zipped = match policy {
            Some(p) => zip_if_larger(path, zip_path, entry, p).map_err(|e| format!("zip: {e}"))?,
            None => false,
        };
        let bytes = std::fs::read(if zipped { zip_path } else { path })
            .map_err(|e| format!("reading the export: {e}"))?;
        Ok((summary.rows, bytes, zipped))
    }
}
