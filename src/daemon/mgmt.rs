//! Adapter: the management API, JSON over HTTPS on `mgmt_listen`.
//!
//! One request per connection (`Connection: close`). Connections: at most
//! [`PER_ADDRESS`] from one client address and [`MAX_CLIENTS`] in all; one
//! over either limit is closed at once, before TLS (a 503 would need a
//! TLS handshake first, which is the work the limit is there to refuse).
//! Deadlines: [`HANDSHAKE_TIMEOUT`] for TLS, [`HEAD_TIMEOUT`] for the whole
//! head, [`BODY_TIMEOUT`] for the body (totals, not per read, so a client
//! trickling bytes is cut off). Sizes: `auth::api::LIMITS`; heads are
//! parsed by `http::request`, the parser of every HTTP service.
//!
//! Decoding is `auth::api` (pure); this task does TLS and socket I/O and
//! hands each call to the event loop as [`Event::Mgmt`]. A command goes,
//! after the session check, through the console's own routing
//! (`super::route`: permission, thread offloads, password hashing on the
//! pool, `ha switch` wait, HA confirmation). A login takes two trips: the
//! loop checks the lockout and hands out the stored hash, the password is
//! verified on the hashing pool (`workers::HashPool`, PBKDF2 is slow on
//! purpose), and the loop records the outcome (session or failure).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use smol::channel::Sender;
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::{Async, LocalExecutor};

use super::workers::{HashPool, Lane};
use super::{Daemon, Event};
use crate::auth::api::{self, ApiCall, ApiError};
use crate::auth::session::{self, SessionRecord};
use crate::auth::{lockout, password};
use crate::clock::Clock;
use crate::control::{Command, Reply};
use crate::http::request::{self, Request, Status};
use crate::model::{Kind, Object, Origin, SettingKey, Source};
use crate::store::data::Table;

/// Connections from one client address.
pub const PER_ADDRESS: usize = 16;
/// Connections in all.
pub const MAX_CLIENTS: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// The password was checked (`Some(ok)`) or not (`None`: the pool was
    /// full): settle the lockout reservation, open a session.
    LoginResult {
        user: String,
        ticket: lockout::Ticket,
        ok: Option<bool>,
    },
    Logout {
        token: Option<String>,
    },
    /// Who the session is: user, role, permissions, tenant scope.
    Session {
        token: Option<String>,
    },
    /// Check the session, then run `command` as the console would; the
    /// command's answer comes on `answer`.
    Run {
        token: Option<String>,
        command: Command,
        answer: Sender<Reply>,
    },
}

