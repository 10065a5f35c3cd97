//! Connection scans against real processes: a Python app that opens TCP
//! connections to a listener in this test and never closes them. While the
//! listener holds its ends, established grows; when the listener closes its ends,
//! the app's sockets sit in CLOSE_WAIT. Outrider, run as the binary with a short
//! leak window, must count them and flag the growth; a steady app must not be
//! flagged; and scans must not run more often than configured.

mod util;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{Group, Outrider};

/// The app: a listener of its own (so `listen` is 1), then `count` connections to
/// PORT at `rate` per second (count 0: without end), never read nor closed.
const APP: &str = r#"
import socket, sys, time
port, rate, count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
own = socket.socket(); own.bind(("127.0.0.1", 0)); own.listen()
held = []
print("ready", flush=True)
while count == 0 or len(held) < count:
    held.append(socket.create_connection(("127.0.0.1", port)))
    time.sleep(1.0 / rate)
print("done", flush=True)
time.sleep(3600)
"#;

struct App {
    /// Stopped on drop.
    _group: Group,
    pid: i32,
    /// Lines the app printed after "ready".
    out: Arc<Mutex<Vec<String>>>,
}

impl App {
    fn start(port: u16, rate: f64, count: usize) -> App {
        let mut group = Group::spawn(
            Command::new("python3")
                .args([
                    "-c",
                    APP,
                    &port.to_string(),
                    &rate.to_string(),
                    &count.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
        )
        .expect("python3");
        let mut lines = BufReader::new(group.child().stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                o.lock().unwrap().push(l);
            }
        });
        App {
            pid: group.pid(),
            _group: group,
            out,
        }
    }

    fn wait_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.out.lock().unwrap().iter().any(|l| l == "done") {
            assert!(
                Instant::now() < deadline,
                "the app never opened its connections"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A peer that accepts and then holds its ends without reading (`hold`), or closes
/// them at once (the app's ends go to CLOSE_WAIT).
fn peer(hold: bool) -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = kept.clone();
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            if hold {
                k.lock().unwrap().push(s);
            }
        }
    });
    (port, kept)
}

/// Outrider on the app's pid with 100 ms ticks, a 6 s leak window (60 buckets of one tick:
/// the verdict needs 30, so late ticks under load leave room), and only
/// ConnectionLeakSuspected enabled (`for` 1 s, so it is seen pending then firing).
fn watch(pid: i32, connections_interval: &str) -> Outrider {
    let rules = util::only_rule("ConnectionLeakSuspected", "1s");
    Outrider::with_config(
        &format!(
            "[sampling]\ninterval = \"100ms\"\n[[targets]]\nname = \"app\"\npid = {pid}\n{rules}"
        ),
        &[
            ("OUTRIDER_ANALYSIS__LEAK_WINDOW", "6s"),
            // At least 10 held before a verdict: a strong, steady rise may be
            // flagged before half the window (issue 17), and the figures below
            // are checked against two seconds' worth of connections.
            ("OUTRIDER_ANALYSIS__CONNECTIONS_MIN_GROWTH", "10"),
            (
                "OUTRIDER_SAMPLING__CONNECTIONS_INTERVAL",
                connections_interval,
            ),
        ],
        &[],
    )
}

fn state(o: &Outrider, state: &str) -> Option<f64> {
    o.metric(
        "outrider_target_tcp_connections",
        &[("target", "app"), ("state", state)],
    )
}

/// The leak is flagged in the metrics and as an active alert in the status API.
fn assert_flagged(o: &Outrider) -> serde_json::Value {
    o.wait_metric(
        "outrider_leak_suspected",
        &[("target", "app"), ("resource", "connections")],
        |v| v == 1.0,
    );
    let status = o.wait_status("ConnectionLeakSuspected in the active alerts", |s| {
        leak_alert(s).is_some()
    });
    let a = leak_alert(&status).unwrap();
    assert!(
        matches!(a["state"].as_str(), Some("pending" | "firing")),
        "{a}"
    );
    status
}

