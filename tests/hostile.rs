//! Hostile and failing log input against the real binary (#16): an unreadable log
//! is counted and named, not mistaken for a quiet app; a huge line, binary junk and
//! a copy far ahead are read within their bounds without losing the count. Memory
//! figures are measured by `scripts/bench_hostile_logs.py`, not here.

mod util;

use std::io::Write;
use std::time::Duration;

use util::Outrider;

/// A log whose every open fails: `/proc/PID/mem` of a live process is a regular
/// file whose read at offset 0 is an I/O error, for root too (file permissions
/// would not stop root).
#[test]
fn an_unreadable_log_is_counted_and_named_on_the_status_page() {
    let mut app = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/mem", app.id());
    let text =
        format!("[sampling]\ninterval = \"200ms\"\n[[logs]]\nname = \"app\"\npath = {path:?}\n");
    let outrider = Outrider::with_config(&text, &[], &[]);
    let errors = outrider.wait_metric("outrider_read_errors_total", &[("source", "log")], |v| {
        v >= 1.0
    });
    let status = outrider.wait_status("the failing log named", |s| {
        s["snapshot"]["log_read_failures"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    });
    let failure = &status["snapshot"]["log_read_failures"][0];
    assert_eq!(failure["stream"], "app", "{status:#}");
    assert_eq!(failure["path"], path.as_str(), "{status:#}");
    assert!(
        failure["error"].as_str().unwrap().contains("os error"),
        "{status:#}"
    );
    let named = format!("log stream app: cannot read {path}");
    let page = util::get(outrider.addr, "/", None).1;
    assert!(page.contains(&named), "{page}");
    let summary = util::get(outrider.addr, "/summary.txt", None).1;
    assert!(summary.contains(&named), "{summary}");
    // Counted once, not once per poll (4 a second).
    std::thread::sleep(Duration::from_secs(1));
    let again = outrider
        .metric("outrider_read_errors_total", &[("source", "log")])
        .unwrap();
    assert_eq!(
        again, errors,
        "a failing file counts once until it reads again"
    );
    let _ = app.kill();
    let _ = app.wait();
}

/// `outrider report` names the failing log too, in its text and JSON, and counts
/// it as needing attention (exit 1): its stream's counts lack that file's lines.
#[test]
fn a_report_names_an_unreadable_log_and_needs_attention() {
    let mut app = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = app.id().to_string();
    let path = format!("/proc/{pid}/mem");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("outrider.toml");
    std::fs::write(
        &config,
        format!("[[logs]]\nname = \"app\"\npath = {path:?}\n"),
    )
    .unwrap();
    let report = |json: bool| {
        let mut cmd = std::process::Command::new(util::BIN);
        cmd.args(["report", "--for", "2s", "--interval", "200ms", "--config"])
            .arg(&config)
            .args(["--pid", &pid]);
        if json {
            cmd.arg("--json");
        }
        util::group::output(&mut cmd)
    };
    let named = format!("log stream app: cannot read {path}");
    let out = report(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.matches(&named).count(),
        2,
        "in the output and attention: {text}"
    );
    let out = report(true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &v["streams"][0];
    assert_eq!(stream["name"], "app", "{v:#}");
    assert_eq!(stream["unreadable"][0]["path"], path.as_str(), "{v:#}");
    assert!(v["attention"].to_string().contains(&named), "{v:#}");
    let _ = app.kill();
    let _ = app.wait();
}

/// A line far past `max_line_bytes` with no newline, then binary junk, then normal
/// lines: the huge line is one oversized line, cut; every later line is counted.
#[test]
fn a_huge_line_and_binary_junk_are_counted_and_followed_by_good_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, b"").unwrap();
    let text = format!(
        "[sampling]\ninterval = \"200ms\"\n[[logs]]\nname = \"app\"\npath = {:?}\n",
        log.display().to_string()
    );
    let outrider = Outrider::with_config(&text, &[], &[]);
    let mut w = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..64 {
        w.write_all(&chunk).unwrap();
    }
    w.write_all(b"\n").unwrap();
    let junk: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .filter(|b| *b != b'\n')
        .collect();
    w.write_all(&junk).unwrap();
    w.write_all(b"\nERROR after the junk\nINFO last\n").unwrap();
    let total = (64 * 1024 * 1024 + 1 + junk.len() + 31) as f64;
    outrider.wait_metric("outrider_log_bytes_total", &[("stream", "app")], |v| {
        v >= total
    });
    let lines = outrider
        .metric("outrider_log_lines_total", &[("stream", "app")])
        .unwrap();
    assert_eq!(lines, 4.0, "the huge line, the junk, two lines");
    let oversized = outrider
        .metric("outrider_log_oversized_lines_total", &[("stream", "app")])
        .unwrap();
    assert_eq!(oversized, 2.0, "the huge line and the junk are past 64 KiB");
    let errors = outrider
        .metric(
            "outrider_log_events_total",
            &[("stream", "app"), ("severity", "error")],
        )
        .unwrap();
    assert!(errors >= 1.0, "the error after the junk is seen");
}
