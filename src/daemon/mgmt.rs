//! Adapter: the management API (JSON) and the web console's files over
//! HTTPS on `mgmt_listen`, a [`Site`] on the one HTTP stack (`http::Server`:
//! accept, limits, TLS, deadlines, head parsing, bodies, chunked bodies).
//!
//! Its settings ([`http_config`]): one request per connection
//! (`Connection: close`). Connections: at most [`PER_ADDRESS`] from one
//! client address and [`MAX_CLIENTS`] in all; one over either limit is
//! closed at once, before TLS (a 503 would need a TLS handshake first,
//! which is the work the limit is there to refuse). Deadlines:
//! [`HANDSHAKE_TIMEOUT`] for TLS, [`HEAD_TIMEOUT`] for the whole head (from
//! accept), [`BODY_TIMEOUT`] for the body (totals, not per read, so a
//! client trickling bytes is cut off). Sizes: `auth::api::LIMITS`.
//!
//! Decoding is `auth::api` (pure); the site hands each call to the event
//! loop as [`Event::Mgmt`]. A command goes,
//! after the session check, through the console's own routing
//! (`super::route`: permission, thread offloads, password hashing on the
//! pool, `ha switch` wait, HA confirmation). A login takes two trips: the
//! loop checks the lockout and hands out the stored hash, the password is
//! verified on the hashing pool (`workers::HashPool`, PBKDF2 is slow on
//! purpose), and the loop records the outcome (session or failure).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use smol::channel::Sender;

use super::workers::{HashPool, Lane};
use super::{Daemon, Event};
use crate::auth::api::{self, ApiCall, ApiError};
use crate::auth::session::{self, SessionRecord};
use crate::auth::{lockout, password};
use crate::clock::Clock;
use crate::control::{Command, Reply};
use crate::http::request::{self, Request};
use crate::http::{self, Conn};
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

/// The management listener's service on the one HTTP stack (`http::Server`):
/// the API under `/api/`, the web console's files everywhere else.
pub struct Site {
    pub events: Sender<Event>,
    pub pool: HashPool,
}

/// The management listener's transport settings (see the module head).
pub fn http_config(tls: Arc<rustls::ServerConfig>) -> http::Config {
    http::Config {
        limits: api::LIMITS,
        handshake_timeout: HANDSHAKE_TIMEOUT,
        head_timeout: HEAD_TIMEOUT,
        body_timeout: BODY_TIMEOUT,
        send_timeout: WRITE_TIMEOUT,
        max_connections: MAX_CLIENTS,
        per_address: PER_ADDRESS,
        max_requests_per_connection: 1,
        tls: Some(tls),
        ..http::Config::default()
    }
}

impl http::Site for Site {
    fn handle(
        &self,
        req: &Request,
        body: &[u8],
        info: &http::RequestInfo<'_>,
        conn: Conn,
        date: &str,
    ) -> Option<http::Pending> {
        if !req.path.as_str().starts_with("/api/") {
            // The web console's files: the same response code as
            // provisioning's files (plan, validators, heads).
            let r = http::assets::respond(req.method, req.path.as_str(), &req.headers, date, conn);
            return Some(Box::pin(std::future::ready(r)));
        }
        let peer = info.peer.ip().to_canonical();
        let decoded = api::bearer(req).and_then(|token| Ok((token, api::decode(req, body)?)));
        let (events, pool) = (self.events.clone(), self.pool.clone());
        Some(Box::pin(async move {
            let (token, call) = match decoded {
                Ok(d) => d,
                Err(e) => return response(Answer::refused(e), false, conn),
            };
            let token_sent = token.is_some();
            let answer = match call {
                ApiCall::Export {
                    command,
                    content_type,
                    file_name,
                } => {
                    let file = (content_type, file_name.as_str());
                    match export(command, file, token, peer, &events, conn).await {
                        Ok(streamed) => return streamed,
                        Err(refused) => refused,
                    }
                }
                call => run(call, token, peer, &events, &pool).await,
            };
            response(answer, token_sent, conn)
        }))
    }

    fn refusal(
        &self,
        _status: u16,
        why: Option<request::Error>,
        _date: &str,
    ) -> Option<http::Response> {
        let answer = match why {
            Some(e) => Answer::refused(api::refused(e)),
            None => Answer::error(408, "timeout", "request head not received in time"),
        };
        Some(response(answer, false, Conn::Close))
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

    fn refused(e: ApiError) -> Answer {
        Answer {
            allow: e.allow,
            ..Answer::error(e.status, e.code, &e.message)
        }
    }
}

/// The JSON response of `answer`; `token_sent` picks the RFC 6750 error of a 401.
fn response(answer: Answer, token_sent: bool, conn: Conn) -> http::Response {
    let status = answer.status;
    let reason = http::response::reason(status);
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n",
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
    let mut head = head.into_bytes();
    http::response::write_conn(&mut head, conn);
    http::Response {
        status,
        head,
        body: http::Body::Bytes(answer.body.into_bytes()),
    }
}

/// Runs a streamed command (`AuditExport`): its chunks go out as they
/// come, `Transfer-Encoding: chunked` (memory stays at the channel's four
/// chunks whatever the export's size; a failure after the first chunk cuts
/// the transfer). `Err`: the refusal to answer instead (no session, no
/// permission, bad filter).
async fn export(
    command: Command,
    (content_type, file_name): (&str, &str),
    token: Option<String>,
    peer: IpAddr,
    events: &Sender<Event>,
    conn: Conn,
) -> Result<http::Response, Answer> {
    let unavailable = || Answer::error(503, "unavailable", "daemon did not answer");
    let replies = route(events, token, command, peer).await?;
    let first = match timeout(REPLY_TIMEOUT, replies.recv()).await {
        Some(Ok(Reply::Chunk(b))) => b,
        Some(Ok(Reply::StreamEnd(_))) => Vec::new(),
        Some(Ok(Reply::Error(e))) => {
            let status = api::status_of(e.code);
            let out = crate::cli::render::render(&Reply::Error(e), true, &jiff::tz::TimeZone::UTC);
            return Err(Answer::new(status, out.stdout));
        }
        _ => return Err(unavailable()),
    };
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\
         Content-Disposition: attachment; filename=\"{file_name}\"\r\n\
         Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\n"
    )
    .into_bytes();
    http::response::write_conn(&mut head, conn);
    // The first chunk, then the rest as they come; anything but a chunk or
    // the end (an error mid-stream, silence) ends the stream early: cut.
    let chunks = smol::stream::unfold(
        (Some(first), Some(replies)),
        |(first, replies)| async move {
            if let Some(chunk) = first {
                let more = if chunk.is_empty() { None } else { replies };
                return Some((chunk, (None, more)));
            }
            let replies = replies?;
            match timeout(REPLY_TIMEOUT, replies.recv()).await {
                Some(Ok(Reply::Chunk(b))) if !b.is_empty() => Some((b, (None, Some(replies)))),
                Some(Ok(Reply::Chunk(_) | Reply::StreamEnd(_))) => Some((Vec::new(), (None, None))),
                _ => None,
            }
        },
    );
    Ok(http::Response {
        status: 200,
        head,
        body: http::Body::Chunks(Box::pin(chunks)),
    })
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
