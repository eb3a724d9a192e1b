//! SIP PnP over real multicast: the daemon runs in a "PBX" namespace, a
//! Python (stdlib) "phone" in a second namespace joined by a veth pair
//! (198.51.100.0/24 only) multicasts SUBSCRIBEs to 224.0.1.75:5060 and
//! collects what comes back on its sending socket. Needs root and `ip`;
//! fails loudly otherwise.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Netns, require_root_and_ip};
use kpbxd::sip::{StartLine, header_param, parse};

/// argv[1]: JSON list of steps {port, msg, wait}; prints a JSON list (one per
/// step) of lists of received datagrams, hex-encoded. Every wait is bounded.
const PHONE: &str = r#"
import json, socket, sys, time
out = []
for step in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.20", step["port"]))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("198.51.100.20"))
    s.sendto(step["msg"].encode(), ("224.0.1.75", 5060))
    got = []
    deadline = time.monotonic() + step["wait"]
    while len(got) < 10:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            break
        got.append(data.hex())
    s.close()
    out.append(got)
print(json.dumps(out))
"#;

fn subscribe(uri_user: &str, port: u16, call_id: &str) -> String {
    format!(
        "SUBSCRIBE sip:{uri_user}@224.0.1.75:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.20:{port};branch=z9hG4bK{call_id}\r\n\
From: <sip:{uri_user}@224.0.1.75:5060>;tag=ph{call_id}\r\n\
To: <sip:{uri_user}@224.0.1.75:5060>\r\n\
Call-ID: {call_id}@198.51.100.20\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:198.51.100.20:{port}>\r\n\
Event: ua-profile;profile-type=\"device\";vendor=\"OEM\";model=\"OEM\";version=\"7.1.19\"\r\n\
Expires: 0\r\n\
Accept: application/url\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn phone(ns: &Netns, steps: &serde_json::Value) -> Vec<Vec<Vec<u8>>> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", PHONE])
        .arg(steps.to_string())
        .output()
        .expect("python3 in the phone namespace");
    assert!(
        out.status.success(),
        "phone script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|step| {
            step.as_array()
                .unwrap()
                .iter()
                .map(|d| unhex(d.as_str().unwrap()))
                .collect()
        })
        .collect()
}

const URL: &str = "http://198.51.100.1:8080/provisioning/";
/// A Snom phone fetches the URL as its settings file.
const SNOM_URL: &str = "http://198.51.100.1:8080/provisioning/00135E874B49.xml";

fn check_answer(got: &[Vec<u8>], request: &str, url: &str) {
    assert_eq!(got.len(), 2, "200 OK and NOTIFY expected, got {got:?}");
    let req = parse(request.as_bytes()).unwrap();
    assert!(got[0].starts_with(b"SIP/2.0 200 OK\r\n"));
    let ok = parse(&got[0]).unwrap();
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        assert_eq!(ok.header(h), req.header(h), "{h}");
    }
    assert!(header_param(ok.header("To").unwrap(), "tag").is_some());
    assert_eq!(ok.header("Expires"), Some("0"));
    assert_eq!(ok.header("Content-Length"), Some("0"));
    let n = parse(&got[1]).unwrap();
    assert!(matches!(&n.start, StartLine::Request { method, .. } if method == "NOTIFY"));
    assert_eq!(n.header("Event"), Some("ua-profile"));
    assert_eq!(
        n.header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n.header("Content-Type"), Some("application/url"));
    assert_eq!(
        n.header("Content-Length"),
        Some(url.len().to_string().as_str())
    );
    assert_eq!(n.body, url.as_bytes());
    assert_eq!(n.header("Call-ID"), req.header("Call-ID"));
}

/// The "PBX" and "phone" namespaces joined by a veth pair.
fn topology(tag: &str) -> (Netns, Netns) {
    let pbx = Netns::new(&format!("sippbx{tag}"));
    let ph = Netns::new(&format!("sipphone{tag}"));
    pbx.ip(&["link", "set", "lo", "up"]);
    ph.ip(&["link", "set", "lo", "up"]);
    veth(&pbx, &ph);
    (pbx, ph)
}

