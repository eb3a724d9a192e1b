//! Replies as text: aligned tables for people, JSON for scripts.
//!
//! Times travel as UTC microseconds; tables show them in the box's local
//! time zone, JSON adds an RFC 3339 UTC `time` next to `time_us`.

use jiff::tz::TimeZone;
use serde::Serialize;

use super::exit;
use crate::control::{AuditView, Reply, VerifyView};

/// What the binary prints and how it exits.
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    /// One line, printed to stderr.
    pub stderr: Option<String>,
    pub code: u8,
}

impl Output {
    pub(super) fn ok(stdout: String) -> Output {
        Output {
            stdout,
            stderr: None,
            code: exit::OK,
        }
    }
}

pub fn render(reply: &Reply, json: bool, tz: &TimeZone) -> Output {
    render_as(reply, json, tz, Layout::Any)
}

/// How a command's objects are printed: a list is always a table (one
/// object too, so that scripts read the same columns); a `show` of one
/// object is a key/value record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    List,
    Any,
}

impl Layout {
    pub fn of(command: &crate::control::Command) -> Layout {
        use crate::control::Command;
        match command {
            Command::ProvList { .. }
            | Command::UserList
            | Command::TaskList
            | Command::RoleList
            | Command::AuditList { .. } => Layout::List,
            _ => Layout::Any,
        }
    }
}

