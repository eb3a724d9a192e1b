//! The mail adapter: keeps the outbox in the store and delivers it over
//! SMTP (lettre) on worker threads, one envelope per recipient.
//!
//! The loop owns the outbox: it queues messages, picks due deliveries on
//! each tick, hands each to a thread, and records the thread's
//! [`Outcome`] in the store as soon as it comes back (`Event::MailDone`).
//! A delivery is in flight at most once. After a restart nothing is in
//! flight and every pending delivery is picked up again.

use std::collections::BTreeSet;
use std::ops::{Bound, ControlFlow};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::Transport;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use smol::channel::Sender;

use crate::mail::outbox::{Message, Outcome};
use crate::mail::record;
use crate::model::task::Security;
use crate::model::{Kind, MAIL_ID, MailSettings, Object};
use crate::store::data::{Order, Table};
use crate::store::{Store, StoreError};

use super::Event;

/// SMTP connection and command timeout.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Most deliveries in flight at once.
const MAX_IN_FLIGHT: usize = 4;

pub struct Mail {
    in_flight: BTreeSet<(u64, usize)>,
    /// Earliest pending attempt (UTC µs), `None` if nothing is pending.
    next_due: Option<i64>,
    ca_bundle: PathBuf,
}

impl Mail {
    pub fn new(store: &Store, ca_bundle: PathBuf) -> Mail {
        let mut m = Mail {
            in_flight: BTreeSet::new(),
            next_due: None,
            ca_bundle,
        };
        m.refresh(store);
        m
    }

