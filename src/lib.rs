//! kpbxd: the services daemon of a PBX appliance.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod model;
pub mod store;
