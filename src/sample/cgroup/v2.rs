//! The unified hierarchy (cgroup v2): one directory holds every controller's files.
//!
//! `memory.current`, `memory.max` (`max` = no limit), `memory.stat` `inactive_file`,
//! `memory.events` (`max`, `oom_kill`; hierarchical, unlike `memory.events.local`),
//! `cpu.max` (`$QUOTA $PERIOD`, `max` = no limit), `cpu.stat` (`nr_periods`,
//! `nr_throttled`, `throttled_usec`) and `cpu|memory|io.pressure`.

use std::path::Path;

use super::{flat_keyed, get, working_set, CgroupReading, Files};

/// Reads every v2 file it knows in `dir`.
pub fn read(dir: &Path, files: &mut Files) -> CgroupReading {
    let mut get = |name: &str| get(dir, name, files);
    let mut r = CgroupReading {
        memory_current_bytes: get("memory.current").and_then(|s| s.trim().parse().ok()),
        memory_limit_bytes: get("memory.max").and_then(|s| parse_max(&s)),
        ..Default::default()
    };
    if let (Some(current), Some(stat)) = (r.memory_current_bytes, get("memory.stat")) {
        r.memory_working_set_bytes = Some(working_set(current, flat_keyed(&stat, "inactive_file")));
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
        r.memory_limit_hits = flat_keyed(&s, "max");
    }
    r.pressure = read_pressure(dir, files);
    r
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
