//! One voice: every verdict, recommendation and hint put into words, once. The status
//! page, `/summary.txt`, `outrider report` and the alert annotations all call this
//! module; none of them words a verdict itself. A new verdict gets its sentence here.
//!
//! # Layout
//! - this file: counts, sizes and durations; the leak, allocation, capacity and
//!   request lines of the status page, `/summary.txt` and `outrider report`
//! - [`alert`]: each alert rule's `summary` and `description`
//! - [`cost`]: the money, autoscaling and scale-to-zero lines
//! - [`requests`](mod@requests): where a request's time goes, start-up and shutdown
//!
//! Numbers always carry their unit (`MiB/min`, `per minute`, `ms`, `m` for
//! millicores), and counts read as English: `1 worker`, `3 workers`.

pub mod alert;
pub mod cost;
pub mod requests;

use crate::analysis::capacity::Capacity;
use crate::analysis::latency::millis;
use crate::analysis::sizing::AllocationVerdict;
use crate::analysis::TargetStatus;
use crate::analysis::{Leak, LogRates, Verdicts};
use crate::sample::cgroup::{CgroupReading, Layout};
use crate::sample::workers::Workers;

const MIB: f64 = 1048576.0;

pub use crate::units::{count, count_as};

/// `12.3 MiB`.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / MIB)
}

/// A span of time for people: `12 min`, `3.5 h`, `2.0 days`.
pub fn duration(seconds: f64) -> String {
    if seconds >= 86400.0 {
        format!("{:.1} days", seconds / 86400.0)
    } else if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

/// `12.3 MiB resident`; for a JVM whose heap is read, how much of it is heap:
/// `99.2 MiB resident (38.0 MiB of it JVM heap, 61.2 MiB outside the heap)`
/// (a container for a JVM needs room for both: the rest is threads, metaspace,
/// code and native buffers); where RSS counts the heap more than once (ZGC of
/// one generation maps it three times): `540.5 MiB resident (233.1 MiB with its
/// JVM heap counted once: its collector maps it 3 times)`.
fn resident(t: &TargetStatus) -> String {
    let rss = t.resident_memory_bytes;
    let heap = t
        .jvm
        .and_then(|j| j.heap_in_rss_bytes())
        .filter(|&h| h <= rss);
    match (t.resident_once_bytes(), t.jvm, heap) {
        (once, Some(j), _) if once < rss => format!(
            "{} resident ({} with its JVM heap counted once: its collector maps it {} times)",
            mib(rss as f64),
            mib(once as f64),
            j.heap_mappings
        ),
        (_, _, Some(h)) => format!(
            "{} resident ({} of it JVM heap, {} outside the heap)",
            mib(rss as f64),
            mib(h as f64),
            mib((rss - h) as f64)
        ),
        _ => format!("{} resident", mib(rss as f64)),
    }
}

/// A target's size now, one phrase each: `2 processes`, `1 restart`, `12.3 MiB
/// resident`, `14 fds of 1024`, `3 threads`, and where its container figures come
/// from when its cgroup was read: `cgroup v1`.
pub fn usage(t: &TargetStatus) -> Vec<String> {
    let mut phrases = vec![
        count_as(t.processes, "process", "processes"),
        count(t.restarts, "restart"),
        resident(t),
        match t.max_fds {
            Some(m) => format!("{} of {m}", count(t.open_fds, "fd")),
            None => count(t.open_fds, "fd"),
        },
        count(t.threads, "thread"),
    ];
    phrases.extend(t.cgroup.as_ref().map(|cg| match cg.other_processes {
        Some(n) if n > 0 => format!(
            "{}, shared with {} (memory is judged by the app's own RSS)",
            cgroup_layout(cg),
            count_as(n, "other process", "other processes")
        ),
        _ => cgroup_layout(cg).to_string(),
    }));
    phrases
}

/// The container's memory as its cgroup has it: `container: working set 48.2 MiB,
/// limit 128.0 MiB`; a shared cgroup says so, since its figures are not the app's,
/// and a limit set on an enclosing cgroup says so, since what else runs under that
/// cgroup counts against it too.
pub fn container(cg: &CgroupReading) -> String {
    let limit = match (cg.memory_limit_bytes, cg.memory_enclosing_limit_bytes) {
        (own, Some(enclosing)) => format!(
            "limit {} set on an enclosing cgroup{}, shared with whatever else runs under it",
            mib(enclosing as f64),
            own.map(|o| format!(" (below its own {})", mib(o as f64)))
                .unwrap_or_default()
        ),
        (Some(own), None) => format!("limit {}", mib(own as f64)),
        (None, None) => "no cgroup limit".into(),
    };
    let figures = format!(
        "working set {}, {limit}",
        cg.memory_working_set_bytes
            .map(|b| mib(b as f64))
            .unwrap_or_else(|| "unknown".into()),
    );
    match cg.other_processes {
        Some(n) if n > 0 => format!(
            "container (shared with {}): {figures}",
            count_as(n, "other process", "other processes")
        ),
        _ => format!("container: {figures}"),
    }
}

/// The cgroup layout in words: `cgroup v2`, `cgroup v1`, `cgroup v1 with v2
/// pressure (hybrid)`; a hybrid host whose app has no pressure figures (it is in
/// the unified hierarchy's root, whose pressure is the whole host's) says so.
pub fn cgroup_layout(cg: &CgroupReading) -> &'static str {
    match cg.layout {
        Layout::V2 => "cgroup v2",
        Layout::V1 => "cgroup v1",
        Layout::Hybrid if cg.pressure.is_empty() => {
            "cgroup v1 (a hybrid host, no pressure figures for the app's cgroup)"
        }
        Layout::Hybrid => "cgroup v1 with v2 pressure (hybrid)",
    }
}

