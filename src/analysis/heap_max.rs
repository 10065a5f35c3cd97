//! Right-sizing a JVM given a heap maximum (`-Xmx`, or `-XX:MaxRAM`).
//!
//! A JVM grows its heap toward its maximum when its collector wants room, however
//! little it used until then: a load spike, a batch, a cache warming up. The
//! memory it may need is that maximum plus what it uses outside the heap
//! (metaspace, code, threads' stacks, direct buffers: `sample::jvm`'s RSS less
//! the heap). A container limit under that sum lets the heap grow past what the
//! container holds, and the kernel OOM-kills the JVM where the collector would
//! otherwise have worked harder or thrown an `OutOfMemoryError` the app can log.
//! So for a JVM given `-Xmx`:
//!
//! - a limit under `-Xmx` plus the most seen outside the heap is under-allocated,
//!   with both figures and the way out in the reason: raise the limit to what the
//!   recommendation holds, or lower `-Xmx` to what the limit leaves (the limit
//!   less the margin over what is outside the heap), offered only where that
//!   still holds the heap the JVM has committed now;
//! - the limit recommended (peak x `memory_limit_factor`) is raised, where it is
//!   lower, to `-Xmx` plus the most seen outside the heap times that factor: the
//!   factor is the margin for what was measured; `-Xmx` is not measured, it is
//!   the bound the JVM was given.
//!
//! A JVM given `-XX:MaxRAM` and no `-Xmx` sizes its heap from that, whatever
//! its limit, above it as well as below: its share of `-XX:MaxRAM` (never below
//! `-Xms`) is a fixed maximum, sized as `-Xmx` is ([`Given::MaxRam`]).
//!
//! A JVM that sizes its heap itself (no `-Xmx`, no `-XX:MaxRAM`: a share of the memory it sees,
//! `-XX:MaxRAMPercentage`, 25% by default, of the container's limit where it
//! has one, and `-XX:MinRAMPercentage`, 50%, of a small one: `HeapShare`)
//! follows the limit it is given: under a limit cut to its usage, its heap's
//! maximum is cut with it, possibly below what the heap has committed (a JVM at
//! 400 MiB resident with 250 MiB of heap committed would get a 520 MiB limit
//! from its usage, and a 130 MiB heap maximum from that at 25%), and its heap
//! may grow to that maximum. So the limit recommended is raised, where it is
//! lower, to the least under which the maximum the JVM takes holds the most
//! the heap has committed and leaves beside it the most seen outside the heap
//! times the factor ([`fit_share`]). The limit it has is judged as under
//! `-Xmx`: under-allocated where the maximum it takes under that limit plus what
//! it uses outside the heap does not fit ([`judge_share_limit`]).

use super::sizing::{bytes, Allocated, AllocationField, AllocationVerdict, SizingVerdict};
use crate::sample::jvm::{Ergonomics, HeapShare, JvmHeap, DEFAULT_MAX_HEAP};

/// A JVM's heap figures: its maximum (`-Xmx`), the most seen outside it, what it
/// has committed now, and what gave the maximum.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    pub max: f64,
    pub outside: f64,
    pub committed: f64,
    pub given: Given,
}

/// What fixed a JVM's heap maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Given {
    /// `-Xmx` (or `-XX:MaxHeapSize`).
    Xmx,
    /// `-XX:MaxRAM`: its share (`share`) of that, never below `-Xms`.
    MaxRam { share: f64 },
}

impl Given {
    /// The words that name the maximum.
    fn names(self) -> &'static str {
        match self {
            Given::Xmx => "its -Xmx",
            Given::MaxRam { .. } => "the heap maximum its -XX:MaxRAM gives",
        }
    }

    /// The words that offer a smaller maximum.
    fn lower(self) -> &'static str {
        match self {
            Given::Xmx => "lower -Xmx to",
            Given::MaxRam { .. } => "give it an -Xmx of",
        }
    }
}

/// Fits `v`'s memory verdict and recommendation to a JVM's heap `h`, under a
/// container `limit` if known; `factor` is `memory_limit_factor`. Before the
/// sizing has enough data (no limit recommended yet) it does nothing: a verdict
/// waits for the same minutes as every other.
pub fn fit(v: &mut SizingVerdict, h: Heap, limit: Option<f64>, factor: f64) {
    let Heap {
        max,
        outside,
        committed,
        given,
    } = h;
    let m = &mut v.memory;
    let Some(recommended) = m.recommended_limit_bytes else {
        return;
    };
    let holds = (max + outside * factor).ceil();
    if recommended < holds {
        m.recommended_limit_bytes = Some(holds);
        m.heap_max_bytes = Some(max);
        if let Given::MaxRam { share } = given {
            m.heap_share = Some(share);
        }
        // Raised, it stays above the request, which is the usage's.
    }
    let need = max + outside;
    let Some(limit) = limit.filter(|&l| l > 0.0 && l < need) else {
        if m.heap_max_bytes.is_some() {
            m.reason.push_str(&format!(
                "; the limit recommended holds {} ({}) and {factor} x the {} it uses outside the heap",
                given.names(),
                bytes(max),
                bytes(outside)
            ));
        }
        return;
    };
    let leaves = limit - outside * factor;
    let lower = match leaves >= committed {
        true => format!(" or {} {} or less", given.lower(), bytes(leaves)),
        false => String::new(),
    };
    let (limit_said, need_said) = apart(limit, need);
    let why = format!(
        "the {limit_said} limit is under {} ({}) plus the {} it uses outside the heap ({need_said}): \
         when its heap grows, the kernel kills it before its collector must work harder; \
         raise the limit to {}{lower}",
        given.names(),
        bytes(max),
        bytes(outside),
        bytes(holds)
    );
    match m.allocation.0 {
        AllocationVerdict::Under => m.reason = format!("{}; {why}", m.reason),
        _ => {
            m.allocation = AllocationField(AllocationVerdict::Under);
            m.reason = why;
        }
    }
}

