//! Every layout on fixture `/proc/<pid>` trees whose files are the kernel's own texts
//! (tests/data/cgroup/).

use std::path::{Path, PathBuf};

use super::discover::{cgroup2_mount, unified_path};
use super::v1::{parse_limit, parse_quota};
use super::v2::{parse_cpu_max, parse_pressure};
use super::*;

/// A kernel text from tests/data/cgroup/.
fn kernel(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cgroup")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture /proc holding pid 7, whose root directory is `7/root`.
struct Proc {
    dir: tempfile::TempDir,
}

impl Proc {
    fn new(mountinfo: &str, cgroup: &str) -> Proc {
        let p = Proc {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(p.pid_dir().join("root")).unwrap();
        std::fs::write(p.pid_dir().join("mountinfo"), mountinfo).unwrap();
        std::fs::write(p.pid_dir().join("cgroup"), cgroup).unwrap();
        p
    }

    fn pid_dir(&self) -> PathBuf {
        self.dir.path().join("7")
    }

    /// `path` inside the app's root (`/sys/fs/cgroup/…`), as seen from here.
    fn at(&self, path: &str) -> PathBuf {
        self.pid_dir()
            .join("root")
            .join(path.trim_start_matches('/'))
    }

    /// Writes `files` (name, text) into the directory at `path`, creating it.
    fn files(&self, path: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.at(path);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    fn resolve(&self) -> Result<Location, String> {
        resolve(self.dir.path(), 7)
    }
}

/// A v1 hierarchy root: only it has `cgroup.sane_behavior`.
const V1_ROOT_MEMORY: &[(&str, &str)] = &[
    ("cgroup.sane_behavior", "0\n"),
    ("memory.limit_in_bytes", "9223372036854771712\n"),
    ("memory.usage_in_bytes", "3352780800\n"),
];
const V1_ROOT_CPU: &[(&str, &str)] = &[
    ("cgroup.sane_behavior", "0\n"),
    ("cpu.cfs_quota_us", "-1\n"),
    ("cpu.cfs_period_us", "100000\n"),
    (
        "cpu.stat",
        "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
    ),
];

/// The hybrid host of tests/data/cgroup/hybrid with the app in `/orfix` of the
/// memory, cpu and unified hierarchies, each with its kernel files.
fn hybrid_host() -> Proc {
    let p = Proc::new(&kernel("hybrid/mountinfo"), &kernel("hybrid/cgroup"));
    p.files("/sys/fs/cgroup/memory", V1_ROOT_MEMORY);
    p.files(
        "/sys/fs/cgroup/memory/orfix",
        &[
            ("memory.limit_in_bytes", "134217728\n"),
            ("memory.usage_in_bytes", &kernel("v1/memory.usage_in_bytes")),
            ("memory.stat", &kernel("v1/memory.stat")),
            ("memory.oom_control", &kernel("v1/memory.oom_control")),
            ("memory.failcnt", &kernel("v1/memory.failcnt")),
        ],
    );
    p.files("/sys/fs/cgroup/cpu", V1_ROOT_CPU);
    p.files(
        "/sys/fs/cgroup/cpu/orfix",
        &[
            ("cpu.cfs_quota_us", "20000\n"),
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.stat", &kernel("v1/cpu.stat")),
        ],
    );
    // The unified root has pressure files too (the whole host's), but no
    // `cgroup.events`.
    p.files(
        "/sys/fs/cgroup/unified",
        &[(
            "cpu.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=99000000\n",
        )],
    );
    p.files(
        "/sys/fs/cgroup/unified/orfix",
        &[
            ("cgroup.events", "populated 1\nfrozen 0\n"),
            ("cpu.pressure", &kernel("hybrid/cpu.pressure")),
        ],
    );
    p
}

#[test]
fn parses_cpu_max() {
    assert_eq!(parse_cpu_max("max 100000\n"), None);
    assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
    assert_eq!(parse_cpu_max("200000 100000"), Some(2.0));
}

#[test]
fn parses_v1_limits() {
    assert_eq!(parse_limit("9223372036854771712\n"), None); // 4 KiB pages
    assert_eq!(parse_limit("9223372036854710272\n"), None); // 64 KiB pages
    assert_eq!(parse_limit("18446744073709551615\n"), None); // before 3.19
    assert_eq!(parse_limit("134217728\n"), Some(134217728));
    assert_eq!(parse_quota("-1\n", "100000\n"), None);
    assert_eq!(parse_quota("20000\n", "100000\n"), Some(0.2));
    assert_eq!(parse_quota("150000\n", "50000\n"), Some(3.0));
}

#[test]
fn parses_pressure_totals() {
    let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n";
    assert_eq!(parse_pressure(text), vec![("some", 2.5), ("full", 0.001)]);
}

#[test]
fn finds_cgroup2_mount_and_path() {
    let mi = kernel("hybrid/mountinfo");
    assert_eq!(
        cgroup2_mount(&mi).as_deref(),
        Some("/sys/fs/cgroup/unified")
    );
    assert_eq!(
        cgroup2_mount("24 1 0:22 / /x rw - cgroup cgroup rw\n"),
        None
    );
    assert_eq!(
        unified_path("1:cpu:/\n0::/kubepods/pod1/abc\n"),
        Some("/kubepods/pod1/abc")
    );
    assert_eq!(unified_path(&kernel("hybrid/cgroup")), Some("/orfix"));
}

/// A v2 container: every figure from one directory, `memory.events` (hierarchical)
/// rather than `memory.events.local`.
#[test]
fn reads_a_v2_cgroup() {
    let p = Proc::new(
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/kubepods/pod1/ctr\n",
    );
    let dir = p.files(
        "/sys/fs/cgroup/kubepods/pod1/ctr",
        &[
            ("memory.current", "104857600\n"),
            ("memory.max", "536870912\n"),
            ("memory.stat", &kernel("v2/memory.stat")),
            ("memory.events", &kernel("v2/memory.events")),
            ("memory.events.local", &kernel("v2/memory.events.local")),
            ("cpu.max", "150000 100000\n"),
            ("cpu.stat", &kernel("v2/cpu.stat")),
            ("cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
        ],
    );
    let loc = p.resolve().unwrap();
    assert_eq!(loc.layout, Layout::V2);
    assert_eq!(loc.unified.as_deref(), Some(dir.as_path()));
    let (r, failures) = read(&loc);
    assert!(failures.is_empty());
    assert_eq!(r.layout, Layout::V2);
    assert_eq!(r.memory_current_bytes, Some(104857600));
    assert_eq!(r.memory_working_set_bytes, Some(104857600 - 4194304));
    assert_eq!(r.memory_limit_bytes, Some(536870912));
    assert_eq!(r.memory_limit_hits, Some(3));
    assert_eq!(r.cpu_limit_cores, Some(1.5));
    assert_eq!(r.cpu_periods, Some(40));
    assert_eq!(r.cpu_throttled_periods, Some(10));
    assert_eq!(r.cpu_throttled_seconds, Some(2.5));
    assert_eq!(r.oom_kills, Some(1));
    assert_eq!(r.pressure, vec![("cpu", "some", 1.0), ("cpu", "full", 0.0)]);
}

/// A pod-level limit: the container's cgroup has none of its own, its pod's
/// cgroup has 256 MiB and half a core (and the level above a looser 1 GiB). The
/// pod's limits bind the app, and its `cpu.stat` is the throttling that counts.
#[test]
fn a_v2_limit_set_on_an_enclosing_cgroup_binds_the_app() {
    let p = Proc::new(
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/kubepods/pod1/ctr\n",
    );
    // The root cgroup has neither limit file: the walk ends below it.
    p.files("/sys/fs/cgroup", &[("cgroup.procs", "1\n")]);
    p.files(
        "/sys/fs/cgroup/kubepods",
        &[("memory.max", "1073741824\n"), ("cpu.max", "max 100000\n")],
    );
    p.files(
        "/sys/fs/cgroup/kubepods/pod1",
        &[
            ("memory.max", "268435456\n"),
            ("cpu.max", "50000 100000\n"),
            (
                "cpu.stat",
                "usage_usec 9\nnr_periods 400\nnr_throttled 300\nthrottled_usec 7000000\n",
            ),
        ],
    );
    p.files(
        "/sys/fs/cgroup/kubepods/pod1/ctr",
        &[
            ("memory.current", "104857600\n"),
            ("memory.max", "max\n"),
            ("cpu.max", "max 100000\n"),
            ("cpu.stat", &kernel("v2/cpu.stat")),
        ],
    );
    let (r, failures) = read(&p.resolve().unwrap());
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(r.memory_limit_bytes, None);
    assert_eq!(r.memory_enclosing_limit_bytes, Some(268435456));
    assert_eq!(r.binding_memory_limit(), Some((268435456, true)));
    assert_eq!(r.cpu_limit_cores, None);
    assert_eq!(r.cpu_enclosing_limit_cores, Some(0.5));
    assert_eq!(r.binding_cpu_limit(), Some((0.5, true)));
    assert_eq!(r.cpu_periods, Some(400));
    assert_eq!(r.cpu_throttled_periods, Some(300));
    assert_eq!(r.cpu_throttled_seconds, Some(7.0));

    // The container's own limits, when lower, are the ones that bind: no
    // enclosing figure, the container's own throttling.
    let ctr = p.at("/sys/fs/cgroup/kubepods/pod1/ctr");
    std::fs::write(ctr.join("memory.max"), "134217728\n").unwrap();
    std::fs::write(ctr.join("cpu.max"), "20000 100000\n").unwrap();
    let (r, _) = read(&p.resolve().unwrap());
    assert_eq!(r.memory_enclosing_limit_bytes, None);
    assert_eq!(r.binding_memory_limit(), Some((134217728, false)));
    assert_eq!(r.cpu_enclosing_limit_cores, None);
    assert_eq!(r.cpu_throttled_periods, Some(10));
}

/// The quota that binds moves from the pod's cgroup to the container's own: the
/// throttling counters carry on from those shown, not jump from the pod's 300
/// throttled periods to the container's 10 (a tick of false throttling) nor go
/// back (a reset).
#[test]
fn throttling_counters_carry_on_when_the_binding_cgroup_changes() {
    let p = Proc::new(
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/kubepods/pod1/ctr\n",
    );
    p.files(
        "/sys/fs/cgroup/kubepods/pod1",
        &[
            ("memory.max", "max\n"),
            ("cpu.max", "50000 100000\n"),
            (
                "cpu.stat",
                "nr_periods 400\nnr_throttled 300\nthrottled_usec 7000000\n",
            ),
        ],
    );
    let ctr = p.files(
        "/sys/fs/cgroup/kubepods/pod1/ctr",
        &[
            ("memory.max", "max\n"),
            ("cpu.max", "max 100000\n"),
            (
                "cpu.stat",
                "nr_periods 40\nnr_throttled 10\nthrottled_usec 2500000\n",
            ),
        ],
    );
    let loc = p.resolve().unwrap();
    let mut files = Files::default();
    let (r, _) = read_with(&loc, &mut files);
    assert_eq!(
        (r.cpu_periods, r.cpu_throttled_periods),
        (Some(400), Some(300))
    );
    // The container gets a lower quota of its own: its cpu.stat is read now.
    std::fs::write(ctr.join("cpu.max"), "20000 100000\n").unwrap();
    let (r, _) = read_with(&loc, &mut files);
    assert_eq!(r.cpu_enclosing_limit_cores, None);
    assert_eq!(
        (r.cpu_periods, r.cpu_throttled_periods),
        (Some(400), Some(300))
    );
    assert_eq!(r.cpu_throttled_seconds, Some(7.0));
    std::fs::write(
        ctr.join("cpu.stat"),
        "nr_periods 50\nnr_throttled 15\nthrottled_usec 3000000\n",
    )
    .unwrap();
    let (r, _) = read_with(&loc, &mut files);
    assert_eq!(
        (r.cpu_periods, r.cpu_throttled_periods),
        (Some(410), Some(305))
    );
    assert_eq!(r.cpu_throttled_seconds, Some(7.5));
}

/// v1: `hierarchical_memory_limit` is the lowest limit of the cgroup and its
/// ancestors, seen even where they are not; the CPU quota is walked.
#[test]
fn a_v1_limit_set_on_an_enclosing_cgroup_binds_the_app() {
    let p = hybrid_host();
    let memory = p.at("/sys/fs/cgroup/memory/orfix");
    std::fs::write(
        memory.join("memory.limit_in_bytes"),
        "9223372036854771712\n",
    )
    .unwrap();
    let stat = kernel("v1/memory.stat").replace(
        "hierarchical_memory_limit 134217728",
        "hierarchical_memory_limit 209715200",
    );
    std::fs::write(memory.join("memory.stat"), stat).unwrap();
    // The app in a child of orfix, which holds the quota; the child has none.
    let cpu = p.files(
        "/sys/fs/cgroup/cpu/orfix/app",
        &[
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
            (
                "cpu.stat",
                "nr_periods 5\nnr_throttled 0\nthrottled_time 0\n",
            ),
        ],
    );
    let mut loc = p.resolve().unwrap();
    loc.cpu = Some(cpu);
    let (r, failures) = read(&loc);
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(r.memory_limit_bytes, None);
    assert_eq!(r.memory_enclosing_limit_bytes, Some(209715200));
    assert_eq!(r.cpu_limit_cores, None);
    assert_eq!(r.cpu_enclosing_limit_cores, Some(0.2));
    // orfix's cpu.stat (the kernel's text), not the child's.
    assert_ne!(r.cpu_periods, Some(5));
    assert_eq!(
        r.cpu_periods,
        flat_keyed(&kernel("v1/cpu.stat"), "nr_periods")
    );
}

#[test]
fn unlimited_v2_is_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
    std::fs::write(dir.path().join("cpu.max"), "max 100000\n").unwrap();
    let (r, _) = read(&Location {
        layout: Layout::V2,
        unified: Some(dir.path().to_path_buf()),
        memory: None,
        cpu: None,
    });
    assert_eq!(r.memory_limit_bytes, None);
    assert_eq!(r.cpu_limit_cores, None);
}

#[test]
fn resolves_a_v2_container_cgroup_through_proc_root() {
    // The container sees its cgroup at the mount root (its own cgroup namespace).
    let p = Proc::new(
        "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/\n",
    );
    let dir = p.files("/sys/fs/cgroup", &[("memory.max", "max\n")]);
    assert_eq!(p.resolve().unwrap().unified, Some(dir.clone()));
    // The host root cgroup (no cpu.max, no memory.max) is not a container.
    std::fs::remove_file(dir.join("memory.max")).unwrap();
    let why = p.resolve().unwrap_err();
    assert!(why.contains("root cgroup"), "{why}");
}

/// The host this project runs on: v1 memory and cpu plus PSI from the unified
/// mount, each hierarchy's own cgroup of the app, the kernel's texts throughout.
#[test]
fn reads_a_hybrid_host() {
    let p = hybrid_host();
    let loc = p.resolve().unwrap();
    assert_eq!(
        loc,
        Location {
            layout: Layout::Hybrid,
            unified: Some(p.at("/sys/fs/cgroup/unified/orfix")),
            memory: Some(p.at("/sys/fs/cgroup/memory/orfix")),
            cpu: Some(p.at("/sys/fs/cgroup/cpu/orfix")),
        }
    );
    let (r, failures) = read(&loc);
    assert!(failures.is_empty());
    assert_eq!(r.layout, Layout::Hybrid);
    assert_eq!(r.memory_limit_bytes, Some(128 << 20));
    assert_eq!(r.memory_current_bytes, Some(67342336));
    // usage less total_inactive_file (16867328), not the local inactive_file.
    assert_eq!(r.memory_working_set_bytes, Some(67342336 - 16867328));
    assert_eq!(r.oom_kills, Some(1));
    assert_eq!(r.memory_limit_hits, Some(201));
    assert_eq!(r.cpu_limit_cores, Some(0.2));
    assert_eq!(r.cpu_periods, Some(30));
    assert_eq!(r.cpu_throttled_periods, Some(30));
    // throttled_time is in nanoseconds.
    assert_eq!(r.cpu_throttled_seconds, Some(1.819996343));
    assert_eq!(
        r.pressure,
        vec![("cpu", "some", 2.261248), ("cpu", "full", 2.250775)]
    );
}

/// An app in the unified root on a hybrid host: its pressure would be the whole
/// host's, so none is read; the v1 figures still are.
#[test]
fn hybrid_without_a_unified_cgroup_reads_no_pressure() {
    let p = hybrid_host();
    std::fs::write(
        p.pid_dir().join("cgroup"),
        kernel("hybrid/cgroup").replace("0::/orfix", "0::/"),
    )
    .unwrap();
    let loc = p.resolve().unwrap();
    assert_eq!(loc.layout, Layout::Hybrid);
    assert_eq!(loc.unified, None);
    let (r, _) = read(&loc);
    assert_eq!(r.pressure, vec![]);
    assert_eq!(r.memory_limit_bytes, Some(128 << 20));
}

/// Pure v1 (no cgroup2 mount), cpu and cpuacct mounted together, and unlimited: the
/// huge `limit_in_bytes` and quota -1 read as no limit.
#[test]
fn reads_an_unlimited_v1_cgroup_with_a_joint_cpu_mount() {
    let p = Proc::new(
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
         35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
        "4:memory:/system.slice/app.service\n2:cpu,cpuacct:/system.slice/app.service\n0::/system.slice/app.service\n",
    );
    p.files(
        "/sys/fs/cgroup/memory/system.slice/app.service",
        &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.usage_in_bytes", "1048576\n"),
        ],
    );
    p.files(
        "/sys/fs/cgroup/cpu,cpuacct/system.slice/app.service",
        &[
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.cfs_period_us", "100000\n"),
        ],
    );
    let loc = p.resolve().unwrap();
    assert_eq!(loc.layout, Layout::V1);
    assert_eq!(loc.unified, None);
    let (r, _) = read(&loc);
    assert_eq!(r.layout, Layout::V1);
    assert_eq!(r.memory_current_bytes, Some(1048576));
    assert_eq!(r.memory_limit_bytes, None);
    assert_eq!(r.cpu_limit_cores, None);
    // No memory.stat: no working set rather than a guess.
    assert_eq!(r.memory_working_set_bytes, None);
    assert_eq!(r.pressure, vec![]);
}

/// A v1 container without a cgroup namespace: its cgroup is bind-mounted (mount root
/// `/docker/abc`) and `/proc/<pid>/cgroup` shows the host's path.
#[test]
fn resolves_a_bind_mounted_v1_container() {
    let p = Proc::new(
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
        "4:memory:/docker/abc\n0::/\n",
    );
    let dir = p.files(
        "/sys/fs/cgroup/memory",
        &[("memory.limit_in_bytes", "268435456\n")],
    );
    let loc = p.resolve().unwrap();
    assert_eq!(
        (loc.layout, loc.memory, loc.cpu),
        (Layout::V1, Some(dir), None)
    );
}

/// A process in the root of every v1 hierarchy is not in a container, whatever the
/// files there say; one in a memory cgroup only gets memory figures.
#[test]
fn the_v1_root_is_not_a_container() {
    let p = Proc::new(&kernel("hybrid/mountinfo"), "4:memory:/\n1:cpu:/\n0::/\n");
    p.files("/sys/fs/cgroup/memory", V1_ROOT_MEMORY);
    p.files("/sys/fs/cgroup/cpu", V1_ROOT_CPU);
    let why = p.resolve().unwrap_err();
    assert!(why.contains("root of the v1 memory and cpu"), "{why}");

    std::fs::write(
        p.pid_dir().join("cgroup"),
        "4:memory:/batch\n1:cpu:/\n0::/\n",
    )
    .unwrap();
    p.files(
        "/sys/fs/cgroup/memory/batch",
        &[("memory.limit_in_bytes", "9223372036854771712\n")],
    );
    let loc = p.resolve().unwrap();
    assert_eq!(loc.memory, Some(p.at("/sys/fs/cgroup/memory/batch")));
    assert_eq!(loc.cpu, None);
    let (r, _) = read(&loc);
    assert_eq!((r.cpu_limit_cores, r.cpu_periods), (None, None));
}

/// Missing controllers: no cgroup mount at all, and a cgroup file missing from /proc.
#[test]
fn says_why_without_a_cgroup() {
    let p = Proc::new("22 1 0:21 / /proc rw - proc proc rw\n", "0::/\n");
    let why = p.resolve().unwrap_err();
    assert!(why.starts_with("no cgroup mount"), "{why}");
    std::fs::remove_file(p.pid_dir().join("cgroup")).unwrap();
    let why = p.resolve().unwrap_err();
    assert!(why.starts_with("cannot read"), "{why}");
    // A v2 mount, and no `0::` line.
    let p = Proc::new("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "");
    assert!(p.resolve().unwrap_err().contains("0::"));
}

#[test]
fn processes_outside_the_target_make_a_shared_cgroup() {
    let ours = |pid: i32| pid == 10 || pid == 11;
    assert_eq!(count_others("10\n11\n", &ours), 0);
    assert_eq!(count_others("10\n11\n12\n400\n", &ours), 2);
    assert_eq!(count_others("", &ours), 0);
    let shared = CgroupReading {
        memory_working_set_bytes: Some(5 << 30),
        other_processes: Some(2),
        ..Default::default()
    };
    assert_eq!(shared.own_working_set_bytes(), None);
    let own = CgroupReading {
        other_processes: Some(0),
        ..shared.clone()
    };
    assert_eq!(own.own_working_set_bytes(), Some(5 << 30));
}

/// Kept files are read again from the start (a changed value is seen), a missing
/// one reads as absent, and a file not read during a tick is closed at the sweep.
#[test]
fn kept_files_are_read_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.current");
    std::fs::write(&path, "100\n").unwrap();
    let mut files = Files::default();
    assert_eq!(files.read(&path).unwrap(), "100\n");
    std::fs::write(&path, "2000\n").unwrap(); // same file, rewritten in place
    assert_eq!(files.read(&path).unwrap(), "2000\n");
    assert_eq!(files.open.len(), 1);
    let missing = dir.path().join("memory.max");
    assert!(get(dir.path(), "memory.max", &mut files).is_none());
    assert!(files.failures.is_empty() && !files.open.contains_key(missing.as_os_str()));
    files.sweep();
    assert_eq!(files.open.len(), 1, "read this tick: kept");
    files.sweep();
    assert!(files.open.is_empty(), "not read since: closed");
}

/// `cgroup.procs` is counted again when the members change and otherwise only once
/// the last count is `recheck` old; a count that could not be made is tried again
/// at once; a cgroup no longer read is forgotten at the sweep.
#[test]
fn other_processes_are_counted_again_when_members_change_or_the_count_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let procs = dir.path().join("cgroup.procs");
    std::fs::write(&procs, "10\n11\n").unwrap();
    let loc = Location {
        layout: Layout::V2,
        unified: Some(dir.path().to_path_buf()),
        memory: None,
        cpu: None,
    };
    let (hour, now) = (Duration::from_secs(3600), Duration::ZERO);
    let mut files = Files::default();
    let mut count =
        |members: &[i32], recheck| files.other_processes(&loc, members, 1, recheck, None);
    assert_eq!(count(&[10, 11], hour), Some(0));
    // Pid 1 is Outrider, 400 a process that is not ours.
    std::fs::write(&procs, "1\n10\n11\n400\n").unwrap();
    assert_eq!(
        count(&[10, 11], hour),
        Some(0),
        "same members: the last count"
    );
    assert_eq!(count(&[10], hour), Some(2), "a member left: 11 and 400");
    std::fs::write(&procs, "10\n").unwrap();
    assert_eq!(count(&[10], hour), Some(2), "same members: the last count");
    assert_eq!(count(&[10], now), Some(0), "an old count: read again");
    std::fs::remove_file(&procs).unwrap();
    assert_eq!(count(&[10], now), None);
    std::fs::write(&procs, "10\n400\n").unwrap();
    assert_eq!(count(&[10], hour), Some(1), "after a failure: read again");
    // A process joins: the cgroup's memory jumps by 150 MiB before the recheck is
    // due, and the count is made again at once.
    std::fs::write(&procs, "10\n400\n500\n").unwrap();
    let mut at = |usage: u64| files.other_processes(&loc, &[10], 1, hour, Some(usage << 20));
    assert_eq!(at(40), Some(1), "no usage then: the last count");
    assert_eq!(at(46), Some(1), "6 MiB more: the last count");
    assert_eq!(at(200), Some(2), "150 MiB more: read again");
    files.sweep();
    assert_eq!(files.counted.len(), 1, "read this tick: kept");
    files.sweep();
    assert!(files.counted.is_empty(), "not read since: forgotten");
}

#[test]
fn a_flat_keyed_value_is_the_first_whole_key_at_a_line_start_with_a_number() {
    let s =
        "total_inactive_file 5\ninactive_file_x 9\ninactive_file 3\nnr_periods x\nnr_periods 7\n";
    assert_eq!(flat_keyed(s, "inactive_file"), Some(3));
    assert_eq!(flat_keyed(s, "total_inactive_file"), Some(5));
    assert_eq!(flat_keyed(s, "inactive_file_x"), Some(9));
    assert_eq!(
        flat_keyed(s, "nr_periods"),
        Some(7),
        "a value that is no number is passed over"
    );
    assert_eq!(
        flat_keyed(s, "file"),
        None,
        "only a whole key at a line's start"
    );
    assert_eq!(flat_keyed(s, "nr_throttled"), None);
    assert_eq!(
        flat_keyed("max 4", "max"),
        Some(4),
        "the last line without its newline"
    );
    assert_eq!(flat_keyed("oom_kill 2\r\n", "oom_kill"), Some(2));
    assert_eq!(flat_keyed("", "max"), None);
    // The kernel's own v1 file: the hierarchical figure, not the local one.
    let v1 = kernel("v1/memory.stat");
    let expected = v1
        .lines()
        .find_map(|l| l.strip_prefix("total_inactive_file "));
    assert_eq!(
        flat_keyed(&v1, "total_inactive_file"),
        expected.and_then(|v| v.parse().ok())
    );
}

#[test]
fn oom_kills_are_the_apps_unless_the_cgroup_is_shared_and_it_lost_no_process() {
    let mut a = OomAttribution::default();
    let reading =
        |kills: u64, others: u64, members: &[i32], moved: bool, a: &mut OomAttribution| {
            let mut r = CgroupReading {
                oom_kills: Some(kills),
                other_processes: Some(others),
                ..Default::default()
            };
            a.attribute(&mut r, members, moved);
            r.app_oom_kills()
        };
    // Kills before Outrider came are the baseline, the app's as the kernel says.
    assert_eq!(reading(2, 0, &[10, 11], false, &mut a), Some(2));
    // A cgroup of its own: every kill is the app's.
    assert_eq!(reading(3, 0, &[10, 11], false, &mut a), Some(3));
    // Shared, and both processes still there: another process was killed.
    assert_eq!(reading(4, 1, &[10, 11], false, &mut a), Some(3));
    // Shared, and process 11 gone with the kill: the app's.
    assert_eq!(reading(5, 1, &[10], false, &mut a), Some(4));
    // The only other process killed: the cgroup reads unshared after the kill,
    // but it was shared before it: not the app's.
    assert_eq!(reading(6, 0, &[10], false, &mut a), Some(4));
    // The app moved to a cgroup that counted 9 kills before: a baseline, the
    // app's count carries on.
    assert_eq!(reading(9, 0, &[10], true, &mut a), Some(4));
    assert_eq!(reading(10, 0, &[10], false, &mut a), Some(5));
    // A new cgroup (the counter went back): the app's count carries on from 5
    // as far as the new count allows.
    assert_eq!(reading(0, 0, &[20], false, &mut a), Some(0));
    assert_eq!(reading(1, 0, &[20], false, &mut a), Some(1));
}
