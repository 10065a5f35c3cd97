//! Log files followed by a running Outrider: counted exactly through rotations,
//! classified into events, resumed from the checkpoint after a restart.

mod util;

use std::io::Write;
use std::time::Duration;

use util::Outrider;

fn config(dir: &std::path::Path, state: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("outrider.toml");
    std::fs::write(
        &path,
        format!(
            "[log_options]\nstate_dir = {:?}\n[[logs]]\nname = \"app\"\npath = {:?}\n",
            state.display().to_string(),
            dir.join("logs/*.log").display().to_string()
        ),
    )
    .unwrap();
    path
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
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    let cfg = config(dir.path(), &state);
    let log = logs.join("app.log");
    let stream = [("stream", "app")];
    let errors = [("stream", "app"), ("severity", "error")];

    // An existing (empty) file is followed from its end; the files that replace it
    // after each rotation are read from their beginning.
    std::fs::File::create(&log).unwrap();
    let mut o = Outrider::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--interval",
        "200ms",
        "--pid",
        "1",
    ]);
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
    o.terminate();
    write_lines(&log, written, written + 150);
    let o = Outrider::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--interval",
        "200ms",
        "--pid",
        "1",
    ]);
    o.wait_metric("outrider_log_lines_total", &stream, |v| v == 150.0);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        o.metric("outrider_log_lines_total", &stream),
        Some(150.0),
        "nothing read twice"
    );
    assert_eq!(o.metric("outrider_log_events_total", &errors), Some(3.0));
}