/// `v` fitted to JVM `j`'s heap: to a heap that may grow to its `-Xmx` (or to
/// its share of `-XX:MaxRAM`, which the limit does not move), or, for one
/// sizing its heap from the limit, to its share of the limit; from the most
/// seen outside its heap and the most its heap committed (`peaks`).
pub fn fit_jvm(
    v: &mut SizingVerdict,
    j: &JvmHeap,
    (outside, committed_peak): (f64, f64),
    alloc: &Allocated,
    factor: f64,
) {
    let limit = alloc.memory_limit;
    let initial = j.initial_heap_bytes.unwrap_or(0) as f64;
    let fixed = match (j.max_heap_bytes, j.heap_share) {
        (Some(max), _) => Some((max as f64, Given::Xmx)),
        // HotSpot raises the maximum to -Xms where that is more.
        (None, Some(share)) => share
            .fixed_max()
            .map(|(max, share)| (max.max(initial), Given::MaxRam { share })),
        (None, None) => None,
    };
    if let Some((max, given)) = fixed {
        let heap = Heap {
            max,
            outside,
            committed: j.committed_bytes() as f64,
            given,
        };
        fit(v, heap, limit, factor);
    } else if let Some(share) = j.heap_share {
        fit_share(v, share, (outside, committed_peak), initial, factor);
        judge_share_limit(v, share, (outside, committed_peak), initial, limit, factor);
    }
    warn_collector(v, j, alloc, crate::sample::visible_cpus() as f64);
}

/// The memory a JVM must see to pick G1 itself (with 2 CPUs: HotSpot's
/// "server class machine", 2 GiB less 256 MiB); under it, it picks Serial.
pub const SERVER_CLASS_MEMORY: f64 = 1792.0 * 1048576.0;

/// Says so where the limit recommended would change the collector JVM `j`
/// picks itself: under [`SERVER_CLASS_MEMORY`], for a JVM not given one that
/// picks G1 now: it sees that much (no limit, or one at least that) and 2 CPUs
/// or more ([`cpus_seen`]; `host` is the host's CPUs). In a 1 GiB memory
/// cgroup OpenJDK 17 took `UseSerialGC`, in a 1792 MiB one `UseG1GC` (`java
/// -XX:+PrintFlagsFinal -version`); one thread collecting, with longer pauses,
/// is a change a user would not expect from a smaller limit. A JVM held under
/// 2 CPUs runs Serial already (a 1-CPU quota with 4 GiB: `UseSerialGC`), and
/// one with `-XX:-UseContainerSupport` sees the host's memory, not the limit.
fn warn_collector(v: &mut SizingVerdict, j: &JvmHeap, alloc: &Allocated, host: f64) {
    let m = &mut v.memory;
    let smaller = m
        .recommended_limit_bytes
        .is_some_and(|r| r < SERVER_CLASS_MEMORY);
    let e = j.ergonomics.unwrap_or_default();
    let g1_now = alloc.memory_limit.is_none_or(|l| l >= SERVER_CLASS_MEMORY)
        && cpus_seen(e, alloc.cpu_limit, host) >= 2.0;
    if j.collector_given == Some(false) && !e.container_support_off && smaller && g1_now {
        m.reason.push_str(
            "; under a 1792 MiB limit a JVM not given its collector picks Serial (one thread, longer pauses) instead of G1: give it -XX:+UseG1GC to keep G1",
        );
    }
}

/// The CPUs a JVM counts when it picks its collector: `-XX:ActiveProcessorCount`
/// where given; else its CPU limit rounded up, at most the `host`'s (HotSpot
/// counts a part of a core as one: a 1.5-core quota picked G1, a 1-core one
/// Serial); else the host's. (OpenJDK before 17.0.5 and 11.0.17 counted
/// `cpu.shares` too, from the CPU request: not followed.)
fn cpus_seen(e: Ergonomics, cpu_limit: Option<f64>, host: f64) -> f64 {
    match (e.active_processor_count, cpu_limit.filter(|l| *l > 0.0)) {
        (Some(n), _) => f64::from(n),
        (None, Some(l)) => l.ceil().min(host),
        (None, None) => host,
    }
}