/// The veth pair `pbx0` (198.51.100.1) – `ph0` (198.51.100.20), up, with the phone's
/// multicast route.
fn veth(pbx: &Netns, ph: &Netns) {
    pbx.ip(&[
        "link", "add", "pbx0", "type", "veth", "peer", "name", "ph0", "netns", &ph.name,
    ]);
    pbx.ip(&["addr", "add", "198.51.100.1/24", "dev", "pbx0"]);
    pbx.ip(&["link", "set", "pbx0", "up"]);
    ph.ip(&["addr", "add", "198.51.100.20/24", "dev", "ph0"]);
    ph.ip(&["link", "set", "ph0", "up"]);
    ph.ip(&["route", "add", "224.0.0.0/4", "dev", "ph0"]);
}

/// Account 201 and a template `t` for Fanvil-X, for [`add_device`].
fn add_account_and_template(d: &Daemon) {
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=x"]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=t",
        "model=Fanvil-X",
        "content=x\n",
    ]);
}

/// A device with `mac` of `model` linked to account 201; `template` is `t` or a
/// built-in one.
fn add_device(d: &Daemon, mac: &str, model: &str, template: &str) {
    d.ok(&[
        "prov",
        "device",
        "add",
        &format!("mac={mac}"),
        &format!("model={model}"),
        &format!("template={template}"),
        "account=201",
    ]);
}

/// The daemon in the PBX namespace with SIP PnP on, started (and its data dir).
fn pbx_daemon(pbx: &Netns) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[("sip_pnp", "on"), ("http_listen", "0.0.0.0:8080")],
    );
    d.netns = Some(pbx.name.clone());
    d.start();
    (dir, d)
}

fn pnp_status(d: &Daemon) -> serde_json::Value {
    let status = d.json(&["status"]);
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sip_pnp")
        .unwrap()
        .clone()
}

#[test]
fn pnp_subscribe_over_multicast() {
    require_root_and_ip();
    let (pbx, ph) = topology("");

    let (_dir, mut d) = pbx_daemon(&pbx);
    let svc = pnp_status(&d);
    assert_eq!(svc["state"], "running", "{svc}");
    add_account_and_template(&d);
    add_device(&d, "00135E874B49", "Snom-D785", "snom-d785");
    add_device(&d, "0015657322ff", "Fanvil-X", "t");
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=001565000002",
        "model=Fanvil-X",
        "template=t",
        "account=201",
        "enabled=no",
    ]);

    let snom = subscribe("MAC%3a00135E874B49", 5060, "snom1");
    let yealink = subscribe("MAC0015657322ff", 5059, "yea1");
    let unknown = subscribe("MAC001565000001", 5059, "unk1");
    let disabled = subscribe("MAC001565000002", 5059, "dis1");
    let steps = serde_json::json!([
        {"port": 5060, "msg": snom, "wait": 2.0},
        {"port": 5059, "msg": yealink, "wait": 2.0},
        {"port": 5059, "msg": yealink, "wait": 1.5},
        {"port": 5059, "msg": unknown, "wait": 1.5},
        {"port": 5059, "msg": disabled, "wait": 1.5},
    ]);
    let got = phone(&ph, &steps);
    let log = d.log();
    check_answer(&got[0], &snom, SNOM_URL);
    check_answer(&got[1], &yealink, URL);
    // The retransmission: 200 OK again (same To-tag), no second NOTIFY.
    assert_eq!(got[2].len(), 1, "retransmission: {:?}\n{log}", got[2]);
    assert_eq!(got[2][0], got[1][0]);
    assert!(got[3].is_empty(), "unknown MAC answered: {:?}", got[3]);
    assert!(got[4].is_empty(), "disabled device answered: {:?}", got[4]);
    assert!(log.contains("unassigned device 001565000001"), "{log}");
    // The exchanges are in the per-device fetch log and the unassigned list.
    let fetches = d.json(&["prov", "log", "00135E874B49"]);
    let results: Vec<&str> = fetches
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["protocol"] == "sip-pnp")
        .map(|f| f["result"].as_str().unwrap())
        .collect();
    assert!(
        results.iter().any(|r| r.starts_with("notified http://")),
        "{fetches}"
    );
    let yea = d.json(&["prov", "log", "0015657322ff"]);
    assert!(yea.to_string().contains("retransmission"), "{yea}");
    // The disabled device is known: its silence is in its own log, and it is no
    // unassigned device.
    let dis = d.json(&["prov", "log", "001565000002"]);
    assert!(
        dis.to_string().contains("not answered: not provisioned"),
        "{dis}"
    );
    let unknown = d.json(&["prov", "unknown"]);
    assert_eq!(unknown["devices"][0]["mac"], "001565000001", "{unknown}");
    assert_eq!(
        unknown["devices"].as_array().map(Vec::len),
        Some(1),
        "{unknown}"
    );
    d.stop();
}

