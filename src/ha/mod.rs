//! High availability: the pure core of an active/passive pair.
//!
//! Architecture invariant: **ha does no I/O.** Nothing in this module opens
//! a socket, reads a clock, sleeps, spawns, or draws random numbers. The
//! daemon feeds [`Event`]s and timeouts into a [`Node`] with the current
//! monotonic [`Instant`](crate::clock::Instant) and carries out the
//! [`Action`]s it drains, in order (quinn-proto style):
//!
//! ```text
//!  adapters (UDP, netlink, ARP, ping, CLI)      ha::Node
//!     Event ---------------------------------> handle_event(now, ev)
//!     timer at poll_timeout() ---------------> handle_timeout(now)
//!     <--------------------------------------- poll_action() -> Action
//! ```
//!
//! Submodules: [`config`] (validated settings and defaults), [`wire`]
//! (frame codec, fuzzable [`wire::parse`]), [`auth`] (HMAC-SHA256),
//! `pairing` (first contact), `ping` (dampened ping-group counts) and
//! [`node`] (the state machine).
//!
//! Rules the node follows:
//! - The peer is out of service only when every heartbeat path (sync and
//!   LAN) is silent past `keepalive_out_of_service`; one silent path is a
//!   warning (`Status::degraded`).
//! - Holding is decided from the dampened ping counts exchanged in
//!   heartbeats: strictly more wins, equal keeps the holder, with no holder
//!   the default active node takes it. A node that sees no member (or whose
//!   LAN is down) never acquires and releases if it holds.
//! - While the peer is heard, the resource moves break-before-make: the
//!   holder releases and says so; the other acquires on that heartbeat.
//! - Acquiring because the peer is silent needs a fresh ping reply and an
//!   ARP probe (sent early, once every path is late past the warning time,
//!   listening until just before the out-of-service time so that its
//!   answer is in when the peer goes out of service, and used if answered
//!   within the last out-of-service time) that no
//!   *third* MAC answers: an answer from the MAC of the
//!   out-of-service peer's own LAN address ([`Event::PeerLanMac`]) is the
//!   address its dead daemon left behind (kill -9), which expires by its
//!   lifetime, so it does not block. If both nodes hold (after a partition of both
//!   paths) the higher ping count, then the higher epoch (latest
//!   acquisition), then the coordinator keeps it and re-announces.
//! - After any heal (the peer heard again after being out of service) the
//!   holder re-announces (a fresh GARP burst) once the peer is seen not
//!   holding, whatever the peer's heartbeats report: with an uneven heal
//!   the loser may hear the winner first and yield before the winner ever
//!   sees it holding, while clients still have the loser's MAC.
//! - A gap between calls longer than half the out-of-service time is a
//!   local stall: the peer then gets a full out-of-service period again.
//! - A node whose daemon reports its event loop wedged
//!   (`Event::ServiceLoop { answering: false }`) is not eligible, like one
//!   whose LAN is down: it releases and never acquires until the loop
//!   answers again, so it never claims health for services that are stuck.
//!
//! Adapter contract (beyond the obvious):
//! - Ping: the adapter pings every ping-group member each `ping_interval`
//!   and reports every outcome as `Event::PingResult`; the core only counts.
//! - Addresses: `AddAddress`/`RefreshAddress` carry a lifetime (the
//!   out-of-service time rounded up to whole seconds) so the kernel drops
//!   the resource if the daemon dies; `AddressPresent` is reported for the
//!   netlink dump at start and `AddressRemoved` when it disappears.
//! - `ArpProbe` is answered with `ArpProbeAnswers` listing every MAC that
//!   claimed the address until the action's `until` (or the single-answer
//!   `ArpProbeResult`); a probe taken when needed is not answered later
//!   than 500 ms after it counts as free. When some MAC answers, the adapter first
//!   reports the MAC answering for the peer's LAN address as `PeerLanMac`.
//!   `RequestEntropy` is answered with `Event::Entropy`.
//! - `Identity::incarnation` is a persisted boot counter.
//!
//! When both nodes may hold the resource (bounded, documented windows):
//! - During a partition of *both* heartbeat paths in which both nodes still
//!   see ping-group members and the ARP probe cannot reach the other
//!   holder. No two-node design without a third party avoids this.
//! - After such a partition heals (or a frozen active resumes): until the
//!   first heartbeat crosses, i.e. at most one heartbeat interval plus the
//!   one-way delay (plus one interval per lost heartbeat). The loser
//!   releases; the winner re-announces with a fresh GARP burst.
//! - After the active daemon dies without its machine (kill -9): its
//!   kernel keeps answering for the resource until the address lifetime
//!   (the out-of-service time rounded up to whole seconds, plus up to ~1 s
//!   of kernel expiry granularity) ends, while the survivor already holds
//!   it and has moved the clients with gratuitous ARPs.
//! - Otherwise never: while the peer is heard, only the holder or (when
//!   nobody holds) the coordinator decides, and moves are
//!   break-before-make.

pub mod auth;
pub mod config;
pub mod node;
mod pairing;
mod ping;
pub mod sync;
pub mod wire;

pub use config::{Config, ConfigError, DefaultActive, PathConfig, ResourceIp, Role, parse_seconds};
pub use node::{
    Action, AdminCommand, Counters, Event, Holder, Hook, Identity, Level, Node, PathStatus, Reason,
    State, Status, Transition,
};
pub use wire::Path;
