//! The labelled trace corpus: every verdict as labelled, at every point in time
//! (a leak-free trace must never raise a leak verdict, not only at the end), and
//! `outrider replay` as a user runs it.

mod util;

use std::process::Command;

use outrider::analysis::trace;

#[test]
fn every_labelled_trace_gets_its_verdicts() {
    let labels = util::traces::labels();
    assert!(labels.len() >= 30, "the corpus has {} traces", labels.len());
    assert!(labels.keys().filter(|k| k.starts_with("real-")).count() >= 2);
    let mut failures = Vec::new();
    for (name, label) in &labels {
        // Per-trace analysis settings (the real recordings are minutes long).
        let cfg = util::traces::settings(label);
        let obs = util::traces::load(name);
        let s = trace::replay(&obs, &cfg);
        let onset = label["leak_onset"].as_f64().unwrap_or(0.0) + obs[0].t;
        // The rate says which of issue 17's latency goals a memory leak falls
        // under (`scripts/detection_quality.py` prints the medians per rate).
        let rate = label["memory_leak_rate"].as_f64();
        if label["memory_leak"] == true && !rate.is_some_and(|r| r > 0.0) {
            failures.push(format!("{name}: a memory leak without memory_leak_rate"));
        }
        for (kind, at) in [
            ("memory", s.memory_leak_first_detected_at),
            ("fd", s.fd_leak_first_detected_at),
        ] {
            let want = label[format!("{kind}_leak")].as_bool().unwrap();
            match (want, at) {
                (true, None) => failures.push(format!("{name}: {kind} leak missed")),
                (false, Some(t)) => {
                    failures.push(format!("{name}: false {kind} leak alarm at {t}"))
                }
                (true, Some(t)) if t < onset => failures.push(format!(
                    "{name}: {kind} leak found {:.0} s before its onset",
                    onset - t
                )),
                (true, Some(t)) => {
                    if let Some(max) = label["max_latency"].as_f64() {
                        if t - onset > max {
                            failures.push(format!(
                                "{name}: {kind} leak found {:.0} s after onset (goal {max})",
                                t - onset
                            ));
                        }
                    }
                }
                (false, None) => {}
            }
        }
        for (res, got) in [("cpu", s.cpu.allocation), ("memory", s.memory.allocation)] {
            if let Some(want) = label[format!("{res}_allocation")].as_str() {
                if want != got {
                    failures.push(format!("{name}: {res} allocation {got}, labelled {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replay_prints_the_summary_and_rejects_bad_traces() {
    let out = Command::new(util::BIN)
        .args([
            "replay",
            util::traces::dir()
                .join("syn-linear-1.0mib-min.csv")
                .to_str()
                .unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["memory_leak"], true);
    assert!(v["memory_leak_first_detected_at"].as_f64().is_some());
    let rate = v["memory_growth_bytes_per_second"].as_f64().unwrap();
    assert!(
        (rate - 1048576.0 / 60.0).abs() < 0.1 * 1048576.0 / 60.0,
        "{rate}"
    );
    assert_eq!(v["fd_leak"], false);
    assert!(v["cpu"]["allocation"].is_string());
    assert!(v["memory"]["peak_bytes"].as_f64().is_some());

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "timestamp,rss_bytes\n0,100\n10,oops\n").unwrap();
    let out = Command::new(util::BIN)
        .args(["replay", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, column rss_bytes"), "{err}");
    let out = Command::new(util::BIN)
        .args(["replay", "/nonexistent.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66));
}

#[test]
fn record_writes_what_replay_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.csv");
    let rec = path.to_str().unwrap();
    let mut o = util::Outrider::start(&[
        "--interval",
        "100ms",
        "--record",
        rec,
        "--",
        util::BIN,
        "demo-app",
        "--log-rate",
        "0",
    ]);
    o.wait_metric("outrider_target_up", &[("target", "outrider")], |v| {
        v == 1.0
    });
    // Ticks come every 100 ms, but a loaded machine may run fewer: wait for five
    // rows on disk (header + 5 lines) rather than a fixed time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&path).map_or(0, |t| t.lines().count()) < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 5 rows in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SIGTERM is forwarded; the app's death by it (128 + 15) is the exit status.
    let exit = o.terminate();
    assert_eq!(exit.code(), Some(143), "{exit:?}");
    let obs = recorded(&path);
    assert!(obs.len() >= 5, "{} rows", obs.len());
    assert!(obs
        .iter()
        .all(|r| r.rss_bytes > 1e6 && r.open_fds.unwrap() >= 3.0));
    assert!(obs.windows(2).all(|w| w[1].t > w[0].t));
}

/// A process killed gives its memory back before it turns `Z`, and its `stat`
/// reads 0 resident bytes meanwhile (a 3 GiB process for 0.23 s): no row may
/// record it so. Without `PF_EXITING` read, four runs of four of this test
/// recorded rows of 0 bytes at 100-ms ticks.
#[test]
fn a_process_tearing_down_is_not_recorded_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.csv");
    let mut o = util::Outrider::start(&[
        "--interval",
        "100ms",
        "--record",
        path.to_str().unwrap(),
        "--",
        util::BIN,
        "demo-app",
        "--log-rate",
        "0",
        "--hold-mib",
        "3072",
    ]);
    o.wait_metric(
        "outrider_target_resident_memory_bytes",
        &[("target", "outrider")],
        |v| v > 3e9,
    );
    let child = Command::new("pgrep")
        .args(["-P", &o.pid().to_string()])
        .output()
        .unwrap();
    let child: i32 = String::from_utf8_lossy(&child.stdout)
        .trim()
        .parse()
        .unwrap();
    util::signal(child, "KILL");
    let exit = o.wait();
    assert_eq!(exit.code(), Some(137), "{exit:?}");
    let obs = recorded(&path);
    // From the first row that holds the 3 GiB (rows before are its start-up).
    let held = obs
        .iter()
        .position(|r| r.rss_bytes > 3e9)
        .expect("a row at 3 GiB");
    let least = obs[held..]
        .iter()
        .map(|r| r.rss_bytes)
        .fold(f64::INFINITY, f64::min);
    assert!(least > 3e9, "a row of {least} bytes in {} rows", obs.len());
}

/// The rows `--record` wrote to `path`.
fn recorded(path: &std::path::Path) -> Vec<outrider::analysis::Observation> {
    trace::read(
        std::io::BufReader::new(std::fs::File::open(path).unwrap()),
        None,
    )
    .unwrap()
}
