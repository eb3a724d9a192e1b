//! `kpbx audit list|show|restore`: the grammar of the period and filter
//! options and the rendering of a page and of a transaction's diff.
//!
//! Invariant: pure, like the rest of the grammar and rendering.

use jiff::tz::TimeZone;

use crate::audit::{COLUMNS, Month, parse_action, parse_columns};
use crate::control::{AuditPageView, AuditQuery, AuditTransactionView, AuditView};

/// Options that make `audit list` a period query rather than "the latest N".
const QUERY_OPTIONS: &[&str] = &[
    "--month",
    "--day",
    "--user",
    "--type",
    "--action",
    "--page",
    "--page-size",
    "--columns",
];

/// Parses `audit export` options: `--format F`, `-o FILE` and the filter
/// options of `audit list` (paging does not apply).
pub fn export(rest: &[&str]) -> Result<(AuditQuery, String, Option<std::path::PathBuf>), String> {
    let mut format = None;
    let mut output = None;
    let mut filters: Vec<&str> = Vec::new();
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (word, None),
        };
        let mut value = || {
            inline
                .or_else(|| words.next().copied())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--format" => {
                let f = value()?;
                crate::audit::export::Format::parse(f)?;
                format = Some(f.to_string());
            }
            "-o" | "--output" => output = Some(std::path::PathBuf::from(value()?)),
            "--page" | "--page-size" => {
                return Err(format!("{name} does not apply to an export"));
            }
            _ => {
                filters.push(word);
                if inline.is_none() && QUERY_OPTIONS.contains(&name) {
                    filters.push(value()?);
                }
            }
        }
    }
    let format = format.ok_or("audit export needs --format xlsx|csv|json|xml")?;
    Ok((query(&filters)?, format, output))
}

pub fn is_query(rest: &[&str]) -> bool {
    rest.iter().any(|w| {
        QUERY_OPTIONS
            .iter()
            .any(|o| *w == *o || w.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
    })
}

pub fn txid(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| format!("TXID must be a positive number, not {text:?}"))
}

/// Parses `--month YYYY-MM --day D --user U --type T --action A --page N
/// --page-size N --columns a,b` (also `--opt=value`).
pub fn query(rest: &[&str]) -> Result<AuditQuery, String> {
    let mut q = AuditQuery::default();
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        let (name, inline): (&str, Option<&str>) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (word, None),
        };
        if !QUERY_OPTIONS.contains(&name) {
            return Err(format!("unexpected argument {word:?} for audit list"));
        }
        let value = match inline {
            Some(v) => v,
            None => words
                .next()
                .copied()
                .ok_or_else(|| format!("{name} needs a value"))?,
        };
        let number = |max: u32| crate::audit::parse_bounded(name, value, max);
        match name {
            "--month" => {
                Month::parse(value)?;
                q.month = Some(value.to_string());
            }
            "--day" => q.day = Some(number(31)? as u8),
            "--user" => q.user = Some(value.to_string()),
            "--type" => q.object_type = Some(value.to_string()),
            "--action" => {
                parse_action(value)?;
                q.action = Some(value.to_string());
            }
            "--page" => q.page = number(u32::MAX)?,
            "--page-size" => q.page_size = number(crate::audit::MAX_PAGE_SIZE)?,
            _ => q.columns = parse_columns(value)?,
        }
    }
    Ok(q)
}

fn cell(column: &str, e: &AuditView, tz: &TimeZone) -> String {
    let zoned = || {
        jiff::Timestamp::from_microsecond(e.time_us)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(tz.clone())
    };
    match column {
        "txid" => format!("{}.{}", e.txid, e.index),
        "day" => zoned().day().to_string(),
        "time" => super::render::local(e.time_us, tz),
        "user" => e.user.clone(),
        "ip" => e.source.clone(),
        "action" => e.action.clone(),
        "object_type" => e.object_type.clone(),
        _ => e.description.clone(),
    }
}

fn columns(p: &AuditPageView) -> Vec<&str> {
    if p.columns.is_empty() {
        COLUMNS.to_vec()
    } else {
        p.columns.iter().map(String::as_str).collect()
    }
}

