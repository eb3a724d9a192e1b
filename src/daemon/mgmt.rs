//! Adapter: the management API, JSON over HTTPS on `mgmt_listen`.
//!
//! One request per connection (`Connection: close`), at most
//! [`MAX_CLIENTS`] connections, every read bounded in size
//! (`auth::api::MAX_HEAD`, `MAX_BODY`) and time. Decoding is
//! `auth::api` (pure); this task does TLS and socket I/O and hands each
//! call to the event loop as [`Event::Mgmt`]. A login takes two trips: the
//! loop checks the lockout and hands out the stored hash, the password is
//! verified off the loop (`smol::unblock`, PBKDF2 is slow on purpose), and
//! the loop records the outcome (session or failure).

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use smol::channel::Sender;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::{Async, LocalExecutor};

use super::{Daemon, Event};
use crate::auth::api::{self, ApiCall, ApiError};
use crate::auth::password;
use crate::auth::session::{self, FailureRecord, SessionRecord};
use crate::clock::Clock;
use crate::control::{Command, Reply};
use crate::model::{Kind, Object, Origin, SettingKey, Source};
use crate::store::data::Table;

pub const MAX_CLIENTS: usize = 16;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// One step of an API call, for the event loop.
pub struct Step {
    pub call: StepCall,
    pub peer: IpAddr,
    pub reply: Sender<StepReply>,
}

pub enum StepCall {
    /// Is the user+address locked out? If not, the stored hash.
    LoginCheck {
        user: String,
    },
    /// The password was checked: record a failure or open a session.
    LoginResult {
        user: String,
        ok: bool,
    },
    Logout {
        token: Option<String>,
    },
    Run {
        token: Option<String>,
        command: Command,
    },
}

pub enum StepReply {
    /// The user's password hash (`None`: no such user or no password).
    Hash(Option<String>),
    Response {
        status: u16,
        body: String,
    },
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "code": code, "message": message }).to_string()
}

fn respond(status: u16, code: &str, message: &str) -> StepReply {
    StepReply::Response {
        status,
        body: error_body(code, message),
    }
}

// ------------------------------------------------------------ loop side

/// Executes one step on the event loop.
/// The answer to a change the HA peer did not confirm before this node
/// stepped down.
pub(super) fn unconfirmed(why: &str) -> StepReply {
    respond(503, "unconfirmed", why)
}

pub(super) fn on_step(daemon: &Daemon, call: StepCall, peer: IpAddr) -> StepReply {
    // Sessions are data the active node writes: log in there.
    if daemon.is_replica() && !matches!(call, StepCall::Run { .. }) {
        let why = super::sync::may_change(daemon)
            .err()
            .unwrap_or_else(|| "this node is the HA passive node".to_string());
        return respond(503, "passive", &why);
    }
    match on_step_inner(daemon, call, peer) {
        Ok(r) => r,
        Err(e) => {
            log::error!("mgmt: store: {e}");
            respond(500, "store", &e.to_string())
        }
    }
}

fn setting_num(daemon: &Daemon, key: SettingKey) -> i64 {
    daemon
        .store
        .setting(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| key.default_value().parse().ok())
        .unwrap_or(1)
}

