//! Wrap mode: output passes through intact, signals reach the app, exit codes come back.

mod util;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{metric, Group, Outrider, BIN};

#[test]
fn the_exit_code_comes_back() {
    for code in [0, 3, 7] {
        let out = util::group::output(
            Command::new(BIN)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--",
                    "sh",
                    "-c",
                    &format!("exit {code}"),
                ])
                .env("OUTRIDER_LOG", "warn"),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_missing_command_is_a_clear_failure() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--", "/nonexistent/app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start \"/nonexistent/app\""));
}

#[test]
fn sigterm_is_forwarded_and_the_signal_exit_code_returned() {
    let mut o = Outrider::start(&[
        "--interval",
        "100ms",
        "--",
        BIN,
        "demo-app",
        "--log-rate",
        "0",
        "--leak-kib-per-sec",
        "0",
    ]);
    o.wait_metric("outrider_target_up", &[("target", "outrider")], |v| {
        v == 1.0
    });
    let t = Instant::now();
    let status = o.terminate();
    // The demo app dies of SIGTERM: 128 + 15.
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let log = o.stderr.lock().unwrap().join("\n");
    assert!(log.contains("forwarding signal to the app"), "{log}");
}

#[test]
fn sigint_and_hup_reach_a_shell_app() {
    // A shell that traps the signal and exits with a code of its own choosing.
    let script =
        "trap 'exit 42' INT; trap 'exit 43' HUP; echo started; while :; do sleep 0.05; done";
    for (sig, code) in [("INT", 42), ("HUP", 43)] {
        let mut o = Outrider::start(&["--interval", "100ms", "--", "sh", "-c", script]);
        o.wait_metric("outrider_log_lines_total", &[("stream", "stdout")], |v| {
            v == 1.0
        });
        util::signal(o.pid(), sig);
        let status = o.wait();
        assert_eq!(status.code(), Some(code), "after SIG{sig}");
    }
}

#[test]
fn a_hundred_thousand_lines_pass_through_intact_and_are_counted() {
    let n = 100_000u64;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut group = Group::spawn(
        Command::new(BIN)
            .args([
                "--listen",
                &listen,
                "--interval",
                "100ms",
                "--",
                BIN,
                "demo-app",
            ])
            .args([
                "--lines",
                &n.to_string(),
                "--exit-after",
                "1.5",
                "--exit-code",
                "5",
            ])
            .args([
                "--log-rate",
                "0",
                "--leak-kib-per-sec",
                "0",
                "--hold-mib",
                "0",
            ])
            .env("OUTRIDER_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut out = group.child().stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).unwrap();
        buf
    });
    let mut err = group.child().stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut buf = String::new();
        err.read_to_string(&mut buf).unwrap();
        buf
    });
    // Scrape while the app lives (it exits after 1.5 s).
    let addr = listen.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut counted = None;
    while Instant::now() < deadline && counted != Some(n as f64) {
        if let Ok(s) = std::net::TcpStream::connect(addr) {
            drop(s);
            counted = metric(
                &util::get(addr, "/metrics", None).1,
                "outrider_log_lines_total",
                &[("stream", "stdout")],
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = group.wait();
    assert_eq!(status.code(), Some(5));
    assert_eq!(counted, Some(n as f64));
    let got = reader.join().unwrap();
    let mut want = Vec::new();
    for i in 1..=n {
        want.extend_from_slice(format!("line {i} of {n}\n").as_bytes());
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "stdout differs from what the app wrote");
    // With Outrider's own logs off, stderr is exactly the app's: its ready line.
    let e = err_reader.join().unwrap();
    assert!(e.starts_with("{\"event\":\"ready\""), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn the_apps_output_is_classified_into_events() {
    let script = r#"sleep 0.5; printf 'INFO started\nERROR request failed\nTraceback (most recent call last):\n  File "app.py", line 3, in handle\n    raise ValueError("bad")\nValueError: bad\n127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /x HTTP/1.1" 503 12\nall good, errors=0\n'; sleep 3"#;
    let o = Outrider::start(&["--interval", "100ms", "--", "sh", "-c", script]);
    let out = [("stream", "stdout")];
    o.wait_metric("outrider_log_lines_total", &out, |v| v == 8.0);
    let ev = |sev: &str| {
        o.wait_metric(
            "outrider_log_events_total",
            &[("stream", "stdout"), ("severity", sev)],
            |_| true,
        )
    };
    // Head line and traceback are one error event (flushed after a quiet spell).
    let deadline = Instant::now() + Duration::from_secs(10);
    while ev("error") != 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ev("error"), 1.0);
    assert_eq!(ev("info"), 1.0);
    assert_eq!(
        o.metric(
            "outrider_http_responses_total",
            &[("stream", "stdout"), ("code_class", "5xx")]
        ),
        Some(1.0)
    );
    // The rate is computed on the tick after the event was counted.
    o.wait_metric("outrider_log_errors_per_minute", &[], |v| v > 0.0);
    let body = o.scrape();
    // One error among four events (info, error, and two of unknown severity).
    assert_eq!(
        metric(&body, "outrider_log_error_ratio", &[]),
        Some(0.25),
        "{body}"
    );
    util::promtool_check(&body);
}
