//! Container figures on a real kernel: real v1 cgroups (and, on a hybrid host, a
//! cgroup of the unified mount for PSI), an app moved into them, and Outrider's
//! figures compared with the kernel's own files.
//!
//! Needs root and writable v1 `memory` and `cpu` hierarchies at /sys/fs/cgroup/, as
//! on this project's machines. Elsewhere each test prints why it did not run and
//! passes, unless `OUTRIDER_REQUIRE_CGROUPS=1` is set (then it fails: for CI).
//! Every cgroup made is removed on the way out, also when a test fails.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::cgroup::{in_cgroups, pids_in, wait_oom_kills, Cgroups, V1};
use util::receivers::TestServer;
use util::{metric, Group, Outrider, BIN};

const UNIFIED: &str = "/sys/fs/cgroup/unified";
const MIB: u64 = 1 << 20;
/// Outrider's sampling interval in these tests.
const TICK: Duration = Duration::from_millis(200);

/// The Python interpreter itself: `python3` may be a shim script (pyenv) whose
/// process is named `pyenv` for a moment before it execs the interpreter, and a
/// target is named after its first main process.
fn python() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// Whether this machine lets the tests make v1 cgroups; if not, says why (and
/// fails when `OUTRIDER_REQUIRE_CGROUPS=1`).
fn machine_allows() -> bool {
    let why = if !util::is_root() {
        Some("not root".to_string())
    } else {
        ["memory", "cpu"].iter().find_map(|h| {
            let control = if *h == "memory" {
                "memory.limit_in_bytes"
            } else {
                "cpu.cfs_quota_us"
            };
            let dir = Path::new(V1).join(h);
            (!dir.join(control).exists())
                .then(|| format!("no cgroup v1 {h} hierarchy at {}", dir.display()))
        })
    };
    match why {
        None => true,
        Some(why) => {
            let required = std::env::var("OUTRIDER_REQUIRE_CGROUPS").as_deref() == Ok("1");
            assert!(!required, "OUTRIDER_REQUIRE_CGROUPS=1 but {why}");
            eprintln!("skipped: {why}; these tests need root and writable cgroup v1 memory and cpu hierarchies");
            false
        }
    }
}

/// Whether the host also has the unified mount (hybrid): then PSI is asserted too.
fn hybrid() -> bool {
    Path::new(UNIFIED).join("cgroup.procs").exists()
}

/// A number in a cgroup file: the whole file, or the value of `key` in a flat-keyed one.
fn kernel(dir: &Path, file: &str, key: Option<&str>) -> u64 {
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()));
    let value = match key {
        None => Some(text.trim()),
        Some(k) => text.lines().find_map(|l| {
            let (name, v) = l.split_once(' ')?;
            (name == k).then_some(v.trim())
        }),
    };
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}/{file} {key:?}: {text}", dir.display()))
}

/// Starts `cmd` and waits until its main process runs `comm` (after the moves).
fn spawn_as(cmd: &mut Command, comm: &str) -> Group {
    let group = Group::spawn(cmd.stdin(Stdio::null()).stdout(Stdio::null())).expect("spawn");
    let path = format!("/proc/{}/comm", group.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&path).unwrap_or_default().trim() != comm {
        assert!(Instant::now() < deadline, "{path} never became {comm}");
        std::thread::sleep(Duration::from_millis(20));
    }
    group
}

/// A Python process that only sleeps, started in `cgroups`.
fn sleeper_in(cgroups: &[&Path]) -> Group {
    spawn_as(
        &mut in_cgroups(
            cgroups,
            &[python(), "-c", "import time\nwhile True: time.sleep(1)"],
        ),
        "python3",
    )
}

/// Outrider watching `app` by pid, sampling every [`TICK`], with `more` flags.
fn watch(app: &Group, more: &[&str]) -> Outrider {
    let pid = app.pid().to_string();
    let mut args = vec!["--pid", pid.as_str(), "--interval", "200ms"];
    args.extend_from_slice(more);
    Outrider::start(&args)
}

/// Holds `HOLD_MIB` MiB it wrote, then spins: held to 0.2 cores, it is throttled in
/// nearly every CFS period.
const SPINNER: &str = "
held = bytearray(48 << 20)
for i in range(0, len(held), 4096):
    held[i] = 1
while True:
    pass
";
const HOLD_MIB: u64 = 48;

