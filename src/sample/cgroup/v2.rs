//! The unified hierarchy (cgroup v2): one directory holds every controller's files.
//!
//! `memory.current`, `memory.max` (`max` = no limit), `memory.stat` `inactive_file`,
//! `memory.events` (`max`, `oom_kill`; hierarchical, unlike `memory.events.local`),
//! `cpu.max` (`$QUOTA $PERIOD`, `max` = no limit), `cpu.stat` (`nr_periods`,
//! `nr_throttled`, `throttled_usec`) and `cpu|memory|io.pressure`.
//!
//! Limits set above the app's cgroup bind it too: the `memory.max` and `cpu.max`
//! of every enclosing cgroup visible from here are walked (none inside a
//! container's own cgroup namespace), as the JVM does since JDK-8322420.

use std::path::Path;

use super::{
    enclosing_dirs, flat_keyed, get, lower, read_plain, working_set, CgroupReading, Enclosing,
    Files,
};

/// Reads every v2 file it knows in `dir`.
pub fn read(dir: &Path, files: &mut Files) -> CgroupReading {
    let mut read = |name: &str| get(dir, name, files);
    let mut r = CgroupReading {
        memory_current_bytes: read("memory.current").and_then(|s| s.trim().parse().ok()),
        memory_limit_bytes: read("memory.max").and_then(|s| parse_max(&s)),
        ..Default::default()
    };
    if let (Some(current), Some(stat)) = (r.memory_current_bytes, read("memory.stat")) {
        r.memory_working_set_bytes = Some(working_set(current, flat_keyed(&stat, "inactive_file")));
    }
    if let Some(s) = read("cpu.max") {
        r.cpu_limit_cores = parse_cpu_max(&s);
    }
    if let Some(s) = read("memory.events") {
        r.oom_kills = flat_keyed(&s, "oom_kill");
        r.memory_limit_hits = flat_keyed(&s, "max");
    }
    let Enclosing { memory, cpu } = files.enclosing(dir, enclosing);
    r.memory_enclosing_limit_bytes = lower(r.memory_limit_bytes, memory);
    let binding = cpu.filter(|(c, _)| lower(r.cpu_limit_cores, Some(*c)).is_some());
    r.cpu_enclosing_limit_cores = binding.as_ref().map(|(c, _)| *c);
    let stat_dir = binding.as_ref().map_or(dir, |(_, d)| d.as_path());
    if let Some(s) = get(stat_dir, "cpu.stat", files) {
        r.cpu_periods = flat_keyed(&s, "nr_periods");
        r.cpu_throttled_periods = flat_keyed(&s, "nr_throttled");
        r.cpu_throttled_seconds = flat_keyed(&s, "throttled_usec").map(|us| us as f64 / 1e6);
    }
    files.continuous_cpu(dir, stat_dir, &mut r);
    r.pressure = read_pressure(dir, files);
    r
}

/// The lowest `memory.max` and `cpu.max` of the cgroups enclosing `dir`.
fn enclosing(dir: &Path) -> Enclosing {
    let memory = enclosing_dirs(dir, "memory.max")
        .filter_map(|d| parse_max(&read_plain(d, "memory.max")?))
        .min();
    let cpu = enclosing_dirs(dir, "cpu.max")
        .filter_map(|d| Some((parse_cpu_max(&read_plain(d, "cpu.max")?)?, d.to_path_buf())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    Enclosing { memory, cpu }
}

/// `cpu|memory|io.pressure` of `dir` as (resource, kind, seconds stalled).
pub fn read_pressure(dir: &Path, files: &mut Files) -> Vec<(&'static str, &'static str, f64)> {
    let mut out = Vec::new();
    for resource in ["cpu", "memory", "io"] {
        if let Some(s) = get(dir, &format!("{resource}.pressure"), files) {
            for (kind, secs) in parse_pressure(&s) {
                out.push((resource, kind, secs));
            }
        }
    }
    out
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