/// Raises the limit recommended in `v`, where it is lower, to the least under
/// which the heap's maximum the JVM takes from its `share` of it holds the
/// `committed` bytes its heap has committed at most and leaves beside it
/// `factor` x the `outside` bytes it uses outside the heap (`peaks`): its heap
/// may grow to that maximum, and under a limit that does not hold both the
/// kernel kills the JVM before its collector throws `OutOfMemoryError`. The
/// maximum is never below the heap's `initial` size (`-Xms`): a heap that has
/// committed no more than that has room under any limit that holds it. Where
/// no limit leaves the room (a share of 100%), says so.
pub fn fit_share(
    v: &mut SizingVerdict,
    share: HeapShare,
    (outside, committed): (f64, f64),
    initial: f64,
    factor: f64,
) {
    let m = &mut v.memory;
    let Some(recommended) = m.recommended_limit_bytes else {
        return;
    };
    let for_committed = share
        .limit_for(committed)
        .filter(|_| committed > initial)
        .map(|(l, of)| (l.ceil(), of));
    let from = for_committed.map_or(recommended, |(l, _)| l.max(recommended));
    let Some(holds) = share.limit_leaving(outside * factor, initial, from) else {
        m.reason.push_str(&format!(
            "; no limit holds its heap's {}% share of it and {factor} x the {} it uses outside the heap: give it -Xmx",
            percent(share.max),
            bytes(outside)
        ));
        return;
    };
    let holds = holds.ceil();
    if recommended >= holds {
        return;
    }
    m.recommended_limit_bytes = Some(holds);
    let (heap, of, taken) = heap_under(share, holds, initial);
    m.heap_share = Some(of);
    let why = match for_committed {
        // What the heap committed sets it: the room beside it is there.
        Some((l, of)) if holds <= l => {
            // A heap under the JVM's default maximum takes its small-limit share.
            let flag = if committed >= DEFAULT_MAX_HEAP {
                "-XX:MaxRAMPercentage: a larger share lowers it"
            } else {
                "-XX:MinRAMPercentage, under a limit this small"
            };
            format!(
                "keeps the {} its heap has committed within its {}% share of the limit ({flag})",
                bytes(committed),
                percent(of)
            )
        }
        _ => format!(
            "holds the heap maximum the JVM takes under it ({}: {taken}) and {factor} x the {} \
             it uses outside the heap: under less, its heap may grow until the kernel kills it",
            bytes(heap),
            bytes(outside)
        ),
    };
    m.reason.push_str(&format!("; the limit recommended {why}"));
}

/// The `limit` a JVM sizing its heap from it has now, judged as [`fit`] judges
/// one under `-Xmx`: under-allocated where the heap's maximum it takes under
/// that limit plus the `outside` bytes it uses outside the heap (`peaks`) do not
/// fit in it: its heap may grow until the kernel kills it (a JVM at
/// `-XX:MaxRAMPercentage=75` with 300 MiB outside its heap was OOM-killed 4
/// runs of 5 at 780 MiB). The ways out: the limit recommended, or, where its
/// share sets the maximum, a share that leaves `factor` x `outside` beside a
/// heap still holding what it committed. Not before the sizing has its data.
fn judge_share_limit(
    v: &mut SizingVerdict,
    share: HeapShare,
    (outside, committed): (f64, f64),
    initial: f64,
    limit: Option<f64>,
    factor: f64,
) {
    let m = &mut v.memory;
    let (Some(limit), Some(raise)) = (limit.filter(|&l| l > 0.0), m.recommended_limit_bytes) else {
        return;
    };
    let (heap, of, taken) = heap_under(share, limit, initial);
    let need = heap + outside;
    if limit >= need || share.max_ram_bytes.is_some() {
        return;
    }
    // A smaller share helps where the share, not -Xms or the default, sets it.
    let leaves = limit - outside * factor;
    let by_share =
        of == share.max && initial <= share.max_heap(limit) && leaves >= DEFAULT_MAX_HEAP;
    let lower = match by_share && leaves >= committed {
        true => format!(
            " or lower -XX:MaxRAMPercentage to {}% or less",
            (leaves / limit * 100.0).floor()
        ),
        false => String::new(),
    };
    // Its maximum follows the limit: the limit recommended may be a smaller one.
    let to = match raise > limit {
        true => format!("raise the limit to {}", bytes(raise)),
        false => format!(
            "a {} limit leaves the room (its heap maximum follows the limit, to {})",
            bytes(raise),
            bytes(heap_under(share, raise, initial).0)
        ),
    };
    let (limit_said, need_said) = apart(limit, need);
    let why = format!(
        "the {limit_said} limit is under the heap maximum the JVM takes under it ({}: {taken}) \
         plus the {} it uses outside the heap ({need_said}): when its heap grows, the kernel \
         kills it before its collector must work harder; {to}{lower}",
        bytes(heap),
        bytes(outside),
    );
    match m.allocation.0 {
        AllocationVerdict::Under => m.reason = format!("{}; {why}", m.reason),
        _ => {
            m.allocation = AllocationField(AllocationVerdict::Under);
            m.reason = why;
        }
    }
}

/// A limit and the larger need it falls short of, in words that tell them
/// apart: in MiB where their usual rounding would say the same (not "the 1.0
/// GiB limit is under ... (1.0 GiB)" for 1024 against 1068 MiB).
fn apart(limit: f64, need: f64) -> (String, String) {
    let (l, n) = (bytes(limit), bytes(need));
    match l == n {
        true => (
            format!("{:.0} MiB", limit / 1048576.0),
            format!("{:.0} MiB", need / 1048576.0),
        ),
        false => (l, n),
    }
}

/// The heap's maximum a JVM sizing it from its `share` takes under `limit`
/// (never below `initial`), the share of the limit that regime gives, and the
/// words for what set the maximum.
fn heap_under(share: HeapShare, limit: f64, initial: f64) -> (f64, f64, String) {
    let heap = share.max_heap(limit);
    let small = share.min * limit < DEFAULT_MAX_HEAP;
    let of = if small { share.min } else { share.max };
    let taken = if initial > heap {
        "its -Xms".to_string()
    } else if small {
        format!(
            "{}% of it, -XX:MinRAMPercentage under a limit this small",
            percent(of)
        )
    } else if of * limit < DEFAULT_MAX_HEAP {
        "the JVM's default maximum, more than its share".to_string()
    } else {
        format!("{}% of it, -XX:MaxRAMPercentage", percent(of))
    };
    (heap.max(initial), of, taken)
}