/// [`render`] for the reply to a known command.
pub fn render_as(reply: &Reply, json: bool, tz: &TimeZone, layout: Layout) -> Output {
    if let Reply::Error(e) = reply {
        return Output {
            stdout: if json { to_json(e) } else { String::new() },
            stderr: Some(format!("kpbx: {}", e.message)),
            code: exit::FAILED,
        };
    }
    if json {
        let value = match reply {
            Reply::Audit(entries) => {
                serde_json::Value::Array(entries.iter().map(audit_json).collect())
            }
            Reply::Status(v) => with_time(serde_json::to_value(v), "started", v.started_us),
            Reply::AuditPage(p) => super::audit::page_json(p, tz),
            Reply::Objects(objects) => serde_json::Value::Array(
                objects
                    .iter()
                    .map(|o| {
                        let mut fields: serde_json::Map<String, serde_json::Value> = o
                            .fields
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                            .collect();
                        fields.insert("object_type".into(), o.object_type.clone().into());
                        fields.insert("id".into(), o.id.clone().into());
                        fields.insert("builtin".into(), o.builtin.into());
                        serde_json::Value::Object(fields)
                    })
                    .collect(),
            ),
            other => serde_json::to_value(other).map_or(serde_json::Value::Null, |v| {
                // Drop the enum tag: the command already says what this is.
                match v {
                    serde_json::Value::Object(mut m) if m.len() == 1 => m
                        .values_mut()
                        .next()
                        .map(std::mem::take)
                        .unwrap_or_default(),
                    v => v,
                }
            }),
        };
        let mut out = Output::ok(to_json(&value));
        if let Reply::Verified(VerifyView {
            first_bad: Some(b), ..
        }) = reply
        {
            out.code = exit::FAILED;
            out.stderr = Some(format!(
                "kpbx: audit log damaged at entry {}.{}: {}",
                b.txid, b.index, b.reason
            ));
        }
        return out;
    }
    match reply {
        Reply::Status(s) => {
            let mut out = table(
                &["", ""],
                &[
                    vec!["version".into(), s.version.clone()],
                    vec!["pid".into(), s.pid.to_string()],
                    vec!["started".into(), local_named(s.started_us, tz)],
                    vec!["uptime".into(), uptime(s.uptime_secs)],
                    vec!["data dir".into(), s.data_dir.clone()],
                    vec!["control socket".into(), s.control_socket.clone()],
                    vec![
                        "store".into(),
                        format!("schema {}, {} bytes", s.schema, s.store_bytes),
                    ],
                    vec!["objects".into(), s.objects.to_string()],
                    vec!["audit entries".into(), s.audit_entries.to_string()],
                    vec![
                        "last txid".into(),
                        s.last_txid.map_or("-".into(), |t| t.to_string()),
                    ],
                ],
                false,
            );
            out.push('\n');
            let rows: Vec<Vec<String>> = s
                .services
                .iter()
                .map(|v| vec![v.name.clone(), v.state.clone(), v.detail.clone()])
                .collect();
            out.push_str(&table(&["SERVICE", "STATE", "DETAIL"], &rows, true));
            Output::ok(out)
        }
        Reply::Audit(entries) => {
            if entries.is_empty() {
                return Output::ok("no audit entries\n".to_string());
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        format!("{}.{}", e.txid, e.index),
                        local(e.time_us, tz),
                        e.user.clone(),
                        e.source.clone(),
                        e.action.clone(),
                        e.object_type.clone(),
                        e.object_id.clone(),
                        e.description.clone(),
                    ]
                })
                .collect();
            Output::ok(table(
                &[
                    "TXID",
                    "TIME",
                    "USER",
                    "SOURCE",
                    "ACTION",
                    "TYPE",
                    "ID",
                    "DESCRIPTION",
                ],
                &rows,
                true,
            ))
        }
        Reply::Verified(v) => match &v.first_bad {
            None => Output::ok(format!(
                "audit log intact: {} entries verified\n",
                v.entries
            )),
            Some(b) => Output {
                stdout: String::new(),
                stderr: Some(format!(
                    "kpbx: audit log damaged at entry {}.{}: {} ({} entries before it verified)",
                    b.txid, b.index, b.reason, v.entries
                )),
                code: exit::FAILED,
            },
        },
        Reply::Settings(settings) => {
            let rows: Vec<Vec<String>> = settings
                .iter()
                .map(|s| {
                    let value = if s.is_default {
                        format!("{} (default)", shown(&s.value))
                    } else {
                        shown(&s.value)
                    };
                    vec![s.key.clone(), value]
                })
                .collect();
            Output::ok(table(&["KEY", "VALUE"], &rows, true))
        }
        Reply::Committed(c) => match c.txid {
            None => Output::ok("nothing changed\n".to_string()),
            Some(txid) => {
                let mut out = format!("committed txid {txid}\n");
                for ch in &c.changes {
                    out.push_str(&format!("  {}\n", ch.description));
                }
                Output::ok(out)
            }
        },
        Reply::Objects(objects) => Output::ok(objects_table(objects, layout)),
        Reply::Files(f) => {
            let rows: Vec<Vec<String>> = f
                .files
                .iter()
                .map(|x| vec![x.path.clone(), x.device.clone(), x.size.to_string()])
                .collect();
            let mut out = if rows.is_empty() {
                "no generated files\n".to_string()
            } else {
                table(&["FILE", "DEVICE", "BYTES"], &rows, true)
            };
            if !f.problems.is_empty() {
                out.push_str("\nnot generated:\n");
                for p in &f.problems {
                    out.push_str(&format!("  {p}\n"));
                }
            }
            if !f.idle.is_empty() {
                out.push_str("\nno file by configuration:\n");
                for p in &f.idle {
                    out.push_str(&format!("  {p}\n"));
                }
            }
            if !f.warnings.is_empty() {
                out.push_str("\nwarnings:\n");
                for w in &f.warnings {
                    out.push_str(&format!("  {w}\n"));
                }
            }
            Output::ok(out)
        }
        Reply::ProvUrls(rows) => {
            if rows.is_empty() {
                return Output::ok("no enabled devices: nothing to configure\n".to_string());
            }
            let multitenant = rows.iter().any(|r| !r.tenant.is_empty());
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = vec![r.brand.clone(), r.setting.clone(), r.value.clone()];
                    if multitenant {
                        row.insert(0, r.tenant.clone());
                    }
                    row
                })
                .collect();
            let header: &[&str] = if multitenant {
                &["TENANT", "BRAND", "WHERE", "VALUE"]
            } else {
                &["BRAND", "WHERE", "VALUE"]
            };
            Output::ok(table(header, &body, true))
        }
        Reply::FileContents(files) => match files.as_slice() {
            [one] => Output::ok(one.content.clone()),
            many => Output::ok(
                many.iter()
                    .map(|f| format!("==> {} <==\n{}", f.path, f.content))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        },
        Reply::HaStatus(h) => Output::ok(ha_status_table(h)),
        Reply::HaEvents(events) => {
            if events.is_empty() {
                return Output::ok("no HA events\n".to_string());
            }
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| vec![local(e.time_us, tz), e.state.clone(), e.reason.clone()])
                .collect();
            Output::ok(table(&["TIME", "STATE", "REASON"], &rows, true))
        }
        Reply::Fetches(fetches) => {
            if fetches.is_empty() {
                return Output::ok("no fetches\n".to_string());
            }
            let rows: Vec<Vec<String>> = fetches
                .iter()
                .map(|f| {
                    vec![
                        local(f.time_us, tz),
                        f.device.clone(),
                        f.protocol.clone(),
                        f.address.clone(),
                        f.file.clone(),
                        f.result.clone(),
                        f.bytes.to_string(),
                        f.user_agent.clone(),
                    ]
                })
                .collect();
            Output::ok(table(
                &[
                    "TIME",
                    "DEVICE",
                    "PROTO",
                    "ADDRESS",
                    "FILE",
                    "RESULT",
                    "BYTES",
                    "USER AGENT",
                ],
                &rows,
                true,
            ))
        }
        Reply::Unknown(u) => {
            let mut out = if u.devices.is_empty() {
                "no unassigned devices\n".to_string()
            } else {
                let rows: Vec<Vec<String>> = u
                    .devices
                    .iter()
                    .map(|d| {
                        vec![
                            d.mac.clone(),
                            local(d.last_us, tz),
                            d.count.to_string(),
                            d.address.clone(),
                            d.file.clone(),
                            d.user_agent.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["MAC", "LAST SEEN", "TRIES", "ADDRESS", "FILE", "USER AGENT"],
                    &rows,
                    true,
                )
            };
            for b in &u.blocked {
                out.push_str(&format!(
                    "blocked for scanning: {} ({} s left)\n",
                    b.address, b.seconds_left
                ));
            }
            Output::ok(out)
        }
        Reply::Redirects(r) => Output::ok(redirects_table(r, tz)),
        Reply::CdrStatus(c) => Output::ok(super::cdr_render::status(c, tz)),
        Reply::Imported(i) => Output::ok(super::cdr_render::imported(i)),
        Reply::Chunk(bytes) => Output::ok(String::from_utf8_lossy(bytes).into_owned()),
        Reply::StreamEnd(e) => Output::ok(super::cdr_render::stream_end(e, tz)),
        Reply::TaskStarted(v) => Output::ok(super::task_render::started(v)),
        Reply::TaskHistory(runs) => Output::ok(super::task_render::history(runs, tz)),
        Reply::Outbox(list) => Output::ok(super::task_render::outbox(list, tz)),
        Reply::MailTested(v) => Output {
            stdout: super::task_render::tested(v),
            stderr: None,
            code: if v.delivered {
                super::exit::OK
            } else {
                super::exit::FAILED
            },
        },
        Reply::AuditPage(p) => Output::ok(super::audit::page_table(p, tz)),
        Reply::AuditTransaction(t) => Output::ok(super::audit::transaction_text(t, tz)),
        Reply::Error(_) => unreachable_error(),
    }
}

