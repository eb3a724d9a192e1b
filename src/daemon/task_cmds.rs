//! `kpbx task ...` and `kpbx mail ...`: configuration through the one write
//! path, runs and deliveries through the task and mail adapters.

use jiff::Timestamp;
use smol::channel::Sender;

use crate::clock::Clock;
use crate::control::{
    Command, DeliveryView, ErrorCode, MailTestView, ObjectView, OutboxView, Reply, TaskRunView,
    TaskStartedView,
};
use crate::mail::outbox::{Delivery, Message, Status};
use crate::model::prov::Fields;
use crate::model::{Change, Kind, MAIL_ID, Object, ObjectRef, Origin, SettingKey, Task};
use crate::schedule::record::Run;

use super::Daemon;
use super::handlers::{Handled, commit, object_view, refuse, store_error};
use super::mail::Mail;
use super::tasks::Tasks;

/// Most runs or messages one listing returns.
const MAX_LIST: u32 = 1000;

pub fn handle(daemon: &Daemon, origin: &Origin, command: Command) -> Reply {
    let result = match command {
        Command::TaskAdd { fields } => task_add(daemon, origin, &fields),
        Command::TaskSet { id, fields } => task_set(daemon, origin, id, &fields),
        Command::TaskDelete { ids } => task_delete(daemon, origin, &ids),
        Command::TaskList => task_list(daemon),
        Command::TaskShow { id } => task_show(daemon, id),
        Command::TaskRun { id } => task_run(daemon, id),
        Command::TaskHistory { id, limit } => task_history(daemon, id, limit),
        Command::MailConfigure { fields } => mail_configure(daemon, origin, &fields),
        Command::MailShow => mail_show(daemon),
        Command::MailRetry => mail_retry(daemon),
        Command::MailOutbox { limit } => mail_outbox(daemon, limit),
        Command::MailTest { .. } => Err(refuse(
            ErrorCode::Unavailable,
            "mail test is answered from a worker thread",
        )),
        _ => Err(refuse(ErrorCode::BadRequest, "not a task or mail command")),
    };
    result.unwrap_or_else(Reply::Error)
}

/// Commands answered later, from a thread; others are returned.
pub fn offload(daemon: &Daemon, command: Command, reply: &Sender<Reply>) -> Option<Command> {
    match command {
        Command::MailTest { address } => {
            mail_test(daemon, address, reply.clone());
            None
        }
        other => Some(other),
    }
}

pub fn hostname(daemon: &Daemon) -> String {
    daemon
        .store
        .setting(SettingKey::Hostname)
        .unwrap_or_else(|_| "kpbx".into())
}

fn now(daemon: &Daemon) -> Timestamp {
    daemon.clock.wall().to_timestamp()
}

fn stored_task(daemon: &Daemon, id: u64) -> Result<Task, crate::control::ErrorView> {
    match daemon
        .store
        .get(Kind::Task, &id.to_string())
        .map_err(store_error)?
    {
        Some(Object::Task(t)) => Ok(t),
        _ => Err(refuse(
            ErrorCode::NotFound,
            format!("task {id} does not exist"),
        )),
    }
}

fn task_add(daemon: &Daemon, origin: &Origin, fields: &[(String, String)]) -> Handled {
    let existing = daemon.store.list(Kind::Task).map_err(store_error)?;
    let next_id = existing
        .iter()
        .filter_map(|o| match o {
            Object::Task(t) => Some(t.id),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        + 1;
    let mut f = Fields::new(fields).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let task =
        Task::from_fields(None, next_id, &mut f).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    f.finish("task")
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    commit(daemon, origin, &[Change::put(Object::Task(task))])
}

fn task_set(daemon: &Daemon, origin: &Origin, id: u64, fields: &[(String, String)]) -> Handled {
    if fields.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to set"));
    }
    let prev = stored_task(daemon, id)?;
    let mut f = Fields::new(fields).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let task =
        Task::from_fields(Some(&prev), id, &mut f).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    f.finish("task")
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    commit(daemon, origin, &[Change::put(Object::Task(task))])
}

fn task_delete(daemon: &Daemon, origin: &Origin, ids: &[u64]) -> Handled {
    if ids.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "no task to delete"));
    }
    let changes: Vec<Change> = ids
        .iter()
        .map(|id| {
            Change::Delete(ObjectRef {
                kind: Kind::Task,
                id: id.to_string(),
            })
        })
        .collect();
    commit(daemon, origin, &changes)
}

