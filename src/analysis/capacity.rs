//! Capacity advice: how many requests a CPU-second serves, how many requests per
//! second the allocation carries at that cost, and how many pre-fork workers fit.
//!
//! # Requests per CPU-second
//! HTTP requests are the access lines the classifier counts (2xx–5xx), over a
//! sliding window (`capacity.window`, default 5 min), divided by the CPU seconds the
//! target used over the same window. At that cost, `cores` of CPU carry
//! `requests_per_cpu_second × cores` requests per second: the arithmetic "1 CPU for
//! a minute at 100 ms per request is 600 requests", made live, for the CPU request
//! and the CPU limit.
//!
//! Logs are not tied to a target by Outrider, so requests are attributed by
//! [`attribute`]: with exactly one target up, every stream's access lines are its
//! requests (the usual sidecar or wrap run); with several, only a stream whose name
//! equals the target's name counts (`[[logs]] name = "<target>"`); otherwise the
//! requests are unknown and no figure is given.
//!
//! # Worker hint
//! For a pre-fork server ([`crate::sample::workers`]): start at workers per core
//! ([`per_core`]: `capacity.workers_per_core`, 2, or more for a request that waits
//! on I/O) × cores, where cores are the CPU limit, else the
//! CPU request, else the CPUs visible to Outrider; then bound it by what fits in the
//! memory limit: `floor((limit × capacity.memory_margin − master PSS − other
//! processes' RSS) / mean worker PSS)`, at least 1. Without a memory limit or a PSS
//! reading only CPU bounds it, and the reasoning says so.
//!
//! # Layout
//! - [`attribute`]: which access lines are a target's requests
//! - [`CapacityTracker`]: the bounded window of cumulative (requests, CPU seconds)
//! - [`worker_hint`]: the worker-count hint with its reasoning in words

use std::collections::VecDeque;

use serde::Serialize;

use crate::analysis::requests::{Bound, TimePerRequest};
use crate::sample::allocation::Allocation;
use crate::sample::workers::Workers;
use crate::units::count;

/// `[capacity]`: the window and the worker-hint factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityConfig {
    /// Seconds the requests-per-CPU-second figure covers.
    pub window: f64,
    /// Workers to start from per core (gunicorn's docs suggest about 2 per core).
    pub workers_per_core: f64,
    /// Share of the memory limit the server may fill (0.9: 10% kept free).
    pub memory_margin: f64,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            window: 300.0,
            workers_per_core: 2.0,
            memory_margin: 0.9,
        }
    }
}

/// Less CPU than this in the window gives no figure: CPU time comes in 10 ms ticks,
/// so 0.1 s keeps the rounding error under 10%.
pub const MIN_CPU_SECONDS: f64 = 0.1;

/// Points kept per window, about (plus the baseline and the latest): memory per
/// target stays bounded whatever the interval.
const MAX_POINTS: f64 = 256.0;

/// Where a target's requests come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "stream")]
pub enum Attribution {
    /// The only target up: every stream's access lines.
    AllStreams,
    /// The stream named like the target.
    Stream(String),
    /// Several targets and no stream of this one's name, or no stream at all.
    Unknown,
}

/// The attribution rule (see the module doc) and the cumulative requests it gives.
pub fn attribute(
    target: &str,
    targets_up: usize,
    streams: &[(&str, u64)],
) -> (Attribution, Option<u64>) {
    if streams.is_empty() {
        return (Attribution::Unknown, None);
    }
    if targets_up == 1 {
        return (
            Attribution::AllStreams,
            Some(streams.iter().map(|(_, n)| n).sum()),
        );
    }
    match streams.iter().find(|(name, _)| *name == target) {
        Some((name, n)) => (Attribution::Stream(name.to_string()), Some(*n)),
        None => (Attribution::Unknown, None),
    }
}

/// What the capacity analysis says of one target now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub attribution: Attribution,
    /// Seconds the figures cover (less than the window until it has filled).
    pub window_seconds: f64,
    /// HTTP requests in the window; `None` when not attributable.
    pub requests: Option<u64>,
    /// CPU seconds the target used in the window.
    pub cpu_seconds: f64,
    pub requests_per_cpu_second: Option<f64>,
    /// The inverse: CPU seconds one request costs.
    pub cpu_seconds_per_request: Option<f64>,
    /// Requests per second the CPU request would carry at the observed cost.
    pub requests_per_second_at_cpu_request: Option<f64>,
    /// Requests per second the CPU limit would carry at the observed cost.
    pub requests_per_second_at_cpu_limit: Option<f64>,
    /// The figures in words, or why there are none.
    pub reason: String,
    /// For a pre-fork server: how many workers to run.
    pub worker_hint: Option<WorkerHint>,
}

