//! A small W3C WebDriver client (plain HTTP/1.1 + JSON over std) driving
//! Debian's `chromium` through `chromium-driver`, or Debian's
//! `firefox-esr` through geckodriver (not packaged by Debian: `make
//! test-deps` installs the pinned [`GECKODRIVER_VERSION`] from crates.io
//! into target/tools/), for the web console's tests. Chosen over
//! python3-selenium: no second language or package in the test path, and
//! the protocol is a handful of JSON requests (W3C WebDriver,
//! https://www.w3.org/TR/webdriver2/); the two drivers differ only in the
//! capabilities asked for and in how the console is read (see
//! [`Driver::console`]).
//!
//! Every wait is bounded; the driver is killed by PID on drop (it ends
//! its browser with it; the browser's PID is killed too should it not);
//! the browser profile is a temp dir.

#![allow(dead_code)] // Each suite uses part of the kit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// W3C's element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for the page lasts: the pages answer in well under a
/// second; a CI machine shared by several suites can take many times that.
pub const WAIT: Duration = Duration::from_secs(30);

fn require(program: &str, package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is missing: apt-get install {package} (make test-deps installs it)"
    );
}

/// A free loopback port (bound, then released for the driver).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("address").port()
}

/// The geckodriver the Makefile installs (`cargo install geckodriver
/// --locked --version` this, into target/tools/geckodriver-VERSION).
pub const GECKODRIVER_VERSION: &str = "0.37.1";

/// Which browser a scenario runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    Chromium,
    Firefox,
}