/// `kpbx prov redirect status`.
fn redirects_table(rows: &[crate::control::RedirectView], tz: &TimeZone) -> String {
    if rows.is_empty() {
        return "no device has a redirection server\n".to_string();
    }
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let next = match (r.state.as_str(), r.next_attempt_us) {
                ("waiting", Some(t)) => format!("waiting until {}", local(t, tz)),
                (s, _) => s.to_string(),
            };
            vec![
                r.mac.clone(),
                r.server.clone(),
                yes(r.provisioned),
                r.pending.join(", "),
                next,
                r.last_attempt_us.map(|t| local(t, tz)).unwrap_or_default(),
                r.last_error.clone(),
            ]
        })
        .collect();
    table(
        &[
            "MAC",
            "SERVER",
            "PROVISIONED",
            "PENDING",
            "STATE",
            "LAST ATTEMPT",
            "LAST ERROR",
        ],
        &rows,
        true,
    )
}

fn ha_status_table(h: &crate::control::HaStatusView) -> String {
    let node = |n: &crate::control::HaNodeView| {
        format!(
            "serial {}, sync {}, lan {}",
            if n.serial.is_empty() { "-" } else { &n.serial },
            n.sync_ip,
            n.lan_ip
        )
    };
    let mut rows = vec![
        vec!["role".into(), h.role.clone()],
        vec!["state".into(), h.state.clone()],
    ];
    if !h.detail.is_empty() {
        rows.push(vec!["detail".into(), shown(&h.detail)]);
    }
    rows.extend([
        vec![
            "pairing".into(),
            if h.paired { "paired" } else { "not paired" }.to_string(),
        ],
        vec!["local node".into(), node(&h.local)],
        vec!["remote node".into(), node(&h.remote)],
        vec!["resources".into(), h.resources.join(" ")],
        vec!["holder".into(), h.holder.clone()],
    ]);
    for p in &h.paths {
        let age = p
            .heartbeat_age_ms
            .map_or("never heard".to_string(), |ms| format!("{ms} ms ago"));
        let warn = if p.warning { " (WARNING: silent)" } else { "" };
        rows.push(vec![
            format!("heartbeat {}", p.path),
            format!("{age}{warn}"),
        ]);
    }
    rows.extend([
        vec!["degraded".into(), yes_no(h.degraded)],
        vec!["peer out of service".into(), yes_no(h.peer_out_of_service)],
        vec![
            "ping group".into(),
            format!(
                "{} of {} seen here, {} by the peer",
                h.ping_seen,
                h.ping_group.len(),
                h.peer_ping_seen.map_or("?".to_string(), |n| n.to_string())
            ),
        ],
        vec!["epoch".into(), h.epoch.to_string()],
        vec![
            "heartbeats".into(),
            format!(
                "{} sent, {} received, {} forged, {} replayed, {} malformed, {} foreign, {} unauthenticated",
                h.counters.heartbeats_sent,
                h.counters.heartbeats_received,
                h.counters.forged,
                h.counters.replayed,
                h.counters.malformed,
                h.counters.foreign_source,
                h.counters.unauthenticated
            ),
        ],
        vec![
            "pairing failures".into(),
            h.counters.pairing_failures.to_string(),
        ],
    ]);
    let y = &h.sync;
    rows.push(vec![
        "data sync".into(),
        format!(
            "{} ({}{})",
            y.mode,
            y.role,
            if y.replica { ", replica" } else { "" }
        ),
    ]);
    rows.push(vec![
        "transactions".into(),
        format!(
            "local {} ({}), peer {}, lag {}, {} waiting",
            y.local_seq,
            y.local_hash.get(..16).unwrap_or(&y.local_hash),
            y.peer_seq.map_or("?".to_string(), |n| n.to_string()),
            y.lag.map_or("?".to_string(), |n| n.to_string()),
            y.waiting
        ),
    ]);
    if !y.last_error.is_empty() {
        rows.push(vec!["sync last error".into(), shown(&y.last_error)]);
    }
    if !y.last_archive.is_empty() {
        rows.push(vec!["sync archive".into(), shown(&y.last_archive)]);
    }
    if y.rejected > 0 {
        rows.push(vec!["sync rejected".into(), y.rejected.to_string()]);
    }
    table(&["", ""], &rows, false)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Summary columns per object type in lists.
fn columns(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "device" => &["tenant", "active", "model", "template", "account"],
        "account" => &["tenant", "sip_user", "display_name", "email"],
        "template" => &["tenant", "model"],
        "model" => &["brand", "format", "files"],
        "placeholder" => &["tenant", "type", "value"],
        "tenant" => &["name"],
        "redirect_server" => &["brand", "api", "enabled", "url"],
        "user" => &["role", "tenant", "email"],
        "role" => &["permissions"],
        "task" => &["name", "type", "enabled", "schedule", "time", "next_run"],
        _ => &[],
    }
}

