//! Attacks and faults from outside, against a real Outrider on loopback: a flood of
//! half-open connections under the usual 1024-fd limit, slowloris, an idle
//! keep-alive connection, a connection storm, requests it does not serve, a
//! receiver that never answers during shutdown, the wrapper SIGKILLed, and a trace
//! path that cannot be written.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use outrider::http::HEADER_TIMEOUT;
use util::attack::{closed_by_peer, gone_within, half_open, timed_get};
use util::{metric, Outrider, BIN};

/// Outrider's own log lines since `from`.
fn lines_since(o: &Outrider, from: usize) -> Vec<String> {
    o.stderr.lock().unwrap()[from..].to_vec()
}

/// Lets this test process hold a few thousand sockets, whatever its soft limit.
fn raise_own_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.min(8192);
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want, hard).unwrap();
    }
    assert!(
        want >= 4096,
        "the tests need a hard fd limit of 4096; it is {hard}"
    );
}

/// The attack: 1,500 connections that send half a request and wait, with
/// Outrider held to 1024 fds (soft and hard, so it cannot raise them). Before the
/// server had bounds, they held every fd: scrapes timed out and the sampler could
/// not open /proc, so TargetDown fired for an app that was fine.
#[test]
fn a_half_open_flood_under_a_1024_fd_limit_leaves_scrapes_and_sampling_working() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("outrider.toml");
    std::fs::write(&config, util::only_rule("TargetDown", "0s")).unwrap();
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=1024:1024", BIN]);
    let o = Outrider::start_with(
        cmd,
        &[
            "--config",
            config.to_str().unwrap(),
            "--interval",
            "200ms",
            "--",
            "sleep",
            "300",
        ],
    );
    o.wait_status("a first sample", |s| s["ready"] == true);
    assert_eq!(o.metric("outrider_http_max_connections", &[]), Some(256.0));
    let logged_before = o.stderr.lock().unwrap().len();

    let addr = o.addr;
    let flood = std::thread::spawn(move || {
        (0..1500)
            .filter_map(|_| half_open(addr))
            .collect::<Vec<_>>()
    });
    // Scrape through the flood and past the header timeout of what it left open.
    let mut flood_ended: Option<Instant> = None;
    let mut scrapes = 0;
    while flood_ended.is_none_or(|t| t.elapsed() < HEADER_TIMEOUT + Duration::from_secs(1)) {
        if flood_ended.is_none() && flood.is_finished() {
            flood_ended = Some(Instant::now());
        }
        let limit = Duration::from_secs(3);
        let (code, body, _) = timed_get(addr, "/metrics", limit)
            .unwrap_or_else(|e| panic!("a scrape failed during the flood: {e}"));
        assert_eq!(code, 200);
        assert_eq!(
            metric(&body, "outrider_read_errors_total", &[("source", "proc")]),
            None
        );
        let (code, body, _) = timed_get(addr, "/api/v1/status", limit)
            .unwrap_or_else(|e| panic!("/api/v1/status failed during the flood: {e}"));
        assert_eq!(code, 200);
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let snap = &status["snapshot"];
        assert_eq!(snap["targets"][0]["up"], true, "{snap:#}");
        assert_eq!(snap["alerts"], serde_json::json!([]), "no alert: {snap:#}");
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = flood.join().unwrap();
    assert!(scrapes >= 10, "{scrapes} scrapes");
    assert_eq!(
        held.len(),
        1500,
        "every connection of the flood was accepted"
    );
    let body = o.scrape();
    let shed = metric(&body, "outrider_http_connections_shed_total", &[]).unwrap();
    // 1,500 came, at most 256 (less the scrapes') stayed until the header timeout.
    assert!(shed >= (1500 - 256) as f64, "shed {shed}");
    let open = metric(&body, "outrider_http_connections", &[]).unwrap();
    assert!(
        open <= 2.0,
        "the flood's connections timed out: {open} open"
    );
    let logged = lines_since(&o, logged_before);
    assert!(logged.len() <= 5, "{} log lines: {logged:#?}", logged.len());
}