/// The worker-count hint and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerHint {
    pub workers_now: u64,
    pub recommended_workers: u64,
    /// Cores the CPU bound starts from.
    pub cores: f64,
    /// `cpu_limit`, `cpu_request` or `visible_cpus`.
    pub cores_from: &'static str,
    /// `workers_per_core × cores`, rounded up, at least 1.
    pub cpu_workers: u64,
    /// What fits in the memory limit; `None` without a limit or a PSS reading.
    pub memory_workers: Option<u64>,
    /// `cpu` or `memory`: which bound gave the hint.
    pub bound_by: &'static str,
    pub reasoning: String,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    t: f64,
    requests: Option<u64>,
    cpu_seconds: f64,
}

/// A sliding window of cumulative (requests, CPU seconds) for one target.
#[derive(Debug, Clone)]
pub struct CapacityTracker {
    cfg: CapacityConfig,
    attribution: Attribution,
    points: VecDeque<Point>,
}

impl CapacityTracker {
    pub fn new(cfg: CapacityConfig) -> Self {
        CapacityTracker {
            cfg,
            attribution: Attribution::Unknown,
            points: VecDeque::new(),
        }
    }

    /// Bytes held: bounded by `MAX_POINTS` whatever the window and interval.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.points.capacity() * std::mem::size_of::<Point>()
    }

    /// Adds one tick's cumulative figures (the window restarts when the attribution
    /// changes, since the counts then mean something else) and returns the figures.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        t: f64,
        attribution: Attribution,
        requests: Option<u64>,
        cpu_seconds: f64,
        allocation: &Allocation,
        workers: Option<&Workers>,
        visible_cpus: usize,
        split: Option<&TimePerRequest>,
    ) -> Capacity {
        if attribution != self.attribution {
            self.points.clear();
            self.attribution = attribution.clone();
        }
        self.push(Point {
            t,
            requests,
            cpu_seconds,
        });
        let first = self.points[0];
        let span = t - first.t;
        let cpu = (cpu_seconds - first.cpu_seconds).max(0.0);
        let reqs = match (requests, first.requests) {
            (Some(now), Some(then)) => Some(now.saturating_sub(then)),
            _ => None,
        };
        let cpu_req = allocation.cpu_request_cores.map(|v| v.0);
        let cpu_lim = allocation.cpu_limit_cores.map(|v| v.0);
        let rate = match reqs {
            Some(n) if n > 0 && cpu >= MIN_CPU_SECONDS => Some(n as f64 / cpu),
            _ => None,
        };
        let last = crate::units::spoken(span);
        let reason = match (reqs, rate) {
            (None, _) if matches!(attribution, Attribution::Unknown) => "requests unknown: several targets are up and no log stream is named after this one (or no log is read)".to_string(),
            (None, _) => "requests unknown".to_string(),
            (Some(0), _) => format!("no HTTP access lines in the last {last}"),
            (Some(n), None) => format!(
                "{n} requests on {cpu:.2} CPU-seconds in the last {last}: too little CPU (under {MIN_CPU_SECONDS} s) for a stable figure"
            ),
            (Some(n), Some(r)) => {
                let mut s = format!(
                    "{n} requests on {cpu:.2} CPU-seconds in the last {last}: {r:.1} requests per CPU-second ({:.1} ms of CPU per request)",
                    1000.0 / r
                );
                for (what, c) in [("request", cpu_req), ("limit", cpu_lim)] {
                    if let Some(c) = c {
                        s.push_str(&format!(
                            "; the CPU {what} of {} carries {:.1} requests/s at that cost",
                            crate::analysis::sizing::cores(c),
                            r * c
                        ));
                    }
                }
                s
            }
        };
        Capacity {
            attribution,
            window_seconds: span,
            requests: reqs,
            cpu_seconds: cpu,
            requests_per_cpu_second: rate,
            cpu_seconds_per_request: rate.map(|r| 1.0 / r),
            requests_per_second_at_cpu_request: rate.zip(cpu_req).map(|(r, c)| r * c),
            requests_per_second_at_cpu_limit: rate.zip(cpu_lim).map(|(r, c)| r * c),
            reason,
            worker_hint: workers
                .map(|w| worker_hint(w, allocation, visible_cpus, &self.cfg, split)),
        }
    }

    /// Keeps one point at or before the window's start as the baseline, and points
    /// at least `window / MAX_POINTS` apart (the latest replaces a closer one).
    fn push(&mut self, p: Point) {
        let spacing = self.cfg.window / MAX_POINTS;
        let n = self.points.len();
        if n >= 2 && p.t - self.points[n - 2].t < spacing {
            self.points[n - 1] = p;
        } else {
            self.points.push_back(p);
        }
        while self.points.len() > 2 && self.points[1].t <= p.t - self.cfg.window {
            self.points.pop_front();
        }
    }
}

