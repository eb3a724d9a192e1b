//! HA data sync under faults, with two real kpbxd processes in network
//! namespaces (root and iproute2 required; fails, never skips, without
//! them): a partition in which both nodes take changes, then heals (one
//! history wins, the other is archived and reported), and bad input on the
//! sync channel in both directions (the stores do not change).

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

use kpbxd::ha::auth::Key;
use kpbxd::ha::sync::{Direction, Msg, Restart, Sealer, session_key};
use kpbxd::store::repl::{Db, OpV1, ReplRecord};
use lab::wait_until;
use rig::*;

const SYNC_PORT: u16 = 7411;

fn sync(d: &common::Daemon) -> serde_json::Value {
    status(d)["sync"].clone()
}

fn converged(rig: &Rig) -> bool {
    let (a, b) = (sync(&rig.a), sync(&rig.b));
    a["local_seq"] == b["local_seq"] && a["local_hash"] == b["local_hash"]
}

fn wait_in_sync(rig: &Rig) {
    assert!(
        wait_until(Duration::from_secs(15), || converged(rig)
            && (sync(&rig.a)["mode"] == "sync"
                || sync(&rig.b)["mode"] == "sync")),
        "not in sync: {}\n{}\n{}",
        sync(&rig.a),
        sync(&rig.b),
        rig.logs()
    );
}

fn cluster_key(d: &common::Daemon) -> Key {
    let hex = std::fs::read_to_string(d.data_dir().join("ha/cluster.key")).expect("cluster key");
    let hex = hex.trim();
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    Key(k)
}

/// The position (seq, hash) and rejected count of a node.
fn position(d: &common::Daemon) -> (serde_json::Value, serde_json::Value, u64) {
    let s = sync(d);
    (
        s["local_seq"].clone(),
        s["local_hash"].clone(),
        s["rejected"].as_u64().expect("rejected"),
    )
}

/// Partition: the sync link down and the two LAN ports isolated from each
/// other on the bridge (both still reach the ping hosts), so each node
/// believes the other dead and both hold the resource. A change on each
/// side; heal; one history wins, the other node's change is archived,
/// reported in its status and in the winner's audit log.
#[test]
fn divergence_after_a_partition_is_archived_and_reported() {
    let _g = one_at_a_time();
    let rig = Rig::up("div");
    rig.a.ok(&["system", "set", "location=before the split"]);
    divergence_after_a_partition(&rig);
}

/// The same, with the change before the split made before pairing, so that
/// b holds it by the pairing's snapshot, not by its log (what happened in 2
/// runs of about 12 of the test above, when b first connected after a's
/// first change). The loser a compared its history with b's log, found no
/// entry for the shared change there (a snapshot empties the log) and
/// archived it with its own: "archived 2 transactions" for one lost.
#[test]
fn divergence_after_a_snapshot_archives_only_what_the_winner_lacks() {
    let _g = one_at_a_time();
    let rig = Rig::up_with(
        "divsn",
        |a, _| {
            a.ok(&["system", "set", "location=before the split"]);
        },
        false,
    );
    divergence_after_a_partition(&rig);
}