fn on_step_inner(
    daemon: &Daemon,
    call: StepCall,
    peer: IpAddr,
) -> Result<StepReply, crate::store::StoreError> {
    let now = daemon.clock.wall().as_unix_micros();
    match call {
        StepCall::LoginCheck { user } => {
            let key = session::failure_key(&user, peer);
            let failure = daemon
                .store
                .data_get(Table::LoginFailure, &key)?
                .and_then(|b| session::decode::<FailureRecord>(&b));
            if let Some(secs) = session::locked_for(failure.as_ref(), now) {
                return Ok(respond(
                    429,
                    "locked",
                    &format!(
                        "too many failed logins for {user:?} from {peer}; try again in {secs} s"
                    ),
                ));
            }
            let hash = match daemon.store.get(Kind::User, &user)? {
                Some(Object::User(u)) if !u.password_hash.is_empty() => Some(u.password_hash),
                _ => None,
            };
            Ok(StepReply::Hash(hash))
        }
        StepCall::LoginResult { user, ok } => {
            let key = session::failure_key(&user, peer);
            if !ok {
                let limit = setting_num(daemon, SettingKey::ApiLockoutFailures);
                let lock_s = setting_num(daemon, SettingKey::ApiLockoutSeconds);
                let locked = daemon.store.data_write(|t| {
                    let prev = t
                        .get(Table::LoginFailure, &key)?
                        .and_then(|b| session::decode::<FailureRecord>(&b));
                    let next = session::after_failure(
                        prev.as_ref(),
                        now,
                        u32::try_from(limit).unwrap_or(u32::MAX),
                        lock_s.saturating_mul(1_000_000),
                    );
                    t.put(Table::LoginFailure, &key, &session::encode(&next))?;
                    Ok(session::locked_for(Some(&next), now).is_some())
                })?;
                log::warn!(
                    "mgmt: failed login for {user:?} from {peer}{}",
                    if locked { "; locked out" } else { "" }
                );
                return Ok(respond(401, "unauthorized", "wrong user or password"));
            }
            let token = match new_token() {
                Some(t) => t,
                None => return Ok(respond(503, "unavailable", "no randomness available")),
            };
            let expires_us = now.saturating_add(
                setting_num(daemon, SettingKey::ApiSessionSeconds).saturating_mul(1_000_000),
            );
            let record = SessionRecord::V1 {
                user: user.clone(),
                address: peer,
                created_us: now,
                expires_us,
            };
            daemon.store.data_write(|t| {
                t.delete(Table::LoginFailure, &key)?;
                // Drop expired sessions while here, so the table stays small.
                let mut expired = Vec::new();
                t.scan(
                    Table::Session,
                    (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
                    crate::store::data::Order::Ascending,
                    |k, v| {
                        if let Some(SessionRecord::V1 { expires_us, .. }) = session::decode(v)
                            && expires_us <= now
                        {
                            expired.push(k.to_vec());
                        }
                        Ok(std::ops::ControlFlow::Continue(()))
                    },
                )?;
                for k in expired {
                    t.delete(Table::Session, &k)?;
                }
                t.put(
                    Table::Session,
                    &session::session_key(&token),
                    &session::encode(&record),
                )
            })?;
            log::info!("mgmt: {user} logged in from {peer}");
            Ok(StepReply::Response {
                status: 200,
                body: serde_json::json!({
                    "token": token,
                    "user": user,
                    "expires_us": expires_us,
                })
                .to_string(),
            })
        }
        StepCall::Logout { token } => {
            let Some(token) = token else {
                return Ok(respond(401, "unauthorized", "missing bearer token"));
            };
            let key = session::session_key(&token);
            let gone = daemon
                .store
                .data_write(|t| t.delete(Table::Session, &key))?;
            if gone {
                Ok(StepReply::Response {
                    status: 200,
                    body: r#"{"logged_out":true}"#.to_string(),
                })
            } else {
                Ok(respond(
                    401,
                    "unauthorized",
                    "invalid or expired session token",
                ))
            }
        }
        StepCall::Run { token, command } => {
            let Some(token) = token else {
                return Ok(respond(
                    401,
                    "unauthorized",
                    "missing bearer token (POST /api/v1/login first)",
                ));
            };
            let key = session::session_key(&token);
            let session = daemon
                .store
                .data_get(Table::Session, &key)?
                .and_then(|b| session::decode::<SessionRecord>(&b));
            let Some(SessionRecord::V1 {
                user, expires_us, ..
            }) = session
            else {
                return Ok(respond(
                    401,
                    "unauthorized",
                    "invalid or expired session token",
                ));
            };
            if expires_us <= now {
                daemon
                    .store
                    .data_write(|t| t.delete(Table::Session, &key))?;
                return Ok(respond(
                    401,
                    "unauthorized",
                    "session expired; log in again",
                ));
            }
            let origin = Origin {
                user,
                source: Source::Address(peer),
            };
            let reply = super::handlers::handle(daemon, &origin, command);
            let status = match &reply {
                Reply::Error(e) => api::status_of(e.code),
                _ => 200,
            };
            let out = crate::cli::render::render(&reply, true, &jiff::tz::TimeZone::UTC);
            Ok(StepReply::Response {
                status,
                body: out.stdout,
            })
        }
    }
}

fn new_token() -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(password::hex(&bytes))
}

// ------------------------------------------------------------ adapter side

pub fn bind(addr: SocketAddr) -> std::io::Result<Async<TcpListener>> {
    Async::<TcpListener>::bind(addr)
}

