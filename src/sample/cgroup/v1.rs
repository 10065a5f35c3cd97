//! cgroup v1: the `memory` and `cpu` controllers, each in a hierarchy of its own.
//!
//! memory: `memory.usage_in_bytes`, `memory.limit_in_bytes` (no limit reads as
//! LONG_MAX rounded down to a page, 9223372036854771712 with 4 KiB pages),
//! `memory.stat` `total_inactive_file` (hierarchical, as cAdvisor uses it for the
//! working set), `memory.oom_control` `oom_kill` (kernel 4.13 and later) and
//! `memory.failcnt`. cpu: `cpu.cfs_quota_us` (`-1` = no limit) over
//! `cpu.cfs_period_us`, and `cpu.stat` `nr_periods`, `nr_throttled`, `throttled_time`
//! (nanoseconds, where v2's `throttled_usec` is microseconds).
//!
//! Limits set above the app's cgroup bind it too: `memory.stat`
//! `hierarchical_memory_limit` is the lowest memory limit of the cgroup and all its
//! ancestors (the kernel's own answer, visible even where the ancestors are not);
//! the CPU quota has no such figure, so the enclosing cgroups visible from here are
//! walked.

use std::path::Path;

use super::{
    enclosing_dirs, flat_keyed, get, lower, read_plain, working_set, CgroupReading, Enclosing,
    Files,
};

/// Limits at or above this are v1's "no limit": the kernel's page counter maximum,
/// LONG_MAX rounded down to a page (any page size up to 1 MiB), or ULLONG_MAX on
/// kernels before 3.19.
const UNLIMITED_FROM: u64 = i64::MAX as u64 - (1 << 20);

/// Reads the `memory` controller's files in `dir` into `r`.
pub fn read_memory(dir: &Path, r: &mut CgroupReading, files: &mut Files) {
    let mut get = |name: &str| get(dir, name, files);
    r.memory_current_bytes = get("memory.usage_in_bytes").and_then(|s| s.trim().parse().ok());
    r.memory_limit_bytes = get("memory.limit_in_bytes").and_then(|s| parse_limit(&s));
    if let Some(stat) = get("memory.stat") {
        if let Some(usage) = r.memory_current_bytes {
            r.memory_working_set_bytes =
                Some(working_set(usage, flat_keyed(&stat, "total_inactive_file")));
        }
        let hierarchical = flat_keyed(&stat, "hierarchical_memory_limit");
        r.memory_enclosing_limit_bytes = lower(
            r.memory_limit_bytes,
            hierarchical.filter(|&v| v < UNLIMITED_FROM),
        );
    }
    if let Some(s) = get("memory.oom_control") {
        r.oom_kills = flat_keyed(&s, "oom_kill");
    }
    r.memory_limit_hits = get("memory.failcnt").and_then(|s| s.trim().parse().ok());
}

/// Reads the `cpu` controller's files in `dir` into `r`; `cpu.stat` from the
/// enclosing cgroup whose quota binds, when one does.
pub fn read_cpu(dir: &Path, r: &mut CgroupReading, files: &mut Files) {
    if let Some(quota) = get(dir, "cpu.cfs_quota_us", files) {
        let period = get(dir, "cpu.cfs_period_us", files);
        r.cpu_limit_cores = parse_quota(&quota, period.as_deref().unwrap_or("100000"));
    }
    let enclosing = files.enclosing(dir, enclosing_cpu).cpu;
    let binding = enclosing.filter(|(c, _)| lower(r.cpu_limit_cores, Some(*c)).is_some());
    r.cpu_enclosing_limit_cores = binding.as_ref().map(|(c, _)| *c);
    let stat_dir = binding.as_ref().map_or(dir, |(_, d)| d.as_path());
    if let Some(s) = get(stat_dir, "cpu.stat", files) {
        r.cpu_periods = flat_keyed(&s, "nr_periods");
        r.cpu_throttled_periods = flat_keyed(&s, "nr_throttled");
        r.cpu_throttled_seconds = flat_keyed(&s, "throttled_time").map(|ns| ns as f64 / 1e9);
    }
    files.continuous_cpu(dir, stat_dir, r);
}

/// The lowest CPU quota of the cgroups enclosing `dir`, and where it is.
fn enclosing_cpu(dir: &Path) -> Enclosing {
    let cpu = enclosing_dirs(dir, "cpu.cfs_quota_us")
        .filter_map(|d| {
            let quota = read_plain(d, "cpu.cfs_quota_us")?;
            let period = read_plain(d, "cpu.cfs_period_us")?;
            Some((parse_quota(&quota, &period)?, d.to_path_buf()))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    Enclosing { memory: None, cpu }
}

/// `memory.limit_in_bytes`: `None` when it is v1's "no limit".
pub fn parse_limit(s: &str) -> Option<u64> {
    s.trim().parse().ok().filter(|&v| v < UNLIMITED_FROM)
}

/// `cpu.cfs_quota_us` over `cpu.cfs_period_us`, in cores; `None` for quota `-1`.
pub fn parse_quota(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: i64 = period.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}
