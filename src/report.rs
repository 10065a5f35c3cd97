//! `outrider report`: watch an app for a set time, then print what a developer wants
//! to know (usage, peaks, trends, output, verdicts, the resources block) for a human
//! or, with `--json`, for a machine. The exit status says whether anything needs
//! attention, so it fits in a CI job: 0 fine, 1 attention, 2 error.
//!
//! It is a run without the HTTP server: the same sampler and analysis, with the
//! leak window set to the report's duration (a verdict then usually needs half of it) and
//! the sizing verdict's minimum data capped at half of it too.

use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::analysis::sizing::cores;
use crate::analysis::TargetStatus;
use crate::analysis::Verdicts;
use crate::config::Config;
use crate::run::{run_with, streams_for, Mode};
use crate::state::{LogReadFailure, Shared, Snapshot};
use crate::words;

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub duration_seconds: f64,
    pub samples: u64,
    pub targets: Vec<TargetReport>,
    pub streams: Vec<StreamReport>,
    /// The wrapped app's exit code, when it exited during the report.
    pub app_exit_code: Option<i32>,
    pub attention: Vec<String>,
    /// Request rate and response times from the access lines, when there were any.
    pub requests: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    pub up: bool,
    /// Whether any sample saw it alive; when not, its figures are not readings
    /// (it ended before the first one) and the text says so.
    pub seen_alive: bool,
    pub processes: u64,
    pub restarts: u64,
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub threads: u64,
    pub verdicts: Option<Verdicts>,
    /// The group's pre-fork server, when it has one.
    pub workers: Option<crate::sample::workers::Workers>,
    /// Requests per CPU-second and the worker hint.
    pub capacity: Option<crate::analysis::capacity::Capacity>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub name: String,
    pub lines: u64,
    pub bytes: u64,
    /// Its log files that could not be read at the end: their lines are missing
    /// from the counts (also a point of attention).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<LogReadFailure>,
}

/// Each stream's counts, with the files of it failing in `snap`.
fn stream_reports(shared: &Shared, snap: &Snapshot) -> Vec<StreamReport> {
    shared
        .streams()
        .iter()
        .map(|s| StreamReport {
            name: s.name.clone(),
            lines: s.lines(),
            bytes: s.bytes(),
            unreadable: snap
                .log_read_failures
                .iter()
                .filter(|f| f.stream == s.name)
                .cloned()
                .collect(),
        })
        .collect()
}

/// A report's duration is its leak window, and caps the sizing verdict's minimum
/// data at half of it (README: a leak verdict usually needs half the window).
fn fit_windows(config: &mut Config, secs: f64) {
    for t in [
        &mut config.analysis.memory,
        &mut config.analysis.fds,
        &mut config.analysis.threads,
    ] {
        t.window = secs;
    }
    config.analysis.sizing.min_data = config.analysis.sizing.min_data.min(secs / 2.0);
}

