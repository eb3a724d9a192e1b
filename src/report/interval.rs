//! Named report intervals, in the box's local time zone: start inclusive,
//! end exclusive. Days are calendar days (23 or 25 hours across DST), weeks
//! are ISO weeks (Monday first), months are calendar months. Pure.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedInterval {
    CurrentDay,
    PreviousDay,
    CurrentWeek,
    PreviousWeek,
    CurrentMonth,
    PreviousMonth,
}

impl NamedInterval {
    pub const ALL: [NamedInterval; 6] = [
        NamedInterval::CurrentDay,
        NamedInterval::PreviousDay,
        NamedInterval::CurrentWeek,
        NamedInterval::PreviousWeek,
        NamedInterval::CurrentMonth,
        NamedInterval::PreviousMonth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NamedInterval::CurrentDay => "current-day",
            NamedInterval::PreviousDay => "previous-day",
            NamedInterval::CurrentWeek => "current-week",
            NamedInterval::PreviousWeek => "previous-week",
            NamedInterval::CurrentMonth => "current-month",
            NamedInterval::PreviousMonth => "previous-month",
        }
    }

    pub fn from_name(s: &str) -> Option<NamedInterval> {
        NamedInterval::ALL.into_iter().find(|i| i.name() == s)
    }

    /// `[start, end)` of the interval containing (or before) `now`, in `tz`.
    pub fn bounds(self, now: Timestamp, tz: &TimeZone) -> Result<(Timestamp, Timestamp), String> {
        let err = |e: jiff::Error| format!("interval {}: {e}", self.name());
        let local = now.to_zoned(tz.clone());
        let day = local.start_of_day().map_err(err)?;
        let (start, step): (Zoned, jiff::Span) = match self {
            NamedInterval::CurrentDay => (day, 1.day()),
            NamedInterval::PreviousDay => (back(&day, 1.day()).map_err(err)?, 1.day()),
            NamedInterval::CurrentWeek | NamedInterval::PreviousWeek => {
                let monday_offset = i64::from(local.weekday().to_monday_zero_offset());
                let monday = back(&day, monday_offset.days()).map_err(err)?;
                if self == NamedInterval::CurrentWeek {
                    (monday, 1.week())
                } else {
                    (back(&monday, 1.week()).map_err(err)?, 1.week())
                }
            }
            NamedInterval::CurrentMonth | NamedInterval::PreviousMonth => {
                let first = local
                    .first_of_month()
                    .map_err(err)?
                    .start_of_day()
                    .map_err(err)?;
                if self == NamedInterval::CurrentMonth {
                    (first, 1.month())
                } else {
                    (back(&first, 1.month()).map_err(err)?, 1.month())
                }
            }
        };
        let end = start
            .checked_add(step)
            .map_err(err)?
            .start_of_day()
            .map_err(err)?;
        Ok((start.timestamp(), end.timestamp()))
    }
}

/// `z - span`, snapped to the start of that day.
fn back(z: &Zoned, span: jiff::Span) -> Result<Zoned, jiff::Error> {
    z.checked_sub(span)?.start_of_day()
}

/// A local `YYYY-MM-DD[ HH:MM[:SS]]` (or `T` separated) in `tz` → instant.
/// An ambiguous time (DST fall-back) takes the earlier instant; a time in
/// the spring-forward gap moves forward.
pub fn parse_local(text: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let t = text.trim();
    let dt: jiff::civil::DateTime = if t.len() == 10 {
        t.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| format!("{t:?}: {e}"))?
    } else {
        t.replacen(' ', "T", 1)
            .parse()
            .map_err(|e| format!("{t:?}: {e}"))?
    };
    tz.to_ambiguous_zoned(dt)
        .compatible()
        .map(|z| z.timestamp())
        .map_err(|e| format!("{t:?}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rome() -> TimeZone {
        TimeZone::get("Europe/Rome").unwrap()
    }

    fn b(i: NamedInterval, now: &str) -> (String, String) {
        let (s, e) = i.bounds(now.parse().unwrap(), &rome()).unwrap();
        (s.to_string(), e.to_string())
    }

    #[test]
    fn days_across_dst() {
        // 2026-03-29: spring forward in Rome, a 23-hour day.
        assert_eq!(
            b(NamedInterval::CurrentDay, "2026-03-29T12:00:00Z"),
            ("2026-03-28T23:00:00Z".into(), "2026-03-29T22:00:00Z".into())
        );
        // 2026-10-25: fall back, a 25-hour day; the day after starts at 23:00Z.
        assert_eq!(
            b(NamedInterval::PreviousDay, "2026-10-26T08:00:00Z"),
            ("2026-10-24T22:00:00Z".into(), "2026-10-25T23:00:00Z".into())
        );
        // Just after local midnight but before UTC midnight.
        assert_eq!(
            b(NamedInterval::CurrentDay, "2026-07-01T22:30:00Z"),
            ("2026-07-01T22:00:00Z".into(), "2026-07-02T22:00:00Z".into())
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // Sunday 2026-03-29 (DST day): the ISO week began Monday 23 March.
        assert_eq!(
            b(NamedInterval::CurrentWeek, "2026-03-29T20:00:00Z"),
            ("2026-03-22T23:00:00Z".into(), "2026-03-29T22:00:00Z".into())
        );
        assert_eq!(
            b(NamedInterval::PreviousWeek, "2026-03-30T06:00:00Z"),
            ("2026-03-22T23:00:00Z".into(), "2026-03-29T22:00:00Z".into())
        );
        // A Monday is the first day of its own week.
        assert_eq!(
            b(NamedInterval::CurrentWeek, "2026-10-26T10:00:00Z"),
            ("2026-10-25T23:00:00Z".into(), "2026-11-01T23:00:00Z".into())
        );
    }

    #[test]
    fn months_are_calendar_months() {
        assert_eq!(
            b(NamedInterval::CurrentMonth, "2026-10-31T23:30:00Z"),
            ("2026-10-31T23:00:00Z".into(), "2026-11-30T23:00:00Z".into())
        );
        assert_eq!(
            b(NamedInterval::PreviousMonth, "2026-11-02T00:00:00Z"),
            ("2026-09-30T22:00:00Z".into(), "2026-10-31T23:00:00Z".into())
        );
        assert_eq!(
            b(NamedInterval::PreviousMonth, "2026-03-10T00:00:00Z"),
            ("2026-01-31T23:00:00Z".into(), "2026-02-28T23:00:00Z".into())
        );
        for i in NamedInterval::ALL {
            assert_eq!(NamedInterval::from_name(i.name()), Some(i));
        }
    }

    #[test]
    fn local_times_parse() {
        let t = parse_local("2026-03-20 10:00:00", &rome()).unwrap();
        assert_eq!(t.to_string(), "2026-03-20T09:00:00Z");
        let t = parse_local("2026-03-20", &rome()).unwrap();
        assert_eq!(t.to_string(), "2026-03-19T23:00:00Z");
        let t = parse_local("2026-10-25T02:30", &rome()).unwrap();
        assert_eq!(t.to_string(), "2026-10-25T00:30:00Z");
        assert!(parse_local("yesterday", &rome()).is_err());
    }
}
