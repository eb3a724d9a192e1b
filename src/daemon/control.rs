//! Adapter: the control socket (`kpbx` talks to it).
//!
//! Each connection is a task that reads request frames, learns the caller
//! from `SO_PEERCRED`, forwards each request to the event loop and writes the
//! reply back. A client that sends garbage gets an error reply and is
//! disconnected; one that stalls mid-frame is dropped after a timeout; past
//! [`MAX_CLIENTS`] connections new ones are answered "busy" and closed.
//!
//! A `cdr import` request carries the open file (`control::fdpass`); while
//! it runs, the connection is watched, and a client that goes away cancels
//! it.

use std::cell::Cell;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use smol::channel::Sender;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor};

use super::cdr::Upload;
use super::{DaemonError, Event};
use crate::control::fdpass;
use crate::control::wire::{self, FrameError};
use crate::control::{ErrorCode, Reply};
use crate::model::{Origin, Source};
use crate::store::Store;

/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;
/// How long a client may take to send a whole frame once it has started one,
/// and how long an idle connection is kept.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the event loop may take to answer before the client is told.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Binds the control socket with mode 0600, replacing a stale socket file
/// but never one that a live daemon still answers on.
pub fn bind(path: &Path) -> Result<Async<UnixListener>, DaemonError> {
    let fail = |what: &str, e: std::io::Error| {
        DaemonError::Bind(format!("control socket {}: {what}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("cannot create its directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(DaemonError::Bind(format!(
                    "control socket {}: exists and is not a socket",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(DaemonError::Bind(format!(
                    "control socket {}: another daemon is answering on it",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(|e| fail("cannot remove the stale socket", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("cannot inspect", e)),
    }
    // Create the socket private from the start, then make sure of the mode.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| fail("cannot bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail("cannot set mode 0600", e))?;
    Async::new(listener).map_err(|e| fail("cannot register", e))
}

pub fn unlink(path: &Path) {
    let _ = std::fs::remove_file(path);
}

pub async fn accept_loop(
    ex: Rc<LocalExecutor<'static>>,
    listener: Async<UnixListener>,
    events: Sender<Event>,
    store: Arc<Store>,
) {
    let active = Rc::new(Cell::new(0usize));
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                log::warn!("control socket: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.get() >= MAX_CLIENTS {
            let busy = Reply::error(
                ErrorCode::Unavailable,
                "daemon busy: too many console clients",
            );
            let _ = stream
                .write_all(&wire::encode_reply(&busy, &zone(&store)))
                .await;
            continue;
        }
        active.set(active.get() + 1);
        let guard = ActiveGuard(active.clone());
        let events = events.clone();
        let store = store.clone();
        ex.spawn(async move {
            let _guard = guard;
            serve(stream, events, &store).await;
        })
        .detach();
    }
}

struct ActiveGuard(Rc<Cell<usize>>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// The user behind a connection, from the kernel's peer credentials.
fn peer_origin(stream: &Async<UnixStream>) -> Option<Origin> {
    let creds =
        nix::sys::socket::getsockopt(stream.get_ref(), nix::sys::socket::sockopt::PeerCredentials)
            .ok()?;
    let uid = nix::unistd::Uid::from_raw(creds.uid());
    let user = match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid:{}", creds.uid()),
    };
    Some(Origin {
        user,
        source: Source::Console,
    })
}

/// The box's zone, sent with every answer (the console shows times in it).
fn zone(store: &Store) -> String {
    store
        .setting(crate::model::SettingKey::Timezone)
        .unwrap_or_else(|_| "UTC".into())
}

async fn serve(mut stream: Async<UnixStream>, events: Sender<Event>, store: &Store) {
    let Some(origin) = peer_origin(&stream) else {
        log::warn!("control socket: no peer credentials; connection dropped");
        return;
    };
    loop {
        let (request, file) = match read_request(&mut stream).await {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(e) => {
                log::warn!("control socket: {} sent a bad frame: {e}", origin.user);
                let reply = Reply::error(ErrorCode::BadRequest, e.to_string());
                let _ = stream
                    .write_all(&wire::encode_reply(&reply, &zone(store)))
                    .await;
                return;
            }
        };
        // A descriptor rides only with an import; any other is closed here.
        let upload = match (&request.command, file) {
            (crate::control::Command::CdrImport { .. }, Some(file)) => Some(Upload {
                file: std::fs::File::from(file),
                cancel: Arc::new(AtomicBool::new(false)),
            }),
            _ => None,
        };
        let cancel = upload.as_ref().map(|u| Arc::clone(&u.cancel));
        let (reply_tx, reply_rx) = smol::channel::bounded(1);
        let event = Event::Request {
            request,
            origin: origin.clone(),
            reply: reply_tx,
            upload,
        };
        if events.send(event).await.is_err() {
            return;
        }
        let wait = match cancel {
            Some(_) => crate::control::IMPORT_MAX_TIME + REPLY_TIMEOUT,
            None => REPLY_TIMEOUT,
        };
        // One reply, or a stream: chunks until a reply that is not one.
        loop {
            let answered = async { reply_rx.recv().await.ok().map(Some) };
            let timeout = async {
                smol::Timer::after(wait).await;
                Some(None)
            };
            // An import's client hanging up (or sending anything more)
            // cancels it; nothing is written back then.
            let gone = async {
                let Some(cancel) = &cancel else {
                    return smol::future::pending().await;
                };
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
                cancel.store(true, Ordering::Relaxed);
                None
            };
            let Some(reply) = smol::future::or(answered, smol::future::or(timeout, gone)).await
            else {
                log::info!("control socket: {} went away during an import", origin.user);
                return;
            };
            let reply = reply.unwrap_or_else(|| {
                Reply::error(ErrorCode::Unavailable, "daemon did not answer in time")
            });
            let more = matches!(reply, Reply::Chunk(_));
            if stream
                .write_all(&wire::encode_reply(&reply, &zone(store)))
                .await
                .is_err()
            {
                return;
            }
            if !more {
                break;
            }
        }
    }
}

enum ReadError {
    Frame(FrameError),
    Timeout,
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Frame(e) => write!(f, "{e}"),
            ReadError::Timeout => f.write_str("timed out in the middle of a frame"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads one request, and the file passed with it if any; `Ok(None)` on a
/// clean close or an idle timeout.
async fn read_request(
    stream: &mut Async<UnixStream>,
) -> Result<Option<(crate::control::Request, Option<OwnedFd>)>, ReadError> {
    let mut header = [0u8; wire::HEADER_LEN];
    // The first byte may take as long as the idle timeout; the rest of the
    // frame must follow within the read timeout. A passed descriptor comes
    // with the first byte.
    let mut first = [0u8; 1];
    let read = stream.read_with(|s| fdpass::recv_byte_and_file(s, &mut first));
    let file = match with_timeout(read).await {
        None | Some(Ok((0, _))) => return Ok(None),
        Some(Err(e)) => return Err(ReadError::Io(e)),
        Some(Ok((_, file))) => file,
    };
    header[0] = first[0];
    let rest = async {
        stream.read_exact(&mut header[1..]).await?;
        let len = wire::parse_header(&header, wire::MAX_REQUEST)
            .map_err(|e| std::io::Error::other(FrameCarrier(e)))?;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await?;
        Ok::<_, std::io::Error>(payload)
    };
    let payload = match with_timeout(rest).await {
        None => return Err(ReadError::Timeout),
        Some(Err(e)) => {
            return Err(match e.into_inner().map(|b| b.downcast::<FrameCarrier>()) {
                Some(Ok(carrier)) => ReadError::Frame(carrier.0),
                Some(Err(other)) => ReadError::Io(std::io::Error::other(other)),
                None => ReadError::Frame(FrameError::Truncated),
            });
        }
        Some(Ok(payload)) => payload,
    };
    wire::decode_request(&payload)
        .map(|r| Some((r, file)))
        .map_err(ReadError::Frame)
}

#[derive(Debug)]
struct FrameCarrier(FrameError);

impl std::fmt::Display for FrameCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for FrameCarrier {}

async fn with_timeout<T>(fut: impl std::future::Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(READ_TIMEOUT).await;
        None
    })
    .await
}