fn objects_table(objects: &[crate::control::ObjectView], layout: Layout) -> String {
    match objects {
        [] => "none\n".to_string(),
        [one] if layout != Layout::List => {
            let mut rows: Vec<Vec<String>> = vec![vec!["type".into(), one.object_type.clone()]];
            if one.builtin {
                rows.push(vec!["builtin".into(), "yes (read-only)".into()]);
            }
            let mut content = None;
            for (k, v) in &one.fields {
                if k == "content" {
                    content = Some(v.clone());
                } else {
                    rows.push(vec![k.clone(), v.clone()]);
                }
            }
            let mut out = table(&["", ""], &rows, false);
            if let Some(c) = content {
                out.push_str("content:\n");
                out.push_str(&c);
                if !c.ends_with('\n') {
                    out.push('\n');
                }
            }
            out
        }
        many => {
            let cols = columns(&many[0].object_type);
            let mut header = vec!["ID", "BUILTIN"];
            let upper: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
            header.extend(upper.iter().map(String::as_str));
            let rows: Vec<Vec<String>> = many
                .iter()
                .map(|o| {
                    let mut row =
                        vec![o.id.clone(), if o.builtin { "yes" } else { "" }.to_string()];
                    for c in cols {
                        let v = o
                            .fields
                            .iter()
                            .find(|(k, _)| k == c)
                            .map(|(_, v)| v.clone());
                        row.push(v.unwrap_or_default());
                    }
                    row
                })
                .collect();
            table(&header, &rows, true)
        }
    }
}