/// The last word of a wrapping run whose app the kernel OOM-killed: `the app was
/// OOM-killed at its 64 MiB memory limit`.
pub fn app_oom_killed(memory_limit_bytes: Option<u64>) -> String {
    match memory_limit_bytes {
        Some(limit) => format!(
            "the app was OOM-killed at its {} memory limit",
            crate::analysis::sizing::bytes(limit as f64)
        ),
        None => "the app was OOM-killed (its memory limit is not known)".into(),
    }
}

/// What a leak verdict watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Memory,
    Fds,
    Threads,
    Connections,
}

impl Watched {
    /// The name that leads a verdict line.
    pub fn title(self) -> &'static str {
        match self {
            Watched::Memory => "Memory",
            Watched::Fds => "File descriptors",
            Watched::Threads => "Threads",
            Watched::Connections => "TCP connections",
        }
    }

    /// The name inside a sentence ("a memory leak", "a file descriptor leak").
    pub fn noun(self) -> &'static str {
        match self {
            Watched::Memory => "memory",
            Watched::Fds => "file descriptor",
            Watched::Threads => "thread",
            Watched::Connections => "connection",
        }
    }

    /// A growth rate per second, per minute with its unit: `+1.25 MiB/min`.
    pub fn rate(self, per_second: f64) -> String {
        match self {
            Watched::Memory => format!("{:+.2} MiB/min", per_second * 60.0 / MIB),
            _ => format!("{:+.2} per minute", per_second * 60.0),
        }
    }
}

/// The four leak verdicts of a target, in the order every surface shows them.
pub fn leaks(v: &Verdicts) -> [(Watched, &Leak); 4] {
    [
        (Watched::Memory, &v.memory_leak),
        (Watched::Fds, &v.fd_leak),
        (Watched::Threads, &v.thread_leak),
        (Watched::Connections, &v.connection_leak),
    ]
}

/// One verdict in words, and whether it needs the developer's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub attention: bool,
}

