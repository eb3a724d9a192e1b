//! Acceptance tests for the report scheduler, in virtual time.
//!
//! Times are written with their local Europe/Rome offset: +01:00 is CET,
//! +02:00 is CEST.

use jiff::Timestamp;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use kpbxd::schedule::{
    Cadence, Interval, Period, RunNowError, Scheduler, Start, TaskId, TaskSpec, Trigger, next_run,
};

/// Upper bound on loop steps in [`drive`]; reaching it is a test failure.
const MAX_STEPS: usize = 10_000;

fn rome() -> TimeZone {
    TimeZoneDatabase::bundled()
        .get("Europe/Rome")
        .expect("bundled tzdb has Europe/Rome")
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn spec(cadence: Cadence, hour: u8, minute: u8) -> TaskSpec {
    TaskSpec {
        enabled: true,
        cadence,
        hour,
        minute,
        interval: Interval::PreviousDay,
    }
}

fn scheduler_with(spec: TaskSpec, now: Timestamp) -> Scheduler {
    let mut s = Scheduler::new(rome());
    s.set_task(TaskId(1), spec, now).expect("valid spec");
    s
}

/// The daemon loop in virtual time from `from` up to `until`; every run
/// finishes as soon as it starts. Returns the starts in order.
fn drive(s: &mut Scheduler, from: Timestamp, until: Timestamp) -> Vec<Start> {
    let mut now = from;
    let mut started = Vec::new();
    for _ in 0..MAX_STEPS {
        for start in s.handle_timeout(now) {
            s.task_finished(start.task);
            started.push(start);
        }
        match s.poll_timeout() {
            Some(t) if t <= until => now = now.max(t),
            _ => return started,
        }
    }
    panic!("virtual time loop did not settle in {MAX_STEPS} steps");
}

fn scheduled_times(starts: &[Start]) -> Vec<Timestamp> {
    starts
        .iter()
        .map(|s| match s.trigger {
            Trigger::Scheduled(t) => t,
            Trigger::Manual => panic!("unexpected manual start"),
        })
        .collect()
}

fn period(start: &str, end: &str) -> Period {
    Period {
        start: ts(start),
        end: ts(end),
    }
}

fn hours(p: Period) -> i64 {
    (p.end.as_second() - p.start.as_second()) / 3600
}

// --- DST days -------------------------------------------------------------

#[test]
fn spring_forward_daily_0230_runs_once_right_after_the_change() {
    let from = ts("2026-03-27T12:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 30), from);
    let runs = drive(&mut s, from, ts("2026-03-31T00:00:00+02:00"));
    assert_eq!(
        scheduled_times(&runs),
        [
            ts("2026-03-28T02:30:00+01:00"),
            ts("2026-03-29T03:00:00+02:00"), // 02:30 does not exist
            ts("2026-03-30T02:30:00+02:00"),
        ]
    );
}

#[test]
fn fall_back_daily_0230_runs_once_at_first_occurrence() {
    let from = ts("2026-10-23T12:00:00+02:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 30), from);
    let runs = drive(&mut s, from, ts("2026-10-27T00:00:00+01:00"));
    assert_eq!(
        scheduled_times(&runs),
        [
            ts("2026-10-24T02:30:00+02:00"),
            ts("2026-10-25T02:30:00+02:00"), // first of two 02:30s
            ts("2026-10-26T02:30:00+01:00"),
        ]
    );
    // Waking up exactly at the second 02:30 runs nothing.
    assert!(s.handle_timeout(ts("2026-10-25T02:30:00+01:00")).is_empty());
}

#[test]
fn next_run_on_dst_days() {
    let daily = spec(Cadence::Daily, 2, 30);
    let tz = rome();
    let next = |after| next_run(&daily, ts(after), &tz);
    assert_eq!(
        next("2026-03-29T00:00:00+01:00"),
        Some(ts("2026-03-29T03:00:00+02:00"))
    );
    assert_eq!(
        next("2026-03-29T03:00:00+02:00"),
        Some(ts("2026-03-30T02:30:00+02:00"))
    );
    assert_eq!(
        next("2026-10-25T00:00:00+02:00"),
        Some(ts("2026-10-25T02:30:00+02:00"))
    );
    // From between the two 02:30s, the next run is the next day's.
    assert_eq!(
        next("2026-10-25T02:45:00+02:00"),
        Some(ts("2026-10-26T02:30:00+01:00"))
    );
}

// --- Monthly and weekly -----------------------------------------------------

fn monthly_runs(day: u8, from: &str, until: &str) -> Vec<Timestamp> {
    let from = ts(from);
    let mut s = scheduler_with(spec(Cadence::Monthly { day }, 9, 0), from);
    scheduled_times(&drive(&mut s, from, ts(until)))
}

#[test]
fn monthly_day_31_runs_on_last_day_of_shorter_months() {
    let runs = monthly_runs(31, "2026-12-01T00:00:00+01:00", "2028-04-01T00:00:00+02:00");
    let expected = [
        "2026-12-31T09:00:00+01:00",
        "2027-01-31T09:00:00+01:00",
        "2027-02-28T09:00:00+01:00",
        "2027-03-31T09:00:00+02:00",
        "2027-04-30T09:00:00+02:00",
        "2027-05-31T09:00:00+02:00",
        "2027-06-30T09:00:00+02:00",
        "2027-07-31T09:00:00+02:00",
        "2027-08-31T09:00:00+02:00",
        "2027-09-30T09:00:00+02:00",
        "2027-10-31T09:00:00+01:00",
        "2027-11-30T09:00:00+01:00",
        "2027-12-31T09:00:00+01:00",
        "2028-01-31T09:00:00+01:00",
        "2028-02-29T09:00:00+01:00", // leap year
        "2028-03-31T09:00:00+02:00",
    ];
    assert_eq!(runs, expected.map(ts));
}

#[test]
fn monthly_day_30_and_29_in_february() {
    let day30 = monthly_runs(30, "2027-01-15T00:00:00+01:00", "2027-04-01T00:00:00+02:00");
    let expected = [
        "2027-01-30T09:00:00+01:00",
        "2027-02-28T09:00:00+01:00",
        "2027-03-30T09:00:00+02:00",
    ];
    assert_eq!(day30, expected.map(ts));

    let day30 = monthly_runs(30, "2028-02-01T00:00:00+01:00", "2028-03-31T00:00:00+02:00");
    let expected = ["2028-02-29T09:00:00+01:00", "2028-03-30T09:00:00+02:00"];
    assert_eq!(day30, expected.map(ts));

    let day29 = monthly_runs(29, "2027-02-01T00:00:00+01:00", "2027-03-31T00:00:00+02:00");
    let expected = ["2027-02-28T09:00:00+01:00", "2027-03-29T09:00:00+02:00"];
    assert_eq!(day29, expected.map(ts));

    let day29 = monthly_runs(29, "2028-02-01T00:00:00+01:00", "2028-03-31T00:00:00+02:00");
    let expected = ["2028-02-29T09:00:00+01:00", "2028-03-29T09:00:00+02:00"];
    assert_eq!(day29, expected.map(ts));
}

#[test]
fn weekly_runs_on_its_iso_weekday() {
    // Weekday 1 = Monday; starts on Wednesday 2026-11-25.
    let from = ts("2026-11-25T10:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Weekly { weekday: 1 }, 6, 15), from);
    let runs = drive(&mut s, from, ts("2026-12-20T00:00:00+01:00"));
    let expected = [
        "2026-11-30T06:15:00+01:00",
        "2026-12-07T06:15:00+01:00",
        "2026-12-14T06:15:00+01:00",
    ];
    assert_eq!(scheduled_times(&runs), expected.map(ts));
}

#[test]
fn weekly_sunday_0230_across_spring_forward() {
    // Weekday 7 = Sunday; 2026-03-29 is a Sunday without 02:30.
    let from = ts("2026-03-20T00:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Weekly { weekday: 7 }, 2, 30), from);
    let runs = drive(&mut s, from, ts("2026-04-06T00:00:00+02:00"));
    let expected = [
        "2026-03-22T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-04-05T02:30:00+02:00",
    ];
    assert_eq!(scheduled_times(&runs), expected.map(ts));
}

// --- Intervals --------------------------------------------------------------

fn resolve(interval: Interval, now: &str) -> Period {
    interval.resolve(ts(now), &rome()).expect("in range")
}

#[test]
fn previous_week_on_monday_2027_01_04() {
    assert_eq!(
        resolve(Interval::PreviousWeek, "2027-01-04T00:30:00+01:00"),
        period("2026-12-28T00:00:00+01:00", "2027-01-04T00:00:00+01:00")
    );
}

#[test]
fn current_week_starts_on_monday() {
    // Sunday 2027-01-03 belongs to the week of Monday 2026-12-28.
    let week = period("2026-12-28T00:00:00+01:00", "2027-01-04T00:00:00+01:00");
    assert_eq!(
        resolve(Interval::CurrentWeek, "2027-01-03T23:59:00+01:00"),
        week
    );
    assert_eq!(
        resolve(Interval::CurrentWeek, "2026-12-28T00:00:00+01:00"),
        week
    );
}

#[test]
fn previous_week_across_spring_forward_is_167_hours() {
    let week = resolve(Interval::PreviousWeek, "2026-03-30T08:00:00+02:00");
    assert_eq!(
        week,
        period("2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
    );
    assert_eq!(hours(week), 167);
}

#[test]
fn previous_and_current_month() {
    assert_eq!(
        resolve(Interval::PreviousMonth, "2027-01-01T00:00:00+01:00"),
        period("2026-12-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00")
    );
    assert_eq!(
        resolve(Interval::CurrentMonth, "2028-02-15T12:00:00+01:00"),
        period("2028-02-01T00:00:00+01:00", "2028-03-01T00:00:00+01:00")
    );
}

#[test]
fn days_are_23_and_25_hours_on_dst_days() {
    let spring = period("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00");
    assert_eq!(
        resolve(Interval::CurrentDay, "2026-03-29T12:00:00+02:00"),
        spring
    );
    assert_eq!(
        resolve(Interval::PreviousDay, "2026-03-30T00:00:00+02:00"),
        spring
    );
    assert_eq!(hours(spring), 23);

    let autumn = period("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00");
    assert_eq!(
        resolve(Interval::CurrentDay, "2026-10-25T02:30:00+01:00"),
        autumn
    );
    assert_eq!(
        resolve(Interval::PreviousDay, "2026-10-26T23:59:00+01:00"),
        autumn
    );
    assert_eq!(hours(autumn), 25);
}

#[test]
fn start_is_inclusive_end_exclusive() {
    let day = resolve(Interval::CurrentDay, "2026-11-26T00:00:00+01:00");
    assert_eq!(day.start, ts("2026-11-26T00:00:00+01:00"));
    let next = resolve(Interval::CurrentDay, "2026-11-27T00:00:00+01:00");
    assert_eq!(day.end, next.start);
}

// --- Scheduler policies -----------------------------------------------------

#[test]
fn catch_up_after_five_days_down_runs_once() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let last = ts("2026-11-21T02:00:00+01:00");
    let mut s = Scheduler::new(rome());
    s.restore_task(TaskId(1), spec(Cadence::Daily, 2, 0), Some(last), now)
        .expect("valid spec");

    assert_eq!(s.poll_timeout(), Some(ts("2026-11-22T02:00:00+01:00")));
    let starts = s.handle_timeout(now);
    assert_eq!(
        starts,
        [Start {
            task: TaskId(1),
            trigger: Trigger::Scheduled(ts("2026-11-26T02:00:00+01:00")),
            period: period("2026-11-25T00:00:00+01:00", "2026-11-26T00:00:00+01:00"),
        }]
    );
    s.task_finished(TaskId(1));
    assert!(s.handle_timeout(now).is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-27T02:00:00+01:00")));
    assert_eq!(
        s.settled_until(TaskId(1)),
        Some(ts("2026-11-26T02:00:00+01:00"))
    );
}

#[test]
fn restore_without_missed_run_or_history_does_not_run() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let mut s = Scheduler::new(rome());
    let daily = spec(Cadence::Daily, 2, 0);
    let today = ts("2026-11-26T02:00:00+01:00");
    s.restore_task(TaskId(1), daily, Some(today), now)
        .expect("valid");
    s.restore_task(TaskId(2), daily, None, now).expect("valid");
    assert!(s.handle_timeout(now).is_empty());
}

#[test]
fn new_or_changed_task_does_not_run_for_past_times() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), now);
    assert!(s.handle_timeout(now).is_empty());
    // Moved to 09:00, already past today: first run is tomorrow.
    s.set_task(TaskId(1), spec(Cadence::Daily, 9, 0), now)
        .expect("valid");
    assert!(s.handle_timeout(now).is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-27T09:00:00+01:00")));
}

#[test]
fn invalid_spec_is_rejected_by_set_task() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let mut s = Scheduler::new(rome());
    let err = s
        .set_task(TaskId(1), spec(Cadence::Monthly { day: 32 }, 9, 0), now)
        .map_err(|e| e.field);
    assert_eq!(err, Err("day_of_month"));
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.run_now(TaskId(1), now), Err(RunNowError::UnknownTask));
}

#[test]
fn tick_while_running_is_deferred_and_collapsed() {
    let start = ts("2026-11-26T01:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), start);
    let first = s.handle_timeout(ts("2026-11-26T02:00:00+01:00"));
    assert_eq!(first.len(), 1);

    // Still running through two more scheduled times: nothing starts and
    // there is nothing to wake up for.
    assert_eq!(s.poll_timeout(), None);
    assert!(s.handle_timeout(ts("2026-11-27T02:00:00+01:00")).is_empty());
    assert!(s.handle_timeout(ts("2026-11-28T02:00:00+01:00")).is_empty());
    assert!(s.is_running(TaskId(1)));

    // Finished: one deferred run, for the latest missed time, right away.
    let done = ts("2026-11-28T03:00:00+01:00");
    s.task_finished(TaskId(1));
    assert!(s.poll_timeout().is_some_and(|t| t <= done));
    let deferred = s.handle_timeout(done);
    assert_eq!(
        scheduled_times(&deferred),
        [ts("2026-11-28T02:00:00+01:00")]
    );
    s.task_finished(TaskId(1));
    assert!(s.handle_timeout(done).is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-29T02:00:00+01:00")));
}

#[test]
fn run_now_is_refused_while_running() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), now);
    assert!(s.run_now(TaskId(1), now).is_ok());
    assert_eq!(s.run_now(TaskId(1), now), Err(RunNowError::AlreadyRunning));
    s.task_finished(TaskId(1));
    assert!(s.run_now(TaskId(1), now).is_ok());
}