fn divergence_after_a_partition(rig: &Rig) {
    wait_in_sync(rig);

    rig.lab.ip(&rig.a_ns, "link set sync0 down");
    rig.lab.sh(&rig.sw, "bridge link set dev pa isolated on");
    rig.lab.sh(&rig.sw, "bridge link set dev pb isolated on");
    assert!(
        wait_until(Duration::from_secs(10), || status(&rig.a)["state"]
            == "active"
            && status(&rig.b)["state"] == "active"),
        "both should hold during the partition: {}\n{}\n{}",
        status(&rig.a),
        status(&rig.b),
        rig.logs()
    );
    // Each side commits locally; with the peer unheard, either answer is
    // true to the rule of issue 18 item 2: confirmed (still the rightful
    // holder after the bound) or the documented "may be lost".
    for (d, set) in [
        (&rig.a, "location=written on a"),
        (&rig.b, "hostname=written-on-b"),
    ] {
        let out = d.kpbx(&["system", "set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("it may be lost"),
            "{set}: {err}"
        );
    }

    rig.lab.sh(&rig.sw, "bridge link set dev pa isolated off");
    rig.lab.sh(&rig.sw, "bridge link set dev pb isolated off");
    rig.lab.ip(&rig.a_ns, "link set sync0 up");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (sa, sb) = (status(&rig.a), status(&rig.b));
            let one = (sa["state"] == "active") != (sb["state"] == "active");
            one && converged(rig)
                && !sync(&rig.a)["last_archive"]
                    .as_str()
                    .unwrap_or("")
                    .is_empty()
        }),
        "no single history after healing: {}\n{}\n{}",
        status(&rig.a),
        status(&rig.b),
        rig.logs()
    );
    let (winner, loser, lost, kept) = if status(&rig.a)["state"] == "active" {
        (
            &rig.a,
            &rig.b,
            ("hostname", "written-on-b"),
            ("location", "written on a"),
        )
    } else {
        (
            &rig.b,
            &rig.a,
            ("location", "written on a"),
            ("hostname", "written-on-b"),
        )
    };
    // The winner's history on both nodes.
    for d in [winner, loser] {
        assert_eq!(d.setting(kept.0)["value"], kept.1);
        assert_ne!(d.setting(lost.0)["value"], lost.1);
        let v = d.json(&["audit", "verify"]);
        assert_eq!(v["ok"], true, "{v}");
    }
    // The loser's change is in its archive, and reported.
    let report = sync(loser)["last_archive"]
        .as_str()
        .expect("archive")
        .to_string();
    // Seen failing once in about 50 runs with the message lost: say everything.
    assert!(
        report.contains("archived 1 transactions"),
        "{report}\nwinner {}\nloser {}\n{}",
        sync(winner),
        sync(loser),
        rig.logs()
    );
    let dir = report
        .split(" to ")
        .last()
        .expect("archive dir")
        .trim()
        .to_string();
    let listing = std::fs::read_to_string(format!("{dir}/transactions.txt")).expect("listing");
    assert!(listing.contains(lost.0), "{listing}");
    assert!(std::path::Path::new(&format!("{dir}/data.mdb")).exists());
    assert!(
        sync(winner)["last_archive"]
            .as_str()
            .unwrap_or("")
            .starts_with("peer archived 1 transactions"),
        "{}",
        sync(winner)
    );
    // In the audit log of both nodes (written on the winner, replicated).
    for d in [winner, loser] {
        let audit = d.ok(&["audit", "list"]);
        assert!(audit.contains("data sync: the peer archived"), "{audit}");
    }
}

