//! Every built-in model, rendered for a device with DHCP and one with a
//! static address, in four time zones, checked against its firmware's field
//! dictionary (`kpbxd::provision::dictionary`):
//!
//! - the file parses in its vendor's syntax (a small grammar per plain-text
//!   format here; XML read by a real parser and checked for the vendor's
//!   element structure);
//! - every key it writes exists for that firmware;
//! - every key a phone needs to register and keep time is there with the
//!   right value;
//! - the time-zone fields, read the way each vendor documents them, give
//!   the zone's real offset in summer and in winter and around each change;
//! - a zone a vendor cannot express, and a setting a template cannot write,
//!   is a warning on exactly the affected devices.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use kpbxd::model::{Account, Device, Mac};
use kpbxd::provision::dictionary::{self, Syntax};
use kpbxd::provision::{self, PbxValues, Snapshot, catalogue, tz};

const ZONES: &[&str] = &[
    "Europe/Rome",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];
const YEAR: i16 = 2026;

type Pairs = Vec<(String, String)>;

// ---------------------------------------------------------------- grammars

/// Yealink `.cfg`: the version header, then `key = value` lines, `#`
/// comments and blank lines.
fn yealink_cfg(text: &str) -> Result<Pairs, String> {
    let mut lines = text.lines();
    if lines.next() != Some("#!version:1.0.0.1") {
        return Err("first line is not #!version:1.0.0.1".into());
    }
    let mut out = Vec::new();
    for line in lines {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(" = ")
            .ok_or_else(|| format!("not key = value: {line:?}"))?;
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            return Err(format!("bad key {key:?}"));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Yealink `.boot`: the version header, then `include:config "file"` or
/// `include:config <file>` lines.
fn yealink_boot(text: &str) -> Result<Pairs, String> {
    let mut lines = text.lines();
    if lines.next() != Some("#!version:1.0.0.1") {
        return Err("first line is not #!version:1.0.0.1".into());
    }
    let mut out = Vec::new();
    for line in lines {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let target = line
            .strip_prefix("include:config ")
            .ok_or_else(|| format!("not an include: {line:?}"))?;
        let quoted = (target.starts_with('"') && target.ends_with('"'))
            || (target.starts_with('<') && target.ends_with('>'));
        if !quoted || target.len() < 3 || !target.ends_with(".cfg\"") {
            return Err(format!("bad include target {target:?}"));
        }
        out.push(("include:config".into(), target.to_string()));
    }
    Ok(out)
}

/// Fanvil plain text: `<<VOIP CONFIG FILE>>Version:2.0000000000`, then
/// `<NAME MODULE>` headers, `--Title--  :` separators and `Key  :value`
/// lines, ending with `<<END OF FILE>>`.
fn fanvil_text(text: &str) -> Result<Pairs, String> {
    let mut lines = text.lines();
    if lines.next() != Some("<<VOIP CONFIG FILE>>Version:2.0000000000") {
        return Err("bad header".into());
    }
    let mut out = Vec::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(format!("text after <<END OF FILE>>: {line:?}"));
        }
        if line == "<<END OF FILE>>" {
            ended = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('<') {
            let ok = line.ends_with(" MODULE>")
                && line[1..line.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b' ');
            if !ok {
                return Err(format!("bad section {line:?}"));
            }
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not Key :value: {line:?}"))?;
        let key = key.trim_end();
        if key.starts_with("--") {
            if !key.ends_with("--") || !value.is_empty() {
                return Err(format!("bad separator {line:?}"));
            }
            continue;
        }
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        {
            return Err(format!("bad key {key:?}"));
        }
        out.push((key.to_string(), value.to_string()));
    }
    if !ended {
        return Err("no <<END OF FILE>>".into());
    }
    Ok(out)
}

/// An XML element: name, attributes, children, text.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

/// Reads a whole document strictly (quick-xml), one root element.
fn xml(text: &str) -> Result<Element, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut raw_text: Vec<String> = vec![String::new()];
    let element = |e: &quick_xml::events::BytesStart| -> Result<Element, String> {
        let mut attributes = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key: &str = a.key.as_ref();
            attributes.push((
                key.to_string(),
                quick_xml::escape::unescape(&a.value)
                    .map_err(|e| e.to_string())?
                    .into_owned(),
            ));
        }
        Ok(Element {
            name: {
                let name = e.name();
                let name: &str = name.as_ref();
                name.to_string()
            },
            attributes,
            ..Element::default()
        })
    };
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                stack.push(element(&e)?);
                raw_text.push(String::new());
            }
            Event::Empty(e) => {
                let el = element(&e)?;
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or("unbalanced")?;
                let raw = raw_text.pop().unwrap();
                el.text = quick_xml::escape::unescape(raw.trim())
                    .map_err(|e| e.to_string())?
                    .into_owned();
                stack.last_mut().ok_or("unbalanced")?.children.push(el);
            }
            Event::Text(t) => raw_text.last_mut().unwrap().push_str(t.as_ref()),
            Event::GeneralRef(r) => {
                let name: &str = r.as_ref();
                raw_text.last_mut().unwrap().push_str(&format!("&{name};"));
            }
            Event::CData(_) => return Err("CDATA".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    let mut document = stack.pop().unwrap();
    if !stack.is_empty() || document.children.len() != 1 {
        return Err("not one root element".into());
    }
    Ok(document.children.remove(0))
}