/// geckodriver: `$GECKODRIVER`, else where `make test-deps` puts it.
fn geckodriver() -> String {
    let path = std::env::var("GECKODRIVER").unwrap_or_else(|_| {
        format!(
            "{}/target/tools/geckodriver-{GECKODRIVER_VERSION}/bin/geckodriver",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let found = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(GECKODRIVER_VERSION)
        });
    assert!(
        found,
        "geckodriver {GECKODRIVER_VERSION} is missing at {path}: make test-deps installs it \
         (cargo install geckodriver --locked --version {GECKODRIVER_VERSION} --root \
         target/tools/geckodriver-{GECKODRIVER_VERSION}), or set GECKODRIVER"
    );
    path
}

/// Firefox's console, for [`Driver::console`]: geckodriver has no log
/// endpoint (`/se/log` is Chromium's). Firefox prints the page's errors
/// and console messages on its output ([`Driver::firefox_output`]), but
/// not a CSP refusal, so the harness (never the console itself) also
/// hooks the page: `error` and `unhandledrejection` events,
/// `securitypolicyviolation` (a CSP refusal), `console.error` and
/// `console.warn`. Installed after every navigation and at every read; an
/// entry is `[level, message]` in Chromium's levels.
const FIREFOX_HOOK: &str = "if (!window.__kpbxLog) { \
  const log = window.__kpbxLog = []; \
  const push = (level, m) => log.push([level, String(m)]); \
  window.addEventListener('error', (e) => push('SEVERE', `${e.message} ${e.filename || ''}:${e.lineno || ''}`)); \
  window.addEventListener('unhandledrejection', (e) => push('SEVERE', `unhandled rejection: ${e.reason && e.reason.stack || e.reason}`)); \
  document.addEventListener('securitypolicyviolation', (e) => push('SEVERE', \
    `Content Security Policy: refused ${e.blockedURI === 'inline' ? 'inline ' + (e.effectiveDirective.startsWith('script') ? 'script' : 'style') : e.blockedURI} (${e.effectiveDirective})`)); \
  for (const [k, level] of [['error', 'SEVERE'], ['warn', 'WARNING']]) { \
    const f = console[k]; console[k] = (...a) => { push(level, a.join(' ')); f.apply(console, a); }; } \
} return window.__kpbxLog.splice(0);";

pub struct Driver {
    child: Child,
    port: u16,
    session: String,
    pub kind: Browser,
    /// The browser's PID (`goog:processID`, `moz:processID`), killed on
    /// drop should the driver not have ended it.
    browser: Option<i32>,
    /// The network namespace the driver and the browser run in (the
    /// test's connections to the driver are made from inside it).
    netns: Option<String>,
    _profile: tempfile::TempDir,
    /// How much of Firefox's output `console` has read.
    read: std::cell::Cell<usize>,
    /// The last page asked for, and how often it was loaded again after
    /// Chromium's "network changed" error page (see `find`).
    last_url: std::cell::RefCell<String>,
    reloads: std::cell::Cell<u32>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = self.browser {
            // SAFETY: kill(2) on a PID this test started (through its driver).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Driver {
    /// Starts the driver and a headless browser at 1280x800 that accepts
    /// the daemon's self-signed certificate.
    pub fn start(kind: Browser) -> Driver {
        Driver::start_in(kind, None)
    }

    /// [`Driver::start`] inside the network namespace `netns` (`ip netns
    /// exec`, which execs: the PID is the driver's), so the browser
    /// reaches what listens on that namespace's loopback.
    pub fn start_in(kind: Browser, netns: Option<&str>) -> Driver {
        let profile = tempfile::tempdir().expect("profile dir");
        let port = free_port();
        let (program, args) = match kind {
            Browser::Chromium => {
                require("chromium", "chromium");
                require("chromedriver", "chromium-driver");
                (
                    "chromedriver".to_string(),
                    vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".into()],
                )
            }
            Browser::Firefox => {
                require("firefox-esr", "firefox-esr");
                (
                    geckodriver(),
                    vec![
                        format!("--port={port}"),
                        // BiDi's port (unused here): free, not the fixed
                        // default, so that browsers run side by side.
                        format!("--websocket-port={}", free_port()),
                        format!("--profile-root={}", profile.path().display()),
                    ],
                )
            }
        };
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &program]);
                c
            }
            None => Command::new(&program),
        };
        // Firefox prints the page's errors and console messages to its
        // output (the prefs below); geckodriver passes it on: kept in a
        // file read by `console`.
        let out = std::fs::File::create(profile.path().join("driver.log")).expect("driver log");
        let child = command
            .args(&args)
            .stdout(out.try_clone().expect("driver log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let mut d = Driver {
            child,
            port,
            session: String::new(),
            kind,
            browser: None,
            netns: netns.map(str::to_string),
            _profile: profile,
            read: std::cell::Cell::new(0),
            last_url: std::cell::RefCell::new(String::new()),
            reloads: std::cell::Cell::new(0),
        };
        let start = Instant::now();
        while d.raw("GET", "/status", None).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{program} did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = match kind {
            Browser::Chromium => json!({
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,800",
                        "--no-first-run", "--lang=en-US",
                        format!("--user-data-dir={}", d._profile.path().display()),
                    ],
                },
            }),
            Browser::Firefox => json!({
                "browserName": "firefox",
                "acceptInsecureCerts": true,
                "moz:firefoxOptions": {
                    "binary": "/usr/bin/firefox-esr",
                    "args": ["-headless", "--width=1280", "--height=800"],
                    "prefs": {
                        "intl.accept_languages": "en-US",
                        // The page's console.* on stdout; not the browser's own.
                        "devtools.console.stdout.content": true,
                        "devtools.console.stdout.chrome": false,
                        // No experiments fetched from Mozilla's servers.
                        "messaging-system.rsexperimentloader.enabled": false,
                        "app.normandy.enabled": false,
                    },
                },
            }),
        };
        let r = d.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": caps}})),
        );
        let caps = &r["value"]["capabilities"];
        d.browser = caps["goog:processID"]
            .as_i64()
            .or(caps["moz:processID"].as_i64())
            .and_then(|p| i32::try_from(p).ok());
        d.session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        if kind == Browser::Firefox {
            d.set_window(1280, 800);
        }
        d
    }

    /// One request to the driver; the parsed JSON body or the I/O error.
    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
        let mut s = self.connect()?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        // The driver may keep the connection open: read the head, then
        // Content-Length bytes.
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(p) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut chunk)?;
            if n == 0 || out.len() > 1 << 20 {
                return Err(std::io::Error::other("no response head"));
            }
            out.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&out[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while out.len() < head_end + len {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("body shorter than Content-Length"));
            }
            out.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&out[head_end..head_end + len]);
        serde_json::from_str(&body)
            .map_err(|e| std::io::Error::other(format!("bad JSON from the driver ({e}): {body}")))
    }

    /// A connection to the driver: from a short-lived thread that enters
    /// the namespace first when there is one (a socket stays in the
    /// namespace it was made in; the test's own threads stay where they are).
    fn connect(&self) -> std::io::Result<TcpStream> {
        let port = self.port;
        let Some(ns) = &self.netns else {
            return TcpStream::connect(("127.0.0.1", port));
        };
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path)?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            TcpStream::connect(("127.0.0.1", port))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self
            .raw(method, path, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if let Some(err) = r["value"]["error"].as_str() {
            panic!("{method} {path}: {err}: {}", r["value"]["message"]);
        }
        r
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body)["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        *self.last_url.borrow_mut() = url.to_string();
        self.session_call("POST", "/url", Some(json!({ "url": url })));
        if self.kind == Browser::Firefox {
            self.exec(FIREFOX_HOOK, json!([]));
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs an async script: the last argument is the callback to call
    /// with the result.
    pub fn exec_async(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The element `css` selects, waiting up to [`WAIT`] for it to appear.
    pub fn find(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            let path = format!("/session/{}/element", self.session);
            let r = self
                .raw(
                    "POST",
                    &path,
                    Some(&json!({"using": "css selector", "value": css})),
                )
                .expect("webdriver");
            if let Some(id) = r["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                start.elapsed() < WAIT,
                "no element {css:?} after {WAIT:?}; page text: {}",
                self.text("body")
            );
            // Chromium drops a page load with ERR_NETWORK_CHANGED when an
            // address or link changes in its network namespace, which the
            // HA tests' own veth and address setup does: load the page
            // again, a bounded number of times per browser.
            if self.kind == Browser::Chromium
                && self.reloads.get() < 3
                && self.text("body").contains("ERR_NETWORK_CHANGED")
            {
                self.reloads.set(self.reloads.get() + 1);
                let url = self.last_url.borrow().clone();
                self.goto(&url);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `css` selects something now.
    pub fn exists(&self, css: &str) -> bool {
        self.exec(
            "return document.querySelector(arguments[0]) !== null;",
            json!([css]),
        )
        .as_bool()
        .unwrap_or(false)
    }

    /// Clicks the element `css` selects; if the page replaced it between
    /// finding and clicking (a list redrawn), finds it again (bounded).
    pub fn click(&self, css: &str) {
        let start = Instant::now();
        loop {
            let id = self.find(css);
            let path = format!("/session/{}/element/{id}/click", self.session);
            let r = self
                .raw("POST", &path, Some(&json!({})))
                .unwrap_or_else(|e| panic!("click {css}: {e}"));
            match r["value"]["error"].as_str() {
                None => return,
                Some("stale element reference") if start.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Some(err) => panic!("click {css}: {err}: {}", r["value"]["message"]),
            }
        }
    }

    /// Types `text` into the element (as keystrokes).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.session_call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.session_call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Sends keys to whatever has the focus (W3C key actions), e.g.
    /// "\u{E004}" for Tab, "\u{E007}" for Enter.
    pub fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// Accepts the open `confirm()`/`alert()` dialog, waiting up to [`WAIT`]
    /// for it; its text.
    pub fn accept_alert(&self) -> String {
        let start = Instant::now();
        loop {
            let path = format!("/session/{}/alert/text", self.session);
            let r = self.raw("GET", &path, None).expect("webdriver");
            if let Some(text) = r["value"].as_str() {
                self.session_call("POST", "/alert/accept", Some(json!({})));
                return text.to_string();
            }
            assert!(start.elapsed() < WAIT, "no dialog after {WAIT:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element's visible text (`textContent` of the first match).
    pub fn text(&self, css: &str) -> String {
        self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Sets a `<select>` or `<input>`'s value and fires `change`.
    pub fn set_value(&self, css: &str, value: &str) {
        self.find(css);
        self.exec(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([css, value]),
        );
    }

    /// Polls `cond` (a script returning a boolean) for up to [`WAIT`].
    pub fn wait_for(&self, what: &str, cond: &str, args: Value) {
        let start = Instant::now();
        while !self.exec(cond, args.clone()).as_bool().unwrap_or(false) {
            assert!(
                start.elapsed() < WAIT,
                "waited {WAIT:?} for {what}; page text: {}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `css`'s text contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) {
        self.wait_for(
            &format!("{css:?} to show {needle:?}"),
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.innerText.includes(arguments[1]);",
            json!([css, needle]),
        );
    }

    /// The browser's console entries since the last call (level, message,
    /// Chromium's levels): Chromium's browser log, or in Firefox what the
    /// harness's hook saw ([`FIREFOX_HOOK`]: page errors, CSP refusals,
    /// `console.error`/`warn`; Firefox does not log a 4xx answer).
    pub fn console(&self) -> Vec<(String, String)> {
        let v = match self.kind {
            Browser::Chromium => {
                self.session_call("POST", "/se/log", Some(json!({"type": "browser"})))
            }
            Browser::Firefox => {
                let mut seen: Vec<Value> = self
                    .exec(FIREFOX_HOOK, json!([]))
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| json!({"level": e[0], "message": e[1]}))
                            .collect()
                    })
                    .unwrap_or_default();
                seen.extend(self.firefox_output());
                Value::Array(seen)
            }
        };
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What Firefox printed since the last look that the page caused,
    /// from its first line on (the hook misses what happens before it is
    /// installed): `JavaScript error|warning: <page URL>, line N: ...` and
    /// the page's `console.error|warn: ...` (the prefs in `start_in`).
    fn firefox_output(&self) -> Vec<Value> {
        let text = std::fs::read(self._profile.path().join("driver.log")).unwrap_or_default();
        let new = String::from_utf8_lossy(&text[self.read.get().min(text.len())..]).into_owned();
        // Whole lines only; a partial last line waits for the next look.
        let upto = new.rfind('\n').map_or(0, |i| i + 1);
        self.read.set(self.read.get() + upto);
        new[..upto]
            .lines()
            .filter_map(|l| {
                let page = |rest: &str| rest.starts_with("http");
                // The page's arguments are printed as values (a string
                // quoted); the browser's own modules print `Prefix: ...`
                // (e.g. "RSLoader: " for its Remote Settings, which
                // headless Firefox cannot reach here).
                let page_console = |rest: &str| {
                    !rest
                        .split_once(':')
                        .is_some_and(|(p, _)| !p.is_empty() && p.chars().all(char::is_alphanumeric))
                };
                let (level, message) = if let Some(r) = l.strip_prefix("JavaScript error: ") {
                    page(r).then_some(("SEVERE", r))?
                } else if let Some(r) = l.strip_prefix("JavaScript warning: ") {
                    page(r).then_some(("WARNING", r))?
                } else if let Some(r) = l.strip_prefix("console.error: ") {
                    page_console(r).then_some(("SEVERE", r))?
                } else if let Some(r) = l.strip_prefix("console.warn: ") {
                    page_console(r).then_some(("WARNING", r))?
                } else {
                    return None;
                };
                Some(json!({"level": level, "message": message}))
            })
            .collect()
    }

    /// Fails on any console error or warning since the last call (a CSP
    /// violation is one: "Refused to ... because it violates ...").
    pub fn assert_clean_console(&self, when: &str) {
        let bad: Vec<_> = self
            .console()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(bad.is_empty(), "console errors {when}: {bad:#?}");
    }

    /// Resizes the browser window (W3C Set Window Rect), e.g. to a tablet's.
    pub fn set_window(&self, width: u32, height: u32) {
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &std::path::Path) {
        use std::io::Write as _;
        let b64 = self.session_call("GET", "/screenshot", None);
        let bytes = base64_decode(b64.as_str().unwrap_or_default());
        let mut f = std::fs::File::create(path).expect("create screenshot");
        f.write_all(&bytes).expect("write screenshot");
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in text.bytes().filter_map(val) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