/// The worker-count hint for a pre-fork server under an allocation (see the
/// module doc for the formula).
pub fn worker_hint(
    w: &Workers,
    a: &Allocation,
    visible_cpus: usize,
    cfg: &CapacityConfig,
    split: Option<&TimePerRequest>,
) -> WorkerHint {
    let (cores, cores_from, cores_words) = match (a.cpu_limit_cores, a.cpu_request_cores) {
        (Some((c, _)), _) => (c, "cpu_limit", "the CPU limit"),
        (None, Some((c, _))) => (c, "cpu_request", "the CPU request"),
        (None, None) => (
            visible_cpus.max(1) as f64,
            "visible_cpus",
            "CPUs visible to Outrider: no CPU limit or request is known",
        ),
    };
    let (wpc, mut reasoning) = per_core(cfg, split);
    // The epsilon keeps 2 × 0.5 at 1, not 2, after float rounding.
    let cpu_workers = ((wpc * cores - 1e-9).ceil() as u64).max(1);
    reasoning.push_str(&format!(
        " per core × {} ({cores_words}) = {} for CPU",
        crate::analysis::sizing::cores(cores),
        count(cpu_workers, "worker")
    ));
    let memory_workers = match (a.memory_limit_bytes, w.worker_pss_bytes) {
        (None, _) => {
            reasoning.push_str("; no memory limit, so memory does not bound it");
            None
        }
        (Some(_), None) => {
            reasoning.push_str(
                "; no PSS reading of the workers yet (or sampling.pss_interval is off), so memory does not bound it",
            );
            None
        }
        (Some((limit, _)), Some(per_worker)) => {
            Some(memory_fit(w, limit, per_worker, cfg, &mut reasoning))
        }
    };
    let (recommended_workers, bound_by) = match memory_workers {
        Some(m) if m < cpu_workers => (m, "memory"),
        _ => (cpu_workers, "cpu"),
    };
    reasoning.push_str(&format!(
        "; {bound_by} binds: {} (running {} now)",
        count(recommended_workers, "worker"),
        w.workers
    ));
    WorkerHint {
        workers_now: w.workers,
        recommended_workers,
        cores,
        cores_from,
        cpu_workers,
        memory_workers,
        bound_by,
        reasoning,
    }
}

/// Most workers per core the time split may ask for, in `workers_per_core`s: a
/// sync worker per in-flight request stops paying past this (memory, context
/// switches); an app that waits longer wants threads or an async worker.
pub const MAX_PER_CORE_FACTOR: f64 = 4.0;

/// Workers per core, and its words. A sync worker holds a core only while its
/// request runs on it: when the time split says a request spends a share `c` of
/// its time on a CPU, `1 / c` workers keep a core busy (N = cores × (1 + wait /
/// compute), Goetz's pool size), never under `workers_per_core` nor over
/// [`MAX_PER_CORE_FACTOR`] times it. Without a judged split, `workers_per_core`.
fn per_core(cfg: &CapacityConfig, split: Option<&TimePerRequest>) -> (f64, String) {
    let wpc = cfg.workers_per_core;
    let plain = |n: f64| format!("{} worker{}", trim(n), if n == 1.0 { "" } else { "s" });
    // Compute against blocking wait (Goetz's W/C): waiting for a CPU is no room
    // for another worker, and a request bound to the CPU or starved of it gets no
    // more workers from its waits.
    let on_cpu = split
        .filter(|s| matches!(s.bound, Bound::Io | Bound::Mixed) && !s.starved)
        .and_then(|s| {
            let (c, w) = (s.on_cpu_seconds?, s.other_seconds?);
            (c > 0.0).then(|| c / (c + w))
        });
    match on_cpu {
        Some(c) if 1.0 / c > wpc => {
            let n = (1.0 / c).min(wpc * MAX_PER_CORE_FACTOR);
            (
                n,
                format!(
                    "a request spends {:.0}% of its time on a CPU against its other waits (the time split), so {} (at most {})",
                    c * 100.0,
                    plain(n),
                    plain(wpc * MAX_PER_CORE_FACTOR)
                ),
            )
        }
        _ => (wpc, plain(wpc)),
    }
}