fn only(e: &Element, allowed: &[&str]) -> Result<(), String> {
    match e
        .attributes
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()))
    {
        Some((k, _)) => Err(format!("<{}>: unexpected attribute {k}", e.name)),
        None => Ok(()),
    }
}

fn attr<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.attributes
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parses `text` as `syntax` into key/value pairs, checking the vendor's
/// element structure.
fn parse(syntax: Syntax, text: &str) -> Result<Pairs, String> {
    let leaf = |e: &Element| -> Result<(), String> {
        if e.children.is_empty() {
            Ok(())
        } else {
            Err(format!("<{}> has children", e.name))
        }
    };
    match syntax {
        Syntax::YealinkCfg => yealink_cfg(text),
        Syntax::YealinkBoot => yealink_boot(text),
        Syntax::FanvilText => fanvil_text(text),
        Syntax::SnomXml => {
            let root = xml(text)?;
            if root.name != "settings" || root.children.len() != 1 {
                return Err("expected <settings> with one <phone-settings>".into());
            }
            let ps = &root.children[0];
            if ps.name != "phone-settings" {
                return Err(format!("expected <phone-settings>, found <{}>", ps.name));
            }
            only(ps, &["e"])?;
            ps.children
                .iter()
                .map(|c| {
                    leaf(c)?;
                    only(c, &["idx", "perm"])?;
                    if attr(c, "idx").is_some_and(|i| i != "1") {
                        return Err(format!("{}: only line 1 is written", c.name));
                    }
                    Ok((c.name.clone(), c.text.clone()))
                })
                .collect()
        }
        Syntax::GrandstreamXml => {
            let root = xml(text)?;
            if root.name != "gs_provision" || attr(&root, "version") != Some("1") {
                return Err("expected <gs_provision version=\"1\">".into());
            }
            let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
            if names != ["mac", "config"] {
                return Err(format!("children {names:?}"));
            }
            root.children[1]
                .children
                .iter()
                .map(|c| {
                    leaf(c)?;
                    let n = c.name.strip_prefix('P').unwrap_or("");
                    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("<{}> is no P-value", c.name));
                    }
                    Ok((c.name.clone(), c.text.clone()))
                })
                .collect()
        }
        Syntax::GigasetXml => {
            let root = xml(text)?;
            if root.name != "provisioning"
                || attr(&root, "version") != Some("1.1")
                || attr(&root, "productID") != Some("e2")
            {
                return Err("expected <provisioning version=\"1.1\" productID=\"e2\">".into());
            }
            let [nvm] = root.children.as_slice() else {
                return Err("expected one <nvm>".into());
            };
            if nvm.name != "nvm" {
                return Err(format!("expected <nvm>, found <{}>", nvm.name));
            }
            let mut out = Vec::new();
            let param = |p: &Element| -> Result<(String, String), String> {
                leaf(p)?;
                only(p, &["name", "value"])?;
                if p.name != "param" {
                    return Err(format!("unexpected <{}>", p.name));
                }
                Ok((
                    attr(p, "name").ok_or("param without name")?.to_string(),
                    attr(p, "value").ok_or("param without value")?.to_string(),
                ))
            };
            for c in &nvm.children {
                if c.name == "oper" {
                    only(c, &["name", "value"])?;
                    out.push((
                        format!("oper:{}", attr(c, "name").ok_or("oper without name")?),
                        attr(c, "value").unwrap_or_default().to_string(),
                    ));
                    for p in &c.children {
                        out.push(param(p)?);
                    }
                } else {
                    out.push(param(c)?);
                }
            }
            Ok(out)
        }
        Syntax::PolyMaster => {
            let root = xml(text)?;
            if root.name != "APPLICATION" {
                return Err(format!("expected <APPLICATION>, found <{}>", root.name));
            }
            leaf(&root)?;
            Ok(root.attributes)
        }
        Syntax::PolyXml => {
            let root = xml(text)?;
            if root.name != "polycomConfig" {
                return Err(format!("expected <polycomConfig>, found <{}>", root.name));
            }
            leaf(&root)?;
            Ok(root.attributes)
        }
        Syntax::CiscoXml => {
            let root = xml(text)?;
            if root.name != "flat-profile" {
                return Err(format!("expected <flat-profile>, found <{}>", root.name));
            }
            root.children
                .iter()
                .map(|c| {
                    leaf(c)?;
                    only(c, &["ua"])?;
                    Ok((c.name.clone(), c.text.clone()))
                })
                .collect()
        }
    }
}

