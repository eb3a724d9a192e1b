//! The `kpbx` console CLI: argument grammar and rendering.
//!
//! Conventions for every command: `kpbx <area> <verb> [args]`; `--help`
//! anywhere; tables by default, `--json` for scripts; exit code 0 on
//! success, non-zero with a one-line error on stderr otherwise (see
//! [`exit`]).
//!
//! Invariant: pure. `grammar` turns arguments into a [`Command`]; `render`
//! turns a [`Reply`](crate::control::Reply) into text. The binary does the
//! socket I/O.

pub mod audit;
pub mod cdr_render;
pub mod client;
pub mod render;
pub mod task_render;

use std::path::PathBuf;

use crate::control::Command;

/// Exit codes of `kpbx`.
pub mod exit {
    pub const OK: u8 = 0;
    /// The daemon refused or failed the request, or a check failed.
    pub const FAILED: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// The daemon could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// The daemon's answer was not understood, or did not come in time.
    pub const PROTOCOL: u8 = 4;
}

pub const DEFAULT_SOCKET: &str = "/run/kpbxd.sock";

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run(Command),
    /// `prov KIND import FILE`: the client reads the file, then runs
    /// `Command::ProvImport`.
    Import {
        kind: String,
        path: PathBuf,
    },
    Help(String),
    Version,
    /// `role show NAME`: one role (built-in or custom) with its
    /// permissions, picked from `Command::RoleList` by the client.
    RoleShow(String),
    /// A streamed export: the client writes the data to `output` (or
    /// stdout) as it arrives.
    Export {
        command: Command,
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--socket PATH`, else `$KPBX_SOCKET`, else [`DEFAULT_SOCKET`].
    pub socket: Option<PathBuf>,
    pub json: bool,
    pub action: Action,
}

/// One verb of one area, for parsing and for help.
struct Verb {
    area: &'static str,
    verb: &'static str,
    args: &'static str,
    about: &'static str,
}

const VERBS: &[Verb] = &[
    Verb {
        area: "task",
        verb: "add",
        args: "FIELD=VALUE...",
        about: "Create a scheduled task (Send CDR / Send Call Center CDR); prints its id",
    },
    Verb {
        area: "task",
        verb: "set",
        args: "ID FIELD=VALUE...",
        about: "Change fields of a task",
    },
    Verb {
        area: "task",
        verb: "delete",
        args: "ID...",
        about: "Delete tasks (their history stays)",
    },
    Verb {
        area: "task",
        verb: "list",
        args: "",
        about: "List the tasks with their next run",
    },
    Verb {
        area: "task",
        verb: "show",
        args: "ID",
        about: "Show one task",
    },
    Verb {
        area: "task",
        verb: "run",
        args: "ID",
        about: "Start a task now in the background; its schedule does not move",
    },
    Verb {
        area: "task",
        verb: "history",
        args: "[ID] [--limit N]",
        about: "Runs, newest first: interval, records, file, delivery per recipient",
    },
    Verb {
        area: "mail",
        verb: "configure",
        args: "FIELD=VALUE...",
        about: "Set the SMTP server, security, credentials and sender",
    },
    Verb {
        area: "mail",
        verb: "show",
        args: "",
        about: "Show the SMTP settings (password masked)",
    },
    Verb {
        area: "mail",
        verb: "test",
        args: "ADDRESS",
        about: "Send a test message now and print what the server said",
    },
    Verb {
        area: "mail",
        verb: "retry",
        args: "",
        about: "Retry every pending delivery now",
    },
    Verb {
        area: "mail",
        verb: "outbox",
        args: "[--limit N]",
        about: "Show the newest messages and their delivery per recipient",
    },
    Verb {
        area: "status",
        verb: "",
        args: "",
        about: "Show version, uptime, data dir, store and services",
    },
    Verb {
        area: "audit",
        verb: "list",
        args: "[--limit N]",
        about: "The current month's entries; with --limit the newest N of the whole log (at most 1000)",
    },
    Verb {
        area: "audit",
        verb: "list",
        args: "--month YYYY-MM|--day D|--user U|--type T|--action A|--page N|--page-size N|--columns C,..",
        about: "Entries of a month (default the current one) or a day of it, filtered, newest first, paged",
    },
    Verb {
        area: "audit",
        verb: "export",
        args: "--format xlsx|csv|json|xml [--month YYYY-MM] [--day D] [--user U] [--type T] [--action A] [--columns C,..] [-o FILE]",
        about: "Export a month's (or day's) entries, filtered, with the chosen columns; default stdout",
    },
    Verb {
        area: "audit",
        verb: "show",
        args: "TXID",
        about: "Every object a transaction touched, field by field before and after (secrets masked)",
    },
    Verb {
        area: "audit",
        verb: "restore",
        args: "TXID [--force]",
        about: "Put a transaction's objects back as before it, as a new transaction; refused if changed later",
    },
    Verb {
        area: "audit",
        verb: "verify",
        args: "",
        about: "Check the audit log's hash chain; name the first bad entry",
    },
    Verb {
        area: "system",
        verb: "show",
        args: "",
        about: "Show the system settings, their values and defaults",
    },
    Verb {
        area: "system",
        verb: "set",
        args: "KEY=VALUE...",
        about: "Change system settings, all in one audited transaction",
    },
    Verb {
        area: "system",
        verb: "unset",
        args: "KEY...",
        about: "Reset system settings to their defaults, in one transaction",
    },
    Verb {
        area: "prov",
        verb: "KIND list",
        args: "",
        about: "List provisioning objects of a KIND (built-in ones first)",
    },
    Verb {
        area: "prov",
        verb: "KIND show",
        args: "ID",
        about: "Show one object with all its fields (secrets masked)",
    },
    Verb {
        area: "prov",
        verb: "KIND add",
        args: "FIELD=VALUE...",
        about: "Create an object; content=@FILE reads a template from a file",
    },
    Verb {
        area: "prov",
        verb: "KIND set",
        args: "ID FIELD=VALUE...",
        about: "Change fields of an object",
    },
    Verb {
        area: "prov",
        verb: "KIND del",
        args: "ID...",
        about: "Delete objects (refused while others use them)",
    },
    Verb {
        area: "prov",
        verb: "KIND import",
        args: "FILE.csv",
        about: "Create or update objects from CSV (header row = field names); all rows or none",
    },
    Verb {
        area: "prov",
        verb: "template copy",
        args: "FROM NEW [tenant=UUID]",
        about: "Copy a template (built-in ones too) to edit it",
    },
    Verb {
        area: "prov",
        verb: "files",
        args: "",
        about: "List the generated files, and devices that got none",
    },
    Verb {
        area: "prov",
        verb: "urls",
        args: "",
        about: "What to set where phones look for this box: DHCP options, the URL to type in, the TFTP path (per vendor in use, per tenant)",
    },
    Verb {
        area: "prov",
        verb: "show",
        args: "FILE",
        about: "Print a generated file",
    },
    Verb {
        area: "prov",
        verb: "log",
        args: "[MAC]",
        about: "The last fetches of a device (or every device): time, protocol, address, User-Agent, file, result",
    },
    Verb {
        area: "prov",
        verb: "unknown",
        args: "",
        about: "Unassigned devices that asked for files, and addresses blocked for scanning",
    },
    Verb {
        area: "prov",
        verb: "redirect status",
        args: "",
        about: "Each device's registration on its redirection server: provisioned flag, pending work, last error",
    },
    Verb {
        area: "prov",
        verb: "redirect sync",
        args: "",
        about: "Retry every pending redirection-server registration now",
    },
    Verb {
        area: "prov",
        verb: "render",
        args: "MAC",
        about: "Preview a device's files without saving anything",
    },
    Verb {
        area: "ha",
        verb: "configure",
        args: "KEY=VALUE...",
        about: "Change the HA configuration (checked, audited); saving (re)starts HA",
    },
    Verb {
        area: "ha",
        verb: "show",
        args: "",
        about: "Show the stored HA configuration (pairing code masked)",
    },
    Verb {
        area: "ha",
        verb: "status",
        args: "",
        about: "Show both nodes, pairing, heartbeats per path, resources and holder",
    },
    Verb {
        area: "ha",
        verb: "switch",
        args: "",
        about: "Move the resource to the other node (or take it on the passive node)",
    },
    Verb {
        area: "ha",
        verb: "disable",
        args: "",
        about: "Turn HA off on both nodes; the resource is released",
    },
    Verb {
        area: "ha",
        verb: "unpair",
        args: "",
        about: "Forget the pairing on both nodes; the active node keeps the resource",
    },
    Verb {
        area: "ha",
        verb: "pair",
        args: "",
        about: "Start pairing again after an unpair",
    },
    Verb {
        area: "ha",
        verb: "events",
        args: "",
        about: "Show the latest HA transitions with time and reason",
    },
    Verb {
        area: "cdr",
        verb: "status",
        args: "",
        about: "Followed CDR files: positions, records, malformed lines (last reasons), stored rows",
    },
    Verb {
        area: "cdr",
        verb: "import",
        args: "FILE",
        about: "Read a whole Master.csv into the store (rows already there are not duplicated)",
    },
    Verb {
        area: "cdr",
        verb: "export",
        args: "RANGE [OPTIONS]",
        about: "Export calls started in [from, to) (local time) or a named interval; default stdout",
    },
    Verb {
        area: "callcenter",
        verb: "import",
        args: "FILE",
        about: "Read a whole queue_log into the store",
    },
    Verb {
        area: "callcenter",
        verb: "export",
        args: "RANGE [OPTIONS]",
        about: "Export queue entries (and with --operator-events, agents' events) of a range",
    },
    Verb {
        area: "user",
        verb: "list",
        args: "",
        about: "Users with their role, tenant and e-mail (passwords never shown)",
    },
    Verb {
        area: "user",
        verb: "add",
        args: "NAME role=ROLE [tenant=UUID] [email=E] [password=-]",
        about: "Create a user; password=- reads the password from standard input",
    },
    Verb {
        area: "user",
        verb: "set",
        args: "NAME FIELD=VALUE...",
        about: "Change a user's role, tenant, e-mail (password=- reads a new password)",
    },
    Verb {
        area: "user",
        verb: "del",
        args: "NAME...",
        about: "Delete users (their names stay in the audit log)",
    },
    Verb {
        area: "user",
        verb: "passwd",
        args: "NAME",
        about: "Set a user's password, read from standard input (anyone may set their own)",
    },
    Verb {
        area: "role",
        verb: "list",
        args: "",
        about: "Built-in and custom roles with their permissions",
    },
    Verb {
        area: "role",
        verb: "add",
        args: "NAME permissions=AREA:read|write,...",
        about: "Create a custom role; areas: system, ha, provisioning, tasks, cdr, audit, users",
    },
    Verb {
        area: "role",
        verb: "set",
        args: "NAME permissions=...",
        about: "Change a custom role's permissions",
    },
    Verb {
        area: "role",
        verb: "show",
        args: "NAME",
        about: "Show one role, built-in or custom, with its permissions",
    },
    Verb {
        area: "role",
        verb: "del",
        args: "NAME...",
        about: "Delete custom roles (refused while users have them)",
    },
];

/// Keys of `kpbx ha configure`, for help.
const HA_KEYS: &str = "\
  role=disabled|enabled|coordinator   remote_serial=S/N (coordinator)   pairing_code=CODE (>= 8 chars)
  interface=IF local_ip=IP remote_ip=IP prefix=N
      (LAN: the resource and the 2nd heartbeat path)
  sync_interface=IF sync_local_ip=IP sync_remote_ip=IP sync_prefix=N
      (pairing and the 1st heartbeat path)
  resources=\"IP[/N][@IF] ...\"   ping_group=\"IP ...\"   default_active=local|remote
  heartbeat_interval, keepalive_warning, keepalive_out_of_service, init_timeout, ping_interval,
  ping_dampen: seconds, fractions allowed (0.1)
  serial_source=file:/PATH|dmi|devicetree   hook_dir=/PATH (acquire.d/, release.d/)";

/// Kinds of provisioning objects, for help.
const CDR_HELP: &str = "
Export RANGE: --from T --to T (local time in the box's time zone, YYYY-MM-DD[ HH:MM[:SS]],
  start inclusive, end exclusive), or --interval current-day|previous-day|current-week|
  previous-week|current-month|previous-month.
Export OPTIONS:
  --format F          csv (default), csv-detailed, xlsx, xlsx-detailed, json, xml
                      (json and xml are detailed)
  -o FILE             write to FILE (default stdout)
  --mask              mask the last three digits of phone numbers
  --delimiter , | ;   CSV delimiter;  --bom  start CSV with a UTF-8 BOM
  --operator-events   callcenter, detailed formats: agents' login, pause and membership events
";

const GLOBAL_OPTIONS: &str = "\
Options (anywhere on the line):
  --json          print machine-readable JSON (stable field names)
  --socket PATH   the daemon's control socket (default $KPBX_SOCKET, else /run/kpbxd.sock)
  -h, --help      show help for the area or verb
  --version       print the version

Exit codes: 0 success, 1 refused or check failed, 2 usage, 3 daemon unreachable, 4 protocol error";

fn synopsis(v: &Verb) -> String {
    [v.area, v.verb, v.args]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Help fits this many columns.
pub const HELP_WIDTH: usize = 100;
/// Where a command's description starts when its synopsis is short.
const HELP_COLUMN: usize = 40;

/// `text` after `first` (the start of the first line), wrapped at word
/// boundaries to [`HELP_WIDTH`]; later lines indented by `indent` columns.
fn wrap(text: &str, first: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > HELP_WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn help(area: Option<&str>, verb: Option<&str>) -> String {
    let verbs: Vec<&Verb> = VERBS
        .iter()
        .filter(|v| area.is_none_or(|a| v.area == a) && verb.is_none_or(|w| v.verb == w))
        .collect();
    let mut out = String::from("Usage: kpbx [OPTIONS] <area> <verb> [args]\n\nCommands:\n");
    for v in &verbs {
        // A short synopsis and its line side by side, else one below the
        // other; both wrapped to the help's width.
        let head = format!("kpbx {}", synopsis(v));
        if head.len() <= HELP_COLUMN - 4 {
            let first = format!("  {head:w$}  ", w = HELP_COLUMN - 4);
            out.push_str(&wrap(v.about, &first, HELP_COLUMN));
        } else {
            out.push_str(&wrap(&head, "  ", 4));
            out.push_str(&wrap(v.about, &" ".repeat(HELP_COLUMN), HELP_COLUMN));
        }
    }
    if verbs.iter().any(|v| v.area == "system") {
        out.push_str("\nSystem settings:\n");
        let width = crate::model::SettingKey::ALL
            .iter()
            .map(|k| k.name().len())
            .max()
            .unwrap_or(0);
        for key in crate::model::SettingKey::ALL {
            let text = format!("{} (default {:?})", key.help(), key.default_value());
            let first = format!("  {:width$}  ", key.name());
            out.push_str(&wrap(&text, &first, width + 4));
        }
    }
    if verbs
        .iter()
        .any(|v| v.area == "ha" && v.verb == "configure")
    {
        out.push_str(&format!("\nHA configuration keys:\n{HA_KEYS}\n"));
    }
    if verbs
        .iter()
        .any(|v| v.area == "cdr" || v.area == "callcenter")
    {
        out.push_str(CDR_HELP);
    }
    if verbs.iter().any(|v| v.area == "task" || v.area == "mail") {
        out.push_str(task_render::HELP);
    }
    if verbs.iter().any(|v| v.area == "prov") {
        out.push_str(&format!(
            "\nKIND is one of: {}.\nFields: see `kpbx prov KIND show` of an existing object, or README.md.\n",
            prov_kinds()
        ));
    }
    out.push('\n');
    out.push_str(GLOBAL_OPTIONS);
    out
}

/// Parses `kpbx`'s arguments (without the program name).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Invocation, String> {
    let mut socket = None;
    let mut json = false;
    let mut wants_help = false;
    let mut version = false;
    let mut words: Vec<&str> = Vec::new();
    let mut iter = args.iter().map(AsRef::as_ref);
    while let Some(arg) = iter.next() {
        match arg {
            "--json" => json = true,
            "-h" | "--help" => wants_help = true,
            "--version" => version = true,
            "--socket" | "-s" => {
                let path = iter.next().ok_or("--socket needs a path")?;
                socket = Some(PathBuf::from(path));
            }
            _ => {
                if let Some(path) = arg.strip_prefix("--socket=") {
                    socket = Some(PathBuf::from(path));
                } else {
                    words.push(arg);
                }
            }
        }
    }
    let invocation = |action| Invocation {
        socket: socket.clone(),
        json,
        action,
    };
    if version {
        return Ok(invocation(Action::Version));
    }
    let area = words.first().copied();
    if let Some(a) = area.filter(|a| !VERBS.iter().any(|v| v.area == *a)) {
        return Err(format!("unknown area {a:?}; see kpbx --help"));
    }
    let verb = words.get(1).copied().filter(|w| !w.starts_with('-'));
    if wants_help || area.is_none() {
        let known_verb =
            verb.filter(|w| VERBS.iter().any(|v| Some(v.area) == area && v.verb == *w));
        return Ok(invocation(Action::Help(help(area, known_verb))));
    }
    if let ["prov", kind, "import", path] = words.as_slice() {
        return Ok(invocation(Action::Import {
            kind: prov_kind(kind)?,
            path: PathBuf::from(path),
        }));
    }
    if matches!(area, Some("task" | "mail")) {
        return Ok(invocation(Action::Run(task_render::parse(&words)?)));
    }
    if let ["audit", "export", rest @ ..] = words.as_slice() {
        let (query, format, output) = audit::export(rest)?;
        return Ok(invocation(Action::Export {
            command: Command::AuditExport { query, format },
            output,
        }));
    }
    if matches!(area, Some("cdr" | "callcenter")) {
        let (command, output) = cdr_render::parse(&words)?;
        return Ok(invocation(match command {
            Command::CdrExport(_) => Action::Export { command, output },
            c => Action::Run(c),
        }));
    }
    if let ["role", "show", name] = words.as_slice() {
        return Ok(invocation(Action::RoleShow(name.to_string())));
    }
    let command = command(&words)?;
    Ok(invocation(Action::Run(command)))
}

fn command(words: &[&str]) -> Result<Command, String> {
    let rest = words.get(2..).unwrap_or(&[]);
    match words {
        ["status"] => Ok(Command::Status),
        ["status", ..] => Err("status takes no arguments".to_string()),
        // Bare: the current month, newest first; `--limit N`: the newest N
        // entries of the whole log.
        ["audit", "list"] => Ok(Command::AuditQuery(Default::default())),
        ["audit", "list", ..] if crate::cli::audit::is_query(rest) => {
            crate::cli::audit::query(rest).map(Command::AuditQuery)
        }
        ["audit", "list", ..] => Ok(Command::AuditList {
            limit: audit_limit(rest)?,
        }),
        ["audit", "show", txid] => Ok(Command::AuditShow {
            txid: crate::cli::audit::txid(txid)?,
        }),
        ["audit", "restore", txid] => Ok(Command::AuditRestore {
            txid: crate::cli::audit::txid(txid)?,
            force: false,
        }),
        ["audit", "restore", txid, "--force"] | ["audit", "restore", "--force", txid] => {
            Ok(Command::AuditRestore {
                txid: crate::cli::audit::txid(txid)?,
                force: true,
            })
        }
        ["audit", "verify"] => Ok(Command::AuditVerify),
        ["system", "show"] => Ok(Command::SystemShow),
        ["system", "set", ..] => {
            if rest.is_empty() {
                return Err("system set needs KEY=VALUE arguments".to_string());
            }
            let values = rest
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| format!("expected KEY=VALUE, found {kv:?}"))
                })
                .collect::<Result<_, _>>()?;
            Ok(Command::SystemSet { values })
        }
        ["system", "unset", ..] if !rest.is_empty() => Ok(Command::SystemUnset {
            keys: rest.iter().map(|k| k.to_string()).collect(),
        }),
        ["prov", rest @ ..] => prov(rest),
        ["ha", "configure", ..] if !rest.is_empty() => Ok(Command::HaConfigure {
            fields: key_values(rest)?,
        }),
        ["user", "list"] => Ok(Command::UserList),
        ["user", "add", name, fields @ ..] => {
            let mut all = vec![("name".to_string(), name.to_string())];
            all.extend(key_values(fields)?);
            Ok(Command::UserAdd { fields: all })
        }
        ["user", "set", name, fields @ ..] if !fields.is_empty() => Ok(Command::UserSet {
            name: name.to_string(),
            fields: key_values(fields)?,
        }),
        ["user", "del" | "delete", names @ ..] if !names.is_empty() => Ok(Command::UserDelete {
            names: names.iter().map(|n| n.to_string()).collect(),
        }),
        ["user", "passwd", name] => Ok(Command::UserPasswd {
            name: name.to_string(),
            password: "-".to_string(),
        }),
        ["role", "list"] => Ok(Command::RoleList),
        ["role", "add", name, fields @ ..] => {
            let mut all = vec![("name".to_string(), name.to_string())];
            all.extend(key_values(fields)?);
            Ok(Command::RoleAdd { fields: all })
        }
        ["role", "set", name, fields @ ..] if !fields.is_empty() => Ok(Command::RoleSet {
            name: name.to_string(),
            fields: key_values(fields)?,
        }),
        ["role", "del" | "delete", names @ ..] if !names.is_empty() => Ok(Command::RoleDelete {
            names: names.iter().map(|n| n.to_string()).collect(),
        }),
        ["ha", "show"] => Ok(Command::HaShow),
        ["ha", "status"] => Ok(Command::HaStatus),
        ["ha", "switch"] => Ok(Command::HaSwitch),
        ["ha", "disable"] => Ok(Command::HaDisable),
        ["ha", "unpair"] => Ok(Command::HaUnpair),
        ["ha", "pair"] => Ok(Command::HaPair),
        ["ha", "events"] => Ok(Command::HaEvents),
        [area, verb, ..] if VERBS.iter().any(|v| v.area == *area && v.verb == *verb) => Err(
            format!("wrong arguments for `{area} {verb}`; see kpbx {area} {verb} --help"),
        ),
        [area, verb, ..] => Err(format!(
            "unknown verb {verb:?} for {area}; see kpbx {area} --help"
        )),
        [area] => Err(format!("{area} needs a verb; see kpbx {area} --help")),
        [] => Err("no command; see kpbx --help".to_string()),
    }
}

pub(crate) fn key_values(words: &[&str]) -> Result<Vec<(String, String)>, String> {
    words
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("expected FIELD=VALUE, found {kv:?}"))
        })
        .collect()
}

/// A mistyped kind is a usage error (exit 2), named with the known ones.
fn prov_kind(kind: &str) -> Result<String, String> {
    match crate::model::Kind::provisioning(kind) {
        Some(_) => Ok(kind.to_string()),
        None => Err(format!(
            "unknown object type {kind:?} (known: {}); see kpbx prov --help",
            prov_kinds()
        )),
    }
}

fn prov_kinds() -> String {
    let names: Vec<&str> = crate::model::Kind::PROVISIONING
        .iter()
        .map(|k| k.as_str())
        .collect();
    names.join(", ")
}

fn prov(words: &[&str]) -> Result<Command, String> {
    let s = |w: &&str| w.to_string();
    if let [kind, "list" | "show" | "add" | "set" | "del" | "import", ..] = words {
        prov_kind(kind)?;
    }
    match words {
        ["files"] => Ok(Command::ProvFiles),
        ["urls"] => Ok(Command::ProvUrls),
        ["show", path] => Ok(Command::ProvFile { path: s(path) }),
        ["render", mac] => Ok(Command::ProvRender { mac: s(mac) }),
        ["log"] => Ok(Command::ProvLog { mac: None }),
        ["log", mac] => Ok(Command::ProvLog { mac: Some(s(mac)) }),
        ["unknown"] => Ok(Command::ProvUnknown),
        ["redirect", "status"] => Ok(Command::ProvRedirectStatus),
        ["redirect", "sync"] => Ok(Command::ProvRedirectSync),
        ["template", "copy", from, name, rest @ ..] => {
            let tenant = match rest {
                [] => None,
                [t] => Some(
                    t.strip_prefix("tenant=")
                        .ok_or_else(|| format!("expected tenant=UUID, found {t:?}"))?
                        .to_string(),
                ),
                _ => return Err("template copy takes FROM NEW [tenant=UUID]".to_string()),
            };
            Ok(Command::ProvCopyTemplate {
                from: s(from),
                name: s(name),
                tenant,
            })
        }
        [kind, "list"] => Ok(Command::ProvList { kind: s(kind) }),
        [kind, "show", id] => Ok(Command::ProvShow {
            kind: s(kind),
            id: s(id),
        }),
        [kind, "add", fields @ ..] if !fields.is_empty() => Ok(Command::ProvAdd {
            kind: s(kind),
            fields: key_values(fields)?,
        }),
        [kind, "set", id, fields @ ..] if !fields.is_empty() => Ok(Command::ProvSet {
            kind: s(kind),
            id: s(id),
            fields: key_values(fields)?,
        }),
        [kind, "del", ids @ ..] if !ids.is_empty() => Ok(Command::ProvDelete {
            kind: s(kind),
            ids: ids.iter().map(s).collect(),
        }),
        _ => Err("wrong arguments for prov; see kpbx prov --help".to_string()),
    }
}

fn audit_limit(rest: &[&str]) -> Result<u32, String> {
    match rest {
        [] => Ok(20),
        ["--limit", n] | ["-n", n] => n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| format!("--limit takes a number from 1 to 1000, not {n:?}")),
        [other, ..] => Err(format!("unexpected argument {other:?} for audit list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Command {
        match parse(args).unwrap().action {
            Action::Run(c) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn commands_parse() {
        assert_eq!(run(&["status"]), Command::Status);
        assert_eq!(
            run(&["audit", "list"]),
            Command::AuditQuery(Default::default())
        );
        assert_eq!(
            run(&["audit", "list", "--limit", "5"]),
            Command::AuditList { limit: 5 }
        );
        assert_eq!(run(&["audit", "verify", "--json"]), Command::AuditVerify);
        assert_eq!(
            run(&["system", "set", "hostname=pbx", "location=a=b"]),
            Command::SystemSet {
                values: vec![
                    ("hostname".into(), "pbx".into()),
                    ("location".into(), "a=b".into())
                ]
            }
        );
        assert_eq!(
            run(&["system", "unset", "hostname"]),
            Command::SystemUnset {
                keys: vec!["hostname".into()]
            }
        );
    }

    #[test]
    fn ha_commands_parse() {
        assert_eq!(
            run(&["ha", "configure", "role=coordinator", "resources=a b"]),
            Command::HaConfigure {
                fields: vec![
                    ("role".into(), "coordinator".into()),
                    ("resources".into(), "a b".into())
                ]
            }
        );
        assert_eq!(run(&["ha", "status", "--json"]), Command::HaStatus);
        assert_eq!(run(&["ha", "switch"]), Command::HaSwitch);
        assert_eq!(run(&["ha", "events"]), Command::HaEvents);
        let Action::Help(text) = parse(&["ha", "configure", "--help"]).unwrap().action else {
            panic!()
        };
        assert!(text.contains("keepalive_out_of_service"));
    }

    #[test]
    fn global_options_anywhere() {
        let i = parse(&["--socket", "var/k.sock", "status", "--json"]).unwrap();
        assert_eq!(i.socket, Some(PathBuf::from("var/k.sock")));
        assert!(i.json);
        let i = parse(&["status", "--socket=/x"]).unwrap();
        assert_eq!(i.socket, Some(PathBuf::from("/x")));
    }

    #[test]
    fn help_everywhere() {
        for args in [
            &["--help"][..],
            &[],
            &["audit", "--help"],
            &["audit", "list", "--help"],
            &["system", "-h"],
        ] {
            match parse(args).unwrap().action {
                Action::Help(text) => assert!(text.starts_with("Usage: kpbx"), "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let Action::Help(text) = parse(&["audit", "list", "--help"]).unwrap().action else {
            panic!()
        };
        assert!(text.contains("audit list [--limit N]"));
        assert!(!text.contains("system set"));
    }

    /// Issue 21: every help text fits 100 columns.
    #[test]
    fn help_fits_100_columns() {
        let mut helps = vec![help(None, None)];
        for v in VERBS {
            helps.push(help(Some(v.area), None));
            helps.push(help(Some(v.area), Some(v.verb)));
        }
        for text in helps {
            for line in text.lines() {
                assert!(
                    line.chars().count() <= HELP_WIDTH,
                    "{} columns: {line:?}",
                    line.chars().count()
                );
            }
        }
    }

    #[test]
    fn usage_errors_are_one_line() {
        let cases: &[&[&str]] = &[
            &["bogus"],
            &["audit"],
            &["audit", "frob"],
            &["audit", "list", "--limit", "0"],
            &["audit", "list", "--limit", "x"],
            &["audit", "list", "extra"],
            &["system", "set"],
            &["system", "set", "novalue"],
            &["system", "unset"],
            &["status", "extra"],
            &["--socket"],
            &["ha"],
            &["ha", "configure"],
            &["ha", "configure", "role"],
            &["ha", "status", "extra"],
        ];
        for args in cases {
            let e = parse(args).unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{args:?}: {e}");
        }
    }
}