/// A share as a percentage as the JVM takes it: up to 2 decimals, trailing
/// zeros dropped (`-XX:MaxRAMPercentage=0.5` is "0.5", 75 is "75").
pub fn percent(share: f64) -> String {
    let p = format!("{:.2}", share * 100.0);
    p.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::sizing::MemoryVerdict;

    const MIB: f64 = 1048576.0;
    /// -Xmx256m, 100 MiB outside the heap, 90 MiB of heap committed.
    const HEAP: Heap = Heap {
        max: 256.0 * MIB,
        outside: 100.0 * MIB,
        committed: 90.0 * MIB,
        given: Given::Xmx,
    };

    fn verdict(state: AllocationVerdict, reason: &str, limit_mib: f64) -> SizingVerdict {
        SizingVerdict {
            memory: MemoryVerdict {
                peak_bytes: Some(200.0 * MIB),
                recommended_request_bytes: Some(230.0 * MIB),
                recommended_limit_bytes: Some(limit_mib * MIB),
                allocation: AllocationField(state),
                reason: reason.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A JVM at 200 MiB (100 of them outside its heap) with -Xmx256m under a
    /// 300 MiB limit: the heap may grow past the container. Told, with both ways
    /// out; the limit recommended holds 256 + 1.3 x 100 MiB.
    #[test]
    fn a_limit_under_the_heap_maximum_and_what_is_outside_it_is_under() {
        let mut v = verdict(
            AllocationVerdict::Ok,
            "peak memory 200 MiB under the 300 MiB limit",
            260.0,
        );
        fit(&mut v, HEAP, Some(300.0 * MIB), 1.3);
        let m = &v.memory;
        assert_eq!(m.allocation.0, AllocationVerdict::Under);
        assert_eq!(
            m.reason,
            "the 300 MiB limit is under its -Xmx (256 MiB) plus the 100 MiB it uses outside the \
             heap (356 MiB): when its heap grows, the kernel kills it before its collector must \
             work harder; raise the limit to 386 MiB or lower -Xmx to 170 MiB or less"
        );
        assert_eq!(m.recommended_limit_bytes, Some(386.0 * MIB));
        assert_eq!(m.heap_max_bytes, Some(256.0 * MIB));
        // The request is the usage's.
        assert_eq!(m.recommended_request_bytes, Some(230.0 * MIB));
        // A heap that has committed more than the limit would leave it: the
        // limit alone is the way out.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 260.0);
        let big = Heap {
            committed: 180.0 * MIB,
            ..HEAP
        };
        fit(&mut v, big, Some(300.0 * MIB), 1.3);
        assert!(
            v.memory.reason.ends_with("raise the limit to 386 MiB"),
            "{}",
            v.memory.reason
        );
    }

    /// Near its limit already: the reason keeps what it said and adds the heap's.
    #[test]
    fn an_under_verdict_keeps_its_reason_first() {
        let mut v = verdict(
            AllocationVerdict::Under,
            "peak memory 290 MiB is 97% of the 300 MiB limit",
            380.0,
        );
        fit(&mut v, HEAP, Some(300.0 * MIB), 1.3);
        assert!(v.memory.reason.starts_with(
            "peak memory 290 MiB is 97% of the 300 MiB limit; the 300 MiB limit is under its -Xmx"
        ));
    }

    /// Room for both under the limit: the verdict stands; without a limit the
    /// recommendation alone is raised, and says why.
    #[test]
    fn room_for_the_heap_leaves_the_verdict_and_no_limit_raises_the_recommendation() {
        let mut v = verdict(
            AllocationVerdict::Ok,
            "peak memory 200 MiB under the 512 MiB limit",
            260.0,
        );
        fit(&mut v, HEAP, Some(512.0 * MIB), 1.3);
        assert_eq!(v.memory.allocation.0, AllocationVerdict::Ok);
        let mut v = verdict(
            AllocationVerdict::Over,
            "peak memory 200 MiB is 20% of the 1.0 GiB request; 230 MiB would do",
            260.0,
        );
        fit(&mut v, HEAP, None, 1.3);
        assert_eq!(v.memory.allocation.0, AllocationVerdict::Over);
        assert!(v.memory.reason.ends_with(
            "230 MiB would do; the limit recommended holds its -Xmx (256 MiB) and 1.3 x the 100 MiB it uses outside the heap"
        ), "{}", v.memory.reason);
        assert_eq!(v.memory.recommended_limit_bytes, Some(386.0 * MIB));
        // A recommendation that already holds both is left alone.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 500.0);
        fit(&mut v, HEAP, None, 1.3);
        assert_eq!(
            (v.memory.recommended_limit_bytes, v.memory.heap_max_bytes),
            (Some(500.0 * MIB), None)
        );
        assert_eq!(v.memory.reason, "ok");
    }

    /// No verdict before the sizing has its minutes of data.
    #[test]
    fn nothing_before_there_is_a_recommendation() {
        let mut v = SizingVerdict::default();
        fit(&mut v, HEAP, Some(200.0 * MIB), 1.3);
        assert_eq!(v, SizingVerdict::default());
    }

    /// Through the analysis: a JVM with -Xmx256m holding 200 MiB of RSS, 100 of
    /// them its committed heap, under a 300 MiB limit, for 20 min. Without the
    /// `-Xmx` it was given (a JVM sizing its own heap) the same figures are
    /// sized right.
    #[test]
    fn a_jvm_given_xmx_is_sized_for_its_heap_to_grow() {
        use crate::analysis::{AnalysisConfig, Analyzer, Observation};
        let run = |max_heap_bytes: Option<u64>, heap_share: Option<HeapShare>| {
            let mut a = Analyzer::new(&AnalysisConfig::default());
            let mut v = None;
            for i in 0..240 {
                v = Some(a.observe(&Observation {
                    t: i as f64 * 5.0,
                    rss_bytes: 200.0 * MIB,
                    cpu_seconds: Some(i as f64 * 0.1),
                    memory_limit_bytes: Some(300.0 * MIB),
                    jvm: Some(JvmHeap {
                        old_used_bytes: 50 << 20,
                        old_capacity_bytes: 70 << 20,
                        young_capacity_bytes: Some(30 << 20),
                        old_max_bytes: Some(256 << 20),
                        old_collections: 1 + i / 60,
                        young_collections: 1 + i / 6,
                        heap_mappings: 1,
                        shmem_resident_bytes: None,
                        max_heap_bytes,
                        heap_share,
                        initial_heap_bytes: None,
                        collector_given: None,
                        ergonomics: None,
                    }),
                    ..Default::default()
                }));
            }
            v.unwrap()
        };
        let v = run(Some(256 << 20), None);
        assert_eq!(v.sizing.memory.allocation.0, AllocationVerdict::Under);
        assert!(
            v.sizing.memory.reason.starts_with(
                "the 300 MiB limit is under its -Xmx (256 MiB) plus the 100 MiB it uses outside the heap (356 MiB)"
            ),
            "{}",
            v.sizing.memory.reason
        );
        let yaml = v.resources_yaml.unwrap();
        assert!(
            yaml.ends_with("  limits:\n    memory: 386Mi  # holds -Xmx (256Mi) and what it uses outside the heap\n"),
            "{yaml}"
        );
        let v = run(None, None);
        assert_eq!(
            v.sizing.memory.allocation.0,
            AllocationVerdict::Ok,
            "{}",
            v.sizing.memory.reason
        );
        assert!(!v.resources_yaml.unwrap().contains("-Xmx"));
        // Sizing its heap itself at 25% (-XX:MinRAMPercentage=25 too): 100 MiB
        // committed needs a 400 MiB limit.
        let share = HeapShare {
            max: 0.25,
            min: 0.25,
            max_ram_bytes: None,
        };
        let v = run(None, Some(share));
        assert_eq!(v.sizing.memory.allocation.0, AllocationVerdict::Ok);
        let yaml = v.resources_yaml.unwrap();
        assert!(
            yaml.ends_with(
                "    memory: 400Mi  # its heap's 25% share of it holds what the heap committed\n"
            ),
            "{yaml}"
        );
    }

    /// A JVM given -XX:MaxRAM sizes its heap from it above its limit as well as
    /// below: in a 1 GiB memory cgroup `-XX:MaxRAM=4g` gave `MaxHeapSize` 1 GiB
    /// (OpenJDK 17 and Temurin 25; 256 MiB without it, 128 MiB with
    /// `-XX:MaxRAM=512m`). That maximum does not follow the limit: it is sized
    /// as -Xmx is, never below -Xms.
    #[test]
    fn a_jvm_given_max_ram_is_sized_for_its_share_of_it() {
        let args = "-XX:MaxRAM=4g";
        let share = crate::sample::jvm::heap_share(args).unwrap();
        assert_eq!(share.max_heap(1024.0 * MIB), 1024.0 * MIB);
        assert_eq!(share.max_heap(8192.0 * MIB), 1024.0 * MIB);
        let jvm = |args: &str| JvmHeap {
            old_capacity_bytes: 200 << 20,
            young_capacity_bytes: Some(0),
            heap_mappings: 1,
            heap_share: crate::sample::jvm::heap_share(args),
            initial_heap_bytes: crate::sample::jvm::initial_heap(args),
            ..Default::default()
        };
        // 200 MiB committed, 100 MiB outside, under a 1 GiB limit.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 300.0);
        let peaks = (100.0 * MIB, 200.0 * MIB);
        fit_jvm(&mut v, &jvm(args), peaks, &limit(Some(1024.0 * MIB)), 1.3);
        let m = &v.memory;
        assert_eq!(m.allocation.0, AllocationVerdict::Under);
        assert_eq!(m.recommended_limit_bytes, Some(1154.0 * MIB));
        assert_eq!(
            (m.heap_max_bytes, m.heap_share),
            (Some(1024.0 * MIB), Some(0.25))
        );
        assert_eq!(
            m.reason,
            "the 1.0 GiB limit is under the heap maximum its -XX:MaxRAM gives (1.0 GiB) plus \
             the 100 MiB it uses outside the heap (1.1 GiB): when its heap grows, the kernel \
             kills it before its collector must work harder; raise the limit to 1.1 GiB or \
             give it an -Xmx of 894 MiB or less"
        );
        assert!(
            resources_yaml_of(&v).ends_with(
                "    memory: 1154Mi  # holds its heap's maximum (1024Mi) and what it uses outside the heap\n"
            ),
            "{}",
            resources_yaml_of(&v)
        );
        // Without a limit the recommendation alone is raised; -Xms2g over its
        // 1 GiB share is the maximum.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 300.0);
        fit_jvm(
            &mut v,
            &jvm("-XX:MaxRAM=4g -Xms2g"),
            peaks,
            &limit(None),
            1.3,
        );
        assert_eq!(v.memory.recommended_limit_bytes, Some(2178.0 * MIB));
        assert!(v.memory.reason.ends_with(
            "; the limit recommended holds the heap maximum its -XX:MaxRAM gives (2.0 GiB) and 1.3 x the 100 MiB it uses outside the heap"
        ), "{}", v.memory.reason);
    }

    /// A JVM sizing its heap itself may grow it to the maximum it takes under
    /// the limit: the limit must hold that and 1.3 x what it uses outside the
    /// heap. -XX:MaxRAMPercentage=75, 300 MiB committed, 300 MiB outside, the
    /// usage's limit 780 MiB: under it the heap may grow to 585 MiB (OpenJDK
    /// 17: 586), 585 + 300 > 780, and a real JVM so sized was OOM-killed 4
    /// runs of 5. The least limit that holds both is 1560 MiB (a 1170 MiB
    /// heap, as OpenJDK 17 takes under -XX:MaxRAM=1560m, + 390 MiB).
    #[test]
    fn the_limit_holds_the_heap_it_allows_and_what_is_outside_it() {
        let jvm = |args: &str, committed: u64| JvmHeap {
            old_capacity_bytes: committed << 20,
            young_capacity_bytes: Some(0),
            heap_mappings: 1,
            heap_share: crate::sample::jvm::heap_share(args),
            initial_heap_bytes: crate::sample::jvm::initial_heap(args),
            ..Default::default()
        };
        let j = jvm("-XX:MaxRAMPercentage=75", 300);
        let mut v = verdict(AllocationVerdict::Ok, "ok", 780.0);
        fit_jvm(&mut v, &j, (300.0 * MIB, 300.0 * MIB), &limit(None), 1.3);
        let m = &v.memory;
        assert_eq!(m.recommended_limit_bytes, Some(1560.0 * MIB));
        assert_eq!(m.heap_share, Some(0.75));
        assert_eq!(m.allocation.0, AllocationVerdict::Ok);
        assert_eq!(
            m.reason,
            "ok; the limit recommended holds the heap maximum the JVM takes under it (1.1 GiB: \
             75% of it, -XX:MaxRAMPercentage) and 1.3 x the 300 MiB it uses outside the heap: \
             under less, its heap may grow until the kernel kills it"
        );
        let share = j.heap_share.unwrap();
        let fits = |l: f64| share.max_heap(l) + 390.0 * MIB <= l;
        assert!(fits(1560.0 * MIB) && !fits(1559.0 * MIB));
        // -Xms1g and no -Xmx: its maximum is 1 GiB under any limit (OpenJDK 17
        // under -XX:MaxRAM=520m and 1154m alike), and 1 GiB committed has
        // room in it: the limit holds -Xms and 1.3 x 100 MiB.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 520.0);
        fit_jvm(
            &mut v,
            &jvm("-Xms1g", 1024),
            (100.0 * MIB, 1024.0 * MIB),
            &limit(None),
            1.3,
        );
        assert_eq!(v.memory.recommended_limit_bytes, Some(1154.0 * MIB));
        assert!(
            v.memory
                .reason
                .contains("(1.0 GiB: its -Xms) and 1.3 x the 100 MiB"),
            "{}",
            v.memory.reason
        );
        // A heap under the default maximum, 50% of a small limit: 40 MiB
        // committed and 40 MiB outside need 104 MiB, not 80.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 60.0);
        fit_jvm(
            &mut v,
            &jvm("", 40),
            (40.0 * MIB, 40.0 * MIB),
            &limit(None),
            1.3,
        );
        assert_eq!(v.memory.recommended_limit_bytes, Some(104.0 * MIB));
        assert!(
            v.memory
                .reason
                .contains("(52 MiB: 50% of it, -XX:MinRAMPercentage under a limit this small)"),
            "{}",
            v.memory.reason
        );
        // At 100% no limit leaves room beside the heap: -Xmx is the way.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 780.0);
        let all = jvm("-XX:MaxRAMPercentage=100", 300);
        fit_jvm(&mut v, &all, (300.0 * MIB, 300.0 * MIB), &limit(None), 1.3);
        assert_eq!(v.memory.recommended_limit_bytes, Some(780.0 * MIB));
        assert_eq!(
            v.memory.reason,
            "ok; no limit holds its heap's 100% share of it and 1.3 x the 300 MiB it uses \
             outside the heap: give it -Xmx"
        );
    }

    /// A fractional share is said as given, not rounded to "0%".
    #[test]
    fn a_fractional_share_is_said_as_given() {
        let p: Vec<String> = [0.005, 0.75, 0.125, 1.0 / 3.0, 0.0, 1.0]
            .into_iter()
            .map(percent)
            .collect();
        assert_eq!(p, ["0.5", "75", "12.5", "33.33", "0", "100"]);
        let share = HeapShare {
            max: 0.005,
            min: 0.5,
            max_ram_bytes: None,
        };
        let mut v = verdict(AllocationVerdict::Ok, "ok", 260.0);
        fit_share(&mut v, share, (0.0, 200.0 * MIB), 0.0, 1.3);
        assert!(
            v.memory
                .reason
                .contains("within its 0.5% share of the limit"),
            "{}",
            v.memory.reason
        );
        assert!(resources_yaml_of(&v).contains("# its heap's 0.5% share"));
    }

    /// A memory limit alone.
    fn limit(memory_limit: Option<f64>) -> Allocated {
        Allocated {
            memory_limit,
            ..Default::default()
        }
    }

    /// The limit a JVM sizing its heap has now is judged as under -Xmx: at
    /// `-XX:MaxRAMPercentage=75` under 1 GiB its heap may grow to 768 MiB, with
    /// 300 MiB outside it past the limit (the reviewer's JVM was OOM-killed 4
    /// runs of 5 so at 780 MiB). Under, with both ways out; at the default 25%
    /// the same JVM fits, and the verdict stands.
    #[test]
    fn a_limit_under_the_heap_a_share_allows_and_what_is_outside_is_under() {
        let judged = |args: &str, limit_mib: f64| {
            let mut v = verdict(AllocationVerdict::Over, "over", 520.0);
            let j = JvmHeap {
                heap_share: crate::sample::jvm::heap_share(args),
                initial_heap_bytes: crate::sample::jvm::initial_heap(args),
                ..Default::default()
            };
            let peaks = (300.0 * MIB, 400.0 * MIB);
            fit_jvm(&mut v, &j, peaks, &limit(Some(limit_mib * MIB)), 1.3);
            v.memory
        };
        let m = judged("-XX:MaxRAMPercentage=75", 1024.0);
        assert_eq!(m.allocation.0, AllocationVerdict::Under, "{}", m.reason);
        assert_eq!(m.recommended_limit_bytes, Some(1560.0 * MIB));
        assert_eq!(
            m.reason,
            "the 1024 MiB limit is under the heap maximum the JVM takes under it (768 MiB: 75% \
             of it, -XX:MaxRAMPercentage) plus the 300 MiB it uses outside the heap (1068 MiB): \
             when its heap grows, the kernel kills it before its collector must work harder; \
             raise the limit to 1.5 GiB or lower -XX:MaxRAMPercentage to 61% or less"
        );
        // The share offered is the largest whole one leaving 1.3 x 300 MiB beside
        // the heap it gives, which still holds the 400 MiB committed.
        let heap_at = |p: u32| {
            let args = format!("-XX:MaxRAMPercentage={p}");
            crate::sample::jvm::heap_share(&args)
                .unwrap()
                .max_heap(1024.0 * MIB)
        };
        assert!(heap_at(61) + 1.3 * 300.0 * MIB <= 1024.0 * MIB && heap_at(61) >= 400.0 * MIB);
        assert!(heap_at(62) + 1.3 * 300.0 * MIB > 1024.0 * MIB);
        // A share that cannot hold what the heap committed is not offered.
        let mut tight = judged("-XX:MaxRAMPercentage=75", 780.0);
        assert!(
            tight.reason.ends_with("raise the limit to 1.5 GiB"),
            "{}",
            tight.reason
        );
        tight.reason.clear();
        // A small JVM at 90% under 300 MiB, 56 MiB outside its heap (a real one,
        // `tests/jvm.rs`): the limit its usage gives is smaller, and its heap's
        // maximum shrinks with it (50% under a limit this small).
        let mut v = verdict(AllocationVerdict::Ok, "ok", 76.0);
        let j = JvmHeap {
            heap_share: crate::sample::jvm::heap_share("-XX:MaxRAMPercentage=90"),
            ..Default::default()
        };
        let peaks = (56.0 * MIB, 30.0 * MIB);
        fit_jvm(&mut v, &j, peaks, &limit(Some(300.0 * MIB)), 1.3);
        assert_eq!(v.memory.allocation.0, AllocationVerdict::Under);
        // The least leaving 1.3 x 56 MiB beside half of it: 145.6 MiB.
        let rec = v.memory.recommended_limit_bytes.unwrap();
        assert!((rec - 1.3 * 56.0 * MIB / 0.5).abs() <= 1.0, "{rec}");
        assert!(
            v.memory.reason.contains(
                "; a 146 MiB limit leaves the room (its heap maximum follows the limit, to 73 MiB) \
                 or lower -XX:MaxRAMPercentage to 75% or less"
            ),
            "{}",
            v.memory.reason
        );
        // The default 25% under 1 GiB: 256 + 300 MiB fit; its verdict stands.
        let m = judged("", 1024.0);
        assert_eq!(m.allocation.0, AllocationVerdict::Over, "{}", m.reason);
        // -Xms sets the maximum: only a larger limit helps.
        let m = judged("-Xms900m", 1024.0);
        assert_eq!(m.allocation.0, AllocationVerdict::Under, "{}", m.reason);
        assert!(m.reason.contains("(900 MiB: its -Xms)"), "{}", m.reason);
        assert!(!m.reason.contains("MaxRAMPercentage"), "{}", m.reason);
    }

    /// The `resources:` block of a verdict with a CPU recommendation.
    fn resources_yaml_of(v: &SizingVerdict) -> String {
        let mut v = v.clone();
        v.cpu.recommended_request_cores = Some(0.1);
        crate::analysis::resources_yaml(&v).unwrap()
    }

    /// A JVM not given its collector picks Serial under 1792 MiB: a limit
    /// recommended under that says so, where it sees more now.
    #[test]
    fn a_smaller_limit_that_would_change_the_collector_is_said() {
        let said = |given: Option<bool>, rec: f64, limit: Option<f64>| {
            let mut v = verdict(AllocationVerdict::Over, "over", rec);
            let j = JvmHeap {
                collector_given: given,
                ..Default::default()
            };
            let alloc = Allocated {
                memory_limit: limit.map(|l| l * MIB),
                ..Default::default()
            };
            warn_collector(&mut v, &j, &alloc, 4.0);
            v.memory.reason.contains("picks Serial")
        };
        assert!(said(Some(false), 600.0, None));
        assert!(said(Some(false), 600.0, Some(4096.0)));
        assert!(!said(Some(true), 600.0, None), "given G1");
        assert!(!said(None, 600.0, None), "not known");
        assert!(!said(Some(false), 2048.0, None), "limit over 1792 MiB");
        assert!(!said(Some(false), 600.0, Some(1024.0)), "Serial already");
    }

    /// A JVM that would not pick G1 now is not told a smaller limit changes
    /// it: held under 2 CPUs it runs Serial already (OpenJDK 17 in v1 cgroups,
    /// a 1-CPU quota and a 4 GiB limit: `UseSerialGC`; a 1.5-CPU quota:
    /// `UseG1GC`, the quota rounded up; `-XX:ActiveProcessorCount=2` under the
    /// 1-CPU quota: `UseG1GC`; `=1` without a limit: `UseSerialGC`). With
    /// `-XX:-UseContainerSupport` it sees the host, not the limit (a 1 GiB
    /// memory cgroup: `UseG1GC`).
    #[test]
    fn the_collector_is_said_to_change_only_for_a_jvm_that_picks_g1_now() {
        let said = |args: &str, cpu_limit: Option<f64>, host: f64| {
            let mut v = verdict(AllocationVerdict::Over, "over", 600.0);
            let j = JvmHeap {
                collector_given: Some(crate::sample::jvm::collector_given(args)),
                ergonomics: Some(crate::sample::jvm::ergonomics(args)),
                ..Default::default()
            };
            let alloc = Allocated {
                cpu_limit,
                memory_limit: Some(4096.0 * MIB),
                ..Default::default()
            };
            warn_collector(&mut v, &j, &alloc, host);
            v.memory.reason.contains("picks Serial")
        };
        assert!(said("", None, 4.0));
        assert!(!said("", Some(1.0), 4.0), "1 CPU: Serial already");
        assert!(!said("", Some(0.5), 4.0), "half a CPU: Serial already");
        assert!(said("", Some(1.5), 4.0), "1.5 CPUs count as 2");
        assert!(!said("", None, 1.0), "a host of 1 CPU");
        assert!(!said("", Some(4.0), 1.0), "a limit over the host's CPUs");
        assert!(said("-XX:ActiveProcessorCount=2", Some(1.0), 4.0));
        assert!(!said("-XX:ActiveProcessorCount=1", None, 4.0));
        assert!(
            said("-XX:ActiveProcessorCount=-1", None, 4.0),
            "-1: counted"
        );
        assert!(!said("-XX:-UseContainerSupport", None, 4.0));
        assert!(said(
            "-XX:-UseContainerSupport -XX:+UseContainerSupport",
            None,
            4.0
        ));
        // A trace's JVM (no arguments read): as one without any.
        let mut v = verdict(AllocationVerdict::Over, "over", 600.0);
        let j = JvmHeap {
            collector_given: Some(false),
            ..Default::default()
        };
        warn_collector(&mut v, &j, &Allocated::default(), 2.0);
        assert!(v.memory.reason.contains("picks Serial"));
    }

    /// A JVM sizing its heap itself, with the JVM's default shares (25% of its
    /// limit, 50% under a small one), its heap 200 MiB committed at most, the
    /// limit from its usage 260 MiB: that would give it a 126 MiB heap maximum.
    /// The limit recommended is the least that holds its heap: 800 MiB; under
    /// a small limit, 100 MiB committed needs 200 MiB (50%). What the JVM
    /// takes, checked with `java -XX:MaxRAM=M -XX:+PrintFlagsFinal -version`
    /// (OpenJDK 17): `MaxHeapSize` 100 MiB at 200m, 126 MiB at 260m.
    #[test]
    fn a_jvm_sizing_its_heap_itself_keeps_it_within_its_share() {
        let default = HeapShare {
            max: 0.25,
            min: 0.5,
            max_ram_bytes: None,
        };
        assert_eq!(default.max_heap(200.0 * MIB), 100.0 * MIB);
        assert!((default.max_heap(260.0 * MIB) / MIB - 124.8).abs() < 0.01);
        assert_eq!(default.max_heap(1024.0 * MIB), 256.0 * MIB);
        let mut v = verdict(
            AllocationVerdict::Ok,
            "peak memory 200 MiB under the 1.0 GiB limit",
            260.0,
        );
        fit_share(&mut v, default, (0.0, 200.0 * MIB), 0.0, 1.3);
        assert_eq!(v.memory.recommended_limit_bytes, Some(800.0 * MIB));
        assert_eq!(v.memory.heap_share, Some(0.25));
        assert_eq!(v.memory.allocation.0, AllocationVerdict::Ok);
        assert!(v.memory.reason.ends_with(
            "; the limit recommended keeps the 200 MiB its heap has committed within its 25% share of the limit (-XX:MaxRAMPercentage: a larger share lowers it)"
        ), "{}", v.memory.reason);
        let mut v = verdict(AllocationVerdict::Ok, "ok", 150.0);
        fit_share(&mut v, default, (0.0, 100.0 * MIB), 0.0, 1.3);
        assert_eq!(
            (v.memory.recommended_limit_bytes, v.memory.heap_share),
            (Some(200.0 * MIB), Some(0.5))
        );
        assert!(
            v.memory.reason.ends_with("within its 50% share of the limit (-XX:MinRAMPercentage, under a limit this small)"),
            "{}",
            v.memory.reason
        );
        // Where the usage's limit already holds it (200 MiB needed), or at 75%
        // (267 MiB for 200 MiB), nothing changes.
        for (share, committed, rec) in [
            (default, 100.0, 260.0),
            (
                HeapShare {
                    max: 0.75,
                    ..default
                },
                200.0,
                270.0,
            ),
        ] {
            let mut v = verdict(AllocationVerdict::Ok, "ok", rec);
            fit_share(&mut v, share, (0.0, committed * MIB), 0.0, 1.3);
            assert_eq!(
                (v.memory.recommended_limit_bytes, v.memory.heap_share),
                (Some(rec * MIB), None)
            );
            assert_eq!(v.memory.reason, "ok");
        }
        // Started with -Xms128m: its heap's maximum is never below 128 MiB,
        // which holds the 100 MiB committed under any limit.
        let mut v = verdict(AllocationVerdict::Ok, "ok", 150.0);
        fit_share(&mut v, default, (0.0, 100.0 * MIB), 128.0 * MIB, 1.3);
        assert_eq!(v.memory.recommended_limit_bytes, Some(150.0 * MIB));
    }
}