/// The 128 MiB, 0.2-core cgroups of the limits tests, plus a unified cgroup on a
/// hybrid host.
fn limited(cg: &mut Cgroups, name: &str) -> (PathBuf, PathBuf, Option<PathBuf>) {
    let memory = cg.make("memory", name, &[("memory.limit_in_bytes", "134217728")]);
    let cpu = cg.make(
        "cpu",
        name,
        &[
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "20000"),
        ],
    );
    let unified = hybrid().then(|| cg.make("unified", name, &[]));
    (memory, cpu, unified)
}

/// What one target of Outrider shows, against the kernel's files of its cgroups.
fn assert_limits_and_throttling(o: &Outrider, memory: &Path, cpu: &Path, unified: Option<&Path>) {
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_cgroup_available", &t, |v| v == 1.0);
    let layout = if unified.is_some() { "hybrid" } else { "v1" };
    let info = [("target", "python3"), ("layout", layout)];
    assert_eq!(o.metric("outrider_container_cgroup_info", &info), Some(1.0));
    let status = o.status();
    let target = status["snapshot"]["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "python3"))
        .unwrap_or_else(|| panic!("no python3 target: {status}"));
    assert_eq!(target["cgroup"]["layout"], layout, "{target}");
    // The app (and, in wrap mode, Outrider) alone in the cgroup: its container.
    assert_eq!(target["cgroup"]["other_processes"], 0, "{target}");

    // Limits: what the kernel holds, as Outrider shows it.
    let limit = kernel(memory, "memory.limit_in_bytes", None);
    assert_eq!(limit, 128 * MIB);
    let shown = o.metric("outrider_container_memory_limit_bytes", &t);
    assert_eq!(shown, Some(limit as f64));
    let quota = kernel(cpu, "cpu.cfs_quota_us", None) as f64;
    let period = kernel(cpu, "cpu.cfs_period_us", None) as f64;
    let cores = o.metric("outrider_container_cpu_limit_cores", &t);
    assert_eq!(cores, Some(quota / period));
    assert_eq!(cores, Some(0.2));
    let allocation = o.metric("outrider_target_memory_limit_bytes", &t);
    assert_eq!(
        allocation,
        Some(limit as f64),
        "the allocation falls back to it"
    );

    // Memory in use: the held 48 MiB and the interpreter (once written: at 0.2
    // cores that takes a moment), as the kernel counts it.
    let held = (HOLD_MIB * MIB) as f64;
    // The app and (wrapping) Outrider still move it between a tick and the kernel
    // read, so wait for a tick whose figure is within 10% of the kernel's now.
    let close = |v: f64| {
        let k = kernel(memory, "memory.usage_in_bytes", None) as f64;
        v >= held && (v - k).abs() <= 0.1 * k
    };
    let used = o.wait_metric("outrider_container_memory_usage_bytes", &t, close);
    let kernel_used = kernel(memory, "memory.usage_in_bytes", None) as f64;
    let ws = o
        .metric("outrider_container_memory_working_set_bytes", &t)
        .unwrap();
    eprintln!(
        "memory: limit kernel {limit} / outrider {shown:?}; usage kernel {kernel_used} / outrider {used}, working set {ws}; cpu: quota {quota}/{period} = outrider {cores:?}"
    );
    assert!(ws <= used && ws >= held, "working set {ws}");

    assert_throttling(o, cpu);
    if let Some(unified) = unified {
        assert_pressure(o, unified);
    }
}

/// Throttled periods: more than none, and what the kernel's `cpu.stat` said at most
/// one tick before the scrape (never more than it says right after).
fn assert_throttling(o: &Outrider, cpu: &Path) {
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_cpu_throttled_periods_total", &t, |v| {
        v > 0.0
    });
    let mut last = String::new();
    for _attempt in 0..3 {
        let before = kernel(cpu, "cpu.stat", Some("nr_throttled"));
        // Outrider's reading is at most one tick (plus its sampling time) old.
        std::thread::sleep(TICK + Duration::from_millis(100));
        let body = o.scrape();
        let after = kernel(cpu, "cpu.stat", Some("nr_throttled"));
        let throttled =
            metric(&body, "outrider_container_cpu_throttled_periods_total", &t).unwrap();
        let periods = metric(&body, "outrider_container_cpu_periods_total", &t).unwrap();
        let secs = metric(&body, "outrider_container_cpu_throttled_seconds_total", &t).unwrap();
        let kernel_secs = kernel(cpu, "cpu.stat", Some("throttled_time")) as f64 / 1e9;
        last = format!(
            "throttled periods: kernel {before} one tick before, outrider {throttled}, kernel {after} right after; periods outrider {periods}; throttled seconds outrider {secs}, kernel {kernel_secs} after"
        );
        eprintln!("{last}");
        assert!(
            throttled <= after as f64 && secs <= kernel_secs && secs > 0.0,
            "{last}"
        );
        assert!(throttled <= periods, "{last}");
        if throttled >= before as f64 {
            return;
        }
    }
    panic!("Outrider's throttled periods lagged the kernel's by more than one tick: {last}");
}

