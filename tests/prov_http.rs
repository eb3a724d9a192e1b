//! Generated files and firmware fetched with curl over HTTP and HTTPS from
//! the daemon, over loopback: paths, tenants, Range, ETag, 404s, traversal.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::process::Command;

use common::Daemon;

fn curl(args: &[&str]) -> (String, String, bool) {
    let found = Command::new("sh").args(["-c", "command -v curl"]).output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs curl: apt-get install curl (make test does it as root)"
    );
    let out = Command::new("curl")
        .args(["-sS"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn phones_fetch_over_http_and_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("http_listen", "127.0.0.1:0"),
            ("https_listen", "127.0.0.1:0"),
        ],
    );
    std::fs::create_dir_all(dir.path().join("static/fw")).unwrap();
    let firmware: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(dir.path().join("static/fw/snomD785-10.1.rom"), &firmware).unwrap();
    d.start();
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=http-secret",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:04:13:2a:3b:4c",
        "model=Snom-D785",
        "template=snom-d785",
        "account=201",
    ]);
    let want = d.ok(&["prov", "show", "0004132A3B4C.xml"]);
    let http = d.listen("http");
    let https = d.listen("https");
    let base = format!("http://{http}/provisioning");

    // GET in any MAC case, HEAD, ETag revalidation.
    let (body, _, ok) = curl(&[&format!("{base}/0004132a3b4c.xml")]);
    assert!(ok);
    assert_eq!(body, want);
    let (head, _, _) = curl(&["-I", &format!("{base}/0004132A3B4C.xml")]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/xml"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", want.len())),
        "{head}"
    );
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .unwrap()
        .trim()
        .to_string();
    let (head, _, _) = curl(&[
        "-I",
        "-H",
        &format!("If-None-Match: {etag}"),
        &format!("{base}/0004132A3B4C.xml"),
    ]);
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");

    // Firmware from static_dir, resumed with Range.
    let part = dir.path().join("fw.part");
    std::fs::write(&part, &firmware[..100_000]).unwrap();
    let (_, err, ok) = curl(&[
        "-C",
        "-",
        "-o",
        part.to_str().unwrap(),
        &format!("{base}/fw/snomD785-10.1.rom"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&part).unwrap(), firmware);

    // Unknown names all get the same 404; traversal and other methods are refused.
    let (a, _, _) = curl(&["-i", &format!("{base}/000413FFFFFF.xml")]);
    let (b, _, _) = curl(&["-i", &format!("{base}/%3Cscript%3E.xml")]);
    let strip_date = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("Date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(a.starts_with("HTTP/1.1 404"), "{a}");
    assert_eq!(
        strip_date(&a),
        strip_date(&b),
        "same 404 for every unknown name"
    );
    let (t, _, _) = curl(&["-i", "--path-as-is", &format!("{base}/../kpbxd.conf")]);
    assert!(t.starts_with("HTTP/1.1 400"), "{t}");
    let (t, _, _) = curl(&["-i", &format!("{base}/%2e%2e/kpbxd.conf")]);
    assert!(t.starts_with("HTTP/1.1 400"), "{t}");
    let (m, _, _) = curl(&["-i", "-X", "POST", &format!("{base}/0004132A3B4C.xml")]);
    assert!(m.starts_with("HTTP/1.1 405"), "{m}");

    // HTTPS with the self-signed certificate generated in the data dir.
    let cert = d.data_dir().join("tls/selfsigned-cert.pem");
    let (body, err, ok) = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", https.port()),
        &format!(
            "https://localhost:{}/provisioning/0004132A3B4C.xml",
            https.port()
        ),
    ]);
    assert!(ok, "{err}");
    assert_eq!(body, want);

    let log = d.log();
    assert!(
        log.contains("\"provisioning/0004132a3b4c.xml\" 200"),
        "fetch logged: {log}"
    );
    assert!(!log.contains("http-secret"), "no secrets in the log");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn per_device_digest_credentials_guard_the_device_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("http_listen", "127.0.0.1:0"),
            ("tftp_listen", "127.0.0.1:0"),
        ],
    );
    d.start();
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=s1p-pw",
    ]);
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=202",
        "sip_password=s1p-pw2",
    ]);
    for (mac, account, creds) in [
        ("00:04:13:2a:3b:4c", "201", true),
        ("00:04:13:2a:3b:4d", "202", false),
    ] {
        let mut args = vec![
            "prov".to_string(),
            "device".into(),
            "add".into(),
            format!("mac={mac}"),
            "model=Snom-D785".into(),
            "template=snom-d785".into(),
            format!("account={account}"),
        ];
        if creds {
            args.push("http_user=phone42".into());
            args.push("http_password=Dig3st-pw".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        d.ok(&args);
    }
    let shown = d.ok(&["prov", "device", "show", "00:04:13:2a:3b:4c"]);
    assert!(!shown.contains("Dig3st-pw"), "{shown}");
    let want = d.ok(&["prov", "show", "0004132A3B4C.xml"]);
    let base = format!("http://{}/provisioning", d.listen("http"));
    let own = format!("{base}/0004132A3B4C.xml");

    // No credentials: 401 with MD5 and SHA-256 challenges, no content.
    let (head, _, _) = curl(&["-i", &own]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.contains(
            "WWW-Authenticate: Digest realm=\"kpbx provisioning\", qop=\"auth\", algorithm=MD5"
        ),
        "{head}"
    );
    assert!(head.contains("algorithm=SHA-256"), "{head}");
    assert!(!head.contains("s1p-pw"), "{head}");
    // Wrong password, then Basic: still 401.
    let (head, _, _) = curl(&["-i", "--digest", "-u", "phone42:wrong", &own]);
    assert!(head.contains("HTTP/1.1 401"), "{head}");
    let (head, _, _) = curl(&["-i", "--basic", "-u", "phone42:Dig3st-pw", &own]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // The right credentials (curl's digest: MD5, qop=auth): the file.
    let (body, err, ok) = curl(&["-f", "--digest", "-u", "phone42:Dig3st-pw", &own]);
    assert!(ok, "{err}");
    assert_eq!(body, want);
    let (head, _, _) = curl(&["-I", "--digest", "-u", "phone42:Dig3st-pw", &own]);
    assert!(head.contains("HTTP/1.1 200"), "{head}");
    // A device without credentials is served as before.
    let (_, err, ok) = curl(&["-f", &format!("{base}/0004132A3B4D.xml")]);
    assert!(ok, "{err}");
    // TFTP cannot authenticate: the guarded file is refused there.
    let tftp = d.listen("tftp");
    let (_, _, ok) = curl(&[
        "-f",
        &format!("tftp://{tftp}/0004132A3B4C.xml"),
        "-o",
        dir.path().join("t").to_str().unwrap(),
    ]);
    assert!(!ok, "a guarded file must not be served over TFTP");
    let (_, err, ok) = curl(&[
        "-f",
        &format!("tftp://{tftp}/0004132A3B4D.xml"),
        "-o",
        dir.path().join("u").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    // The password appears nowhere in the log.
    let log = d.log();
    assert!(!log.contains("Dig3st-pw"), "password in the log");
    // Credentials removed: the file is open again.
    d.ok(&[
        "prov",
        "device",
        "set",
        "00:04:13:2a:3b:4c",
        "http_user=",
        "http_password=",
    ]);
    let (_, err, ok) = curl(&["-f", &own]);
    assert!(ok, "{err}");
}