/// The status' active ConnectionLeakSuspected alert for target "app".
fn leak_alert(status: &serde_json::Value) -> Option<&serde_json::Value> {
    status["snapshot"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["alertname"] == "ConnectionLeakSuspected" && a["target"] == "app")
}

#[test]
fn connections_the_app_opens_and_never_closes_are_flagged() {
    let (port, kept) = peer(true);
    let app = App::start(port, 5.0, 0);
    let o = watch(app.pid, "100ms");
    let status = assert_flagged(&o);
    let established = state(&o, "established").unwrap();
    let held = kept.lock().unwrap().len() as f64;
    // The app keeps opening, 5 a second: what the scan saw is within two seconds' worth
    // of what the peer holds.
    assert!(
        established >= 10.0 && (held - established).abs() <= 10.0,
        "{established} vs {held}"
    );
    assert_eq!(state(&o, "listen"), Some(1.0));
    assert_eq!(state(&o, "close_wait"), Some(0.0));
    let other = o.metric(
        "outrider_target_tcp_established_connections",
        &[("target", "app"), ("service", "other")],
    );
    assert!(other.is_some_and(|v| v >= 10.0), "{other:?}");
    let c = &status["snapshot"]["targets"][0]["connections"];
    assert!(c["established"].as_u64().unwrap() >= 10, "{c}");
    let a = leak_alert(&status).unwrap();
    let description = a["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("established"), "{description}");
    util::promtool_check(&o.scrape());
}

#[test]
fn close_wait_left_by_a_peer_that_closed_is_flagged() {
    let (port, _) = peer(false);
    let app = App::start(port, 5.0, 0);
    let o = watch(app.pid, "100ms");
    assert_flagged(&o);
    let close_wait = state(&o, "close_wait").unwrap();
    assert!(close_wait >= 10.0, "{close_wait}");
    // Closed by the peer: none stays established for long.
    let established = state(&o, "established").unwrap();
    assert!(established <= 2.0, "{established}");
}

/// A steady app (a fixed pool) is not flagged, and with 1 s between scans at
/// 100 ms ticks there is one scan per ten ticks, never more.
#[test]
fn a_steady_pool_is_not_flagged_and_scans_keep_their_interval() {
    let (port, _kept) = peer(true);
    let app = App::start(port, 200.0, 30);
    app.wait_done();
    let started = Instant::now();
    let o = watch(app.pid, "1s");
    o.wait_metric(
        "outrider_target_tcp_connections",
        &[("target", "app"), ("state", "established")],
        |v| v == 30.0,
    );
    // Long enough for the 6 s window's first verdict (half a window) and more.
    std::thread::sleep(Duration::from_secs(8));
    let body = o.scrape();
    let elapsed = started.elapsed().as_secs_f64();
    let scans = util::metric(&body, "outrider_connection_scans_total", &[]).unwrap();
    assert!(scans >= 5.0, "{scans} scans in {elapsed:.1} s");
    assert!(
        scans <= 1.0 + elapsed,
        "{scans} scans in {elapsed:.1} s: more than one a second"
    );
    let growth = util::metric(
        &body,
        "outrider_connection_growth_per_second",
        &[("target", "app")],
    );
    assert!(growth.is_some_and(|g| g.abs() < 0.1), "{growth:?}");
    assert_eq!(
        util::metric(
            &body,
            "outrider_leak_suspected",
            &[("target", "app"), ("resource", "connections")]
        ),
        Some(0.0)
    );
    assert_eq!(
        util::metric(
            &body,
            "outrider_target_tcp_connections",
            &[("target", "app"), ("state", "established")]
        ),
        Some(30.0)
    );
}

#[test]
fn scans_can_be_turned_off() {
    let (port, _kept) = peer(true);
    let app = App::start(port, 200.0, 3);
    let o = watch(app.pid, "off");
    o.wait_metric("outrider_target_up", &[("target", "app")], |v| v == 1.0);
    std::thread::sleep(Duration::from_millis(500));
    let body = o.scrape();
    assert!(!body.contains("outrider_target_tcp_connections"), "{body}");
    assert!(!body.contains("outrider_connection_scans_total"), "{body}");
}

/// The default thresholds on synthetic hours sampled every 5 s with a scan every
/// 15 s (the value carried in between): a pool that follows the load, bursts that
/// close again and a few transient CLOSE_WAIT are not leaks; CLOSE_WAIT piling up at
/// one a minute, or established connections growing by half a minute, on top of
/// the same fluctuating pool, are.
#[test]
fn default_thresholds_ignore_a_fluctuating_pool_and_catch_slow_leaks() {
    use outrider::analysis::{AnalysisConfig, Analyzer, Observation};
    let noise = |t: f64| ((t * 12.9898).sin() * 43758.5453).fract();
    let pool = move |t: f64| {
        let load = 40.0 + 30.0 * (t / 1200.0 * std::f64::consts::TAU).sin();
        let burst = if (t % 5400.0) < 300.0 { 150.0 } else { 0.0 };
        (load + 5.0 * noise(t) + burst).round().max(0.0)
    };
    let transient_close_wait = |t: f64| if (t % 900.0) < 30.0 { 3.0 } else { 0.0 };
    type Shape = Box<dyn Fn(f64) -> (f64, f64)>;
    let cases: Vec<(&str, bool, Shape)> = vec![
        (
            "fluctuating pool",
            false,
            Box::new(move |t| (pool(t), transient_close_wait(t))),
        ),
        (
            "close_wait 1/min",
            true,
            Box::new(move |t| (pool(t), transient_close_wait(t) + (t / 60.0).floor())),
        ),
        (
            "established 0.5/min",
            true,
            Box::new(move |t| (pool(t) + (t / 120.0).floor(), 0.0)),
        ),
    ];
    for (name, leak, f) in cases {
        let mut a = Analyzer::new(&AnalysisConfig::default());
        let mut first = None;
        let mut scanned = (0.0, 0.0);
        for i in 0..(4 * 720) {
            let t = i as f64 * 5.0;
            if i % 3 == 0 {
                scanned = f(t);
            }
            let v = a.observe(&Observation {
                t,
                rss_bytes: 1e8,
                tcp_established: Some(scanned.0),
                tcp_close_wait: Some(scanned.1),
                ..Default::default()
            });
            if v.connection_leak.suspected && first.is_none() {
                first = Some(t);
            }
        }
        match (leak, first) {
            (false, Some(t)) => panic!("{name}: false alarm at {t} s"),
            (true, None) => panic!("{name}: missed"),
            (true, Some(t)) => assert!(t <= 3.0 * 3600.0, "{name}: found only at {t} s"),
            (false, None) => {}
        }
        eprintln!("{name}: first suspected at {first:?}");
    }
}

/// Outrider as an unprivileged user watching a root-owned app: the app's fd
/// directory cannot be read, which is counted (`source="socket_fds"`) and leaves the
/// connection figures absent (unknown, not zero); Outrider carries on. Run by a
/// user other than root, Outrider runs as that user and watches pid 1 instead.
#[test]
fn an_fd_dir_of_another_user_is_counted_not_fatal() {
    let (port, _kept) = peer(true);
    let app = App::start(port, 200.0, 3);
    let (mut cmd, pid) = match util::is_root() {
        true => (util::outrider_as_nobody(), app.pid),
        false => (Command::new(util::BIN), util::pid_of_another_user()),
    };
    cmd.env("OUTRIDER_SAMPLING__CONNECTIONS_INTERVAL", "200ms");
    let pid = pid.to_string();
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--interval", "200ms"]);
    let errors = o.wait_metric(
        "outrider_read_errors_total",
        &[("source", "socket_fds")],
        |v| v >= 2.0,
    );
    let body = o.scrape();
    eprintln!("{errors} socket_fds read errors");
    assert!(!body.contains("outrider_target_tcp_connections{"), "{body}");
    assert!(util::metric(&body, "outrider_connection_scans_total", &[]).is_some_and(|n| n >= 2.0));
    assert_eq!(util::get(o.addr, "/healthz", None).0, 200);
}
