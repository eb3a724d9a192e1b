//! `kpbx cdr …` / `kpbx callcenter …`: argument grammar and rendering.

use std::path::PathBuf;

use jiff::tz::TimeZone;

use crate::control::{CdrStatusView, Command, ExportRequest, ImportView, StreamEndView};

fn when(us: Option<i64>, tz: &TimeZone) -> String {
    us.map_or("-".to_string(), |us| super::render::local(us, tz))
}

pub fn status(c: &CdrStatusView, tz: &TimeZone) -> String {
    let mut out = String::new();
    for f in &c.files {
        out.push_str(&format!(
            "{} {} ({}{})\n",
            f.role,
            f.path,
            f.state,
            if f.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", f.detail)
            }
        ));
        out.push_str(&format!(
            "  position  offset {}, line {}\n  records   {} parsed, {} malformed, {} rows stored, {} open, {} rotations\n",
            f.offset, f.line, f.records, f.malformed, f.rows, f.open, f.rotations
        ));
        for (line, reason) in &f.last_errors {
            out.push_str(&format!("  malformed line {line}: {reason}\n"));
        }
    }
    out.push_str(&format!(
        "calls           {} (oldest {}, newest {})\n",
        c.calls,
        when(c.oldest_call_us, tz),
        when(c.newest_call_us, tz)
    ));
    out.push_str(&format!(
        "queue entries   {} (oldest {}, newest {})\n",
        c.queue_entries,
        when(c.oldest_queue_entry_us, tz),
        when(c.newest_queue_entry_us, tz)
    ));
    out.push_str(&format!("operator events {}\n", c.operator_events));
    out.push_str(&format!(
        "times in        {}\n",
        super::render::zone_name(tz)
    ));
    out
}

pub fn imported(i: &ImportView) -> String {
    let mut out = format!(
        "imported {}: {} records, {} malformed, {} rows stored\n",
        i.path, i.records, i.malformed, i.rows
    );
    for (line, reason) in &i.last_errors {
        out.push_str(&format!("  malformed line {line}: {reason}\n"));
    }
    out
}

pub fn stream_end(e: &StreamEndView, tz: &TimeZone) -> String {
    format!(
        "exported {} rows, {} bytes, from {} to {} ({})\n",
        e.rows,
        e.bytes,
        super::render::local(e.from_us, tz),
        super::render::local(e.to_us, tz),
        super::render::zone_name(tz)
    )
}

/// What `cdr`/`callcenter` words parse to: the command and, for exports,
/// where the client writes the data (`None`: stdout).
pub fn parse(words: &[&str]) -> Result<(Command, Option<PathBuf>), String> {
    let callcenter = words.first() == Some(&"callcenter");
    match words {
        ["cdr", "status"] => Ok((Command::CdrStatus, None)),
        [_, "import", path] => Ok((
            Command::CdrImport {
                callcenter,
                path: path.to_string(),
            },
            None,
        )),
        [_, "export", rest @ ..] => export(callcenter, rest),
        [area, ..] => Err(format!(
            "wrong arguments for {area}; see kpbx {area} --help"
        )),
        [] => Err("no command".into()),
    }
}

fn export(callcenter: bool, args: &[&str]) -> Result<(Command, Option<PathBuf>), String> {
    let mut r = ExportRequest {
        callcenter,
        from: None,
        to: None,
        interval: None,
        format: "csv".into(),
        mask: false,
        delimiter: b',',
        bom: false,
        operator_events: false,
    };
    let mut output = None;
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => it
                    .next()
                    .map(|v| v.to_string())
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name {
            "--from" => r.from = Some(value()?),
            "--to" => r.to = Some(value()?),
            "--interval" => r.interval = Some(value()?),
            "--format" | "-f" => r.format = value()?,
            "-o" | "--output" => output = Some(PathBuf::from(value()?)),
            "--delimiter" => {
                r.delimiter = match value()?.as_str() {
                    "," | "comma" => b',',
                    ";" | "semicolon" => b';',
                    other => return Err(format!("--delimiter is , or ;, not {other:?}")),
                }
            }
            "--mask" => r.mask = true,
            "--bom" => r.bom = true,
            "--operator-events" if callcenter => r.operator_events = true,
            other => return Err(format!("unexpected argument {other:?} for export")),
        }
    }
    match (&r.from, &r.to, &r.interval) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => {}
        _ => return Err("export needs --from and --to, or --interval".into()),
    }
    Ok((Command::CdrExport(r), output))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn export_arguments() {
        let (c, out) = parse(&[
            "callcenter",
            "export",
            "--interval",
            "previous-day",
            "--format=xlsx-detailed",
            "--operator-events",
            "--mask",
            "-o",
            "x.xlsx",
        ])
        .unwrap();
        assert_eq!(out, Some(PathBuf::from("x.xlsx")));
        let Command::CdrExport(r) = c else { panic!() };
        assert!(r.callcenter && r.mask && r.operator_events);
        assert_eq!(r.format, "xlsx-detailed");
        assert!(parse(&["cdr", "export", "--from", "2026-01-01"]).is_err());
        assert!(parse(&["cdr", "export", "--interval", "x", "--operator-events"]).is_err());
        assert!(parse(&["cdr", "export", "--interval", "x", "--delimiter", "|"]).is_err());
    }
}