/// PSI from the app's cgroup in the unified mount: CPU pressure while throttled.
fn assert_pressure(o: &Outrider, unified: &Path) {
    let some = [("target", "python3"), ("resource", "cpu"), ("kind", "some")];
    let secs = o.wait_metric("outrider_container_pressure_seconds_total", &some, |v| {
        v > 0.0
    });
    let text = std::fs::read_to_string(unified.join("cpu.pressure")).unwrap();
    let total: f64 = text
        .lines()
        .find(|l| l.starts_with("some "))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
        .and_then(|v| v.parse().ok())
        .unwrap();
    eprintln!(
        "cpu pressure some: outrider {secs} s, kernel {} s after",
        total / 1e6
    );
    assert!(secs <= total / 1e6, "outrider {secs}, kernel {text}");
    // The app spins against its 0.2-core quota the whole time: the stall keeps
    // rising, tick after tick, and Outrider's figure follows it.
    let later = o.wait_metric("outrider_container_pressure_seconds_total", &some, |v| {
        v > secs
    });
    eprintln!("cpu pressure some rose to {later} s");
}

/// An app held to 128 MiB and 0.2 cores, watched as a sidecar by pid.
#[test]
fn a_sidecar_reads_v1_limits_and_throttling_as_the_kernel_has_them() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let (memory, cpu, unified) = limited(&mut cg, "sidecar");
    let mut dirs = vec![memory.as_path(), cpu.as_path()];
    dirs.extend(unified.as_deref());
    let app = spawn_as(
        &mut in_cgroups(&dirs, &[python(), "-c", SPINNER]),
        "python3",
    );
    let o = watch(&app, &[]);
    assert_limits_and_throttling(&o, &memory, &cpu, unified.as_deref());

    // Another process joins the app's memory cgroup: the cgroup is shared, so its
    // memory is no longer the app's alone, and Outrider says so.
    let other = spawn_as(
        &mut in_cgroups(&[memory.as_path()], &["sleep", "60"]),
        "sleep",
    );
    let status = o.wait_status("the cgroup seen as shared", |s| {
        s["snapshot"]["targets"][0]["cgroup"]["other_processes"] == 1
    });
    assert_eq!(status["snapshot"]["targets"][0]["name"], "python3");
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    assert!(
        summary.contains("shared with 1 other process (memory is judged by the app's own RSS)"),
        "{summary}"
    );
    drop(other);
    drop(o);
    drop(app);
}

/// Wrap mode: Outrider itself started in the cgroups reads its own cgroup, which
/// the app it wraps inherits.
#[test]
fn a_wrapping_outrider_reads_its_own_v1_cgroup() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let (memory, cpu, unified) = limited(&mut cg, "wrap");
    let mut dirs = vec![memory.as_path(), cpu.as_path()];
    dirs.extend(unified.as_deref());
    let o = Outrider::start_with(
        in_cgroups(&dirs, &[BIN]),
        &["--interval", "200ms", "--", python(), "-c", SPINNER],
    );
    assert!(
        pids_in(&memory).contains(&o.pid()),
        "Outrider is in {}",
        memory.display()
    );
    assert_limits_and_throttling(&o, &memory, &cpu, unified.as_deref());
    drop(o);
}

