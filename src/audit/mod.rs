//! The audit log as people use it: which entries a listing selects (month,
//! day, user, object type, action, paging), which columns it shows, the
//! field-by-field diff of a transaction, and the plan that puts a
//! transaction's objects back as they were before it.
//!
//! Invariant: pure (except `export`, which reads the store through
//! `Store::audit_scan` and writes only the `Write` it is given). Time arrives as an argument and the store is reached only
//! through what the caller passes in; secrets never leave as values (a
//! secret field is reported as changed or not, never shown).

pub mod export;

use crate::model::{Action, Change, Object, ObjectRef, prov::MASK};

/// The columns of `kpbx audit list --columns`, in their default order.
pub const COLUMNS: &[&str] = &[
    "txid",
    "day",
    "time",
    "user",
    "ip",
    "action",
    "object_type",
    "description",
];

/// Largest audit page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The one rule for a bounded number option (`page` 1.., `page_size`
/// 1..=[`MAX_PAGE_SIZE`], `day` 1..=31), shared by the CLI and the API:
/// anything else is refused, never clamped.
pub fn parse_bounded(name: &str, value: &str, max: u32) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("{name} takes a number from 1 to {max}, not {value:?}"))
}

/// Checks a `--columns` list (comma-separated names from [`COLUMNS`]).
pub fn parse_columns(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !COLUMNS.contains(&name) {
            return Err(format!(
                "unknown column {name:?}; columns are {}",
                COLUMNS.join(", ")
            ));
        }
        if !out.iter().any(|c| c == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err("--columns needs at least one column".to_string());
    }
    Ok(out)
}

/// A calendar month, `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub year: i16,
    pub month: i8,
}