/// A SIP stack on the box that holds 0.0.0.0:5060 without SO_REUSEADDR does not stop the
/// daemon: `sip_pnp` shows `failed` with the reason, and phones are answered once the port
/// is free.
#[test]
fn pnp_waits_for_a_port_another_program_holds() {
    require_root_and_ip();
    let (pbx, ph) = topology("held");
    let holder = "import socket, time\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0', 5060))\n\
print('bound', flush=True)\n\
time.sleep(120)\n";
    let mut holder = Holder(
        Command::new("ip")
            .args(["netns", "exec", &pbx.name, "python3", "-c", holder])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 in the pbx namespace"),
    );
    let mut line = String::new();
    BufReader::new(holder.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "bound", "the holder could not bind 5060");

    let (_dir, mut d) = pbx_daemon(&pbx);
    let svc = pnp_status(&d);
    assert_eq!(svc["state"], "failed", "{svc}");
    let detail = svc["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("in use") && detail.contains("SO_REUSEADDR") && detail.contains("retrying"),
        "{svc}"
    );
    add_account_and_template(&d);
    add_device(&d, "00135E874B49", "Snom-D785", "snom-d785");

    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pnp_status(&d)["state"] != "running" {
        assert!(Instant::now() < deadline, "still {}", pnp_status(&d));
        std::thread::sleep(Duration::from_millis(250));
    }
    let snom = subscribe("MAC%3a00135E874B49", 5060, "late1");
    let got = phone(
        &ph,
        &serde_json::json!([{"port": 5060, "msg": snom, "wait": 2.0}]),
    );
    check_answer(&got[0], &snom, SNOM_URL);
    d.stop();
}

/// A LAN interface deleted and made anew (a VLAN reconfigured, a bridge rebuilt) loses its
/// group membership with it, under the same address: the responder joins it again on its
/// next pass (every 5 s), and phones behind it are answered.
#[test]
fn pnp_joins_an_interface_made_anew() {
    require_root_and_ip();
    let (pbx, ph) = topology("anew");
    let (_dir, mut d) = pbx_daemon(&pbx);
    add_account_and_template(&d);
    add_device(&d, "00135E874B49", "Snom-D785", "snom-d785");
    pbx.ip(&["link", "del", "pbx0"]);
    veth(&pbx, &ph);
    // Bounded: 12 SUBSCRIBEs a second apart (each its own Call-ID) cover the 5 s pass.
    let mut answered = None;
    for i in 0..12 {
        let snom = subscribe("MAC%3a00135E874B49", 5060, &format!("anew{i}"));
        let got = phone(
            &ph,
            &serde_json::json!([{"port": 5060, "msg": snom, "wait": 1.0}]),
        );
        if !got[0].is_empty() {
            answered = Some((snom, got));
            break;
        }
    }
    let (snom, got) = answered.unwrap_or_else(|| panic!("never answered\n{}", d.log()));
    check_answer(&got[0], &snom, SNOM_URL);
    d.stop();
}

/// A process killed by its PID on drop.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 21: switched to multitenant mode while running, the responder
/// answers nothing, and `kpbx status` says so instead of "running".
#[test]
fn status_shows_sip_pnp_disabled_once_multitenant() {
    require_root_and_ip();
    let (pbx, _ph) = topology("mt");
    let (_dir, d) = pbx_daemon(&pbx);
    assert_ne!(pnp_status(&d)["state"], "disabled", "{}", pnp_status(&d));
    d.ok(&["system", "set", "multitenant=on"]);
    let s = pnp_status(&d);
    assert_eq!(s["state"], "disabled", "{s}");
    assert!(s["detail"].as_str().unwrap().contains("multitenant"), "{s}");
}