/// Limits set only on an enclosing cgroup, as a pod-level limit or a systemd
/// slice's are: the app's own cgroups (children of the limited ones) have none.
/// The kernel throttles the parent, whose `cpu.stat` counts it while the app's own
/// stays at 0, and `hierarchical_memory_limit` carries the parent's memory limit
/// down. Outrider judges the app against those limits, says where they are set,
/// and shows the parent's throttling.
#[test]
fn limits_set_on_an_enclosing_v1_cgroup_bind_the_app() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let (memory_parent, cpu_parent, _) = limited(&mut cg, "enclosing");
    let memory = cg.make_in(&memory_parent, "app", &[]);
    let cpu = cg.make_in(&cpu_parent, "app", &[]);
    let app = spawn_as(
        &mut in_cgroups(
            &[memory.as_path(), cpu.as_path()],
            &[python(), "-c", SPINNER],
        ),
        "python3",
    );
    let o = watch(&app, &[]);
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_cgroup_available", &t, |v| v == 1.0);
    let limit = kernel(&memory, "memory.stat", Some("hierarchical_memory_limit"));
    assert_eq!(limit, 128 * MIB);
    assert_eq!(o.metric("outrider_container_memory_limit_bytes", &t), None);
    assert_eq!(
        o.metric("outrider_container_memory_enclosing_limit_bytes", &t),
        Some(limit as f64)
    );
    assert_eq!(
        o.metric("outrider_target_memory_limit_bytes", &t),
        Some(limit as f64)
    );
    assert_eq!(o.metric("outrider_container_cpu_limit_cores", &t), None);
    let cores = o.metric("outrider_container_cpu_enclosing_limit_cores", &t);
    assert_eq!(cores, Some(0.2));
    assert_eq!(o.metric("outrider_target_cpu_limit_cores", &t), Some(0.2));

    let status = o.wait_status("the allocation's source", |s| {
        s["snapshot"]["targets"][0]["allocation"]["memory_limit_bytes"][1] == "enclosing_cgroup"
    });
    let allocation = &status["snapshot"]["targets"][0]["allocation"];
    assert_eq!(
        allocation["cpu_limit_cores"][1], "enclosing_cgroup",
        "{allocation}"
    );
    let (_, summary) = util::get(o.addr, "/summary.txt", None);
    assert!(
        summary.contains(
            "limit 128.0 MiB set on an enclosing cgroup, shared with whatever else runs under it"
        ),
        "{summary}"
    );

    // The spinner is throttled in the parent: Outrider's figure is the parent's,
    // never above the kernel's, read after it; the app's own cgroup counts none.
    let throttled = "outrider_container_cpu_throttled_periods_total";
    o.wait_metric(throttled, &t, |v| v >= 5.0);
    let shown = o.metric(throttled, &t).unwrap();
    let parent = kernel(&cpu_parent, "cpu.stat", Some("nr_throttled"));
    let own = kernel(&cpu, "cpu.stat", Some("nr_throttled"));
    assert!(shown <= parent as f64, "outrider {shown}, parent {parent}");
    assert_eq!(own, 0, "the app's own cgroup counted throttling");
    eprintln!("enclosing: memory {limit}, cpu {cores:?}; throttled outrider {shown} / parent {parent} / own {own}");
    drop(o);
    drop(app);
}

/// Waits for `file` to exist (the Python parent below starts its child then) and
/// then for the child's exit, which it writes to `result`.
const OOM_PARENT: &str = "
import os, subprocess, sys, time
go, result = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.05)
child = subprocess.run([sys.executable, '-c', 'held = []\\nwhile True: held.append(b\"x\" * (8 << 20))'])
with open(result, 'w') as f:
    f.write(str(child.returncode))
while True:
    time.sleep(1)
";

/// A child of the app allocates past a 64 MiB limit: the kernel's OOM killer kills
/// it, and Outrider counts that kill once, as `memory.oom_control` does.
#[test]
fn an_oom_kill_in_a_v1_memory_cgroup_is_counted_once() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make("memory", "oom", &[("memory.limit_in_bytes", "67108864")]);
    let tmp = tempfile::tempdir().unwrap();
    let (go, result) = (tmp.path().join("go"), tmp.path().join("result"));
    let program = [
        python(),
        "-c",
        OOM_PARENT,
        go.to_str().unwrap(),
        result.to_str().unwrap(),
    ];
    let app = spawn_as(&mut in_cgroups(&[&memory], &program), "python3");
    let o = watch(&app, &[]);
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_oom_kills_total", &t, |v| v == 0.0);

    std::fs::write(&go, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !result.exists() {
        assert!(Instant::now() < deadline, "the child was never killed");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(50)); // the write
    let code = std::fs::read_to_string(&result).unwrap();
    assert_eq!(code.trim(), "-9", "the child died of SIGKILL");
    let kills = kernel(&memory, "memory.oom_control", Some("oom_kill"));
    assert_eq!(kills, 1, "the kernel's count");
    o.wait_metric("outrider_container_oom_kills_total", &t, |v| v >= 1.0);
    let firing = [
        ("alertname", "OOMKilled"),
        ("target", "python3"),
        ("state", "firing"),
    ];
    o.wait_metric("outrider_alerts", &firing, |v| v == 1.0);
    // Counted once: still the kernel's count some ticks later.
    std::thread::sleep(TICK * 5);
    let body = o.scrape();
    let counted = metric(&body, "outrider_container_oom_kills_total", &t);
    let hits = metric(&body, "outrider_container_memory_limit_hits_total", &t).unwrap();
    let failcnt = kernel(&memory, "memory.failcnt", None);
    let kills_now = kernel(&memory, "memory.oom_control", Some("oom_kill"));
    eprintln!(
        "oom kills: kernel {kills_now}, outrider {counted:?}; limit hits: kernel failcnt {failcnt}, outrider {hits}"
    );
    assert_eq!(counted, Some(kills_now as f64));
    assert_eq!(kills_now, 1);
    assert!(hits > 0.0 && hits <= failcnt as f64);
    drop(o);
    drop(app);
}

