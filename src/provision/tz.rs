//! Time zones as phones understand them.
//!
//! The box has one IANA zone (the `timezone` setting). Phones do not read IANA
//! names (Gigaset excepted): each vendor wants a standard offset plus a daylight
//! saving rule in its own encoding, or a code from its own list. [`Rule::of`]
//! derives the zone's rule for a year from jiff's transitions, in the POSIX
//! `Mm.w.d/time` shape every vendor's encoding is a variant of, and checks it
//! against the following years; [`Values::new`] turns it into each vendor's
//! representation, one built-in placeholder per field ([`PLACEHOLDERS`]).
//!
//! What a vendor cannot express (a half-hour shift where a phone only shifts by
//! an hour, a change at 02:30 where a phone takes whole hours, a zone missing
//! from a vendor's list, an irregular rule) is not approximated: the vendor's
//! placeholders are empty and [`Values::unavailable`] says why, which becomes a
//! warning on every device whose template uses one of them.
//!
//! Invariant: pure. The zone and the year are arguments.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Years after the rule's year that must follow the same rule.
const YEARS_CHECKED: i16 = 8;

/// One change of offset as POSIX writes it (`Mm.w.d/time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// 1 to 12.
    pub month: i8,
    /// Week of the month, 1 to 4, or 5 for the last one.
    pub week: i8,
    /// Day of the week, 0 = Sunday to 6 = Saturday.
    pub weekday: i8,
    /// Wall-clock time of the change in the offset in force before it, in
    /// seconds after midnight (may fall outside 0..24 h, as POSIX allows).
    pub time: i32,
}

impl Change {
    /// The day this change falls on in `year`.
    pub fn date(&self, year: i16) -> Option<Date> {
        let first = Date::new(year, self.month, 1).ok()?;
        let first_weekday = first.weekday().to_sunday_zero_offset();
        let mut day = 1 + (self.weekday - first_weekday).rem_euclid(7) + 7 * (self.week - 1);
        while day > first.days_in_month() {
            day -= 7;
        }
        Date::new(year, self.month, day).ok()
    }

    /// The instant of the change in `year`, given the UTC offset (seconds)
    /// in force before it.
    pub fn instant(&self, year: i16, before: i32) -> Option<Timestamp> {
        let midnight = self
            .date(year)?
            .to_zoned(TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second();
        Timestamp::from_second(midnight + i64::from(self.time) - i64::from(before)).ok()
    }

    /// Whole hours of [`Change::time`] in 0..=23, if it is one.
    pub fn whole_hour(&self) -> Option<i32> {
        (self.time % 3600 == 0 && (0..24 * 3600).contains(&self.time)).then_some(self.time / 3600)
    }
}

/// Daylight saving time of a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dst {
    /// UTC offset during DST, in seconds.
    pub offset: i32,
    pub abbreviation: String,
    pub start: Change,
    pub end: Change,
}

/// A zone's rule for a year: standard offset and, if it has one, DST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Standard UTC offset, in seconds (east positive).
    pub offset: i32,
    pub abbreviation: String,
    pub dst: Option<Dst>,
}

impl Rule {
    /// The rule `tz` follows in `year` and the [`YEARS_CHECKED`] years after
    /// it; an error if its changes follow no `Mm.w.d` rule over that span
    /// (Morocco's Ramadan breaks, a zone about to change its rules).
    ///
    /// Standard time is the smaller offset: Europe/Dublin's "negative DST" in
    /// tzdata becomes the usual summer-time rule phones know.
    pub fn of(tz: &TimeZone, year: i16) -> Result<Rule, String> {
        let start = year_start(year)?;
        let end = year_start(year + YEARS_CHECKED)?;
        let changes = transitions(tz, start, end);
        if changes.is_empty() {
            let info = tz.to_offset_info(start);
            return Ok(Rule {
                offset: info.offset().seconds(),
                abbreviation: info.abbreviation().to_string(),
                dst: None,
            });
        }
        let next_year = year_start(year + 1)?;
        let this_year: Vec<&Transition> = changes.iter().filter(|t| t.at < next_year).collect();
        let [a, b] = this_year.as_slice() else {
            return Err(format!(
                "its offset changes {} times in {year}, not twice",
                this_year.len()
            ));
        };
        if a.after == b.after {
            return Err(format!("its offset changes {year} but not back"));
        }
        let (to_std, to_dst) = if a.after < b.after { (a, b) } else { (b, a) };
        let (std, dst) = (to_std.after, to_dst.after);
        let predicts = |start: Change, end: Change| {
            let mut predicted = Vec::new();
            for y in year..year + YEARS_CHECKED {
                predicted.push(start.instant(y, std));
                predicted.push(end.instant(y, dst));
            }
            let mut predicted: Option<Vec<Timestamp>> = predicted.into_iter().collect();
            if let Some(p) = predicted.as_mut() {
                p.sort();
            }
            predicted.is_some_and(|p| p.iter().copied().eq(changes.iter().map(|t| t.at)))
        };
        for start in candidates(to_dst) {
            for end in candidates(to_std) {
                if predicts(start, end) {
                    return Ok(Rule {
                        offset: std,
                        abbreviation: to_std.abbreviation.clone(),
                        dst: Some(Dst {
                            offset: dst,
                            abbreviation: to_dst.abbreviation.clone(),
                            start,
                            end,
                        }),
                    });
                }
            }
        }
        Err(format!(
            "its daylight saving changes from {year} on follow no fixed \
             \"n-th weekday of the month\" rule"
        ))
    }

    /// The offset this rule gives at `at` (what a phone applying it shows).
    pub fn offset_at(&self, at: Timestamp) -> Option<i32> {
        let Some(dst) = &self.dst else {
            return Some(self.offset);
        };
        let year = at.to_zoned(TimeZone::UTC).year();
        let start = dst.start.instant(year, self.offset)?;
        let end = dst.end.instant(year, dst.offset)?;
        let summer = if start < end {
            start <= at && at < end
        } else {
            // Southern hemisphere: DST spans the new year.
            at >= start || at < end
        };
        Some(if summer { dst.offset } else { self.offset })
    }

