//! Where a request's time goes, on a real threaded Python HTTP server (wrapped, its
//! access lines on stdout) driven from a loopback client: handlers that sleep
//! 100 ms are I/O-bound, handlers that burn 50 ms of CPU are CPU-bound, and the
//! CPU-bound app pinned to one core beside a busy loop waits for its CPU; eight
//! threads burning CPU with two CPUs to run on are held to one core by CPython's
//! GIL, and told to use processes.
//!
//! The server is `http.server.ThreadingHTTPServer` with its requests on a pool of
//! threads that live on: a thread-per-request server's run-queue wait is lost with
//! each thread (the kernel keeps a dead thread's CPU time in its process' totals,
//! but not its wait), and reads as `other` (see the README's limits).

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use util::Outrider;

/// `server.py MODE PORTFILE [HOST:PORT]`: MODE `sleep` sleeps 100 ms in the handler,
/// `burn` spins 50 ms of the thread's CPU time; each request is logged as an nginx
/// line with `rt=` on stdout. With HOST:PORT it holds a connection there open (a
/// database it would wait on).
const SERVER_PY: &str = r#"
import http.server, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

mode, port_file = sys.argv[1], sys.argv[2]
lock = threading.Lock()
held = []
if len(sys.argv) > 3:
    import socket
    host, port = sys.argv[3].rsplit(":", 1)
    held.append(socket.create_connection((host, int(port))))

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        start = time.monotonic()
        if mode == "sleep":
            time.sleep(0.1)
        else:
            t0 = time.thread_time()
            while time.thread_time() - t0 < 0.05:
                pass
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        took = time.monotonic() - start
        now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        line = '127.0.0.1 - - [%s] "GET / HTTP/1.1" 200 2 "-" "rust-client" rt=%.4f' % (now, took)
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    # Requests run on a pool of threads that live on (as gunicorn's gthread
    # workers do): the kernel forgets a thread's run-queue wait when it exits.
    pool = ThreadPoolExecutor(max_workers=8)

    def process_request(self, request, client_address):
        self.pool.submit(self.process_request_thread, request, client_address)

server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

const REQUESTS: usize = 60;

/// The tests here measure CPU and its wait, so they take the machine one at a
/// time: a busy loop or a burning server of one would be another's contention.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Python interpreter itself (`python3` may be a pyenv shim script).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

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

/// One GET of `/`, answered 200.
fn get(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
}

/// `REQUESTS` GETs from `clients` threads.
fn drive(port: u16, clients: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                for _ in (c..REQUESTS).step_by(clients) {
                    get(port);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// GETs from `clients` threads, one after another each, until `stop` is set.
fn drive_until(port: u16, clients: usize, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    get(port);
                }
            })
        })
        .collect()
}

/// Wraps the server (behind `prefix`, e.g. `taskset -c 0`), drives it, and returns
/// the time per request once every request is counted, and `/summary.txt`.
fn run(mode: &str, prefix: &[&str], clients: usize) -> (serde_json::Value, String) {
    run_holding(mode, prefix, clients, None)
}

/// [`run`], the server holding a connection to `hold` (`HOST:PORT`) open.
fn run_holding(
    mode: &str,
    prefix: &[&str],
    clients: usize,
    hold: Option<&str>,
) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let py = python();
    let mut argv: Vec<&str> = vec!["--"];
    argv.extend_from_slice(prefix);
    argv.extend([
        py.as_str(),
        "-c",
        SERVER_PY,
        mode,
        port_file.to_str().unwrap(),
    ]);
    argv.extend(hold);
    let config = "[sampling]\ninterval = \"200ms\"\nconnections_interval = \"1s\"\n";
    let o = Outrider::with_config(config, &[], &argv);
    drive(port(&port_file), clients);
    let status = o.wait_status(&format!("{REQUESTS} requests split"), |s| {
        let t = &s["snapshot"]["targets"][0]["verdicts"]["requests"]["time_per_request"];
        t["requests"].as_u64() == Some(REQUESTS as u64)
    });
    let t = status["snapshot"]["targets"][0]["verdicts"]["requests"]["time_per_request"].clone();
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    let share = |k: &str| t[k].as_f64().unwrap() / t["mean_seconds"].as_f64().unwrap();
    eprintln!(
        "{mode} {prefix:?}: mean {:.1} ms, on CPU {:.0}%, CPU wait {:.0}%, other {:.0}%: {}",
        t["mean_seconds"].as_f64().unwrap() * 1000.0,
        share("on_cpu_seconds") * 100.0,
        share("cpu_wait_seconds") * 100.0,
        share("other_seconds") * 100.0,
        t["bound"]
    );
    (t, summary)
}

/// `part`'s share of the split.
fn share(t: &serde_json::Value, part: &str) -> f64 {
    let f = |k: &str| t[k].as_f64().unwrap();
    f(part) / (f("on_cpu_seconds") + f("cpu_wait_seconds") + f("other_seconds"))
}