/// Sleeps while Outrider takes its first reading of the cgroup (the OOM-kill
/// count's baseline), then allocates until the kernel kills it.
const ALLOCATOR: &str = "
import time
time.sleep(1.5)
held = []
while True:
    held.append(b'x' * (8 << 20))
";

/// `outrider report` around an app the kernel OOM-kills at a 64 MiB limit: the
/// report says so among what needs attention (it said only "the app exited with
/// code 137"), and the app is not "running".
#[test]
fn a_report_says_its_app_was_oom_killed() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make(
        "memory",
        "oomreport",
        &[("memory.limit_in_bytes", "67108864")],
    );
    let out = in_cgroups(&[&memory], &[BIN])
        .args([
            "report",
            "--for",
            "60s",
            "--json",
            "--",
            python(),
            "-c",
            ALLOCATOR,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["app_exit_code"], 137, "{v:#}");
    let attention: Vec<&str> = v["attention"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        attention.contains(&"the app was OOM-killed at its 64 MiB memory limit"),
        "{attention:?}"
    );
    assert_eq!(v["targets"][0]["up"], false, "{v:#}");
}

/// Another process in the app's memory cgroup (no member of the target) is
/// OOM-killed: the kernel counts it in the cgroup, but the app lost no process,
/// so it is not the app's kill. No OOMKilled alert, no kill in the sizing, and
/// the status says whose it was. (It fired "python3 was OOM-killed" and
/// recommended 345Mi for a 27 MiB app.)
#[test]
fn another_process_oom_killed_in_a_shared_cgroup_is_not_the_apps() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make(
        "memory",
        "oomshared",
        &[("memory.limit_in_bytes", "67108864")],
    );
    let app = sleeper_in(&[&memory]);
    let o = watch(&app, &[]);
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_oom_kills_total", &t, |v| v == 0.0);
    // The other process joins; Outrider sees the cgroup shared before it grows.
    let tmp = tempfile::tempdir().unwrap();
    let go = tmp.path().join("go");
    let grower = format!(
        "import os, time\nwhile not os.path.exists({:?}): time.sleep(0.05)\n{}",
        go.to_str().unwrap(),
        ALLOCATOR
    );
    let other = spawn_as(
        &mut in_cgroups(&[&memory], &[python(), "-c", &grower]),
        "python3",
    );
    o.wait_status("the cgroup seen as shared", |s| {
        s["snapshot"]["targets"][0]["cgroup"]["other_processes"] == 1
    });
    std::fs::write(&go, "").unwrap();
    wait_oom_kills(&memory, 1, Duration::from_secs(30));
    o.wait_metric("outrider_container_oom_kills_total", &t, |v| v >= 1.0);
    std::thread::sleep(TICK * 5);
    let status = o.wait_status("the kill attributed", |s| {
        s["snapshot"]["targets"][0]["cgroup"]["oom_kills_of_others"] == 1
    });
    let target = &status["snapshot"]["targets"][0];
    assert_eq!(target["up"], true, "{target}");
    assert_eq!(
        target["verdicts"]["sizing"]["memory"]["oom_kills"], 0,
        "{target}"
    );
    let firing = [("alertname", "OOMKilled"), ("target", "python3")];
    let body = o.scrape();
    assert_eq!(metric(&body, "outrider_alerts", &firing), None, "{body}");
    drop(other);
    drop(o);
    drop(app);
}

