//! The management API through curl over real TLS, from a chosen loopback
//! source address (the daemon's self-signed certificate as CA).

use std::io::Write;
use std::process::{Command, Stdio};

use super::Daemon;

pub struct Api {
    pub port: u16,
    pub cert: String,
}

impl Api {
    pub fn new(d: &Daemon) -> Api {
        assert!(
            Command::new("curl").arg("--version").output().is_ok(),
            "curl is missing: apt-get install curl"
        );
        Api {
            port: d.listen("mgmt").port(),
            cert: d
                .data_dir()
                .join("tls/selfsigned-cert.pem")
                .display()
                .to_string(),
        }
    }

    /// A request from `source` (a loopback address); status and JSON body
    /// (`Null` when the body is not JSON).
    pub fn call_from(
        &self,
        source: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let url = format!("https://localhost:{}{path}", self.port);
        let resolve = format!("localhost:{}:127.0.0.1", self.port);
        let mut args: Vec<String> = [
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            &self.cert,
            "--resolve",
            &resolve,
            "--interface",
            source,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = token {
            args.push("-H".into());
            args.push(format!("Authorization: Bearer {t}"));
        }
        if body.is_some() {
            args.extend(["-H".into(), "Content-Type: application/json".into()]);
            args.extend(["--data-binary".into(), "@-".into()]);
        }
        args.push(url);
        let mut child = Command::new("curl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run curl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body.unwrap_or("").as_bytes())
            .expect("write the body");
        let out = child.wait_with_output().expect("wait for curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text:?} {}", String::from_utf8_lossy(&out.stderr)));
        let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        self.call_from("127.0.0.1", method, path, token, body)
    }

    pub fn login_from(&self, source: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        self.call_from(source, "POST", "/api/v1/login", None, Some(&body))
    }

    pub fn token(&self, user: &str, password: &str) -> String {
        let (status, body) = self.login_from("127.0.0.1", user, password);
        assert_eq!(status, 200, "login {user}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// `POST /api/v1/command` with `command` as JSON.
    pub fn command(&self, token: &str, command: &serde_json::Value) -> (u16, serde_json::Value) {
        self.call(
            "POST",
            "/api/v1/command",
            Some(token),
            Some(&command.to_string()),
        )
    }
}