#[test]
fn a_sleeping_handler_is_io_bound() {
    let _machine = one_at_a_time();
    let (t, summary) = run("sleep", &[], 4);
    assert_eq!(t["bound"], "io", "{t}");
    assert!(share(&t, "on_cpu_seconds") < 0.2, "{t}");
    let mean = t["mean_seconds"].as_f64().unwrap();
    assert!((0.1..0.2).contains(&mean), "{t}");
    assert!(
        summary.contains("Request time: I/O-bound: ")
            && summary
                .contains("More CPU will not make it faster; more workers will carry more load"),
        "{summary}"
    );
}

/// A server that holds a connection to port 5432 open: the words name postgres as
/// the likely wait. The listener is on 127.0.0.77, so a postgres on the machine's
/// 127.0.0.1:5432 is no obstacle.
#[test]
fn an_io_bound_app_holding_a_database_connection_names_it() {
    let _machine = one_at_a_time();
    let db = std::net::TcpListener::bind("127.0.0.77:5432").expect("bind 127.0.0.77:5432");
    let (t, summary) = run_holding("sleep", &[], 4, Some("127.0.0.77:5432"));
    drop(db);
    assert_eq!(t["bound"], "io", "{t}");
    assert_eq!(t["likely_waits"], serde_json::json!(["postgres"]), "{t}");
    assert!(
        summary.contains("is spent waiting (likely on postgres, which it holds connections to)"),
        "{summary}"
    );
}

#[test]
fn a_burning_handler_is_cpu_bound() {
    let _machine = one_at_a_time();
    // One client: with more, the threads would queue for CPython's GIL (asleep,
    // not in the run queue) and that wait would read as "other".
    let (t, summary) = run("burn", &[], 1);
    assert_eq!(t["bound"], "cpu", "{t}");
    let cpu = share(&t, "on_cpu_seconds") + share(&t, "cpu_wait_seconds");
    assert!(cpu > 0.7, "{t}");
    assert!(summary.contains("Request time: CPU-bound"), "{summary}");
}

/// A busy loop pinned to CPU 0; killed on drop.
struct Hog(Child);

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_cpu_bound_app_sharing_its_core_waits_for_it() {
    let _machine = one_at_a_time();
    let _hog = Hog(Command::new("taskset")
        .args(["-c", "0", &python(), "-c", "while True: pass"])
        .stdin(Stdio::null())
        .spawn()
        .expect("taskset"));
    let (t, summary) = run("burn", &["taskset", "-c", "0"], 1);
    assert_eq!(t["bound"], "cpu", "{t}");
    let wait = share(&t, "cpu_wait_seconds");
    assert!(wait > 0.25, "waiting for the CPU {:.0}%: {t}", wait * 100.0);
    assert_eq!(t["starved"], true, "{t}");
    assert!(
        summary.contains("Request time: CPU-bound and starved: "),
        "{summary}"
    );
}

/// CPython's GIL on a real server: eight clients keep the pool's eight threads
/// burning CPU in Python for 30 s and more, with two CPUs to run on, and together they never
/// use more than about one core. Outrider says so, and that more processes, not
/// more threads or CPU, will help. (The same server pinned to one CPU above gets no
/// such line: it is allowed one core.)
#[test]
fn threads_held_to_one_core_by_the_gil_are_told_to_use_processes() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("skipped: {cpus} CPU; the rule needs an app allowed 1.5 cores or more");
        return;
    }
    let _machine = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let py = python();
    let argv = [
        "--",
        &py,
        "-c",
        SERVER_PY,
        "burn",
        port_file.to_str().unwrap(),
    ];
    let o = Outrider::with_config("[sampling]\ninterval = \"200ms\"\n", &[], &argv);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = drive_until(port(&port_file), 8, &stop);
    // The rule needs 30 s of window; the verdict is read while the load lasts.
    std::thread::sleep(Duration::from_secs(30));
    let status = o.wait_status("the one-core verdict", |s| {
        !s["snapshot"]["targets"][0]["verdicts"]["requests"]["one_core"].is_null()
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let held = &status["snapshot"]["targets"][0]["verdicts"]["requests"]["one_core"];
    eprintln!("held to one core: {held}");
    let f = |k: &str| held[k].as_f64().unwrap();
    assert!(held["threads"].as_u64().unwrap() >= 8, "{held}");
    assert!(f("mean_cores") >= 0.85 && f("peak_cores") <= 1.15, "{held}");
    assert!(f("allowed_cores") >= 2.0, "{held}");
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    assert!(
        summary.contains("one thread runs at a time (CPython's GIL, or a single event loop)")
            && summary.contains("more processes (workers) will"),
        "{summary}"
    );
}