/// The app is OOM-killed and restarted in its cgroup by a supervisor outside it
/// (systemd's `Restart=`, a shell loop, a container's own init): each kill is
/// the app's. The new process reaches the same cgroup through its own
/// `/proc/<pid>/root`, other paths than the last reading's: Outrider took that for
/// a move and every kill for another process' (4 of 4 in review: no OOMKilled
/// alert, no OOM bump in the sizing).
#[test]
fn an_app_oom_killed_and_restarted_in_its_cgroup_has_its_kills_counted() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make(
        "memory",
        "oomrestart",
        &[("memory.limit_in_bytes", "67108864")],
    );
    // Named by the link it is started through: a target of its own.
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("oomapp");
    std::os::unix::fs::symlink(python(), &exe).unwrap();
    let o = Outrider::with_config(
        "[[targets]]\nname = \"oomapp\"\ncomm = \"oomapp\"\n",
        &[],
        &["--interval", "200ms"],
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let supervisor = {
        let (stop, memory, exe) = (stop.clone(), memory.clone(), exe.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = in_cgroups(&[&memory], &[exe.to_str().unwrap(), "-c", ALLOCATOR])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        })
    };
    // Two kills while watched, each the app's: in its sizing, not others'.
    let status = o.wait_status("two kills of the app's own", |s| {
        s["snapshot"]["targets"][0]["verdicts"]["sizing"]["memory"]["oom_kills"]
            .as_u64()
            .is_some_and(|k| k >= 2)
    });
    stop.store(true, Ordering::SeqCst);
    // The running app allocates until it is killed: the supervisor ends then.
    supervisor.join().unwrap();
    let kills = kernel(&memory, "memory.oom_control", Some("oom_kill"));
    let target = &status["snapshot"]["targets"][0];
    assert_eq!(
        target["cgroup"]["oom_kills_of_others"], 0,
        "kernel {kills}: {target}"
    );
    assert!(
        target["restarts"].as_u64().is_some_and(|r| r >= 1),
        "{target}"
    );
    let firing = [
        ("alertname", "OOMKilled"),
        ("target", "oomapp"),
        ("state", "firing"),
    ];
    o.wait_metric("outrider_alerts", &firing, |v| v == 1.0);
    drop(o);
}

/// The app moved to another cgroup and its old one removed (as a runtime
/// re-parents a container): Outrider follows it to the new one at once, instead
/// of reading the removed directory (every figure gone, "available" still 1).
#[test]
fn an_app_moved_out_of_a_removed_cgroup_is_followed() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let old = cg.make(
        "memory",
        "moved-from",
        &[("memory.limit_in_bytes", "104857600")],
    );
    let new = cg.make(
        "memory",
        "moved-to",
        &[("memory.limit_in_bytes", "314572800")],
    );
    let app = sleeper_in(&[&old]);
    let o = watch(&app, &[]);
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_memory_limit_bytes", &t, |v| {
        v == 104857600.0
    });
    std::fs::write(new.join("cgroup.procs"), app.pid().to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir(&old).is_err() {
        assert!(
            Instant::now() < deadline,
            "could not remove {}",
            old.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    o.wait_metric("outrider_container_memory_limit_bytes", &t, |v| {
        v == 314572800.0
    });
    drop(o);
    drop(app);
}

/// A process joins the app's memory cgroup with 120 MiB, holds it 3 s and
/// leaves: the cgroup's working set is never taken as the app's (it was for up
/// to 10 s, the recheck of `cgroup.procs`, and set the sizing peak for 24 h). The
/// recorded trace's working set, the app's own, stays near the app's RSS.
#[test]
fn a_neighbour_joining_the_cgroup_is_never_counted_as_the_app() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make("memory", "neighbour", &[]);
    let app = spawn_as(
        &mut in_cgroups(
            &[&memory],
            &[
                python(),
                "-c",
                "import time\nheld = bytearray(20 << 20)\nwhile True: time.sleep(1)",
            ],
        ),
        "python3",
    );
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    let o = watch(&app, &["--record", trace.to_str().unwrap()]);
    let t = [("target", "python3")];
    o.wait_metric("outrider_container_cgroup_available", &t, |v| v == 1.0);
    std::thread::sleep(TICK * 5);
    let neighbour = spawn_as(
        &mut in_cgroups(
            &[&memory],
            &[
                "python3",
                "-c",
                "import time\nheld = bytearray(120 << 20)\nfor i in range(0, len(held), 4096): held[i] = 1\ntime.sleep(3)",
            ],
        ),
        "python3",
    );
    std::thread::sleep(Duration::from_secs(4));
    drop(neighbour);
    std::thread::sleep(TICK * 5);
    drop(o);
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (rss, ws) = (col("rss_bytes"), col("working_set_bytes"));
    let (mut worst, mut read) = (0.0f64, 0);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Ok(r), Ok(w)) = (f[rss].parse::<f64>(), f[ws].parse::<f64>()) else {
            continue; // no working set: the cgroup was seen shared
        };
        worst = worst.max(w - r);
        read += 1;
    }
    assert!(
        read >= 3,
        "the app's own working set in {read} rows:\n{text}"
    );
    eprintln!(
        "largest working set over RSS: {:.1} MiB",
        worst / MIB as f64
    );
    assert!(
        worst < 60.0 * MIB as f64,
        "the neighbour's memory was counted: {:.1} MiB over RSS",
        worst / MIB as f64
    );
    drop(app);
}