/// One byte a second: the connection is closed once the header timeout passes.
#[test]
fn slowloris_is_closed_after_the_header_timeout() {
    let o = Outrider::start(&["--pid", &std::process::id().to_string()]);
    let mut s = TcpStream::connect(o.addr).unwrap();
    let start = Instant::now();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut bytes = request.iter().chain(std::iter::repeat(&b'a'));
    loop {
        if s.write_all(&[*bytes.next().unwrap()]).is_err()
            || closed_by_peer(&mut s, Duration::from_secs(1))
        {
            break;
        }
        assert!(
            start.elapsed() < HEADER_TIMEOUT * 3,
            "still open after {:?}",
            start.elapsed()
        );
    }
    let took = start.elapsed();
    assert!(
        took >= HEADER_TIMEOUT - Duration::from_millis(500)
            && took <= HEADER_TIMEOUT + Duration::from_secs(2),
        "closed after {took:?}; the header timeout is {HEADER_TIMEOUT:?}"
    );
}

/// A keep-alive connection left idle after its request is closed after the same
/// timeout, not held forever.
#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let o = Outrider::start(&["--pid", &std::process::id().to_string()]);
    let mut s = TcpStream::connect(o.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before the response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        !closed_by_peer(&mut s, HEADER_TIMEOUT - Duration::from_secs(1)),
        "kept open while within the timeout"
    );
    assert!(
        closed_by_peer(&mut s, Duration::from_secs(3)),
        "closed after it"
    );
}

/// 2,000 connections opened and dropped in a rush, every way a client can drop one:
/// nothing stays open, no fd leaks, the log stays quiet, scrapes answer.
#[test]
fn a_connection_storm_leaves_no_connection_or_fd_behind() {
    let pid = std::process::id().to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    // After a few ticks: the sampler keeps its cgroup files open between them.
    o.wait_status("a first sample", |s| s["ready"] == true);
    std::thread::sleep(Duration::from_secs(1));
    let fds_before = o.metric("process_open_fds", &[]).unwrap();
    let logged_before = o.stderr.lock().unwrap().len();
    let addr = o.addr;
    let storm: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..250 {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    match (t + i) % 3 {
                        0 => {}
                        1 => {
                            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
                        }
                        _ => {
                            let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                            let _ = s.read_to_end(&mut Vec::new());
                        }
                    }
                }
            })
        })
        .collect();
    for t in storm {
        t.join().unwrap();
    }
    let (code, _, took) = timed_get(addr, "/metrics", Duration::from_secs(3)).unwrap();
    assert_eq!(code, 200, "answered in {took:?}");
    // The scrape's own connection is the one left.
    o.wait_metric("outrider_http_connections", &[], |n| n <= 1.0);
    o.wait_metric("process_open_fds", &[], |n| n <= fds_before + 2.0);
    let logged = lines_since(&o, logged_before);
    assert!(logged.len() <= 2, "{logged:#?}");
}

