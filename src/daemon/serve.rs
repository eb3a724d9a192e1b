//! Adapter glue: what the file servers (TFTP, HTTP, HTTPS) serve. Generated
//! files come from the provisioning index, anything else from the static
//! directory (firmware), both by sanitised relative path: TFTP at the root
//! (`<file>`, `<tenant_uuid>/<file>`), HTTP under `/provisioning/`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::logging::RequestLines;

/// Per-request log lines, summarised per window (the per-device fetch log
/// keeps every fetch): a flood of fetches cannot flood the log.
static TFTP_LINES: Mutex<RequestLines> = Mutex::new(RequestLines::new());
static HTTP_LINES: Mutex<RequestLines> = Mutex::new(RequestLines::new());

/// Whether this fetch gets its own info line; logs the count of those that
/// did not when their window closes.
fn line_for(lines: &Mutex<RequestLines>, service: &str) -> bool {
    if !log::log_enabled!(log::Level::Info) {
        return false;
    }
    let Ok(mut lines) = lines.lock() else {
        return false;
    };
    let (shown, summary) = lines.admit(Instant::now());
    if let Some(n) = summary {
        log::info!(
            "{service}: {n} more fetches in {} s not logged one by one (kpbx prov log has each)",
            RequestLines::WINDOW.as_secs()
        );
    }
    shown
}

use super::protect::SharedProtect;
use super::provisioning::SharedServed;
use crate::http::{self, Lookup, MemoryBody, RequestInfo, Site};
use crate::provision::guard::ua_mismatch;
use crate::tftp::{DirSource, FetchRecord, FileData, FileError, FileSource, Outcome};

pub struct ProvisioningSource {
    pub served: SharedServed,
    pub protect: SharedProtect,
    /// Firmware and other static files; `None` when the directory is absent.
    pub static_dir: Option<DirSource>,
}

impl FileSource for ProvisioningSource {
    fn open(&self, peer: SocketAddr, path: &str) -> Result<FileData, FileError> {
        if self.protect.is_blocked(peer.ip()) {
            return Err(FileError::AccessDenied);
        }
        if let Some(file) = self.served.file(path) {
            // TFTP cannot authenticate: files behind HTTP credentials are
            // not served over it.
            if file
                .device
                .is_some_and(|mac| self.served.credentials(mac).is_some())
            {
                return Err(FileError::AccessDenied);
            }
            return Ok(FileData::Memory(file.content));
        }
        match &self.static_dir {
            Some(dir) => dir.open(peer, path),
            None => Err(FileError::NotFound),
        }
    }

    fn fetched(&self, r: &FetchRecord<'_>) {
        // The path is the client's text: shown escaped, never as is.
        if line_for(&TFTP_LINES, "tftp") {
            match &r.outcome {
                Outcome::Completed => {
                    log::info!("tftp {}: {:?} sent, {} bytes", r.peer, r.path, r.bytes)
                }
                other => log::info!("tftp {}: {:?} {:?}", r.peer, r.path, other),
            }
        }
        let relative = crate::tftp::sanitize_path(r.path).unwrap_or(r.path);
        let device = self
            .served
            .device(relative)
            .flatten()
            .or_else(|| self.served.known_device(relative));
        let result = match &r.outcome {
            Outcome::Completed => "sent".to_string(),
            other => format!("{other:?}").to_lowercase(),
        };
        self.protect.record(
            "tftp",
            r.peer.ip(),
            None,
            relative,
            &result,
            r.bytes,
            device,
            matches!(r.outcome, Outcome::NotFound) && self.served.is_miss(relative),
        );
    }
}

/// The HTTP(S) side: `/provisioning/<path>`.
pub struct ProvisioningSite {
    pub served: SharedServed,
    pub protect: SharedProtect,
    /// Firmware and other static files, below the same prefix.
    pub static_dir: Option<http::dir::DirSite>,
    /// Checks per-device digest credentials (nonce secret per process).
    pub digest: http::digest::Verifier,
}