/// Whether process `pid` is running (not exited, not a zombie waiting to be reaped).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// Wrap mode, the app itself OOM-killed at a 64 MiB limit: Outrider counts the
/// kill on its last tick (ticks are 10 s apart, so no regular one comes between
/// the kill and the exit), delivers OOMKilled to a webhook while it is still
/// running, exits with 137, and its last log line says so with the limit.
#[test]
fn a_wrapping_outrider_delivers_its_apps_oom_kill_and_exits_137() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make(
        "memory",
        "oomwrap",
        &[("memory.limit_in_bytes", "67108864")],
    );
    // For each request the webhook answers: whether Outrider was still running.
    let outrider = Arc::new(AtomicI32::new(0));
    let alive_at_request = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let (pid, alive) = (outrider.clone(), alive_at_request.clone());
        TestServer::start(move |_| {
            alive
                .lock()
                .unwrap()
                .push(running(pid.load(Ordering::SeqCst)));
            (200, vec![])
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("outrider.toml");
    let receiver = format!(
        "[[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\n",
        hook.port
    );
    std::fs::write(&config, receiver).unwrap();
    let mut o = Outrider::start_with(
        in_cgroups(&[&memory], &[BIN]),
        &[
            "--config",
            config.to_str().unwrap(),
            "--interval",
            "10s",
            "--",
            python(),
            "-c",
            ALLOCATOR,
        ],
    );
    outrider.store(o.pid(), Ordering::SeqCst);
    let started = Instant::now();
    let killed_at = wait_oom_kills(&memory, 1, Duration::from_secs(30));
    let status = o.wait();
    let exited_at = Instant::now();

    assert_eq!(status.code(), Some(137), "128 + SIGKILL");
    let kills = kernel(&memory, "memory.oom_control", Some("oom_kill"));
    assert_eq!(kills, 1, "the kernel's count");
    let seen = hook.seen();
    let firing = seen
        .iter()
        .position(|s| {
            let body: serde_json::Value = serde_json::from_str(&s.body).unwrap_or_default();
            body["alerts"].as_array().is_some_and(|alerts| {
                alerts
                    .iter()
                    .any(|a| a["labels"]["alertname"] == "OOMKilled" && a["status"] == "firing")
            })
        })
        .unwrap_or_else(|| {
            let lines = o.stderr.lock().unwrap().join("\n");
            panic!("no OOMKilled firing notification: {seen:#?}\n{lines}")
        });
    let delivered = &seen[firing];
    let alive = alive_at_request.lock().unwrap()[firing];
    let lines = o.stderr.lock().unwrap().clone();
    let last = lines.last().cloned().unwrap_or_default();
    eprintln!(
        "exit {:?}; kernel oom_kill {kills}; kill at {:?} after start, OOMKilled delivered {:?} after the kill (answered {}, Outrider running then: {alive}), Outrider exited {:?} after the kill; last line: {last}",
        status.code(),
        killed_at - started,
        delivered.at.saturating_duration_since(killed_at),
        delivered.answered,
        exited_at - killed_at,
    );
    assert!(alive, "delivered before Outrider exited");
    assert_eq!(delivered.answered, 200);
    // The kill was counted by the last tick, not a regular one 10 s later.
    assert!(
        delivered.at.saturating_duration_since(killed_at) < Duration::from_secs(5),
        "delivered {:?} after the kill",
        delivered.at.saturating_duration_since(killed_at)
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("did not finish within the grace period")),
        "{lines:#?}"
    );
    // The firing line names the app in a key of its own: a `target` key would be
    // written twice (the log's own `target` is the module), and log pipelines keep
    // the last one.
    let firing_line = lines
        .iter()
        .find(|l| l.contains("\"alert firing\"") && l.contains("OOMKilled"))
        .unwrap_or_else(|| panic!("no alert firing line: {lines:#?}"));
    assert_eq!(
        firing_line.matches("\"target\":").count(),
        1,
        "{firing_line}"
    );
    let firing_line: serde_json::Value = serde_json::from_str(firing_line).unwrap();
    assert_eq!(firing_line["target_name"], "python3", "{firing_line}");
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(
        last["message"], "the app was OOM-killed at its 64 MiB memory limit",
        "{last}"
    );
    assert_eq!(last["memory_limit_bytes"], 64 * MIB, "{last}");
    assert_eq!(last["exit_code"], 137, "{last}");
}

