//! The `cdr_columns` setting: which `Master.csv` layout to read.
//!
//! `cdr_csv` (the default: `cdr_csv` module order), `cdr_custom_legacy`
//! (the `Master.csv` mapping of `cdr_custom.conf.sample`), or a
//! comma-separated list of field names in column order, `-` for a column to
//! ignore, e.g. `clid,src,dst,-,start,answer,end,billsec,disposition`.
//! `start` and `end` are required.

use super::master_csv::ColumnMapping;

/// Field names accepted in a custom list.
pub const FIELDS: &[&str] = &[
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
];

/// Parses a `cdr_columns` value.
pub fn parse_columns(value: &str) -> Result<ColumnMapping, String> {
    match value.trim() {
        "cdr_csv" => return Ok(ColumnMapping::CDR_CSV),
        "cdr_custom_legacy" => return Ok(ColumnMapping::CDR_CUSTOM_LEGACY),
        _ => {}
    }
    let mut m = ColumnMapping {
        accountcode: None,
        src: None,
        dst: None,
        dcontext: None,
        clid: None,
        channel: None,
        dstchannel: None,
        lastapp: None,
        lastdata: None,
        start: usize::MAX,
        answer: None,
        end: usize::MAX,
        duration: None,
        billsec: None,
        disposition: None,
        amaflags: None,
        uniqueid: None,
        userfield: None,
        peeraccount: None,
        linkedid: None,
        sequence: None,
        min_columns: 0,
    };
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    if names.len() > 64 {
        return Err("more than 64 columns".into());
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if *name == "-" {
            continue;
        }
        if seen.contains(name) {
            return Err(format!("column {name:?} is named twice"));
        }
        seen.push(name);
        let slot = match *name {
            "accountcode" => &mut m.accountcode,
            "src" => &mut m.src,
            "dst" => &mut m.dst,
            "dcontext" => &mut m.dcontext,
            "clid" => &mut m.clid,
            "channel" => &mut m.channel,
            "dstchannel" => &mut m.dstchannel,
            "lastapp" => &mut m.lastapp,
            "lastdata" => &mut m.lastdata,
            "answer" => &mut m.answer,
            "duration" => &mut m.duration,
            "billsec" => &mut m.billsec,
            "disposition" => &mut m.disposition,
            "amaflags" => &mut m.amaflags,
            "uniqueid" => &mut m.uniqueid,
            "userfield" => &mut m.userfield,
            "peeraccount" => &mut m.peeraccount,
            "linkedid" => &mut m.linkedid,
            "sequence" => &mut m.sequence,
            "start" => {
                m.start = i;
                continue;
            }
            "end" => {
                m.end = i;
                continue;
            }
            other => {
                return Err(format!(
                    "unknown column {other:?} (cdr_csv, cdr_custom_legacy, or a list of: {}, -)",
                    FIELDS.join(", ")
                ));
            }
        };
        *slot = Some(i);
    }
    if m.start == usize::MAX || m.end == usize::MAX {
        return Err("a column list needs start and end".into());
    }
    m.min_columns = m.start.max(m.end) + 1;
    Ok(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn presets_and_lists() {
        assert_eq!(parse_columns("cdr_csv").unwrap(), ColumnMapping::CDR_CSV);
        let m = parse_columns("clid, src,dst,-,start,answer,end").unwrap();
        assert_eq!(
            (m.clid, m.src, m.dst, m.dcontext),
            (Some(0), Some(1), Some(2), None)
        );
        assert_eq!(
            (m.start, m.answer, m.end, m.min_columns),
            (4, Some(5), 6, 7)
        );
        assert!(parse_columns("src,dst").is_err());
        assert!(parse_columns("start,end,start").is_err());
        assert!(parse_columns("start,end,colour").is_err());
    }
}
