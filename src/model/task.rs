//! Scheduled tasks ("Send CDR", "Send Call Center CDR") and the mail
//! (SMTP) settings they are delivered with.
//!
//! Every rule of a task is checked when it is built from fields; the error
//! names the field. The one rule that depends on other configuration (a
//! call-center task needs the call-center licence) is in `store::rules`.

use super::prov::{Fields, MASK};
use crate::schedule::{Cadence, Interval, TaskSpec};

/// The id of the mail settings singleton.
pub const MAIL_ID: &str = "mail";

/// Most recipients one task may have.
pub const MAX_RECIPIENTS: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskType {
    SendCdr,
    SendCallCenterCdr,
}

impl TaskType {
    pub const ALL: [TaskType; 2] = [TaskType::SendCdr, TaskType::SendCallCenterCdr];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::SendCdr => "send_cdr",
            TaskType::SendCallCenterCdr => "send_callcenter_cdr",
        }
    }

    /// The human name used in mail subjects.
    pub fn title(self) -> &'static str {
        match self {
            TaskType::SendCdr => "Send CDR",
            TaskType::SendCallCenterCdr => "Send Call Center CDR",
        }
    }
}

/// The file format of a task's export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Xlsx,
    XlsxDetailed,
    Csv,
    CsvDetailed,
    Json,
    Xml,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 6] = [
        ReportFormat::Xlsx,
        ReportFormat::XlsxDetailed,
        ReportFormat::Csv,
        ReportFormat::CsvDetailed,
        ReportFormat::Json,
        ReportFormat::Xml,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::XlsxDetailed => "xlsx_detailed",
            ReportFormat::Csv => "csv",
            ReportFormat::CsvDetailed => "csv_detailed",
            ReportFormat::Json => "json",
            ReportFormat::Xml => "xml",
        }
    }

    pub fn is_detailed(self) -> bool {
        matches!(self, ReportFormat::XlsxDetailed | ReportFormat::CsvDetailed)
    }

    /// File name extension of the (unzipped) export.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Xlsx | ReportFormat::XlsxDetailed => "xlsx",
            ReportFormat::Csv | ReportFormat::CsvDetailed => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Xml => "xml",
        }
    }
}

pub fn interval_name(i: Interval) -> &'static str {
    match i {
        Interval::CurrentDay => "current_day",
        Interval::PreviousDay => "previous_day",
        Interval::CurrentWeek => "current_week",
        Interval::PreviousWeek => "previous_week",
        Interval::CurrentMonth => "current_month",
        Interval::PreviousMonth => "previous_month",
    }
}

/// Every named interval, in their on-disk tag order.
pub const INTERVALS: [Interval; 6] = [
    Interval::CurrentDay,
    Interval::PreviousDay,
    Interval::CurrentWeek,
    Interval::PreviousWeek,
    Interval::CurrentMonth,
    Interval::PreviousMonth,
];

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Compression rule: zip the export when it is larger than this many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZipRule {
    Never,
    /// Zip when larger than N MB, with MB = 10^6 bytes; 0 = always.
    OverMb(u32),
}

impl ZipRule {
    pub fn applies(self, size: u64) -> bool {
        match self {
            ZipRule::Never => false,
            ZipRule::OverMb(0) => true,
            ZipRule::OverMb(n) => size > u64::from(n) * 1_000_000,
        }
    }
}

/// A scheduled task. Its id is a number, assigned at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: u64,
    pub name: String,
    pub task_type: TaskType,
    pub enabled: bool,
    pub cadence: Cadence,
    pub hour: u8,
    pub minute: u8,
    pub interval: Interval,
    pub format: ReportFormat,
    pub operator_events: bool,
    pub zip: ZipRule,
    pub notify_supervisors: bool,
    pub mask_numbers: bool,
    pub recipients: Vec<String>,
}