impl Month {
    pub fn parse(text: &str) -> Result<Month, String> {
        let bad = || format!("month {text:?} is not YYYY-MM");
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month that holds `now_us` in `tz`.
    pub fn of(now_us: i64, tz: &jiff::tz::TimeZone) -> Month {
        let dt = jiff::Timestamp::from_microsecond(now_us)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(tz.clone());
        Month {
            year: dt.year(),
            month: dt.month(),
        }
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The UTC microsecond range `[start, end)` of a month, or of one day of it,
/// in the box's time zone.
pub fn period(
    month: Month,
    day: Option<u8>,
    tz: &jiff::tz::TimeZone,
) -> Result<(i64, i64), String> {
    let first = jiff::civil::date(month.year, month.month, 1);
    let (start, end) = match day {
        None => {
            let next = first
                .checked_add(jiff::Span::new().months(1))
                .map_err(|e| e.to_string())?;
            (first, next)
        }
        Some(d) => {
            let days = first.days_in_month();
            if d == 0 || i8::try_from(d).map_or(true, |d| d > days) {
                return Err(format!("day {d} is not in {month} (1 to {days})"));
            }
            let start = jiff::civil::date(month.year, month.month, d as i8);
            let end = start
                .checked_add(jiff::Span::new().days(1))
                .map_err(|e| e.to_string())?;
            (start, end)
        }
    };
    let us = |d: jiff::civil::Date| -> Result<i64, String> {
        Ok(d.to_zoned(tz.clone())
            .map_err(|e| e.to_string())?
            .timestamp()
            .as_microsecond())
    };
    Ok((us(start)?, us(end)?))
}

/// What a listing selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// UTC microseconds, start inclusive, end exclusive.
    pub start_us: i64,
    pub end_us: i64,
    pub user: Option<String>,
    pub kind: Option<String>,
    pub action: Option<Action>,
}

impl Filter {
    pub fn matches(&self, time_us: i64, user: &str, kind: &str, action: Action) -> bool {
        (self.start_us..self.end_us).contains(&time_us)
            && self.user.as_deref().is_none_or(|u| u == user)
            && self.kind.as_deref().is_none_or(|k| k == kind)
            && self.action.is_none_or(|a| a == action)
    }
}

pub fn parse_action(name: &str) -> Result<Action, String> {
    match name {
        "create" => Ok(Action::Create),
        "update" => Ok(Action::Update),
        "delete" => Ok(Action::Delete),
        other => Err(format!(
            "unknown action {other:?}; actions are create, update, delete"
        )),
    }
}

/// One field of an object before and after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    pub field: String,
    /// `None` when the object did not exist on that side.
    pub before: Option<String>,
    pub after: Option<String>,
    /// A secret: the values are masked, `changed` says whether it changed.
    pub secret: bool,
    pub changed: bool,
}

/// The fields of an object before and after a change, secrets masked. Fields
/// are in the object's own order; unchanged fields are included (with
/// `changed == false`) so that a reader sees the whole object.
pub fn diff(before: Option<&Object>, after: Option<&Object>) -> Vec<FieldDiff> {
    let fields = |o: Option<&Object>| o.map(Object::fields).unwrap_or_default();
    let secrets = |o: Option<&Object>| o.map(Object::secrets).unwrap_or_default();
    let (bf, af) = (fields(before), fields(after));
    let (bs, as_) = (secrets(before), secrets(after));
    let mut names: Vec<&'static str> = bf.iter().map(|(k, _)| *k).collect();
    for (k, _) in &af {
        if !names.contains(k) {
            names.push(k);
        }
    }
    let find = |list: &[(&'static str, String)], name: &str| {
        list.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    names
        .into_iter()
        .map(|name| {
            let b = before.map(|_| find(&bf, name).unwrap_or_default());
            let a = after.map(|_| find(&af, name).unwrap_or_default());
            let raw = |list: &[(&'static str, String)]| find(list, name);
            let secret = bs.iter().chain(as_.iter()).any(|(k, _)| *k == name)
                || b.as_deref() == Some(MASK)
                || a.as_deref() == Some(MASK);
            let changed = if secret {
                raw(&bs) != raw(&as_) || b != a
            } else {
                b != a
            };
            FieldDiff {
                field: name.to_string(),
                before: b,
                after: a,
                secret,
                changed,
            }
        })
        .collect()
}

/// One object of a past transaction, as the audit log recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touched {
    pub target: ObjectRef,
    pub before: Option<Object>,
    pub after: Option<Object>,
}

/// The changes that put every object of a transaction back to its state
/// before it: re-create what it deleted, revert what it updated, remove
/// what it created. `current` tells the object's state now; a change that
/// would find the object already as wanted is left out (that only happens
/// under `--force`, when later transactions moved it).
pub fn restore_plan(
    touched: &[Touched],
    mut current: impl FnMut(&ObjectRef) -> Option<Object>,
) -> Vec<Change> {
    let mut plan = Vec::new();
    for t in touched {
        let now = current(&t.target);
        match (&t.before, now) {
            (Some(before), now) => {
                if now.as_ref() != Some(before) {
                    plan.push(Change::put(before.clone()));
                }
            }
            (None, Some(_)) => plan.push(Change::Delete(t.target.clone())),
            (None, None) => {}
        }
    }
    // Order does not matter: the store checks its rules after all the
    // writes of a commit.
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Setting, SettingKey};

    #[test]
    fn months_and_days_are_periods_in_the_zone() {
        let rome = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
        let m = Month::parse("2026-03").unwrap();
        let (s, e) = period(m, None, &rome).unwrap();
        // 2026-03-01T00:00+01:00 and 2026-04-01T00:00+02:00
        assert_eq!(s, 1_772_319_600_000_000);
        assert_eq!(e, 1_774_994_400_000_000);
        let (s, e) = period(m, Some(29), &rome).unwrap();
        // The day of the switch to summer time has 23 hours.
        assert_eq!(e - s, 23 * 3600 * 1_000_000);
        assert!(period(m, Some(32), &rome).is_err());
        assert!(period(m, Some(0), &rome).is_err());
        for bad in ["2026-3", "2026-13", "26-03", "x", "2026-00", ""] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Month::of(s, &rome).to_string(), "2026-03");
    }

    #[test]
    fn columns_are_checked() {
        assert_eq!(parse_columns("txid,user").unwrap(), ["txid", "user"]);
        assert!(parse_columns("txid,password").is_err());
        assert!(parse_columns("").is_err());
    }

    fn setting(v: &str) -> Object {
        Object::Setting(Setting::new(SettingKey::Hostname, v).unwrap())
    }

    #[test]
    fn diff_shows_fields_and_hides_secrets() {
        let d = diff(Some(&setting("a")), Some(&setting("b")));
        assert_eq!(d.len(), 1);
        assert!(d[0].changed && !d[0].secret);
        let acc = |pw: &str| {
            Object::from_fields(
                Kind::Account,
                None,
                &[
                    ("extension".into(), "100".into()),
                    ("sip_password".into(), pw.into()),
                ],
            )
            .unwrap()
        };
        let d = diff(Some(&acc("secret-one")), Some(&acc("secret-two")));
        let pw = d.iter().find(|f| f.field == "sip_password").unwrap();
        assert!(pw.secret && pw.changed);
        assert_eq!(pw.before.as_deref(), Some(MASK));
        assert_eq!(pw.after.as_deref(), Some(MASK));
        let d = diff(Some(&acc("same-secret")), Some(&acc("same-secret")));
        assert!(d.iter().all(|f| !f.changed));
        let d = diff(None, Some(&acc("x-secret")));
        assert!(d.iter().all(|f| f.before.is_none()));
        let text = format!("{d:?}");
        assert!(!text.contains("x-secret"));
    }

    #[test]
    fn restore_reverses_each_action() {
        let r = ObjectRef {
            kind: Kind::Setting,
            id: "hostname".into(),
        };
        let created = Touched {
            target: r.clone(),
            before: None,
            after: Some(setting("a")),
        };
        let plan = restore_plan(std::slice::from_ref(&created), |_| Some(setting("a")));
        assert_eq!(plan, [Change::Delete(r.clone())]);
        let plan = restore_plan(&[created], |_| None);
        assert!(plan.is_empty());
        let updated = Touched {
            target: r.clone(),
            before: Some(setting("a")),
            after: Some(setting("b")),
        };
        let plan = restore_plan(&[updated], |_| Some(setting("b")));
        assert_eq!(plan, [Change::put(setting("a"))]);
        let deleted = Touched {
            target: r.clone(),
            before: Some(setting("a")),
            after: None,
        };
        let plan = restore_plan(&[deleted], |_| None);
        assert_eq!(plan, [Change::put(setting("a"))]);
    }
}
