//! The task scheduler state machine, driven by the daemon loop.
//!
//! Loop contract: sleep until [`Scheduler::poll_timeout`] (run at once if it
//! is in the past), call [`Scheduler::handle_timeout`] with the current time,
//! start each returned [`Start`] in the background, and call
//! [`Scheduler::task_finished`] when it ends. Poll again after every call that
//! changes state.
//!
//! Policies:
//! - Catch-up: a task's scheduled runs missed while it could not run (box
//!   down, task still running) collapse into one run, for the latest missed
//!   scheduled time.
//! - Overlap: a task never runs twice at once. A scheduled time reached while
//!   the task runs is deferred until it finishes (then collapsed as above);
//!   [`Scheduler::run_now`] on a running task is refused.
//! - A new or changed spec, or a new time zone, applies from the time it is
//!   set: earlier scheduled times are not caught up.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::spec::last_run_until;
use super::{Period, SpecError, TaskSpec, next_run};

/// The id of a scheduled task (a configuration object; administrators create
/// as many "Send CDR" and "Send Call Center CDR" tasks as they need).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

/// Why a task starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Its schedule, for this scheduled instant (possibly in the past after a
    /// catch-up or a deferral).
    Scheduled(Timestamp),
    /// A manual "run now".
    Manual,
}

/// Action: start `task` in the background, exporting `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The task to start.
    pub task: TaskId,
    /// Why it starts.
    pub trigger: Trigger,
    /// Resolved at the scheduled instant (manual runs: at the request), so a
    /// late run exports what an on-time run would have.
    pub period: Period,
}

/// Why [`Scheduler::run_now`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunNowError {
    /// No such task is configured.
    UnknownTask,
    /// The task is running; it never runs twice at once.
    AlreadyRunning,
    /// The interval could not be resolved (time at the edge of jiff's range).
    OutOfRange,
}

impl fmt::Display for RunNowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunNowError::UnknownTask => "unknown task",
            RunNowError::AlreadyRunning => "task is already running",
            RunNowError::OutOfRange => "time out of range",
        })
    }
}

impl std::error::Error for RunNowError {}

#[derive(Clone, Debug)]
struct Entry {
    spec: TaskSpec,
    /// Every scheduled run at or before this instant has been started or
    /// deliberately skipped.
    settled_until: Timestamp,
}

/// Task specs and per-task state; see the module docs for the loop contract.
#[derive(Clone, Debug)]
pub struct Scheduler {
    tz: TimeZone,
    tasks: BTreeMap<TaskId, Entry>,
    /// Kept apart from `tasks` so that removing and re-adding a task while
    /// it runs cannot start it twice.
    running: BTreeSet<TaskId>,
}

impl Scheduler {
    /// An empty scheduler for the box's local time zone.
    pub fn new(tz: TimeZone) -> Scheduler {
        Scheduler {
            tz,
            tasks: BTreeMap::new(),
            running: BTreeSet::new(),
        }
    }

    /// Adds or replaces a task; its schedule counts from `now` (no catch-up
    /// of earlier times). A run in progress is unaffected.
    pub fn set_task(
        &mut self,
        id: TaskId,
        spec: TaskSpec,
        now: Timestamp,
    ) -> Result<(), SpecError> {
        self.restore_task(id, spec, Some(now), now)
    }

    /// Adds a task after a restart. `settled_until` is the value persisted
    /// from [`Scheduler::settled_until`] (or the last run's scheduled time);
    /// `None` means it never ran, and its schedule counts from `now`. The
    /// next [`Scheduler::handle_timeout`] then makes at most one catch-up run.
    pub fn restore_task(
        &mut self,
        id: TaskId,
        spec: TaskSpec,
        settled_until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), SpecError> {
        spec.validate()?;
        let settled_until = settled_until.unwrap_or(now);
        self.tasks.insert(
            id,
            Entry {
                spec,
                settled_until,
            },
        );
        Ok(())
    }

    /// Switches to a new local time zone; schedules count from `now`.
    pub fn set_time_zone(&mut self, tz: TimeZone, now: Timestamp) {
        self.tz = tz;
        for entry in self.tasks.values_mut() {
            entry.settled_until = entry.settled_until.max(now);
        }
    }

    /// Forgets a task. A run in progress is not stopped and still counts as
    /// running until [`Scheduler::task_finished`].
    pub fn remove_task(&mut self, id: TaskId) {
        self.tasks.remove(&id);
    }

    /// When to call [`Scheduler::handle_timeout`] next; may be in the past
    /// (call it at once). `None`: nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.tasks
            .iter()
            .filter(|(id, _)| !self.running.contains(id))
            .filter_map(|(_, e)| next_run(&e.spec, e.settled_until, &self.tz))
            .min()
    }

    /// Starts every idle task with a scheduled run due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<Start> {
        let mut starts = Vec::new();
        for (&task, entry) in &mut self.tasks {
            if self.running.contains(&task) {
                continue;
            }
            let Some(due) = last_run_until(&entry.spec, now, &self.tz) else {
                continue;
            };
            if due <= entry.settled_until {
                continue;
            }
            entry.settled_until = due;
            let Some(period) = entry.spec.interval.resolve(due, &self.tz) else {
                continue;
            };
            self.running.insert(task);
            starts.push(Start {
                task,
                trigger: Trigger::Scheduled(due),
                period,
            });
        }
        starts
    }

    /// Starts `task` by hand, enabled or not. The next scheduled run does not
    /// move (but waits for this run to finish if it comes due meanwhile).
    pub fn run_now(&mut self, task: TaskId, now: Timestamp) -> Result<Start, RunNowError> {
        let entry = self.tasks.get(&task).ok_or(RunNowError::UnknownTask)?;
        if self.running.contains(&task) {
            return Err(RunNowError::AlreadyRunning);
        }
        let period = entry
            .spec
            .interval
            .resolve(now, &self.tz)
            .ok_or(RunNowError::OutOfRange)?;
        self.running.insert(task);
        Ok(Start {
            task,
            trigger: Trigger::Manual,
            period,
        })
    }

    /// Marks a run of `task` as ended (success or failure alike).
    pub fn task_finished(&mut self, task: TaskId) {
        self.running.remove(&task);
    }

    /// Whether `task` is running.
    pub fn is_running(&self, task: TaskId) -> bool {
        self.running.contains(&task)
    }

    /// The instant up to which `task`'s scheduled runs are settled. Persist
    /// it after `set_task` and after each scheduled start, and pass it to
    /// [`Scheduler::restore_task`] after a restart.
    pub fn settled_until(&self, task: TaskId) -> Option<Timestamp> {
        self.tasks.get(&task).map(|e| e.settled_until)
    }
}
