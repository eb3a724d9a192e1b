//! Task specs, their validation, and the pure next-run computation.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::{Interval, wall_clock_instant};

/// Days scanned to find a run: enough for any cadence (a monthly task runs
/// at least once in any 33 consecutive days).
const SCAN_DAYS: usize = 64;

/// How often a task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cadence {
    /// Every day.
    Daily,
    /// Once a week.
    Weekly {
        /// ISO numbered: 1 = Monday ... 7 = Sunday.
        weekday: u8,
    },
    /// Once a month; on the last day of months shorter than `day`.
    Monthly {
        /// Day of the month, 1-31.
        day: u8,
    },
}

/// The settings of one scheduled task, as the configuration stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    /// Disabled tasks run only by hand ([`super::Scheduler::run_now`]).
    pub enabled: bool,
    /// Which days the task runs.
    pub cadence: Cadence,
    /// Local hour of the run, 0-23.
    pub hour: u8,
    /// Local minute of the run, 0-59.
    pub minute: u8,
    /// Which period the export covers, resolved at the scheduled time.
    pub interval: Interval,
}

/// A spec field out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// `"hour"`, `"minute"`, `"weekday"` or `"day_of_month"`.
    pub field: &'static str,
    /// The rejected value.
    pub value: u8,
    /// Smallest valid value.
    pub min: u8,
    /// Largest valid value.
    pub max: u8,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SpecError {
            field,
            value,
            min,
            max,
        } = self;
        write!(f, "{field} must be between {min} and {max}, got {value}")
    }
}

impl std::error::Error for SpecError {}

impl TaskSpec {
    /// Checks every field the cadence uses; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SpecError> {
        check("hour", self.hour, 0, 23)?;
        check("minute", self.minute, 0, 59)?;
        match self.cadence {
            Cadence::Daily => Ok(()),
            Cadence::Weekly { weekday } => check("weekday", weekday, 1, 7),
            Cadence::Monthly { day } => check("day_of_month", day, 1, 31),
        }
    }

    /// The scheduled instant on local `date`, if the task runs that day.
    /// Assumes a valid spec.
    fn run_on(&self, date: Date, tz: &TimeZone) -> Option<Timestamp> {
        let runs = match self.cadence {
            Cadence::Daily => true,
            Cadence::Weekly { weekday } => {
                i8::try_from(weekday).ok() == Some(date.weekday().to_monday_one_offset())
            }
            Cadence::Monthly { day } => {
                let day = i8::try_from(day).ok()?.min(date.days_in_month());
                date.day() == day
            }
        };
        if !runs {
            return None;
        }
        let hour = i8::try_from(self.hour).ok()?;
        let minute = i8::try_from(self.minute).ok()?;
        let time = Time::new(hour, minute, 0, 0).ok()?;
        wall_clock_instant(date.to_datetime(time), tz)
    }

    fn is_schedulable(&self) -> bool {
        self.enabled && self.validate().is_ok()
    }
}

fn check(field: &'static str, value: u8, min: u8, max: u8) -> Result<(), SpecError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(SpecError {
            field,
            value,
            min,
            max,
        })
    }
}

/// The first scheduled run strictly after `after`, in local time zone `tz`.
///
/// `None` if the task is disabled or the spec is invalid.
pub fn next_run(spec: &TaskSpec, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    if !spec.is_schedulable() {
        return None;
    }
    // Start a day early: near a transition the run for a local date can fall
    // on either side of `after`'s local date.
    let mut date = tz.to_datetime(after).date().yesterday().ok()?;
    for _ in 0..SCAN_DAYS {
        if let Some(at) = spec.run_on(date, tz)
            && at > after
        {
            return Some(at);
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// The latest scheduled run at or before `at`; `None` as for [`next_run`].
pub(super) fn last_run_until(spec: &TaskSpec, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    if !spec.is_schedulable() {
        return None;
    }
    let mut date = tz.to_datetime(at).date().tomorrow().ok()?;
    for _ in 0..SCAN_DAYS {
        if let Some(run) = spec.run_on(date, tz)
            && run <= at
        {
            return Some(run);
        }
        date = date.yesterday().ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cadence: Cadence, hour: u8, minute: u8) -> TaskSpec {
        TaskSpec {
            enabled: true,
            cadence,
            hour,
            minute,
            interval: Interval::PreviousDay,
        }
    }

    fn field_of(spec: TaskSpec) -> Option<&'static str> {
        spec.validate().err().map(|e| e.field)
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert_eq!(field_of(spec(Cadence::Daily, 23, 59)), None);
        assert_eq!(field_of(spec(Cadence::Daily, 24, 0)), Some("hour"));
        assert_eq!(field_of(spec(Cadence::Daily, 0, 60)), Some("minute"));
        let weekly = |weekday| spec(Cadence::Weekly { weekday }, 0, 0);
        assert_eq!(field_of(weekly(0)), Some("weekday"));
        assert_eq!(field_of(weekly(8)), Some("weekday"));
        assert_eq!(field_of(weekly(7)), None);
        let monthly = |day| spec(Cadence::Monthly { day }, 0, 0);
        assert_eq!(field_of(monthly(0)), Some("day_of_month"));
        assert_eq!(field_of(monthly(32)), Some("day_of_month"));
        assert_eq!(field_of(monthly(31)), None);
    }

    #[test]
    fn validation_message_names_field_and_range() {
        let err = spec(Cadence::Daily, 24, 0)
            .validate()
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("hour must be between 0 and 23, got 24".to_string())
        );
    }

    #[test]
    fn invalid_or_disabled_spec_has_no_next_run() {
        let now = Timestamp::UNIX_EPOCH;
        let tz = TimeZone::UTC;
        assert_eq!(next_run(&spec(Cadence::Daily, 24, 0), now, &tz), None);
        let disabled = TaskSpec {
            enabled: false,
            ..spec(Cadence::Daily, 1, 0)
        };
        assert_eq!(next_run(&disabled, now, &tz), None);
        assert_eq!(last_run_until(&disabled, now, &tz), None);
    }

    #[test]
    fn next_run_is_strictly_after() {
        let tz = TimeZone::UTC;
        let at: Timestamp = "2026-11-26T02:00:00Z".parse().expect("timestamp");
        let daily = spec(Cadence::Daily, 2, 0);
        let next = "2026-11-27T02:00:00Z".parse().ok();
        assert_eq!(next_run(&daily, at, &tz), next);
        assert_eq!(last_run_until(&daily, at, &tz), Some(at));
    }
}