#[test]
fn manual_run_does_not_move_next_scheduled_run() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), now);
    let next = s.poll_timeout();
    assert_eq!(next, Some(ts("2026-11-27T02:00:00+01:00")));

    let manual = s.run_now(TaskId(1), now).expect("idle task");
    assert_eq!(manual.trigger, Trigger::Manual);
    assert_eq!(
        manual.period,
        period("2026-11-25T00:00:00+01:00", "2026-11-26T00:00:00+01:00")
    );
    s.task_finished(TaskId(1));
    assert_eq!(s.poll_timeout(), next);
    let runs = drive(&mut s, now, ts("2026-11-27T12:00:00+01:00"));
    assert_eq!(scheduled_times(&runs), [ts("2026-11-27T02:00:00+01:00")]);
}

#[test]
fn scheduled_time_during_manual_run_waits_for_it() {
    let now = ts("2026-11-27T01:50:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), now);
    s.run_now(TaskId(1), now).expect("idle task");
    assert!(s.handle_timeout(ts("2026-11-27T02:00:00+01:00")).is_empty());
    s.task_finished(TaskId(1));
    let runs = s.handle_timeout(ts("2026-11-27T02:10:00+01:00"));
    assert_eq!(scheduled_times(&runs), [ts("2026-11-27T02:00:00+01:00")]);
}

#[test]
fn disabled_task_never_fires_by_schedule_but_runs_by_hand() {
    let now = ts("2026-11-26T10:00:00+01:00");
    let disabled = TaskSpec {
        enabled: false,
        ..spec(Cadence::Daily, 2, 0)
    };
    let mut s = scheduler_with(disabled, now);
    assert_eq!(s.poll_timeout(), None);
    for day in 0..60 {
        let t = now.checked_add(jiff::SignedDuration::from_hours(24 * day));
        assert!(s.handle_timeout(t.expect("in range")).is_empty());
    }
    assert!(s.run_now(TaskId(1), now).is_ok());
}

#[test]
fn clock_stepping_back_an_hour_does_not_run_twice() {
    let from = ts("2026-11-26T01:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), from);
    let runs = drive(&mut s, from, ts("2026-11-26T02:30:00+01:00"));
    assert_eq!(scheduled_times(&runs), [ts("2026-11-26T02:00:00+01:00")]);

    // Wall clock steps back from 02:30 to 01:30 and runs forward again.
    let runs = drive(
        &mut s,
        ts("2026-11-26T01:30:00+01:00"),
        ts("2026-11-26T23:00:00+01:00"),
    );
    assert!(runs.is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-27T02:00:00+01:00")));
}

#[test]
fn both_tasks_run_independently() {
    let from = ts("2026-11-26T10:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), from);
    let weekly = TaskSpec {
        interval: Interval::PreviousWeek,
        ..spec(Cadence::Weekly { weekday: 1 }, 2, 0)
    };
    s.set_task(TaskId(2), weekly, from).expect("valid");
    let runs = drive(&mut s, from, ts("2026-12-01T00:00:00+01:00"));
    let cc: Vec<_> = runs.iter().filter(|r| r.task == TaskId(2)).collect();
    assert_eq!(runs.len(), 5); // 4 daily (27..30) + 1 weekly (Mon 30)
    assert_eq!(cc.len(), 1);
    assert_eq!(
        cc[0].period,
        period("2026-11-23T00:00:00+01:00", "2026-11-30T00:00:00+01:00")
    );

    s.remove_task(TaskId(1));
    s.task_finished(TaskId(1)); // ignored
    assert_eq!(s.poll_timeout(), Some(ts("2026-12-07T02:00:00+01:00")));
}

#[test]
fn removing_and_re_adding_a_running_task_does_not_start_it_twice() {
    let now = ts("2026-11-26T01:00:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 2, 0), now);
    s.run_now(TaskId(1), now).expect("idle task");
    s.remove_task(TaskId(1));
    s.set_task(TaskId(1), spec(Cadence::Daily, 2, 0), now)
        .expect("valid");
    assert!(s.is_running(TaskId(1)));
    assert!(s.handle_timeout(ts("2026-11-26T02:00:00+01:00")).is_empty());
    assert_eq!(s.run_now(TaskId(1), now), Err(RunNowError::AlreadyRunning));
    s.task_finished(TaskId(1));
    let runs = s.handle_timeout(ts("2026-11-26T02:05:00+01:00"));
    assert_eq!(scheduled_times(&runs), [ts("2026-11-26T02:00:00+01:00")]);
}

#[test]
fn restore_with_clock_behind_the_persisted_time_waits() {
    // Persisted after today's 02:00 run; the box restarts with its clock an
    // hour behind.
    let settled = ts("2026-11-26T02:00:00+01:00");
    let now = ts("2026-11-26T01:30:00+01:00");
    let mut s = Scheduler::new(rome());
    s.restore_task(TaskId(1), spec(Cadence::Daily, 2, 0), Some(settled), now)
        .expect("valid");
    let runs = drive(&mut s, now, ts("2026-11-26T23:00:00+01:00"));
    assert!(runs.is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-27T02:00:00+01:00")));
}

#[test]
fn changing_time_zone_does_not_run_for_past_times() {
    // Ran at 09:00 Rome (08:00Z); at 10:00 Rome the box switches to UTC,
    // where 09:00 has just passed.
    let from = ts("2026-11-26T08:30:00+01:00");
    let mut s = scheduler_with(spec(Cadence::Daily, 9, 0), from);
    let runs = drive(&mut s, from, ts("2026-11-26T10:00:00+01:00"));
    assert_eq!(scheduled_times(&runs), [ts("2026-11-26T09:00:00+01:00")]);

    let now = ts("2026-11-26T10:00:00+01:00");
    s.set_time_zone(TimeZone::UTC, now);
    assert!(s.handle_timeout(now).is_empty());
    assert_eq!(s.poll_timeout(), Some(ts("2026-11-27T09:00:00Z")));
}

#[test]
fn schedule_module_reads_no_clock_and_does_no_io() {
    let sources = [
        include_str!("../src/schedule/mod.rs"),
        include_str!("../src/schedule/spec.rs"),
        include_str!("../src/schedule/interval.rs"),
        include_str!("../src/schedule/scheduler.rs"),
    ];
    let forbidden = [
        "::now(",
        "std::fs",
        "std::net",
        "std::thread",
        "std::io",
        "std::env",
    ];
    for source in sources {
        for word in forbidden {
            assert!(!source.contains(word), "schedule uses {word}");
        }
    }
}