/// The first rule: at pairing the secondary takes the
/// coordinator's data, even when the secondary is the one that becomes
/// active (here b is the default active node). Its own data is archived.
#[test]
fn an_active_secondary_takes_the_coordinators_data_at_pairing() {
    let _g = one_at_a_time();
    let rig = Rig::up_with(
        "rev",
        |a, b| {
            a.ok(&["system", "set", "location=set on the coordinator"]);
            b.ok(&["system", "set", "hostname=b-before-pairing"]);
        },
        true,
    );
    wait_in_sync(&rig);
    // Converged with b active, on the coordinator's data.
    assert_eq!(status(&rig.b)["state"], "active");
    for d in [&rig.a, &rig.b] {
        assert_eq!(d.setting("location")["value"], "set on the coordinator");
        assert_ne!(d.setting("hostname")["value"], "b-before-pairing");
        let v = d.json(&["audit", "verify"]);
        assert_eq!(v["ok"], true, "{v}");
    }
    let report = sync(&rig.b)["last_archive"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(report.starts_with("this node archived"), "{report}");
    let dir = report.split(" to ").last().expect("dir").trim().to_string();
    assert!(dir.ends_with("-joined"), "{dir}");
    let listing = std::fs::read_to_string(format!("{dir}/transactions.txt")).expect("listing");
    assert!(listing.contains("hostname"), "{listing}");
    // In the audit log, on both nodes.
    wait_in_sync(&rig);
    for d in [&rig.a, &rig.b] {
        let audit = d.ok(&["audit", "list"]);
        assert!(audit.contains("joining the pairing"), "{audit}");
    }
    // From now on b is the primary of an ordinary pair.
    rig.b
        .ok(&["system", "set", "location=set on b, now active"]);
    wait_in_sync(&rig);
    assert_eq!(rig.a.setting("location")["value"], "set on b, now active");
}

/// A transaction larger than a frame (256 KiB: here a 250 KiB template,
/// stored with its audit entry) reaches the passive node in fragments.
#[test]
fn a_transaction_larger_than_a_frame_arrives_in_pieces() {
    let _g = one_at_a_time();
    let rig = Rig::up("big");
    let mut content = String::with_capacity(250 << 10);
    let mut i = 0u64;
    while content.len() < 250_000 {
        content.push_str(&format!(
            "option.{i} = value number {i} of a large template\n"
        ));
        i += 1;
    }
    let file = rig.dirs[0].path().join("big.tpl");
    std::fs::write(&file, &content).expect("template file");
    rig.a.ok(&[
        "prov",
        "template",
        "add",
        "name=big",
        "model=Yealink-T4x",
        &format!("content=@{}", file.display()),
    ]);
    wait_in_sync(&rig);
    let shown = rig.b.json(&["prov", "template", "show", "big"]).to_string();
    assert!(
        shown.contains(&format!("option.{} = value", i - 1)),
        "{}",
        &shown[..200.min(shown.len())]
    );
    assert_eq!(sync(&rig.b)["rejected"], 0);
    assert!(rig.a.log().contains("sync:"), "{}", rig.logs());
}

/// A connection to the active node's sync port from the peer's address.
fn connect_to_a(rig: &Rig, from: &'static str) -> TcpStream {
    rig.lab.run_in(&rig.b_ns, move || async move {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.bind(&SocketAddrV4::new(from.parse().expect("ip"), 0).into())
            .expect("bind");
        sock.connect_timeout(
            &SocketAddrV4::new("192.0.2.1".parse().expect("ip"), SYNC_PORT).into(),
            Duration::from_secs(2),
        )
        .expect("connect to a's sync port");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        TcpStream::from(sock)
    })
}

/// Reads until the peer closes (bounded by the read timeout).
fn until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Handshake as a secondary with `key`; returns the stream and both sealers.
fn as_secondary(mut s: TcpStream, key: &Key) -> (TcpStream, Sealer, Sealer) {
    let mine = [7u8; 16];
    s.write_all(&mine).expect("random");
    let mut theirs = [0u8; 16];
    s.read_exact(&mut theirs).expect("peer random");
    let k = session_key(key, &theirs, &mine);
    (
        s,
        Sealer::new(&k, Direction::ToPrimary).expect("sealer"),
        Sealer::new(&k, Direction::ToSecondary).expect("sealer"),
    )
}

#[test]
fn bad_input_on_the_sync_channel_changes_nothing() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("bad");
    rig.a.ok(&["system", "set", "location=steady"]);
    wait_in_sync(&rig);
    let key = cluster_key(&rig.a);
    let (seq_a, hash_a, rejected_a) = position(&rig.a);

    // ---- towards the active node (a), from b's address.
    // Garbage after the randoms.
    let mut s = connect_to_a(&rig, "192.0.2.2");
    s.write_all(&[0x5a; 16]).expect("random");
    s.write_all(&[0xff; 300]).expect("garbage");
    until_closed(&mut s);
    // A frame sealed with another key.
    let (mut s, mut seal, _) = as_secondary(connect_to_a(&rig, "192.0.2.2"), &Key([1; 32]));
    let f = seal
        .seal(&Msg::Position {
            seq: 0,
            hash: [0; 32],
        })
        .expect("seal");
    s.write_all(&f).expect("frame");
    until_closed(&mut s);
    // A truncated frame, then the connection closes.
    let (mut s, mut seal, _) = as_secondary(connect_to_a(&rig, "192.0.2.2"), &key);
    let f = seal.seal(&Msg::Ack { seq: 1 }).expect("seal");
    s.write_all(&f[..f.len() - 5]).expect("frame");
    drop(s);
    // A replayed frame (same counter twice) with the right key.
    let (mut s, mut seal, _) = as_secondary(connect_to_a(&rig, "192.0.2.2"), &key);
    let (seq_b, hash_b, _) = position(&rig.b);
    let hash: [u8; 32] = hex32(hash_b.as_str().expect("hash"));
    let f = seal
        .seal(&Msg::Position {
            seq: seq_b.as_u64().expect("seq"),
            hash,
        })
        .expect("seal");
    s.write_all(&f).expect("frame");
    s.write_all(&f).expect("replay");
    until_closed(&mut s);
    // From an address that is not the peer's.
    rig.lab.ip(&rig.b_ns, "addr add 192.0.2.3/24 dev sync0");
    let mut s = connect_to_a(&rig, "192.0.2.3");
    until_closed(&mut s);

    assert!(
        wait_until(Duration::from_secs(5), || position(&rig.a).2
            >= rejected_a + 4),
        "a did not count the rejected sessions: {}\n{}",
        sync(&rig.a),
        rig.a.log()
    );
    let log = rig.a.log();
    assert!(log.contains("does not authenticate"), "{log}");
    assert!(log.contains("out of sequence"), "{log}");
    assert!(log.contains("truncated"), "{log}");
    assert!(log.contains("not the peer's sync address"), "{log}");
    let (seq, hash, _) = position(&rig.a);
    assert_eq!((seq, hash), (seq_a.clone(), hash_a.clone()));
    // The real secondary still follows.
    rig.a
        .ok(&["system", "set", "location=after the attack on a"]);
    wait_in_sync(&rig);

    // ---- towards the passive node (b): its sync link now leads to an
    // impostor holding the cluster key (LAN heartbeats keep b passive).
    let (seq_b, hash_b, rejected_b) = position(&rig.b);
    let fake = rig.lab.ns("fk");
    rig.lab.ip(&rig.a_ns, "link del sync0");
    rig.lab.veth(&fake, "sync0", &rig.b_ns, "sync0");
    rig.lab.ip(&fake, "addr add 192.0.2.1/24 dev sync0");
    rig.lab.ip(&rig.b_ns, "addr add 192.0.2.2/24 dev sync0");
    let have = seq_b.as_u64().expect("seq");
    let head = hex32(hash_b.as_str().expect("hash"));
    let impostor = rig.lab.spawn_in(&fake, move || async move {
        let l = TcpListener::bind(("192.0.2.1", SYNC_PORT)).expect("impostor listens");
        l.set_nonblocking(false).expect("blocking");
        let mut served = Vec::new();
        for case in 0..6u8 {
            let (mut s, _) = l.accept().expect("b dials");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mine = [9u8; 16];
            s.write_all(&mine).expect("random");
            let mut theirs = [0u8; 16];
            s.read_exact(&mut theirs).expect("b's random");
            let k = session_key(&key, &mine, &theirs);
            let mut seal = Sealer::new(&k, Direction::ToSecondary).expect("sealer");
            let mut open = Sealer::new(&k, Direction::ToPrimary).expect("sealer");
            let mut frame = vec![0u8; 16];
            s.read_exact(&mut frame).expect("position header");
            let len = Sealer::frame_len(&frame).expect("frame").expect("len");
            frame.resize(len, 0);
            s.read_exact(&mut frame[16..]).expect("position body");
            let position = open.open(&frame).expect("b's position opens");
            served.push(format!("{position:?}"));
            let entry = |seq: u64, prev: [u8; 32]| {
                ReplRecord::new(
                    seq,
                    1,
                    vec![OpV1::Put {
                        db: Db::Objects,
                        key: b"setting\0location".to_vec(),
                        value: b"forged".to_vec(),
                    }],
                    prev,
                )
                .encode()
            };
            let out: Vec<u8> = match case {
                // An old sequence number: already applied.
                0 => seal
                    .seal(&Msg::Entries(vec![entry(have, [0; 32])]))
                    .expect("seal"),
                // The next number, but another history.
                1 => seal
                    .seal(&Msg::Entries(vec![entry(have + 1, [3; 32])]))
                    .expect("seal"),
                // The next number and head, content changed after hashing.
                2 => {
                    let mut e = entry(have + 1, head);
                    let last = e.len() - 40;
                    e[last] ^= 1;
                    seal.seal(&Msg::Entries(vec![e])).expect("seal")
                }
                // Garbage.
                3 => vec![0xee; 60],
                // A frame replayed (same counter twice).
                4 => {
                    let f = seal.seal(&Msg::Head { seq: have }).expect("seal");
                    [f.clone(), f].concat()
                }
                // A truncated snapshot: begin, half a chunk, close.
                _ => {
                    let mut v = seal.seal(&Msg::Restart(Restart::Snapshot)).expect("seal");
                    v.extend(
                        seal.seal(&Msg::SnapshotBegin {
                            seq: 99,
                            hash: [1; 32],
                        })
                        .expect("seal"),
                    );
                    let chunk = seal
                        .seal(&Msg::SnapshotChunk(vec![(1, b"k".to_vec(), b"v".to_vec())]))
                        .expect("seal");
                    v.extend_from_slice(&chunk[..chunk.len() / 2]);
                    v
                }
            };
            let _ = s.write_all(&out);
            // Read b's acks or its close.
            let mut buf = [0u8; 4096];
            for _ in 0..100 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        served
    });
    let served = lab::join(impostor);
    assert_eq!(served.len(), 6, "{served:?}");
    assert!(
        wait_until(Duration::from_secs(5), || position(&rig.b).2
            >= rejected_b + 6),
        "b did not count the rejected sessions: {}\n{}",
        sync(&rig.b),
        rig.b.log()
    );
    let (seq, hash, _) = position(&rig.b);
    assert_eq!((seq, hash), (seq_b, hash_b), "b's store changed");
    assert_eq!(rig.b.setting("location")["value"], "after the attack on a");
    let v = rig.b.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let log = rig.b.log();
    for what in [
        "does not follow",
        "another history",
        "damaged",
        "bad frame",
        "out of sequence",
        "truncated",
    ] {
        assert!(log.contains(what), "b's log lacks {what:?}:\n{log}");
    }
}

fn hex32(s: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    k
}

/// Issue 18, item 2. A client commits in a loop (`kpbx system set
/// location=c<N>z` on whichever node takes changes) while the active
/// daemon is frozen (SIGSTOP) for about twice the out-of-service time and
/// continued, ten times at random phases (two clients). A change answered with exit 0
/// must be in the surviving store: a resumed active that answers a change
/// the peer never stored, and then yields and archives it as "ahead", lost
/// a confirmed change. Those get the "may be lost" error instead.
#[test]
fn frozen_active_never_confirms_a_change_it_then_loses() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _g = one_at_a_time();
    let rig = Rig::up("haxfrz");
    wait_in_sync(&rig);
    let stop = Arc::new(AtomicBool::new(false));
    // Two clients, so that a commit is in flight at most freezes.
    let clients: Vec<_> = (0..2u32)
        .map(|c| {
            let sockets = [rig.a.socket.clone(), rig.b.socket.clone()];
            let flag = stop.clone();
            std::thread::spawn(move || {
                let mut confirmed = Vec::new();
                let mut lost_answers = 0u32;
                let mut target = 0usize;
                // Bounded: at most 100,000 attempts.
                for n in 1..100_000u32 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let token = format!("c{c}n{n}z");
                    let value = format!("location={token}");
                    let out = common::kpbx_at(&sockets[target], &["system", "set", &value]);
                    if out.status.success() {
                        confirmed.push(token);
                    } else {
                        if String::from_utf8_lossy(&out.stderr).contains("may be lost") {
                            lost_answers += 1;
                        }
                        target = 1 - target;
                    }
                }
                (confirmed, lost_answers)
            })
        })
        .collect();
    // Random phases without OS randomness in the assertion path: a seed
    // from the clock, printed.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos() as u64
        | 1;
    eprintln!("frozen-active seed {seed}");
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..10 {
        std::thread::sleep(Duration::from_millis(300 + rand(700)));
        let active = if status(&rig.a)["state"] == "active" {
            &rig.a
        } else {
            &rig.b
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(active.pid()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
        std::thread::sleep(OOS * 2 + Duration::from_millis(rand(200)));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
        assert!(
            wait_until(Duration::from_secs(20), || {
                let (sa, sb) = (status(&rig.a), status(&rig.b));
                (sa["state"] == "active") != (sb["state"] == "active")
                    && sa["peer_out_of_service"] == false
                    && sb["peer_out_of_service"] == false
            }),
            "round {round}: the pair did not settle\n{}",
            rig.logs()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let mut confirmed = Vec::new();
    let mut lost_answers = 0;
    for c in clients {
        let (mut done, lost) = lab::join(c);
        confirmed.append(&mut done);
        lost_answers += lost;
    }
    wait_in_sync(&rig);
    let active = if status(&rig.a)["state"] == "active" {
        &rig.a
    } else {
        &rig.b
    };
    let export = active.ok(&["audit", "export", "--format", "json"]);
    let missing: Vec<&String> = confirmed.iter().filter(|t| !export.contains(*t)).collect();
    eprintln!(
        "frozen-active: {} changes confirmed, {lost_answers} answered 'may be lost', {} confirmed but missing",
        confirmed.len(),
        missing.len()
    );
    assert!(
        confirmed.len() > 100,
        "too few commits: {}",
        confirmed.len()
    );
    assert!(
        missing.is_empty(),
        "confirmed changes missing from the surviving store: {missing:?}\n{}",
        rig.logs()
    );
}

/// A read on the passive node is never taken for a write. The loop decided
/// "this request wrote" by comparing the log's sequence before and after
/// the handler, while the sync session applies the peer's entries on
/// another thread: a `kpbx ha status` answered in that moment waited for
/// the peer like a change and, on the passive node, got the "may be lost"
/// error (seen in CI during the frozen-active test).
#[test]
fn a_read_on_the_passive_is_never_taken_for_a_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _g = one_at_a_time();
    let rig = Rig::up("haxrd");
    wait_in_sync(&rig);
    let (active, passive) = if status(&rig.a)["state"] == "active" {
        (&rig.a, &rig.b)
    } else {
        (&rig.b, &rig.a)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let socket = active.socket.clone();
        let flag = stop.clone();
        std::thread::spawn(move || {
            let (mut n, mut ok) = (0u32, 0u32);
            // Bounded: at most 20,000 changes.
            while n < 20_000 && !flag.load(Ordering::Relaxed) {
                n += 1;
                let value = format!("location=r{n}");
                // On a box loaded enough that the roles move, a change
                // may rightly fail ("may be lost"): not this test's point.
                let out = common::kpbx_at(&socket, &["system", "set", &value]);
                ok += u32::from(out.status.success());
            }
            ok
        })
    };
    let started = std::time::Instant::now();
    let mut reads = 0u32;
    let mut wrong = Vec::new();
    while started.elapsed() < Duration::from_secs(8) {
        reads += 1;
        let out = common::kpbx_at(&passive.socket, &["ha", "status", "--json"]);
        if !out.status.success() {
            wrong.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = lab::join(writer);
    eprintln!("passive reads: {reads} during {writes} changes on the active node");
    assert!(
        writes > 50 && reads > 50,
        "too little traffic: {writes} changes, {reads} reads"
    );
    assert!(
        wrong.is_empty(),
        "{} of {reads} reads failed, e.g. {}",
        wrong.len(),
        wrong[0]
    );
}