// --------------------------------------------------- the vendors' clocks

/// A change as vendors write it: month, week (1-4, 5 = last), weekday,
/// wall-clock seconds before the change.
struct Change {
    month: i8,
    week: i8,
    weekday: Weekday,
    seconds: i64,
}

impl Change {
    fn instant(&self, year: i16, before: i64) -> Timestamp {
        let first = Date::new(year, self.month, 1).unwrap();
        let date = if self.week == 5 {
            first.nth_weekday_of_month(-1, self.weekday)
        } else {
            first.nth_weekday_of_month(self.week, self.weekday)
        }
        .unwrap();
        let midnight = date
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second();
        Timestamp::from_second(midnight + self.seconds - before).unwrap()
    }
}

/// The offset a phone applying `std`, `dst` and the two changes shows at
/// `at`.
fn offset(at: Timestamp, std: i64, rule: Option<(i64, Change, Change)>) -> i64 {
    let Some((save, start, end)) = rule else {
        return std;
    };
    let year = at.to_zoned(TimeZone::UTC).year();
    let (s, e) = (start.instant(year, std), end.instant(year, std + save));
    let summer = if s < e {
        s <= at && at < e
    } else {
        at >= s || at < e
    };
    if summer { std + save } else { std }
}

fn get<'a>(pairs: &'a Pairs, key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `+5:30`, `-5`, `0` to seconds.
fn hours_minutes(s: &str) -> i64 {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    sign * (h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60)
}

fn weekday_monday_one(n: i64) -> Weekday {
    Weekday::from_monday_one_offset(n as i8).unwrap()
}