pub fn page_table(p: &AuditPageView, tz: &TimeZone) -> String {
    let cols = columns(p);
    let period = match p.day {
        Some(d) => format!("{}-{d:02}", p.month),
        None => p.month.clone(),
    };
    if p.entries.is_empty() {
        return format!("no audit entries in {period} (page {})\n", p.page);
    }
    let header: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = p
        .entries
        .iter()
        .map(|e| cols.iter().map(|c| cell(c, e, tz)).collect())
        .collect();
    let mut out = super::render::table(&header, &rows, true);
    out.push_str(&format!(
        "{period}, page {}{}, times in {}\n",
        p.page,
        if p.more { " (more: --page next)" } else { "" },
        super::render::zone_name(tz)
    ));
    out
}

pub fn page_json(p: &AuditPageView, tz: &TimeZone) -> serde_json::Value {
    let cols = columns(p);
    let entries: Vec<serde_json::Value> = p
        .entries
        .iter()
        .map(|e| {
            let mut m = serde_json::Map::new();
            for c in &cols {
                let value = match *c {
                    "txid" => {
                        m.insert("index".into(), e.index.into());
                        e.txid.into()
                    }
                    "day" => cell(c, e, tz)
                        .parse::<u8>()
                        .map_or(serde_json::Value::Null, Into::into),
                    "time" => {
                        m.insert("time_us".into(), e.time_us.into());
                        let ts = jiff::Timestamp::from_microsecond(e.time_us)
                            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                        ts.to_string().into()
                    }
                    "object_type" => {
                        m.insert("object_id".into(), e.object_id.clone().into());
                        e.object_type.clone().into()
                    }
                    other => cell(other, e, tz).into(),
                };
                m.insert((*c).to_string(), value);
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "month": p.month,
        "day": p.day,
        "page": p.page,
        "page_size": p.page_size,
        "more": p.more,
        "columns": cols,
        "entries": entries,
    })
}

pub fn transaction_text(t: &AuditTransactionView, tz: &TimeZone) -> String {
    let mut out = format!(
        "transaction {} at {} by {} from {}\n",
        t.txid,
        super::render::local(t.time_us, tz),
        t.user,
        t.source
    );
    for o in &t.objects {
        out.push_str(&format!(
            "\n{} {} {}: {}\n",
            o.action, o.object_type, o.object_id, o.description
        ));
        let rows: Vec<Vec<String>> = o
            .fields
            .iter()
            .map(|f| {
                let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
                let mark = match (f.changed, f.secret) {
                    (true, true) => "* (secret changed)",
                    (true, false) => "*",
                    _ => "",
                };
                vec![
                    format!("  {}", f.field),
                    side(&f.before),
                    side(&f.after),
                    mark.to_string(),
                ]
            })
            .collect();
        out.push_str(&super::render::table(
            &["  FIELD", "BEFORE", "AFTER", "CHANGED"],
            &rows,
            true,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options_parse() {
        let q = query(&[
            "--month",
            "2026-11",
            "--day=3",
            "--user",
            "root",
            "--type",
            "device",
            "--action",
            "delete",
            "--page",
            "2",
            "--page-size",
            "10",
            "--columns",
            "txid,user",
        ])
        .unwrap();
        assert_eq!(q.month.as_deref(), Some("2026-11"));
        assert_eq!(q.day, Some(3));
        assert_eq!(q.page, 2);
        assert_eq!(q.columns, ["txid", "user"]);
        for bad in [
            &["--month", "2026-1"][..],
            &["--day", "32"],
            &["--action", "frob"],
            &["--columns", "secret"],
            &["--page"],
            &["--page-size", "0"],
            &["--month", "2026-11", "extra"],
        ] {
            assert!(query(bad).is_err(), "{bad:?}");
        }
        assert!(is_query(&["--month", "2026-11"]));
        assert!(is_query(&["--columns=txid"]));
        assert!(!is_query(&["--limit", "3"]));
        assert!(txid("0").is_err() && txid("x").is_err());
    }
}
