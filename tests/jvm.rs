//! A real JVM's heap as Outrider reads it from the JVM's perf-data file, against
//! `jstat`, which reads the same counters (the README's test command installs
//! Debian's openjdk-17-jdk-headless when `java` or `jstat` is missing).

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::group::Group;
use util::Outrider;

/// A JVM with a 16 MiB live set that churns under the collector `gc` (`-XX:+Use…`):
/// old collections come every few seconds.
fn churning_jvm(gc: &str) -> Group {
    Group::spawn(
        Command::new("java")
            .args([gc, "-Xms16m", "-Xmx64m"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/apps/runtimes/JvmChurn.java"
            ))
            .args(["16", "4"]),
    )
    .expect("java (apt-get install openjdk-17-jdk-headless)")
}

/// The status of JVM `jvm`'s target once Outrider (its sizing asking 2 s of
/// data) recommends it a memory limit.
fn sized(jvm: &Group) -> serde_json::Value {
    let pid = jvm.pid().to_string();
    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_ANALYSIS__SIZING_MIN_DATA", "2s");
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--interval", "200ms"]);
    let status = o.wait_status("a memory recommendation", |s| {
        s["snapshot"]["targets"][0]["verdicts"]["sizing"]["memory"]["recommended_limit_bytes"]
            .is_u64()
    });
    status["snapshot"]["targets"][0].clone()
}

/// The heap maximum the JVM `java` (a command with its arguments) takes, in
/// bytes: its `MaxHeapSize` from `-XX:+PrintFlagsFinal -version`.
fn max_heap_size(java: &mut Command) -> f64 {
    let out = util::group::output(java.args(["-XX:+PrintFlagsFinal", "-version"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.nth(1) == Some("MaxHeapSize")).then(|| w.nth(1))?
        })
        .and_then(|v| v.parse().ok())
        .expect("MaxHeapSize printed")
}

/// `jstat OPTION PID`'s columns by name, in KiB (counts for the collection
/// columns).
fn jstat(option: &str, pid: i32) -> Vec<(String, f64)> {
    let out = util::group::output(Command::new("jstat").args([option, &pid.to_string()]));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let names = lines.next().unwrap_or_default().split_whitespace();
    let values = lines.next().unwrap_or_default().split_whitespace();
    names
        .zip(values)
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(f64::NAN)))
        .collect()
}

fn column(cols: &[(String, f64)], name: &str) -> f64 {
    cols.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("jstat has no {name}: {cols:?}"))
        .1
}

#[test]
fn a_jvms_old_generation_is_read_as_jstat_reads_it() {
    // Parallel GC has no concurrent cycles: old collections are FGC.
    read_as_jstat_reads_it("-XX:+UseParallelGC", "FGC");
}

/// The single-generation collectors publish their whole heap as the old
/// generation: Shenandoah counts every cycle as a full collection (FGC), ZGC the
/// pauses of its cycles as concurrent ones (CGC) and has no young collections.
#[test]
fn shenandoah_and_zgc_heaps_are_read_as_jstat_reads_them() {
    read_as_jstat_reads_it("-XX:+UseShenandoahGC", "FGC");
    read_as_jstat_reads_it("-XX:+UseZGC", "CGC");
}

