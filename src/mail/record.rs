//! On-disk records of the outbox (`store::data::Table::Outbox`).
//!
//! Keys: message id (u64 big-endian) + `m` for the state, + `b` for the
//! message bytes, which never change and are read only to send.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outbox::{Delivery, Message, Status};
use crate::store::records::{DecodeError, from_bytes, to_bytes};

pub fn state_key(id: u64) -> [u8; 9] {
    key(id, b'm')
}

pub fn body_key(id: u64) -> [u8; 9] {
    key(id, b'b')
}

fn key(id: u64, tag: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = tag;
    k
}

/// `(id, is_state)` of an outbox key.
pub fn split_key(k: &[u8]) -> Option<(u64, bool)> {
    let (id, tag) = k.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*id), tag == b"m"))
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum MessageRecord {
    V1 {
        id: u64,
        queued_us: i64,
        subject: String,
        run: Option<u64>,
        retry_window_s: u64,
        deliveries: Vec<DeliveryV1>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct DeliveryV1 {
    recipient: String,
    /// 0 pending, 1 sent, 2 failed.
    status: u8,
    at_us: i64,
    reason: String,
    attempts: u32,
    next_attempt_us: i64,
    last_error: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum BodyRecord {
    V1(Vec<u8>),
}

pub fn encode_message(m: &Message) -> Vec<u8> {
    to_bytes(&MessageRecord::V1 {
        id: m.id,
        queued_us: m.queued,
        subject: m.subject.clone(),
        run: m.run,
        retry_window_s: m.retry_window.as_secs(),
        deliveries: m
            .deliveries
            .iter()
            .map(|d| {
                let (status, at_us, reason) = match &d.status {
                    Status::Pending => (0, 0, String::new()),
                    Status::Sent { at } => (1, *at, String::new()),
                    Status::Failed { at, reason } => (2, *at, reason.clone()),
                };
                DeliveryV1 {
                    recipient: d.recipient.clone(),
                    status,
                    at_us,
                    reason,
                    attempts: d.attempts,
                    next_attempt_us: d.next_attempt,
                    last_error: d.last_error.clone(),
                }
            })
            .collect(),
    })
}

pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let MessageRecord::V1 {
        id,
        queued_us,
        subject,
        run,
        retry_window_s,
        deliveries,
    } = from_bytes(bytes)?;
    let deliveries = deliveries
        .into_iter()
        .map(|d| {
            let status = match d.status {
                0 => Status::Pending,
                1 => Status::Sent { at: d.at_us },
                2 => Status::Failed {
                    at: d.at_us,
                    reason: d.reason,
                },
                n => return Err(DecodeError(format!("unknown delivery status {n}"))),
            };
            Ok(Delivery {
                recipient: d.recipient,
                status,
                attempts: d.attempts,
                next_attempt: d.next_attempt_us,
                last_error: d.last_error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Message {
        id,
        queued: queued_us,
        subject,
        run,
        retry_window: Duration::from_secs(retry_window_s),
        deliveries,
    })
}

pub fn encode_body(bytes: &[u8]) -> Vec<u8> {
    to_bytes(&BodyRecord::V1(bytes.to_vec()))
}

pub fn decode_body(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let BodyRecord::V1(b) = from_bytes(bytes)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mail::outbox::Outcome;

    #[test]
    fn message_record_is_pinned_and_round_trips() {
        let mut m = Message::new(
            1,
            2,
            "s".into(),
            Some(3),
            Duration::from_secs(4),
            &["a".into()],
        );
        assert_eq!(
            encode_message(&m),
            [0, 1, 4, 1, b's', 1, 3, 4, 1, 1, b'a', 0, 0, 0, 0, 4, 0]
        );
        m.record(0, Outcome::Permanent("550".into()), 9);
        assert_eq!(decode_message(&encode_message(&m)).unwrap(), m);
        assert_eq!(decode_body(&encode_body(b"xyz")).unwrap(), b"xyz");
        assert_eq!(split_key(&state_key(7)), Some((7, true)));
        assert_eq!(split_key(&body_key(7)), Some((7, false)));
        assert!(decode_message(&[0, 1]).is_err());
    }
}
