//! `Action::RunHook { hook, reason }`: runs every executable in the hook's
//! directory (e.g. `/etc/kpbx/ha/acquire.d`) in lexical (byte) order of
//! file name, one after the other, with the reason as the only argument.
//!
//! Each hook gets its own process group and a time limit; on timeout the
//! whole group is killed with `SIGKILL`, so a hook's own children cannot
//! outlive it. Waiting uses `smol::process` (no blocking of the event
//! loop). Outcomes are returned for logging and the status view; a failing
//! hook never stops the next one.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use smol::Timer;

/// How one hook ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// Exited with this code (0 = success).
    Exited(i32),
    /// Killed by a signal it did not get from us.
    Signaled(i32),
    /// Ran past the limit; its process group was killed.
    TimedOut,
    /// Could not be started (or waited for).
    Failed(String),
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exit code {c}"),
            Self::Signaled(s) => write!(f, "killed by signal {s}"),
            Self::TimedOut => write!(f, "timed out, process group killed"),
            Self::Failed(e) => write!(f, "failed to run: {e}"),
        }
    }
}

/// One hook run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub path: PathBuf,
    pub outcome: HookOutcome,
}

/// Executable regular files in `dir`, sorted by file name. A missing
/// directory means "no hooks".
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        // Follows symlinks, like run-parts.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            out.push(path);
        }
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(out)
}

/// Runs one executable with `arg` and a time limit.
pub async fn run_one(path: &Path, arg: &str, limit: Duration) -> HookOutcome {
    let mut cmd = std::process::Command::new(path);
    cmd.arg(arg).stdin(Stdio::null()).process_group(0);
    let mut cmd = smol::process::Command::from(cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return HookOutcome::Failed(e.to_string()),
    };
    let pgid = Pid::from_raw(child.id() as i32);
    let status = smol::future::or(async { Some(child.status().await) }, async {
        Timer::after(limit).await;
        None
    })
    .await;
    match status {
        Some(Ok(s)) => match (s.code(), s.signal()) {
            (Some(c), _) => HookOutcome::Exited(c),
            (None, Some(sig)) => HookOutcome::Signaled(sig),
            (None, None) => HookOutcome::Failed(format!("unknown status {s}")),
        },
        Some(Err(e)) => HookOutcome::Failed(e.to_string()),
        None => {
            if let Err(e) = killpg(pgid, Signal::SIGKILL) {
                log::warn!("hook {}: killpg: {e}", path.display());
            }
            // SIGKILL cannot be caught: this wait ends promptly; bound it anyway.
            let reaped = smol::future::or(async { child.status().await.is_ok() }, async {
                Timer::after(Duration::from_secs(5)).await;
                false
            })
            .await;
            if !reaped {
                log::error!("hook {}: not reaped after SIGKILL", path.display());
            }
            HookOutcome::TimedOut
        }
    }
}

/// Runs every hook in `dir` in order with `reason` as argument, each
/// limited to `limit`. Logs each outcome.
pub async fn run_dir(dir: &Path, reason: &str, limit: Duration) -> Vec<HookRun> {
    let hooks = match list(dir) {
        Ok(h) => h,
        Err(e) => {
            log::error!("hooks in {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut runs = Vec::with_capacity(hooks.len());
    for path in hooks {
        let outcome = run_one(&path, reason, limit).await;
        match outcome {
            HookOutcome::Exited(0) => log::info!("hook {} {reason}: ok", path.display()),
            ref o => log::warn!("hook {} {reason}: {o}", path.display()),
        }
        runs.push(HookRun { path, outcome });
    }
    runs
}
