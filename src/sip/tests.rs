use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Instant;

use super::responder::{Lookup, MAC_GAP, MAX_ENTRIES, Outcome, Responder, WINDOW};
use super::*;

const SNOM: &str = "SUBSCRIBE sip:MAC%3a00135E874B49@intern.snom.de SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.10.67:5060;branch=z9hG4bK-abc;rport\r\n\
From: <sip:MAC%3a00135E874B49@intern.snom.de>;tag=snom1\r\n\
To: <sip:MAC%3a00135E874B49@intern.snom.de>\r\n\
Call-ID: 3c26700bd9f5-snom@192.168.10.67\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Event: ua-profile;profile-type=\"device\";vendor=\"OEM\";model=\"OEM\";version=\"7.1.19\"\r\n\
Expires: 0\r\n\
Accept: application/url\r\n\
Contact: <sip:192.168.10.67:5060>\r\n\
Content-Length: 0\r\n\r\n";

const YEALINK: &str = "SUBSCRIBE sip:MAC0015657322ff@224.0.1.75:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.7:5059;branch=z9hG4bK1105232530\r\n\
From: <sip:MAC0015657322ff@224.0.1.75:5060>;tag=1434468542\r\n\
To: <sip:MAC0015657322ff@224.0.1.75:5060>\r\n\
Call-ID: 1258064491@10.0.0.7\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:10.0.0.7:5059>\r\n\
Accept: application/url\r\n\
Max-Forwards: 70\r\n\
User-Agent: Yealink SIP-T21P_E2 52.80.0.95\r\n\
Expires: 0\r\n\
Event: ua-profile;profile-type=\"device\";vendor=\"Yealink\";model=\"T21D\";version=\"34.72.14.6\"\r\n\
Content-Length: 0\r\n\r\n";

fn mac(s: &str) -> Mac {
    Mac::parse(s).expect("test MAC")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn snom_golden() {
    let m = parse(SNOM.as_bytes()).expect("parses");
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "SUBSCRIBE".into(),
            uri: "sip:MAC%3a00135E874B49@intern.snom.de".into()
        }
    );
    assert_eq!(m.header("call-id"), Some("3c26700bd9f5-snom@192.168.10.67"));
    assert_eq!(m.header("i"), Some("3c26700bd9f5-snom@192.168.10.67"));
    assert!(m.body.is_empty());
    assert_eq!(device_mac(&m), Some(mac("00135E874B49")));
    assert!(responder::is_pnp_subscribe(&m));
}

#[test]
fn yealink_golden() {
    let m = parse(YEALINK.as_bytes()).expect("parses");
    assert_eq!(device_mac(&m), Some(mac("0015657322FF")));
    assert_eq!(
        header_param(m.header("From").unwrap_or_default(), "tag"),
        Some("1434468542")
    );
    assert_eq!(
        m.header("CONTACT").map(header_uri),
        Some("sip:10.0.0.7:5059")
    );
}

#[test]
fn compact_folding_case_and_bare_lf() {
    let text = "subscribe sip:x@y SIP/2.0\n\
v: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKa\n\
V : SIP/2.0/UDP 5.6.7.8:5060;branch=z9hG4bKb\n\
f: <sip:MAC=00304fa99948@224.0.1.75>;tag=9\n\
t: <sip:MAC=00304fa99948@224.0.1.75>\n\
i: abc\n\
CSEQ: 7 SUBSCRIBE\n\
o: ua-profile\n\
\x20 ;profile-type=\"device\"\n\
\t;vendor=\"PLANET\"\n\
c: text/plain\n\
e: identity\n\
m: <sip:1.2.3.4>\n\
l: 4\n\nbodyEXTRA";
    let m = parse(text.as_bytes()).expect("parses");
    assert_eq!(m.headers_named("via").count(), 2);
    assert_eq!(m.header("Call-ID"), Some("abc"));
    assert_eq!(m.header("cseq"), Some("7 SUBSCRIBE"));
    assert_eq!(
        m.header("Event"),
        Some("ua-profile ;profile-type=\"device\" ;vendor=\"PLANET\"")
    );
    assert_eq!(m.header("Content-Type"), Some("text/plain"));
    assert_eq!(m.header("Content-Encoding"), Some("identity"));
    assert_eq!(m.header("Contact"), Some("<sip:1.2.3.4>"));
    assert_eq!(m.body, b"body");
    assert!(responder::is_pnp_subscribe(&m));
    assert_eq!(device_mac(&m), Some(mac("00304FA99948")));
}

