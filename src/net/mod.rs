//! Network and process adapters for the HA core.
//!
//! | Adapter | Carries out (`ha::Action`) | Produces (`ha::Event`) |
//! |---|---|---|
//! | [`netlink`] | `AddAddress`, `RefreshAddress`, `RemoveAddress` | `AddressPresent`, `AddressRemoved` (dump + `AddressWatch`), `LinkChanged` (`LinkWatch`) |
//! | [`arp`] | `SendGarp`, `ArpProbe` | `ArpProbeAnswers` (every claiming MAC), preceded by `PeerLanMac` when someone claims |
//! | [`heartbeat`] | `Send { path, bytes }` | `Datagram { path, from, bytes }` |
//! | [`ping`] | (runs each `ping_interval`) | `PingResult { target, reachable }` |
//! | [`hooks`] | `RunHook { hook, reason }` | (log lines with exit codes) |
//!
//! Every adapter is usable from a single-threaded `smol::LocalExecutor`;
//! every wait is bounded by a timeout or by the socket becoming readable.
//! Pure codecs (`arp::Repr`, `ping::EchoRepr`, `netlink::messages`) never
//! panic on input.

pub mod arp;
pub mod heartbeat;
pub mod hooks;
pub mod netlink;
pub mod ping;
