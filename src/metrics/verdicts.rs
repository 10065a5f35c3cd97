//! The verdict families the analysis gives per target: growth trends and leak
//! suspicion, time to the limit, CPU usage percentiles, the recommended requests
//! and limit, and the allocation verdict. Labels: `target`, and `resource`,
//! `percentile` or `state` from fixed sets.

use super::{Family, Num};
use crate::analysis::sizing::AllocationVerdict;
use crate::analysis::Verdicts;

/// Appends the verdict families, with rows for each target that has verdicts
/// (`verdicts` gives them with the target's name, in the targets' order).
pub(super) fn families<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    leaks(verdicts.clone(), fams);
    sizing(verdicts.clone(), fams);
    fams.push(allocation(verdicts));
}

/// Growth trends, leak suspicion and time to the limit.
fn leaks<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    let each = || verdicts.clone();
    fams.extend([
        Family::gauge(
            "outrider_memory_growth_bytes_per_second",
            "Robust trend of memory over the leak window: RSS floors (a JVM's outside its heap), and a JVM's old generation.",
        )
        .per_target_and(each(), "resource", |v| {
            [
                ("rss", v.rss_growth_per_second),
                ("jvm_old_gen", v.heap_leak.and_then(|h| h.growth_per_second)),
            ]
        }),
        Family::gauge(
            "outrider_fd_growth_per_second",
            "Robust trend of open fds over the leak window.",
        )
        .per_target(each(), |v| v.fd_leak.growth_per_second),
        Family::gauge(
            "outrider_thread_growth_per_second",
            "Robust trend of threads over the leak window.",
        )
        .per_target(each(), |v| v.thread_leak.growth_per_second),
        Family::gauge(
            "outrider_leak_suspected",
            "1 when steady growth of the resource looks like a leak.",
        )
        .per_target_and(each(), "resource", |v| {
            [
                ("memory", &v.memory_leak),
                ("fds", &v.fd_leak),
                ("threads", &v.thread_leak),
                ("connections", &v.connection_leak),
            ]
            .map(|(r, leak)| (r, Num::U(leak.suspected as u64)))
        }),
        Family::gauge(
            "outrider_time_to_limit_seconds",
            "Seconds until the limit at the current trend (jvm_old_gen: until a JVM's old generation is at its maximum, then OutOfMemoryError); absent without a limit or growth.",
        )
        .per_target_and(each(), "resource", |v| {
            [
                ("memory", v.memory_leak.time_to_limit_seconds),
                ("fds", v.fd_leak.time_to_limit_seconds),
                (
                    "jvm_old_gen",
                    v.heap_leak.and_then(|h| h.time_to_heap_max_seconds),
                ),
            ]
        }),
    ]);
}

/// CPU usage percentiles and the recommended requests and limit.
fn sizing<'a>(
    verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)> + Clone,
    fams: &mut Vec<Family<'a>>,
) {
    let cpu = || verdicts.clone().map(|(name, v)| (name, &v.sizing.cpu));
    let memory = || verdicts.clone().map(|(name, v)| (name, &v.sizing.memory));
    fams.extend([
        Family::gauge(
            "outrider_cpu_usage_cores",
            "CPU usage percentiles over the sizing window (decaying histogram), and the maximum.",
        )
        // `percentile`, not `quantile`: that label is reserved for summaries.
        .per_target_and(cpu(), "percentile", |c| {
            [
                ("50", c.p50_cores),
                ("90", c.p90_cores),
                ("95", c.p95_cores),
                ("99", c.p99_cores),
                ("max", c.max_cores),
            ]
        }),
        Family::gauge(
            "outrider_recommended_cpu_request_cores",
            "Recommended CPU request: p90 usage times the request factor, with a floor.",
        )
        .per_target(cpu(), |c| c.recommended_request_cores),
        Family::gauge(
            "outrider_recommended_memory_request_bytes",
            "Recommended memory request: peak times the request factor, with a floor.",
        )
        .per_target(memory(), |m| m.recommended_request_bytes),
        Family::gauge(
            "outrider_recommended_memory_limit_bytes",
            "Recommended memory limit: peak times the limit factor.",
        )
        .per_target(memory(), |m| m.recommended_limit_bytes),
    ]);
}

/// `outrider_allocation{target,resource,state}`: one row per state, the verdict's 1.
fn allocation<'a>(verdicts: impl Iterator<Item = (&'a str, &'a Verdicts)>) -> Family<'a> {
    let mut alloc = Family::gauge(
        "outrider_allocation",
        "Allocation verdict per resource: exactly one state is 1.",
    );
    for (name, v) in verdicts {
        let sizing = &v.sizing;
        for (r, state) in [
            ("cpu", sizing.cpu.allocation.0),
            ("memory", sizing.memory.allocation.0),
        ] {
            for s in AllocationVerdict::ALL {
                alloc.add(
                    [("target", name), ("resource", r), ("state", s.as_str())],
                    Num::U((s == state) as u64),
                );
            }
        }
    }
    alloc
}
