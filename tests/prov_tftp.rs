//! Generated files and firmware fetched by real TFTP clients (curl, atftp,
//! tftp-hpa) from the daemon, over loopback.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::Daemon;

fn tool(name: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs `{name}`: apt-get install {package} (make test does it as root)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("client runs")
}

fn daemon(dir: &Path) -> Daemon {
    let mut d = Daemon::with(dir, &[("tftp_listen", "127.0.0.1:0")]);
    std::fs::create_dir_all(dir.join("static/fw")).unwrap();
    let firmware: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("static/fw/T46S-66.86.0.15.rom"), &firmware).unwrap();
    d.start();
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=tftp-secret",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:15:65:12:34:56",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=201",
    ]);
    d
}

#[test]
fn phones_fetch_generated_files_and_firmware() {
    tool("curl", "curl");
    tool("atftp", "atftp");
    tool("tftp", "tftp-hpa");
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path());
    let addr = d.listen("tftp");
    let want = d.ok(&["prov", "show", "001565123456.cfg"]);
    assert!(want.contains("tftp-secret"));
    let firmware = std::fs::read(dir.path().join("static/fw/T46S-66.86.0.15.rom")).unwrap();
    let out = |name: &str| dir.path().join(name);

    // curl, with a larger block size, asking for the upper-case MAC.
    let r = run(Command::new("curl")
        .args(["-sS", "--tftp-blksize", "1428", "-o"])
        .arg(out("c.cfg"))
        .arg(format!("tftp://{addr}/001565123456.CFG")));
    assert!(
        r.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read_to_string(out("c.cfg")).unwrap(), want);

    // atftp with options, a leading slash, and the firmware.
    let r = run(Command::new("atftp")
        .args([
            "--option",
            "blksize 1024",
            "--option",
            "tsize 0",
            "-g",
            "-r",
            "/fw/T46S-66.86.0.15.rom",
            "-l",
        ])
        .arg(out("a.rom"))
        .args(["127.0.0.1", &addr.port().to_string()]));
    assert!(
        r.status.success(),
        "atftp: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read(out("a.rom")).unwrap(), firmware);

    // tftp-hpa, plain RFC 1350.
    let r = run(Command::new("tftp").current_dir(dir.path()).args([
        "-m",
        "octet",
        "127.0.0.1",
        &addr.port().to_string(),
        "-c",
        "get",
        "y000000000066.cfg",
    ]));
    assert!(
        r.status.success(),
        "tftp: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out("y000000000066.cfg")).unwrap(),
        d.ok(&["prov", "show", "y000000000066.cfg"])
    );

    // Unknown files, traversal and writes are refused.
    let r = run(Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(format!("tftp://{addr}/001565999999.cfg")));
    assert_eq!(r.status.code(), Some(68), "file not found");
    let r = run(Command::new("atftp").args([
        "-g",
        "-r",
        "fw/../../kpbxd.conf",
        "-l",
        "/dev/null",
        "127.0.0.1",
        &addr.port().to_string(),
    ]));
    assert!(!r.status.success());
    let r = run(Command::new("tftp").current_dir(dir.path()).args([
        "-m",
        "octet",
        "127.0.0.1",
        &addr.port().to_string(),
        "-c",
        "put",
        "c.cfg",
        "001565123456.cfg",
    ]));
    let said = String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
    assert!(said.contains("Error code 2"), "write refused: {said}");

    // A change is served at once, without a restart.
    d.ok(&["prov", "account", "set", "201", "sip_password=changed"]);
    let r = run(Command::new("curl")
        .args(["-sS", "-o"])
        .arg(out("c2.cfg"))
        .arg(format!("tftp://{addr}/001565123456.cfg")));
    assert!(r.status.success());
    assert!(
        std::fs::read_to_string(out("c2.cfg"))
            .unwrap()
            .contains("account.1.password = changed")
    );
    let log = d.log();
    assert!(
        log.contains("\"001565123456.CFG\" sent"),
        "fetch logged: {log}"
    );
    assert!(
        !log.contains("tftp-secret") && !log.contains("changed\n"),
        "no secrets in the log"
    );
}
