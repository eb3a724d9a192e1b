//! Time as data.
//!
//! Pure cores never read a clock: they take an [`Instant`] (monotonic) or a
//! [`WallTime`] (UTC) as an argument. Only [`SystemClock`] reads the OS clocks,
//! and only adapters and the daemon loop hold a [`Clock`].

use std::time::Duration;

/// A point on a monotonic time line, in microseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub const fn from_micros(us: u64) -> Instant {
        Instant(us)
    }

    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        let us = u64::try_from(d.as_micros()).ok()?;
        self.0.checked_sub(us).map(Instant)
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(us))
    }
}

/// UTC wall-clock time in microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(i64);

impl WallTime {
    pub const fn from_unix_micros(us: i64) -> WallTime {
        WallTime(us)
    }

    pub const fn as_unix_micros(self) -> i64 {
        self.0
    }

    pub fn to_timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_microsecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

/// The only way the program reads time.
pub trait Clock {
    fn now(&self) -> Instant;
    fn wall(&self) -> WallTime;
}

/// The operating system's clocks (CLOCK_MONOTONIC and CLOCK_REALTIME).
#[derive(Clone, Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
    /// Added to the wall clock (test-only `clock_offset`).
    offset_us: i64,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
            offset_us: 0,
        }
    }
}

impl SystemClock {
    /// A system clock whose wall time runs `seconds` ahead (or behind).
    pub fn with_offset(seconds: i64) -> SystemClock {
        SystemClock {
            offset_us: seconds.saturating_mul(1_000_000),
            ..SystemClock::default()
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let us = self.origin.elapsed().as_micros();
        Instant(u64::try_from(us).unwrap_or(u64::MAX))
    }

    fn wall(&self) -> WallTime {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        WallTime(
            i64::try_from(since.as_micros())
                .unwrap_or(i64::MAX)
                .saturating_add(self.offset_us),
        )
    }
}

/// A clock that moves only when told to; for tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: std::cell::Cell<Instant>,
    wall: std::cell::Cell<WallTime>,
}

impl ManualClock {
    pub fn new(now: Instant, wall: WallTime) -> ManualClock {
        ManualClock {
            now: std::cell::Cell::new(now),
            wall: std::cell::Cell::new(wall),
        }
    }

    pub fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.wall
            .set(WallTime(self.wall.get().0.saturating_add(us)));
    }

    pub fn set_wall(&self, wall: WallTime) {
        self.wall.set(wall);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    fn wall(&self) -> WallTime {
        self.wall.get()
    }
}