/// A task's view with its schedule state.
fn task_view(daemon: &Daemon, task: &Task) -> ObjectView {
    let mut v = object_view(&Object::Task(task.clone()), false);
    let tasks = daemon.tasks.borrow();
    let tz = super::box_tz(&daemon.store);
    let next = tasks
        .next_run(task, now(daemon))
        .map(|t| t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| "never (disabled: runs only by hand)".into());
    v.fields.push(("next_run".into(), next));
    v.fields.push((
        "running".into(),
        if tasks.is_running(task.id) {
            "yes"
        } else {
            "no"
        }
        .into(),
    ));
    v
}

fn task_list(daemon: &Daemon) -> Handled {
    let mut tasks: Vec<Task> = daemon
        .store
        .list(Kind::Task)
        .map_err(store_error)?
        .into_iter()
        .filter_map(|o| match o {
            Object::Task(t) => Some(t),
            _ => None,
        })
        .collect();
    tasks.sort_by_key(|t| t.id);
    Ok(Reply::Objects(
        tasks.iter().map(|t| task_view(daemon, t)).collect(),
    ))
}

fn task_show(daemon: &Daemon, id: u64) -> Handled {
    let task = stored_task(daemon, id)?;
    Ok(Reply::Objects(vec![task_view(daemon, &task)]))
}

fn task_run(daemon: &Daemon, id: u64) -> Handled {
    stored_task(daemon, id)?;
    let run = daemon
        .tasks
        .borrow_mut()
        .run_now(
            &daemon.store,
            &hostname(daemon),
            id,
            now(daemon),
            &daemon.events,
        )
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    Ok(Reply::TaskStarted(TaskStartedView {
        task: id,
        run,
        message: "report generation started".into(),
    }))
}

fn delivery_view(d: &Delivery) -> DeliveryView {
    let (at_us, detail) = match &d.status {
        Status::Pending => (d.next_attempt, d.last_error.clone()),
        Status::Sent { at } => (*at, String::new()),
        Status::Failed { at, reason } => (*at, reason.clone()),
    };
    DeliveryView {
        recipient: d.recipient.clone(),
        status: d.status.name().into(),
        attempts: d.attempts,
        at_us,
        detail,
    }
}

fn run_view(daemon: &Daemon, r: Run) -> Result<TaskRunView, crate::control::ErrorView> {
    let message = match r.message {
        Some(id) => Mail::get(&daemon.store, id).map_err(store_error)?,
        None => None,
    };
    let running = daemon.tasks.borrow().running_run(r.task) == Some(r.run);
    let state = match (&r.finished_us, r.error.is_empty()) {
        (None, _) if running => "running",
        (None, _) => "interrupted",
        (Some(_), true) => "done",
        (Some(_), false) => "failed",
    };
    Ok(TaskRunView {
        run: r.run,
        task: r.task,
        task_name: r.task_name,
        trigger: if r.scheduled_us.is_some() {
            "scheduled"
        } else {
            "manual"
        }
        .into(),
        scheduled_us: r.scheduled_us,
        started_us: r.started_us,
        finished_us: r.finished_us,
        period_start_us: r.period_start_us,
        period_end_us: r.period_end_us,
        state: state.into(),
        records: r.records,
        file_name: r.file_name,
        file_bytes: r.file_bytes,
        zipped: r.zipped,
        error: r.error,
        deliveries: message
            .map(|m| m.deliveries.iter().map(delivery_view).collect())
            .unwrap_or_default(),
    })
}

