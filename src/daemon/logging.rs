//! Adapter: where the daemon's log lines go.
//!
//! `simple-logging` stays the front end (the `log` macros, the level
//! filter), but its line format is fixed: it starts each line with the time
//! since the process started (`[00:01:02.154]`), which an operator cannot
//! match with audit entries or phone logs. Its sink is ours ([`Sink`]):
//!
//! - each line's uptime stamp is replaced by the wall-clock time in the
//!   box's zone with its UTC offset (`2026-12-01 00:30:00.154 +01:00`);
//! - a file is opened for appending, so the lines that explain a crash are
//!   still there when init respawns the daemon, and each line is written
//!   with one `write`, so a `kill -9` loses none that were logged;
//! - a file is rotated at `log_max_kb` (to `.1`, `.2`, `.3`; the oldest is
//!   dropped), so the log never takes more than four times that on flash;
//! - lines beyond [`Budget`] (a burst, then a steady rate) are dropped and
//!   counted, and one line says how many: no client can make the daemon
//!   write faster than that, whatever it sends.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Older files kept beside the log file (`kpbxd.log.1` … `.3`).
pub const KEEP: u32 = 3;

/// The box's zone, for the stamps; UTC until the daemon has read its
/// `timezone` setting.
static ZONE: Mutex<Option<jiff::tz::TimeZone>> = Mutex::new(None);

/// Stamps from now on are in `tz` (called at start and when the `timezone`
/// setting may have changed).
pub fn set_zone(tz: jiff::tz::TimeZone) {
    if let Ok(mut zone) = ZONE.lock() {
        *zone = Some(tz);
    }
}

fn stamp() -> String {
    let tz = ZONE
        .lock()
        .ok()
        .and_then(|z| z.clone())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now()
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S%.3f %:z")
        .to_string()
}

/// How many lines may be written: a burst, refilled at a steady rate
/// (a token bucket; pure: the caller passes the time).
#[derive(Debug)]
pub struct Budget {
    tokens: f64,
    last: Instant,
    dropped: u64,
}

impl Budget {
    /// Lines that may be written at once after a quiet spell.
    pub const BURST: f64 = 10_000.0;
    /// Lines per second written under a flood; with rotation the disk stays
    /// bounded anyway: this bounds the writing (flash wear, CPU).
    pub const RATE: f64 = 500.0;

    pub fn new(now: Instant) -> Budget {
        Budget {
            tokens: Self::BURST,
            last: now,
            dropped: 0,
        }
    }

    /// Whether a line may be written now. When lines were dropped and the
    /// budget allows again, returns how many first (to be said once).
    pub fn admit(&mut self, now: Instant) -> (bool, u64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * Self::RATE).min(Self::BURST);
        if self.tokens < 1.0 {
            self.dropped += 1;
            return (false, 0);
        }
        self.tokens -= 1.0;
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            // The summary line costs one more.
            self.tokens = (self.tokens - 1.0).max(0.0);
        }
        (true, dropped)
    }
}

enum Out {
    Stderr,
    File {
        path: PathBuf,
        file: File,
        size: u64,
        max: u64,
    },
}

/// The sink `simple-logging` writes to: collects one line, restamps it and
/// writes it whole.
pub struct Sink {
    out: Out,
    line: Vec<u8>,
    budget: Budget,
}

impl Sink {
    pub fn stderr() -> Sink {
        Sink {
            out: Out::Stderr,
            line: Vec::new(),
            budget: Budget::new(Instant::now()),
        }
    }

    /// Opens `path` for appending; rotates at `max_kb` KiB.
    pub fn file(path: &Path, max_kb: u32) -> io::Result<Sink> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(Sink {
            out: Out::File {
                path: path.to_path_buf(),
                file,
                size,
                max: u64::from(max_kb) * 1024,
            },
            line: Vec::new(),
            budget: Budget::new(Instant::now()),
        })
    }

    fn emit(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let (admit, dropped) = self.budget.admit(Instant::now());
        if !admit {
            self.line = reuse(line);
            return;
        }
        let mut text = Vec::with_capacity(line.len() + 64);
        if dropped > 0 {
            text.extend_from_slice(
                format!(
                    "{} WARN   log: {dropped} lines dropped (more than {} a second)\n",
                    stamp(),
                    Budget::RATE
                )
                .as_bytes(),
            );
        }
        text.extend_from_slice(&restamp(&line));
        self.write(&text);
        self.line = reuse(line);
    }

    fn write(&mut self, text: &[u8]) {
        match &mut self.out {
            Out::Stderr => {
                let _ = io::stderr().lock().write_all(text);
            }
            Out::File {
                path,
                file,
                size,
                max,
            } => {
                if *size > 0 && *size + text.len() as u64 > *max {
                    match rotate(path) {
                        Ok(f) => {
                            *file = f;
                            *size = 0;
                        }
                        // Keep writing where we are; say why once per try.
                        Err(e) => {
                            let _ = file.write_all(
                                format!("{} ERROR  log: cannot rotate: {e}\n", stamp()).as_bytes(),
                            );
                        }
                    }
                }
                if file.write_all(text).is_ok() {
                    *size += text.len() as u64;
                }
            }
        }
    }
}

