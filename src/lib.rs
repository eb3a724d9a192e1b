//! kpbxd: the services daemon of a PBX appliance.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod clock;
pub mod config;
pub mod model;
pub mod store;