/// Watches for `duration` (or until the app exits, or Ctrl-C) and reports.
pub async fn report(mut config: Config, mode: Mode, duration: Duration) -> anyhow::Result<Report> {
    fit_windows(&mut config, duration.as_secs_f64());
    let wrapping = matches!(mode, Mode::Wrap(_));
    let shared = Arc::new(Shared::new(streams_for(&config, &mode)));
    let started = Instant::now();
    let samples = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    let last_up = Arc::new(std::sync::Mutex::new(None));
    let watcher = tokio::spawn(progress(
        shared.clone(),
        duration,
        started,
        samples.clone(),
        gone_tx,
        last_up.clone(),
    ));
    let signals = crate::wrap::Forwarder::shutdown_signals();
    let time_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = time_up.clone();
    let shutdown = async move {
        tokio::select! {
            _ = tokio::time::sleep(duration) => flag.store(true, std::sync::atomic::Ordering::Relaxed),
            _ = gone_rx => {}
            _ = signals, if !wrapping => {}
        }
    };
    let outcome = run_with(config, mode, None, shared.clone(), shutdown).await;
    watcher.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let outcome = outcome?;

    // The figures of the last sample in which the app was alive: after it exits,
    // the final sample has nothing left to say.
    let snap = last_up
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| shared.snapshot());
    let mut targets: Vec<TargetReport> = snap.targets.iter().map(target_report).collect();
    // Whether each was still running at the end: the last sample's word, unless
    // the report stopped it itself when its time was up.
    let stopped_by_us = time_up.load(std::sync::atomic::Ordering::Relaxed);
    if !stopped_by_us {
        let last = shared.snapshot();
        for t in &mut targets {
            t.up = last.targets.iter().any(|l| l.name == t.name && l.up);
        }
    }
    let streams = stream_reports(&shared, &snap);
    let mut attention = Vec::new();
    for t in &snap.targets {
        attention.extend(words::attention(&t.name, t.restarts, t.verdicts.as_ref()));
    }
    for f in &snap.log_read_failures {
        attention.push(words::log_unreadable(&f.stream, &f.path, &f.error));
    }
    // The kernel's OOM kill, said first: it is why the app exited 137.
    attention.extend(outcome.app_oom_killed.clone());
    // Stopped by us when time was up (SIGTERM: 143) is not the app failing.
    if let Some(code) = outcome
        .app_exit_code
        .filter(|c| *c != 0 && !(stopped_by_us && *c == 143))
    {
        attention.push(format!("the app exited with code {code}"));
    }
    Ok(Report {
        duration_seconds: started.elapsed().as_secs_f64(),
        samples: samples.load(std::sync::atomic::Ordering::Relaxed),
        targets,
        streams,
        app_exit_code: outcome.app_exit_code,
        attention,
        requests: snap.logs.as_ref().and_then(words::requests),
    })
}

/// A progress bar on a terminal, a plain line a minute otherwise. Also tells the
/// run to stop when a target that was up has gone (the process exited early).
async fn progress(
    shared: Arc<Shared>,
    duration: Duration,
    started: Instant,
    samples: Arc<std::sync::atomic::AtomicU64>,
    gone: tokio::sync::oneshot::Sender<()>,
    last_up: Arc<std::sync::Mutex<Option<Arc<crate::state::Snapshot>>>>,
) {
    let tty = std::io::stderr().is_terminal();
    let mut gone = Some(gone);
    let mut seen_up = false;
    let mut last_taken = 0.0;
    let mut last_line = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let snap = shared.snapshot();
        if snap.taken_at_unix != last_taken {
            last_taken = snap.taken_at_unix;
            samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let up = snap.targets.iter().any(|t| t.up);
        seen_up |= up;
        if up {
            *last_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(snap.clone());
        }
        if seen_up && !up {
            if let Some(g) = gone.take() {
                let _ = g.send(());
            }
        }
        let done = started.elapsed().as_secs_f64() / duration.as_secs_f64();
        let status = snap
            .targets
            .first()
            .map(|t| {
                format!(
                    "{}: {:.1} MiB, {} fds",
                    t.name,
                    t.resident_memory_bytes as f64 / 1048576.0,
                    t.open_fds
                )
            })
            .unwrap_or_else(|| "waiting for the target".into());
        if tty {
            let width = 24;
            let filled = ((done.min(1.0)) * width as f64) as usize;
            eprint!(
                "\r[{}{}] {:>5.1}% {}   ",
                "#".repeat(filled),
                "-".repeat(width - filled),
                done.min(1.0) * 100.0,
                status
            );
        } else if last_line.elapsed() >= Duration::from_secs(60) {
            last_line = Instant::now();
            eprintln!("report: {:.0}% done, {status}", done.min(1.0) * 100.0);
        }
    }
}

fn target_report(t: &TargetStatus) -> TargetReport {
    TargetReport {
        name: t.name.clone(),
        up: t.up,
        seen_alive: t.up,
        processes: t.processes,
        restarts: t.restarts,
        cpu_seconds: t.counters.cpu_user_seconds + t.counters.cpu_system_seconds,
        resident_memory_bytes: t.resident_memory_bytes,
        open_fds: t.open_fds,
        max_fds: t.max_fds,
        threads: t.threads,
        verdicts: t.verdicts.clone(),
        workers: t.workers.clone(),
        capacity: t.capacity.clone(),
    }
}