    /// The POSIX TZ string, with the DST offset and the change times always
    /// written out (`CET-1CEST-2,M3.5.0/2,M10.5.0/3`), which is the form
    /// Grandstream's self-defined time zone documents.
    pub fn posix(&self) -> String {
        let mut out = format!(
            "{}{}",
            posix_name(&self.abbreviation, "STD"),
            clock(-self.offset)
        );
        if let Some(dst) = &self.dst {
            let change =
                |c: &Change| format!("M{}.{}.{}/{}", c.month, c.week, c.weekday, clock(c.time));
            out.push_str(&format!(
                "{}{},{},{}",
                posix_name(&dst.abbreviation, "DST"),
                clock(-dst.offset),
                change(&dst.start),
                change(&dst.end)
            ));
        }
        out
    }
}

/// A zone abbreviation usable unquoted in a POSIX string (three or more
/// letters), else `fallback`: `<+1030>` is valid POSIX but not every phone's
/// parser takes the quoted form.
fn posix_name(abbreviation: &str, fallback: &str) -> String {
    if abbreviation.len() >= 3 && abbreviation.bytes().all(|b| b.is_ascii_alphabetic()) {
        abbreviation.to_string()
    } else {
        fallback.to_string()
    }
}

/// `[-]h[:mm[:ss]]`.
fn clock(seconds: i32) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (m, sec) {
        (0, 0) => format!("{sign}{h}"),
        (_, 0) => format!("{sign}{h}:{m:02}"),
        _ => format!("{sign}{h}:{m:02}:{sec:02}"),
    }
}

fn year_start(year: i16) -> Result<Timestamp, String> {
    Date::new(year, 1, 1)
        .and_then(|d| d.to_zoned(TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|e| format!("year {year}: {e}"))
}

struct Transition {
    at: Timestamp,
    before: i32,
    after: i32,
    abbreviation: String,
}

/// The offset changes in `[start, end)`; a change of abbreviation alone is
/// none.
fn transitions(tz: &TimeZone, start: Timestamp, end: Timestamp) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut before = tz.to_offset(start).seconds();
    for t in tz.following(start) {
        if t.timestamp() >= end || out.len() > 4 * YEARS_CHECKED as usize {
            break;
        }
        let after = t.offset().seconds();
        if after != before {
            out.push(Transition {
                at: t.timestamp(),
                before,
                after,
                abbreviation: t.abbreviation().to_string(),
            });
        }
        before = after;
    }
    out
}

/// The ways to write one observed change as `Mm.w.d/time`: on its local day,
/// or as the day before at 24 h + time or the day after at time − 24 h
/// (Greenland changes at "-1:00 on the last Sunday"), each as the n-th or the
/// last weekday of the month.
fn candidates(t: &Transition) -> Vec<Change> {
    let local = t.at.as_second() + i64::from(t.before);
    let days = local.div_euclid(86_400);
    let seconds = local.rem_euclid(86_400) as i32;
    let mut out = Vec::new();
    for shift in [0i32, -1, 1] {
        let Some(date) = Timestamp::from_second((days + i64::from(shift)) * 86_400)
            .ok()
            .map(|ts| ts.to_zoned(TimeZone::UTC).date())
        else {
            continue;
        };
        let time = seconds - shift * 86_400;
        let nth = (date.day() - 1) / 7 + 1;
        let weekday = date.weekday().to_sunday_zero_offset();
        let mut weeks = Vec::new();
        if date.day() + 7 > date.days_in_month() {
            weeks.push(5);
        }
        if nth <= 4 {
            weeks.push(nth);
        }
        for week in weeks {
            out.push(Change {
                month: date.month(),
                week,
                weekday,
                time,
            });
        }
    }
    out
}

/// Built-in placeholders carrying the time zone in each vendor's encoding
/// (README lists them too). Empty when the vendor cannot express the zone.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "TZDST",
        "1 when the time zone has daylight saving time, 0 when it has none (empty when its rule is irregular)",
    ),
    (
        "YEALINK_TZ",
        "Yealink local_time.time_zone: standard offset, e.g. +1, -5, +5:30",
    ),
    (
        "YEALINK_TZ_NAME",
        "Yealink local_time.time_zone_name, e.g. Italy(Rome) (empty if Yealink lists none for the zone)",
    ),
    (
        "YEALINK_DST_START",
        "Yealink local_time.start_time by week, e.g. 3/5/7/2",
    ),
    (
        "YEALINK_DST_END",
        "Yealink local_time.end_time by week, e.g. 10/5/7/3",
    ),
    (
        "YEALINK_DST_OFFSET",
        "Yealink local_time.offset_time, minutes, e.g. 60",
    ),
    ("SNOM_TZ", "Snom timezone code, e.g. ITA+1"),
    (
        "FANVIL_TZ",
        "Fanvil Time Zone index: standard offset in quarter hours, e.g. 4",
    ),
    ("FANVIL_TZ_NAME", "Fanvil Time Zone Name, e.g. UTC+1"),
    ("FANVIL_DST_OFFSET", "Fanvil DST Min Offset, minutes"),
    ("FANVIL_DST_START_MONTH", "Fanvil DST Start Mon, 1-12"),
    (
        "FANVIL_DST_START_WEEK",
        "Fanvil DST Start Week, 1-4 or 5 for the last",
    ),
    ("FANVIL_DST_START_WDAY", "Fanvil DST Start Wday, 0 = Sunday"),
    ("FANVIL_DST_START_HOUR", "Fanvil DST Start Hour, 0-23"),
    ("FANVIL_DST_END_MONTH", "Fanvil DST End Mon"),
    ("FANVIL_DST_END_WEEK", "Fanvil DST End Week"),
    ("FANVIL_DST_END_WDAY", "Fanvil DST End Wday"),
    ("FANVIL_DST_END_HOUR", "Fanvil DST End Hour"),
    (
        "GIGASET_TZ",
        "Gigaset DmGlobal.0.TimeZone, an IANA name from the N670/N870 list",
    ),
    (
        "POLY_TZ",
        "Poly tcpIpApp.sntp.gmtOffset: standard offset in seconds (empty when Poly cannot express the zone)",
    ),
    (
        "POLY_DST_START_MONTH",
        "Poly tcpIpApp.sntp.daylightSavings.start.month",
    ),
    (
        "POLY_DST_START_DATE",
        "Poly ...start.date: first day the change may fall on (empty for the last week)",
    ),
    ("POLY_DST_START_DAY", "Poly ...start.dayOfWeek, 1 = Sunday"),
    (
        "POLY_DST_START_LAST",
        "Poly ...start.dayOfWeek.lastInMonth, 0 or 1",
    ),
    ("POLY_DST_START_TIME", "Poly ...start.time, hour 0-23"),
    ("POLY_DST_STOP_MONTH", "Poly ...stop.month"),
    ("POLY_DST_STOP_DATE", "Poly ...stop.date"),
    ("POLY_DST_STOP_DAY", "Poly ...stop.dayOfWeek"),
    ("POLY_DST_STOP_LAST", "Poly ...stop.dayOfWeek.lastInMonth"),
    ("POLY_DST_STOP_TIME", "Poly ...stop.time"),
    ("CISCO_TZ", "Cisco MPP Time_Zone, e.g. GMT+01:00"),
    (
        "CISCO_DST_RULE",
        "Cisco MPP Daylight_Saving_Time_Rule, e.g. start=3/-1/7/2:0:0;end=10/-1/7/3:0:0;save=1:0:0",
    ),
];