#[test]
fn bad_messages() {
    for (bytes, err) in [
        (
            &b"SUBSCRIBE sip:a SIP/2.0\r\nVia: x\r\n"[..],
            Error::NoHeaderEnd,
        ),
        (b"HELLO\r\n\r\n", Error::BadStartLine),
        (b"SIP/2.0 99 x\r\n\r\n", Error::BadStartLine),
        (b"INVITE sip:a SIP/3.0\r\n\r\n", Error::BadStartLine),
        (
            b"INVITE sip:a SIP/2.0\r\n continued\r\n\r\n",
            Error::BadHeader,
        ),
        (
            b"INVITE sip:a SIP/2.0\r\nno colon\r\n\r\n",
            Error::BadHeader,
        ),
        (
            b"INVITE sip:a SIP/2.0\r\nl: x\r\n\r\n",
            Error::BadContentLength,
        ),
        (b"INVITE sip:a SIP/2.0\r\nl: 5\r\n\r\nab", Error::ShortBody),
        (b"INVITE sip:a SIP/2.0\r\nX: \xff\r\n\r\n", Error::NotUtf8),
    ] {
        assert_eq!(
            parse(bytes),
            Err(err),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let many = format!(
        "OPTIONS sip:a SIP/2.0\r\n{}\r\n",
        "X: 1\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(parse(many.as_bytes()), Err(Error::TooManyHeaders));
    assert_eq!(parse(&vec![b'a'; MAX_MESSAGE + 1]), Err(Error::TooLong));
    let ok = parse(b"SIP/2.0 200 OK\r\n\r\n").expect("response");
    assert_eq!(
        ok.start,
        StartLine::Response {
            code: 200,
            reason: "OK".into()
        }
    );
}

#[test]
fn mac_forms() {
    let want = Some(mac("00135E874B49"));
    for uri in [
        "sip:MAC%3a00135E874B49@intern.snom.de",
        "sip:MAC%3A00135e874b49@x",
        "sip:MAC00135e874b49@224.0.1.75",
        "sip:mac00135E874B49@224.0.1.75:5060",
        "sip:MAC=00135E874B49@h",
        "sip:MAC:00135E874B49@h",
        "SIPS:MAC:00:13:5E:87:4B:49@h",
        "sip:MAC%3a00-13-5e-87-4b-49@h",
    ] {
        assert_eq!(uri_mac(uri), want, "{uri}");
    }
    for uri in [
        "sip:00135E874B49@h",
        "sip:MAC00135E874B4@h",
        "sip:MAC00135E874B499@h",
        "sip:MACzz135E874B49@h",
        "sip:MAC000000000000@h",
        "sip:MAC010000000001@h",
        "sip:MAC%3g00135E874B49@h",
        "sip:MAC%3",
        "sip:MAC00135E874B49",
        "tel:MAC00135E874B49@h",
        "sip:224.0.1.75:5060",
        "sip:00000001@10.0.0.1",
        "",
    ] {
        assert_eq!(uri_mac(uri), None, "{uri}");
    }
    // AudioCodes: no MAC anywhere.
    let m = parse(
        b"SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\r\nFrom: <sip:00000001@10.0.0.1>\r\nTo: <sip:224.0.1.75>\r\nEvent: ua-profile\r\n\r\n",
    )
    .expect("parses");
    assert_eq!(device_mac(&m), None);
    // From only.
    let m = parse(
        b"SUBSCRIBE sip:224.0.1.75 SIP/2.0\r\nFrom: \"p\" <sip:MAC:0015657322ff@x>;tag=1\r\nEvent: ua-profile\r\n\r\n",
    )
    .expect("parses");
    assert_eq!(device_mac(&m), Some(mac("0015657322FF")));
}

const URL: &str = "http://198.51.100.1/provisioning/";

fn lookup(m: Mac) -> Lookup {
    if m == mac("0015657322FF") || m == mac("00135E874B49") {
        Lookup::Answer(URL.to_string())
    } else {
        Lookup::Unknown
    }
}

#[test]
fn ok_and_notify_bytes() {
    let mut r = Responder::new(7);
    let now = Instant::from_millis(1_000);
    let src = addr("10.0.0.7:5059");
    let local = addr("198.51.100.1:5060");
    let (out, ex) = r.handle(now, src, local, YEALINK.as_bytes(), lookup);
    assert_eq!(ex.outcome, Outcome::Notified(URL.into()));
    assert_eq!(ex.mac, Some(mac("0015657322FF")));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|(d, _)| *d == src));
    let req = parse(YEALINK.as_bytes()).expect("parses");

    let ok = parse(&out[0].1).expect("200 parses");
    assert!(out[0].1.starts_with(b"SIP/2.0 200 OK\r\n"));
    assert_eq!(
        ok.start,
        StartLine::Response {
            code: 200,
            reason: "OK".into()
        }
    );
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        assert_eq!(ok.header(h), req.header(h), "{h}");
    }
    let to = ok.header("To").expect("To");
    assert!(to.starts_with(req.header("To").expect("To")));
    let to_tag = header_param(to, "tag").expect("to tag");
    assert_eq!(to_tag.len(), 16);
    assert_eq!(ok.header("Expires"), Some("0"));
    assert_eq!(ok.header("Content-Length"), Some("0"));
    assert!(ok.body.is_empty());
    assert!(out[0].1.ends_with(b"\r\n\r\n"));

    let n = parse(&out[1].1).expect("NOTIFY parses");
    assert_eq!(
        n.start,
        StartLine::Request {
            method: "NOTIFY".into(),
            uri: "sip:10.0.0.7:5059".into()
        }
    );
    let via = n.header("Via").expect("Via");
    assert!(via.starts_with("SIP/2.0/UDP 198.51.100.1:5060;"), "{via}");
    assert!(header_param(via, "branch").is_some_and(|b| b.starts_with("z9hG4bK") && b.len() > 7));
    assert_eq!(n.header("Event"), Some("ua-profile"));
    assert_eq!(
        n.header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n.header("Content-Type"), Some("application/url"));
    assert_eq!(
        n.header("Content-Length"),
        Some(URL.len().to_string().as_str())
    );
    assert_eq!(n.body, URL.as_bytes());
    assert!(out[1].1.ends_with(URL.as_bytes()));
    assert_eq!(n.header("Call-ID"), req.header("Call-ID"));
    assert_eq!(n.header("CSeq"), Some("1 NOTIFY"));
    assert_eq!(n.header("Max-Forwards"), Some("70"));
    assert_eq!(n.header("To"), req.header("From"));
    let from = n.header("From").expect("From");
    assert_eq!(header_uri(from), "sip:MAC0015657322ff@224.0.1.75:5060");
    assert_eq!(header_param(from, "tag"), Some(to_tag));
}