fn weekday_sunday_zero(n: i64) -> Weekday {
    Weekday::from_sunday_zero_offset(n as i8).unwrap()
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// What a file's time-zone fields make the phone show at `at`, read the way
/// each vendor documents them; `None` when the file writes no time zone.
fn phone_offset(syntax: Syntax, p: &Pairs, at: Timestamp) -> Option<i64> {
    match syntax {
        // Yealink: Month/Week of Month(5 = last)/Day of Week(1 = Mon..7 =
        // Sun)/Hour; offset in minutes.
        Syntax::YealinkCfg => {
            let std = hours_minutes(get(p, "local_time.time_zone")?);
            let rule = (get(p, "local_time.summer_time") == Some("1")).then(|| {
                assert_eq!(get(p, "local_time.dst_time_type"), Some("1"));
                let change = |key: &str| {
                    let f: Vec<i64> = get(p, key).unwrap().split('/').map(num).collect();
                    Change {
                        month: f[0] as i8,
                        week: f[1] as i8,
                        weekday: weekday_monday_one(f[2]),
                        seconds: f[3] * 3600,
                    }
                };
                (
                    num(get(p, "local_time.offset_time").unwrap()) * 60,
                    change("local_time.start_time"),
                    change("local_time.end_time"),
                )
            });
            Some(offset(at, std, rule))
        }
        // Fanvil: quarter-hour index; DST Type 2 = manual, rule mode 2 = by
        // week, Wday 0 = Sunday, week 5 = last.
        Syntax::FanvilText => {
            let std = num(get(p, "Time Zone")?) * 900;
            let name = get(p, "Time Zone Name").unwrap();
            let expected = if std == 0 {
                "UTC".to_string()
            } else {
                let h = (std.abs() / 3600, std.abs() % 3600 / 60);
                let sign = if std < 0 { '-' } else { '+' };
                if h.1 == 0 {
                    format!("UTC{sign}{}", h.0)
                } else {
                    format!("UTC{sign}{}:{:02}", h.0, h.1)
                }
            };
            assert_eq!(name, expected);
            let rule = (get(p, "DST Type") == Some("2")).then(|| {
                assert_eq!(get(p, "DST Rule Mode"), Some("2"));
                let change = |prefix: &str| Change {
                    month: num(get(p, &format!("{prefix} Mon")).unwrap()) as i8,
                    week: num(get(p, &format!("{prefix} Week")).unwrap()) as i8,
                    weekday: weekday_sunday_zero(num(get(p, &format!("{prefix} Wday")).unwrap())),
                    seconds: num(get(p, &format!("{prefix} Hour")).unwrap()) * 3600,
                };
                (
                    num(get(p, "DST Min Offset").unwrap()) * 60,
                    change("DST Start"),
                    change("DST End"),
                )
            });
            Some(offset(at, std, rule))
        }
        // Poly: gmtOffset seconds; date = first day (or last in month),
        // dayOfWeek 1 = Sunday, hour; one hour shift.
        Syntax::PolyXml => {
            let std = num(get(p, "tcpIpApp.sntp.gmtOffset")?);
            let rule = (get(p, "tcpIpApp.sntp.daylightSavings.enable") == Some("1")).then(|| {
                assert_eq!(
                    get(p, "tcpIpApp.sntp.daylightSavings.fixedDayEnable"),
                    Some("0")
                );
                let change = |s: &str| {
                    let key = |k: &str| format!("tcpIpApp.sntp.daylightSavings.{s}.{k}");
                    let last = get(p, &key("dayOfWeek.lastInMonth")) == Some("1");
                    let week = if last {
                        5
                    } else {
                        ((num(get(p, &key("date")).unwrap()) - 1) / 7 + 1) as i8
                    };
                    Change {
                        month: num(get(p, &key("month")).unwrap()) as i8,
                        week,
                        weekday: weekday_sunday_zero(num(get(p, &key("dayOfWeek")).unwrap()) - 1),
                        seconds: num(get(p, &key("time")).unwrap()) * 3600,
                    }
                };
                (3600, change("start"), change("stop"))
            });
            Some(offset(at, std, rule))
        }
        // Cisco: GMT+hh:mm; start=m/d/w/h:m:s with d -1 = last, d = first
        // day otherwise, w 1 = Monday.
        Syntax::CiscoXml => {
            let tz = get(p, "Time_Zone")?;
            let std = hours_minutes(tz.strip_prefix("GMT").unwrap());
            let rule = (get(p, "Daylight_Saving_Time_Enable") == Some("Yes")).then(|| {
                let text = get(p, "Daylight_Saving_Time_Rule").unwrap();
                let parts: BTreeMap<&str, &str> = text
                    .split(';')
                    .map(|kv| kv.split_once('=').unwrap())
                    .collect();
                let hms = |s: &str| {
                    let f: Vec<i64> = s.split(':').map(num).collect();
                    f[0] * 3600 + f.get(1).unwrap_or(&0) * 60 + f.get(2).unwrap_or(&0)
                };
                let change = |s: &str| {
                    let f: Vec<&str> = s.splitn(4, '/').collect();
                    let day = num(f[1]);
                    Change {
                        month: num(f[0]) as i8,
                        week: if day == -1 {
                            5
                        } else {
                            ((day - 1) / 7 + 1) as i8
                        },
                        weekday: weekday_monday_one(num(f[2])),
                        seconds: hms(f[3]),
                    }
                };
                (
                    hms(parts["save"]),
                    change(parts["start"]),
                    change(parts["end"]),
                )
            });
            Some(offset(at, std, rule))
        }
        // Grandstream: the POSIX rule of P246, read by jiff.
        Syntax::GrandstreamXml => {
            assert_eq!(get(p, "P64")?, "customize");
            let rule = TimeZone::posix(get(p, "P246").unwrap()).unwrap();
            Some(i64::from(rule.to_offset(at).seconds()))
        }
        // Gigaset: an IANA name from the base's list.
        Syntax::GigasetXml => {
            let name = get(p, "DmGlobal.0.TimeZone")?;
            let zone = jiff::tz::db().get(name).unwrap();
            Some(i64::from(zone.to_offset(at).seconds()))
        }
        // Snom: a code whose number is the standard offset (the phone holds
        // the rule); checked against the code list below.
        Syntax::SnomXml => {
            let code = get(p, "timezone")?;
            let sign = code.find(['+', '-']).unwrap();
            let hours: f64 = code[sign..].parse().unwrap();
            Some((hours * 3600.0) as i64)
        }
        Syntax::YealinkBoot | Syntax::PolyMaster => None,
    }
}

/// Snom codes the four zones must get (Snom's timezone list: "1 Italy
/// (Rome)", "-5 United States - Eastern Time", "5.5 India (Calcutta)",
/// "10.5 Australia (Lord Howe Islands)").
fn snom_code(zone: &str) -> &'static str {
    match zone {
        "Europe/Rome" => "ITA+1",
        "America/New_York" => "USA-5",
        "Asia/Kolkata" => "IND+5.5",
        "Australia/Lord_Howe" => "AUS+10.5",
        other => panic!("{other}"),
    }
}

