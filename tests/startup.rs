//! Start-up and shutdown of a real wrapped app (disposability): a Python app that
//! takes 2 s to listen, writes its first access line 0.5 s later, and takes 1.5 s to
//! exit after SIGTERM; and one that ignores SIGTERM and is killed after
//! `disposability.kill_after`.
//!
//! The sampling tick is 100 ms and connections are scanned at their default 15 s:
//! the start-up is timed to the tick only because a new start without a listener is
//! scanned on every tick.

mod util;

use std::process::Command;
use std::time::Instant;

use util::Outrider;

/// `app.py MODE`: MODE `exit` exits 1.5 s after SIGTERM, `ignore` ignores it.
const APP_PY: &str = r#"
import os, signal, socket, sys, time

mode = sys.argv[1]

def on_term(sig, frame):
    if mode == "ignore":
        return
    time.sleep(1.5)
    sys.exit(0)

def sleep_until(seconds_after_start):
    # The interpreter's own start-up counts: time from the process' start.
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    time.sleep(max(0.0, seconds_after_start - age))

signal.signal(signal.SIGTERM, on_term)
sleep_until(2.0)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
sleep_until(2.5)
now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
print('127.0.0.1 - - [%s] "GET / HTTP/1.1" 200 2 "-" "test" rt=0.001' % now, flush=True)
while True:
    time.sleep(0.05)
"#;

/// The Python interpreter itself (`python3` may be a pyenv shim script).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Wraps `app.py MODE` with a 100 ms tick, killed `kill_after` after SIGTERM.
fn wrap(mode: &str, kill_after: &str) -> Outrider {
    let config = format!(
        "[sampling]\ninterval = \"100ms\"\n[disposability]\nkill_after = \"{kill_after}\"\n"
    );
    let config = config.as_str();
    Outrider::with_config(config, &[], &["--", &python(), "-c", APP_PY, mode])
}

/// The target's name and its start-up figures once both are measured.
fn startup(o: &Outrider) -> (String, serde_json::Value) {
    let status = o.wait_status("start-up measured", |s| {
        let v = &s["snapshot"]["targets"][0]["verdicts"]["startup"];
        v["listening_seconds"].is_f64() && v["first_request_seconds"].is_f64()
    });
    let target = &status["snapshot"]["targets"][0];
    (
        target["name"].as_str().unwrap().to_string(),
        target["verdicts"]["startup"].clone(),
    )
}

/// The JSON of Outrider's last log line.
fn last_line(o: &Outrider) -> serde_json::Value {
    let lines = o.stderr.lock().unwrap().clone();
    let last = lines.last().cloned().unwrap_or_default();
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {lines:#?}"))
}

#[test]
fn start_up_and_a_graceful_shutdown_are_timed() {
    let mut o = wrap("exit", "3s");
    let (name, s) = startup(&o);
    let listening = s["listening_seconds"].as_f64().unwrap();
    let first = s["first_request_seconds"].as_f64().unwrap();
    eprintln!("start-up: listening after {listening:.3} s, first request after {first:.3} s");
    assert!((listening - 2.0).abs() <= 0.3, "{s}");
    assert!((first - 2.5).abs() <= 0.3, "{s}");
    assert_eq!(s["slow"], false);
    let labels = [("target", name.as_str()), ("until", "listening")];
    let metric = o.metric("outrider_target_startup_seconds", &labels);
    assert!((metric.unwrap() - listening).abs() < 1e-9, "{metric:?}");
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    assert!(summary.contains("Start-up: listening "), "{summary}");

    let started = Instant::now();
    let status = o.terminate();
    let took = started.elapsed();
    let last = last_line(&o);
    eprintln!("outrider exited {took:?} after SIGTERM; last line {last}");
    assert_eq!(status.code(), Some(0), "the app's own exit code");
    let seconds = last["shutdown_seconds"].as_f64().unwrap();
    assert!((seconds - 1.5).abs() <= 0.3, "{last}");
    assert_eq!(last["exited_by"], "exit", "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("the app exited 1."),
        "{last}"
    );
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut o = wrap("ignore", "1s");
    startup(&o);
    let status = o.terminate();
    let last = last_line(&o);
    eprintln!("last line {last}");
    assert_eq!(status.code(), Some(128 + 9), "killed: {last}");
    assert_eq!(last["exited_by"], "kill", "{last}");
    let seconds = last["shutdown_seconds"].as_f64().unwrap();
    assert!((seconds - 1.0).abs() <= 0.3, "kill_after is 1 s: {last}");
    assert_eq!(last["level"], "WARN", "{last}");
    assert!(
        last["message"]
            .as_str()
            .unwrap_or_default()
            .contains("was killed: requests in flight were dropped"),
        "{last}"
    );
}