#[test]
fn retransmission_no_second_notify() {
    let mut r = Responder::new(1);
    let t0 = Instant::from_millis(1_000);
    let src = addr("192.168.10.67:5060");
    let local = addr("198.51.100.1:5060");
    let (first, _) = r.handle(t0, src, local, SNOM.as_bytes(), lookup);
    assert_eq!(first.len(), 2);
    for i in 1..5 {
        let (again, ex) = r.handle(
            t0 + Duration::from_secs(i),
            src,
            local,
            SNOM.as_bytes(),
            lookup,
        );
        assert_eq!(ex.outcome, Outcome::Retransmission);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, first[0].1, "same 200 OK, same To-tag");
    }
    // After the window, a new NOTIFY.
    let (later, ex) = r.handle(
        t0 + WINDOW + Duration::from_secs(1),
        src,
        local,
        SNOM.as_bytes(),
        lookup,
    );
    assert!(matches!(ex.outcome, Outcome::Notified(_)));
    assert_eq!(later.len(), 2);
}

/// SUBSCRIBEs are multicast: any host on the LAN sees a phone's Call-ID and
/// MAC, and can send more under any source address.
#[test]
fn floods_of_a_known_mac_or_a_seen_call_id_get_no_notify_storm() {
    let mut r = Responder::new(1);
    let t0 = Instant::from_millis(1_000);
    let local = addr("198.51.100.1:5060");
    let (first, _) = r.handle(t0, addr("10.0.0.7:5059"), local, YEALINK.as_bytes(), lookup);
    assert_eq!(first.len(), 2);
    // The phone's Call-ID with other MACs (known or not): no retransmission
    // of anything, and no "known device" in the fetch log for a random MAC.
    let other = YEALINK.replace("0015657322ff", "00135E874B49");
    let (out, ex) = r.handle(t0, addr("10.0.0.66:5060"), local, other.as_bytes(), lookup);
    assert_eq!(
        (out.len(), ex.outcome),
        (2, Outcome::Notified(URL.into())),
        "a known MAC under a borrowed Call-ID is a new exchange"
    );
    let random = YEALINK.replace("0015657322ff", "02aabbccddee");
    let (out, ex) = r.handle(t0, addr("10.0.0.66:5060"), local, random.as_bytes(), lookup);
    assert_eq!((out.len(), ex.outcome), (0, Outcome::Unknown));
    // Fresh Call-IDs naming the phone's MAC, from spoofed sources.
    for i in 0..500 {
        let msg = YEALINK.replace("1258064491@10.0.0.7", &format!("flood{i}"));
        let src = addr(&format!("10.0.{}.{}:5060", i / 250, i % 250 + 1));
        let (out, ex) = r.handle(
            t0 + Duration::from_millis(i),
            src,
            local,
            msg.as_bytes(),
            lookup,
        );
        assert_eq!((out.len(), ex.outcome), (0, Outcome::Throttled), "{i}");
    }
    // The phone's own retransmission still gets its 200 OK.
    let (again, ex) = r.handle(t0, addr("10.0.0.7:5059"), local, YEALINK.as_bytes(), lookup);
    assert_eq!((again.len(), ex.outcome), (1, Outcome::Retransmission));
    // After the gap a new SUBSCRIBE of the device is answered again.
    let msg = YEALINK.replace("1258064491@10.0.0.7", "reboot");
    let (out, ex) = r.handle(
        t0 + MAC_GAP,
        addr("10.0.0.7:5059"),
        local,
        msg.as_bytes(),
        lookup,
    );
    assert_eq!((out.len(), ex.outcome), (2, Outcome::Notified(URL.into())));
}