/// The report for a human.
pub fn render(r: &Report) -> String {
    let mut s = format!(
        "Outrider report: {:.0} s watched, {}\n",
        r.duration_seconds,
        words::count(r.samples, "sample")
    );
    if r.targets.is_empty() {
        s.push_str("\nNo target was seen: nothing was judged.\n");
    }
    for t in &r.targets {
        render_target(&mut s, t);
    }
    if !r.streams.is_empty() {
        let each: Vec<String> = r
            .streams
            .iter()
            .map(|st| format!("{} {}", st.name, words::count(st.lines, "line")))
            .collect();
        let _ = writeln!(s, "\noutput: {}", each.join("; "));
        for f in r.streams.iter().flat_map(|st| &st.unreadable) {
            let _ = writeln!(s, "{}", words::log_unreadable(&f.stream, &f.path, &f.error));
        }
    }
    if let Some(line) = &r.requests {
        let _ = writeln!(s, "requests: {line}");
    }
    if let Some(code) = r.app_exit_code {
        let _ = writeln!(s, "the app exited with code {code}");
    }
    if r.targets.is_empty() {
        // Nothing was judged: not "nothing needs attention".
    } else if r.attention.is_empty() {
        s.push_str("\nNothing needs attention.\n");
    } else {
        s.push_str("\nNeeds attention:\n");
        for a in &r.attention {
            let _ = writeln!(s, "  - {a}");
        }
    }
    s
}

/// One target's part of the report.
fn render_target(s: &mut String, t: &TargetReport) {
    let _ = writeln!(
        s,
        "\n{} ({}; {}, {})",
        t.name,
        if t.up { "running" } else { "exited" },
        words::count_as(t.processes, "process", "processes"),
        words::count(t.restarts, "restart")
    );
    if !t.seen_alive {
        s.push_str(
            "  never seen alive: it ended before the first sample, so nothing was measured\n",
        );
        return;
    }
    let _ = writeln!(
        s,
        "  now: {} resident, {}, {}; {:.2} CPU-seconds used",
        words::mib(t.resident_memory_bytes as f64),
        match t.max_fds {
            Some(m) => format!("{} of {m}", words::count(t.open_fds, "fd")),
            None => words::count(t.open_fds, "fd"),
        },
        words::count(t.threads, "thread"),
        t.cpu_seconds
    );
    for line in words::capacity(t.workers.as_ref(), t.capacity.as_ref()) {
        let _ = writeln!(s, "  {line}");
    }
    let Some(v) = &t.verdicts else {
        s.push_str("  no verdict: too few samples\n");
        return;
    };
    let c = &v.sizing.cpu;
    let q = |x: Option<f64>| x.map(cores).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "  CPU usage: p50 {}, p90 {}, p95 {}, p99 {}, max {}",
        q(c.p50_cores),
        q(c.p90_cores),
        q(c.p95_cores),
        q(c.p99_cores),
        q(c.max_cores)
    );
    if let Some(peak) = v.sizing.memory.peak_bytes {
        let _ = writeln!(s, "  memory peak: {}", words::mib(peak));
    }
    for line in words::verdicts(v) {
        let _ = writeln!(s, "  {}", line.text);
    }
    if let Some(yaml) = &v.resources_yaml {
        s.push_str("  recommended:\n");
        for line in yaml.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app that ended before the first sample: the report says nothing was
    /// measured, not "0.0 MiB resident, 0 fds" as if it had read them.
    #[test]
    fn a_target_never_seen_alive_is_given_no_figures() {
        let t = TargetReport {
            name: "true".into(),
            up: false,
            seen_alive: false,
            processes: 0,
            restarts: 0,
            cpu_seconds: 0.0,
            resident_memory_bytes: 0,
            open_fds: 0,
            max_fds: None,
            threads: 0,
            verdicts: None,
            workers: None,
            capacity: None,
        };
        let mut s = String::new();
        render_target(&mut s, &t);
        assert_eq!(
            s,
            "\ntrue (exited; 0 processes, 0 restarts)\n  never seen alive: it ended before \
             the first sample, so nothing was measured\n"
        );
    }
}
