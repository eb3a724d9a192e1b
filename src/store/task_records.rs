//! On-disk records of scheduled tasks and the mail settings (part of the
//! on-disk ABI with `records.rs`: versioned, enum tags as pinned numbers).

use serde::{Deserialize, Serialize};

use super::records::{DecodeError, from_bytes, to_bytes};
use crate::model::task::{
    INTERVALS, MailSettings, ReportFormat, Security, Task, TaskType, ZipRule,
};
use crate::schedule::Cadence;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum TaskRecord {
    V1 {
        id: u64,
        name: String,
        /// 0 send_cdr, 1 send_callcenter_cdr.
        task_type: u8,
        enabled: bool,
        /// 0 daily, 1 weekly, 2 monthly.
        cadence: u8,
        /// Weekday (1 = Monday) or day of month; 0 when daily.
        cadence_day: u8,
        hour: u8,
        minute: u8,
        /// 0..5: current/previous day, week, month.
        interval: u8,
        /// 0..5: xlsx, xlsx_detailed, csv, csv_detailed, json, xml.
        format: u8,
        operator_events: bool,
        /// `None`: never zip.
        zip_over_mb: Option<u32>,
        notify_supervisors: bool,
        mask_numbers: bool,
        recipients: Vec<String>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum MailRecord {
    V1 {
        server: String,
        port: u16,
        /// 0 none, 1 starttls, 2 tls.
        security: u8,
        user: String,
        password: String,
        sender: String,
        retry_minutes: u32,
    },
}

fn index<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter()
        .position(|x| x == v)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

fn pick<T: Copy>(all: &[T], i: u8, what: &str) -> Result<T, DecodeError> {
    all.get(usize::from(i))
        .copied()
        .ok_or_else(|| DecodeError(format!("unknown {what} tag {i}")))
}

pub(super) fn encode_task(t: &Task) -> Vec<u8> {
    let (cadence, cadence_day) = match t.cadence {
        Cadence::Daily => (0, 0),
        Cadence::Weekly { weekday } => (1, weekday),
        Cadence::Monthly { day } => (2, day),
    };
    to_bytes(&TaskRecord::V1 {
        id: t.id,
        name: t.name.clone(),
        task_type: index(&TaskType::ALL, &t.task_type),
        enabled: t.enabled,
        cadence,
        cadence_day,
        hour: t.hour,
        minute: t.minute,
        interval: index(&INTERVALS, &t.interval),
        format: index(&ReportFormat::ALL, &t.format),
        operator_events: t.operator_events,
        zip_over_mb: match t.zip {
            ZipRule::Never => None,
            ZipRule::OverMb(n) => Some(n),
        },
        notify_supervisors: t.notify_supervisors,
        mask_numbers: t.mask_numbers,
        recipients: t.recipients.clone(),
    })
}

pub(super) fn decode_task(bytes: &[u8]) -> Result<Task, DecodeError> {
    let TaskRecord::V1 {
        id,
        name,
        task_type,
        enabled,
        cadence,
        cadence_day,
        hour,
        minute,
        interval,
        format,
        operator_events,
        zip_over_mb,
        notify_supervisors,
        mask_numbers,
        recipients,
    } = from_bytes(bytes)?;
    let cadence = match cadence {
        0 => Cadence::Daily,
        1 => Cadence::Weekly {
            weekday: cadence_day,
        },
        2 => Cadence::Monthly { day: cadence_day },
        n => return Err(DecodeError(format!("unknown cadence tag {n}"))),
    };
    Ok(Task {
        id,
        name,
        task_type: pick(&TaskType::ALL, task_type, "task type")?,
        enabled,
        cadence,
        hour,
        minute,
        interval: pick(&INTERVALS, interval, "interval")?,
        format: pick(&ReportFormat::ALL, format, "format")?,
        operator_events,
        zip: zip_over_mb.map_or(ZipRule::Never, ZipRule::OverMb),
        notify_supervisors,
        mask_numbers,
        recipients,
    })
}

pub(super) fn encode_mail(m: &MailSettings) -> Vec<u8> {
    to_bytes(&MailRecord::V1 {
        server: m.server.clone(),
        port: m.port,
        security: index(&Security::ALL, &m.security),
        user: m.user.clone(),
        password: m.password.clone(),
        sender: m.sender.clone(),
        retry_minutes: m.retry_minutes,
    })
}

pub(super) fn decode_mail(bytes: &[u8]) -> Result<MailSettings, DecodeError> {
    let MailRecord::V1 {
        server,
        port,
        security,
        user,
        password,
        sender,
        retry_minutes,
    } = from_bytes(bytes)?;
    Ok(MailSettings {
        server,
        port,
        security: pick(&Security::ALL, security, "security")?,
        user,
        password,
        sender,
        retry_minutes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn task() -> Task {
        Task {
            id: 3,
            name: "N".into(),
            task_type: TaskType::SendCallCenterCdr,
            enabled: true,
            cadence: Cadence::Monthly { day: 31 },
            hour: 6,
            minute: 5,
            interval: crate::schedule::Interval::PreviousMonth,
            format: ReportFormat::CsvDetailed,
            operator_events: true,
            zip: ZipRule::OverMb(2),
            notify_supervisors: false,
            mask_numbers: true,
            recipients: vec!["a@b.c".into()],
        }
    }

    #[test]
    fn task_record_layout_is_pinned() {
        let bytes = encode_task(&task());
        assert_eq!(
            bytes,
            [
                0, 3, 1, b'N', 1, 1, 2, 31, 6, 5, 5, 3, 1, 1, 2, 0, 1, 1, 5, b'a', b'@', b'b',
                b'.', b'c'
            ]
        );
        assert_eq!(decode_task(&bytes).unwrap(), task());
    }

    #[test]
    fn mail_record_round_trips_and_rejects_unknown_tags() {
        let m = MailSettings {
            server: "h".into(),
            port: 0,
            security: Security::Tls,
            user: "u".into(),
            password: "p".into(),
            sender: "s@x.y".into(),
            retry_minutes: 60,
        };
        let bytes = encode_mail(&m);
        assert_eq!(decode_mail(&bytes).unwrap(), m);
        let mut bad = bytes.clone();
        bad[4] = 9; // security tag
        assert!(decode_mail(&bad).is_err());
        let mut bad = encode_task(&task());
        bad[6] = 7; // cadence tag
        assert!(decode_task(&bad).is_err());
    }
}
