//! Log files followed by a running Outrider: counted exactly through rotations,
//! classified into events, resumed from the checkpoint after a restart.

mod util;

use std::io::Write;
use std::time::Duration;

use util::Outrider;

/// A temp dir with `logs/` (followed as `logs/*.log`, stream "app") and `state/`
/// (the offset checkpoint), and the config text saying so.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let config = format!(
        "[log_options]\nstate_dir = {:?}\n[[logs]]\nname = \"app\"\npath = {:?}\n",
        state.display().to_string(),
        logs.join("*.log").display().to_string()
    );
    (dir, logs, config)
}

/// Outrider following the logs of `config`, watching pid 1 every 200 ms.
fn start(config: &str) -> Outrider {
    Outrider::with_config(config, &[], &["--interval", "200ms", "--pid", "1"])
}

/// Appends lines `from..to` ("line N", every 50th an ERROR) to `path`.
fn write_lines(path: &std::path::Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        if i % 50 == 0 {
            writeln!(f, "ERROR line {i} failed").unwrap();
        } else {
            writeln!(f, "INFO line {i}").unwrap();
        }
    }
}

#[test]
fn a_rotated_log_is_counted_exactly_and_resumed_after_a_restart() {
    // `_dir` keeps the temp dir alive until the end of the test.
    let (_dir, logs, cfg) = setup();
    let log = logs.join("app.log");
    let stream = [("stream", "app")];
    let errors = [("stream", "app"), ("severity", "error")];

    // An existing (empty) file is followed from its end; the files that replace it
    // after each rotation are read from their beginning.
    std::fs::File::create(&log).unwrap();
    let mut o = start(&cfg);
    // Rotate by rename and create five times, letting the follower see each file first.
    let mut written = 0;
    for round in 0..5 {
        write_lines(&log, written, written + 400);
        written += 400;
        o.wait_metric("outrider_log_lines_total", &stream, |v| v == written as f64);
        std::fs::rename(&log, logs.join(format!("app.log.{round}.rotated"))).unwrap();
    }
    write_lines(&log, written, written + 100);
    written += 100;
    o.wait_metric("outrider_log_lines_total", &stream, |v| v == written as f64);
    assert_eq!(
        o.metric("outrider_log_events_total", &errors),
        Some((written / 50) as f64)
    );
    assert!(o.metric("outrider_log_rotations_total", &stream).unwrap() >= 5.0);

    // Stop, write more while stopped, start again: only the new lines are read.
    let status = o.terminate();
    assert!(status.success(), "{status:?}");
    write_lines(&log, written, written + 150);
    let o = start(&cfg);
    o.wait_metric("outrider_log_lines_total", &stream, |v| v == 150.0);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        o.metric("outrider_log_lines_total", &stream),
        Some(150.0),
        "nothing read twice"
    );
    assert_eq!(o.metric("outrider_log_events_total", &errors), Some(3.0));
}

#[test]
fn cri_partial_lines_through_rotations_count_once() {
    // `_dir` keeps the temp dir alive until the end of the test.
    let (_dir, logs, cfg) = setup();
    // kubelet style: 0.log, then 1.log after a rotation, each line in CRI format,
    // every third one split into a partial (P) piece and its final (F) piece.
    let ts = "2026-11-23T20:00:00.000000000Z";
    let stream = [("stream", "app")];
    let first = logs.join("0.log");
    std::fs::File::create(&first).unwrap();
    let o = start(&cfg);
    let mut expected = 0u64;
    let mut errors = 0u64;
    for (file, range) in [(first, 0..300u64), (logs.join("1.log"), 300..700u64)] {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        for i in range {
            let msg = if i % 25 == 0 {
                errors += 1;
                format!("ERROR request {i} failed")
            } else {
                format!("INFO request {i} served")
            };
            if i % 3 == 0 {
                let (a, b) = msg.split_at(msg.len() / 2);
                writeln!(f, "{ts} stdout P {a}").unwrap();
                writeln!(f, "{ts} stdout F {b}").unwrap();
            } else {
                writeln!(f, "{ts} stderr F {msg}").unwrap();
            }
            expected += 1;
        }
        drop(f);
        o.wait_metric("outrider_log_lines_total", &stream, |v| {
            v == expected as f64
        });
    }
    std::thread::sleep(Duration::from_millis(1500)); // idle flush of the last event
    assert_eq!(
        o.metric("outrider_log_lines_total", &stream),
        Some(expected as f64)
    );
    assert_eq!(
        o.metric(
            "outrider_log_events_total",
            &[("stream", "app"), ("severity", "error")]
        ),
        Some(errors as f64)
    );
}

/// `scripts/gen_log.py SIZE --seed=N`: the log and the generator's own counts.
fn generated_mix(size: &str, seed: u32) -> (Vec<u8>, serde_json::Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen_log.py");
    let out = std::process::Command::new("python3")
        .args([script, size, "-", &format!("--seed={seed}")])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("python3 runs scripts/gen_log.py");
    assert!(out.status.success(), "gen_log.py failed: {:?}", out.status);
    let truth = serde_json::from_slice(&out.stderr).expect("gen_log.py summary on stderr");
    (out.stdout, truth)
}

#[test]
fn a_scan_of_the_generated_mix_gives_the_generators_counts() {
    // The realistic mix of the throughput figures (docs/performance.md): text, JSON,
    // logfmt and access lines, traces of four runtimes. Every count must match, so a
    // faster scan is also a correct one.
    let classifier = outrider::logs::classify::Classifier::default();
    for seed in [42, 7, 2024] {
        let (log, truth) = generated_mix("3M", seed);
        let counts = outrider::logs::scan::scan(&log[..], &classifier).unwrap();
        let mut counts = serde_json::to_value(counts).unwrap();
        counts.as_object_mut().unwrap().remove("seconds");
        assert_eq!(counts, truth, "seed {seed}");
    }
}