// ------------------------------------------------------------------ setup

fn pbx(zone: &str) -> PbxValues {
    let tz = jiff::tz::db().get(zone).unwrap();
    PbxValues {
        hostname: "kpbx".into(),
        pbx_address: "192.0.2.1".into(),
        sip_port: "5062".into(),
        sip_tls_port: "5063".into(),
        ntp_server: "ntp.example.net".into(),
        timezone: zone.into(),
        tz: tz::Values::new(zone, &tz, YEAR, provision::standard_offset(&tz, YEAR)),
        prov_base: "http://192.0.2.1:8080/provisioning/".into(),
    }
}

fn account() -> Account {
    Account {
        tenant: None,
        extension: "2042".into(),
        sip_user: "u2042".into(),
        sip_password: "p&<\"'>w".into(),
        display_name: "Zoë Martín".into(),
        first_name: "Zoë".into(),
        last_name: "Martín".into(),
        email: String::new(),
    }
}

fn device(mac: Mac, model: &str, template: &str, dhcp: bool) -> Device {
    let ip = |s: &str| Some(s.parse().unwrap());
    Device {
        mac,
        tenant: None,
        enabled: true,
        model: model.into(),
        template: template.into(),
        account: Some("2042".into()),
        redirect_server: None,
        notes: String::new(),
        dhcp,
        ip: if dhcp { None } else { ip("198.51.100.20") },
        netmask: if dhcp { None } else { ip("255.255.255.128") },
        gateway: if dhcp { None } else { ip("198.51.100.1") },
        dns1: if dhcp { None } else { ip("198.51.100.53") },
        dns2: if dhcp { None } else { ip("198.51.100.54") },
        phone_user: "root".into(),
        phone_password: if dhcp {
            String::new()
        } else {
            "A&<m>in".into()
        },
        remote_addr: String::new(),
        remote_port: None,
        http_user: String::new(),
        http_password: String::new(),
    }
}