/// `Memory: leak suspected, trend +1.20 MiB/min, limit reached in about 3.5 h`
/// (for a JVM whose heap shows it: `trend +1.00 MiB/min in the JVM's old
/// generation, after its collections`; from RSS for such a JVM: `trend +1.00
/// MiB/min outside the JVM's heap (threads, metaspace, native buffers)`),
/// `Threads: no leak, trend +0.00 per minute`, or, while growth comes in steps
/// that each shrink, `Memory: no leak, trend +0.40 MiB/min, in steps that each
/// shrink: the heap settling toward its size`.
pub fn leak(what: Watched, l: &Leak) -> Line {
    // A JVM's heap: growth that survived its collections, which RSS shows only as
    // the heap grows.
    let of = if l.in_heap {
        " in the JVM's old generation, after its collections"
    } else if l.outside_heap {
        " outside the JVM's heap (threads, metaspace, native buffers)"
    } else {
        ""
    };
    let trend = l
        .growth_per_second
        .map(|r| format!("trend {}{of}", what.rate(r)))
        .unwrap_or_else(|| "not enough history for a trend yet".into());
    let text = if l.suspected {
        let ttl = match runs_out(l) {
            Some((s, true)) => format!(
                ", the JVM's heap full in about {} (its old generation at its maximum: OutOfMemoryError)",
                duration(s)
            ),
            Some((s, false)) => format!(", limit reached in about {}", duration(s)),
            None => String::new(),
        };
        format!("{}: leak suspected, {trend}{ttl}", what.title())
    } else if l.settling {
        let what_settles = match what {
            Watched::Memory => "the heap",
            _ => "a pool",
        };
        format!(
            "{}: no leak, {trend}, in steps that each shrink: {what_settles} settling toward its size",
            what.title()
        )
    } else {
        format!("{}: no leak, {trend}", what.title())
    };
    Line {
        text,
        attention: l.suspected,
    }
}

/// When a leak runs out of room at its rate, in seconds, and whether it is a
/// JVM's old generation reaching its maximum (`OutOfMemoryError`) rather than the
/// memory limit: whichever comes first.
fn runs_out(l: &Leak) -> Option<(f64, bool)> {
    match (l.time_to_heap_max_seconds, l.time_to_limit_seconds) {
        (Some(heap), limit) if limit.is_none_or(|limit| heap < limit) => Some((heap, true)),
        (_, limit) => limit.map(|s| (s, false)),
    }
}

/// What the memory line adds while a JVM's old generation grows uncollected:
/// `; the JVM's old generation grows +2.40 MiB/min and has not been collected for
/// 25 min: its garbage cannot be told from a leak until it is`.
fn heap_uncollected(v: &Verdicts) -> Option<String> {
    let secs = v.heap_uncollected_seconds?;
    let rate = v.heap_leak.and_then(|h| h.growth_per_second)?;
    Some(format!(
        "; the JVM's old generation grows {} and has not been collected for {}: its garbage cannot be told from a leak until it is",
        Watched::Memory.rate(rate),
        duration(secs)
    ))
}

/// `CPU: over-allocated — p95 uses 40m of the 500m requested`.
pub fn allocation(resource: &str, state: AllocationVerdict, reason: &str) -> Line {
    let word = match state {
        AllocationVerdict::Over => "over-allocated",
        AllocationVerdict::Under => "under-allocated",
        AllocationVerdict::Ok => "sized right",
        AllocationVerdict::Unknown => "not judged",
    };
    Line {
        text: format!("{resource}: {word} — {reason}"),
        attention: matches!(state, AllocationVerdict::Over | AllocationVerdict::Under),
    }
}

/// Every verdict of a target, leaks first, then CPU and memory allocation, then
/// what it costs and whether to scale.
pub fn verdicts(v: &Verdicts) -> Vec<Line> {
    let mut out: Vec<Line> = leaks(v).into_iter().map(|(w, l)| leak(w, l)).collect();
    if let Some(line) = heap_uncollected(v) {
        out[0].text += &line;
    }
    out.push(allocation(
        "CPU",
        v.sizing.cpu.allocation.0,
        &v.sizing.cpu.reason,
    ));
    out.push(allocation(
        "Memory",
        v.sizing.memory.allocation.0,
        &v.sizing.memory.reason,
    ));
    out.extend(cost::lines(v));
    out.extend(requests::lines(v));
    out
}