fn one_of<T: Copy>(
    key: &str,
    v: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    let v = v.trim().to_ascii_lowercase().replace('-', "_");
    all.iter().copied().find(|t| name(*t) == v).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|t| name(*t)).collect();
        format!("{key}: {v:?} is not one of {}", names.join(", "))
    })
}

/// A plain `local@domain` address: no display name, no spaces, one `@`,
/// a dotted domain. Stricter than RFC 5322 on purpose.
pub fn email(key: &str, v: &str) -> Result<String, String> {
    let bad = || format!("{key}: {v:?} is not an e-mail address");
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if local_ok && domain_ok {
        Ok(v.to_string())
    } else {
        Err(bad())
    }
}

fn time_of_day(v: &str) -> Result<(u8, u8), String> {
    let bad = || format!("time: {v:?} is not HH:MM (00:00 to 23:59)");
    let (h, m) = v.split_once(':').ok_or_else(bad)?;
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 || v.len() > 5 {
        return Err(bad());
    }
    Ok((h, m))
}

impl Task {
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            enabled: self.enabled,
            cadence: self.cadence,
            hour: self.hour,
            minute: self.minute,
            interval: self.interval,
        }
    }

    /// Builds a task from `key=value` fields over `prev` (`None` creates the
    /// task with id `new_id`). Every rule is checked; errors name the field.
    pub fn from_fields(
        prev: Option<&Task>,
        new_id: u64,
        fields: &mut Fields,
    ) -> Result<Task, String> {
        let mut take = |k: &str| fields.take(k);
        let name = match take("name") {
            Some(v) => v.trim().to_string(),
            None => prev.map(|p| p.name.clone()).unwrap_or_default(),
        };
        if name.is_empty() {
            return Err("name is required".into());
        }
        if name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err("name: 1 to 64 characters, one line".into());
        }
        let task_type = match (take("type"), prev) {
            (Some(v), _) => one_of("type", v, &TaskType::ALL, TaskType::as_str)?,
            (None, Some(p)) => p.task_type,
            (None, None) => {
                return Err("type is required (send_cdr or send_callcenter_cdr)".into());
            }
        };
        if prev.is_some_and(|p| p.task_type != task_type) {
            return Err("type cannot change; create a new task".into());
        }
        let enabled = match take("enabled") {
            Some(v) => super::prov::boolean("enabled", v)?,
            None => prev.is_none_or(|p| p.enabled),
        };
        let (hour, minute) = match take("time") {
            Some(v) => time_of_day(v)?,
            None => prev.map_or((0, 0), |p| (p.hour, p.minute)),
        };
        let schedule = take("schedule");
        let weekday = take("weekday");
        let day = take("day_of_month");
        let cadence = match schedule.map(|s| s.trim().to_ascii_lowercase()) {
            None => match prev {
                Some(p) => p.cadence,
                None => return Err("schedule is required (daily, weekly or monthly)".into()),
            },
            Some(s) if s == "daily" => Cadence::Daily,
            Some(s) if s == "weekly" => Cadence::Weekly { weekday: 0 },
            Some(s) if s == "monthly" => Cadence::Monthly { day: 0 },
            Some(s) => return Err(format!("schedule: {s:?} is not daily, weekly or monthly")),
        };
        let cadence = match cadence {
            Cadence::Daily => {
                if weekday.is_some() {
                    return Err("weekday: only for a weekly schedule".into());
                }
                if day.is_some() {
                    return Err("day_of_month: only for a monthly schedule".into());
                }
                Cadence::Daily
            }
            Cadence::Weekly { weekday: old } => {
                if day.is_some() {
                    return Err("day_of_month: only for a monthly schedule".into());
                }
                let wd = match weekday {
                    Some(v) => parse_weekday(v)?,
                    None if old != 0 => old,
                    None => return Err("weekday is required for a weekly schedule".into()),
                };
                Cadence::Weekly { weekday: wd }
            }
            Cadence::Monthly { day: old } => {
                if weekday.is_some() {
                    return Err("weekday: only for a weekly schedule".into());
                }
                let d = match day {
                    Some(v) => match v.trim().parse::<u8>() {
                        Ok(d @ 1..=31) => d,
                        _ => return Err(format!("day_of_month: {v:?} is not a day 1-31")),
                    },
                    None if old != 0 => old,
                    None => return Err("day_of_month is required for a monthly schedule".into()),
                };
                Cadence::Monthly { day: d }
            }
        };
        let interval = match take("interval") {
            Some(v) => one_of("interval", v, &INTERVALS, interval_name)?,
            None => prev.map_or(Interval::PreviousDay, |p| p.interval),
        };
        let format = match take("format") {
            Some(v) => one_of("format", v, &ReportFormat::ALL, ReportFormat::as_str)?,
            None => prev.map_or(ReportFormat::Xlsx, |p| p.format),
        };
        let operator_events = match take("operator_events") {
            Some(v) => super::prov::boolean("operator_events", v)?,
            None => prev.is_some_and(|p| p.operator_events),
        };
        let zip = match take("zip_over_mb") {
            Some(v) if v.trim().eq_ignore_ascii_case("never") => ZipRule::Never,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n <= 10_000 => ZipRule::OverMb(n),
                _ => {
                    return Err(format!(
                        "zip_over_mb: {v:?} is not a number of MB (10^6 bytes) 0-10000, or never"
                    ));
                }
            },
            None => prev.map_or(ZipRule::OverMb(5), |p| p.zip),
        };
        let notify_supervisors = match take("notify_supervisors") {
            Some(v) => super::prov::boolean("notify_supervisors", v)?,
            None => prev.is_some_and(|p| p.notify_supervisors),
        };
        let mask_numbers = match take("mask_numbers") {
            Some(v) => super::prov::boolean("mask_numbers", v)?,
            None => prev.is_some_and(|p| p.mask_numbers),
        };
        let recipients = match take("recipients") {
            Some(v) => {
                let mut out: Vec<String> = Vec::new();
                for a in v.split([',', ' ', ';']).filter(|a| !a.is_empty()) {
                    let a = email("recipients", a)?;
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                        out.push(a);
                    }
                }
                if out.len() > MAX_RECIPIENTS {
                    return Err(format!("recipients: at most {MAX_RECIPIENTS} addresses"));
                }
                out
            }
            None => prev.map(|p| p.recipients.clone()).unwrap_or_default(),
        };
        let cc = task_type == TaskType::SendCallCenterCdr;
        if operator_events && !cc {
            return Err("operator_events: only for a send_callcenter_cdr task".into());
        }
        if operator_events && !format.is_detailed() {
            return Err(
                "operator_events: needs a detailed format (xlsx_detailed or csv_detailed)".into(),
            );
        }
        if notify_supervisors && !cc {
            return Err("notify_supervisors: only for a send_callcenter_cdr task".into());
        }
        if recipients.is_empty() && !notify_supervisors {
            return Err(if cc {
                "recipients: at least one address is required, or notify_supervisors=yes".into()
            } else {
                "recipients: at least one address is required".into()
            });
        }
        Ok(Task {
            id: prev.map_or(new_id, |p| p.id),
            name,
            task_type,
            enabled,
            cadence,
            hour,
            minute,
            interval,
            format,
            operator_events,
            zip,
            notify_supervisors,
            mask_numbers,
            recipients,
        })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
        let (schedule, weekday, day) = match self.cadence {
            Cadence::Daily => ("daily", String::new(), String::new()),
            Cadence::Weekly { weekday } => (
                "weekly",
                WEEKDAYS
                    .get(usize::from(weekday).wrapping_sub(1))
                    .copied()
                    .unwrap_or("")
                    .to_string(),
                String::new(),
            ),
            Cadence::Monthly { day } => ("monthly", String::new(), day.to_string()),
        };
        vec![
            ("id", self.id.to_string()),
            ("name", self.name.clone()),
            ("type", self.task_type.as_str().to_string()),
            ("enabled", yn(self.enabled)),
            ("schedule", schedule.to_string()),
            ("time", format!("{:02}:{:02}", self.hour, self.minute)),
            ("weekday", weekday),
            ("day_of_month", day),
            ("interval", interval_name(self.interval).to_string()),
            ("format", self.format.as_str().to_string()),
            ("operator_events", yn(self.operator_events)),
            (
                "zip_over_mb",
                match self.zip {
                    ZipRule::Never => "never".to_string(),
                    ZipRule::OverMb(n) => n.to_string(),
                },
            ),
            ("notify_supervisors", yn(self.notify_supervisors)),
            ("mask_numbers", yn(self.mask_numbers)),
            ("recipients", self.recipients.join(", ")),
        ]
    }
}

