//! Adapter state shared by the file servers: the scan guard and the fetch
//! log. HTTP connections may run on other threads, hence the mutex; every
//! critical section is a few map operations.
//!
//! The fetch log keeps, per device, its last [`PER_DEVICE`] fetches, and the
//! unassigned devices (a MAC-named file nobody has) that tried, at most
//! [`MAX_UNKNOWN`] of them. It lives in memory: it is a diagnostic, not
//! configuration, and a restart starts it afresh.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{Clock, SystemClock, WallTime};
use crate::model::Mac;
use crate::provision::guard::{ScanGuard, Thresholds, Verdict, find_mac};

/// Fetches kept per device.
pub const PER_DEVICE: usize = 20;
/// Unassigned devices remembered.
pub const MAX_UNKNOWN: usize = 1024;
/// Longest User-Agent or file name kept, in characters.
const MAX_TEXT: usize = 200;

#[derive(Clone, Debug)]
pub struct Fetch {
    pub time: WallTime,
    pub protocol: &'static str,
    pub address: IpAddr,
    pub user_agent: String,
    pub file: String,
    pub result: String,
    pub bytes: u64,
}

#[derive(Clone, Debug)]
pub struct Unknown {
    pub first: WallTime,
    pub last: WallTime,
    pub count: u64,
    pub address: IpAddr,
    pub user_agent: String,
    pub file: String,
}

pub struct Protect {
    clock: SystemClock,
    guard: ScanGuard,
    devices: HashMap<Mac, VecDeque<Fetch>>,
    unknown: HashMap<Mac, Unknown>,
}

impl Protect {
    /// Counts a try of an unassigned device, forgetting the least recently
    /// seen one when the list is full.
    fn unknown_seen(
        &mut self,
        mac: Mac,
        wall: WallTime,
        address: IpAddr,
        user_agent: String,
        file: String,
    ) {
        if !self.unknown.contains_key(&mac) && self.unknown.len() >= MAX_UNKNOWN {
            let oldest = self
                .unknown
                .iter()
                .min_by_key(|(_, u)| u.last)
                .map(|(m, _)| *m);
            if let Some(oldest) = oldest {
                self.unknown.remove(&oldest);
            }
        }
        let u = self.unknown.entry(mac).or_insert(Unknown {
            first: wall,
            last: wall,
            count: 0,
            address,
            user_agent: String::new(),
            file: String::new(),
        });
        u.last = wall;
        u.count += 1;
        u.address = address;
        u.user_agent = user_agent;
        u.file = file;
    }
}

#[derive(Clone)]
pub struct SharedProtect {
    inner: Arc<Mutex<Protect>>,
    /// Some address has ever been blocked: until then [`SharedProtect::is_blocked`] (asked
    /// for every request) needs neither the lock nor the clock.
    any_block: Arc<AtomicBool>,
}

impl Default for SharedProtect {
    fn default() -> SharedProtect {
        SharedProtect {
            inner: Arc::new(Mutex::new(Protect {
                clock: SystemClock::default(),
                guard: ScanGuard::new(Thresholds::default()),
                devices: HashMap::new(),
                unknown: HashMap::new(),
            })),
            any_block: Arc::new(AtomicBool::new(false)),
        }
    }
}

fn clip(s: &str) -> String {
    let mut out = String::new();
    clip_into(&mut out, s);
    out
}

/// `out` becomes `s` cut to [`MAX_TEXT`] characters (reusing `out`'s allocation).
fn clip_into(out: &mut String, s: &str) {
    let end = s.char_indices().nth(MAX_TEXT).map_or(s.len(), |(i, _)| i);
    out.clear();
    out.push_str(&s[..end]);
}