pub enum StepReply {
    /// The user's password hash (`None`: no such user or no password), and
    /// the lockout reservation the verification holds.
    Hash(Option<String>, lockout::Ticket),
    /// The session is good: the command's answer comes on its own channel.
    Routed,
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

/// One step on the event loop: a command goes the console's way once the
/// session is checked; a login or logout step is answered here.
pub(super) fn on_event(daemon: &Daemon, step: Step) {
    let Step { call, peer, reply } = step;
    if let StepCall::Run {
        token,
        command,
        answer,
    } = call
    {
        match session(daemon, token.as_deref(), peer) {
            Ok(origin) => {
                let _ = reply.try_send(StepReply::Routed);
                // No file travels with an API call (`cdr import` is console-only).
                super::route(daemon, &origin, command, None, answer);
            }
            Err(refused) => {
                let _ = reply.try_send(refused);
            }
        }
        return;
    }
    let before = super::sync::Before::now(daemon);
    let answer = on_step(daemon, call, peer);
    before.answer(
        daemon,
        Box::new(move |lost| {
            let _ = reply.try_send(match lost {
                None => answer,
                Some(why) => unconfirmed(&why),
            });
        }),
    );
}

/// The origin of a request with bearer `token`, or the 401 to answer.
fn session(daemon: &Daemon, token: Option<&str>, peer: IpAddr) -> Result<Origin, StepReply> {
    let Some(token) = token else {
        return Err(respond(
            401,
            "unauthorized",
            "missing bearer token (POST /api/v1/login first)",
        ));
    };
    let now = daemon.clock.wall().as_unix_micros();
    let key = session::session_key(token);
    let stored = daemon
        .store
        .data_get(Table::Session, &key)
        .map_err(|e| {
            log::error!("mgmt: store: {e}");
            respond(
                500,
                "internal",
                "internal error (details in the daemon log)",
            )
        })?
        .and_then(|b| session::decode::<SessionRecord>(&b));
    let Some(SessionRecord::V2 {
        user,
        expires_us,
        fingerprint,
        ..
    }) = stored
    else {
        return Err(invalid_token("invalid or expired session token"));
    };
    let drop_session = || {
        if let Err(e) = daemon.store.data_write(|t| t.delete(Table::Session, &key)) {
            log::error!("mgmt: store: {e}");
        }
    };
    if expires_us <= now {
        drop_session();
        return Err(invalid_token("session expired; log in again"));
    }
    // The session ends with a password reset, a role or tenant change, or
    // the user's deletion (a re-created user has another salt).
    let current = match daemon.store.get(Kind::User, &user) {
        Ok(Some(Object::User(u))) => Some(session::fingerprint(&u)),
        _ => None,
    };
    if current.as_deref() != Some(fingerprint.as_slice()) {
        drop_session();
        log::info!("mgmt: session of {user:?} ended: the user changed");
        return Err(invalid_token(
            "session ended: the user's password, role or tenant changed; log in again",
        ));
    }
    Ok(Origin {
        user,
        source: Source::Address(peer),
    })
}

fn invalid_token(why: &str) -> StepReply {
    StepReply::Response {
        status: 401,
        body: error_body("invalid_token", why),
    }
}

/// The answer to a change the HA peer did not confirm before this node
/// stepped down.
pub(super) fn unconfirmed(why: &str) -> StepReply {
    respond(503, "unconfirmed", why)
}

pub(super) fn on_step(daemon: &Daemon, call: StepCall, peer: IpAddr) -> StepReply {
    // Sessions are data the active node writes: log in there.
    if daemon.is_replica() && !matches!(call, StepCall::Run { .. } | StepCall::Session { .. }) {
        let why = super::sync::may_change(daemon)
            .err()
            .unwrap_or_else(|| "this node is the HA passive node".to_string());
        return respond(503, "passive", &why);
    }
    match on_step_inner(daemon, call, peer) {
        Ok(r) => r,
        Err(e) => {
            // The details go to the log, never to the client.
            log::error!("mgmt: store: {e}");
            respond(
                500,
                "internal",
                "internal error (details in the daemon log)",
            )
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
            let limit = u32::try_from(setting_num(daemon, SettingKey::ApiLockoutFailures))
                .unwrap_or(u32::MAX);
            let lock_us =
                setting_num(daemon, SettingKey::ApiLockoutSeconds).saturating_mul(1_000_000);
            let hash = match daemon.store.get(Kind::User, &user)? {
                Some(Object::User(u)) => Some(u.password_hash),
                _ => None,
            };
            // The lockout decision and the count are one step: the
            // reservation counts as a failure until the result comes.
            // Accounts are counted apart from names nobody has.
            let reserved = daemon.lockout.borrow_mut().reserve(
                &user,
                peer,
                hash.is_some(),
                now,
                limit,
                lock_us,
            );
            let ticket = match reserved {
                Ok(t) => t,
                Err(secs) => {
                    log::warn!(
                        "mgmt: login refused for {} from {peer}: locked out",
                        shown_user(daemon, &user)
                    );
                    return Ok(locked(secs));
                }
            };
            let hash = hash.filter(|h| !h.is_empty());
            Ok(StepReply::Hash(hash, ticket))
        }
        StepCall::LoginResult { user, ticket, ok } => {
            let limit = u32::try_from(setting_num(daemon, SettingKey::ApiLockoutFailures))
                .unwrap_or(u32::MAX);
            let lock_us =
                setting_num(daemon, SettingKey::ApiLockoutSeconds).saturating_mul(1_000_000);
            let locked_now = daemon
                .lockout
                .borrow_mut()
                .finish(ticket, ok, now, limit, lock_us);
            match ok {
                None => {
                    return Ok(respond(
                        503,
                        "busy",
                        "too many password checks at once; try again in a few seconds",
                    ));
                }
                Some(false) => {
                    // Nothing is written: failures are counted in memory only.
                    log::warn!(
                        "mgmt: failed login for {} from {peer}{}",
                        shown_user(daemon, &user),
                        if locked_now { "; locked out" } else { "" }
                    );
                    return Ok(respond(401, "unauthorized", "wrong user or password"));
                }
                Some(true) => {}
            }
            let token = match new_token() {
                Some(t) => t,
                None => return Ok(respond(503, "unavailable", "no randomness available")),
            };
            let expires_us = now.saturating_add(
                setting_num(daemon, SettingKey::ApiSessionSeconds).saturating_mul(1_000_000),
            );
            let fingerprint = match daemon.store.get(Kind::User, &user)? {
                Some(Object::User(u)) => session::fingerprint(&u),
                _ => return Ok(respond(401, "unauthorized", "wrong user or password")),
            };
            let record = SessionRecord::V2 {
                user: user.clone(),
                address: peer,
                created_us: now,
                expires_us,
                fingerprint,
            };
            daemon.store.data_write(|t| {
                // Drop expired sessions while here, so the table stays small.
                let mut expired = Vec::new();
                t.scan(
                    Table::Session,
                    (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
                    crate::store::data::Order::Ascending,
                    |k, v| {
                        // Expired, or from before fingerprints (`V1`).
                        if let Some(r) = session::decode::<SessionRecord>(v)
                            && (r.expires_us() <= now || matches!(r, SessionRecord::V1 { .. }))
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
        StepCall::Session { token } => {
            let origin = match session(daemon, token.as_deref(), peer) {
                Ok(o) => o,
                Err(refused) => return Ok(refused),
            };
            let caller = match super::users::caller(daemon, &origin) {
                Ok(c) => c,
                Err(e) => return Ok(respond(api::status_of(e.code), "denied", &e.message)),
            };
            let permissions: Vec<String> = caller
                .role
                .permissions
                .iter()
                .map(ToString::to_string)
                .collect();
            Ok(StepReply::Response {
                status: 200,
                body: serde_json::json!({
                    "user": origin.user,
                    "role": caller.role.name,
                    "permissions": permissions,
                    "tenant": caller.scope,
                })
                .to_string(),
            })
        }
        // Routed by `on_event` before it gets here.
        StepCall::Run { answer, .. } => {
            drop(answer);
            Ok(respond(500, "internal", "command not routed"))
        }
    }
}

/// The 429 of a locked (user, address) pair.
fn locked(secs: u64) -> StepReply {
    respond(
        429,
        "locked",
        &format!("too many failed logins; try again in {secs} s"),
    )
}

/// A login name as the log shows it: a user that exists by name, anything
/// else (a typo, a password typed into the name field) by length only.
fn shown_user(daemon: &Daemon, user: &str) -> String {
    match daemon.store.get(Kind::User, user) {
        Ok(Some(_)) => format!("{user:?}"),
        _ => format!("an unknown user name ({} bytes)", user.len()),
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

/// The address a connection counts against: IPv4-mapped addresses as the
/// IPv4 address they are, IPv6 by its /64 (one host's usual share; one
/// client can take any number of addresses inside it).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Slots {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Slots {
    /// Takes a slot for `peer`, or `false` if one limit is reached.
    fn take(&mut self, key: IpAddr) -> bool {
        let mine = self.by_address.get(&key).copied().unwrap_or(0);
        if self.total >= MAX_CLIENTS || mine >= PER_ADDRESS {
            return false;
        }
        self.total += 1;
        self.by_address.insert(key, mine + 1);
        true
    }

    fn give_back(&mut self, key: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.by_address.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_address.remove(&key);
            }
        }
    }
}

/// Gives the slot back when the connection's task ends, however it ends.
struct Slot {
    slots: Rc<RefCell<Slots>>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.borrow_mut().give_back(self.key);
    }
}

pub async fn accept_loop(
    ex: Rc<LocalExecutor<'static>>,
    listener: Async<TcpListener>,
    tls: Arc<rustls::ServerConfig>,
    events: Sender<Event>,
    pool: HashPool,
) {
    let acceptor = futures_rustls::TlsAcceptor::from(tls);
    let slots = Rc::new(RefCell::new(Slots::default()));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("mgmt: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let key = client_key(peer.ip());
        if !slots.borrow_mut().take(key) {
            // Refused before TLS: a FIN, not a handshake we pay for.
            let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
            continue;
        }
        let slot = Slot {
            slots: slots.clone(),
            key,
        };
        let acceptor = acceptor.clone();
        let events = events.clone();
        let pool = pool.clone();
        let peer = peer.ip().to_canonical();
        ex.spawn(async move {
            serve(acceptor, stream, peer, events, pool).await;
            drop(slot);
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

/// What goes back to the client.
struct Answer {
    status: u16,
    body: String,
    /// `Allow` of a 405.
    allow: Option<&'static str>,
}

impl Answer {
    fn new(status: u16, body: String) -> Answer {
        Answer {
            status,
            body,
            allow: None,
        }
    }

    fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer::new(status, error_body(code, message))
    }
}

/// The head of `answer`; `token_sent` picks the RFC 6750 error of a 401.
fn head_of(answer: &Answer, token_sent: bool) -> String {
    let status = answer.status;
    let reason = crate::http::response::reason(status);
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        answer.body.len()
    );
    // JSON is never a page: nothing may run or frame it.
    head.push_str(
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n",
    );
    if status == 401 {
        // RFC 9110 15.5.2 / RFC 6750 3: every 401 names the scheme.
        head.push_str("WWW-Authenticate: Bearer realm=\"kpbx\"");
        if token_sent {
            head.push_str(", error=\"invalid_token\"");
        }
        head.push_str("\r\n");
    }
    if let Some(allow) = answer.allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    if status == 503 {
        head.push_str("Retry-After: 5\r\n");
    }
    head.push_str("\r\n");
    head
}

async fn serve(
    acceptor: futures_rustls::TlsAcceptor,
    stream: Async<TcpStream>,
    peer: IpAddr,
    events: Sender<Event>,
    pool: HashPool,
) {
    let Some(Ok(mut tls)) = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
        return;
    };
    let mut token_sent = false;
    let answer = match read_request(&mut tls).await {
        Err(e) => Answer {
            allow: e.allow,
            ..Answer::error(e.status, e.code, &e.message)
        },
        Ok((head, _)) if !head.path.as_str().starts_with("/api/") => {
            // The web console's files: the same response code as
            // provisioning's `http::Server` (plan, validators, heads).
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let date = crate::http::response::http_date_bytes(now);
            let r = crate::http::assets::respond(
                head.method,
                head.path.as_str(),
                &head.headers,
                std::str::from_utf8(&date).unwrap_or_default(),
            );
            write_and_close(&mut tls, &r.head, r.body).await;
            return;
        }
        Ok((head, body)) => match api::bearer(&head).and_then(|token| {
            token_sent = token.is_some();
            Ok((token, api::decode(&head, &body)?))
        }) {
            Err(e) => Answer {
                allow: e.allow,
                ..Answer::error(e.status, e.code, &e.message)
            },
            Ok((
                token,
                ApiCall::Export {
                    command,
                    content_type,
                    file_name,
                },
            )) => {
                let file = (content_type, file_name.as_str());
                match export(command, file, token, peer, &events, &mut tls).await {
                    Some(refused) => refused,
                    None => return,
                }
            }
            Ok((token, call)) => run(call, token, peer, &events, &pool).await,
        },
    };
    let head = head_of(&answer, token_sent);
    write_and_close(&mut tls, head.as_bytes(), answer.body.as_bytes()).await;
}

/// Runs a streamed command (`AuditExport`) and writes its chunks as they
/// come, `Transfer-Encoding: chunked` (memory stays at the channel's four
/// chunks whatever the export's size). `None`: answered (a failure after
/// the first chunk ends the connection without the last chunk, so the
/// client sees a cut transfer, not a short file). `Some`: the refusal to
/// answer instead (no session, no permission, bad filter).
async fn export<S: AsyncRead + AsyncWrite + Unpin>(
    command: Command,
    (content_type, file_name): (&str, &str),
    token: Option<String>,
    peer: IpAddr,
    events: &Sender<Event>,
    tls: &mut S,
) -> Option<Answer> {
    let unavailable = || Answer::error(503, "unavailable", "daemon did not answer");
    let replies = match route(events, token, command, peer).await {
        Ok(replies) => replies,
        Err(refused) => return Some(refused),
    };
    let mut first = true;
    loop {
        let Some(Ok(reply)) = timeout(REPLY_TIMEOUT, replies.recv()).await else {
            return if first { Some(unavailable()) } else { None };
        };
        let bytes = match reply {
            Reply::Error(e) if first => {
                let status = api::status_of(e.code);
                let out =
                    crate::cli::render::render(&Reply::Error(e), true, &jiff::tz::TimeZone::UTC);
                return Some(Answer::new(status, out.stdout));
            }
            Reply::Chunk(b) => b,
            Reply::StreamEnd(_) => Vec::new(),
            // An error mid-stream, or anything else: cut the transfer.
            _ => return None,
        };
        let mut out = Vec::with_capacity(bytes.len() + 1024);
        if first {
            first = false;
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
                     Content-Disposition: attachment; filename=\"{file_name}\"\r\n\
                     Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n\
                     X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }
        let last = bytes.is_empty();
        if !last {
            out.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
            out.extend_from_slice(&bytes);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        let wrote = timeout(WRITE_TIMEOUT, async {
            tls.write_all(&out).await?;
            tls.flush().await
        })
        .await;
        if !matches!(wrote, Some(Ok(()))) {
            return None;
        }
        if last {
            let _ = timeout(WRITE_TIMEOUT, tls.close()).await;
            return None;
        }
    }
}

/// Writes one response and closes the connection.
async fn write_and_close<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S, head: &[u8], body: &[u8]) {
    let write = async {
        tls.write_all(head).await?;
        tls.write_all(body).await?;
        tls.flush().await?;
        tls.close().await
    };
    let _ = timeout(WRITE_TIMEOUT, write).await;
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

fn read_error(status: u16, message: String) -> ApiError {
    ApiError {
        status,
        code: if status == 408 {
            "timeout"
        } else {
            "bad_request"
        },
        message,
        allow: None,
    }
}

/// Appends the next read to `buf`; the end of the stream is an error
/// saying what was still missing.
async fn read_more<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    chunk: &mut [u8; 4096],
    missing: &str,
) -> Result<(), ApiError> {
    let n = s
        .read(chunk)
        .await
        .map_err(|e| read_error(400, format!("read failed: {e}")))?;
    if n == 0 {
        return Err(read_error(400, missing.to_string()));
    }
    buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    Ok(())
}

/// Reads one request: the head within [`HEAD_TIMEOUT`], the body within
/// [`BODY_TIMEOUT`] after it.
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<(Request, Vec<u8>), ApiError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let read_head = async {
        loop {
            read_more(
                s,
                &mut buf,
                &mut chunk,
                "connection closed before a whole request",
            )
            .await?;
            match request::parse_head_with(&buf, &api::LIMITS) {
                Ok(Status::Complete(head)) => return Ok(head),
                Ok(Status::Partial) => {}
                Err(e) => return Err(api::refused(e)),
            }
        }
    };
    let head = timeout(HEAD_TIMEOUT, read_head)
        .await
        .ok_or_else(|| read_error(408, "request head not received in time".to_string()))??;
    let want = head.head_len + usize::try_from(head.headers.content_length).unwrap_or(usize::MAX);
    let read_body = async {
        while buf.len() < want {
            read_more(s, &mut buf, &mut chunk, "body shorter than Content-Length").await?;
        }
        Ok(())
    };
    timeout(BODY_TIMEOUT, read_body)
        .await
        .ok_or_else(|| read_error(408, "request body not received in time".to_string()))??;
    let body = buf.get(head.head_len..want).unwrap_or(&[]).to_vec();
    Ok((head, body))
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

/// Checks the session and hands `command` to the loop's one route; its
/// answer (or its chunks) come on the receiver. `Err`: the answer to send
/// instead (no session, no permission, or the daemon did not answer).
async fn route(
    events: &Sender<Event>,
    token: Option<String>,
    command: Command,
    peer: IpAddr,
) -> Result<smol::channel::Receiver<Reply>, Answer> {
    let (answer, replies) = smol::channel::bounded(4);
    match step(
        events,
        StepCall::Run {
            token,
            command,
            answer,
        },
        peer,
    )
    .await
    {
        Some(StepReply::Routed) => Ok(replies),
        Some(StepReply::Response { status, body }) => Err(Answer::new(status, body)),
        Some(StepReply::Hash(..)) | None => {
            Err(Answer::error(503, "unavailable", "daemon did not answer"))
        }
    }
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
    pool: &HashPool,
) -> Answer {
    let unavailable = || Answer::error(503, "unavailable", "daemon did not answer");
    let reply = match call {
        ApiCall::Login { user, password } => {
            let check = step(events, StepCall::LoginCheck { user: user.clone() }, peer).await;
            let (hash, ticket) = match check {
                Some(StepReply::Hash(h, t)) => (h, t),
                Some(StepReply::Response { status, body }) => return Answer::new(status, body),
                Some(StepReply::Routed) | None => return unavailable(),
            };
            // A login from an address this user logged in from before
            // waits in the first lane: a flood of strangers' logins fills
            // only the other one.
            let lane = if ticket.known() {
                Lane::First
            } else {
                Lane::Other
            };
            let verified = pool
                .run(lane, move || match hash {
                    Some(h) => password::verify(&password, &h),
                    None => {
                        let _ = password::verify(&password, dummy_hash());
                        false
                    }
                })
                .await;
            // Settled either way (a full pool gives the reservation back).
            step(
                events,
                StepCall::LoginResult {
                    user,
                    ticket,
                    ok: verified,
                },
                peer,
            )
            .await
        }
        ApiCall::Logout => step(events, StepCall::Logout { token }, peer).await,
        ApiCall::Session => step(events, StepCall::Session { token }, peer).await,
        // Streamed by `export` before it gets here.
        ApiCall::Export { .. } => return Answer::error(500, "internal", "export not streamed"),
        ApiCall::Run(command) => {
            let replies = match route(events, token, command, peer).await {
                Ok(replies) => replies,
                Err(refused) => return refused,
            };
            let Some(Ok(reply)) = timeout(REPLY_TIMEOUT, replies.recv()).await else {
                return unavailable();
            };
            let status = match &reply {
                Reply::Error(e) => api::status_of(e.code),
                _ => 200,
            };
            let out = crate::cli::render::render(&reply, true, &jiff::tz::TimeZone::UTC);
            return Answer::new(status, out.stdout);
        }
    };
    match reply {
        Some(StepReply::Response { status, body }) => Answer::new(status, body),
        Some(StepReply::Hash(..) | StepReply::Routed) | None => unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_limit_per_address_and_in_all() {
        let mut s = Slots::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            assert!(s.take(a));
        }
        assert!(!s.take(a), "per-address limit");
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(s.take(b), "another address still gets in");
        s.give_back(a);
        assert!(s.take(a), "a slot given back is free again");
        let mut n = 0u32;
        while s.take(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))) {
            n += 1;
        }
        assert_eq!(s.total, MAX_CLIENTS, "total limit");
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let k = |t: &str| client_key(t.parse().unwrap());
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), k("192.0.2.1"));
    }
}
