//! Sidecar mode against real processes: what is scraped matches what was set up.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::{get, metric, promtool_check, DemoApp, Outrider};

const MIB: f64 = 1048576.0;

#[test]
fn a_known_process_is_measured() {
    let app = DemoApp::quiet(&["--hold-mib", "128", "--fds", "40", "--threads", "5"]);
    let pid = app.pid.to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    let t = [("target", "outrider")]; // named after the process' comm
    o.wait_metric("outrider_target_up", &t, |v| v == 1.0);
    let body = o.scrape();
    let rss = metric(&body, "outrider_target_resident_memory_bytes", &t).unwrap();
    // The 128 MiB held, plus the binary's own pages (about 12 MiB of a debug
    // build's file-backed pages): compared with what the kernel says right after.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kernel_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let kernel = kernel_kib * 1024.0;
    assert!(
        rss >= 128.0 * MIB && (rss - kernel).abs() <= 0.02 * kernel,
        "rss {:.1} MiB, the kernel says {:.1} MiB, set up 128 MiB",
        rss / MIB,
        kernel / MIB
    );
    assert!(app.fds >= 43, "the app reports {} fds", app.fds);
    assert_eq!(
        metric(&body, "outrider_target_open_fds", &t),
        Some(app.fds as f64)
    );
    assert_eq!(app.threads, 6);
    assert_eq!(metric(&body, "outrider_target_threads", &t), Some(6.0));
    assert_eq!(metric(&body, "outrider_target_processes", &t), Some(1.0));
    assert!(metric(&body, "outrider_target_max_fds", &t).unwrap() >= 1024.0);
    assert!(metric(&body, "outrider_target_start_time_seconds", &t).unwrap() > 1.6e9);
    assert_eq!(
        metric(&body, "outrider_target_restarts_total", &t),
        Some(0.0)
    );
    for mode in ["user", "system"] {
        assert!(metric(
            &body,
            "outrider_target_cpu_seconds_total",
            &[("target", "outrider"), ("mode", mode)]
        )
        .is_some());
    }
    promtool_check(&body);
}

#[test]
fn descendants_are_in_the_group_and_cpu_is_counted() {
    let app = DemoApp::start(&[
        "--children",
        "2",
        "--cpu",
        "0.5",
        "--log-rate",
        "0",
        "--leak-kib-per-sec",
        "0",
    ]);
    let pid = app.pid.to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    let t = [("target", "outrider")];
    o.wait_metric("outrider_target_processes", &t, |v| v == 3.0);
    let cpu = |o: &Outrider| {
        let b = o.scrape();
        metric(
            &b,
            "outrider_target_cpu_seconds_total",
            &[("target", "outrider"), ("mode", "user")],
        )
        .unwrap()
            + metric(
                &b,
                "outrider_target_cpu_seconds_total",
                &[("target", "outrider"), ("mode", "system")],
            )
            .unwrap()
    };
    // The kernel's own count for the same three processes (utime + stime of the
    // app and its children), read around Outrider's two scrapes.
    let kernel = || {
        let mut pids = vec![app.pid.to_string()];
        let children = format!("/proc/{}/task/{}/children", app.pid, app.pid);
        pids.extend(
            std::fs::read_to_string(children)
                .unwrap()
                .split_whitespace()
                .map(str::to_string),
        );
        pids.iter()
            .map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
                let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
            })
            .sum::<f64>()
    };
    let (k0, first) = (kernel(), cpu(&o));
    std::thread::sleep(Duration::from_millis(1500));
    // Outrider's figure is at most one 200 ms tick older than the kernel's.
    std::thread::sleep(Duration::from_millis(300));
    let (second, k1) = (cpu(&o), kernel());
    // Half a core for 1.5 s: whatever share the scheduler gave it on a busy machine,
    // Outrider counts what the kernel counts. Each of its readings may be a 200 ms
    // tick old, so the windows differ by up to that at the app's rate (a fifth of
    // the count, 0.1 s at half a core) plus clock-tick rounding; counting the
    // parent alone would miss two thirds.
    let (counted, kernel_counted) = (second - first, k1 - k0);
    assert!(
        kernel_counted > 0.05,
        "the kernel counted {kernel_counted} s"
    );
    assert!(
        (counted - kernel_counted).abs() <= 0.2 * kernel_counted + 0.1,
        "Outrider counted {counted} s (from {first} to {second}), the kernel {kernel_counted} s"
    );
}

