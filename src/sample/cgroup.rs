//! The app's container, from its cgroup v2 directory.
//!
//! Where the directory is: the cgroup2 mount point in the app's own mount table
//! (`/proc/<pid>/mountinfo`), seen through `/proc/<pid>/root`, joined with the path in
//! `/proc/<pid>/cgroup`; inside a container (its own cgroup namespace) that path is
//! `/` and the mount point itself is the container's cgroup. The host's root cgroup
//! has no `cpu.max` nor `memory.max`: it is not a container, and is reported as
//! unreachable rather than passed off as one.
//!
//! Every parser takes a string so tests can feed fixture text.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One reading of a container's cgroup. `None` where a file is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupReading {
    pub memory_current_bytes: Option<u64>,
    /// `memory.current - inactive_file`, as the kubelet and cAdvisor compute it.
    pub memory_working_set_bytes: Option<u64>,
    /// `None` when `memory.max` is `max`.
    pub memory_limit_bytes: Option<u64>,
    /// `None` when `cpu.max` is `max`.
    pub cpu_limit_cores: Option<f64>,
    pub cpu_periods: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    pub cpu_throttled_seconds: Option<f64>,
    pub oom_kills: Option<u64>,
    /// (resource, kind, seconds stalled) from `cpu|memory|io.pressure`.
    pub pressure: Vec<(&'static str, &'static str, f64)>,
}

/// Finds the cgroup v2 directory of `pid`, or says why there is none.
pub fn resolve(proc_root: &Path, pid: i32) -> Result<PathBuf, String> {
    let pdir = proc_root.join(pid.to_string());
    let mountinfo = std::fs::read_to_string(pdir.join("mountinfo"))
        .map_err(|e| format!("cannot read {}: {e}", pdir.join("mountinfo").display()))?;
    let mount =
        cgroup2_mount(&mountinfo).ok_or("no cgroup2 mount: cgroup v1 host or none mounted")?;
    let cgroup = std::fs::read_to_string(pdir.join("cgroup"))
        .map_err(|e| format!("cannot read {}: {e}", pdir.join("cgroup").display()))?;
    let rel = unified_path(&cgroup).ok_or("no cgroup v2 entry (0::) in /proc/<pid>/cgroup")?;
    let base = pdir.join("root").join(mount.trim_start_matches('/'));
    let mut candidates = Vec::new();
    if !rel.split('/').any(|s| s == "..") && rel != "/" {
        candidates.push(base.join(rel.trim_start_matches('/')));
    }
    candidates.push(base);
    for dir in candidates {
        if dir.join("cpu.max").exists() || dir.join("memory.max").exists() {
            return Ok(dir);
        }
    }
    Err(format!(
        "cgroup {rel} is the root cgroup or not visible from here: no container limits to read"
    ))
}

/// The mount point of the first cgroup2 filesystem in a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        (fstype == "cgroup2").then(|| left.split_whitespace().nth(4).map(str::to_string))?
    })
}

/// The path of the `0::` line of a `/proc/<pid>/cgroup` text.
pub fn unified_path(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Reads every file it knows in `dir`; missing or unreadable files leave `None`.
/// Returns the reading and the names of files that exist but could not be read.
pub fn read(dir: &Path) -> (CgroupReading, Vec<(String, std::io::Error)>) {
    let mut failures = Vec::new();
    let mut get = |name: &str| -> Option<String> {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                failures.push((dir.join(name).display().to_string(), e));
                None
            }
        }
    };
    let mut r = CgroupReading {
        memory_current_bytes: get("memory.current").and_then(|s| s.trim().parse().ok()),
        memory_limit_bytes: get("memory.max").and_then(|s| parse_max(&s)),
        ..Default::default()
    };
    if let (Some(current), Some(stat)) = (r.memory_current_bytes, get("memory.stat")) {
        let inactive = flat_keyed(&stat, "inactive_file").unwrap_or(0);
        r.memory_working_set_bytes = Some(current.saturating_sub(inactive));
    }
    if let Some(s) = get("cpu.max") {
        r.cpu_limit_cores = parse_cpu_max(&s);
    }
    if let Some(s) = get("cpu.stat") {
        r.cpu_periods = flat_keyed(&s, "nr_periods");
        r.cpu_throttled_periods = flat_keyed(&s, "nr_throttled");
        r.cpu_throttled_seconds = flat_keyed(&s, "throttled_usec").map(|us| us as f64 / 1e6);
    }
    if let Some(s) = get("memory.events") {
        r.oom_kills = flat_keyed(&s, "oom_kill");
    }
    for resource in ["cpu", "memory", "io"] {
        if let Some(s) = get(&format!("{resource}.pressure")) {
            for (kind, secs) in parse_pressure(&s) {
                r.pressure.push((resource, kind, secs));
            }
        }
    }
    (r, failures)
}