#[test]
fn unknown_and_ignored() {
    let mut r = Responder::new(1);
    let now = Instant::from_millis(1_000);
    let src = addr("10.0.0.7:5059");
    let local = addr("10.0.0.1:5060");
    let (out, ex) = r.handle(now, src, local, YEALINK.as_bytes(), |_| Lookup::Unknown);
    assert!(out.is_empty());
    assert_eq!(ex.outcome, Outcome::Unknown);
    assert_eq!(r.remembered(), 0);
    // A known device this node does not answer for (the HA passive node):
    // nothing sent, and it is no unknown device.
    let silent = |_| Lookup::Silent("HA passive node");
    let (out, ex) = r.handle(now, src, local, YEALINK.as_bytes(), silent);
    assert!(out.is_empty());
    assert_eq!(ex.outcome, Outcome::Silent("HA passive node"));
    assert_eq!(ex.mac, Some(mac("0015657322FF")));
    assert_eq!(r.remembered(), 0);
    let other = YEALINK.replace("Event: ua-profile", "Event: presence");
    let (out, ex) = r.handle(now, src, local, other.as_bytes(), lookup);
    assert!(out.is_empty());
    assert_eq!(ex.outcome, Outcome::Ignored);
    let (out, ex) = r.handle(now, src, local, b"garbage", lookup);
    assert!(out.is_empty());
    assert_eq!(ex.outcome, Outcome::Ignored);
    for h in ["Call-ID", "CSeq", "Via", "From", "To"] {
        let start = YEALINK.find(&format!("\r\n{h}:")).expect("header present") + 2;
        let end = start + YEALINK[start..].find("\r\n").expect("line end") + 2;
        let without = format!("{}{}", &YEALINK[..start], &YEALINK[end..]);
        let (out, ex) = r.handle(now, src, local, without.as_bytes(), lookup);
        assert!(out.is_empty(), "without {h}");
        assert_eq!(ex.outcome, Outcome::Ignored, "without {h}");
    }
    let nomac = YEALINK.replace("MAC0015657322ff", "phone");
    let (out, ex) = r.handle(now, src, local, nomac.as_bytes(), lookup);
    assert!(out.is_empty());
    assert_eq!(ex.outcome, Outcome::NoMac);
}

