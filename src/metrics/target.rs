//! The per-process-group families, read from /proc: liveness, CPU, memory, files,
//! threads, I/O and context switches, and the requests and limits the app is judged
//! against. Labels: `target`, and `mode` or `kind` where a figure has parts.

use super::{Family, Num};
use crate::analysis::TargetStatus;

/// Each target with its name, in the snapshot's order.
fn named(targets: &[TargetStatus]) -> impl Iterator<Item = (&str, &TargetStatus)> {
    targets.iter().map(|t| (t.name.as_str(), t))
}

/// Appends the group's liveness, CPU, memory, file, thread and I/O families.
pub(super) fn families<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    liveness(targets, fams);
    usage(targets, fams);
    jvm(targets, fams);
}

/// A JVM's heap, from its perf-data file (`sample::jvm`): rows only for targets
/// that are JVMs whose file Outrider can read.
fn jvm<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    fams.extend([
        Family::gauge(
            "outrider_jvm_old_gen_used_bytes",
            "Bytes in the JVM's old generation: live objects and dead ones not collected yet.",
        )
        .per_target(named(targets), |t| t.jvm.map(|j| j.old_used_bytes)),
        Family::gauge(
            "outrider_jvm_old_gen_committed_bytes",
            "Bytes committed to the JVM's old generation.",
        )
        .per_target(named(targets), |t| t.jvm.map(|j| j.old_capacity_bytes)),
        Family::gauge(
            "outrider_jvm_heap_committed_bytes",
            "Bytes committed to the JVM's whole heap, young and old generations: the part of its memory that is heap (the rest is threads, metaspace, code and native buffers).",
        )
        .per_target(named(targets), |t| t.jvm.map(|j| j.committed_bytes())),
        Family::gauge(
            "outrider_jvm_old_gen_max_bytes",
            "The most the JVM's old generation may hold (-Xmx under G1, its share of it under Parallel and Serial GC): full, the JVM throws OutOfMemoryError.",
        )
        .per_target(named(targets), |t| t.jvm.and_then(|j| j.old_max_bytes)),
        Family::counter(
            "outrider_jvm_old_collections",
            "Collections that can reclaim the old generation: full collections and concurrent-cycle pauses.",
        )
        .per_target(named(targets), |t| t.jvm.map(|j| j.old_collections)),
        Family::counter(
            "outrider_jvm_young_collections",
            "Young-generation collections.",
        )
        .per_target(named(targets), |t| t.jvm.map(|j| j.young_collections)),
    ]);
}

/// Whether the group is up, its size, restarts and start time.
fn liveness<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    fams.extend([
        Family::gauge(
            "outrider_target_up",
            "1 while at least one process of the target is alive.",
        )
        .per_target(named(targets), |t| Num::U(t.up as u64)),
        Family::gauge(
            "outrider_target_processes",
            "Processes in the target's group.",
        )
        .per_target(named(targets), |t| Num::U(t.processes)),
        Family::counter(
            "outrider_target_restarts",
            "Times the group's main process was replaced.",
        )
        .per_target(named(targets), |t| Num::U(t.restarts)),
        Family::gauge(
            "outrider_target_start_time_seconds",
            "Unix time the oldest process of the group started.",
        )
        .per_target(named(targets), |t| t.start_time_seconds),
    ]);
}

/// What the group uses: CPU, memory, file descriptors, threads, I/O.
fn usage<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    fams.extend([
        Family::counter(
            "outrider_target_cpu_seconds",
            "CPU time of the group by mode.",
        )
        .per_target_and(named(targets), "mode", |t| {
            let c = &t.counters;
            [
                ("user", Num::F(c.cpu_user_seconds)),
                ("system", Num::F(c.cpu_system_seconds)),
            ]
        }),
        Family::counter(
            "outrider_target_cpu_wait_seconds",
            "Time the group's threads were runnable but waiting for a CPU (schedstat run_delay).",
        )
        .per_target(named(targets), |t| Num::F(t.counters.cpu_wait_seconds)),
        Family::gauge(
            "outrider_target_resident_memory_bytes",
            "Summed resident set size.",
        )
        .per_target(named(targets), |t| Num::U(t.resident_memory_bytes)),
        Family::gauge("outrider_target_swap_bytes", "Summed swap use.")
            .per_target(named(targets), |t| Num::U(t.swap_bytes)),
        Family::gauge(
            "outrider_target_virtual_memory_bytes",
            "Summed virtual memory size.",
        )
        .per_target(named(targets), |t| Num::U(t.virtual_memory_bytes)),
        Family::gauge("outrider_target_open_fds", "Summed open file descriptors.")
            .per_target(named(targets), |t| Num::U(t.open_fds)),
        Family::gauge(
            "outrider_target_max_fds",
            "Smallest soft limit on open file descriptors in the group.",
        )
        .per_target(named(targets), |t| t.max_fds),
        Family::gauge("outrider_target_threads", "Summed threads.")
            .per_target(named(targets), |t| Num::U(t.threads)),
        Family::counter(
            "outrider_target_io_read_bytes",
            "Bytes the group read from storage.",
        )
        .per_target(named(targets), |t| Num::U(t.counters.io_read_bytes)),
        Family::counter(
            "outrider_target_io_write_bytes",
            "Bytes the group wrote to storage.",
        )
        .per_target(named(targets), |t| Num::U(t.counters.io_write_bytes)),
        Family::counter(
            "outrider_target_context_switches",
            "Context switches by kind.",
        )
        .per_target_and(named(targets), "kind", |t| {
            let c = &t.counters;
            [
                ("voluntary", Num::U(c.voluntary_context_switches)),
                ("involuntary", Num::U(c.involuntary_context_switches)),
            ]
        }),
    ]);
}

/// The CPU and memory requests and limits the app is judged against (config,
/// downward API or cgroup); absent where none is known.
pub(super) fn allocation<'a>(targets: &'a [TargetStatus], fams: &mut Vec<Family<'a>>) {
    fams.extend([
        Family::gauge(
            "outrider_target_cpu_request_cores",
            "CPU request the app is judged against.",
        )
        .per_target(named(targets), |t| {
            t.allocation.cpu_request_cores.map(|v| v.0)
        }),
        Family::gauge(
            "outrider_target_cpu_limit_cores",
            "CPU limit the app is judged against.",
        )
        .per_target(named(targets), |t| {
            t.allocation.cpu_limit_cores.map(|v| v.0)
        }),
        Family::gauge(
            "outrider_target_memory_request_bytes",
            "Memory request the app is judged against.",
        )
        .per_target(named(targets), |t| {
            t.allocation.memory_request_bytes.map(|v| v.0)
        }),
        Family::gauge(
            "outrider_target_memory_limit_bytes",
            "Memory limit the app is judged against.",
        )
        .per_target(named(targets), |t| {
            t.allocation.memory_limit_bytes.map(|v| v.0)
        }),
    ]);
}