/// `"max"` → None, a number → Some.
pub fn parse_max(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

/// `cpu.max` is `"$MAX $PERIOD"`; `"max 100000"` means no limit.
pub fn parse_cpu_max(s: &str) -> Option<f64> {
    let mut it = s.split_whitespace();
    let quota: f64 = it.next()?.parse().ok()?;
    let period: f64 = it.next().unwrap_or("100000").parse().ok()?;
    (period > 0.0).then_some(quota / period)
}

/// A value of a flat-keyed file such as `cpu.stat` or `memory.stat`.
pub fn flat_keyed(s: &str, key: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=12345` → ("some", 0.012345).
pub fn parse_pressure(s: &str) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    for line in s.lines() {
        let kind = if line.starts_with("some ") {
            "some"
        } else if line.starts_with("full ") {
            "full"
        } else {
            continue;
        };
        if let Some(total) = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
        {
            out.push((kind, total as f64 / 1e6));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2.0));
    }

    #[test]
    fn parses_pressure_totals() {
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n";
        assert_eq!(parse_pressure(text), vec![("some", 2.5), ("full", 0.001)]);
    }

    #[test]
    fn finds_cgroup2_mount_and_path() {
        let mi = "24 1 0:22 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n\
                  30 1 0:26 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(mi).as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(
            cgroup2_mount("24 1 0:22 / /x rw - cgroup cgroup rw\n"),
            None
        );
        assert_eq!(
            unified_path("1:cpu:/\n0::/kubepods/pod1/abc\n"),
            Some("/kubepods/pod1/abc")
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn reads_a_fixture_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "memory.current", "104857600\n");
        write(d, "memory.max", "536870912\n");
        write(
            d,
            "memory.stat",
            "anon 1000\nfile 5000\ninactive_file 4194304\nactive_file 8\n",
        );
        write(d, "cpu.max", "150000 100000\n");
        write(
            d,
            "cpu.stat",
            "usage_usec 900\nnr_periods 40\nnr_throttled 10\nthrottled_usec 2500000\n",
        );
        write(
            d,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        write(d, "cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        let (r, failures) = read(d);
        assert!(failures.is_empty());
        assert_eq!(r.memory_current_bytes, Some(104857600));
        assert_eq!(r.memory_working_set_bytes, Some(104857600 - 4194304));
        assert_eq!(r.memory_limit_bytes, Some(536870912));
        assert_eq!(r.cpu_limit_cores, Some(1.5));
        assert_eq!(r.cpu_periods, Some(40));
        assert_eq!(r.cpu_throttled_periods, Some(10));
        assert_eq!(r.cpu_throttled_seconds, Some(2.5));
        assert_eq!(r.oom_kills, Some(1));
        assert_eq!(r.pressure, vec![("cpu", "some", 1.0), ("cpu", "full", 0.0)]);
    }

    #[test]
    fn unlimited_memory_is_none() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "memory.max", "max\n");
        write(dir.path(), "cpu.max", "max 100000\n");
        let (r, _) = read(dir.path());
        assert_eq!(r.memory_limit_bytes, None);
        assert_eq!(r.cpu_limit_cores, None);
    }

    #[test]
    fn resolves_a_container_cgroup_through_proc_root() {
        // A fixture /proc with pid 7 whose container sees its cgroup at the mount root.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("7");
        std::fs::create_dir_all(p.join("root/sys/fs/cgroup")).unwrap();
        write(
            &p,
            "mountinfo",
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        write(&p, "cgroup", "0::/\n");
        write(&p.join("root/sys/fs/cgroup"), "memory.max", "max\n");
        assert_eq!(
            resolve(dir.path(), 7).unwrap(),
            p.join("root/sys/fs/cgroup")
        );
        // The host root cgroup (no cpu.max, no memory.max) is not a container.
        std::fs::remove_file(p.join("root/sys/fs/cgroup/memory.max")).unwrap();
        assert!(resolve(dir.path(), 7).is_err());
    }
}
