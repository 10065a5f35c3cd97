//! `outrider report`: the verdict for humans and CI, with its exit status.

mod util;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use util::{DemoApp, BIN};

/// On a loaded test machine every app waits for a CPU as long as it runs, which is
/// rightly "under"; these tests are about other verdicts.
const CALM: [(&str, &str); 1] = [("OUTRIDER_ANALYSIS__CPU_WAIT_SHARE", "1000")];

fn report(args: &[&str], env: &[(&str, &str)]) -> (Output, serde_json::Value) {
    let out = util::group::output(
        Command::new(BIN)
            .arg("report")
            .args(args)
            .envs(CALM.iter().chain(env).copied()),
    );
    let json = if args.contains(&"--json") {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    } else {
        serde_json::Value::Null
    };
    (out, json)
}

#[test]
fn a_leaking_app_needs_attention() {
    let (out, v) = report(
        &[
            "--for",
            "6s",
            "--interval",
            "100ms",
            "--json",
            "--",
            BIN,
            "demo-app",
            "--leak-kib-per-sec",
            "2048",
            "--log-rate",
            "0",
        ],
        &[("OUTRIDER_ANALYSIS__MEMORY_MIN_GROWTH", "2Mi")],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = &v["targets"][0];
    assert_eq!(t["verdicts"]["memory_leak"]["suspected"], true, "{v:#}");
    assert!(
        v["attention"].to_string().contains("memory leak suspected"),
        "{v:#}"
    );
    // The app's own output went to stderr; stdout holds the report alone.
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"event\":\"ready\""));
}

#[test]
fn a_quiet_app_is_fine_and_the_text_says_so() {
    let (out, _) = report(
        &[
            "--for",
            "3s",
            "--interval",
            "200ms",
            "--",
            BIN,
            "demo-app",
            "--leak-kib-per-sec",
            "0",
            "--fd-rate",
            "0",
            "--log-rate",
            "0",
            "--cpu",
            "0",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Nothing needs attention."), "{text}");
    assert!(text.contains("CPU usage: p50"), "{text}");
    assert!(text.contains("resources:\n"), "{text}");
    // Not a terminal: no progress bar.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
}

#[test]
fn an_app_that_exits_early_ends_the_report_early() {
    let t = Instant::now();
    let (out, v) = report(
        &[
            "--for",
            "60s",
            "--json",
            "--",
            "sh",
            "-c",
            "sleep 1; exit 3",
        ],
        &[],
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["app_exit_code"], 3);
    assert!(
        v["attention"].to_string().contains("exited with code 3"),
        "{v:#}"
    );
    // It exited (the text said "running" before); its figures are those of its
    // last living sample.
    assert_eq!(v["targets"][0]["up"], false, "{v:#}");
    assert!(v["targets"][0]["processes"].as_u64().unwrap() >= 1, "{v:#}");
}

#[test]
fn a_watched_pid_that_exits_ends_the_report() {
    let app = DemoApp::quiet(&["--exit-after", "1.5"]);
    let pid = app.pid.to_string();
    let t = Instant::now();
    let (out, v) = report(&["--for", "60s", "--pid", &pid, "--json"], &[]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(v["samples"].as_u64().unwrap() >= 1);
}

#[test]
fn on_a_terminal_there_is_a_progress_bar() {
    // util-linux's script(1) gives the report a pseudo-terminal.
    let cmd = format!("{BIN} report --for 2s --interval 200ms -- {BIN} demo-app --log-rate 0");
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .envs(CALM)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\r["), "no progress bar in: {text:?}");
    assert!(text.contains("Outrider report:"), "{text}");
}

#[test]
fn no_target_is_a_usage_error_and_a_bad_command_an_error() {
    let (out, _) = report(&["--for", "1s"], &[]);
    assert_eq!(out.status.code(), Some(64));
    let (out, _) = report(&["--for", "1s", "--", "/nonexistent/app"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // A pid that is not there: said at once (not after the 10 min), and the
    // report does not say "Nothing needs attention".
    let gone = i32::MAX.to_string();
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args(["report", "--pid", &gone, "--for", "10m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no process {gone}")), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