#[test]
fn a_target_that_goes_away_and_returns_counts_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("app.pid").display().to_string();
    let o = Outrider::with_config(
        &format!("[[targets]]\nname = \"app\"\npid_file = {pf:?}\n"),
        &[],
        &["--interval", "100ms"],
    );
    let t = [("target", "app")];

    let first = DemoApp::start(&["--pid-file", &pf, "--cpu", "0.3", "--log-rate", "0"]);
    o.wait_metric("outrider_target_up", &t, |v| v == 1.0);
    let cpu_of = |o: &Outrider| {
        o.metric(
            "outrider_target_cpu_seconds_total",
            &[("target", "app"), ("mode", "user")],
        )
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(800));
    let cpu_before = cpu_of(&o);
    assert!(cpu_before > 0.0);
    drop(first); // killed and reaped

    o.wait_metric("outrider_target_up", &t, |v| v == 0.0);
    assert_eq!(o.metric("outrider_target_processes", &t), Some(0.0));
    assert!(
        cpu_of(&o) >= cpu_before,
        "counters must not go backwards when the group empties"
    );

    let _second = DemoApp::start(&["--pid-file", &pf, "--cpu", "0", "--log-rate", "0"]);
    o.wait_metric("outrider_target_up", &t, |v| v == 1.0);
    o.wait_metric("outrider_target_restarts_total", &t, |v| v == 1.0);
    assert!(cpu_of(&o) >= cpu_before);
}

#[test]
fn unreadable_proc_files_are_counted_not_fatal() {
    // Outrider as an unprivileged user watching a root-owned process: its io, fd
    // and limits files are not readable. As a non-root user, watch pid 1 instead.
    let root = util::is_root();
    let app = root.then(|| DemoApp::quiet(&["--fds", "5"]));
    let (cmd, pid) = match &app {
        Some(app) => (util::outrider_as_nobody(), app.pid),
        None => (Command::new(util::BIN), util::pid_of_another_user()),
    };
    let pid = pid.to_string();
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--interval", "100ms"]);
    let t = [("target", if root { "outrider" } else { "any" })];
    let body = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let b = o.scrape();
            if metric(&b, "outrider_read_errors_total", &[("source", "io")]).is_some()
                || Instant::now() > deadline
            {
                break b;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(
        metric(&body, "outrider_read_errors_total", &[("source", "io")]).unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    if root {
        // Still up, with what could be read.
        assert_eq!(metric(&body, "outrider_target_up", &t), Some(1.0), "{body}");
        assert!(metric(&body, "outrider_target_resident_memory_bytes", &t).unwrap() > 0.0);
    }
    assert_eq!(get(o.addr, "/healthz", None).0, 200);
}

#[test]
fn endpoints_and_formats() {
    let app = DemoApp::quiet(&[]);
    let pid = app.pid.to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(o.addr, "/readyz", None).0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(o.addr, "/healthz", None), (200, "ok\n".into()));
    let (status, open) = get(
        o.addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert_eq!(status, 200);
    assert!(open.ends_with("# EOF\n"));
    assert!(open.contains("# TYPE outrider_target_cpu_seconds counter"));
    let (_, classic) = get(o.addr, "/metrics", None);
    assert!(!classic.contains("# EOF"));
    assert!(classic.contains("# TYPE outrider_target_cpu_seconds_total counter"));
    assert!(metric(&classic, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
    assert_eq!(
        metric(
            &classic,
            "outrider_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(metric(&classic, "outrider_sample_duration_seconds", &[]).is_some());

    let v = o.status();
    assert_eq!(v["snapshot"]["targets"][0]["main_pid"], app.pid);
    assert_eq!(get(o.addr, "/nope", None).0, 404);
}

#[test]
fn sigterm_stops_promptly_with_status_zero() {
    let o_start = Outrider::start(&["--interval", "100ms"]);
    let mut o = o_start;
    let t = Instant::now();
    let status = o.terminate();
    assert!(status.success(), "{status:?}");
    // The grace is 1 s; allow for a loaded machine.
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}