pub async fn accept_loop(
    ex: Rc<LocalExecutor<'static>>,
    listener: Async<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
    events: Sender<Event>,
) {
    let acceptor = futures_rustls::TlsAcceptor::from(tls);
    let active = Rc::new(Cell::new(0usize));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("mgmt: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if active.get() >= MAX_CLIENTS {
            continue; // dropped: closes the connection
        }
        active.set(active.get() + 1);
        let active = active.clone();
        let acceptor = acceptor.clone();
        let events = events.clone();
        ex.spawn(async move {
            serve(acceptor, stream, peer.ip(), events).await;
            active.set(active.get().saturating_sub(1));
        })
        .detach();
    }
}

async fn timeout<T>(d: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(f.await) }, async {
        smol::Timer::after(d).await;
        None
    })
    .await
}

async fn serve(
    acceptor: futures_rustls::TlsAcceptor,
    stream: Async<TcpStream>,
    peer: IpAddr,
    events: Sender<Event>,
) {
    let Some(Ok(mut tls)) = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
        return;
    };
    let (status, body) = match timeout(READ_TIMEOUT, read_call(&mut tls)).await {
        None => (408, error_body("timeout", "request not received in time")),
        Some(Err(e)) => (e.status, error_body("bad_request", &e.message)),
        Some(Ok((head, call))) => run(call, head.token, peer, &events).await,
    };
    let reason = crate::http::response::reason(status);
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(body.as_bytes()).await?;
        tls.flush().await?;
        tls.close().await
    };
    let _ = timeout(READ_TIMEOUT, write).await;
    // Lingering close: let the client read the answer before a reset for
    // unread request bytes can reach it (bounded in bytes and time).
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 64 * 1024 {
            match tls.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = timeout(Duration::from_secs(1), drain).await;
}

async fn read_call<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<(api::Head, ApiCall), ApiError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head = loop {
        let n = s.read(&mut chunk).await.map_err(|e| ApiError {
            status: 400,
            message: format!("read failed: {e}"),
        })?;
        if n == 0 {
            return Err(ApiError {
                status: 400,
                message: "connection closed before a whole request".to_string(),
            });
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if let Some(head) = api::parse_head(&buf)? {
            break head;
        }
    };
    let want = head.len + head.content_length;
    while buf.len() < want {
        let n = s.read(&mut chunk).await.map_err(|e| ApiError {
            status: 400,
            message: format!("read failed: {e}"),
        })?;
        if n == 0 {
            return Err(ApiError {
                status: 400,
                message: "body shorter than Content-Length".to_string(),
            });
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
    let body = buf.get(head.len..want).unwrap_or(&[]);
    let call = api::decode(&head, body)?;
    Ok((head, call))
}

async fn step(events: &Sender<Event>, call: StepCall, peer: IpAddr) -> Option<StepReply> {
    let (tx, rx) = smol::channel::bounded(1);
    events
        .send(Event::Mgmt(Step {
            call,
            peer,
            reply: tx,
        }))
        .await
        .ok()?;
    timeout(REPLY_TIMEOUT, rx.recv()).await?.ok()
}

/// A valid hash to verify against when the user does not exist, so that
/// the answer takes as long either way.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        password::hash("no such user: dummy", password::ITERATIONS).unwrap_or_default()
    })
}

async fn run(
    call: ApiCall,
    token: Option<String>,
    peer: IpAddr,
    events: &Sender<Event>,
) -> (u16, String) {
    let unavailable = || (503, error_body("unavailable", "daemon did not answer"));
    let reply = match call {
        ApiCall::Login { user, password } => {
            let check = step(events, StepCall::LoginCheck { user: user.clone() }, peer).await;
            let hash = match check {
                Some(StepReply::Hash(h)) => h,
                Some(StepReply::Response { status, body }) => return (status, body),
                None => return unavailable(),
            };
            let ok = smol::unblock(move || match hash {
                Some(h) => password::verify(&password, &h),
                None => {
                    let _ = password::verify(&password, dummy_hash());
                    false
                }
            })
            .await;
            step(events, StepCall::LoginResult { user, ok }, peer).await
        }
        ApiCall::Logout => step(events, StepCall::Logout { token }, peer).await,
        ApiCall::Run(command) => step(events, StepCall::Run { token, command }, peer).await,
    };
    match reply {
        Some(StepReply::Response { status, body }) => (status, body),
        Some(StepReply::Hash(_)) | None => unavailable(),
    }
}
