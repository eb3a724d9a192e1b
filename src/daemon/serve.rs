//! Adapter glue: what the file servers (TFTP, HTTP, HTTPS) serve. Generated
//! files come from the provisioning index, anything else from the static
//! directory (firmware), both by sanitised relative path: TFTP at the root
//! (`<file>`, `<tenant_uuid>/<file>`), HTTP under `/provisioning/`.

use std::net::SocketAddr;

use super::provisioning::SharedServed;
use crate::http::{self, Lookup, MemoryBody, RequestInfo, Site};
use crate::tftp::{DirSource, FetchRecord, FileData, FileError, FileSource, Outcome};

pub struct ProvisioningSource {
    pub served: SharedServed,
    /// Firmware and other static files; `None` when the directory is absent.
    pub static_dir: Option<DirSource>,
}

impl FileSource for ProvisioningSource {
    fn open(&self, peer: SocketAddr, path: &str) -> Result<FileData, FileError> {
        if let Some(content) = self.served.lookup(path) {
            return Ok(FileData::Memory(content));
        }
        match &self.static_dir {
            Some(dir) => dir.open(peer, path),
            None => Err(FileError::NotFound),
        }
    }

    fn fetched(&self, r: &FetchRecord<'_>) {
        // The path is the client's text: shown escaped, never as is.
        match &r.outcome {
            Outcome::Completed => {
                log::info!("tftp {}: {:?} sent, {} bytes", r.peer, r.path, r.bytes)
            }
            other => log::info!("tftp {}: {:?} {:?}", r.peer, r.path, other),
        }
    }
}

/// The HTTP(S) side: `/provisioning/<path>`.
pub struct ProvisioningSite {
    pub served: SharedServed,
    /// Firmware and other static files, below the same prefix.
    pub static_dir: Option<http::dir::DirSite>,
}

impl Site for ProvisioningSite {
    fn get(&self, path: &http::Path, info: &RequestInfo<'_>) -> Lookup {
        let Some((first, rest)) = path.components().split_first() else {
            return Lookup::NotFound;
        };
        if first != "provisioning" || rest.is_empty() {
            return Lookup::NotFound;
        }
        if let Some(bytes) = self.served.lookup(&rest.join("/")) {
            return Lookup::Memory(MemoryBody {
                etag: Some(http::response::etag_for_bytes(&bytes)),
                mtime: None,
                content_type: None,
                bytes,
            });
        }
        match &self.static_dir {
            Some(dir) => dir.get(path, info),
            None => Lookup::NotFound,
        }
    }

    fn report(&self, f: &http::Fetch<'_>) {
        // Client text (path, User-Agent) is shown escaped, never as is.
        let path = f.path.map(|p| p.components().join("/"));
        log::info!(
            "http{} {}: {:?} {} {} bytes, user agent {:?}",
            if f.tls { "s" } else { "" },
            f.peer,
            path.as_deref().unwrap_or("-"),
            f.status,
            f.bytes,
            f.user_agent.unwrap_or("-"),
        );
    }
}