/// The digest realm of provisioning files.
pub const REALM: &str = "kpbx provisioning";

/// A random per-process secret for digest nonces.
pub fn nonce_secret() -> [u8; 32] {
    use std::io::Read;
    let mut key = [0u8; 32];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
    if random.is_err() {
        // Still unpredictable enough to bind nonces to this process.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        key[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
        key[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    key
}

/// `target` (a digest `uri`) names the same file as `path`.
fn same_target(target: &str, path: &http::Path) -> bool {
    let target = target.split('?').next().unwrap_or(target);
    http::path::parse_target(target.as_bytes()).is_ok_and(|t| t == *path)
}

/// The path below `/provisioning/`, if the request is for one (borrowed: no allocation
/// per request).
fn provisioning_path(path: &http::Path) -> Option<&str> {
    path.below("provisioning")
}

/// A status code as text (static for the usual ones: the fetch log records every
/// generated file's fetch).
fn status_text(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        206 => "206".into(),
        304 => "304".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        416 => "416".into(),
        other => other.to_string().into(),
    }
}

impl Site for ProvisioningSite {
    fn admit(&self, peer: SocketAddr) -> bool {
        !self.protect.is_blocked(peer.ip())
    }

    fn get(&self, path: &http::Path, info: &RequestInfo<'_>) -> Lookup {
        let Some(relative) = provisioning_path(path) else {
            return Lookup::NotFound;
        };
        if self.protect.is_blocked(info.peer.ip()) {
            return Lookup::Forbidden;
        }
        if let Some(file) = self.served.file(relative) {
            let device = file.device;
            let agent = info.headers.user_agent();
            if let Some((ua, file)) = ua_mismatch(agent, device) {
                log::warn!(
                    "http {}: {relative:?} refused: the User-Agent names {ua}, the file is {file}'s",
                    info.peer
                );
                return Lookup::Forbidden;
            }
            if let Some((user, password)) = device.and_then(|mac| self.served.credentials(mac)) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let client = info.peer.ip().to_string();
                let method = match info.method {
                    http::Method::Head => "HEAD",
                    _ => "GET",
                };
                let verdict = self.digest.check(
                    info.headers.authorization(),
                    method,
                    &|uri| same_target(uri, path),
                    &client,
                    now,
                    &user,
                    &password,
                );
                match verdict {
                    http::digest::Verdict::Ok => {}
                    v => {
                        let stale = v == http::digest::Verdict::Stale;
                        return Lookup::Unauthorized(self.digest.challenges(now, &client, stale));
                    }
                }
            }
            return Lookup::Memory(MemoryBody {
                etag: Some(file.etag),
                mtime: None,
                content_type: None,
                bytes: file.content,
            });
        }
        match &self.static_dir {
            Some(dir) => dir.get(path, info),
            None => Lookup::NotFound,
        }
    }

    fn report(&self, f: &http::Fetch<'_>) {
        // A static file is no generated one (`get` looks there first): no index lookup.
        if let Some(relative) = f
            .path
            .and_then(provisioning_path)
            .filter(|_| !f.static_file)
        {
            self.protect.record(
                if f.tls { "https" } else { "http" },
                f.peer.ip(),
                f.user_agent,
                relative,
                &status_text(f.status),
                f.bytes,
                self.served
                    .device(relative)
                    .flatten()
                    .or_else(|| self.served.known_device(relative)),
                f.status == 404 && self.served.is_miss(relative),
            );
        }
        if !line_for(&HTTP_LINES, "http") {
            return;
        }
        // Client text (path, User-Agent) is shown escaped, never as is.
        let path = f.path.map(|p| p.as_str().trim_start_matches('/'));
        log::info!(
            "http{} {}: {:?} {} {} bytes, user agent {:?}",
            if f.tls { "s" } else { "" },
            f.peer,
            path.unwrap_or("-"),
            f.status,
            f.bytes,
            f.user_agent.unwrap_or("-"),
        );
    }
}
