//! Test helpers: start Outrider and the demo app as real processes, scrape, wait.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod receivers;

pub const BIN: &str = env!("CARGO_BIN_EXE_outrider");

/// A running Outrider whose stderr (JSON logs) is collected.
pub struct Outrider {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Outrider {
    /// Starts `outrider --listen 127.0.0.1:0 ARGS…` and waits for its "listening" line.
    pub fn start(args: &[&str]) -> Outrider {
        Self::start_with(Command::new(BIN), args)
    }

    /// Same, from a prepared command (to set env, uid, …).
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Outrider {
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("OUTRIDER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start outrider");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    if let Some(addr) = json_field(&line, "addr") {
                        let _ = tx.send(addr);
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        // Drain stdout so a wrapped app never blocks on a full pipe.
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = BufReader::new(out).read_to_end(&mut sink);
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("outrider did not start: {:?}", stderr.lock().unwrap());
            }
        };
        Outrider {
            child,
            addr,
            stderr,
        }
    }

    pub fn scrape(&self) -> String {
        get(self.addr, "/metrics", None).1
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric(&self.scrape(), name, labels)
    }

    /// Polls until the metric satisfies `ok`; returns the last value.
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        ok: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.metric(name, labels);
            if let Some(v) = last {
                if ok(v) {
                    return v;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{name}{labels:?} never satisfied the condition; last value {last:?}\n{}",
            self.scrape()
        );
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.child.id() as i32, "TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Outrider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with kill(1), to keep the tests free of unsafe code.
pub fn signal(pid: i32, sig: &str) {
    let status = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {sig} {pid}");
}

/// A minimal HTTP/1.0 GET: (status, body).
pub fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value of one sample in a Prometheus text body; labels must match exactly.
pub fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: HashMap<&str, &str> = labels.iter().copied().collect();
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (n, l) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let got: HashMap<&str, &str> = l
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if got == want {
            return value.parse().ok();
        }
    }
    None
}

/// A string field of a one-line JSON object (enough for our own log lines).
pub fn json_field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}

/// The demo app started directly (not wrapped), with its ready report.
pub struct DemoApp {
    pub child: Child,
    pub pid: i32,
    pub fds: u64,
    pub threads: u64,
}

impl DemoApp {
    pub fn start(args: &[&str]) -> DemoApp {
        let mut child = Command::new(BIN)
            .arg("demo-app")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start demo-app");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("ready line: {line:?}"));
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = err.read_to_end(&mut sink);
        });
        DemoApp {
            pid: child.id() as i32,
            fds: v["fds"].as_u64().unwrap(),
            threads: v["threads"].as_u64().unwrap(),
            child,
        }
    }

    /// Quiet: no leak, no CPU, no logs unless asked.
    pub fn quiet(extra: &[&str]) -> DemoApp {
        let mut args = vec![
            "--leak-kib-per-sec",
            "0",
            "--fd-rate",
            "0",
            "--cpu",
            "0",
            "--log-rate",
            "0",
        ];
        args.extend_from_slice(extra);
        Self::start(&args)
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `promtool check metrics` on a body; panics with promtool's words on failure.
pub fn promtool_check(body: &str) {
    let mut p = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => panic!("promtool not found ({e}): the README's test command installs Debian's prometheus package"),
    };
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- body ---\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
