//! The container families, read from the app's cgroup (v2, v1 or hybrid, the same
//! families whatever the layout): whether it is readable and which layout it is,
//! memory in use and its limit, the CPU limit and throttling, OOM kills and pressure
//! stall time. Labels: `target`, `layout` on the info family, and `resource` and
//! `kind` on pressure.

use super::{Family, Num};
use crate::analysis::TargetStatus;
use crate::sample::cgroup::CgroupReading;

/// Appends the cgroup families: availability for every target, the figures for
/// those whose cgroup was read.
pub(super) fn families<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    fams.push(
        Family::gauge(
            "outrider_container_cgroup_available",
            "1 when the app's cgroup (v2, v1 or hybrid) is readable, 0 when Outrider works from /proc alone.",
        )
        .per_target(targets.iter().map(|t| (t.name.as_str(), t)), |t| {
            Num::U(t.cgroup.is_some() as u64)
        }),
    );
    let read: Vec<(&str, &CgroupReading)> = targets
        .iter()
        .filter_map(|t| Some((t.name.as_str(), t.cgroup.as_ref()?)))
        .collect();
    fams.push(
        Family::gauge(
            "outrider_container_cgroup_info",
            "1 for the cgroup layout the container figures come from: v2, v1, or hybrid (v1 controllers, v2 pressure).",
        )
        .per_target_and(read.iter().copied(), "layout", |cg| {
            [(cg.layout.as_str(), Num::U(1))]
        }),
    );
    memory(&read, fams);
    cpu(&read, fams);
    fams.push(pressure(&read));
}

/// Memory in use, the working set, the limit and the times it was hit.
fn memory<'a>(read: &[(&'a str, &'a CgroupReading)], fams: &mut Vec<Family<'a>>) {
    let each = || read.iter().copied();
    fams.extend([
        Family::gauge(
            "outrider_container_memory_working_set_bytes",
            "Container memory in use less inactive file cache (what the kubelet evicts on).",
        )
        .per_target(each(), |cg| cg.memory_working_set_bytes),
        Family::gauge(
            "outrider_container_memory_usage_bytes",
            "Container memory in use (memory.current).",
        )
        .per_target(each(), |cg| cg.memory_current_bytes),
        Family::gauge(
            "outrider_container_memory_limit_bytes",
            "Container memory limit (memory.max); absent when unlimited.",
        )
        .per_target(each(), |cg| cg.memory_limit_bytes),
        Family::gauge(
            "outrider_container_memory_enclosing_limit_bytes",
            "Lowest memory limit of a cgroup enclosing the container's, when below its own; it binds the container together with whatever else runs under that cgroup.",
        )
        .per_target(each(), |cg| cg.memory_enclosing_limit_bytes),
        Family::counter(
            "outrider_container_memory_limit_hits",
            "Times a memory charge hit the container's limit (v2 memory.events max, v1 memory.failcnt).",
        )
        .per_target(each(), |cg| cg.memory_limit_hits),
    ]);
}

/// The CPU limit, CFS periods and throttling, and OOM kills.
fn cpu<'a>(read: &[(&'a str, &'a CgroupReading)], fams: &mut Vec<Family<'a>>) {
    let each = || read.iter().copied();
    fams.extend([
        Family::gauge(
            "outrider_container_cpu_limit_cores",
            "Container CPU limit (cpu.max); absent when unlimited.",
        )
        .per_target(each(), |cg| cg.cpu_limit_cores),
        Family::gauge(
            "outrider_container_cpu_enclosing_limit_cores",
            "Lowest CPU limit of a cgroup enclosing the container's, when below its own; the throttling figures are then that cgroup's.",
        )
        .per_target(each(), |cg| cg.cpu_enclosing_limit_cores),
        Family::counter(
            "outrider_container_cpu_periods",
            "CFS enforcement periods elapsed.",
        )
        .per_target(each(), |cg| cg.cpu_periods),
        Family::counter(
            "outrider_container_cpu_throttled_periods",
            "CFS periods in which the container was throttled.",
        )
        .per_target(each(), |cg| cg.cpu_throttled_periods),
        Family::counter(
            "outrider_container_cpu_throttled_seconds",
            "Time the container was throttled.",
        )
        .per_target(each(), |cg| cg.cpu_throttled_seconds),
        Family::counter(
            "outrider_container_oom_kills",
            "Processes of the container killed by the OOM killer.",
        )
        .per_target(each(), |cg| cg.oom_kills),
    ]);
}

/// Pressure stall time by resource and kind, as the cgroup's `*.pressure` files
/// list them.
fn pressure<'a>(read: &[(&'a str, &'a CgroupReading)]) -> Family<'a> {
    let mut psi = Family::counter(
        "outrider_container_pressure_seconds",
        "Pressure stall time (PSI) by resource and kind.",
    );
    for &(name, cg) in read {
        for &(resource, kind, secs) in &cg.pressure {
            psi.add(
                [("target", name), ("resource", resource), ("kind", kind)],
                Num::F(secs),
            );
        }
    }
    psi
}
