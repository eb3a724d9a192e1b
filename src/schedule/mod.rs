//! Scheduled report tasks ("Send CDR", "Send Call Center CDR").
//!
//! Invariant: this module does no I/O and reads no clock. Every function
//! takes the current time as a [`jiff::Timestamp`] and the box's local time
//! zone as a [`jiff::tz::TimeZone`]; the daemon loop owns the clock and the
//! timer, and turns [`Start`] actions into running exports.
//!
//! Wall-clock rule used everywhere: a local date and time of day maps to the
//! *first instant at which the local clock reads that time or later*. So a
//! time skipped when clocks go forward maps to the instant of the change
//! (02:30 on 2026-03-29 in Europe/Rome is 03:00 CEST), and a time that occurs
//! twice maps to its first occurrence.

#![warn(missing_docs)]

mod interval;
pub mod record;
mod scheduler;
mod spec;

pub use interval::{Interval, Period};
pub use scheduler::{RunNowError, Scheduler, Start, TaskId, Trigger};
pub use spec::{Cadence, SpecError, TaskSpec, next_run};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// The first instant at which the local clock in `tz` reads `dt` or later.
///
/// `None` only at the edges of jiff's supported time range.
fn wall_clock_instant(dt: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the later offset, `dt` lands inside the gap's span of
            // instants, just before the transition we are looking for.
            let inside = after.to_timestamp(dt).ok()?;
            tz.following(inside).next().map(|t| t.timestamp())
        }
    }
}
