//! Mail: the outbox's delivery state machine and message building.
//!
//! Invariant: pure. No sockets, no clock, no store: the daemon's mail adapter
//! (`daemon/mail.rs`) keeps the outbox in the store, talks SMTP through
//! lettre on a worker thread, and feeds each attempt's [`outbox::Outcome`]
//! back here with the current time.

pub mod message;
pub mod outbox;
pub mod record;