/// A churning JVM under `gc`, watched by Outrider: its figures against `jstat`'s,
/// whose column `old_collections` counts what Outrider counts as old collections.
fn read_as_jstat_reads_it(gc: &str, old_collections: &str) {
    let jvm = churning_jvm(gc);
    let pid = jvm.pid().to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    let labels = [("target", "java")];
    // The JVM writes its file as it starts; a `java` is looked at again every
    // second until it has one.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut scrape = o.scrape();
    while util::metric(&scrape, "outrider_jvm_old_gen_used_bytes", &labels).is_none() {
        assert!(
            Instant::now() < deadline,
            "no JVM heap figures in 20 s:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(200));
        scrape = o.scrape();
    }
    eprintln!("heap figures after {:?}", started.elapsed());
    let cols = jstat("-gc", jvm.pid());
    let caps = jstat("-gccapacity", jvm.pid());
    // Two ticks later, so the figures after jstat's reading are read after it.
    std::thread::sleep(Duration::from_millis(500));
    let after = o.scrape();
    let fig = |s: &str, name: &str| util::metric(s, name, &labels).unwrap();
    // Collections only grow: jstat's count, read between two scrapes, lies between
    // them.
    let old = column(&cols, old_collections);
    assert!(
        fig(&scrape, "outrider_jvm_old_collections_total") <= old
            && old <= fig(&after, "outrider_jvm_old_collections_total"),
        "{gc}: {old_collections} {old}:\n{scrape}\n{after}"
    );
    // jstat prints `-` where the collector has no young collections (ZGC).
    let ygc = Some(column(&cols, "YGC"))
        .filter(|v| !v.is_nan())
        .unwrap_or(0.0);
    assert!(
        fig(&scrape, "outrider_jvm_young_collections_total") <= ygc
            && ygc <= fig(&after, "outrider_jvm_young_collections_total"),
        "{gc}: YGC {ygc}"
    );
    // The committed sizes move seldom under Parallel GC, but ZGC and Shenandoah
    // commit and uncommit as they go (fast in a JVM's first seconds): jstat's
    // reading (OGC the old generation's, NGC the young one's, `-` under ZGC of
    // one generation), taken between two scrapes, lies between their figures,
    // give or take a tenth.
    let kib = |name: &str| {
        Some(column(&caps, name))
            .filter(|v| !v.is_nan())
            .unwrap_or(0.0)
            * 1024.0
    };
    for (name, jstat_figure) in [
        ("outrider_jvm_old_gen_committed_bytes", kib("OGC")),
        ("outrider_jvm_heap_committed_bytes", kib("OGC") + kib("NGC")),
    ] {
        let (was, now) = (fig(&scrape, name), fig(&after, name));
        let (low, high) = (was.min(now), was.max(now));
        assert!(
            low - jstat_figure / 10.0 <= jstat_figure && jstat_figure <= high + jstat_figure / 10.0,
            "{gc}: {name}: jstat {jstat_figure} against {was} and {now}"
        );
    }
    let committed = fig(&after, "outrider_jvm_old_gen_committed_bytes");
    // Used is at most committed.
    let used = fig(&after, "outrider_jvm_old_gen_used_bytes");
    assert!(used <= committed, "used {used}, committed {committed}");
    // The most the old generation may hold (43 MiB of the 64 MiB -Xmx under
    // Parallel GC, all of it under the others): fixed at start, exactly OGCMX.
    let ogcmx = column(&caps, "OGCMX") * 1024.0;
    let max = fig(&after, "outrider_jvm_old_gen_max_bytes");
    assert_eq!(max, ogcmx, "OGCMX {ogcmx} against {max}");
}

#[test]
fn an_app_that_is_not_a_jvm_has_no_heap_figures() {
    let app = Group::spawn(Command::new("sleep").arg("60")).unwrap();
    let pid = app.pid().to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    o.wait_metric("outrider_target_up", &[("target", "sleep")], |v| v == 1.0);
    std::thread::sleep(Duration::from_millis(600));
    let scrape = o.scrape();
    assert!(!scrape.contains("outrider_jvm_"), "{scrape}");
    assert_eq!(
        util::metric(&scrape, "outrider_read_errors_total", &[("source", "jvm")]),
        None
    );
}

#[test]
fn a_jvm_outrider_may_not_read_is_counted_not_silently_missing() {
    // Root's JVM watched by Outrider as nobody: the kernel's ptrace check keeps
    // /proc/<pid>/root from it. (As a non-root user there is no other user's JVM
    // to start: the test needs root, as the cgroup tests do.)
    if !util::is_root() {
        eprintln!("skipped: needs root to run Outrider as another user");
        return;
    }
    let jvm = churning_jvm("-XX:+UseParallelGC");
    let pid = jvm.pid().to_string();
    let o = Outrider::start_with(
        util::outrider_as_nobody(),
        &["--pid", &pid, "--interval", "200ms"],
    );
    let errors = o.wait_metric("outrider_read_errors_total", &[("source", "jvm")], |v| {
        v >= 1.0
    });
    let scrape = o.scrape();
    assert!(
        !scrape.contains("outrider_jvm_old_gen"),
        "{errors}: {scrape}"
    );
    // Still watching the rest.
    assert_eq!(
        util::metric(&scrape, "outrider_target_up", &[("target", "java")]),
        Some(1.0)
    );
}

/// A `/proc/PID/<file>` field in KiB, as bytes.
fn proc_kib(pid: i32, file: &str, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {file}"));
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}

/// ZGC of one generation maps its heap three times, and RSS counts every
/// mapping of a page; PSS divides a page by its mappings, so the process's PSS
/// holds the heap once. Outrider's figure with the heap counted once is near
/// the PSS, where the RSS is far above it.
#[test]
fn zgc_heap_is_counted_once_not_for_each_of_its_mappings() {
    let jvm = churning_jvm("-XX:+UseZGC");
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = || {
        // The JVM's perf-data file, /tmp/hsperfdata_<user>/<pid>.
        let path = std::fs::read_dir("/tmp")
            .ok()?
            .flatten()
            .map(|d| d.path().join(jvm.pid().to_string()))
            .find(|p| p.is_file())?;
        outrider::sample::jvm::PerfData::open(&path)
            .ok()?
            .read()
            .ok()?
    };
    let heap = loop {
        let heap = read().filter(|h| h.old_used_bytes >= 16 << 20);
        if let Some(h) = heap {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "no ZGC heap with its live set in 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // PSS also divides the JVM's library pages among every JVM on the machine:
    // its own anonymous and shared memory's PSS, and its file pages whole.
    let sizes = || {
        let rss = proc_kib(jvm.pid(), "status", "VmRSS:");
        let pss = proc_kib(jvm.pid(), "smaps_rollup", "Pss_Anon:")
            + proc_kib(jvm.pid(), "smaps_rollup", "Pss_Shmem:")
            + proc_kib(jvm.pid(), "status", "RssFile:");
        (rss, pss)
    };
    // A few cycles more: pages touched through each view (on a loaded machine,
    // with other tests' JVMs beside it, the cycles take longer: up to 20 s).
    std::thread::sleep(Duration::from_secs(3));
    let deadline = Instant::now() + Duration::from_secs(20);
    let (rss, pss) = loop {
        let (rss, pss) = sizes();
        if rss > 1.3 * pss || Instant::now() >= deadline {
            break (rss, pss);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut heap = read().unwrap_or(heap);
    assert_eq!(heap.heap_mappings, 3, "{heap:?}");
    // What Outrider reads beside the heap under ZGC.
    heap.shmem_resident_bytes = Some(proc_kib(jvm.pid(), "status", "RssShmem:") as u64);
    let once = rss - heap.counted_again_bytes(rss as u64) as f64;
    let mib = |v: f64| v / 1048576.0;
    eprintln!(
        "RSS {:.1} MiB, PSS {:.1} MiB, counted once {:.1} MiB, committed {:.1} MiB",
        mib(rss),
        mib(pss),
        mib(once),
        mib(heap.old_capacity_bytes as f64)
    );
    assert!(
        rss > 1.3 * pss,
        "RSS {rss} against PSS {pss}: no multi-mapping?"
    );
    assert!(
        (once - pss).abs() <= 0.25 * pss,
        "counted once {once} against PSS {pss} (RSS {rss})"
    );
    // Outrider reads the same itself and says so beside the kernel's RSS.
    let pid = jvm.pid().to_string();
    let o = Outrider::start(&["--pid", &pid, "--interval", "200ms"]);
    o.wait_metric(
        "outrider_jvm_old_gen_used_bytes",
        &[("target", "java")],
        |v| v > 0.0,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, summary) = util::get(o.addr, "/summary.txt", None);
        if summary.contains("with its JVM heap counted once: its collector maps it 3 times") {
            break;
        }
        assert!(Instant::now() < deadline, "{summary}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A JVM given `-Xmx64m` under a container limit of 100 MiB as configured: its
/// heap may grow to 64 MiB, and it uses more than 36 MiB outside it (a JVM's
/// metaspace, code and threads alone are that much), so the limit is told
/// under-allocated with both figures, and the limit recommended holds the
/// maximum and what the JVM uses outside its heap. Read from the JVM's own
/// arguments (`java.rt.vmArgs` in its perf-data file).
#[test]
fn a_jvm_given_xmx_is_sized_for_its_heap_to_grow() {
    let jvm = churning_jvm("-XX:+UseG1GC");
    let pid = jvm.pid().to_string();
    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_ANALYSIS__SIZING_MIN_DATA", "2s")
        .env("OUTRIDER_RESOURCES__MEMORY_LIMIT", "100Mi");
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--interval", "200ms"]);
    let status = o.wait_status("a memory verdict", |s| {
        s["snapshot"]["targets"][0]["verdicts"]["sizing"]["memory"]["heap_max_bytes"].is_u64()
    });
    let target = &status["snapshot"]["targets"][0];
    let memory = &target["verdicts"]["sizing"]["memory"];
    assert_eq!(memory["heap_max_bytes"], 64 << 20, "{memory:#}");
    assert_eq!(memory["allocation"], "under", "{memory:#}");
    let reason = memory["reason"].as_str().unwrap();
    assert!(
        reason.contains("the 100 MiB limit is under its -Xmx (64 MiB) plus the "),
        "{reason}"
    );
    // At least the maximum and 1.3 x what is outside the heap now (the most
    // seen is no less).
    let heap = &target["jvm"];
    let committed = heap["old_capacity_bytes"].as_f64().unwrap()
        + heap["young_capacity_bytes"].as_f64().unwrap();
    let outside = target["resident_memory_bytes"].as_f64().unwrap() - committed;
    let limit = memory["recommended_limit_bytes"].as_f64().unwrap();
    assert!(
        limit >= (64 << 20) as f64 + 1.3 * outside * 0.95,
        "{limit} for {outside} outside the heap: {target:#}"
    );
    let yaml = target["verdicts"]["resources_yaml"].as_str().unwrap();
    assert!(
        yaml.contains("  # holds -Xmx (64Mi) and what it uses outside the heap\n"),
        "{yaml}"
    );
}

/// A JVM without `-Xmx` sizes its heap itself, at 25% of the memory it sees by
/// default (a container's limit, where it has one; 50% of a small one): the
/// limit recommended keeps what its heap has committed within its maximum,
/// whatever its usage alone would give (a limit cut to the usage would cut the
/// heap's maximum with it), and leaves beside that maximum 1.3 x what the JVM
/// uses outside its heap (its heap may grow to it). `-Xms64m` commits 64 MiB
/// at once. The JVM itself is the judge: told it has the limit recommended
/// (`-XX:MaxRAM`), with the same arguments, its `MaxHeapSize` holds what the
/// heap committed and leaves the room.
#[test]
fn a_jvm_sizing_its_heap_itself_keeps_it_within_its_share() {
    let jvm = Group::spawn(
        Command::new("java")
            .args(["-XX:+UseG1GC", "-Xms64m"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/apps/runtimes/JvmChurn.java"
            ))
            .args(["16", "4"]),
    )
    .expect("java");
    let target = &sized(&jvm);
    let heap = &target["jvm"];
    assert_eq!(heap["heap_share"]["max"], 0.25, "{heap:#}");
    assert_eq!(heap["heap_share"]["min"], 0.5, "{heap:#}");
    assert_eq!(heap["collector_given"], true, "{heap:#}");
    assert!(heap["max_heap_bytes"].is_null(), "{heap:#}");
    let committed = heap["old_capacity_bytes"].as_f64().unwrap()
        + heap["young_capacity_bytes"].as_f64().unwrap();
    let memory = &target["verdicts"]["sizing"]["memory"];
    let limit = memory["recommended_limit_bytes"].as_f64().unwrap();
    let max_heap = |limit: f64| -> f64 {
        max_heap_size(
            Command::new("java")
                .args(["-XX:+UseG1GC", "-Xms64m"])
                .arg(format!("-XX:MaxRAM={}", limit as u64)),
        )
    };
    // What it uses outside the heap now (the most seen is no less).
    let outside = target["resident_memory_bytes"].as_f64().unwrap() - committed;
    let under = max_heap(limit);
    eprintln!(
        "limit {limit}, its heap's maximum {under}, committed {committed}, outside {outside}: {memory:#}"
    );
    assert!(
        under >= committed && under + 1.3 * outside <= limit,
        "under {limit} bytes its heap's maximum is {under} for {committed} committed \
         and {outside} outside: {memory:#}"
    );
    // Raised for the heap, the least that holds it: under a tenth less the
    // heap would not hold what it committed or not leave the room.
    if !memory["heap_share"].is_null() {
        let less = max_heap(0.9 * limit);
        assert!(
            less < committed || less + 1.3 * outside * 0.95 > 0.9 * limit,
            "{less} under {} bytes",
            0.9 * limit
        );
    }
}

/// A JVM not given its collector picks it from what it sees: Serial in a
/// memory cgroup under 1792 MiB, G1 with more (and 2 CPUs). A limit
/// recommended under that changes its collector, and the words say so (here
/// it sees the host's memory: no limit).
#[test]
fn a_jvm_not_given_its_collector_is_told_a_smaller_limit_changes_it() {
    let picks = |cmd: &mut Command| -> String {
        let out = util::group::output(cmd.args(["-XX:+PrintFlagsFinal", "-version"]));
        let flags = String::from_utf8_lossy(&out.stdout);
        flags
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.len() > 3 && w[1].ends_with("GC") && w[3] == "true").then(|| w[1].to_string())
            })
            .filter(|f| ["UseSerialGC", "UseG1GC", "UseParallelGC"].contains(&f.as_str()))
            .collect()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus >= 2 {
        assert_eq!(picks(&mut Command::new("java")), "UseG1GC");
    }
    // The premise, on a real cgroup: 1 GiB -> Serial.
    if util::cgroup::v1_memory_writable() {
        let mut cgroups = util::cgroup::Cgroups::default();
        let dir = cgroups.make("memory", "jvm-gc", &[("memory.limit_in_bytes", "1G")]);
        let mut java = util::cgroup::in_cgroups(&[&dir], &["java"]);
        assert_eq!(picks(&mut java), "UseSerialGC");
    }
    let jvm = churning_jvm("-Xshare:auto");
    let target = &sized(&jvm);
    assert_eq!(target["jvm"]["collector_given"], false, "{target:#}");
    let memory = &target["verdicts"]["sizing"]["memory"];
    assert!(memory["recommended_limit_bytes"].as_f64().unwrap() < 1792.0 * 1048576.0);
    let reason = memory["reason"].as_str().unwrap();
    assert!(
        reason.contains("under a 1792 MiB limit a JVM not given its collector picks Serial"),
        "{reason}"
    );
}

/// A JVM sizing its heap at `-XX:MaxRAMPercentage=90` in a real 300 MiB memory
/// cgroup: its heap may grow to 270 MiB (the JVM itself says so there), and
/// with what it uses outside the heap that does not fit: the kernel would kill
/// it before its collector throws `OutOfMemoryError`. The limit it has is
/// judged `under`, as one under `-Xmx` is.
#[test]
fn a_limit_its_heap_share_would_outgrow_is_under() {
    if !util::cgroup::v1_memory_writable() {
        eprintln!("skipped: needs a writable v1 memory hierarchy (root)");
        return;
    }
    let mut cgroups = util::cgroup::Cgroups::default();
    let dir = cgroups.make("memory", "jvm-share", &[("memory.limit_in_bytes", "300M")]);
    let args = ["java", "-XX:+UseG1GC", "-XX:MaxRAMPercentage=90"];
    // The premise: the JVM's own heap maximum under that limit.
    let max_heap = max_heap_size(&mut util::cgroup::in_cgroups(&[&dir], &args));
    assert!(
        (max_heap / 1048576.0 - 270.0).abs() <= 2.0,
        "the JVM's heap maximum under 300 MiB at 90%: {max_heap}"
    );
    let app = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/apps/runtimes/JvmChurn.java"
    );
    let mut cmd = util::cgroup::in_cgroups(&[&dir], &args);
    let jvm = Group::spawn(cmd.args([app, "16", "4"])).expect("java");
    let pid = jvm.pid().to_string();
    // Watched once it runs java in its cgroup, not the shell that moves it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "java\n" {
        assert!(Instant::now() < deadline, "{pid} never ran java");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = Command::new(util::BIN);
    cmd.env("OUTRIDER_ANALYSIS__SIZING_MIN_DATA", "2s");
    let o = Outrider::start_with(cmd, &["--pid", &pid, "--interval", "200ms"]);
    let status = o.wait_status("an under verdict from its heap share", |s| {
        let m = &s["snapshot"]["targets"][0]["verdicts"]["sizing"]["memory"];
        m["allocation"] == "under" && m["reason"].as_str().is_some_and(|r| r.contains("heap"))
    });
    let target = &status["snapshot"]["targets"][0];
    let memory = &target["verdicts"]["sizing"]["memory"];
    let reason = memory["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "the 300 MiB limit is under the heap maximum the JVM takes under it \
             (270 MiB: 90% of it, -XX:MaxRAMPercentage) plus the "
        ),
        "{reason}"
    );
    // What it uses outside the heap now: with the JVM's own maximum, past the limit.
    let heap = &target["jvm"];
    let committed = heap["old_capacity_bytes"].as_f64().unwrap()
        + heap["young_capacity_bytes"].as_f64().unwrap();
    let outside = target["resident_memory_bytes"].as_f64().unwrap() - committed;
    assert!(
        max_heap + outside > 300.0 * 1048576.0,
        "{max_heap} + {outside}: {memory:#}"
    );
    // The limit recommended leaves the room: the JVM itself, told it has that
    // limit (`-XX:MaxRAM`, same arguments), takes a heap maximum that fits
    // beside what it uses outside the heap (its maximum follows the limit:
    // here a smaller one).
    let recommended = memory["recommended_limit_bytes"].as_f64().unwrap();
    let under = max_heap_size(
        Command::new(args[0])
            .args(&args[1..])
            .arg(format!("-XX:MaxRAM={}", recommended as u64)),
    );
    eprintln!("under {recommended}: heap maximum {under}, outside {outside}: {reason}");
    assert!(
        under >= committed && under + 1.3 * outside * 0.95 <= recommended,
        "under {recommended} the JVM's maximum is {under}: {memory:#}"
    );
    drop(o);
    drop(jvm);
}