#[test]
fn memory_is_bounded() {
    let mut r = Responder::new(1);
    let now = Instant::from_millis(1_000);
    let local = addr("10.0.0.1:5060");
    let any = |_| Lookup::Answer(URL.to_string());
    for i in 0..MAX_ENTRIES + 100 {
        let msg = YEALINK
            .replace("1258064491@10.0.0.7", &format!("call{i}"))
            .replace("0015657322ff", &format!("0015657{i:05x}"));
        let (out, _) = r.handle(now, addr("10.0.0.7:5059"), local, msg.as_bytes(), any);
        assert_eq!(out.len(), 2);
    }
    assert_eq!(r.remembered(), MAX_ENTRIES);
    let msg = YEALINK.replace("1258064491@10.0.0.7", "late");
    r.handle(
        now + WINDOW,
        addr("10.0.0.7:5059"),
        local,
        msg.as_bytes(),
        lookup,
    );
    assert_eq!(r.remembered(), 1);
}

#[test]
fn random_inputs_never_panic() {
    let mut state: u64 = 0x5EED_5EED_1234_5678;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds = [SNOM.as_bytes(), YEALINK.as_bytes()];
    let mut r = Responder::new(3);
    let now = Instant::from_millis(1_000);
    for i in 0..20_000u64 {
        let mut bytes: Vec<u8> = if i % 2 == 0 {
            seeds[(i / 2 % 2) as usize].to_vec()
        } else {
            let len = (next() % 600) as usize;
            (0..len).map(|_| next() as u8).collect()
        };
        // Mutate: flip, insert separators, truncate.
        for _ in 0..(next() % 8) {
            if bytes.is_empty() {
                break;
            }
            let at = (next() as usize) % bytes.len();
            match next() % 4 {
                0 => bytes[at] = next() as u8,
                1 => bytes.insert(at, b"\r\n:;<>@% \t"[(next() % 10) as usize]),
                2 => bytes.truncate(at),
                _ => bytes[at] = b'%',
            }
        }
        if let Ok(m) = parse(&bytes) {
            let _ = device_mac(&m);
            for (_, v) in &m.headers {
                let _ = header_uri(v);
                let _ = header_param(v, "tag");
            }
        }
        let _ = r.handle(
            now,
            addr("10.0.0.7:5059"),
            addr("10.0.0.1:5060"),
            &bytes,
            lookup,
        );
    }
}
