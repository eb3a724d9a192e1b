//! kpbxd: the services daemon of a PBX appliance.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod audit;
pub mod auth;
pub mod cdr;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod export;
pub mod ha;
pub mod http;
pub mod mail;
pub mod model;
pub mod net;
pub mod provision;
pub mod redirect;
pub mod report;
pub mod schedule;
pub mod sip;
pub mod store;
pub mod tftp;