/// What in a target deserves a developer's look, one short phrase each, led by the
/// target's name: `web: restarted 2 times`, `web: memory leak suspected`,
/// `web: CPU over-allocated: p95 uses …`.
pub fn attention(name: &str, restarts: u64, v: Option<&Verdicts>) -> Vec<String> {
    let mut out = Vec::new();
    if restarts > 0 {
        out.push(format!(
            "{name}: restarted {}",
            count_as(restarts, "time", "times")
        ));
    }
    let Some(v) = v else { return out };
    for (what, l) in leaks(v) {
        if l.suspected {
            out.push(format!("{name}: {} leak suspected", what.noun()));
        }
    }
    for (what, state, reason) in [
        ("CPU", v.sizing.cpu.allocation.0, &v.sizing.cpu.reason),
        (
            "memory",
            v.sizing.memory.allocation.0,
            &v.sizing.memory.reason,
        ),
    ] {
        if matches!(state, AllocationVerdict::Over | AllocationVerdict::Under) {
            out.push(format!(
                "{name}: {what} {}-allocated: {reason}",
                state.as_str()
            ));
        }
    }
    out.extend(requests::attention(name, v));
    out
}

/// The capacity figures, one line each: the pre-fork server, the requests per
/// CPU-second, the worker-count hint.
pub fn capacity(workers: Option<&Workers>, capacity: Option<&Capacity>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(w) = workers {
        let pss = match (w.worker_pss_bytes, w.pss_interval_seconds) {
            (Some(p), _) => format!(
                "{} PSS per worker (mean), master {}",
                mib(p as f64),
                w.master_pss_bytes
                    .map(|m| format!("{} PSS", mib(m as f64)))
                    .unwrap_or_else(|| "unread".into())
            ),
            (None, None) => "PSS not read (sampling.pss_interval = off)".into(),
            (None, Some(_)) => "PSS not read yet".into(),
        };
        out.push(format!(
            "Workers: {} under pid {}, {pss}",
            count(w.workers, &format!("{} worker", w.server.as_str())),
            w.master_pid
        ));
    }
    if let Some(c) = capacity {
        out.push(format!("Requests per CPU-second: {}", c.reason));
        if let Some(h) = &c.worker_hint {
            out.push(format!(
                "Worker hint: {} — {}",
                count(h.recommended_workers, "worker"),
                h.reasoning
            ));
        }
    }
    out
}

/// `log stream app: cannot read /var/log/app.log (Permission denied (os error 13));
/// its lines are not counted until it can be read`: a failing log must not pass
/// for a quiet app.
pub fn log_unreadable(stream: &str, path: &str, error: &str) -> String {
    format!(
        "log stream {stream}: cannot read {path} ({error}); its lines are not counted until it can be read"
    )
}