fn task_history(daemon: &Daemon, id: Option<u64>, limit: u32) -> Handled {
    if let Some(id) = id {
        stored_task(daemon, id)?;
    }
    let runs = Tasks::history(&daemon.store, id, limit.clamp(1, MAX_LIST) as usize)
        .map_err(store_error)?;
    Ok(Reply::TaskHistory(
        runs.into_iter()
            .map(|r| run_view(daemon, r))
            .collect::<Result<_, _>>()?,
    ))
}

fn mail_configure(daemon: &Daemon, origin: &Origin, fields: &[(String, String)]) -> Handled {
    if fields.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to configure"));
    }
    let prev = daemon.store.get(Kind::Mail, MAIL_ID).map_err(store_error)?;
    let next = Object::from_fields(Kind::Mail, prev.as_ref(), fields)
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    commit(daemon, origin, &[Change::put(next)])
}

/// The settings, or none when mail is not configured: not configured is a
/// state to show (an empty list, as `task list` with no tasks), not an error.
fn mail_show(daemon: &Daemon) -> Handled {
    let mail = daemon.store.get(Kind::Mail, MAIL_ID).map_err(store_error)?;
    Ok(Reply::Objects(
        mail.iter().map(|m| object_view(m, false)).collect(),
    ))
}

fn mail_retry(daemon: &Daemon) -> Handled {
    let n = daemon
        .mail
        .borrow_mut()
        .retry_now(&daemon.store, now(daemon).as_microsecond())
        .map_err(store_error)?;
    log::info!("mail: retry requested, {n} deliveries due");
    mail_outbox(daemon, 20)
}

fn outbox_view(m: Message) -> OutboxView {
    OutboxView {
        id: m.id,
        queued_us: m.queued,
        subject: m.subject,
        run: m.run,
        deliveries: m.deliveries.iter().map(delivery_view).collect(),
    }
}

fn mail_outbox(daemon: &Daemon, limit: u32) -> Handled {
    let list = Mail::list(&daemon.store, limit.clamp(1, MAX_LIST) as usize).map_err(store_error)?;
    Ok(Reply::Outbox(list.into_iter().map(outbox_view).collect()))
}

/// Sends a test message directly (not through the outbox) on a thread and
/// answers with what the server said.
fn mail_test(daemon: &Daemon, address: String, reply: Sender<Reply>) {
    let fail = |reply: &Sender<Reply>, code, m: String| {
        let _ = reply.try_send(Reply::error(code, m));
    };
    if let Err(e) = crate::model::task::email("address", &address) {
        return fail(&reply, ErrorCode::Invalid, e);
    }
    let settings = match daemon.store.get(Kind::Mail, MAIL_ID) {
        Ok(Some(Object::Mail(m))) => m,
        Ok(_) => {
            return fail(
                &reply,
                ErrorCode::Invalid,
                "mail is not configured (kpbx mail configure server=... sender=...)".into(),
            );
        }
        Err(e) => return fail(&reply, ErrorCode::Store, e.to_string()),
    };
    let host = hostname(daemon);
    let wall = now(daemon).as_second();
    let body = match crate::mail::message::test(&settings.sender, &address, &host, wall, 0) {
        Ok(b) => b,
        Err(e) => return fail(&reply, ErrorCode::Invalid, e),
    };
    let ca = daemon.config.ca_bundle.clone();
    let spawned = std::thread::Builder::new()
        .name("kpbxd-mailtest".into())
        .spawn(move || {
            use crate::mail::outbox::Outcome;
            let outcome = super::mail::send(&settings, &ca, &host, &address, &body);
            let (delivered, detail) = match outcome {
                Outcome::Accepted => (true, "accepted by the server".to_string()),
                Outcome::Transient(e) => (false, format!("temporary failure: {e}")),
                Outcome::Permanent(e) => (false, format!("refused: {e}")),
            };
            let _ = reply.send_blocking(Reply::MailTested(MailTestView {
                address,
                delivered,
                detail,
            }));
        });
    if let Err(e) = spawned {
        log::error!("mail test: cannot start a thread: {e}");
    }
}