fn reuse(mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    if buf.capacity() > 64 * 1024 {
        buf.shrink_to(4096);
    }
    buf
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `kpbxd.log` → `.1` → `.2` → `.3` (dropped), then a new `kpbxd.log`.
fn rotate(path: &Path) -> io::Result<File> {
    let numbered = |n: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    for n in (1..KEEP).rev() {
        match std::fs::rename(numbered(n), numbered(n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(1))?;
    open(path)
}

/// Replaces simple-logging's `[hh:mm:ss.mmm]` uptime prefix with the wall
/// clock; a line without it is stamped in front.
fn restamp(line: &[u8]) -> Vec<u8> {
    let rest = match line {
        [b'[', ..] => match line.iter().position(|&b| b == b']') {
            Some(end) if end <= 20 => line[end + 1..].trim_ascii_start(),
            _ => line,
        },
        _ => line,
    };
    // Drop simple-logging's thread id "(1a2b) ": the line names its area.
    let rest = match rest {
        [b'(', ..] => match rest.iter().position(|&b| b == b')') {
            Some(end) if end <= 20 => rest[end + 1..].trim_ascii_start(),
            _ => rest,
        },
        _ => rest,
    };
    let mut out = stamp().into_bytes();
    out.push(b' ');
    out.extend_from_slice(rest);
    out
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A record is one `write!` of several pieces ending in '\n'; a
        // message with its own newlines stays one record until the last.
        self.line.extend_from_slice(buf);
        if buf.ends_with(b"\n") {
            self.emit();
        } else if self.line.len() > 64 * 1024 {
            // A runaway message: cut it here.
            self.line.truncate(64 * 1024);
            self.emit();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Per-request lines (one per HTTP or TFTP fetch) are summarised: at most
/// [`RequestLines::PER_WINDOW`] one by one in each window, then one line
/// with the count of the rest. The per-device fetch log keeps every fetch.
#[derive(Debug)]
pub struct RequestLines {
    window_start: Option<Instant>,
    shown: u32,
    hidden: u64,
}

impl RequestLines {
    pub const WINDOW: Duration = Duration::from_secs(10);
    pub const PER_WINDOW: u32 = 20;

    pub const fn new() -> RequestLines {
        RequestLines {
            window_start: None,
            shown: 0,
            hidden: 0,
        }
    }

    /// Whether this request gets its own line; when a window closes with
    /// requests not shown, their count (to be logged once).
    pub fn admit(&mut self, now: Instant) -> (bool, Option<u64>) {
        let mut summary = None;
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < Self::WINDOW => {}
            _ => {
                if self.hidden > 0 {
                    summary = Some(self.hidden);
                }
                self.window_start = Some(now);
                self.shown = 0;
                self.hidden = 0;
            }
        }
        if self.shown < Self::PER_WINDOW {
            self.shown += 1;
            (true, summary)
        } else {
            self.hidden += 1;
            (false, summary)
        }
    }
}

impl Default for RequestLines {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_lets_a_burst_through_then_a_steady_rate_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        let tries = 2 * Budget::BURST as u64;
        let burst = (0..tries).filter(|_| b.admit(t0).0).count();
        assert_eq!(burst, Budget::BURST as usize);
        // One second later: RATE more, and the first says what was dropped.
        let t1 = t0 + Duration::from_secs(1);
        let (ok, dropped) = b.admit(t1);
        assert!(ok);
        assert_eq!(dropped, tries - Budget::BURST as u64);
        let more = (0..1000).filter(|_| b.admit(t1).0).count();
        assert!(more < Budget::RATE as usize, "{more}");
    }

    #[test]
    fn request_lines_are_summarised_per_window() {
        let t0 = Instant::now();
        let mut r = RequestLines::new();
        let shown = (0..1000).filter(|_| r.admit(t0).0).count();
        assert_eq!(shown, RequestLines::PER_WINDOW as usize);
        let (ok, summary) = r.admit(t0 + RequestLines::WINDOW);
        assert!(ok);
        assert_eq!(summary, Some(1000 - u64::from(RequestLines::PER_WINDOW)));
    }

    #[test]
    fn a_simple_logging_line_gets_the_wall_clock() {
        let out = restamp(b"[00:01:02.154] (7f3a) INFO   ha: active\n");
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with(" INFO   ha: active\n"), "{text}");
        assert!(!text.contains("00:01:02.154"), "{text}");
        // 2026-12-05 14:30:01.123 +00:00
        let (date, _) = text.split_at(10);
        assert!(
            jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok(),
            "{text}"
        );
        assert!(text[23..30].starts_with(" +") || text[23..30].starts_with(" -"));
    }

    #[test]
    fn rotation_keeps_three_older_files_and_bounds_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kpbxd.log");
        let mut sink = Sink::file(&path, 16).unwrap();
        sink.budget = Budget {
            tokens: 1e9,
            ..Budget::new(Instant::now())
        };
        let line = format!("[00:00:00.000] (1) INFO   {}\n", "x".repeat(200));
        for _ in 0..2000 {
            sink.write_all(line.as_bytes()).unwrap();
        }
        let mut total = 0;
        for name in ["kpbxd.log", "kpbxd.log.1", "kpbxd.log.2", "kpbxd.log.3"] {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 16 * 1024, "{name}: {len}");
            total += len;
        }
        assert!(!dir.path().join("kpbxd.log.4").exists());
        assert!(total <= 4 * 16 * 1024);
    }
}
