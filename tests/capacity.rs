//! Capacity advice against real processes: a Python multiprocessing pool (a real
//! pre-fork master with N forked workers) for the worker count, PSS and the
//! worker hint; a real Python HTTP server writing common-log-format access lines,
//! driven from a loopback client, for requests per CPU-second.

mod util;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use util::{get, promtool_check, Group, Outrider};

const MIB: f64 = 1048576.0;

/// A fork-context pool of N workers, each holding M MiB it wrote (resident and
/// private), then idle. SIGTERM ends the pool and its workers.
const POOL: &str = r#"
import multiprocessing as mp, signal, sys, time
MIB = 1 << 20
def init(mib):
    global held
    held = b"x" * (mib * MIB)
def ready(_):
    return len(held)
if __name__ == "__main__":
    n, mib = int(sys.argv[1]), int(sys.argv[2])
    pool = mp.get_context("fork").Pool(n, initializer=init, initargs=(mib,))
    def stop(*_):
        pool.terminate()
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    pool.map(ready, range(n * 4))
    print("ready", flush=True)
    while True:
        time.sleep(3600)
"#;

/// An HTTP server that spends about 5 ms of CPU per request and writes one
/// common-log-format access line per request to the file given.
const SERVER: &str = r#"
import http.server, sys, time
log = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        t = time.process_time()
        while time.process_time() - t < 0.005:
            pass
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_request(self, code="-", size="-"):
        log.write('127.0.0.1 - - [%s] "%s" %s 3\n' % (
            time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), self.requestline, code))
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// Polls the status until `ok` holds for the first target; returns that target
/// and the snapshot's `taken_at_unix`.
fn wait_target(o: &Outrider, what: &str, ok: impl Fn(&Value) -> bool) -> (Value, f64) {
    let s = o.wait_status(what, |s| s.pointer("/snapshot/targets/0").is_some_and(&ok));
    (s["snapshot"]["targets"][0].clone(), taken_at(&s))
}

/// When the status' snapshot was taken (Unix seconds).
fn taken_at(s: &Value) -> f64 {
    s["snapshot"]["taken_at_unix"]
        .as_f64()
        .unwrap_or_else(|| panic!("no taken_at_unix: {s:#}"))
}

