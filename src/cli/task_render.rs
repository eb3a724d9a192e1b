//! `kpbx task ...` and `kpbx mail ...`: grammar and rendering.

use jiff::tz::TimeZone;

use super::render::{local, table};
use crate::control::{
    Command, DeliveryView, MailTestView, OutboxView, TaskRunView, TaskStartedView,
};

/// Field help shown by `kpbx task --help` and `kpbx mail --help`.
pub const HELP: &str = "
Task fields (kpbx task add / set):
  name=TEXT                 shown in the mail's subject and body (required)
  type=send_cdr|send_callcenter_cdr   (required; call center needs callcenter_licence)
  enabled=yes|no            disabled tasks run only with `kpbx task run` (default yes)
  schedule=daily|weekly|monthly       (required)
  time=HH:MM                local time of the run (default 00:00)
  weekday=monday..sunday    weekly only
  day_of_month=1-31         monthly only; 29-31 run on the last day of shorter months
  interval=current_day|previous_day|current_week|previous_week|current_month|previous_month
                            the period exported (default previous_day; weeks start on Monday)
  format=xlsx|xlsx_detailed|csv|csv_detailed|json|xml   (default xlsx)
  operator_events=yes|no    call center with a detailed format only
  zip_over_mb=N|never       zip the export when larger than N MB, MB = 10^6 bytes;
                            0 = always (default 5)
  notify_supervisors=yes|no call center only: also mail every supervisor with an address
  mask_numbers=yes|no       hide the last three digits of phone numbers
  recipients=ADDR,ADDR...   at least one, unless notify_supervisors=yes

Mail fields (kpbx mail configure):
  server=HOST  port=N (0 = default of the security: 25, 587, 465)
  security=none|starttls|tls   (default starttls; TLS asked is never downgraded)
  user=NAME password=SECRET    sender=ADDRESS (required)
  retry_minutes=N              how long temporary failures are retried (default 1440)
";

fn id(word: &str) -> Result<u64, String> {
    word.parse()
        .map_err(|_| format!("{word:?} is not a task id (a number)"))
}

fn limit(words: &[&str]) -> Result<(Vec<String>, u32), String> {
    let mut rest = Vec::new();
    let mut limit = 20;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if *w == "--limit" {
            let n = it.next().ok_or("--limit needs a number")?;
            limit = n
                .parse()
                .map_err(|_| format!("--limit: {n:?} is not a number"))?;
        } else {
            rest.push(w.to_string());
        }
    }
    Ok((rest, limit))
}

/// Parses `task ...` and `mail ...` words.
pub fn parse(words: &[&str]) -> Result<Command, String> {
    let kv = |w: &[&str]| super::key_values(w);
    match words {
        ["task", "add", rest @ ..] if !rest.is_empty() => {
            Ok(Command::TaskAdd { fields: kv(rest)? })
        }
        ["task", "set", i, rest @ ..] if !rest.is_empty() => Ok(Command::TaskSet {
            id: id(i)?,
            fields: kv(rest)?,
        }),
        ["task", "delete", rest @ ..] if !rest.is_empty() => Ok(Command::TaskDelete {
            ids: rest.iter().map(|w| id(w)).collect::<Result<_, _>>()?,
        }),
        ["task", "list"] => Ok(Command::TaskList),
        ["task", "show", i] => Ok(Command::TaskShow { id: id(i)? }),
        ["task", "run", i] => Ok(Command::TaskRun { id: id(i)? }),
        ["task", "history", rest @ ..] => {
            let (rest, limit) = limit(rest)?;
            let id = match rest.as_slice() {
                [] => None,
                [i] => Some(id(i)?),
                _ => return Err("task history takes at most one task id".into()),
            };
            Ok(Command::TaskHistory { id, limit })
        }
        ["mail", "configure", rest @ ..] if !rest.is_empty() => {
            Ok(Command::MailConfigure { fields: kv(rest)? })
        }
        ["mail", "show"] => Ok(Command::MailShow),
        ["mail", "test", address] => Ok(Command::MailTest {
            address: address.to_string(),
        }),
        ["mail", "retry"] => Ok(Command::MailRetry),
        ["mail", "outbox", rest @ ..] => {
            let (rest, limit) = limit(rest)?;
            if !rest.is_empty() {
                return Err("mail outbox takes only --limit N".into());
            }
            Ok(Command::MailOutbox { limit })
        }
        [area, verb, ..] => Err(format!(
            "wrong arguments for `{area} {verb}`; see kpbx {area} --help"
        )),
        [area] => Err(format!("{area} needs a verb; see kpbx {area} --help")),
        [] => Err("no command".into()),
    }
}

pub fn started(v: &TaskStartedView) -> String {
    format!("task {}: {} (run {})\n", v.task, v.message, v.run)
}

fn deliveries(ds: &[DeliveryView], tz: &TimeZone) -> String {
    ds.iter()
        .map(|d| {
            let mut s = format!("{} {}", d.recipient, d.status);
            match d.status.as_str() {
                "pending" => s.push_str(&format!(
                    " (attempt {} next {}{})",
                    d.attempts + 1,
                    local(d.at_us, tz),
                    if d.detail.is_empty() {
                        String::new()
                    } else {
                        format!(", last error: {}", d.detail)
                    }
                )),
                "failed" => s.push_str(&format!(" ({})", d.detail)),
                _ => s.push_str(&format!(" {}", local(d.at_us, tz))),
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn history(runs: &[TaskRunView], tz: &TimeZone) -> String {
    if runs.is_empty() {
        return "no runs\n".into();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run.to_string(),
                format!("{} {}", r.task, r.task_name),
                r.trigger.clone(),
                local(r.started_us, tz),
                r.finished_us.map_or("-".into(), |f| local(f, tz)),
                format!(
                    "{} .. {}",
                    local(r.period_start_us, tz),
                    local(r.period_end_us, tz)
                ),
                r.state.clone(),
                r.records.to_string(),
                if r.file_name.is_empty() {
                    "-".into()
                } else {
                    format!(
                        "{} ({} bytes{})",
                        r.file_name,
                        r.file_bytes,
                        if r.zipped { ", zipped" } else { "" }
                    )
                },
                if r.error.is_empty() {
                    deliveries(&r.deliveries, tz)
                } else {
                    r.error.clone()
                },
            ]
        })
        .collect();
    let mut out = table(
        &[
            "RUN", "TASK", "TRIGGER", "START", "END", "INTERVAL", "STATE", "RECORDS", "FILE",
            "DELIVERY",
        ],
        &rows,
        true,
    );
    out.push_str(&format!("times in {}\n", super::render::zone_name(tz)));
    out
}

pub fn outbox(list: &[OutboxView], tz: &TimeZone) -> String {
    if list.is_empty() {
        return "the outbox is empty\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                local(m.queued_us, tz),
                m.subject.clone(),
                deliveries(&m.deliveries, tz),
            ]
        })
        .collect();
    let mut out = table(&["ID", "QUEUED", "SUBJECT", "DELIVERY"], &rows, true);
    out.push_str(&format!("times in {}\n", super::render::zone_name(tz)));
    out
}

pub fn tested(v: &MailTestView) -> String {
    format!("{}: {}\n", v.address, v.detail)
}
