//! A [`Site`] serving a directory tree under one URL prefix (`/provisioning/...`).

use super::response::etag_for_file;
use super::{FileBody, Lookup, Path, RequestInfo, Site};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Serves `root/<a>/<b>` for `/<prefix>/<a>/<b>`: regular files only, never a listing.
///
/// Files are opened with `openat2(root_fd, "a/b", RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`,
/// so the kernel refuses any resolution (symlink or otherwise) that leaves the tree. On
/// kernels without openat2 (< 5.6, or a seccomp filter that refuses it) it falls back to
/// `openat(root_fd, "a/b")` plus a component-wise check of the descriptor's real path
/// (`/proc/self/fd/N`) against the root: `rootX/...` siblings fail. Neither path allocates.
/// Opens use `O_NONBLOCK` so a FIFO in the tree cannot stall the executor.
#[derive(Debug)]
pub struct DirSite {
    root: PathBuf,
    root_fd: std::fs::File,
    prefix: String,
    no_openat2: AtomicBool,
}

impl DirSite {
    pub fn new(root: impl Into<PathBuf>, prefix: &str) -> std::io::Result<DirSite> {
        let root = std::fs::canonicalize(root.into())?;
        let root_fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_directory())
            .open(&root)?;
        Ok(DirSite {
            root,
            root_fd,
            prefix: prefix.to_owned(),
            no_openat2: AtomicBool::new(false),
        })
    }

    fn open_beneath(&self, rel: &str) -> Option<std::fs::File> {
        if !self.no_openat2.load(Relaxed) {
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.root_fd, rel, flags, Mode::empty(), resolve) {
                Ok(fd) => return Some(std::fs::File::from(fd)),
                Err(rustix::io::Errno::NOSYS) => self.no_openat2.store(true, Relaxed),
                Err(_) => return None,
            }
        }
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let file =
            std::fs::File::from(rustix::fs::openat(&self.root_fd, rel, flags, Mode::empty()).ok()?);
        // Only without openat2 (Linux < 5.6 or a seccomp filter): where did it lead?
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        real.starts_with(&self.root).then_some(file)
    }

    fn open(&self, path: &Path) -> Option<FileBody> {
        let rel = path.below(&self.prefix)?;
        let file = self.open_beneath(rel)?;
        // fstat directly: std's metadata() goes through statx and a bigger conversion.
        let st = rustix::fs::fstat(&file).ok()?;
        if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() {
            return None;
        }
        let len = u64::try_from(st.st_size).ok()?;
        let mtime = {
            use std::time::{Duration, UNIX_EPOCH};
            // The field's type differs between targets (u64 here, i64 elsewhere).
            #[allow(clippy::useless_conversion)]
            let nanos = Duration::from_nanos(u64::try_from(st.st_mtime_nsec).unwrap_or(0));
            let secs = Duration::from_secs(st.st_mtime.unsigned_abs());
            if st.st_mtime >= 0 {
                UNIX_EPOCH.checked_add(secs + nanos)
            } else {
                UNIX_EPOCH
                    .checked_sub(secs)
                    .and_then(|t| t.checked_add(nanos))
            }
        };
        Some(FileBody {
            file,
            len,
            etag: Some(etag_for_file(len, mtime)),
            mtime,
            content_type: None,
        })
    }

    /// Forces the pre-openat2 fallback (tests).
    pub fn disable_openat2(&self) {
        self.no_openat2.store(true, Relaxed);
    }
}

fn libc_o_directory() -> i32 {
    OFlags::DIRECTORY.bits() as i32
}

impl Site for DirSite {
    fn get(&self, path: &Path, _info: &RequestInfo<'_>) -> Lookup {
        match self.open(path) {
            Some(f) => Lookup::File(f),
            None => Lookup::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::path::parse_target;

    #[test]
    fn stays_inside_the_root_with_and_without_openat2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("t")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("treeX")).expect("mkdir");
        std::fs::write(root.join("a.cfg"), b"a").expect("write");
        std::fs::write(root.join("t/b.cfg"), b"b").expect("write");
        std::fs::write(dir.path().join("treeX/s.txt"), b"S").expect("write");
        let sym = |target: &std::path::Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).expect("symlink")
        };
        sym(&dir.path().join("treeX/s.txt"), "abs-out");
        sym(std::path::Path::new("../treeX/s.txt"), "rel-out");
        sym(std::path::Path::new("a.cfg"), "rel-in");
        sym(std::path::Path::new("/proc/self/root/etc/passwd"), "magic");
        let fifo = root.join("pipe.cfg");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success()),
            "mkfifo (coreutils) needed"
        );
        for fallback in [false, true] {
            let site = DirSite::new(&root, "provisioning").expect("site");
            if fallback {
                site.disable_openat2();
            }
            let found = |t: &str| {
                site.open(&parse_target(t.as_bytes()).expect("path"))
                    .is_some()
            };
            assert!(found("/provisioning/a.cfg"));
            assert!(found("/provisioning/t/b.cfg"));
            assert!(found("/provisioning/rel-in"), "fallback={fallback}");
            for t in [
                "/provisioning/abs-out",
                "/provisioning/rel-out",
                "/provisioning/magic",
                "/provisioning/t",
                "/provisioning/pipe.cfg",
                "/provisioning/missing",
                "/provisioning",
                "/other/a.cfg",
                "/a.cfg",
            ] {
                assert!(!found(t), "{t} fallback={fallback}");
            }
        }
    }
}