/// When the first target's latest PSS reading was taken (Unix seconds), if any.
fn pss_read_at(s: &Value) -> Option<f64> {
    let age = s["snapshot"]["targets"][0]["workers"]["pss_age_seconds"].as_f64()?;
    Some(taken_at(s) - age)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// PSS in bytes from the test's own read of `smaps_rollup`.
fn own_pss(pid: i32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|r| r.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Pss line");
    kb * 1024
}

/// The children of a process, from /proc/<pid>/task/<pid>/children.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// utime + stime of a process, in seconds (clock ticks of 10 ms).
fn own_cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based) → 11, 12 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn a_multiprocessing_pool_reports_its_workers_pss_and_the_hint() {
    const WORKERS: usize = 3;
    const HELD_MIB: u64 = 24;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pool.py");
    std::fs::write(&script, POOL).unwrap();
    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_SAMPLING__INTERVAL", "250ms")
        .env("OUTRIDER_SAMPLING__PSS_INTERVAL", "1s")
        .env("OUTRIDER_RESOURCES__CPU_REQUEST", "4")
        .env("OUTRIDER_RESOURCES__MEMORY_LIMIT", "128Mi");
    let script_s = script.to_str().unwrap();
    let workers_s = WORKERS.to_string();
    let held_s = HELD_MIB.to_string();
    let o = Outrider::start_with(cmd, &["--", "python3", script_s, &workers_s, &held_s]);

    // Ready when the test itself sees N workers each holding its bytes.
    let (first, _) = wait_target(&o, "the pool's master", |t| t["main_pid"].is_i64());
    let master = first["main_pid"].as_i64().unwrap() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    let kids = loop {
        let kids = children(master);
        if kids.len() == WORKERS
            && kids
                .iter()
                .all(|&k| own_pss(k) as f64 >= HELD_MIB as f64 * MIB)
        {
            break kids;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never got ready: {kids:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let ready_at = now_unix();

    // A PSS reading Outrider took after the workers were ready.
    let s = o.wait_status("a PSS reading after ready, and the hint", |s| {
        pss_read_at(s).is_some_and(|at| at > ready_at)
            && s["snapshot"]["targets"][0]["capacity"]["worker_hint"].is_object()
    });
    let (t, read_at) = (
        s["snapshot"]["targets"][0].clone(),
        pss_read_at(&s).unwrap(),
    );
    let own_mean = kids.iter().map(|&k| own_pss(k)).sum::<u64>() as f64 / WORKERS as f64;
    let w = &t["workers"];
    println!("workers as reported: {w:#}");
    println!("hint as reported: {:#}", t["capacity"]["worker_hint"]);
    assert!(read_at > ready_at, "the reading is from after ready");
    assert_eq!(w["server"], "multiprocessing");
    assert_eq!(w["master_pid"].as_i64(), Some(master as i64));
    assert_eq!(w["workers"].as_u64(), Some(WORKERS as u64));
    assert_eq!(w["workers_with_pss"].as_u64(), Some(WORKERS as u64));
    let per_worker = w["worker_pss_bytes"].as_u64().unwrap() as f64;
    // Idle, identical workers: their PSS moves only if pages are shared or
    // unshared between the two reads (a second apart); 10% is far above that and
    // far below a wrong figure (RSS would add the master's shared pages; a sum
    // over workers would be N times).
    assert!(
        (per_worker - own_mean).abs() / own_mean < 0.10,
        "reported {:.1} MiB per worker, the test read {:.1} MiB",
        per_worker / MIB,
        own_mean / MIB
    );
    let master_pss = w["master_pss_bytes"].as_u64().unwrap() as f64;
    let own_master = own_pss(master) as f64;
    assert!(
        (master_pss - own_master).abs() / own_master < 0.25,
        "master {:.1} MiB vs {:.1} MiB",
        master_pss / MIB,
        own_master / MIB
    );

    // The hint is the stated formula, from the reported figures: 2 × 4 cores (the
    // CPU request; no CPU limit is configured, and the config wins over the
    // cgroup only for what it sets, so a cgroup CPU limit would be used first).
    let h = &t["capacity"]["worker_hint"];
    let (cores, cores_from) = match t["allocation"]["cpu_limit_cores"][0].as_f64() {
        Some(limit) => (limit, "cpu_limit"),
        None => (4.0, "cpu_request"),
    };
    assert_eq!(h["cores_from"], cores_from);
    let cpu_workers = ((2.0 * cores - 1e-9).ceil() as u64).max(1);
    let other = w["other_rss_bytes"].as_u64().unwrap() as f64;
    let budget = 128.0 * MIB * 0.9 - master_pss - other;
    let memory_workers = ((budget / per_worker).floor().max(0.0) as u64).max(1);
    let expected = cpu_workers.min(memory_workers);
    assert_eq!(h["cpu_workers"].as_u64(), Some(cpu_workers));
    assert_eq!(h["memory_workers"].as_u64(), Some(memory_workers));
    assert_eq!(h["recommended_workers"].as_u64(), Some(expected), "{h:#}");
    assert_eq!(
        h["bound_by"],
        if memory_workers < cpu_workers {
            "memory"
        } else {
            "cpu"
        }
    );
    assert!(h["reasoning"].as_str().unwrap().contains("binds"), "{h:#}");

    let body = o.scrape();
    let m = |name: &str| util::metric(&body, name, &[("target", "python3")]);
    assert_eq!(m("outrider_target_workers"), Some(WORKERS as f64));
    assert_eq!(m("outrider_recommended_workers"), Some(expected as f64));
    assert!(m("outrider_worker_memory_pss_bytes").is_some_and(|v| v >= HELD_MIB as f64 * MIB));
    promtool_check(&body);

    let (code, page) = get(o.addr, "/", None);
    assert_eq!(code, 200);
    assert!(
        page.contains("Worker hint: "),
        "the status page shows the hint"
    );
}

/// The server, started by the test before Outrider so its start-up CPU is not in
/// the window; stopped on drop.
struct Server {
    group: Group,
    addr: SocketAddr,
}

fn start_server(dir: &std::path::Path, log: &std::path::Path) -> Server {
    use std::io::BufRead;
    let script = dir.join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    let mut group = Group::spawn(
        Command::new("python3")
            .arg(&script)
            .arg(log)
            .stdout(Stdio::piped()),
    )
    .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(group.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the server prints its port");
    Server {
        group,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

#[test]
fn requests_per_cpu_second_of_a_real_http_server() {
    const REQUESTS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let server = start_server(dir.path(), &log);
    // The server's start-up is over once it answered once; that request's line
    // is in the file before Outrider starts reading at its end.
    assert_eq!(get(server.addr, "/warm-up", None).0, 200);
    std::thread::sleep(Duration::from_millis(200));

    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_SAMPLING__INTERVAL", "250ms")
        .env("OUTRIDER_CAPACITY__WINDOW", "10m")
        .env("OUTRIDER_RESOURCES__CPU_REQUEST", "500m")
        .env("OUTRIDER_RESOURCES__CPU_LIMIT", "2");
    let pid = server.group.pid().to_string();
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--log", log.to_str().unwrap()]);
    // Outrider's window starts at its first sample; the server is idle from here
    // until the requests, so its CPU then equals the test's baseline reading.
    wait_target(&o, "the first sample", |t| t["capacity"].is_object());
    let cpu_before = own_cpu_seconds(server.group.pid());

    for i in 0..REQUESTS {
        let (code, _) = get(server.addr, &format!("/item/{i}"), None);
        assert_eq!(code, 200);
    }
    let cpu_after = own_cpu_seconds(server.group.pid());
    let read_at = now_unix();
    wait_target(&o, "every request counted, after the CPU read", |t| {
        t["capacity"]["requests"].as_u64() == Some(REQUESTS)
    });
    // One more sample strictly after the test's CPU read.
    let s = o.wait_status("a sample after the CPU read", |s| {
        taken_at(s) > read_at + 0.3
    });
    let t = s["snapshot"]["targets"][0].clone();
    let c = &t["capacity"];
    println!("capacity as reported: {c:#}");
    assert_eq!(c["attribution"]["kind"], "all_streams");
    assert_eq!(c["requests"].as_u64(), Some(REQUESTS));
    let cpu = cpu_after - cpu_before;
    let expected = REQUESTS as f64 / cpu;
    let reported = c["requests_per_cpu_second"].as_f64().unwrap();
    println!(
        "test: {REQUESTS} requests on {cpu:.2} CPU-s = {expected:.1} req/CPU-s; outrider: {reported:.1} ({} CPU-s)",
        c["cpu_seconds"]
    );
    // Both read the same tick counters; they differ only by what the idle server
    // used between Outrider's first sample and the test's baseline read, and after
    // the test's final read (select() wake-ups twice a second: a tick or two), on
    // ≥ 1.5 CPU-seconds of requests (5 ms each): well under 5%.
    assert!(
        (reported - expected).abs() / expected < 0.05,
        "reported {reported:.1} req/CPU-s, the test measured {expected:.1}"
    );
    // At least 5 ms of CPU per request: at most 200 per CPU-second.
    assert!(reported <= 200.0 && reported > 50.0, "{reported}");
    let at_request = c["requests_per_second_at_cpu_request"].as_f64().unwrap();
    let at_limit = c["requests_per_second_at_cpu_limit"].as_f64().unwrap();
    assert!((at_request - reported * 0.5).abs() < 1e-6, "{at_request}");
    assert!((at_limit - reported * 2.0).abs() < 1e-6, "{at_limit}");

    let body = o.scrape();
    let rpcs = util::metric(
        &body,
        "outrider_requests_per_cpu_second",
        &[("target", "python3")],
    );
    assert!(
        rpcs.is_some_and(|v| (v - expected).abs() / expected < 0.05),
        "{rpcs:?}"
    );
    let lim = util::metric(
        &body,
        "outrider_capacity_requests_per_second",
        &[("target", "python3"), ("allocation", "limit")],
    );
    // The request rate the CPU limit (2 cores) would carry: twice the rate per
    // CPU-second, which is the test's own figure within 5%.
    assert!(
        lim.is_some_and(|v| (v - 2.0 * expected).abs() / (2.0 * expected) < 0.05),
        "{lim:?} vs 2 × {expected:.1}\n{body}"
    );
    promtool_check(&body);
}

/// gunicorn from PyPI, installed the way scripts/test.sh does when missing; a test
/// failure, with pip's words, when it cannot be installed.
fn ensure_gunicorn() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import gunicorn"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable() {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--break-system-packages",
            "gunicorn",
        ])
        .output();
    assert!(
        importable(),
        "gunicorn is not installed and pip could not install it (scripts/test.sh \
         installs it from PyPI): {:?}",
        out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// A WSGI app that spends about 5 ms of CPU per request.
const WSGI: &str = r#"
import time
def app(environ, start_response):
    t = time.process_time()
    while time.process_time() - t < 0.005:
        pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
"#;

#[test]
fn gunicorn_is_named_its_workers_counted_and_its_requests_costed() {
    const WORKERS: usize = 2;
    const REQUESTS: u64 = 200;
    ensure_gunicorn();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsgiapp.py"), WSGI).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let workers_s = WORKERS.to_string();
    let chdir = dir.path().to_str().unwrap();
    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_SAMPLING__INTERVAL", "250ms")
        .env("OUTRIDER_SAMPLING__PSS_INTERVAL", "1s")
        .env("OUTRIDER_RESOURCES__CPU_LIMIT", "1")
        .env("OUTRIDER_RESOURCES__MEMORY_LIMIT", "1Gi");
    // gunicorn's default access log format is the combined log format.
    let o = Outrider::start_with(
        cmd,
        &[
            "--",
            "python3",
            "-m",
            "gunicorn",
            "--chdir",
            chdir,
            "-w",
            &workers_s,
            "-b",
            &bind,
            "--access-logfile",
            "-",
            "wsgiapp:app",
        ],
    );
    let addr: SocketAddr = bind.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "gunicorn never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (t, _) = wait_target(&o, "gunicorn's workers", |t| {
        t["workers"]["workers"].as_u64() == Some(WORKERS as u64)
    });
    let master = t["workers"]["master_pid"].as_i64().unwrap() as i32;
    let kids = children(master);
    assert_eq!(kids.len(), WORKERS, "the test sees the same workers");
    let first = wait_target(&o, "the window's start", |t| t["capacity"].is_object()).0;
    let requests_before = first["capacity"]["requests"].as_u64().unwrap_or(0);
    for i in 0..REQUESTS {
        assert_eq!(get(addr, &format!("/r/{i}"), None).0, 200);
    }
    let ready_at = now_unix();
    let s = o.wait_status("every request counted, and a PSS reading after them", |s| {
        pss_read_at(s).is_some_and(|at| at > ready_at)
            && s["snapshot"]["targets"][0]["capacity"]["requests"].as_u64()
                == Some(requests_before + REQUESTS)
    });
    let t = s["snapshot"]["targets"][0].clone();
    let w = &t["workers"];
    let c = &t["capacity"];
    println!("gunicorn workers: {w:#}\ncapacity: {c:#}");
    assert_eq!(w["server"], "gunicorn");
    let own_mean = kids.iter().map(|&k| own_pss(k)).sum::<u64>() as f64 / WORKERS as f64;
    let per_worker = w["worker_pss_bytes"].as_u64().unwrap() as f64;
    assert!(
        (per_worker - own_mean).abs() / own_mean < 0.10,
        "reported {per_worker} vs the test's {own_mean}"
    );
    // CPU binds: 2 × 1 core (the limit) = 2, far below what fits in 1 GiB.
    let h = &c["worker_hint"];
    assert_eq!(h["cores_from"], "cpu_limit");
    let master_pss = w["master_pss_bytes"].as_u64().unwrap() as f64;
    let other = w["other_rss_bytes"].as_u64().unwrap() as f64;
    let memory_workers =
        (((1024.0 * MIB * 0.9 - master_pss - other) / per_worker).floor() as u64).max(1);
    assert_eq!(h["memory_workers"].as_u64(), Some(memory_workers));
    assert_eq!(h["recommended_workers"].as_u64(), Some(2));
    assert_eq!(h["bound_by"], "cpu");
    // Every request is in the window; the cost is at least the app's 5 ms.
    let r = c["requests_per_cpu_second"].as_f64().unwrap();
    let cpu = c["cpu_seconds"].as_f64().unwrap();
    let n = c["requests"].as_u64().unwrap() as f64;
    assert!((r - n / cpu).abs() < 1e-6 * r, "{r} vs {n} / {cpu}");
    assert!(r > 0.0 && r <= 200.0, "{r}");
}

#[test]
fn the_report_carries_the_workers_and_the_hint() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pool.py");
    std::fs::write(&script, POOL).unwrap();
    let run = |json: bool| {
        let mut cmd = Command::new(util::BIN);
        cmd.args(["report", "--for", "3s", "--interval", "200ms"]);
        if json {
            cmd.arg("--json");
        }
        cmd.args(["--", "python3", script.to_str().unwrap(), "2", "8"])
            .env("OUTRIDER_SAMPLING__PSS_INTERVAL", "1s")
            .env("OUTRIDER_RESOURCES__CPU_LIMIT", "1");
        util::group::output(&mut cmd)
    };
    let out = run(true);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let t = &v["targets"][0];
    assert_eq!(t["workers"]["workers"].as_u64(), Some(2), "{t:#}");
    assert_eq!(t["workers"]["server"], "multiprocessing");
    let h = &t["capacity"]["worker_hint"];
    assert_eq!(h["cpu_workers"].as_u64(), Some(2), "{h:#}");
    let text = String::from_utf8_lossy(&run(false).stdout).into_owned();
    assert!(
        text.contains("Workers: 2 multiprocessing workers"),
        "{text}"
    );
    assert!(text.contains("Worker hint: "), "{text}");
}
