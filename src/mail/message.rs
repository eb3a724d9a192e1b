//! Building the report mail: subject, body, attachment, as RFC 5322 bytes.
//!
//! Pure: the date and the message id are inputs.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

/// What a report mail says.
#[derive(Clone, Debug)]
pub struct Report<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    /// E.g. `Send CDR "Daily calls"`.
    pub title: &'a str,
    /// Human form of the exported period.
    pub period: &'a str,
    pub records: u64,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub file: &'a [u8],
    pub zipped: bool,
    /// Host name of the box, for the body and the message id.
    pub hostname: &'a str,
    /// UTC seconds since the epoch.
    pub date: i64,
    /// Unique per message (the outbox id).
    pub unique: u64,
}

pub fn human_size(bytes: u64) -> String {
    if bytes < 1_000 {
        format!("{bytes} bytes")
    } else if bytes < 1_000_000 {
        format!("{:.1} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

fn mailbox(key: &str, address: &str) -> Result<Mailbox, String> {
    address
        .parse::<Mailbox>()
        .map_err(|e| format!("{key} {address:?}: {e}"))
}

/// The subject line of a report mail.
pub fn subject(title: &str, period: &str) -> String {
    format!("[kpbx] {title}: {period}")
}

/// The complete message.
pub fn report(r: &Report) -> Result<Vec<u8>, String> {
    let body = format!(
        "{title}\n\nPeriod: {period}\nRecords: {records}\nFile: {file} ({size}{zipped})\n\n-- \nkpbxd on {host}\n",
        title = r.title,
        period = r.period,
        records = r.records,
        file = r.file_name,
        size = human_size(r.file.len() as u64),
        zipped = if r.zipped { ", zipped" } else { "" },
        host = r.hostname,
    );
    let content_type = ContentType::parse(r.content_type)
        .map_err(|e| format!("content type {:?}: {e}", r.content_type))?;
    // Base64 whatever the type: a text encoding would let CSV's CRLF line
    // ends arrive as LF; the recipient gets the exported bytes exactly.
    let file = lettre::message::Body::new_with_encoding(
        r.file.to_vec(),
        lettre::message::header::ContentTransferEncoding::Base64,
    )
    .map_err(|_| "attachment: cannot encode".to_string())?;
    let attachment = Attachment::new(r.file_name.to_string()).body(file, content_type);
    let parts = MultiPart::mixed()
        .singlepart(SinglePart::plain(body))
        .singlepart(attachment);
    finish(r, subject(r.title, r.period), parts)
}

/// A short test message (`kpbx mail test`).
pub fn test(
    sender: &str,
    to: &str,
    hostname: &str,
    date: i64,
    unique: u64,
) -> Result<Vec<u8>, String> {
    let r = Report {
        sender,
        recipients: &[to.to_string()],
        title: "test message",
        period: "",
        records: 0,
        file_name: "",
        content_type: "text/plain",
        file: &[],
        zipped: false,
        hostname,
        date,
        unique,
    };
    let body = format!("This is a test message from kpbxd on {hostname}.\nMail delivery works.\n");
    finish(
        &r,
        format!("[kpbx] test message from {hostname}"),
        SinglePart::plain(body),
    )
}

fn finish(r: &Report, subject: String, body: impl Into<Body>) -> Result<Vec<u8>, String> {
    let mut b = lettre::Message::builder()
        .from(mailbox("sender", r.sender)?)
        .subject(subject)
        .date(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs(u64::try_from(r.date).unwrap_or(0)),
        )
        .message_id(Some(format!(
            "<kpbx.{}.{}@{}>",
            r.date, r.unique, r.hostname
        )))
        .user_agent(format!("kpbxd {}", env!("CARGO_PKG_VERSION")));
    for to in r.recipients {
        b = b.to(mailbox("recipient", to)?);
    }
    let m = match body.into() {
        Body::Single(p) => b.singlepart(p),
        Body::Multi(p) => b.multipart(p),
    }
    .map_err(|e| format!("cannot build the message: {e}"))?;
    Ok(m.formatted())
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

impl From<SinglePart> for Body {
    fn from(p: SinglePart) -> Body {
        Body::Single(p)
    }
}

impl From<MultiPart> for Body {
    fn from(p: MultiPart) -> Body {
        Body::Multi(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn report_mail_has_subject_body_and_attachment() {
        let recipients = vec!["a@example.com".to_string(), "b@example.com".to_string()];
        let bytes = report(&Report {
            sender: "pbx@example.com",
            recipients: &recipients,
            title: "Send CDR \"Daily\"",
            period: "2026-11-25",
            records: 42,
            file_name: "cdr.csv",
            content_type: "text/csv",
            file: b"a,b\n1,2\n",
            zipped: false,
            hostname: "kpbx",
            date: 1_764_000_000,
            unique: 7,
        })
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("Subject: [kpbx] Send CDR \"Daily\": 2026-11-25"),
            "{text}"
        );
        assert!(text.contains("To: a@example.com, b@example.com"), "{text}");
        assert!(text.contains("Records: 42"));
        assert!(text.contains("File: cdr.csv (8 bytes)"));
        assert!(text.contains("filename=\"cdr.csv\""));
        assert!(text.contains("Message-ID: <kpbx.1764000000.7@kpbx>"));
    }

    /// Issue 21: an ASCII CSV with CRLF line ends is attached as base64, so
    /// the recipient gets its bytes exactly (a text encoding let the CRLF
    /// arrive as LF).
    #[test]
    fn a_csv_attachment_keeps_its_bytes() {
        let recipients = vec!["a@example.com".to_string()];
        let csv = b"caller,called\r\n201,-100\r\n";
        let bytes = report(&Report {
            sender: "pbx@example.com",
            recipients: &recipients,
            title: "t",
            period: "p",
            records: 1,
            file_name: "cdr.csv",
            content_type: "text/csv",
            file: csv,
            zipped: false,
            hostname: "kpbx",
            date: 1_764_000_000,
            unique: 7,
        })
        .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let part = text.split("filename=\"cdr.csv\"").nth(1).unwrap();
        assert!(part.contains("Content-Transfer-Encoding: base64"), "{text}");
        // "caller,called\r\n201,-100\r\n" in base64.
        assert!(
            part.contains("Y2FsbGVyLGNhbGxlZA0KMjAxLC0xMDANCg=="),
            "{text}"
        );
    }

    #[test]
    fn bad_addresses_are_errors() {
        let e = test("not an address", "a@b.c", "h", 0, 1).unwrap_err();
        assert!(e.starts_with("sender"), "{e}");
        assert!(test("a@b.c", "x@y.z", "h", 0, 1).is_ok());
    }

    #[test]
    fn sizes_are_decimal() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(2_000_000), "2.0 MB");
    }
}