    /// Recomputes the next deadline from the store.
    fn refresh(&mut self, store: &Store) {
        let mut next: Option<i64> = None;
        let r = each_message(store, |m| {
            if let Some(d) = m.next_deadline() {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        });
        if let Err(e) = r {
            log::error!("mail: cannot read the outbox: {e}");
        }
        self.next_due = next;
    }

    /// Queues `message` with its bytes; the run record and anything else
    /// the caller writes goes in the same transaction through `also`.
    pub fn queue(
        &mut self,
        store: &Store,
        message: &Message,
        body: &[u8],
        also: impl FnOnce(&mut crate::store::data::DataTxn<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        store.data_write(|t| {
            t.put(
                Table::Outbox,
                &record::state_key(message.id),
                &record::encode_message(message),
            )?;
            t.put(
                Table::Outbox,
                &record::body_key(message.id),
                &record::encode_body(body),
            )?;
            also(t)
        })?;
        if let Some(d) = message.next_deadline() {
            self.next_due = Some(self.next_due.map_or(d, |n| n.min(d)));
        }
        Ok(())
    }

    /// Starts the deliveries due at `now_us` on worker threads.
    pub fn tick(&mut self, store: &Arc<Store>, now_us: i64, events: &Sender<Event>) {
        if self.next_due.is_none_or(|d| d > now_us) || self.in_flight.len() >= MAX_IN_FLIGHT {
            return;
        }
        let hostname = store
            .setting(crate::model::SettingKey::Hostname)
            .unwrap_or_else(|_| "kpbx".into());
        let settings = match store.get(Kind::Mail, MAIL_ID) {
            Ok(Some(Object::Mail(m))) => Some(m),
            Ok(_) => None,
            Err(e) => {
                log::error!("mail: {e}");
                return;
            }
        };
        let mut due: Vec<(u64, usize, String)> = Vec::new();
        let r = each_message(store, |m| {
            for i in m.due(now_us) {
                if !self.in_flight.contains(&(m.id, i)) {
                    due.push((m.id, i, m.deliveries[i].recipient.clone()));
                }
            }
        });
        if let Err(e) = r {
            log::error!("mail: cannot read the outbox: {e}");
            return;
        }
        for (id, index, recipient) in due {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            self.in_flight.insert((id, index));
            let job = Job {
                store: store.clone(),
                settings: settings.clone(),
                ca_bundle: self.ca_bundle.clone(),
                hostname: hostname.clone(),
                id,
                recipient,
            };
            let events = events.clone();
            let spawned = std::thread::Builder::new()
                .name("kpbxd-smtp".into())
                .spawn(move || {
                    let outcome = job.run();
                    let _ = events.send_blocking(Event::MailDone {
                        message: id,
                        index,
                        outcome,
                    });
                });
            if let Err(e) = spawned {
                log::error!("mail: cannot start a delivery thread: {e}");
                self.in_flight.remove(&(id, index));
            }
        }
        // Until a thread reports back, the due ones are not due again.
        self.next_due = None;
    }

    /// Records the outcome of one delivery.
    pub fn done(&mut self, store: &Store, id: u64, index: usize, outcome: Outcome, now_us: i64) {
        self.in_flight.remove(&(id, index));
        let r = store.data_write(|t| {
            let Some(bytes) = t.get(Table::Outbox, &record::state_key(id))? else {
                return Ok(None);
            };
            let mut m = record::decode_message(&bytes)?;
            m.record(index, outcome.clone(), now_us);
            t.put(
                Table::Outbox,
                &record::state_key(id),
                &record::encode_message(&m),
            )?;
            Ok(Some(m))
        });
        match (r, &outcome) {
            (Ok(Some(m)), _) => {
                let d = &m.deliveries[index.min(m.deliveries.len().saturating_sub(1))];
                log::info!(
                    "mail {id} to {}: {} (attempt {}){}",
                    d.recipient,
                    d.status.name(),
                    d.attempts,
                    match &outcome {
                        Outcome::Accepted => String::new(),
                        Outcome::Transient(e) | Outcome::Permanent(e) => format!(": {e}"),
                    }
                );
            }
            (Ok(None), _) => log::warn!("mail {id}: outcome for a message no longer queued"),
            (Err(e), _) => log::error!("mail {id}: cannot record the outcome: {e}"),
        }
        self.refresh(store);
    }

    /// Makes every pending delivery due now; returns how many.
    pub fn retry_now(&mut self, store: &Store, now_us: i64) -> Result<usize, StoreError> {
        let mut ids = Vec::new();
        each_message(store, |m| {
            if !m.is_done() {
                ids.push(m.id);
            }
        })?;
        let mut n = 0;
        store.data_write(|t| {
            for id in &ids {
                if let Some(bytes) = t.get(Table::Outbox, &record::state_key(*id))? {
                    let mut m = record::decode_message(&bytes)?;
                    m.retry_now(now_us);
                    n += m.due(now_us).len();
                    t.put(
                        Table::Outbox,
                        &record::state_key(*id),
                        &record::encode_message(&m),
                    )?;
                }
            }
            Ok(())
        })?;
        self.refresh(store);
        Ok(n)
    }

    /// The newest `limit` messages, newest first.
    pub fn list(store: &Store, limit: usize) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        store.data_scan(
            Table::Outbox,
            (Bound::Unbounded, Bound::Unbounded),
            Order::Descending,
            |k, v| {
                if let Some((_, true)) = record::split_key(k) {
                    out.push(record::decode_message(v)?);
                }
                Ok(if out.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )?;
        Ok(out)
    }

    pub fn get(store: &Store, id: u64) -> Result<Option<Message>, StoreError> {
        store
            .data_get(Table::Outbox, &record::state_key(id))?
            .map(|b| record::decode_message(&b).map_err(StoreError::from))
            .transpose()
    }

    /// The id for the next message.
    pub fn next_id(store: &Store) -> Result<u64, StoreError> {
        let mut last = 0;
        store.data_scan(
            Table::Outbox,
            (Bound::Unbounded, Bound::Unbounded),
            Order::Descending,
            |k, _| {
                last = record::split_key(k).map_or(0, |(id, _)| id);
                Ok(ControlFlow::Break(()))
            },
        )?;
        Ok(last + 1)
    }
}

fn each_message(store: &Store, mut f: impl FnMut(&Message)) -> Result<(), StoreError> {
    store.data_scan(
        Table::Outbox,
        (Bound::Unbounded, Bound::Unbounded),
        Order::Ascending,
        |k, v| {
            if let Some((_, true)) = record::split_key(k) {
                match record::decode_message(v) {
                    Ok(m) => f(&m),
                    Err(e) => log::error!("mail: outbox record {k:?} is unreadable: {e}"),
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )
}

/// One delivery attempt, run on a worker thread.
struct Job {
    store: Arc<Store>,
    settings: Option<MailSettings>,
    ca_bundle: PathBuf,
    hostname: String,
    id: u64,
    recipient: String,
}

impl Job {
    fn run(self) -> Outcome {
        let Some(settings) = &self.settings else {
            return Outcome::Transient("mail is not configured (kpbx mail configure)".into());
        };
        let body = match self
            .store
            .data_get(Table::Outbox, &record::body_key(self.id))
        {
            Ok(Some(b)) => match record::decode_body(&b) {
                Ok(b) => b,
                Err(e) => return Outcome::Permanent(format!("message unreadable: {e}")),
            },
            Ok(None) => return Outcome::Permanent("message body missing".into()),
            Err(e) => return Outcome::Transient(format!("store: {e}")),
        };
        send(
            settings,
            &self.ca_bundle,
            &self.hostname,
            &self.recipient,
            &body,
        )
    }
}

/// Sends `body` to one recipient; classifies the result.
pub fn send(
    settings: &MailSettings,
    ca_bundle: &std::path::Path,
    hostname: &str,
    recipient: &str,
    body: &[u8],
) -> Outcome {
    let envelope = match (settings.sender.parse(), recipient.parse()) {
        (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
            Ok(e) => e,
            Err(e) => return Outcome::Permanent(format!("envelope: {e}")),
        },
        _ => return Outcome::Permanent(format!("bad address {recipient:?} or sender")),
    };
    let transport = match transport(settings, ca_bundle, hostname) {
        Ok(t) => t,
        // A TLS set-up that cannot be built is a configuration problem;
        // retried (the administrator may fix it), never sent in clear.
        Err(e) => return Outcome::Transient(e),
    };
    match transport.send_raw(&envelope, body) {
        Ok(_) => Outcome::Accepted,
        Err(e) if e.is_permanent() => Outcome::Permanent(error_text(&e)),
        Err(e) => Outcome::Transient(error_text(&e)),
    }
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn transport(
    settings: &MailSettings,
    ca_bundle: &std::path::Path,
    hostname: &str,
) -> Result<lettre::SmtpTransport, String> {
    let tls = |what: &str| -> Result<TlsParameters, String> {
        let pem = std::fs::read(ca_bundle)
            .map_err(|e| format!("ca_bundle {}: {e}", ca_bundle.display()))?;
        let roots = Certificate::from_pem(&pem)
            .map_err(|e| format!("ca_bundle {}: {e}", ca_bundle.display()))?;
        TlsParameters::builder(settings.server.clone())
            .certificate_store(CertificateStore::None)
            .add_root_certificate(roots)
            .build_rustls()
            .map_err(|e| format!("{what}: {e}"))
    };
    let tls = match settings.security {
        Security::None => Tls::None,
        Security::StartTls => Tls::Required(tls("STARTTLS")?),
        Security::Tls => Tls::Wrapper(tls("TLS")?),
    };
    let mut b = lettre::SmtpTransport::builder_dangerous(settings.server.clone())
        .port(settings.effective_port())
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain(hostname.to_string()));
    if !settings.user.is_empty() {
        b = b.credentials(Credentials::new(
            settings.user.clone(),
            settings.password.clone(),
        ));
    }
    Ok(b.build())
}