/// Grows by 4 MiB every 100 ms until the kernel kills it, after half a second in
/// which Outrider takes its first reading (the OOM-kill count's baseline).
const GROWER: &str = "
import time
time.sleep(0.5)
held = []
while True:
    held.append(b'x' * (4 << 20))
    time.sleep(0.1)
";

/// Wrap mode, `[actions]` at half the 128 MiB limit: the pre-OOM command runs with
/// the app's pid in its environment and writes its marker before the kernel kills
/// the app; the command is counted `ok`, the kill is still counted once, and the
/// OOMKilled notification says what was done.
#[test]
fn the_pre_oom_command_runs_before_the_kill() {
    if !machine_allows() {
        return;
    }
    let mut cg = Cgroups::default();
    let memory = cg.make(
        "memory",
        "preoom",
        &[("memory.limit_in_bytes", "134217728")],
    );
    let hook = TestServer::start(|_| (200, vec![]));
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let config = dir.path().join("outrider.toml");
    let command = format!("echo $OUTRIDER_PID > {}", marker.display());
    std::fs::write(
        &config,
        format!(
            "[actions]\nlevel = 0.5\ncommand = [\"sh\", \"-c\", {command:?}]\n\n[[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/\"\n",
            hook.port
        ),
    )
    .unwrap();
    let mut o = Outrider::start_with(
        in_cgroups(&[&memory], &[BIN]),
        &[
            "--config",
            config.to_str().unwrap(),
            "--interval",
            "200ms",
            "--",
            python(),
            "-c",
            GROWER,
        ],
    );
    let started = Instant::now();
    // While the app grows: the app's pid as Outrider knows it, and the count.
    let command_ok = [
        ("target", "python3"),
        ("action", "command"),
        ("result", "ok"),
    ];
    let (mut app_pid, mut counted) = (None, None);
    while counted.is_none() && Instant::now() < started + Duration::from_secs(30) {
        if !running(o.pid()) {
            break;
        }
        let status = o.status();
        app_pid = app_pid.or(status["snapshot"]["targets"][0]["main_pid"].as_i64());
        counted = o
            .metric("outrider_actions_total", &command_ok)
            .filter(|v| *v > 0.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_at = wait_oom_kills(&memory, 1, Duration::from_secs(30));
    let killed_at_wall = std::time::SystemTime::now();
    let status = o.wait();

    let written = std::fs::metadata(&marker)
        .unwrap_or_else(|e| panic!("no marker {}: {e}", marker.display()))
        .modified()
        .unwrap();
    let pid = std::fs::read_to_string(&marker).unwrap();
    let lead = killed_at_wall.duration_since(written);
    let kills = kernel(&memory, "memory.oom_control", Some("oom_kill"));
    let lines = o.stderr.lock().unwrap().clone();
    let last: serde_json::Value =
        serde_json::from_str(lines.last().map_or("", |l| l.as_str())).unwrap_or_default();
    eprintln!(
        "app pid {app_pid:?}, marker says {}; marker written {lead:?} before the kill was seen (kill {:?} after start); outrider_actions_total{{command,ok}} {counted:?}; kernel oom_kill {kills}; exit {:?}",
        pid.trim(),
        killed_at - started,
        status.code(),
    );
    assert_eq!(
        counted,
        Some(1.0),
        "the command counted ok, once: {lines:#?}"
    );
    assert_eq!(
        Some(pid.trim().parse::<i64>().unwrap()),
        app_pid,
        "the app's pid"
    );
    assert!(
        lead.is_ok(),
        "the marker was written after the kill: {lead:?}"
    );
    assert_eq!(status.code(), Some(137), "the app was OOM-killed");
    assert_eq!(kills, 1, "the kernel's count");
    assert_eq!(last["oom_kills"], 1, "counted once: {lines:#?}");
    let oom = hook
        .seen()
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(&s.body).ok())
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == "OOMKilled" && a["status"] == "firing")
        .expect("OOMKilled delivered");
    let description = oom["annotations"]["description"].as_str().unwrap_or("");
    eprintln!("OOMKilled: {description}");
    assert!(
        description.contains("ran the pre-OOM command"),
        "{description}"
    );
}