/// `12.5 requests/s; response time p50 40 ms, p95 180 ms, p99 195 ms over 300
/// requests`; `None` without access lines.
pub fn requests(r: &LogRates) -> Option<String> {
    if r.requests_per_second <= 0.0 && r.latency.is_none() {
        return None;
    }
    let mut s = format!("{:.1} requests/s", r.requests_per_second);
    match &r.latency {
        Some(l) => s.push_str(&format!(
            "; response time p50 {}, p95 {}, p99 {} over {}{}",
            millis(l.p50_seconds),
            millis(l.p95_seconds),
            millis(l.p99_seconds),
            count(l.requests, "request"),
            if l.rising { ", rising" } else { "" }
        )),
        None => s.push_str("; no request duration in the access lines"),
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oom_killed_app_is_told_with_its_limit() {
        assert_eq!(
            app_oom_killed(Some(64 << 20)),
            "the app was OOM-killed at its 64 MiB memory limit"
        );
        assert_eq!(
            app_oom_killed(Some(3 << 30)),
            "the app was OOM-killed at its 3.0 GiB memory limit"
        );
        assert_eq!(
            app_oom_killed(None),
            "the app was OOM-killed (its memory limit is not known)"
        );
    }

    #[test]
    fn a_jvms_resident_memory_tells_its_heap_counted_once() {
        let zgc = crate::sample::jvm::JvmHeap {
            old_capacity_bytes: 150 << 20,
            young_capacity_bytes: None,
            heap_mappings: 3,
            shmem_resident_bytes: Some(420 << 20),
            ..Default::default()
        };
        let mut t = TargetStatus {
            sample: crate::sample::TargetSample {
                resident_memory_bytes: 500 << 20,
                jvm: Some(zgc),
                ..Default::default()
            },
            verdicts: None,
            capacity: None,
        };
        assert_eq!(
            resident(&t),
            "500.0 MiB resident (220.0 MiB with its JVM heap counted once: its collector maps it 3 times)"
        );
        // Generational ZGC maps it once: its shared memory is the heap.
        t.sample.jvm = Some(crate::sample::jvm::JvmHeap {
            heap_mappings: 1,
            ..zgc
        });
        assert_eq!(
            resident(&t),
            "500.0 MiB resident (420.0 MiB of it JVM heap, 80.0 MiB outside the heap)"
        );
        // G1: its committed heap, young generation too.
        t.sample.jvm = Some(crate::sample::jvm::JvmHeap {
            old_capacity_bytes: 200 << 20,
            young_capacity_bytes: Some(56 << 20),
            heap_mappings: 1,
            ..Default::default()
        });
        assert_eq!(
            resident(&t),
            "500.0 MiB resident (256.0 MiB of it JVM heap, 244.0 MiB outside the heap)"
        );
        // A heap committed beyond what is resident yet says nothing false.
        t.sample.resident_memory_bytes = 100 << 20;
        assert_eq!(resident(&t), "100.0 MiB resident");
        t.sample.jvm = None;
        assert_eq!(resident(&t), "100.0 MiB resident");
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(count(1, "worker"), "1 worker");
        assert_eq!(count(3, "worker"), "3 workers");
        assert_eq!(count(0, "restart"), "0 restarts");
        assert_eq!(count_as(1, "process", "processes"), "1 process");
        assert_eq!(count_as(2, "process", "processes"), "2 processes");
    }

    #[test]
    fn a_suspected_leak_names_its_trend_and_time_to_limit() {
        let l = Leak {
            suspected: true,
            growth_per_second: Some(MIB / 60.0),
            time_to_limit_seconds: Some(2.0 * 3600.0),
            settling: false,
            in_heap: false,
            outside_heap: false,
            time_to_heap_max_seconds: None,
        };
        let line = leak(Watched::Memory, &l);
        assert_eq!(
            line.text,
            "Memory: leak suspected, trend +1.00 MiB/min, limit reached in about 2.0 h"
        );
        let uncollected = Verdicts {
            heap_leak: Some(Leak {
                suspected: false,
                growth_per_second: Some(2.4 * MIB / 60.0),
                in_heap: true,
                ..l
            }),
            heap_uncollected_seconds: Some(25.0 * 60.0),
            memory_leak: Leak {
                suspected: false,
                growth_per_second: Some(0.02 * MIB / 60.0),
                ..l
            },
            ..Default::default()
        };
        assert_eq!(
            verdicts(&uncollected)[0].text,
            "Memory: no leak, trend +0.02 MiB/min; the JVM's old generation grows +2.40 MiB/min and has not been collected for 25 min: its garbage cannot be told from a leak until it is"
        );
        let heap = leak(Watched::Memory, &Leak { in_heap: true, ..l });
        assert_eq!(
            heap.text,
            "Memory: leak suspected, trend +1.00 MiB/min in the JVM's old generation, after its collections, limit reached in about 2.0 h"
        );
        let full = Leak {
            in_heap: true,
            time_to_heap_max_seconds: Some(95.0 * 60.0),
            ..l
        };
        assert_eq!(
            leak(Watched::Memory, &full).text,
            "Memory: leak suspected, trend +1.00 MiB/min in the JVM's old generation, after its collections, the JVM's heap full in about 1.6 h (its old generation at its maximum: OutOfMemoryError)"
        );
        // The memory limit, when it comes first, is the one named.
        let later = Leak {
            time_to_heap_max_seconds: Some(3.0 * 3600.0),
            ..full
        };
        assert!(leak(Watched::Memory, &later)
            .text
            .ends_with(", limit reached in about 2.0 h"));
        assert!(line.attention);
        let quiet = Leak::default();
        let line = leak(Watched::Fds, &quiet);
        assert_eq!(
            line.text,
            "File descriptors: no leak, not enough history for a trend yet"
        );
        assert!(!line.attention);
        let settling = Leak {
            growth_per_second: Some(0.4 * MIB / 60.0),
            settling: true,
            ..Leak::default()
        };
        let line = leak(Watched::Memory, &settling);
        assert_eq!(
            line.text,
            "Memory: no leak, trend +0.40 MiB/min, in steps that each shrink: the heap settling toward its size"
        );
        assert!(!line.attention);
        let fds = Leak {
            growth_per_second: Some(0.5 / 60.0),
            ..settling
        };
        let line = leak(Watched::Fds, &fds);
        assert_eq!(
            line.text,
            "File descriptors: no leak, trend +0.50 per minute, in steps that each shrink: a pool settling toward its size"
        );
    }

    #[test]
    fn allocation_states_read_as_words() {
        let line = allocation("CPU", AllocationVerdict::Over, "p95 40m of 500m");
        assert_eq!(line.text, "CPU: over-allocated — p95 40m of 500m");
        assert!(line.attention);
        let line = allocation("Memory", AllocationVerdict::Unknown, "too few samples");
        assert_eq!(line.text, "Memory: not judged — too few samples");
        assert!(!line.attention);
    }

    #[test]
    fn attention_lists_restarts_leaks_and_misallocation() {
        let mut v = Verdicts::default();
        v.memory_leak.suspected = true;
        v.sizing.cpu.allocation.0 = AllocationVerdict::Over;
        v.sizing.cpu.reason = "idle".into();
        assert_eq!(
            attention("web", 1, Some(&v)),
            [
                "web: restarted 1 time",
                "web: memory leak suspected",
                "web: CPU over-allocated: idle"
            ]
        );
        assert!(attention("web", 0, None).is_empty());
    }

    #[test]
    fn requests_read_with_their_percentiles_and_rise() {
        let rates = LogRates {
            requests_per_second: 2.5,
            latency: Some(crate::analysis::latency::Latency {
                requests: 1,
                p50_seconds: 0.04,
                p95_seconds: 0.18,
                p99_seconds: 1.5,
                rising: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            requests(&rates).unwrap(),
            "2.5 requests/s; response time p50 40 ms, p95 180 ms, p99 1.50 s over 1 request, rising"
        );
        assert_eq!(requests(&Default::default()), None);
    }

    #[test]
    fn a_hybrid_host_without_pressure_figures_says_so() {
        let mut cg = CgroupReading {
            layout: Layout::Hybrid,
            ..Default::default()
        };
        assert_eq!(
            cgroup_layout(&cg),
            "cgroup v1 (a hybrid host, no pressure figures for the app's cgroup)"
        );
        cg.pressure = vec![("cpu", "some", 1.0)];
        assert_eq!(cgroup_layout(&cg), "cgroup v1 with v2 pressure (hybrid)");
    }

    #[test]
    fn a_shared_container_says_so() {
        let mut cg = CgroupReading {
            memory_working_set_bytes: Some(48 << 20),
            memory_limit_bytes: Some(128 << 20),
            other_processes: Some(0),
            ..Default::default()
        };
        assert_eq!(
            container(&cg),
            "container: working set 48.0 MiB, limit 128.0 MiB"
        );
        cg.other_processes = Some(8);
        cg.memory_limit_bytes = None;
        assert_eq!(
            container(&cg),
            "container (shared with 8 other processes): working set 48.0 MiB, no cgroup limit"
        );
        cg.other_processes = Some(0);
        cg.memory_enclosing_limit_bytes = Some(200 << 20);
        assert_eq!(
            container(&cg),
            "container: working set 48.0 MiB, limit 200.0 MiB set on an enclosing cgroup, \
             shared with whatever else runs under it"
        );
        cg.memory_limit_bytes = Some(512 << 20);
        assert_eq!(
            container(&cg),
            "container: working set 48.0 MiB, limit 200.0 MiB set on an enclosing cgroup \
             (below its own 512.0 MiB), shared with whatever else runs under it"
        );
    }
}