/// `4`, `4.2`: a count of workers per core.
fn trim(n: f64) -> String {
    format!("{n:.1}").trim_end_matches(".0").to_string()
}

/// How many workers of `per_worker` PSS fit in the memory limit (at least 1), with
/// the arithmetic appended to `reasoning`.
fn memory_fit(
    w: &Workers,
    limit: u64,
    per_worker: u64,
    cfg: &CapacityConfig,
    reasoning: &mut String,
) -> u64 {
    let mib = |b: f64| b / 1048576.0;
    let master = w.master_pss_bytes.unwrap_or(0) as f64;
    let budget = limit as f64 * cfg.memory_margin - master - w.other_rss_bytes as f64;
    let fits = if per_worker == 0 {
        u64::MAX
    } else {
        (budget / per_worker as f64).floor().max(0.0) as u64
    };
    reasoning.push_str(&format!(
        "; the memory limit {:.1} MiB × {} less the master's {:.1} MiB PSS and {:.1} MiB of other processes leaves {:.1} MiB, room for {} of {:.1} MiB PSS each",
        mib(limit as f64),
        cfg.memory_margin,
        mib(master),
        mib(w.other_rss_bytes as f64),
        mib(budget),
        count(fits, "worker"),
        mib(per_worker as f64),
    ));
    if fits == 0 {
        reasoning.push_str(" (not even one: raise the memory limit)");
    }
    fits.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::allocation::Source;
    use crate::sample::workers::ServerKind;

    const MIB: u64 = 1048576;

    fn workers(master: u64, per_worker: u64, other: u64) -> Workers {
        Workers {
            server: ServerKind::Gunicorn,
            master_pid: 1,
            workers: 4,
            master_pss_bytes: Some(master),
            worker_pss_bytes: Some(per_worker),
            workers_pss_total_bytes: Some(4 * per_worker),
            workers_with_pss: 4,
            other_rss_bytes: other,
            pss_age_seconds: Some(1.0),
            pss_interval_seconds: Some(60.0),
        }
    }

    fn alloc(cpu_req: Option<f64>, cpu_lim: Option<f64>, mem_lim: Option<u64>) -> Allocation {
        Allocation {
            cpu_request_cores: cpu_req.map(|v| (v, Source::Config)),
            cpu_limit_cores: cpu_lim.map(|v| (v, Source::Config)),
            memory_request_bytes: None,
            memory_limit_bytes: mem_lim.map(|v| (v, Source::Config)),
        }
    }

    /// The demo's case: an I/O-bound request (24% on a CPU) under a 500m
    /// request. 2 per core gave 1 worker beside "more workers will carry more
    /// load"; 1 / 0.24 = 4.2 per core gives 3.
    #[test]
    fn an_io_bound_request_asks_more_workers_per_core() {
        let cfg = CapacityConfig::default();
        let split = |on_cpu: f64, other: f64, bound| TimePerRequest {
            on_cpu_seconds: Some(on_cpu),
            cpu_wait_seconds: Some(0.0),
            other_seconds: Some(other),
            bound,
            ..Default::default()
        };
        let io = split(0.024, 0.076, Bound::Io);
        let a = alloc(Some(0.5), None, None);
        let h = worker_hint(&workers(0, MIB, 0), &a, 2, &cfg, Some(&io));
        assert_eq!(h.cpu_workers, 3, "{}", h.reasoning);
        assert!(
            h.reasoning.starts_with(
                "a request spends 24% of its time on a CPU against its other waits (the time \
                 split), so 4.2 workers (at most 8 workers) per core × 500m (the CPU request) = 3 \
                 workers for CPU"
            ),
            "{}",
            h.reasoning
        );
        // Almost all waiting: at most 8 per core.
        let h = worker_hint(
            &workers(0, MIB, 0),
            &a,
            2,
            &cfg,
            Some(&split(0.001, 1.0, Bound::Io)),
        );
        assert_eq!(h.cpu_workers, 4, "{}", h.reasoning);
        // Starved of CPU (70% waiting for one): its wait is no room for a worker.
        let mut starved = split(0.02, 0.01, Bound::Cpu);
        starved.cpu_wait_seconds = Some(0.07);
        starved.starved = true;
        let h = worker_hint(&workers(0, MIB, 0), &a, 2, &cfg, Some(&starved));
        assert_eq!(h.cpu_workers, 1, "{}", h.reasoning);
        // CPU-bound, or not judged: 2 per core.
        for s in [
            split(0.09, 0.01, Bound::Cpu),
            split(0.024, 0.076, Bound::Unknown),
        ] {
            let h = worker_hint(&workers(0, MIB, 0), &a, 2, &cfg, Some(&s));
            assert_eq!(h.cpu_workers, 1, "{}", h.reasoning);
            assert!(
                h.reasoning.starts_with("2 workers per core × 500m"),
                "{}",
                h.reasoning
            );
        }
    }

    #[test]
    fn without_a_memory_limit_cpu_alone_bounds_it() {
        let cfg = CapacityConfig::default();
        let h = worker_hint(
            &workers(40 * MIB, 50 * MIB, 0),
            &alloc(Some(1.5), None, None),
            8,
            &cfg,
            None,
        );
        assert_eq!(h.cores_from, "cpu_request");
        assert_eq!(h.cpu_workers, 3);
        assert_eq!(h.memory_workers, None);
        assert_eq!((h.recommended_workers, h.bound_by), (3, "cpu"));
        assert!(h.reasoning.contains("no memory limit"), "{}", h.reasoning);

        // Nothing known of the CPU either: the visible CPUs, and it says so.
        let h = worker_hint(&workers(0, MIB, 0), &alloc(None, None, None), 4, &cfg, None);
        assert_eq!((h.cores_from, h.recommended_workers), ("visible_cpus", 8));
        assert!(h.reasoning.contains("CPUs visible"), "{}", h.reasoning);
    }

    #[test]
    fn memory_binds_before_cpu() {
        let cfg = CapacityConfig::default();
        // Limit 4 cores, request 0.5: the limit wins → 2 × 4 = 8 workers for CPU.
        // Memory: 512 MiB × 0.9 = 460.8, less 60.8 master and 100 other = 300 MiB
        // → 300 / 70 = 4.28 → 4 workers.
        let w = workers((60.8 * MIB as f64) as u64, 70 * MIB, 100 * MIB);
        let h = worker_hint(
            &w,
            &alloc(Some(0.5), Some(4.0), Some(512 * MIB)),
            2,
            &cfg,
            None,
        );
        assert_eq!(h.cores_from, "cpu_limit");
        assert_eq!(h.cpu_workers, 8);
        assert_eq!(h.memory_workers, Some(4));
        assert_eq!((h.recommended_workers, h.bound_by), (4, "memory"));
        assert!(
            h.reasoning.contains("memory binds: 4 workers"),
            "{}",
            h.reasoning
        );

        // A limit too small for even one worker still says 1, and why.
        let h = worker_hint(&w, &alloc(None, Some(4.0), Some(64 * MIB)), 2, &cfg, None);
        assert_eq!(h.recommended_workers, 1);
        assert!(h.reasoning.contains("not even one"), "{}", h.reasoning);
    }

    #[test]
    fn cpu_binds_when_memory_is_plenty() {
        let cfg = CapacityConfig {
            memory_margin: 0.8,
            ..Default::default()
        };
        let w = workers(30 * MIB, 40 * MIB, 0);
        let h = worker_hint(
            &w,
            &alloc(Some(0.5), None, Some(2048 * MIB)),
            16,
            &cfg,
            None,
        );
        // 2 × 0.5 = 1 worker; memory (2048 × 0.8 − 30) / 40 = 40.2 → 40.
        assert_eq!(h.cpu_workers, 1);
        assert_eq!(h.memory_workers, Some(40));
        assert_eq!((h.recommended_workers, h.bound_by), (1, "cpu"));
    }

    #[test]
    fn attribution_rule() {
        let streams = [("stdout", 10), ("stderr", 5), ("api", 7)];
        assert_eq!(
            attribute("x", 1, &streams),
            (Attribution::AllStreams, Some(22))
        );
        assert_eq!(
            attribute("api", 2, &streams),
            (Attribution::Stream("api".into()), Some(7))
        );
        assert_eq!(attribute("web", 2, &streams), (Attribution::Unknown, None));
        assert_eq!(attribute("web", 1, &[]), (Attribution::Unknown, None));
    }

    #[test]
    fn requests_per_cpu_second_over_the_window() {
        let cfg = CapacityConfig {
            window: 60.0,
            ..Default::default()
        };
        let mut t = CapacityTracker::new(cfg);
        let a = alloc(Some(1.0), Some(2.0), None);
        // 10 requests a second at 100 ms of CPU each (1 core busy), for 3 minutes.
        let mut c = None;
        for i in 0..=180 {
            let s = i as f64;
            c = Some(t.observe(
                s,
                Attribution::AllStreams,
                Some(10 * i),
                s,
                &a,
                None,
                2,
                None,
            ));
        }
        let c = c.unwrap();
        assert!((c.window_seconds - 60.0).abs() < 1.0, "{c:?}");
        let r = c.requests_per_cpu_second.unwrap();
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        assert!((c.cpu_seconds_per_request.unwrap() - 0.1).abs() < 1e-9);
        // 1 CPU at 100 ms per request is 10 req/s (600 a minute); 2 CPUs 20.
        assert!((c.requests_per_second_at_cpu_request.unwrap() - 10.0).abs() < 1e-9);
        assert!((c.requests_per_second_at_cpu_limit.unwrap() - 20.0).abs() < 1e-9);
        assert!(
            c.reason.contains("10.0 requests per CPU-second"),
            "{}",
            c.reason
        );

        // The attribution changes: the window restarts, no figure until it fills.
        let c = t.observe(181.0, Attribution::Unknown, None, 181.0, &a, None, 2, None);
        assert_eq!(c.requests_per_cpu_second, None);
        assert!(c.reason.contains("unknown"), "{}", c.reason);
    }

    #[test]
    fn little_cpu_or_no_requests_give_no_figure() {
        let mut t = CapacityTracker::new(CapacityConfig::default());
        let a = Allocation::default();
        t.observe(
            0.0,
            Attribution::AllStreams,
            Some(0),
            0.0,
            &a,
            None,
            1,
            None,
        );
        let c = t.observe(
            10.0,
            Attribution::AllStreams,
            Some(50),
            0.05,
            &a,
            None,
            1,
            None,
        );
        assert_eq!(c.requests_per_cpu_second, None);
        assert!(c.reason.contains("too little CPU"), "{}", c.reason);
        let c = t.observe(
            20.0,
            Attribution::AllStreams,
            Some(0),
            5.0,
            &a,
            None,
            1,
            None,
        );
        assert_eq!(c.requests, Some(0), "counts never go backwards: saturating");
        assert_eq!(c.requests_per_cpu_second, None);
    }

    #[test]
    fn memory_is_bounded_whatever_the_interval() {
        let mut t = CapacityTracker::new(CapacityConfig {
            window: 3600.0,
            ..Default::default()
        });
        let a = Allocation::default();
        // Two hours at 100 ms.
        for i in 0..72_000u64 {
            let s = i as f64 * 0.1;
            t.observe(
                s,
                Attribution::AllStreams,
                Some(i),
                s * 0.5,
                &a,
                None,
                1,
                None,
            );
        }
        assert!(
            t.points.len() <= MAX_POINTS as usize + 4,
            "{}",
            t.points.len()
        );
        assert!(t.footprint() < 32 * 1024, "{}", t.footprint());
        let c = t.observe(
            7200.0,
            Attribution::AllStreams,
            Some(72_000),
            3600.0,
            &a,
            None,
            1,
            None,
        );
        assert!(
            (c.window_seconds - 3600.0).abs() < 3600.0 / MAX_POINTS + 0.2,
            "{c:?}"
        );
        assert!((c.requests_per_cpu_second.unwrap() - 20.0).abs() < 0.1);
    }
}