/// Only GET and HEAD are served; a request head past 8 KiB is refused.
#[test]
fn other_methods_and_oversize_requests_are_refused() {
    let o = Outrider::start(&["--pid", &std::process::id().to_string()]);
    let exchange = |request: &[u8]| {
        let mut s = TcpStream::connect(o.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(request);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    for method in ["POST", "PUT", "DELETE"] {
        let r = exchange(
            format!("{method} /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi").as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.0 405"), "{method}: {r}");
        assert!(r.to_lowercase().contains("allow: get, head"), "{r}");
    }
    let head = exchange(b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(outrider::http::MAX_HEAD_BYTES * 2)
    );
    let r = exchange(big.as_bytes());
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // And the server still answers.
    assert_eq!(util::get(o.addr, "/healthz", None).0, 200);
}

/// A webhook receiver that accepts and never answers (its timeout is 10 s) while a
/// TargetDown notification is in flight: SIGTERM still ends Outrider within its
/// 1 s grace.
#[test]
fn sigterm_exits_within_the_grace_while_a_receiver_never_answers() {
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().map_while(Result::ok) {
            held.push(s);
            let _ = tx.send(());
        }
    });
    // The target: a process killed once Outrider has seen it, so TargetDown fires.
    let mut app = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = app.id().to_string();
    let toml = format!(
        "{}[lifecycle]\nshutdown_grace = \"1s\"\n[[receivers]]\nname = \"hang\"\nkind = \"webhook\"\n\
         url = \"http://127.0.0.1:{port}/hook\"\ngroup_wait = \"0s\"\ngroup_interval = \"0s\"\n",
        util::only_rule("TargetDown", "0s")
    );
    let mut o = Outrider::with_config(&toml, &[], &["--pid", &pid, "--interval", "200ms"]);
    o.wait_status("the target seen up", |s| {
        s["snapshot"]["targets"][0]["up"] == true
    });
    app.kill().unwrap();
    app.wait().unwrap();
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the notification reached the receiver");
    let start = Instant::now();
    o.group.signal(nix::sys::signal::Signal::SIGTERM);
    let exited = o.group.exited_within(Duration::from_secs(3));
    assert!(exited, "still running {:?} after SIGTERM", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(o.wait().code(), Some(0));
}

/// Outrider SIGKILLed in wrap mode: the kernel's parent-death signal (SIGTERM)
/// ends the app too, instead of leaving it running orphaned.
#[test]
fn the_app_dies_with_its_wrapper_even_on_sigkill() {
    let o = Outrider::start(&["--", "sleep", "300"]);
    let started = |l: &String| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["message"] == "started the app").then(|| v["pid"].as_i64())?
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let app_pid = loop {
        if let Some(pid) = o.stderr.lock().unwrap().iter().find_map(started) {
            break pid as i32;
        }
        assert!(Instant::now() < deadline, "no 'started the app' line");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!gone_within(app_pid, Duration::ZERO), "the app runs");
    o.group.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(
        gone_within(app_pid, Duration::from_secs(2)),
        "the app (pid {app_pid}) outlived its wrapper"
    );
}

/// A trace file that cannot be opened is bad input: exit 64 with the path, before
/// the port is bound (the port is held here, so binding first would fail with
/// "cannot listen" instead).
#[test]
fn a_trace_path_that_cannot_be_written_exits_64_before_binding() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = util::group::output(
        Command::new(BIN)
            .args(["--listen", &addr, "--record", "/nonexistent-dir/trace.csv"])
            .args(["--pid", &std::process::id().to_string()]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains(
            "cannot open the trace file /nonexistent-dir/trace.csv: No such file or directory"
        ),
        "{err}"
    );
    assert!(!err.contains("listen"), "{err}");
}

/// `--log -` with a stdin that never closes: the read of stdin blocks a thread that
/// cannot be cancelled, and the runtime used to wait for it forever at exit. Now
/// SIGTERM ends Outrider within its grace.
#[test]
fn sigterm_exits_within_the_grace_while_stdin_stays_open() {
    // Stdin is a FIFO opened for reading and writing: it never ends, nothing comes.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stdin");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut cmd = Command::new("sh");
    let script = format!("exec {BIN} \"$@\" <> {}", fifo.display());
    cmd.args(["-c", &script, "sh"]);
    let mut o = Outrider::start_with(
        cmd,
        &["--log", "-", "--pid", &std::process::id().to_string()],
    );
    o.wait_status("a first sample", |s| s["ready"] == true);
    let start = Instant::now();
    o.group.signal(nix::sys::signal::Signal::SIGTERM);
    let exited = o.group.exited_within(Duration::from_secs(5));
    assert!(exited, "still running {:?} after SIGTERM", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(o.wait().code(), Some(0));
}
