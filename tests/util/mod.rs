//! Test helpers: start Outrider and the demo app as real processes, scrape, wait.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod attack;
pub mod cgroup;
pub mod group;
pub mod inprocess;
pub mod receivers;
pub mod traces;

pub use group::Group;

pub const BIN: &str = env!("CARGO_BIN_EXE_outrider");

/// How long the polling helpers wait for a condition.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running Outrider whose stderr (JSON logs) is collected. It leads a process
/// group of its own with any app it wraps: dropping it stops them all.
pub struct Outrider {
    pub group: Group,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Told when stderr reaches its end: every line is then in `stderr`.
    stderr_done: std::sync::mpsc::Receiver<()>,
    /// Holds the config file of [`Outrider::with_config`].
    _config: Option<tempfile::TempDir>,
}

impl Outrider {
    /// Starts `outrider --listen 127.0.0.1:0 ARGS…` and waits for its "listening" line.
    pub fn start(args: &[&str]) -> Outrider {
        Self::start_with(Command::new(BIN), args)
    }

    /// Starts `outrider --config FILE --listen 127.0.0.1:0 ARGS…` with `toml` as the
    /// config file's text and `env` set.
    pub fn with_config(toml: &str, env: &[(&str, &str)], args: &[&str]) -> Outrider {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("outrider.toml");
        std::fs::write(&config, toml).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.envs(env.iter().copied());
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut o = Self::start_with(cmd, &all);
        o._config = Some(dir);
        o
    }

    /// Same as [`Outrider::start`], from a prepared command (to set env, uid, …).
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Outrider {
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("OUTRIDER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn(&mut cmd).expect("start outrider");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = stderr.clone();
        let err = group.child().stderr.take().unwrap();
        let (done_tx, stderr_done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    if let Some(addr) = json_field(&line, "addr") {
                        let _ = tx.send(addr);
                    }
                }
                lines.lock().unwrap().push(line);
            }
            let _ = done_tx.send(());
        });
        // Drain stdout so a wrapped app never blocks on a full pipe.
        let out = group.child().stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = BufReader::new(out).read_to_end(&mut sink);
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            // The group is stopped as `group` drops.
            Err(_) => panic!("outrider did not start: {:?}", stderr.lock().unwrap()),
        };
        Outrider {
            group,
            addr,
            stderr,
            stderr_done,
            _config: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.group.pid()
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

    /// `/api/v1/status`, which must answer 200 with JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = get(self.addr, "/api/v1/status", None);
        assert_eq!(code, 200, "/api/v1/status: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/v1/status: {e}: {body}"))
    }

    /// Polls `/api/v1/status` until `ok` holds of it (for up to [`PATIENCE`]) and
    /// returns that status; panics naming `what` and showing the last status.
    pub fn wait_status(
        &self,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status();
            if ok(&status) {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("{what}: not within {PATIENCE:?}; last status: {status:#}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits for Outrider's exit (the rest of its group is killed).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.group.signal(nix::sys::signal::Signal::SIGTERM);
        self.group.wait()
    }

    /// Waits for Outrider to exit by itself (the rest of its group is killed).
    /// Waits for Outrider's exit, then (up to 5 s) for the rest of its stderr:
    /// the reader thread may be lines behind the exit on a loaded machine, and a
    /// test reading the last line must see the real last line.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let status = self.group.wait();
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(5));
        status
    }
}

/// `[alerts.rules.*]` tables that turn every rule off but `rule`, with `for` set.
pub fn only_rule(rule: &str, for_: &str) -> String {
    let mut s = String::new();
    for r in outrider::alerts::rules::RuleName::ALL {
        if r.as_str() == rule {
            s.push_str(&format!("[alerts.rules.{rule}]\nfor = \"{for_}\"\n"));
        } else {
            s.push_str(&format!("[alerts.rules.{}]\nenabled = false\n", r.as_str()));
        }
    }
    assert!(s.contains("for ="), "no alert rule named {rule}");
    s
}

/// The tests' own user id (the owner of their /proc directory).
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").expect("/proc/self").uid()
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    own_uid() == 0
}

/// Outrider run as the unprivileged user nobody (65534) by setpriv(1) from
/// util-linux; for a test running as root.
pub fn outrider_as_nobody() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        BIN,
    ]);
    cmd
}

/// A process of another user, whose /proc files a non-root test cannot read: pid 1.
pub fn pid_of_another_user() -> i32 {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata("/proc/1").expect("/proc/1").uid();
    assert_ne!(
        owner,
        own_uid(),
        "pid 1 is this user's own process: run this test as root"
    );
    1
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
    /// Stopped with its children on drop.
    pub group: Group,
    pub pid: i32,
    pub fds: u64,
    pub threads: u64,
}

impl DemoApp {
    pub fn start(args: &[&str]) -> DemoApp {
        let mut group = Group::spawn(
            Command::new(BIN)
                .arg("demo-app")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .expect("start demo-app");
        let mut err = BufReader::new(group.child().stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("ready line: {line:?}"));
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = err.read_to_end(&mut sink);
        });
        DemoApp {
            pid: group.pid(),
            fds: v["fds"].as_u64().unwrap(),
            threads: v["threads"].as_u64().unwrap(),
            group,
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
