//! Receivers for the alert tests: a tiny webhook server that answers as told, and a
//! real Alertmanager (Debian's `prometheus-alertmanager`) on loopback.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Group;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the test server received, and what it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub answered: u16,
}

/// A tiny HTTP/1.1 server on a std thread: `answer(n)` picks the status and extra
/// headers of the n-th request (from 0); status 0 hangs 2 s and closes unanswered.
pub struct TestServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    pub fn start(
        answer: impl Fn(usize) -> (u16, Vec<(&'static str, &'static str)>) + Send + 'static,
    ) -> Self {
        Self::start_on(0, answer)
    }

    /// Same, on a given port (0: any).
    pub fn start_on(
        port: u16,
        answer: impl Fn(usize) -> (u16, Vec<(&'static str, &'static str)>) + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut headers = HashMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let n = log.lock().unwrap().len();
                let (status, extra) = answer(n);
                log.lock().unwrap().push(Seen {
                    at: Instant::now(),
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    answered: status,
                });
                if status == 0 {
                    // Hang: hold the connection 2 s without a word, then drop it.
                    std::thread::sleep(Duration::from_secs(2));
                    continue;
                }
                let mut resp =
                    format!("HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: 2\r\n");
                for (k, v) in extra {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\nok");
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        TestServer { port, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `ok` holds of the requests so far.
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&[Seen]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if ok(&self.seen()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: not within {secs} s; requests: {:#?}", self.seen());
    }
}

/// A loopback port held without listening: a connection to it is refused, as to
/// a receiver that is down, and no other test's server or Alertmanager can be
/// given it meanwhile (a port from [`free_port`] is free for anyone once read: a
/// test that runs beside may bind it and answer). [`DownPort::up`] releases it to
/// the test's own server.
pub struct DownPort {
    socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl DownPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let port = socket.local_addr().unwrap().port();
        DownPort { socket, port }
    }

    /// The receiver is back: a [`TestServer`] on the port, answering as told.
    pub fn up(
        self,
        answer: impl Fn(usize) -> (u16, Vec<(&'static str, &'static str)>) + Send + 'static,
    ) -> TestServer {
        drop(self.socket);
        TestServer::start_on(self.port, answer)
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, routing
/// everything to a webhook, clustering off.
pub struct Alertmanager {
    /// Stopped on drop.
    pub group: Group,
    pub port: u16,
    pub log: PathBuf,
}

impl Alertmanager {
    pub fn start(dir: &Path, webhook_port: u16) -> Alertmanager {
        let port = free_port();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n- name: hook\n  \
                 webhook_configs:\n  - url: http://127.0.0.1:{webhook_port}/am\n    send_resolved: true\n"
            ),
        )
        .unwrap();
        let log = dir.join("alertmanager.log");
        let group = Group::spawn(
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.join("alertmanager.err")).unwrap()),
        )
        .expect("prometheus-alertmanager (apt-get install prometheus-alertmanager)");
        let am = Alertmanager { group, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Listening first (util::get panics on a refused connection), then ready.
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || am.get("/-/ready").0 != 200
        {
            assert!(
                Instant::now() < deadline,
                "alertmanager not ready: {}",
                am.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        super::get(
            format!("127.0.0.1:{}", self.port).parse().unwrap(),
            path,
            None,
        )
    }

    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (code, body) = self.get("/api/v2/alerts");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn logs(&self) -> String {
        let err = self.log.with_extension("err");
        std::fs::read_to_string(&err).unwrap_or_default()
    }
}
