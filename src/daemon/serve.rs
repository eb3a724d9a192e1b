//! Adapter glue: what the file servers (TFTP, later HTTP) serve. Generated
//! files come from the provisioning index, anything else from the static
//! directory (firmware), both by sanitised relative path.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use super::provisioning::Served;
use crate::tftp::{DirSource, FetchRecord, FileData, FileError, FileSource, Outcome};

pub struct ProvisioningSource {
    pub served: Rc<RefCell<Served>>,
    /// Firmware and other static files; `None` when the directory is absent.
    pub static_dir: Option<DirSource>,
}

impl FileSource for ProvisioningSource {
    fn open(&self, peer: SocketAddr, path: &str) -> Result<FileData, FileError> {
        if let Some(content) = self.served.borrow().lookup(path) {
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
