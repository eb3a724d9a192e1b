//! Named export intervals, resolved against a given instant and time zone.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::wall_clock_instant;

/// The period a report covers, named relative to the run time.
///
/// Days, ISO weeks (Monday first) and months are local to the time zone
/// passed to [`Interval::resolve`], so a day may last 23 or 25 hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interval {
    /// Today, from midnight to the next midnight.
    CurrentDay,
    /// Yesterday.
    PreviousDay,
    /// This ISO week, Monday to the next Monday.
    CurrentWeek,
    /// Last ISO week.
    PreviousWeek,
    /// This calendar month.
    CurrentMonth,
    /// Last calendar month.
    PreviousMonth,
}

/// A half-open span of time: `start` inclusive, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Period {
    /// First instant in the period.
    pub start: Timestamp,
    /// First instant after the period.
    pub end: Timestamp,
}

impl Interval {
    /// The period this interval names at instant `now` in time zone `tz`.
    ///
    /// `None` only at the edges of jiff's supported range (years -9999 and
    /// 9999).
    pub fn resolve(self, now: Timestamp, tz: &TimeZone) -> Option<Period> {
        let today = tz.to_datetime(now).date();
        let (first, next) = match self {
            Interval::CurrentDay => (today, today.tomorrow().ok()?),
            Interval::PreviousDay => (today.yesterday().ok()?, today),
            Interval::CurrentWeek => {
                let monday = monday_of(today)?;
                (monday, monday.checked_add(1.week()).ok()?)
            }
            Interval::PreviousWeek => {
                let monday = monday_of(today)?;
                (monday.checked_sub(1.week()).ok()?, monday)
            }
            Interval::CurrentMonth => {
                let first = today.first_of_month();
                (first, first.checked_add(1.month()).ok()?)
            }
            Interval::PreviousMonth => {
                let first = today.first_of_month();
                (first.checked_sub(1.month()).ok()?, first)
            }
        };
        Some(Period {
            start: start_of_day(first, tz)?,
            end: start_of_day(next, tz)?,
        })
    }
}

fn monday_of(date: Date) -> Option<Date> {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(back.days()).ok()
}

fn start_of_day(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    wall_clock_instant(date.to_datetime(Time::midnight()), tz)
}
