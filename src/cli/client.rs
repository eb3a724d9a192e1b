//! The `kpbx` process: parse, send over the control socket, print.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{Action, exit};
use crate::control::wire;
use crate::control::{Command, Reply, Request};

/// How long to wait for the daemon's answer.
const TIMEOUT: Duration = Duration::from_secs(150);

/// Runs `kpbx` with its arguments (without the program name).
pub fn main(args: &[String]) -> ExitCode {
    let invocation = match super::parse(args) {
        Ok(i) => i,
        Err(e) => return fail(exit::USAGE, &e),
    };
    let command = match invocation.action {
        Action::Help(text) => {
            show(&format!("{text}\n"));
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            show(&format!("kpbx {}\n", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Action::RoleShow(name) => return role_show(&invocation.socket, invocation.json, &name),
        Action::Export { command, output } => {
            return export(
                &invocation.socket,
                invocation.json,
                command,
                output.as_deref(),
            );
        }
        Action::Run(command) => match read_content_files(command) {
            Ok(command) => command,
            Err(e) => return fail(exit::USAGE, &e),
        },
        Action::Import { kind, path } => match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(csv) => Command::ProvImport { kind, csv },
                Err(_) => return fail(exit::USAGE, &format!("{}: not UTF-8 text", path.display())),
            },
            Err(e) => return fail(exit::USAGE, &format!("cannot read {}: {e}", path.display())),
        },
    };
    let socket = invocation
        .socket
        .or_else(|| std::env::var_os("KPBX_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_SOCKET));
    let file = match &command {
        Command::CdrImport { path, .. } => match open_import(path) {
            Ok(file) => Some(file),
            Err(e) => return fail(exit::USAGE, &e),
        },
        _ => None,
    };
    let layout = super::render::Layout::of(&command);
    let (reply, tz) = match exchange(&socket, &Request { command }, file.as_ref()) {
        Ok(answer) => (answer.reply, box_zone(&answer.zone)),
        Err((code, message)) => return fail(code, &message),
    };
    emit(super::render::render_as(
        &reply,
        invocation.json,
        &tz,
        layout,
    ))
}

/// `content=@FILE` fields are read from files here, on the console's side;
/// so are passwords given as `-` (from standard input, first line).
fn read_content_files(mut command: Command) -> Result<Command, String> {
    let stdin_line = || -> Result<String, String> {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    match &mut command {
        Command::UserPasswd { password, .. } if password == "-" => *password = stdin_line()?,
        Command::UserAdd { fields } | Command::UserSet { fields, .. } => {
            for (key, value) in fields.iter_mut() {
                if key == "password" && value == "-" {
                    *value = stdin_line()?;
                }
            }
        }
        _ => {}
    }
    if let Command::ProvAdd { fields, .. } | Command::ProvSet { fields, .. } = &mut command {
        for (key, value) in fields.iter_mut() {
            if let Some(path) = value.strip_prefix('@').filter(|_| key == "content") {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                *value = String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 text"))?;
            }
        }
    }
    Ok(command)
}

fn socket_path(socket: &Option<PathBuf>) -> PathBuf {
    socket
        .clone()
        .or_else(|| std::env::var_os("KPBX_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_SOCKET))
}

/// A streamed export: chunks go to `output` (or stdout) as they arrive; the
/// closing summary is printed to stdout when writing to a file, to stderr
/// otherwise. A failed export removes the partial file.
fn export(
    socket: &Option<PathBuf>,
    json: bool,
    command: Command,
    output: Option<&std::path::Path>,
) -> ExitCode {
    let socket = socket_path(socket);
    let mut stream = match connect(&socket) {
        Ok(s) => s,
        Err((code, message)) => return fail(code, &message),
    };
    if let Err((code, message)) = send(&mut stream, &Request { command }) {
        return fail(code, &message);
    }
    let mut sink: Box<dyn Write> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                return fail(
                    exit::USAGE,
                    &format!("cannot create {}: {e}", path.display()),
                );
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let abandon = |code: u8, message: &str| {
        if let Some(path) = output {
            let _ = std::fs::remove_file(path);
        }
        fail(code, message)
    };
    loop {
        let (reply, tz) = match receive(&mut stream) {
            Ok(answer) => (answer.reply, box_zone(&answer.zone)),
            Err((code, message)) => return abandon(code, &message),
        };
        match reply {
            Reply::Chunk(bytes) => {
                if let Err(e) = sink.write_all(&bytes) {
                    return abandon(exit::FAILED, &format!("cannot write the export: {e}"));
                }
            }
            Reply::StreamEnd(end) => {
                if let Err(e) = sink.flush() {
                    return abandon(exit::FAILED, &format!("cannot write the export: {e}"));
                }
                drop(sink);
                let out = super::render::render(&Reply::StreamEnd(end), json, &tz);
                if output.is_some() {
                    show(&out.stdout);
                } else {
                    show_err(&out.stdout);
                }
                return ExitCode::SUCCESS;
            }
            other => {
                drop(sink);
                let out = super::render::render(&other, json, &tz);
                if let Some(path) = output {
                    let _ = std::fs::remove_file(path);
                }
                if let Some(line) = out.stderr {
                    show_err(&format!("{line}\n"));
                }
                return ExitCode::from(if out.code == exit::OK {
                    exit::PROTOCOL
                } else {
                    out.code
                });
            }
        }
    }
}

fn connect(socket: &std::path::Path) -> Result<UnixStream, (u8, String)> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        (
            exit::UNREACHABLE,
            format!(
                "cannot reach kpbxd at {}: {e}\n  \
                 is it running? point kpbx at its socket with --socket PATH or \
                 KPBX_SOCKET=PATH (under `make run`: var/kpbxd.sock)",
                socket.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(protocol)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(protocol)?;
    Ok(stream)
}

fn protocol(e: std::io::Error) -> (u8, String) {
    let what = if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        "kpbxd did not answer in time".to_string()
    } else {
        format!("connection to kpbxd failed: {e}")
    };
    (exit::PROTOCOL, what)
}

fn send(stream: &mut UnixStream, request: &Request) -> Result<(), (u8, String)> {
    stream
        .write_all(&wire::encode_request(request))
        .map_err(protocol)
}

/// `kpbx role show NAME`: the role list, narrowed to one role and shown as
/// a record.
fn role_show(socket: &Option<PathBuf>, json: bool, name: &str) -> ExitCode {
    let socket = socket_path(socket);
    let answer = match exchange(
        &socket,
        &Request {
            command: Command::RoleList,
        },
        None,
    ) {
        Ok(answer) => answer,
        Err((code, message)) => return fail(code, &message),
    };
    let tz = box_zone(&answer.zone);
    let reply = match answer.reply {
        Reply::Objects(roles) => match roles.into_iter().find(|r| r.id == name) {
            Some(role) => Reply::Objects(vec![role]),
            None => {
                return fail(
                    exit::FAILED,
                    &format!("no role {name:?}; see kpbx role list"),
                );
            }
        },
        other => other,
    };
    emit(super::render::render_as(
        &reply,
        json,
        &tz,
        super::render::Layout::Any,
    ))
}

/// The box's zone as the daemon named it. The console never falls back on
/// its own environment (`TZ`): a name this host's zone database lacks is
/// shown as UTC, which the rendering then names.
fn box_zone(name: &str) -> jiff::tz::TimeZone {
    if name == "UTC" {
        return jiff::tz::TimeZone::UTC;
    }
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

fn receive(stream: &mut UnixStream) -> Result<wire::Answer, (u8, String)> {
    let mut header = [0u8; wire::HEADER_LEN];
    stream.read_exact(&mut header).map_err(protocol)?;
    let bad = |e: wire::FrameError| (exit::PROTOCOL, format!("bad answer from kpbxd: {e}"));
    let len = wire::parse_header(&header, wire::MAX_REPLY).map_err(bad)?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).map_err(protocol)?;
    wire::decode_reply(&payload).map_err(bad)
}

/// Prints a rendered reply and ends with its exit code.
fn emit(out: super::render::Output) -> ExitCode {
    show(&out.stdout);
    if let Some(line) = out.stderr {
        show_err(&format!("{line}\n"));
    }
    ExitCode::from(out.code)
}

/// Writes to standard output. A reader that went away (`kpbx --help | head`)
/// is not an error of the command: the rest is dropped, where `print!` would
/// panic on the broken pipe (Rust ignores SIGPIPE, so the write fails).
fn show(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes to standard error, as [`show`] does to standard output
/// (`kpbx ... 2>&1 | head`).
fn show_err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
}

fn fail(code: u8, message: &str) -> ExitCode {
    show_err(&format!("kpbx: {message}\n"));
    ExitCode::from(code)
}

/// One request, one reply. An import passes its open file along and waits
/// as long as the daemon may take for it.
fn exchange(
    socket: &std::path::Path,
    request: &Request,
    file: Option<&std::fs::File>,
) -> Result<wire::Answer, (u8, String)> {
    let mut stream = connect(socket)?;
    match file {
        Some(file) => {
            let wait = crate::control::IMPORT_MAX_TIME + TIMEOUT;
            stream.set_read_timeout(Some(wait)).map_err(protocol)?;
            crate::control::fdpass::send_with_file(&stream, file, &wire::encode_request(request))
                .map_err(protocol)?;
        }
        None => send(&mut stream, request)?,
    }
    receive(&mut stream)
}

/// Opens a file to import with this user's rights: the daemon reads only
/// what the caller could read itself.
fn open_import(path: &str) -> Result<std::fs::File, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{path}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{path}: not a regular file"));
    }
    if meta.len() > crate::control::IMPORT_MAX_BYTES {
        return Err(format!(
            "{path}: {} bytes, more than the import limit of {} MiB",
            meta.len(),
            crate::control::IMPORT_MAX_BYTES >> 20
        ));
    }
    Ok(file)
}