/// The vendor groups of [`PLACEHOLDERS`]: a vendor that cannot express the
/// zone makes all of its placeholders unavailable at once.
const GROUPS: &[(&str, &str)] = &[
    ("YEALINK_", "Yealink"),
    ("SNOM_", "Snom"),
    ("FANVIL_", "Fanvil"),
    ("GIGASET_", "Gigaset"),
    ("POLY_", "Poly"),
    ("CISCO_", "Cisco"),
];

/// The time zone in every vendor's encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    /// The IANA name (the `timezone` setting).
    pub name: String,
    /// Standard UTC offset in seconds.
    pub offset: i32,
    /// The rule, when it could be derived.
    pub rule: Option<Rule>,
    /// Every [`PLACEHOLDERS`] name and `TZPOSIX` with its value.
    pub values: BTreeMap<&'static str, String>,
    /// Placeholders a vendor cannot fill for this zone, and why (one sentence
    /// naming the zone and the vendor).
    pub unavailable: BTreeMap<&'static str, String>,
}

impl Values {
    /// `name` is the zone's IANA name as configured; `standard` its standard
    /// offset, used when no rule can be derived.
    pub fn new(name: &str, tz: &TimeZone, year: i16, standard: i32) -> Values {
        let rule = Rule::of(tz, year);
        let primary = tz.primary_iana_name().unwrap_or(name).to_string();
        let mut out = Values {
            name: name.to_string(),
            offset: rule.as_ref().map_or(standard, |r| r.offset),
            rule: rule.as_ref().ok().cloned(),
            ..Values::default()
        };
        for (placeholder, _) in PLACEHOLDERS {
            out.values.insert(placeholder, String::new());
        }
        out.values.insert("TZPOSIX", String::new());
        let irregular = |vendor: &str, why: &String| {
            format!("time zone {name}: {vendor} needs a daylight saving rule, and {why}")
        };
        match &rule {
            Ok(r) => {
                out.values
                    .insert("TZDST", if r.dst.is_some() { "1" } else { "0" }.to_string());
                out.values.insert("TZPOSIX", r.posix());
                out.fill("Yealink", yealink(r, &primary), name);
                out.fill("Fanvil", fanvil(r), name);
                out.fill("Poly", poly(r), name);
                out.fill("Cisco", cisco(r), name);
            }
            Err(why) => {
                // Unknown: neither "1" nor "0", so templates write no rule.
                out.unavailable
                    .insert("TZPOSIX", irregular("a POSIX TZ rule (Grandstream)", why));
                for vendor in ["Yealink", "Fanvil", "Poly", "Cisco"] {
                    out.mark(vendor, irregular(vendor, why));
                }
            }
        }
        out.fill("Snom", snom(&primary, name), name);
        out.fill("Gigaset", gigaset(&primary, name), name);
        out
    }