/// The placeholder values a device's file was made from, for the
/// dictionaries' expressions.
fn context(pbx: &PbxValues, d: &Device, a: &Account) -> BTreeMap<String, String> {
    let ip = |v: Option<std::net::Ipv4Addr>| v.map(|a| a.to_string()).unwrap_or_default();
    let mut ctx: BTreeMap<String, String> = [
        ("PBXADDRESS", pbx.pbx_address.clone()),
        ("SIPPORT", pbx.sip_port.clone()),
        ("NTPSERVER", pbx.ntp_server.clone()),
        ("PROVURL", pbx.prov_base.clone()),
        ("TZSECONDS", pbx.tz.offset.to_string()),
        (
            "MACLOWER",
            d.mac.format(kpbxd::model::prov::MacFormat::Lower),
        ),
        ("IPADDRMODE", if d.dhcp { "on" } else { "off" }.into()),
        ("IPADDR", ip(d.ip)),
        ("IPNETMASK", ip(d.netmask)),
        ("IPGATEWAY", ip(d.gateway)),
        ("IPDNS1", ip(d.dns1)),
        ("IPDNS2", ip(d.dns2)),
        ("PHONEUSERNAME", d.phone_user.clone()),
        ("PHONEPASSWORD", d.phone_password.clone()),
        ("EXTENSION", a.extension.clone()),
        ("SIPUSER", a.sip_user.clone()),
        ("SIPPASSWORD", a.sip_password.clone()),
        ("DISPLAYNAME", a.display_name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in &pbx.tz.values {
        ctx.insert(k.to_string(), v.clone());
    }
    ctx
}

fn eval(
    env: &minijinja::Environment,
    expr: &str,
    ctx: &BTreeMap<String, String>,
) -> minijinja::Value {
    env.compile_expression(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .eval(ctx)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The instants to check a zone at: mid-January, mid-July, and ten minutes
/// either side of each change of the year.
fn instants(zone: &TimeZone) -> Vec<Timestamp> {
    let mut out: Vec<Timestamp> = ["2026-01-15T12:00:00Z", "2026-07-15T12:00:00Z"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let end: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    for t in zone.following(start).take(4) {
        if t.timestamp() < end {
            let s = t.timestamp().as_second();
            out.push(Timestamp::from_second(s - 600).unwrap());
            out.push(Timestamp::from_second(s + 600).unwrap());
        }
    }
    out
}

#[test]
fn every_builtin_template_against_its_dictionary() {
    let cat = catalogue::catalogue();
    let env = minijinja::Environment::new();
    let a = account();
    let mut checked = BTreeSet::new();
    for zone_name in ZONES {
        let zone = jiff::tz::db().get(zone_name).unwrap();
        let pbx = pbx(zone_name);
        let mut devices = Vec::new();
        for (i, m) in cat.models.iter().enumerate() {
            let template = catalogue::info(&m.name).unwrap().template;
            for (j, dhcp) in [true, false].into_iter().enumerate() {
                let mac = Mac::parse(&format!("0c383e00{:02x}{:02x}", i, j)).unwrap();
                devices.push(device(mac, &m.name, template, dhcp));
            }
        }
        let snapshot = Snapshot {
            pbx: pbx.clone(),
            accounts: vec![a.clone()],
            devices: devices.clone(),
            ..Snapshot::default()
        };
        let out = provision::generate(&snapshot);
        assert!(out.problems.is_empty(), "{zone_name}: {:?}", out.problems);
        let mut warned: BTreeMap<Mac, Vec<String>> = BTreeMap::new();
        for w in &out.warnings {
            warned
                .entry(w.device.unwrap())
                .or_default()
                .push(w.message.clone());
        }
        for d in &devices {
            let ctx = context(&pbx, d, &a);
            let mut expected_warnings = BTreeSet::new();
            let files: Vec<_> = out
                .files
                .iter()
                .filter(|f| f.device == Some(d.mac))
                .collect();
            let model = cat.models.iter().find(|m| m.name == d.model).unwrap();
            assert_eq!(files.len(), model.rules.len(), "{}", d.model);
            for f in files {
                let text = std::str::from_utf8(&f.content).unwrap();
                let dict = dictionary::for_file(&d.model, &f.name)
                    .unwrap_or_else(|| panic!("{}: no dictionary for {}", d.model, f.name));
                let pairs = parse(dict.syntax, text)
                    .unwrap_or_else(|e| panic!("{} {}: {e}\n{text}", d.model, f.name));
                let where_ = format!("{} {} ({zone_name}, dhcp={})", d.model, f.name, d.dhcp);
                // Every key exists for this firmware.
                for (key, _) in &pairs {
                    assert!(
                        dict.keys.iter().any(|k| k.name == *key),
                        "{where_}: key {key:?} is not in dictionary {}",
                        dict.id
                    );
                }
                // Every need is there, with its value.
                for req in dict.required {
                    if !eval(&env, req.when, &ctx).is_true() {
                        // A time zone the vendor cannot express: a warning.
                        if matches!(
                            req.need,
                            dictionary::Need::TimeZone | dictionary::Need::DaylightSaving
                        ) && pbx
                            .tz
                            .unavailable
                            .contains_key(req.when.split(' ').next().unwrap())
                        {
                            expected_warnings.insert(zone_name.to_string());
                        }
                        continue;
                    }
                    let want = eval(&env, req.value, &ctx).to_string();
                    let found: Vec<&str> = pairs
                        .iter()
                        .filter(|(k, _)| k == req.key)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    assert!(
                        found.contains(&want.as_str()),
                        "{where_}: {:?} needs {} = {want:?}, found {found:?}",
                        req.need,
                        req.key
                    );
                    checked.insert((dict.id, req.need));
                }
                for (need, _) in dict.unsupported {
                    if *need == dictionary::Need::StaticNetwork && !d.dhcp {
                        expected_warnings.insert("static network".to_string());
                    }
                }
                // The time the phone shows, summer and winter and around
                // each change.
                for at in instants(&zone) {
                    let Some(shown) = phone_offset(dict.syntax, &pairs, at) else {
                        continue;
                    };
                    let real = i64::from(zone.to_offset(at).seconds());
                    if dict.syntax == Syntax::SnomXml {
                        assert_eq!(get(&pairs, "timezone"), Some(snom_code(zone_name)));
                        assert_eq!(shown, i64::from(pbx.tz.offset), "{where_}");
                    } else {
                        assert_eq!(shown, real, "{where_} at {at}");
                    }
                    checked.insert((dict.id, dictionary::Need::DaylightSaving));
                }
            }
            // Warnings: exactly the expected ones, on this device.
            let got = warned.remove(&d.mac).unwrap_or_default();
            for w in &expected_warnings {
                assert!(
                    got.iter().any(|g| g.contains(w.as_str())),
                    "{} ({zone_name}, dhcp={}): no warning about {w}: {got:?}",
                    d.model,
                    d.dhcp
                );
            }
            assert_eq!(
                got.len(),
                expected_warnings.len(),
                "{} ({zone_name}, dhcp={}): {got:?}",
                d.model,
                d.dhcp
            );
        }
        assert!(warned.is_empty(), "{warned:?}");
        // Model-wide files: syntax, keys, and what they must say.
        let ctx: BTreeMap<String, String> = [("PROVURL".to_string(), pbx.prov_base.clone())].into();
        for m in &cat.models {
            for (name, _) in &m.model_files {
                let f = out
                    .files
                    .iter()
                    .find(|f| &f.name == name && f.device.is_none())
                    .unwrap_or_else(|| panic!("{}: {name} not generated", m.name));
                let text = std::str::from_utf8(&f.content).unwrap();
                let dict = dictionary::for_file(&m.name, name).unwrap();
                let pairs = parse(dict.syntax, text)
                    .unwrap_or_else(|e| panic!("{} {name}: {e}\n{text}", m.name));
                for (key, _) in &pairs {
                    assert!(
                        dict.keys.iter().any(|k| k.name == *key),
                        "{} {name}: key {key:?} is not in {}",
                        m.name,
                        dict.id
                    );
                }
                for req in dict.required {
                    let want = eval(&env, req.value, &ctx).to_string();
                    assert_eq!(
                        get(&pairs, req.key),
                        Some(want.as_str()),
                        "{} {name}",
                        m.name
                    );
                    checked.insert((dict.id, req.need));
                }
            }
        }
    }
    // Each device dictionary had its needs checked somewhere.
    for d in dictionary::DICTIONARIES {
        for need in d.required.iter().map(|r| r.need) {
            assert!(
                checked.contains(&(d.id, need))
                    || d.id.contains("common")
                    || d.id.ends_with("model")
                    || d.id.ends_with("profile")
                    || d.id.contains("master")
                    || d.id.contains("boot"),
                "{} {:?} never checked",
                d.id,
                need
            );
        }
    }
}

/// The expected warnings for the four zones, vendor by vendor: Gigaset has
/// neither Kolkata nor Lord Howe in its list, and Poly cannot shift by 30
/// minutes; everyone else expresses all four.
#[test]
fn the_zones_each_vendor_cannot_express() {
    let unavailable = |zone: &str| -> BTreeSet<&'static str> {
        pbx(zone)
            .tz
            .unavailable
            .keys()
            .map(|k| k.split('_').next().unwrap())
            .collect()
    };
    assert!(unavailable("Europe/Rome").is_empty());
    assert!(unavailable("America/New_York").is_empty());
    assert_eq!(unavailable("Asia/Kolkata"), BTreeSet::from(["GIGASET"]));
    assert_eq!(
        unavailable("Australia/Lord_Howe"),
        BTreeSet::from(["GIGASET", "POLY"])
    );
}

/// The grammars refuse what the phones would.
#[test]
fn the_grammars_refuse_broken_files() {
    assert!(yealink_cfg("#!version:1.0.0.1\na=b\n").is_err());
    assert!(yealink_cfg("account.1.enable = 1\n").is_err());
    assert!(yealink_boot("#!version:1.0.0.1\ninclude:config y.cfg\n").is_err());
    assert!(fanvil_text("<<VOIP CONFIG FILE>>Version:2.0000000000\nWAN TYPE :0\n").is_err());
    assert!(
        fanvil_text("<<VOIP CONFIG FILE>>Version:2.0000000000\n<bad module>\n<<END OF FILE>>\n")
            .is_err()
    );
    assert!(
        parse(
            Syntax::SnomXml,
            "<settings><phone-settings><a>1</b></phone-settings></settings>"
        )
        .is_err()
    );
    assert!(
        parse(
            Syntax::GrandstreamXml,
            "<gs_provision version=\"1\"><mac/><config><X1>1</X1></config></gs_provision>"
        )
        .is_err()
    );
    assert!(
        parse(
            Syntax::GigasetXml,
            "<ProviderFrame><Provider/></ProviderFrame>"
        )
        .is_err()
    );
    assert!(
        parse(
            Syntax::PolyXml,
            "<polycomConfig a=\"1\"><x/></polycomConfig>"
        )
        .is_err()
    );
    assert_eq!(
        parse(
            Syntax::GigasetXml,
            "<provisioning version=\"1.1\" productID=\"e2\"><nvm><param name=\"a\" value=\"&amp;\"/></nvm></provisioning>"
        ),
        Ok(vec![("a".to_string(), "&".to_string())])
    );
}

/// README: every built-in placeholder is in its table, and every built-in
/// model in the catalogue table with the files its phones ask for.
#[test]
fn readme_lists_placeholders_and_models() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (name, _) in provision::BUILTIN.iter().chain(tz::PLACEHOLDERS) {
        assert!(
            readme.contains(&format!("`%%{name}%%`")),
            "README's placeholder table lacks %%{name}%%"
        );
    }
    let cat = catalogue::catalogue();
    for m in &cat.models {
        let short = m.name.rsplit('-').next().unwrap();
        assert!(
            readme.contains(&format!("`{}`", m.name)) || readme.contains(&format!("`-{short}`")),
            "README's catalogue table lacks {}",
            m.name
        );
        for (file, _) in &m.model_files {
            let id = file
                .strip_prefix("y000000000")
                .and_then(|f| f.strip_suffix(".cfg"))
                .map(|id| id.trim_start_matches('0'));
            let listed = match id {
                Some(id) if !id.is_empty() => readme.contains(id),
                _ => {
                    readme.contains(file.as_str())
                        || file.ends_with("-3PCC.xml")
                        || file.starts_with("snomD")
                }
            };
            assert!(listed, "README's catalogue table lacks {file} ({})", m.name);
        }
    }
}

/// A user's own template for a built-in Yealink or Poly model writes only
/// the parameters: the boot file and the master file still come from the
/// catalogue, so a copy edited without knowing about them keeps working.
#[test]
fn own_templates_keep_the_boot_and_master_files() {
    let own = |name: &str, model: &str, content: &str| kpbxd::model::Template {
        tenant: None,
        name: name.into(),
        model: model.into(),
        content: content.into(),
    };
    let yealink = Mac::parse("001565000042").unwrap();
    let poly = Mac::parse("0004f2000042").unwrap();
    let snapshot = Snapshot {
        pbx: pbx("Europe/Rome"),
        accounts: vec![account()],
        templates: vec![
            own(
                "my-yealink",
                "Yealink-T4x",
                "#!version:1.0.0.1\naccount.1.user_name = %%SIPUSER%%\n",
            ),
            own(
                "my-poly",
                "Poly-VVX",
                "<?xml version=\"1.0\"?>\n<polycomConfig reg.1.address=\"%%SIPUSER%%\"/>\n",
            ),
        ],
        devices: vec![
            device(yealink, "Yealink-T4x", "my-yealink", true),
            device(poly, "Poly-VVX", "my-poly", true),
        ],
        ..Snapshot::default()
    };
    let out = provision::generate(&snapshot);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let file = |name: &str| {
        let f = out.files.iter().find(|f| f.name == name).unwrap();
        std::str::from_utf8(&f.content).unwrap().to_string()
    };
    let boot = parse(Syntax::YealinkBoot, &file("001565000042.boot")).unwrap();
    assert_eq!(get(&boot, "include:config"), Some("\"y000000000000.cfg\""));
    assert!(boot.iter().any(|(_, v)| v == "\"001565000042.cfg\""));
    assert_eq!(
        get(
            &parse(Syntax::YealinkCfg, &file("001565000042.cfg")).unwrap(),
            "account.1.user_name"
        ),
        Some("u2042")
    );
    let master = parse(Syntax::PolyMaster, &file("0004f2000042.cfg")).unwrap();
    assert_eq!(
        get(&master, "CONFIG_FILES"),
        Some("[PHONE_MAC_ADDRESS]-kpbx.cfg")
    );
    assert_eq!(
        get(
            &parse(Syntax::PolyXml, &file("0004f2000042-kpbx.cfg")).unwrap(),
            "reg.1.address"
        ),
        Some("u2042")
    );
}