fn unreachable_error() -> Output {
    Output {
        stdout: String::new(),
        stderr: Some("kpbx: internal error".to_string()),
        code: exit::FAILED,
    }
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        "\"\"".to_string()
    } else {
        value.to_string()
    }
}

fn audit_json(e: &AuditView) -> serde_json::Value {
    let mut value = with_time(serde_json::to_value(e), "time", e.time_us);
    // Object states as {"field": "value"} rather than pairs.
    if let serde_json::Value::Object(m) = &mut value {
        for (key, state) in [("before", &e.before), ("after", &e.after)] {
            let state = state.as_ref().map_or(serde_json::Value::Null, |fields| {
                serde_json::Value::Object(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            });
            m.insert(key.to_string(), state);
        }
    }
    value
}

fn with_time(
    value: Result<serde_json::Value, serde_json::Error>,
    field: &str,
    us: i64,
) -> serde_json::Value {
    let mut value = value.unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut value {
        let ts = jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        m.insert(field.to_string(), serde_json::Value::String(ts.to_string()));
    }
    value
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    s.push('\n');
    s
}

/// The name of the zone the console shows times in (the box's `timezone`).
pub fn zone_name(tz: &TimeZone) -> &str {
    tz.iana_name().unwrap_or("UTC")
}

/// A UTC timestamp in the box's local time, followed by the zone's name:
/// for a single time in a summary, where a reader could doubt the zone.
pub fn local_named(us: i64, tz: &TimeZone) -> String {
    format!("{} {}", local(us, tz), zone_name(tz))
}

/// A UTC timestamp in the box's local time.
pub fn local(us: i64, tz: &TimeZone) -> String {
    let ts = jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

/// Left-aligned columns separated by two spaces; the last column is not
/// padded. Control characters in cells are shown escaped so that stored text
/// cannot move the cursor of the console.
pub(super) fn table(header: &[&str], rows: &[Vec<String>], show_header: bool) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .flat_map(|c| {
                if c.is_control() {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect()
    };
    let mut all: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if show_header {
        all.push(header.iter().map(|h| h.to_string()).collect());
    }
    all.extend(rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()));
    let cols = header.len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            all.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &all {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ErrorCode;

    #[test]
    fn tables_align_and_escape() {
        let t = table(
            &["A", "B"],
            &[
                vec!["x".into(), "1".into()],
                vec!["long\ncell".into(), "2".into()],
            ],
            true,
        );
        assert_eq!(t, "A           B\nx           1\nlong\\ncell  2\n");
    }

    #[test]
    fn errors_go_to_stderr_with_code_1() {
        let o = render(
            &Reply::error(ErrorCode::Invalid, "bad port"),
            false,
            &TimeZone::UTC,
        );
        assert_eq!(o.stderr.as_deref(), Some("kpbx: bad port"));
        assert_eq!(o.code, exit::FAILED);
    }

    #[test]
    fn failed_verify_exits_1_in_both_modes() {
        let reply = Reply::Verified(VerifyView {
            entries: 3,
            ok: false,
            first_bad: Some(crate::control::BadEntryView {
                txid: 4,
                index: 0,
                reason: "record altered".into(),
            }),
        });
        for json in [false, true] {
            let o = render(&reply, json, &TimeZone::UTC);
            assert_eq!(o.code, exit::FAILED);
            assert!(o.stderr.unwrap().contains("entry 4.0"));
        }
    }

    #[test]
    fn local_time_uses_the_zone() {
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(local(0, &tz), "1970-01-01 02:00:00");
    }
}
