//! Response times read from a real server's access log: a Python HTTP server whose
//! handler sleeps a known distribution of 10–200 ms and logs each request, driven
//! from a loopback client. The p95 Outrider reports (and the one computed from its
//! exported histogram) is within 10% of the p95 the client measured.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{metric, promtool_check, Group, Outrider};

/// The app: `server.py MODE LOG PORTFILE`; MODE `nginx` writes
/// `… "GET /work?ms=N HTTP/1.1" 200 2 "-" "rust-client" rt=0.123 uct="0.000" …`,
/// MODE `json` writes `{"method": "GET", "path": …, "status": 200, "duration_ms": 12.3}`.
/// LOG `-` is stdout.
const SERVER_PY: &str = r#"
import http.server, json, os, sys, threading, time

mode, log_path, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
out = sys.stdout if log_path == "-" else open(log_path, "a")
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        start = time.monotonic()
        ms = int(self.path.split("ms=")[1])
        time.sleep(ms / 1000.0)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        took = time.monotonic() - start
        if mode == "nginx":
            now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            line = '%s - - [%s] "GET %s HTTP/1.1" 200 %d "-" "rust-client" rt=%.3f uct="0.000" uht="%.3f" urt="%.3f"' % (
                self.client_address[0], now, self.path, len(body), took, took, took)
        else:
            line = json.dumps({"time": time.time(), "level": "info", "method": "GET",
                               "path": self.path, "status": 200,
                               "duration_ms": round(took * 1000.0, 3)})
        with lock:
            out.write(line + "\n")
            out.flush()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

const REQUESTS: usize = 300;
const CLIENTS: usize = 6;

/// The sleep of request `i`: four in five 10–60 ms, one in five 100–200 ms.
fn sleep_ms(i: usize) -> usize {
    if i % 5 == 0 {
        100 + (i * 37) % 101
    } else {
        10 + (i * 13) % 51
    }
}

/// Waits for the server's port file.
fn port(file: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(file) {
            return s.trim().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server never wrote its port");
}

/// Sends every request from `CLIENTS` threads; returns each one's seconds, measured
/// from connect to the end of the response.
fn drive(port: u16) -> Vec<f64> {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut took = Vec::new();
                for i in (c..REQUESTS).step_by(CLIENTS) {
                    let start = Instant::now();
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    write!(
                        s,
                        "GET /work?ms={} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
                        sleep_ms(i)
                    )
                    .unwrap();
                    let mut response = String::new();
                    s.read_to_string(&mut response).unwrap();
                    took.push(start.elapsed().as_secs_f64());
                    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
                }
                took
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

fn p95(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(0.95 * v.len() as f64).ceil() as usize - 1]
}

/// Outrider with buckets 10 ms apart up to 300 ms, so the exported histogram can be
/// checked too; `extra` is appended to the config.
fn start(extra: &str, args: &[&str]) -> Outrider {
    let bounds: Vec<String> = (1..=30)
        .map(|i| format!("{:.2}", i as f64 / 100.0))
        .collect();
    let config = format!(
        "[sampling]\ninterval = \"200ms\"\n[analysis]\nlatency_window = \"10m\"\nerror_window = \"10m\"\n\
         [log_options]\nduration_buckets = [{}]\n{extra}",
        bounds.join(", ")
    );
    Outrider::with_config(&config, &[], args)
}

/// Polls `/api/v1/status` until every request's duration was read; returns the
/// snapshot's `logs`.
fn wait_latency(o: &Outrider) -> serde_json::Value {
    let status = o.wait_status(&format!("{REQUESTS} durations read"), |s| {
        s["snapshot"]["logs"]["latency"]["requests"].as_u64() == Some(REQUESTS as u64)
    });
    status["snapshot"]["logs"].clone()
}

/// The p95 from the exported histogram, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does.
fn histogram_p95(body: &str) -> f64 {
    let name = "outrider_http_request_duration_seconds_bucket";
    let mut buckets: Vec<(f64, f64)> = body
        .lines()
        .filter(|l| l.starts_with(name) && l.contains("code_class=\"2xx\""))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, l.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().unwrap().1;
    let rank = 0.95 * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            return prev.0 + (le - prev.0) * (rank - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    unreachable!()
}

/// Checks Outrider's figures against the client's; returns (client, status, histogram) p95.
fn check(o: &Outrider, took: Vec<f64>) -> (f64, f64, f64) {
    let logs = wait_latency(o);
    let client = p95(took);
    let reported = logs["latency"]["p95_seconds"].as_f64().unwrap();
    let body = o.scrape();
    promtool_check(&body);
    assert_eq!(
        metric(
            &body,
            "outrider_http_request_duration_seconds_count",
            &[("code_class", "2xx")]
        ),
        Some(REQUESTS as f64)
    );
    assert_eq!(
        metric(
            &body,
            "outrider_http_request_duration_seconds_count",
            &[("code_class", "5xx")]
        ),
        Some(0.0),
        "the fixed label set is there with zeros"
    );
    let exported = histogram_p95(&body);
    let gauge = metric(
        &body,
        "outrider_http_request_duration_percentile_seconds",
        &[("percentile", "95")],
    )
    .unwrap();
    assert!((gauge - reported).abs() < 1e-9, "{gauge} vs {reported}");
    for (what, p) in [("status", reported), ("histogram", exported)] {
        assert!(
            (p - client).abs() / client <= 0.10,
            "{what} p95 {p:.4} s vs client p95 {client:.4} s"
        );
    }
    assert!(
        logs["requests_per_second"].as_f64().unwrap() > 0.0,
        "{logs}"
    );
    eprintln!(
        "p95: client {client:.4} s, /api/v1/status {reported:.4} s, exported histogram {exported:.4} s"
    );
    (client, reported, exported)
}

#[test]
fn nginx_request_time_in_a_followed_log_file_gives_the_client_p95() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("server.py");
    std::fs::write(&script, SERVER_PY).unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let port_file = dir.path().join("port");
    let server = Group::spawn(
        Command::new("python3")
            .arg(&script)
            .args(["nginx", log.to_str().unwrap(), port_file.to_str().unwrap()])
            .stdin(Stdio::null()),
    )
    .expect("python3");
    let port = port(&port_file);
    // From the beginning: lines written before the follower is set up count too.
    let o = start(
        &format!(
            "[[logs]]\nname = \"nginx\"\npath = {:?}\nstart_at = \"beginning\"\n",
            log.to_str().unwrap()
        ),
        &["--pid", &server.pid().to_string()],
    );
    let took = drive(port);
    check(&o, took);
}

#[test]
fn json_duration_ms_from_a_wrapped_server_gives_the_client_p95() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("server.py");
    std::fs::write(&script, SERVER_PY).unwrap();
    let port_file = dir.path().join("port");
    let o = start(
        "",
        &[
            "--",
            "python3",
            script.to_str().unwrap(),
            "json",
            "-",
            port_file.to_str().unwrap(),
        ],
    );
    let took = drive(port(&port_file));
    check(&o, took);
}