impl SharedProtect {
    fn lock(&self) -> MutexGuard<'_, Protect> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_thresholds(&self, t: Thresholds) {
        self.lock().guard.thresholds = t;
    }

    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        if !self.any_block.load(Ordering::Acquire) {
            return false;
        }
        let p = self.lock();
        p.guard.is_blocked(p.clock.now(), ip)
    }

    /// Records one finished request. `device` is the generated file's
    /// device; a not-found MAC-named file counts as a scanning miss and
    /// lists its MAC as an unassigned device. Anything else (a static file,
    /// a model-wide file) is not recorded, and costs no lock or clock read.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        protocol: &'static str,
        address: IpAddr,
        user_agent: Option<&str>,
        file: &str,
        result: &str,
        bytes: u64,
        device: Option<Mac>,
        not_found: bool,
    ) {
        if device.is_none() && !not_found {
            return;
        }
        let mut p = self.lock();
        let wall = p.clock.wall();
        if let Some(mac) = device {
            let log = p.devices.entry(mac).or_default();
            // A full log's oldest entry is recycled: no allocation per fetch.
            let mut fetch = (log.len() == PER_DEVICE)
                .then(|| log.pop_front())
                .flatten()
                .unwrap_or(Fetch {
                    time: wall,
                    protocol,
                    address,
                    user_agent: String::new(),
                    file: String::new(),
                    result: String::new(),
                    bytes,
                });
            fetch.time = wall;
            fetch.protocol = protocol;
            fetch.address = address;
            clip_into(&mut fetch.user_agent, user_agent.unwrap_or(""));
            clip_into(&mut fetch.file, file);
            fetch.result.clear();
            fetch.result.push_str(result);
            fetch.bytes = bytes;
            log.push_back(fetch);
            return;
        }
        let Some(mac) = find_mac(file).filter(|_| not_found) else {
            return;
        };
        let now = p.clock.now();
        let fetch_user_agent = clip(user_agent.unwrap_or(""));
        let fetch_file = clip(file);
        if p.guard.miss(now, address) == Verdict::Blocked {
            self.any_block.store(true, Ordering::Release);
            log::warn!(
                "provisioning: {address} blocked: it asks for unknown MAC-named files (scanning)"
            );
        }
        p.unknown_seen(mac, wall, address, fetch_user_agent, fetch_file);
    }

    /// Records a SIP PnP exchange: in the device's log when it is known,
    /// else in the unassigned devices (a SUBSCRIBE is no scanning miss).
    pub fn record_pnp(&self, address: IpAddr, mac: Mac, known: bool, result: &str) {
        let mut p = self.lock();
        let wall = p.clock.wall();
        let file = "SUBSCRIBE ua-profile".to_string();
        if !known {
            p.unknown_seen(mac, wall, address, String::new(), file);
            return;
        }
        let log = p.devices.entry(mac).or_default();
        if log.len() == PER_DEVICE {
            log.pop_front();
        }
        log.push_back(Fetch {
            time: wall,
            protocol: "sip-pnp",
            address,
            user_agent: String::new(),
            file,
            result: clip(result),
            bytes: 0,
        });
    }

    pub fn fetches(&self, device: Option<Mac>) -> Vec<(Mac, Fetch)> {
        let p = self.lock();
        let mut out: Vec<(Mac, Fetch)> = p
            .devices
            .iter()
            .filter(|(m, _)| device.is_none_or(|d| d == **m))
            .flat_map(|(m, log)| log.iter().map(|f| (*m, f.clone())))
            .collect();
        out.sort_by_key(|(_, f)| std::cmp::Reverse(f.time));
        out
    }

    pub fn unknown(&self) -> Vec<(Mac, Unknown)> {
        let p = self.lock();
        let mut out: Vec<(Mac, Unknown)> = p.unknown.iter().map(|(m, u)| (*m, u.clone())).collect();
        out.sort_by_key(|(_, u)| std::cmp::Reverse(u.last));
        out
    }

    pub fn blocked(&self) -> Vec<(IpAddr, std::time::Duration)> {
        let p = self.lock();
        p.guard.blocked(p.clock.now())
    }
}