fn parse_weekday(v: &str) -> Result<u8, String> {
    let l = v.trim().to_ascii_lowercase();
    if let Ok(n @ 1..=7) = l.parse::<u8>() {
        return Ok(n);
    }
    WEEKDAYS
        .iter()
        .position(|d| *d == l || (l.len() >= 3 && d.starts_with(&l)))
        .and_then(|i| u8::try_from(i + 1).ok())
        .ok_or_else(|| format!("weekday: {v:?} is not monday..sunday or 1-7"))
}

/// How the SMTP connection is secured. There is no fallback: a TLS mode
/// that cannot be set up fails the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

impl Security {
    pub const ALL: [Security; 3] = [Security::None, Security::StartTls, Security::Tls];

    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::StartTls => "starttls",
            Security::Tls => "tls",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// The SMTP settings (a singleton, id [`MAIL_ID`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailSettings {
    pub server: String,
    /// 0 = the security mode's default port.
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub password: String,
    pub sender: String,
    /// How long transient failures are retried, in minutes.
    pub retry_minutes: u32,
}

impl MailSettings {
    pub fn effective_port(&self) -> u16 {
        if self.port == 0 {
            self.security.default_port()
        } else {
            self.port
        }
    }

    pub fn from_fields(
        prev: Option<&MailSettings>,
        fields: &mut Fields,
    ) -> Result<MailSettings, String> {
        let mut take = |k: &str| fields.take(k).map(str::trim);
        let server = match take("server") {
            Some(v) => {
                if v.is_empty()
                    || v.len() > 253
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                {
                    return Err(format!("server: {v:?} is not a host name or IP address"));
                }
                v.to_string()
            }
            None => prev.map(|p| p.server.clone()).unwrap_or_default(),
        };
        if server.is_empty() {
            return Err("server is required".into());
        }
        let port = match take("port") {
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| format!("port: {v:?} is not 0-65535 (0 = default of the security)"))?,
            None => prev.map_or(0, |p| p.port),
        };
        let security = match take("security") {
            Some(v) => one_of("security", v, &Security::ALL, Security::as_str)?,
            None => prev.map_or(Security::StartTls, |p| p.security),
        };
        let user = match take("user") {
            Some(v) if v.len() > 256 || v.chars().any(char::is_control) => {
                return Err("user: up to 256 characters, one line".into());
            }
            Some(v) => v.to_string(),
            None => prev.map(|p| p.user.clone()).unwrap_or_default(),
        };
        let password = match take("password") {
            Some(v) if v.len() > 256 || v.chars().any(char::is_control) => {
                return Err("password: up to 256 characters, one line".into());
            }
            Some(v) => v.to_string(),
            None => prev.map(|p| p.password.clone()).unwrap_or_default(),
        };
        if user.is_empty() != password.is_empty() {
            return Err("user and password: give both or neither".into());
        }
        let sender = match take("sender") {
            Some(v) => email("sender", v)?,
            None => prev.map(|p| p.sender.clone()).unwrap_or_default(),
        };
        if sender.is_empty() {
            return Err("sender is required".into());
        }
        let retry_minutes = match take("retry_minutes") {
            Some(v) => match v.parse::<u32>() {
                Ok(n @ 1..=10_080) => n,
                _ => return Err(format!("retry_minutes: {v:?} is not 1-10080 (a week)")),
            },
            None => prev.map_or(24 * 60, |p| p.retry_minutes),
        };
        Ok(MailSettings {
            server,
            port,
            security,
            user,
            password,
            sender,
            retry_minutes,
        })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("server", self.server.clone()),
            ("port", self.effective_port().to_string()),
            ("security", self.security.as_str().to_string()),
            ("user", self.user.clone()),
            (
                "password",
                if self.password.is_empty() {
                    String::new()
                } else {
                    MASK.to_string()
                },
            ),
            ("sender", self.sender.clone()),
            ("retry_minutes", self.retry_minutes.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn task(fields: &[(&str, &str)]) -> Result<Task, String> {
        let owned: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut f = Fields::new(&owned)?;
        let t = Task::from_fields(None, 7, &mut f)?;
        f.finish("task")?;
        Ok(t)
    }

    const BASE: [(&str, &str); 4] = [
        ("name", "Daily CDR"),
        ("type", "send_cdr"),
        ("schedule", "daily"),
        ("recipients", "a@example.com"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = BASE
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn a_minimal_task_gets_defaults() {
        let t = task(&BASE).unwrap();
        assert_eq!(t.id, 7);
        assert_eq!(t.cadence, Cadence::Daily);
        assert_eq!((t.hour, t.minute), (0, 0));
        assert_eq!(t.interval, Interval::PreviousDay);
        assert_eq!(t.format, ReportFormat::Xlsx);
        assert_eq!(t.zip, ZipRule::OverMb(5));
        assert!(t.enabled);
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (with(&[("name", "")]), "name is required"),
            (with(&[("type", "fax")]), "type: \"fax\" is not one of"),
            (with(&[("schedule", "hourly")]), "schedule: \"hourly\""),
            (with(&[("time", "24:00")]), "time: \"24:00\""),
            (with(&[("time", "7")]), "time: \"7\""),
            (with(&[("schedule", "weekly")]), "weekday is required"),
            (
                with(&[("schedule", "weekly"), ("weekday", "funday")]),
                "weekday: \"funday\"",
            ),
            (with(&[("schedule", "monthly")]), "day_of_month is required"),
            (
                with(&[("schedule", "monthly"), ("day_of_month", "32")]),
                "day_of_month: \"32\"",
            ),
            (with(&[("weekday", "monday")]), "weekday: only for a weekly"),
            (
                with(&[("interval", "yesterday")]),
                "interval: \"yesterday\"",
            ),
            (with(&[("format", "pdf")]), "format: \"pdf\""),
            (with(&[("zip_over_mb", "-1")]), "zip_over_mb: \"-1\""),
            (with(&[("recipients", "")]), "recipients: at least one"),
            (
                with(&[("recipients", "not-an-address")]),
                "recipients: \"not-an-address\"",
            ),
            (
                with(&[("operator_events", "yes")]),
                "operator_events: only for a send_callcenter_cdr",
            ),
            (
                with(&[("type", "send_callcenter_cdr"), ("operator_events", "yes")]),
                "operator_events: needs a detailed format",
            ),
            (
                with(&[("notify_supervisors", "yes")]),
                "notify_supervisors: only for a send_callcenter_cdr",
            ),
            (
                with(&[("type", "send_callcenter_cdr"), ("recipients", "")]),
                "or notify_supervisors=yes",
            ),
            (with(&[("enabled", "maybe")]), "enabled: \"maybe\""),
        ];
        for (fields, want) in cases {
            let err = task(&fields).unwrap_err();
            assert!(err.contains(want), "{fields:?}: {err:?} lacks {want:?}");
        }
    }

    #[test]
    fn call_center_options_and_schedules() {
        let t = task(&with(&[
            ("type", "send_callcenter_cdr"),
            ("format", "xlsx_detailed"),
            ("operator_events", "yes"),
            ("notify_supervisors", "yes"),
            ("recipients", ""),
            ("schedule", "weekly"),
            ("weekday", "sun"),
            ("time", "06:30"),
            ("zip_over_mb", "never"),
        ]))
        .unwrap();
        assert_eq!(t.cadence, Cadence::Weekly { weekday: 7 });
        assert_eq!((t.hour, t.minute), (6, 30));
        assert_eq!(t.zip, ZipRule::Never);
        let m = task(&with(&[("schedule", "monthly"), ("day_of_month", "31")])).unwrap();
        assert_eq!(m.cadence, Cadence::Monthly { day: 31 });
        assert_eq!(m.spec().validate(), Ok(()));
    }

    #[test]
    fn updates_keep_what_is_not_given() {
        let t = task(&with(&[("schedule", "monthly"), ("day_of_month", "15")])).unwrap();
        let owned = vec![("time".to_string(), "23:59".to_string())];
        let mut f = Fields::new(&owned).unwrap();
        let u = Task::from_fields(Some(&t), 99, &mut f).unwrap();
        assert_eq!(u.id, 7);
        assert_eq!(u.cadence, Cadence::Monthly { day: 15 });
        assert_eq!((u.hour, u.minute), (23, 59));
        let owned = vec![("type".to_string(), "send_callcenter_cdr".to_string())];
        let mut f = Fields::new(&owned).unwrap();
        assert!(Task::from_fields(Some(&t), 99, &mut f).is_err());
    }

    #[test]
    fn zip_rule_uses_decimal_megabytes() {
        assert!(ZipRule::OverMb(0).applies(0));
        assert!(!ZipRule::OverMb(1).applies(1_000_000));
        assert!(ZipRule::OverMb(1).applies(1_000_001));
        assert!(!ZipRule::Never.applies(u64::MAX));
    }

    #[test]
    fn mail_settings_rules() {
        let mk = |fields: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut f = Fields::new(&owned)?;
            let m = MailSettings::from_fields(None, &mut f)?;
            f.finish("mail")?;
            Ok::<_, String>(m)
        };
        let m = mk(&[
            ("server", "smtp.example.com"),
            ("sender", "pbx@example.com"),
        ])
        .unwrap();
        assert_eq!(m.security, Security::StartTls);
        assert_eq!(m.effective_port(), 587);
        assert!(
            mk(&[("sender", "pbx@example.com")])
                .unwrap_err()
                .contains("server is required")
        );
        assert!(
            mk(&[("server", "a b"), ("sender", "x@y.z")])
                .unwrap_err()
                .starts_with("server:")
        );
        assert!(
            mk(&[("server", "h"), ("sender", "nope")])
                .unwrap_err()
                .starts_with("sender:")
        );
        assert!(
            mk(&[("server", "h"), ("sender", "x@y.z"), ("security", "ssl3")])
                .unwrap_err()
                .starts_with("security:")
        );
        assert!(
            mk(&[("server", "h"), ("sender", "x@y.z"), ("user", "u")])
                .unwrap_err()
                .contains("both or neither")
        );
        let m = mk(&[
            ("server", "h"),
            ("sender", "x@y.z"),
            ("user", "u"),
            ("password", "secret"),
        ])
        .unwrap();
        assert!(!m.fields().iter().any(|(_, v)| v.contains("secret")));
    }

    #[test]
    fn email_addresses() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(email("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@@b.co",
            "a b@c.de",
            ".a@b.co",
            "a@-b.co",
            "Name <a@b.co>",
        ] {
            assert!(email("x", bad).is_err(), "{bad}");
        }
    }
}