    fn fill(
        &mut self,
        vendor: &str,
        result: Result<Vec<(&'static str, String)>, String>,
        name: &str,
    ) {
        match result {
            Ok(values) => self.values.extend(values),
            Err(why) => self.mark(vendor, format!("time zone {name}: {why}")),
        }
    }

    fn mark(&mut self, vendor: &str, why: String) {
        let prefix = GROUPS
            .iter()
            .find(|(_, v)| *v == vendor)
            .map_or("", |(p, _)| p);
        for (placeholder, _) in PLACEHOLDERS {
            if placeholder.starts_with(prefix) && !prefix.is_empty() {
                self.unavailable.insert(placeholder, why.clone());
            }
        }
    }
}

/// Offset as `+1`, `-5`, `+5:30`, `0`.
fn hours(seconds: i32) -> String {
    if seconds == 0 {
        return "0".to_string();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let (h, m) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    if m == 0 {
        format!("{sign}{h}")
    } else {
        format!("{sign}{h}:{m:02}")
    }
}

fn whole_hours(vendor: &str, c: &Change) -> Result<i32, String> {
    c.whole_hour().ok_or_else(|| {
        format!(
            "its daylight saving time changes at {} local time and {vendor} phones change on a whole hour (0-23)",
            clock(c.time)
        )
    })
}

/// Yealink, firmware V84 and later: `local_time.time_zone` takes -11 to +14
/// with :30 and :45 steps; with `local_time.summer_time = 1` and
/// `dst_time_type = 1` the rule is `Month/Week of Month/Day of Week/Hour of
/// Day`, week 5 = last, day 1 = Monday to 7 = Sunday, hours 0-23, and
/// `offset_time` -300 to 300 minutes (Yealink Administrator Guide, DST
/// settings and AutoDST attributes; example `szStart="3/5/7/2"
/// szEnd="10/5/7/3"`).
fn yealink(r: &Rule, zone: &str) -> Result<Vec<(&'static str, String)>, String> {
    let m = r.offset.abs() % 3600 / 60;
    if !(-11 * 3600..=14 * 3600).contains(&r.offset)
        || ![0, 30, 45].contains(&m)
        || r.offset % 60 != 0
    {
        return Err(format!(
            "Yealink time zones run from -11 to +14 in steps of :30 or :45, not {}",
            hours(r.offset)
        ));
    }
    let mut out = vec![
        ("YEALINK_TZ", hours(r.offset)),
        (
            "YEALINK_TZ_NAME",
            YEALINK_NAMES
                .iter()
                .find(|(z, _)| *z == zone)
                .map_or(String::new(), |(_, n)| (*n).to_string()),
        ),
    ];
    if let Some(dst) = &r.dst {
        let minutes = (dst.offset - r.offset) / 60;
        if !(-300..=300).contains(&minutes) {
            return Err(format!(
                "Yealink shifts by -300 to 300 minutes, not {minutes}"
            ));
        }
        let change = |c: &Change| -> Result<String, String> {
            let day = if c.weekday == 0 { 7 } else { c.weekday };
            Ok(format!(
                "{}/{}/{}/{}",
                c.month,
                c.week,
                day,
                whole_hours("Yealink", c)?
            ))
        };
        out.push(("YEALINK_DST_START", change(&dst.start)?));
        out.push(("YEALINK_DST_END", change(&dst.end)?));
        out.push(("YEALINK_DST_OFFSET", minutes.to_string()));
    }
    Ok(out)
}

/// Yealink time-zone names for `local_time.time_zone_name` (the list in the
/// Yealink Administrator Guide, Time Zones appendix; the same names appear in
/// nethesis/nethvoice-wizard-ui `models/sangomaservice.js`, Sangoma phones
/// being Yealink OEM, and in FusionPBX `app/yealink/app_config.php`). Only
/// zones whose city the list names; the time itself never depends on the
/// name, because kpbxd writes the DST rule (`summer_time = 1`).
const YEALINK_NAMES: &[(&str, &str)] = &[
    ("America/Anchorage", "United States-Alaska-Time"),
    ("America/Los_Angeles", "United States-Pacific Time"),
    ("America/Vancouver", "Canada(Vancouver,Whitehorse)"),
    ("America/Tijuana", "Mexico(Tijuana,Mexicali)"),
    ("America/Denver", "United States-Mountain Time"),
    ("America/Phoenix", "United States-MST no DST"),
    ("America/Edmonton", "Canada(Edmonton,Calgary)"),
    ("America/Chicago", "United States-Central Time"),
    ("America/Winnipeg", "Canada-Manitoba(Winnipeg)"),
    ("America/New_York", "United States-Eastern Time"),
    ("America/Toronto", "Canada(Montreal,Ottawa,Quebec)"),
    ("America/Nassau", "Bahamas(Nassau)"),
    ("America/Havana", "Cuba(Havana)"),
    ("America/Halifax", "Canada(Halifax,Saint John)"),
    ("America/Santiago", "Chile(Santiago)"),
    ("Atlantic/Bermuda", "United Kingdom-Bermuda(Bermuda)"),
    ("America/St_Johns", "Canada-New Foundland(St.Johns)"),
    ("America/Argentina/Buenos_Aires", "Argentina(Buenos Aires)"),
    ("Atlantic/Azores", "Portugal(Azores)"),
    ("Atlantic/Faroe", "Denmark-Faroe Islands(Torshavn)"),
    ("Europe/Dublin", "Ireland(Dublin)"),
    ("Europe/Lisbon", "Portugal(Lisboa,Porto,Funchal)"),
    ("Atlantic/Canary", "Spain-Canary Islands(Las Palmas)"),
    ("Europe/London", "United Kingdom(London)"),
    ("Europe/Tirane", "Albania(Tirane)"),
    ("Europe/Vienna", "Austria(Vienna)"),
    ("Europe/Brussels", "Belgium(Brussels)"),
    ("Europe/Zagreb", "Croatia(Zagreb)"),
    ("Europe/Prague", "Czech Republic(Prague)"),
    ("Europe/Paris", "France(Paris)"),
    ("Europe/Berlin", "Germany(Berlin)"),
    ("Europe/Budapest", "Hungary(Budapest)"),
    ("Europe/Rome", "Italy(Rome)"),
    ("Europe/Luxembourg", "Luxembourg(Luxembourg)"),
    ("Europe/Skopje", "Macedonia(Skopje)"),
    ("Europe/Amsterdam", "Netherlands(Amsterdam)"),
    ("Europe/Madrid", "Spain(Madrid)"),
    ("Europe/Tallinn", "Estonia(Tallinn)"),
    ("Europe/Helsinki", "Finland(Helsinki)"),
    ("Europe/Athens", "Greece(Athens)"),
    ("Europe/Riga", "Latvia(Riga)"),
    ("Asia/Beirut", "Lebanon(Beirut)"),
    ("Europe/Chisinau", "Moldova(Kishinev)"),
    ("Europe/Kaliningrad", "Russia(Kaliningrad)"),
    ("Europe/Bucharest", "Romania(Bucharest)"),
    ("Europe/Kyiv", "Ukraine(Kyiv, Odessa)"),
    ("Asia/Baghdad", "Iraq(Baghdad)"),
    ("Europe/Moscow", "Russia(Moscow)"),
    ("Asia/Yerevan", "Armenia(Yerevan)"),
    ("Asia/Baku", "Azerbaijan(Baku)"),
    ("Asia/Tbilisi", "Georgia(Tbilisi)"),
    ("Europe/Samara", "Russia(Samara)"),
    ("Asia/Kabul", "Afghanistan(Kabul)"),
    ("Asia/Karachi", "Pakistan(Islamabad)"),
    ("Asia/Yekaterinburg", "Russia(Chelyabinsk)"),
    ("Asia/Kolkata", "India(Calcutta)"),
    ("Asia/Kathmandu", "Nepal(Katmandu)"),
    ("Asia/Novosibirsk", "Russia(Novosibirsk,Omsk)"),
    ("Asia/Yangon", "Myanmar(Naypyitaw)"),
    ("Asia/Krasnoyarsk", "Russia(Krasnoyarsk)"),
    ("Asia/Bangkok", "Thailand(Bangkok)"),
    ("Australia/Perth", "Australia(Perth)"),
    ("Asia/Shanghai", "China(Beijing)"),
    ("Asia/Irkutsk", "Russia(Irkutsk, Ulan-Ude)"),
    ("Asia/Singapore", "Singapore(Singapore)"),
    ("Asia/Tokyo", "Japan(Tokyo)"),
    ("Asia/Seoul", "Korea(Seoul)"),
    ("Asia/Yakutsk", "Russia(Yakutsk,Chita)"),
    ("Australia/Adelaide", "Australia(Adelaide)"),
    ("Australia/Darwin", "Australia(Darwin)"),
    ("Australia/Brisbane", "Australia(Brisbane)"),
    ("Australia/Hobart", "Australia(Hobart)"),
    ("Australia/Sydney", "Australia(Sydney,Melbourne,Canberra)"),
    (
        "Australia/Melbourne",
        "Australia(Sydney,Melbourne,Canberra)",
    ),
    ("Asia/Vladivostok", "Russia(Vladivostok)"),
    ("Australia/Lord_Howe", "Australia(Lord Howe Islands)"),
    ("Pacific/Noumea", "New Caledonia(Noumea)"),
    ("Pacific/Auckland", "New Zealand(Wellington,Auckland)"),
    ("Pacific/Chatham", "New Zealand(Chatham Islands)"),
    ("Pacific/Tongatapu", "Tonga(Nukualofa)"),
];

/// Snom `timezone` codes (the list of the setting's values in the phones'
/// web interface and in the Snom settings reference, `timezone`; mirrored in
/// nethesis/nethvoice-wizard-ui `models/snomservice.js`). Each code carries
/// the country's DST rule inside the phone, so only zones whose rule the
/// code's country still follows are listed: codes for countries that changed
/// since (Mexico, Turkey, Jordan, Syria, Iran, Venezuela, Paraguay, Namibia,
/// Greenland, Egypt, Kazakhstan...) are left out rather than trusted.
const SNOM_CODES: &[(&str, &str)] = &[
    ("America/Anchorage", "USA-9"),
    ("America/Juneau", "USA-9"),
    ("America/Vancouver", "CAN-8"),
    ("America/Tijuana", "MEX-8"),
    ("America/Los_Angeles", "USA-8"),
    ("America/Edmonton", "CAN-7"),
    ("America/Phoenix", "USA2-7"),
    ("America/Denver", "USA-7"),
    ("America/Boise", "USA-7"),
    ("America/Winnipeg", "CAN-6"),
    ("Pacific/Easter", "CHL-6"),
    ("America/Chicago", "USA-6"),
    ("America/Menominee", "USA-6"),
    ("America/Indiana/Knox", "USA-6"),
    ("America/Indiana/Tell_City", "USA-6"),
    ("America/North_Dakota/Center", "USA-6"),
    ("America/Nassau", "BHS-5"),
    ("America/Toronto", "CAN-5"),
    ("America/Bogota", "COL-5"),
    ("America/Havana", "CUB-5"),
    ("America/New_York", "USA-5"),
    ("America/Detroit", "USA-5"),
    ("America/Indiana/Indianapolis", "USA-5"),
    ("America/Kentucky/Louisville", "USA-5"),
    ("America/Halifax", "CAN-4"),
    ("America/Santiago", "CHL-4"),
    ("Atlantic/Bermuda", "BMU-4"),
    ("America/Port_of_Spain", "TTB-4"),
    ("America/St_Johns", "CAN-3.5"),
    ("America/Argentina/Buenos_Aires", "ARG-3"),
    ("America/Sao_Paulo", "BRA2-3"),
    ("America/Noronha", "BRA-2"),
    ("Atlantic/Azores", "PRT-1"),
    ("Atlantic/Faroe", "FRO-0"),
    ("Europe/Dublin", "IRL-0"),
    ("Europe/Lisbon", "PRT-0"),
    ("Atlantic/Canary", "ESP-0"),
    ("Europe/London", "GBR-0"),
    ("Europe/Tirane", "ALB+1"),
    ("Europe/Vienna", "AUT+1"),
    ("Europe/Brussels", "BEL+1"),
    ("Europe/Zagreb", "HRV+1"),
    ("Europe/Prague", "CZE+1"),
    ("Europe/Copenhagen", "DNK+1"),
    ("Europe/Paris", "FRA+1"),
    ("Europe/Berlin", "GER+1"),
    ("Europe/Budapest", "HUN+1"),
    ("Europe/Rome", "ITA+1"),
    ("Europe/Luxembourg", "LUX+1"),
    ("Europe/Skopje", "MAK+1"),
    ("Europe/Amsterdam", "NLD+1"),
    ("Europe/Oslo", "NOR+1"),
    ("Europe/Warsaw", "POL+1"),
    ("Europe/Bratislava", "SVK+1"),
    ("Europe/Madrid", "ESP+1"),
    ("Europe/Stockholm", "SWE+1"),
    ("Europe/Zurich", "CHE+1"),
    ("Europe/Gibraltar", "GIB+1"),
    ("Europe/Belgrade", "YUG+1"),
    ("Africa/Lagos", "WAT+1"),
    ("Europe/Sofia", "BGR+2"),
    ("Asia/Nicosia", "CYP+2"),
    ("Africa/Maputo", "CAT+2"),
    ("Europe/Tallinn", "EST+2"),
    ("Europe/Helsinki", "FIN+2"),
    ("Europe/Athens", "GRC+2"),
    ("Europe/Riga", "LVA+2"),
    ("Europe/Vilnius", "LTU+2"),
    ("Europe/Chisinau", "MDA+2"),
    ("Europe/Kaliningrad", "RUS+2"),
    ("Europe/Bucharest", "ROU+2"),
    ("Europe/Kyiv", "UKR+2"),
    ("Africa/Nairobi", "EAT+3"),
    ("Asia/Baghdad", "IRQ+3"),
    ("Europe/Moscow", "RUS+3"),
    ("Asia/Yerevan", "ARM+4"),
    ("Asia/Baku", "AZE+4"),
    ("Asia/Tbilisi", "GEO+4"),
    ("Europe/Samara", "RUS+4"),
    ("Asia/Dubai", "UAE+4"),
    ("Asia/Karachi", "PAK+5"),
    ("Asia/Yekaterinburg", "RUS+5"),
    ("Asia/Kolkata", "IND+5.5"),
    ("Asia/Omsk", "RUS+6"),
    ("Asia/Krasnoyarsk", "RUS+7"),
    ("Asia/Bangkok", "THA+7"),
    ("Asia/Shanghai", "CHN+8"),
    ("Asia/Singapore", "SGP+8"),
    ("Australia/Perth", "AUS+8"),
    ("Asia/Seoul", "KOR+9"),
    ("Asia/Tokyo", "JPN+9"),
    ("Australia/Adelaide", "AUS+9.5"),
    ("Australia/Darwin", "AUS2+9.5"),
    ("Australia/Sydney", "AUS+10"),
    ("Australia/Melbourne", "AUS+10"),
    ("Australia/Brisbane", "AUS2+10"),
    ("Australia/Hobart", "AUS3+10"),
    ("Asia/Vladivostok", "RUS+10"),
    ("Australia/Lord_Howe", "AUS+10.5"),
    ("Pacific/Noumea", "NCL+11"),
    ("Pacific/Auckland", "NZL+12"),
    ("Asia/Kamchatka", "RUS+12"),
    ("Pacific/Chatham", "NZL+12.75"),
    ("Pacific/Tongatapu", "TON+13"),
];

fn snom(primary: &str, name: &str) -> Result<Vec<(&'static str, String)>, String> {
    SNOM_CODES
        .iter()
        .find(|(z, _)| *z == primary || *z == name)
        .map(|(_, code)| vec![("SNOM_TZ", (*code).to_string())])
        .ok_or_else(|| {
            "Snom phones take a timezone code from their own list and none is known to follow this zone's rules; set the phone's time zone by hand".to_string()
        })
}

/// The zones a Gigaset N670/N870 IP PRO accepts in `DmGlobal.0.TimeZone`
/// (wazo-provd-plugins `plugins/wazo_gigaset/Nx70_83_v2_65_0/common.py`,
/// `_VALID_TZ_GIGASET`, firmware 2.65). Wazo falls back to a zone with the
/// same offset for the others; kpbxd does not approximate.
const GIGASET_ZONES: &[&str] = &[
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Caracas",
    "America/Sao_Paulo",
    "Europe/Belfast",
    "Europe/Dublin",
    "Europe/Guernsey",
    "Europe/Isle_of_Man",
    "Europe/Jersey",
    "Europe/Lisbon",
    "Europe/London",
    "Greenwich",
    "Europe/Amsterdam",
    "Europe/Andorra",
    "Europe/Belgrade",
    "Europe/Berlin",
    "Europe/Bratislava",
    "Europe/Brussels",
    "Europe/Budapest",
    "Europe/Busingen",
    "Europe/Copenhagen",
    "Europe/Gibraltar",
    "Europe/Ljubljana",
    "Europe/Luxembourg",
    "Europe/Madrid",
    "Europe/Malta",
    "Europe/Monaco",
    "Europe/Oslo",
    "Europe/Paris",
    "Europe/Podgorica",
    "Europe/Prague",
    "Europe/Rome",
    "Europe/San_Marino",
    "Europe/Sarajevo",
    "Europe/Skopje",
    "Europe/Stockholm",
    "Europe/Tirane",
    "Europe/Vaduz",
    "Europe/Vatican",
    "Europe/Vienna",
    "Europe/Warsaw",
    "Europe/Zagreb",
    "Europe/Zurich",
    "Africa/Cairo",
    "Europe/Athens",
    "Europe/Bucharest",
    "Europe/Chisinau",
    "Europe/Helsinki",
    "Europe/Kaliningrad",
    "Europe/Kiev",
    "Europe/Mariehamn",
    "Europe/Nicosia",
    "Europe/Riga",
    "Europe/Sofia",
    "Europe/Tallinn",
    "Europe/Tiraspol",
    "Europe/Uzhgorod",
    "Europe/Vilnius",
    "Europe/Zaporozhye",
    "Europe/Istanbul",
    "Europe/Kirov",
    "Europe/Minsk",
    "Europe/Moscow",
    "Europe/Simferopol",
    "Europe/Volgograd",
    "Asia/Dubai",
    "Europe/Astrakhan",
    "Europe/Samara",
    "Europe/Ulyanovsk",
    "Asia/Karachi",
    "Asia/Dhaka",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Brisbane",
    "Australia/Sydney",
    "Pacific/Noumea",
];

fn gigaset(primary: &str, name: &str) -> Result<Vec<(&'static str, String)>, String> {
    // The phone's spelling: its list has some old names (Europe/Kiev).
    GIGASET_ZONES
        .iter()
        .find(|z| **z == name || **z == primary)
        .map(|z| vec![("GIGASET_TZ", (*z).to_string())])
        .ok_or_else(|| {
            "the Gigaset N670/N870 accepts only zones from its own list and this one is not in it; set the base's time zone by hand".to_string()
        })
}

/// Fanvil's Time Zone indexes (standard offset in quarter hours) and names
/// (the option lists of the Fanvil web interface, mirrored in
/// nethesis/nethvoice-wizard-ui `models/fanvilservice.js`; the index scheme
/// agrees with wazo-provd-plugins `wazo_fanvil/serie_x/entry.py` `_TZ_INFO`
/// and nethesis/tancredi `data/templates/fanvil.macros`, Europe/Rome = 4,
/// UTC+1).
const FANVIL_INDEXES: &[i32] = &[
    -44, -40, -38, -36, -32, -28, -24, -20, -18, -16, -14, -12, -10, -8, -4, 0, 4, 8, 12, 14, 16,
    18, 20, 22, 23, 24, 26, 28, 32, 35, 36, 38, 40, 42, 44, 46, 48, 51, 52, 54, 56,
];
const FANVIL_NAMES: &[&str] = &[
    "UTC-11",
    "UTC-10",
    "UTC-9:30",
    "UTC-9",
    "UTC-8",
    "UTC-7",
    "UTC-6",
    "UTC-5",
    "UTC-4:30",
    "UTC-4",
    "UTC-3:30",
    "UTC-3",
    "UTC-2:30",
    "UTC-2",
    "UTC-1",
    "UTC",
    "UTC+1",
    "UTC+2",
    "UTC+3",
    "UTC+3:30",
    "UTC+4",
    "UTC+4:30",
    "UTC+5",
    "UTC+5:30",
    "UTC+5:45",
    "UTC+6",
    "UTC+6:30",
    "UTC+7",
    "UTC+8",
    "UTC+9",
    "UTC+9:30",
    "UTC+10",
    "UTC+10:30",
    "UTC+11",
    "UTC+11:30",
    "UTC+12",
    "UTC+12:45",
    "UTC+13",
    "UTC+13:30",
];

/// Fanvil X series: `Time Zone` (index), `Time Zone Name`, and the manual DST
/// rule by week (`DST Start Mon/Week/Wday/Hour`, week 5 = last, Wday 0 =
/// Sunday, as in FusionPBX `fanvil/x4u` and nethesis/tancredi
/// `fanvil-X5.tmpl`; wazo's older plugin writes -1 for the last week and
/// Monday = 0, and the vendor text read here does not settle it; see the
/// README). Hours are wall-clock before the change, as POSIX.
fn fanvil(r: &Rule) -> Result<Vec<(&'static str, String)>, String> {
    let index = r.offset / 900;
    let name = if r.offset == 0 {
        "UTC".to_string()
    } else {
        format!("UTC{}", hours(r.offset))
    };
    if r.offset % 900 != 0
        || !FANVIL_INDEXES.contains(&index)
        || !FANVIL_NAMES.contains(&name.as_str())
    {
        return Err(format!(
            "Fanvil's time zone list has no {} entry",
            hours(r.offset)
        ));
    }
    let mut out = vec![("FANVIL_TZ", index.to_string()), ("FANVIL_TZ_NAME", name)];
    if let Some(dst) = &r.dst {
        let minutes = (dst.offset - r.offset) / 60;
        out.push(("FANVIL_DST_OFFSET", minutes.to_string()));
        for (prefix, c) in [("START", &dst.start), ("END", &dst.end)] {
            let hour = whole_hours("Fanvil", c)?;
            let key = |field: &str| -> &'static str {
                match (prefix, field) {
                    ("START", "MONTH") => "FANVIL_DST_START_MONTH",
                    ("START", "WEEK") => "FANVIL_DST_START_WEEK",
                    ("START", "WDAY") => "FANVIL_DST_START_WDAY",
                    ("START", _) => "FANVIL_DST_START_HOUR",
                    (_, "MONTH") => "FANVIL_DST_END_MONTH",
                    (_, "WEEK") => "FANVIL_DST_END_WEEK",
                    (_, "WDAY") => "FANVIL_DST_END_WDAY",
                    _ => "FANVIL_DST_END_HOUR",
                }
            };
            out.push((key("MONTH"), c.month.to_string()));
            out.push((key("WEEK"), c.week.to_string()));
            out.push((key("WDAY"), c.weekday.to_string()));
            out.push((key("HOUR"), hour.to_string()));
        }
    }
    Ok(out)
}

/// Poly UC Software 6.x/7.x (VVX, Edge E): `tcpIpApp.sntp.gmtOffset` (seconds,
/// written from `TZSECONDS`) and `tcpIpApp.sntp.daylightSavings.*`:
/// `fixedDayEnable = 0`, `start/stop.month`, `.date` (first day the change
/// may fall on), `.dayOfWeek` (1 = Sunday), `.dayOfWeek.lastInMonth`, `.time`
/// (hour). The references read (Poly UC Software administrator guide
/// parameter list; wazo-provd-plugins `wazo_polycom/common/common.py`;
/// FusionPBX `poly/edge-e550`) show no parameter for the size of the shift,
/// which is one hour: a zone shifting by anything else is not expressed.
fn poly(r: &Rule) -> Result<Vec<(&'static str, String)>, String> {
    let Some(dst) = &r.dst else {
        return Ok(vec![("POLY_TZ", r.offset.to_string())]);
    };
    if dst.offset - r.offset != 3600 {
        return Err(format!(
            "Poly phones shift by one hour for daylight saving time, this zone by {} minutes",
            (dst.offset - r.offset) / 60
        ));
    }
    let mut out = vec![("POLY_TZ", r.offset.to_string())];
    for (names, c) in [
        (
            [
                "POLY_DST_START_MONTH",
                "POLY_DST_START_DATE",
                "POLY_DST_START_DAY",
                "POLY_DST_START_LAST",
                "POLY_DST_START_TIME",
            ],
            &dst.start,
        ),
        (
            [
                "POLY_DST_STOP_MONTH",
                "POLY_DST_STOP_DATE",
                "POLY_DST_STOP_DAY",
                "POLY_DST_STOP_LAST",
                "POLY_DST_STOP_TIME",
            ],
            &dst.end,
        ),
    ] {
        let last = c.week == 5;
        let date = if last {
            String::new()
        } else {
            ((c.week - 1) * 7 + 1).to_string()
        };
        out.push((names[0], c.month.to_string()));
        out.push((names[1], date));
        out.push((names[2], (c.weekday + 1).to_string()));
        out.push((names[3], if last { "1" } else { "0" }.to_string()));
        out.push((names[4], whole_hours("Poly", c)?.to_string()));
    }
    Ok(out)
}

/// Cisco multiplatform phones (68xx/78xx/88xx, firmware 11.x/12.x):
/// `Time_Zone` as `GMT+01:00` and `Daylight_Saving_Time_Rule` as
/// `start=month/day/weekday/HH:mm:ss;end=...;save=HH:mm:ss`, where a
/// positive day with a weekday means "on or after", -1 the last such weekday,
/// and weekday 1 = Monday to 7 = Sunday (Cisco SPA/MPP administration guide,
/// "Configuring Daylight Saving Time"; wazo-provd-plugins
/// `wazo_cisco_sip/v11_3_1/common.py`).
fn cisco(r: &Rule) -> Result<Vec<(&'static str, String)>, String> {
    let m = r.offset.abs() % 3600 / 60;
    if !(-12 * 3600..=14 * 3600).contains(&r.offset)
        || ![0, 30, 45].contains(&m)
        || r.offset % 60 != 0
    {
        return Err(format!(
            "Cisco time zones run from GMT-12:00 to GMT+14:00 in steps of :30 or :45, not {}",
            hours(r.offset)
        ));
    }
    let sign = if r.offset < 0 { '-' } else { '+' };
    let tz = format!("GMT{sign}{:02}:{m:02}", r.offset.abs() / 3600);
    let mut out = vec![("CISCO_TZ", tz)];
    if let Some(dst) = &r.dst {
        let change = |c: &Change| -> Result<String, String> {
            if !(0..24 * 3600).contains(&c.time) {
                return Err(format!(
                    "its daylight saving time changes at {} and Cisco takes 0:0:0 to 23:59:59",
                    clock(c.time)
                ));
            }
            let day = if c.week == 5 {
                "-1".to_string()
            } else {
                ((c.week - 1) * 7 + 1).to_string()
            };
            let weekday = if c.weekday == 0 { 7 } else { c.weekday };
            Ok(format!(
                "{}/{day}/{weekday}/{}:{}:{}",
                c.month,
                c.time / 3600,
                c.time % 3600 / 60,
                c.time % 60
            ))
        };
        let save = dst.offset - r.offset;
        out.push((
            "CISCO_DST_RULE",
            format!(
                "start={};end={};save={}:{}:{}",
                change(&dst.start)?,
                change(&dst.end)?,
                save / 3600,
                save % 3600 / 60,
                save % 60
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn zone(name: &str) -> TimeZone {
        jiff::tz::db().get(name).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_four_zones_of_the_issue() {
        let rome = Rule::of(&zone("Europe/Rome"), 2026).unwrap();
        assert_eq!(rome.posix(), "CET-1CEST-2,M3.5.0/2,M10.5.0/3");
        let ny = Rule::of(&zone("America/New_York"), 2026).unwrap();
        assert_eq!(ny.posix(), "EST5EDT4,M3.2.0/2,M11.1.0/2");
        let kolkata = Rule::of(&zone("Asia/Kolkata"), 2026).unwrap();
        assert_eq!(kolkata.posix(), "IST-5:30");
        let lord_howe = Rule::of(&zone("Australia/Lord_Howe"), 2026).unwrap();
        assert_eq!(lord_howe.posix(), "STD-10:30DST-11,M10.1.0/2,M4.1.0/2");
        // Greenland changes at -1:00 on the last Sunday (Saturday 23:00).
        let nuuk = Rule::of(&zone("America/Nuuk"), 2026).unwrap();
        let dst = nuuk.dst.unwrap();
        assert_eq!(
            (dst.start.week, dst.start.weekday, dst.start.time),
            (5, 0, -3600)
        );
        // Dublin's negative DST in tzdata is summer time for phones.
        let dublin = Rule::of(&zone("Europe/Dublin"), 2026).unwrap();
        assert_eq!(dublin.posix(), "GMT0IST-1,M3.5.0/1,M10.5.0/2");
    }

    /// Every zone of the database: the derived rule, as a POSIX string read
    /// back by jiff, gives the zone's own offsets through the checked years,
    /// or the zone is reported irregular.
    #[test]
    fn every_zone_round_trips_or_is_reported() {
        let mut derived = 0;
        for name in jiff::tz::db().available() {
            let tz = zone(name.as_str());
            let Ok(rule) = Rule::of(&tz, 2026) else {
                continue;
            };
            derived += 1;
            let back = TimeZone::posix(&rule.posix()).unwrap();
            let mut t = at("2026-01-01T00:00:00Z");
            while t < at("2034-01-01T00:00:00Z") {
                assert_eq!(
                    back.to_offset(t),
                    tz.to_offset(t),
                    "{name} at {t}: {}",
                    rule.posix()
                );
                assert_eq!(
                    rule.offset_at(t),
                    Some(tz.to_offset(t).seconds()),
                    "{name} at {t}"
                );
                t = t.checked_add(jiff::SignedDuration::from_hours(73)).unwrap();
            }
        }
        assert!(derived > 500, "{derived}");
    }

    /// How many zones of the database have no regular rule (printed with
    /// --nocapture; the README names the kind).
    #[test]
    fn irregular_zones_are_few() {
        let irregular: Vec<String> = jiff::tz::db()
            .available()
            .filter(|n| Rule::of(&zone(n.as_str()), 2026).is_err())
            .map(|n| n.as_str().to_string())
            .collect();
        println!("{} irregular: {irregular:?}", irregular.len());
        assert!(irregular.len() < 20, "{irregular:?}");
    }

    #[test]
    fn vendor_values_for_the_four_zones() {
        let v = |name: &str| Values::new(name, &zone(name), 2026, 0);
        let rome = v("Europe/Rome");
        assert!(rome.unavailable.is_empty(), "{:?}", rome.unavailable);
        for (k, want) in [
            ("YEALINK_TZ", "+1"),
            ("YEALINK_TZ_NAME", "Italy(Rome)"),
            ("YEALINK_DST_START", "3/5/7/2"),
            ("YEALINK_DST_END", "10/5/7/3"),
            ("YEALINK_DST_OFFSET", "60"),
            ("SNOM_TZ", "ITA+1"),
            ("FANVIL_TZ", "4"),
            ("FANVIL_TZ_NAME", "UTC+1"),
            ("GIGASET_TZ", "Europe/Rome"),
            ("POLY_DST_START_LAST", "1"),
            ("POLY_DST_START_DAY", "1"),
            ("CISCO_TZ", "GMT+01:00"),
            (
                "CISCO_DST_RULE",
                "start=3/-1/7/2:0:0;end=10/-1/7/3:0:0;save=1:0:0",
            ),
            ("TZDST", "1"),
        ] {
            assert_eq!(rome.values[k], want, "{k}");
        }
        let ny = v("America/New_York");
        assert_eq!(ny.values["YEALINK_DST_START"], "3/2/7/2");
        assert_eq!(ny.values["POLY_DST_START_DATE"], "8");
        assert_eq!(ny.values["SNOM_TZ"], "USA-5");
        assert_eq!(ny.values["FANVIL_TZ"], "-20");
        let kolkata = v("Asia/Kolkata");
        assert_eq!(kolkata.values["YEALINK_TZ"], "+5:30");
        assert_eq!(kolkata.values["FANVIL_TZ"], "22");
        assert_eq!(kolkata.values["FANVIL_TZ_NAME"], "UTC+5:30");
        assert_eq!(kolkata.values["CISCO_TZ"], "GMT+05:30");
        assert_eq!(kolkata.values["TZDST"], "0");
        assert_eq!(
            kolkata.unavailable.keys().copied().collect::<Vec<_>>(),
            ["GIGASET_TZ"]
        );
        let lh = v("Australia/Lord_Howe");
        assert_eq!(lh.values["YEALINK_DST_OFFSET"], "30");
        assert_eq!(lh.values["SNOM_TZ"], "AUS+10.5");
        assert_eq!(lh.values["FANVIL_DST_OFFSET"], "30");
        assert!(lh.unavailable["POLY_DST_START_TIME"].contains("30 minutes"));
        assert!(lh.unavailable.contains_key("GIGASET_TZ"));
        assert!(!lh.unavailable.contains_key("YEALINK_TZ"));
        // An alias resolves to the listed zone.
        let calcutta = v("Asia/Calcutta");
        assert_eq!(calcutta.values["SNOM_TZ"], "IND+5.5");
    }

    #[test]
    fn irregular_zones_are_reported_for_rule_vendors() {
        // Morocco suspends DST for Ramadan: no fixed weekday rule.
        let casablanca = Values::new("Africa/Casablanca", &zone("Africa/Casablanca"), 2026, 3600);
        assert!(casablanca.rule.is_none());
        assert!(casablanca.unavailable["TZPOSIX"].contains("Africa/Casablanca"));
        assert!(casablanca.unavailable.contains_key("YEALINK_DST_START"));
        assert_eq!(casablanca.offset, 3600);
    }
}
