//! Verdicts from the samples Outrider already takes: is memory, are fds or threads
//! leaking, and is the app's CPU and memory allocation over, under or ok.
//!
//! # Layout
//! - [`trend`]: robust trend per resource → leak suspected, growth rate
//! - [`sizing`]: decaying CPU histogram, memory peaks → recommendation, allocation
//! - [`trace`]: the CSV format shared by `--record` and `replay`
//! - [`capacity`]: requests per CPU-second, req/s the allocation carries, worker hint
//! - [`latency`]: request-duration histograms → p50/p95/p99 over a window, rises
//! - [`cost`]: requests, usage and recommendation priced; waste and efficiency
//! - [`autoscale`]: hourly CPU p90s → would a horizontal autoscaler pay off
//! - [`idle`]: idle minutes (no requests, or no CPU) → scale-to-zero candidate
//! - [`requests`]: where a request's time goes (on a CPU, waiting for one, other)
//! - [`startup`]: time from the main process' start to listening, to a first request
//!
//! One [`Analyzer`] per target is fed one [`Observation`] per tick, live or from a
//! trace: the same code answers both, so a verdict seen in production can be
//! reproduced offline.

pub mod autoscale;
pub mod capacity;
pub mod cost;
pub mod heap;
pub mod heap_max;
pub mod idle;
pub mod latency;
pub mod minutes;
pub mod requests;
pub mod sizing;
pub mod startup;
pub mod trace;
pub mod trend;

use std::ops::Deref;

use serde::Serialize;

use crate::sample::jvm::JvmHeap;
use crate::sample::TargetSample;

use sizing::{Allocated, Sizing, SizingConfig, SizingVerdict, Usage};
use trend::{TrendConfig, TrendTracker, TrendVerdict};

/// One tick's figures for one target. Counters are cumulative; `None` is unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Seconds (unix time live; whatever the trace uses offline).
    pub t: f64,
    pub rss_bytes: f64,
    pub working_set_bytes: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
    pub threads: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub cpu_wait_seconds: Option<f64>,
    pub cpu_periods: Option<f64>,
    pub cpu_throttled_periods: Option<f64>,
    /// Cumulative seconds the cgroup's quota held the app back.
    pub cpu_throttled_seconds: Option<f64>,
    pub oom_kills: Option<f64>,
    pub restarts: Option<f64>,
    pub memory_limit_bytes: Option<f64>,
    pub cpu_limit_cores: Option<f64>,
    pub memory_request_bytes: Option<f64>,
    pub cpu_request_cores: Option<f64>,
    /// TCP connections established and in CLOSE_WAIT at the latest scan.
    pub tcp_established: Option<f64>,
    pub tcp_close_wait: Option<f64>,
    /// Cumulative access lines attributed to the target; `None` when unknown.
    pub http_requests: Option<f64>,
    /// A JVM's heap; `None` for other apps.
    pub jvm: Option<JvmHeap>,
}

impl Observation {
    /// RSS with a JVM heap counted once ([`TargetSample::resident_once_bytes`]):
    /// what the memory trend and sizing read; `rss_bytes` is the kernel's.
    pub fn resident_bytes(&self) -> f64 {
        JvmHeap::counted_once(self.jvm.as_ref(), self.rss_bytes.max(0.0) as u64) as f64
    }

    /// The figures the analysis (and a trace row) takes from a target's sample
    /// taken at `t`.
    pub fn of(sample: &TargetSample, t: f64) -> Observation {
        let cg = sample.cgroup.as_ref();
        let a = &sample.allocation;
        Observation {
            t,
            rss_bytes: sample.resident_memory_bytes as f64,
            working_set_bytes: cg.and_then(|c| c.own_working_set_bytes()).map(|v| v as f64),
            open_fds: Some(sample.open_fds as f64),
            max_fds: sample.max_fds.map(|v| v as f64),
            threads: Some(sample.threads as f64),
            cpu_seconds: Some(
                sample.counters.cpu_user_seconds + sample.counters.cpu_system_seconds,
            ),
            cpu_wait_seconds: Some(sample.counters.cpu_wait_seconds),
            cpu_periods: cg.and_then(|c| c.cpu_periods).map(|v| v as f64),
            cpu_throttled_periods: cg.and_then(|c| c.cpu_throttled_periods).map(|v| v as f64),
            cpu_throttled_seconds: cg.and_then(|c| c.cpu_throttled_seconds),
            oom_kills: cg.and_then(|c| c.app_oom_kills()).map(|v| v as f64),
            restarts: Some(sample.restarts as f64),
            memory_limit_bytes: a.memory_limit_bytes.map(|v| v.0 as f64),
            cpu_limit_cores: a.cpu_limit_cores.map(|v| v.0),
            memory_request_bytes: a.memory_request_bytes.map(|v| v.0 as f64),
            cpu_request_cores: a.cpu_request_cores.map(|v| v.0),
            tcp_established: sample.connections.map(|c| c.established as f64),
            tcp_close_wait: sample.connections.map(|c| c.close_wait as f64),
            http_requests: None,
            jvm: sample.jvm,
        }
    }
}

/// Thresholds of the analysis; every field comes from `[analysis]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisConfig {
    /// Seconds over which log error rates are computed.
    pub error_window: f64,
    /// Seconds over which request-duration percentiles are computed.
    pub latency_window: f64,
    pub memory: TrendConfig,
    pub fds: TrendConfig,
    pub threads: TrendConfig,
    pub sizing: SizingConfig,
    /// Connections held open: established + CLOSE_WAIT.
    pub connections: TrendConfig,
    /// `[cost]`: prices and replicas.
    pub cost: cost::CostConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        let window = 3600.0;
        AnalysisConfig {
            error_window: 300.0,
            latency_window: 300.0,
            memory: TrendConfig {
                window,
                min_rate: 100.0 * 1024.0 / 60.0,
                min_growth: 10.0 * 1048576.0,
            },
            fds: TrendConfig {
                window,
                min_rate: 0.1 / 60.0,
                min_growth: 10.0,
            },
            threads: TrendConfig {
                window,
                min_rate: 0.1 / 60.0,
                min_growth: 5.0,
            },
            sizing: SizingConfig::default(),
            // A pool that grows and shrinks with load moves its floors by a few;
            // a leak keeps adding. Twice the fd thresholds: every connection is an
            // fd as well, and the fd verdict already covers small counts.
            connections: TrendConfig {
                window,
                min_rate: 0.2 / 60.0,
                min_growth: 20.0,
            },
            cost: cost::CostConfig::default(),
        }
    }
}

/// Error rates of the app's output over the error window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LogRates {
    /// Seconds the rates cover (less than the window until it has filled).
    pub window_seconds: f64,
    pub errors_per_minute: f64,
    /// Error events / all events; `None` without events.
    pub error_ratio: Option<f64>,
    /// 5xx / all HTTP access lines; `None` without access lines.
    pub http_5xx_ratio: Option<f64>,
    /// HTTP access lines per second over the error window.
    pub requests_per_second: f64,
    /// Request-duration percentiles over `latency_window`; `None` without requests
    /// whose duration was read.
    pub latency: Option<latency::Latency>,
}

/// Cumulative log totals at one tick: errors, events, 5xx, HTTP lines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogTotals {
    pub errors: u64,
    pub events: u64,
    pub http_5xx: u64,
    pub http: u64,
}

/// Rates over a sliding window of cumulative totals.
#[derive(Debug, Clone, Default)]
pub struct LogWindow {
    window: f64,
    points: std::collections::VecDeque<(f64, LogTotals)>,
}

impl LogWindow {
    pub fn new(window: f64) -> Self {
        LogWindow {
            window,
            points: Default::default(),
        }
    }

    pub fn push(&mut self, t: f64, totals: LogTotals) -> LogRates {
        self.points.push_back((t, totals));
        // Keep one point at or before the window's start as the baseline.
        while self.points.len() > 2 && self.points[1].0 <= t - self.window {
            self.points.pop_front();
        }
        let (t0, a) = self.points[0];
        let span = t - t0;
        let d = |x: u64, y: u64| x.saturating_sub(y) as f64;
        let errors = d(totals.errors, a.errors);
        let events = d(totals.events, a.events);
        let http = d(totals.http, a.http);
        LogRates {
            window_seconds: span,
            errors_per_minute: if span > 0.0 {
                errors / span * 60.0
            } else {
                0.0
            },
            error_ratio: (events > 0.0).then(|| errors / events),
            http_5xx_ratio: (http > 0.0).then(|| d(totals.http_5xx, a.http_5xx) / http),
            requests_per_second: if span > 0.0 { http / span } else { 0.0 },
            latency: None,
        }
    }
}

/// A leak verdict for one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Leak {
    pub suspected: bool,
    /// Units per second at the current trend; `None` until enough data.
    pub growth_per_second: Option<f64>,
    /// Seconds until the limit at the current trend; `None` without a limit or growth.
    pub time_to_limit_seconds: Option<f64>,
    /// Not suspected: the growth comes in steps that each shrink, a runtime's
    /// heap settling toward its size.
    pub settling: bool,
    /// Memory: the verdict and its rate come from a JVM's old generation, growth
    /// that survived its collections (`heap`), not from RSS.
    pub in_heap: bool,
    /// Memory of a JVM whose heap is read, the verdict RSS's: its trend leaves
    /// the heap out (the heap's commits are the collector's choice and the heap
    /// has its own verdict), so its growth is the JVM's outside the heap.
    pub outside_heap: bool,
    /// Memory, a leak in a JVM's heap: seconds until its old generation reaches
    /// its maximum at the heap's rate (then `OutOfMemoryError`, usually before
    /// the memory limit); `None` for other apps or without a published maximum.
    pub time_to_heap_max_seconds: Option<f64>,
}

/// Everything the analysis says about one target now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verdicts {
    pub memory_leak: Leak,
    /// A JVM's old generation (`heap`): its trend and verdict; `None` for other
    /// apps. `memory_leak` is suspected when this is.
    pub heap_leak: Option<Leak>,
    /// The RSS trend (`memory_leak`'s rate unless the heap's verdict took over).
    pub rss_growth_per_second: Option<f64>,
    /// Seconds a JVM's old generation has grown without an old collection while
    /// no leak is suspected (`heap`); `None` otherwise.
    pub heap_uncollected_seconds: Option<f64>,
    pub fd_leak: Leak,
    pub thread_leak: Leak,
    /// Connections held open (established + CLOSE_WAIT).
    pub connection_leak: Leak,
    pub sizing: SizingVerdict,
    /// The recommended `resources:` block, ready to paste into a pod spec.
    pub resources_yaml: Option<String>,
    /// Requests, usage and recommendation priced; `None` with nothing to price.
    pub cost: Option<cost::Cost>,
    pub autoscaling: autoscale::Autoscaling,
    pub scale_to_zero: idle::ScaleToZero,
    /// Where a request's time goes; `None` without access lines.
    pub requests: Option<requests::Requests>,
    /// The last start's start-up.
    pub startup: startup::Startup,
}

/// A target as the tick publishes it: its sample, and what the analysis made of it.
/// It derefs to the sample, so the surfaces read `t.open_fds` as before; in JSON the
/// sample's fields sit beside `verdicts` and `capacity`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    #[serde(flatten)]
    pub sample: TargetSample,
    /// Leak and sizing verdicts; `None` while the target is down.
    pub verdicts: Option<Verdicts>,
    /// Requests per CPU-second and the worker-count hint; `None` while it is down.
    pub capacity: Option<capacity::Capacity>,
}

impl Deref for TargetStatus {
    type Target = TargetSample;

    fn deref(&self) -> &TargetSample {
        &self.sample
    }
}

/// The leak trackers of one target: memory, fds, threads and connections held.
#[derive(Debug, Clone)]
pub struct LeakTrackers {
    memory: TrendTracker,
    /// A JVM's old generation: made at its first heap figures.
    heap: Option<heap::HeapTrend>,
    /// Thresholds the heap is judged by (memory's).
    heap_cfg: TrendConfig,
    /// RSS's verdict has been shown since it was last clear: it is no longer
    /// withheld for a heap growing uncollected (see [`LeakTrackers::withhold`]).
    rss_shown: bool,
    /// A JVM's heap in its RSS, last read (0 for other apps, and for a ZGC heap
    /// whose shared memory was never read): left out of the
    /// memory trend, whose growth is then the app's outside its heap (the heap
    /// has its own verdict, and its commits are the collector's choice).
    heap_in_rss: f64,
    /// The most of a JVM's RSS seen outside its heap since it started (0 for
    /// other apps): what it needs besides its heap (`heap_max`).
    outside_peak: f64,
    /// The most a JVM's heap has committed since it started (0 for other apps).
    committed_peak: f64,
    fds: TrendTracker,
    threads: TrendTracker,
    connections: TrendTracker,
    /// The restart count of the previous observation.
    restarts: Option<f64>,
}

impl LeakTrackers {
    pub fn new(cfg: &AnalysisConfig) -> Self {
        LeakTrackers {
            memory: TrendTracker::new(cfg.memory),
            heap: None,
            heap_cfg: cfg.memory,
            rss_shown: false,
            heap_in_rss: 0.0,
            outside_peak: 0.0,
            committed_peak: 0.0,
            fds: TrendTracker::new(cfg.fds),
            threads: TrendTracker::new(cfg.threads),
            connections: TrendTracker::new(cfg.connections),
            restarts: None,
        }
    }

    /// Bytes these trackers hold, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.memory.footprint()
            + self.heap.as_ref().map_or(0, |h| h.footprint())
            + self.fds.footprint()
            + self.threads.footprint()
            + self.connections.footprint()
    }

    /// Memory: RSS less a JVM's heap to the memory trend, the heap to its own,
    /// and a JVM's peaks (outside its heap, committed) for its sizing.
    fn push_memory(&mut self, o: &Observation) {
        // A tick without the heap's figures keeps the last: the trend must not
        // jump by the heap's size and back.
        if let Some(heap) = o.jvm.and_then(|j| j.heap_in_rss_bytes()) {
            self.heap_in_rss = heap as f64;
        }
        self.memory.push(o.t, o.rss_bytes - self.heap_in_rss);
        if self.heap_in_rss > 0.0 {
            self.outside_peak = self.outside_peak.max(o.rss_bytes - self.heap_in_rss);
        }
        if let Some(j) = &o.jvm {
            self.committed_peak = self.committed_peak.max(j.committed_bytes() as f64);
            let cfg = self.heap_cfg;
            self.heap
                .get_or_insert_with(|| heap::HeapTrend::new(cfg))
                .push(o.t, j);
        }
    }

    /// Feeds one observation; returns the memory, fd, thread and connection leak
    /// verdicts after it, and a JVM's heap verdict. A restart forgets the history
    /// first: growth before and after it is not one trend.
    pub fn observe(&mut self, o: &Observation) -> Leaks {
        let previous = std::mem::replace(&mut self.restarts, o.restarts);
        if o.restarts.is_some_and(|r| previous.is_some_and(|p| r > p)) {
            self.memory.reset();
            self.heap = None;
            self.heap_in_rss = 0.0;
            self.outside_peak = 0.0;
            self.committed_peak = 0.0;
            self.fds.reset();
            self.threads.reset();
            self.connections.reset();
        }
        self.push_memory(o);
        if let Some(v) = o.open_fds {
            self.fds.push(o.t, v);
        }
        if let Some(v) = o.threads {
            self.threads.push(o.t, v);
        }
        if o.tcp_established.is_some() || o.tcp_close_wait.is_some() {
            let held = o.tcp_established.unwrap_or(0.0) + o.tcp_close_wait.unwrap_or(0.0);
            self.connections.push(o.t, held);
        }
        let rss = Leak {
            outside_heap: self.heap_in_rss > 0.0,
            ..leak(
                TrendVerdict {
                    current: o.resident_bytes(),
                    ..self.memory.evaluate()
                },
                o.memory_limit_bytes,
            )
        };
        let mut uncollected = None;
        // A tick without heap figures (a failed read) keeps what the heap said
        // a moment ago: RSS held back for it is not let through by one gap.
        let heap = self.heap.as_mut().filter(|h| h.recent(o.t)).map(|h| {
            let h = h.evaluate(o.t);
            uncollected = h.uncollected_seconds;
            // A verdict's rate is growth that survived collections.
            let rate = match h.suspected {
                true => h.surviving_rate.or(h.trend.rate_per_second),
                false => h.trend.rate_per_second,
            };
            Leak {
                suspected: h.suspected,
                in_heap: true,
                growth_per_second: rate,
                time_to_heap_max_seconds: h.time_to_max_seconds,
                ..leak(h.trend, None)
            }
        });
        let rss = self.withhold(rss, uncollected, heap.and_then(|h| h.growth_per_second));
        Leaks {
            rss_growth_per_second: rss.growth_per_second,
            heap_uncollected_seconds: uncollected.filter(|_| !rss.suspected),
            jvm_peaks: (self.outside_peak > 0.0)
                .then_some((self.outside_peak, self.committed_peak)),
            each: [
                memory_leak(rss, heap.as_ref(), o),
                leak(self.fds.evaluate(), o.max_fds),
                leak(self.threads.evaluate(), None),
                leak(self.connections.evaluate(), None),
            ],
            heap,
        }
    }
}

/// What [`LeakTrackers::observe`] says: memory, fds, threads and connections; a
/// JVM's heap; and the RSS trend on its own.
#[derive(Debug, Clone, Copy)]
pub struct Leaks {
    pub each: [Leak; 4],
    pub heap: Option<Leak>,
    pub rss_growth_per_second: Option<f64>,
    pub heap_uncollected_seconds: Option<f64>,
    /// The most of a JVM's RSS seen outside its heap, and the most its heap
    /// has committed; `None` for other apps.
    pub jvm_peaks: Option<(f64, f64)>,
}

impl LeakTrackers {
    /// RSS's fresh verdict, unless a JVM's old generation, growing without an old
    /// collection for `uncollected` seconds at `heap_rate`, grows at half RSS's
    /// rate or more: the RSS growth is then the heap's, and promoted garbage that
    /// no collection has reclaimed yet cannot be told from a leak (a recorded JVM
    /// whose sessions expire after 10 min in a 1 GiB heap: RSS and the old
    /// generation both +1 MiB/min, never collected in 36 min, flagged from RSS at
    /// 16 and 18 min before this). A verdict once shown is not withdrawn.
    fn withhold(
        &mut self,
        mut rss: Leak,
        uncollected: Option<f64>,
        heap_rate: Option<f64>,
    ) -> Leak {
        if !rss.suspected {
            self.rss_shown = false;
            return rss;
        }
        let explained = uncollected.is_some()
            && heap_rate
                .zip(rss.growth_per_second)
                .is_some_and(|(h, r)| h >= 0.5 * r);
        if explained && !self.rss_shown {
            rss.suspected = false;
        } else {
            self.rss_shown = true;
        }
        rss
    }
}

/// The memory verdict: RSS's, or the heap's when only the heap shows a leak (its
/// rate then, and the time to the memory limit at it); with a leak in the heap,
/// also the time until its old generation is full.
fn memory_leak(rss: Leak, heap: Option<&Leak>, o: &Observation) -> Leak {
    match heap {
        Some(h) if h.suspected && rss.suspected => Leak {
            time_to_heap_max_seconds: h.time_to_heap_max_seconds,
            ..rss
        },
        Some(h) if h.suspected => Leak {
            time_to_limit_seconds: leak(
                TrendVerdict {
                    rate_per_second: h.growth_per_second,
                    suspected: true,
                    settling: false,
                    current: o.resident_bytes(),
                },
                o.memory_limit_bytes,
            )
            .time_to_limit_seconds,
            ..*h
        },
        _ => rss,
    }
}

/// Analysis state of one target.
#[derive(Debug, Clone)]
pub struct Analyzer {
    leaks: LeakTrackers,
    sizing: Sizing,
    hours: autoscale::Hours,
    idle: idle::Idle,
    cost: cost::CostConfig,
    prev: Option<Observation>,
}

impl Analyzer {
    pub fn new(cfg: &AnalysisConfig) -> Self {
        Analyzer {
            leaks: LeakTrackers::new(cfg),
            sizing: Sizing::new(cfg.sizing),
            hours: autoscale::Hours::new(cfg.sizing.window),
            idle: idle::Idle::new(cfg.sizing.window),
            cost: cfg.cost,
            prev: None,
        }
    }

    /// Bytes this analyzer holds, heap included: bounded by construction.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.leaks.footprint()
            + self.sizing.footprint()
            + self.hours.footprint()
            + self.idle.footprint()
    }

    /// Feeds one observation and returns the verdicts after it.
    pub fn observe(&mut self, o: &Observation) -> Verdicts {
        let Leaks {
            each: [memory_leak, fd_leak, thread_leak, connection_leak],
            heap: heap_leak,
            rss_growth_per_second,
            heap_uncollected_seconds,
            jvm_peaks,
        } = self.leaks.observe(o);
        let delta = |cur: Option<f64>, prev: Option<f64>| match (cur, prev) {
            (Some(c), Some(p)) if c >= p => Some(c - p),
            _ => None,
        };
        let usage = match &self.prev {
            Some(p) if o.t > p.t => {
                let dt = o.t - p.t;
                let cpu = delta(o.cpu_seconds, p.cpu_seconds);
                Usage {
                    t: o.t,
                    dt,
                    cpu_cores: cpu.map(|c| c / dt),
                    memory_bytes: o.working_set_bytes.unwrap_or_else(|| o.resident_bytes()),
                    cpu_periods: delta(o.cpu_periods, p.cpu_periods).unwrap_or(0.0) as u64,
                    cpu_throttled_periods: delta(o.cpu_throttled_periods, p.cpu_throttled_periods)
                        .unwrap_or(0.0) as u64,
                    cpu_throttled_seconds: delta(o.cpu_throttled_seconds, p.cpu_throttled_seconds)
                        .unwrap_or(0.0),
                    cpu_wait_seconds: delta(o.cpu_wait_seconds, p.cpu_wait_seconds).unwrap_or(0.0),
                    cpu_seconds: cpu.unwrap_or(0.0),
                    oom_kills: delta(o.oom_kills, p.oom_kills).unwrap_or(0.0) as u64,
                }
            }
            _ => Usage {
                t: o.t,
                memory_bytes: o.working_set_bytes.unwrap_or_else(|| o.resident_bytes()),
                ..Default::default()
            },
        };
        self.sizing.push(&usage);
        self.prev = Some(o.clone());

        let alloc = Allocated {
            cpu_request: o.cpu_request_cores,
            cpu_limit: o.cpu_limit_cores,
            memory_request: o.memory_request_bytes,
            memory_limit: o.memory_limit_bytes,
        };
        let mut sizing = self.sizing.verdict(&alloc);
        if let (Some(j), Some(peaks)) = (&o.jvm, jvm_peaks) {
            let factor = self.sizing.limit_factor();
            heap_max::fit_jvm(&mut sizing, j, peaks, &alloc, factor);
        }
        if memory_leak.suspected {
            sizing.hold_memory_while_leaking();
        }
        let (cost, autoscaling, scale_to_zero) = self.spending(o, &usage, &alloc, &sizing);
        Verdicts {
            memory_leak,
            heap_leak,
            rss_growth_per_second,
            heap_uncollected_seconds,
            fd_leak,
            thread_leak,
            connection_leak,
            resources_yaml: resources_yaml(&sizing),
            sizing,
            cost,
            autoscaling,
            scale_to_zero,
            requests: None,
            startup: Default::default(),
        }
    }

    /// Feeds the hourly and idle trackers; the cost, autoscaling and scale-to-zero
    /// verdicts after this tick.
    fn spending(
        &mut self,
        o: &Observation,
        usage: &Usage,
        alloc: &Allocated,
        sizing: &SizingVerdict,
    ) -> (
        Option<cost::Cost>,
        autoscale::Autoscaling,
        idle::ScaleToZero,
    ) {
        let u = usage;
        self.hours.push(o.t, u.dt, u.cpu_cores, u.memory_bytes);
        self.idle.push(o.t, u.dt, u.cpu_cores, o.http_requests);
        let cost = cost::cost(&self.cost, alloc, sizing, self.hours.mean_usage());
        let cpu_request = cost::billed(alloc).0;
        let autoscaling = autoscale::judge(
            &self.hours.hourly_p90(),
            self.hours.data_seconds(),
            &self.cost,
            cpu_request.or(sizing.cpu.recommended_request_cores),
            cost.as_ref().is_some_and(cost::memory_bound),
        );
        (cost, autoscaling, self.idle.verdict())
    }
}

fn leak(v: TrendVerdict, limit: Option<f64>) -> Leak {
    let time_to_limit_seconds = match (v.rate_per_second, limit) {
        (Some(rate), Some(limit)) if rate > 0.0 && limit > v.current => {
            Some((limit - v.current) / rate)
        }
        (Some(rate), Some(_)) if rate > 0.0 => Some(0.0),
        _ => None,
    };
    Leak {
        suspected: v.suspected,
        growth_per_second: v.rate_per_second,
        time_to_limit_seconds,
        settling: v.settling,
        in_heap: false,
        outside_heap: false,
        time_to_heap_max_seconds: None,
    }
}

/// The recommendation as a pod spec's `resources:` block (no CPU limit: a CPU limit
/// throttles without saving anything, as krr and the VPA leave it too). Without a
/// memory recommendation (withheld while memory leaks), the CPU request alone.
fn resources_yaml(v: &SizingVerdict) -> Option<String> {
    let cpu = v.cpu.recommended_request_cores?;
    // Usage held back (throttled, starved) shows less than the app wants.
    let at_least = match v.cpu.allocation.0 {
        sizing::AllocationVerdict::Under => "  # at least: its CPU was held back",
        _ => "",
    };
    let cpu = format!(
        "resources:\n  requests:\n    cpu: {}m{at_least}\n",
        // The epsilon keeps a float's 57.50000000001 at 58, not 59.
        ((cpu * 1000.0) - 1e-9).ceil() as u64
    );
    let mi = |b: f64| format!("{}Mi", (b / 1048576.0).ceil() as u64);
    match (
        v.memory.recommended_request_bytes,
        v.memory.recommended_limit_bytes,
    ) {
        (Some(req), Some(lim)) => Some(format!(
            "{cpu}    memory: {}\n  limits:\n    memory: {}{}\n",
            mi(req),
            mi(lim),
            match (v.memory.heap_max_bytes, v.memory.heap_share) {
                // Its share of -XX:MaxRAM: a maximum the limit does not move.
                (Some(max), Some(_)) => format!(
                    "  # holds its heap's maximum ({}) and what it uses outside the heap",
                    mi(max)
                ),
                (Some(max), None) => format!(
                    "  # holds -Xmx ({}) and what it uses outside the heap",
                    mi(max)
                ),
                (None, Some(share)) => format!(
                    "  # its heap's {}% share of it holds what the heap committed",
                    heap_max::percent(share)
                ),
                (None, None) => String::new(),
            }
        )),
        _ => Some(cpu),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An under-allocated CPU's request is a floor: its use was held back. The
    /// memory figures are whole bytes.
    #[test]
    fn the_block_says_at_least_for_a_cpu_held_back() {
        let mut v = SizingVerdict::default();
        v.cpu.recommended_request_cores = Some(0.235);
        v.cpu.allocation.0 = sizing::AllocationVerdict::Under;
        v.memory.recommended_request_bytes = Some(120.0 * 1048576.0);
        v.memory.recommended_limit_bytes = Some(136.0 * 1048576.0);
        assert_eq!(
            resources_yaml(&v).unwrap(),
            "resources:\n  requests:\n    cpu: 235m  # at least: its CPU was held back\n    \
             memory: 120Mi\n  limits:\n    memory: 136Mi\n"
        );
        v.cpu.allocation.0 = sizing::AllocationVerdict::Ok;
        assert!(resources_yaml(&v)
            .unwrap()
            .starts_with("resources:\n  requests:\n    cpu: 235m\n"));

        let mut a = Analyzer::new(&AnalysisConfig::default());
        let mut v = Verdicts::default();
        for i in 0..200 {
            v = a.observe(&Observation {
                t: i as f64 * 5.0,
                rss_bytes: 89.3 * 1048576.0,
                cpu_seconds: Some(i as f64 * 0.5),
                ..Default::default()
            });
        }
        let m = &v.sizing.memory;
        for b in [m.recommended_request_bytes, m.recommended_limit_bytes] {
            assert_eq!(b.map(f64::fract), Some(0.0), "{m:?}");
        }
    }

    #[test]
    fn log_rates_cover_the_window() {
        let mut w = LogWindow::new(60.0);
        let totals = |errors, events| LogTotals {
            errors,
            events,
            http_5xx: errors,
            http: events,
        };
        assert_eq!(w.push(0.0, totals(0, 0)).error_ratio, None);
        for i in 1..=120 {
            // One error and nine other events a second.
            w.push(i as f64, totals(i, 10 * i));
        }
        let r = w.push(121.0, totals(121, 1210));
        assert!((r.window_seconds - 60.0).abs() <= 1.0, "{r:?}");
        assert!((r.errors_per_minute - 60.0).abs() < 1.5, "{r:?}");
        assert!((r.error_ratio.unwrap() - 0.1).abs() < 1e-9);
        assert!((r.http_5xx_ratio.unwrap() - 0.1).abs() < 1e-9);
        // Ten access lines a second.
        assert!((r.requests_per_second - 10.0).abs() < 0.2, "{r:?}");
    }

    #[test]
    fn memory_per_target_is_bounded_whatever_the_window() {
        for (window, jvm) in [600.0, 3600.0, 7.0 * 86400.0]
            .into_iter()
            .flat_map(|w| [(w, false), (w, true)])
        {
            let mut cfg = AnalysisConfig::default();
            cfg.memory.window = window;
            cfg.fds.window = window;
            cfg.threads.window = window;
            cfg.sizing.window = window;
            let mut a = Analyzer::new(&cfg);
            // Four hours of samples every 5 s (the buckets are full after one).
            for i in 0..2880 {
                let t = i as f64 * 5.0;
                a.observe(&Observation {
                    t,
                    rss_bytes: 1e8 + (i % 100) as f64 * 1e5,
                    open_fds: Some(10.0),
                    threads: Some(4.0),
                    cpu_seconds: Some(t * 0.1),
                    jvm: jvm.then(|| JvmHeap {
                        old_used_bytes: 5e7 as u64 + (i % 100) * 100_000,
                        old_collections: i / 12,
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            let bytes = a.footprint();
            assert!(bytes < 256 * 1024, "{bytes} bytes for a {window} s window");
            let expected = if jvm { 20 * 1024 } else { 16 * 1024 };
            assert!(
                bytes < expected,
                "{bytes} bytes: more than expected (JVM: {jvm})"
            );
        }
    }

    #[test]
    fn a_leak_has_a_time_to_limit_and_a_yaml_block() {
        let cfg = AnalysisConfig::default();
        let mut a = Analyzer::new(&cfg);
        let mut v = Verdicts::default();
        for i in 0..1000 {
            let t = i as f64 * 5.0;
            v = a.observe(&Observation {
                t,
                rss_bytes: 100.0 * 1048576.0 + t * 20000.0,
                cpu_seconds: Some(t * 0.05),
                memory_limit_bytes: Some(1024.0 * 1048576.0),
                cpu_request_cores: Some(1.0),
                memory_request_bytes: Some(512.0 * 1048576.0),
                ..Default::default()
            });
        }
        assert!(v.memory_leak.suspected);
        let rate = v.memory_leak.growth_per_second.unwrap();
        assert!((rate - 20000.0).abs() < 200.0, "{rate}");
        let ttl = v.memory_leak.time_to_limit_seconds.unwrap();
        let expect = (1024.0 * 1048576.0 - (100.0 * 1048576.0 + 4995.0 * 20000.0)) / 20000.0;
        assert!((ttl - expect).abs() / expect < 0.05, "{ttl} vs {expect}");
        let yaml = v.resources_yaml.unwrap();
        // p90 0.05 cores x 1.15 = 57.5m, rounded up.
        assert!(
            yaml.starts_with("resources:\n  requests:\n    cpu: 58m\n"),
            "{yaml}"
        );
        assert_eq!(v.sizing.cpu.allocation.0, sizing::AllocationVerdict::Over);
        // Memory grows 1.1 MiB a minute: its peak is the leak's, so no memory
        // verdict and no memory in the block (it was "over-allocated" against the
        // 512 MiB request, with a smaller limit recommended).
        assert_eq!(
            v.sizing.memory.allocation.0,
            sizing::AllocationVerdict::Unknown
        );
        assert!(
            v.sizing
                .memory
                .reason
                .starts_with("while it leaks: its peak, "),
            "{}",
            v.sizing.memory.reason
        );
        assert_eq!(v.sizing.memory.recommended_limit_bytes, None);
        assert_eq!(yaml, "resources:\n  requests:\n    cpu: 58m\n");
        assert_eq!(v.cost.and_then(|c| c.waste_memory_bytes), None);
    }

    /// An hour of a JVM sampled every 5 s: its memory outside the heap and its
    /// heap's commits at minute `m` (old generation, young where published); its
    /// old generation's levels flat at 50 MiB (collected each minute, 40 MiB of
    /// garbage between), and the memory verdict at the end.
    fn jvm_hour(
        native: impl Fn(f64) -> f64,
        committed: impl Fn(f64) -> (f64, Option<f64>),
    ) -> Leak {
        let mut a = Analyzer::new(&AnalysisConfig::default());
        let mut v = Verdicts::default();
        for i in 0..720u64 {
            let t = i as f64 * 5.0;
            let m = t / 60.0;
            let (old, young) = committed(m);
            v = a.observe(&Observation {
                t,
                rss_bytes: (native(m) + old + young.unwrap_or(0.0)) * MIB,
                cpu_seconds: Some(t * 0.05),
                jvm: Some(JvmHeap {
                    old_used_bytes: ((50.0 + 40.0 * m.fract()) * MIB) as u64,
                    old_capacity_bytes: (old * MIB) as u64,
                    young_capacity_bytes: young.map(|y| (y * MIB) as u64),
                    old_collections: i / 12,
                    young_collections: i / 2,
                    heap_mappings: 1,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        v.memory_leak
    }

    const MIB: f64 = 1048576.0;

    /// A heap that expands toward its maximum (G1 committing regions, ZGC
    /// creeping up) is the collector's choice, not a leak: the memory trend
    /// leaves the heap's commits out, and the heap's levels do not rise. The
    /// same memory outside a heap (no JVM read) is a leak.
    #[test]
    fn a_jvm_heap_expanding_is_not_a_leak_but_memory_outside_it_growing_is() {
        let expanding = |m: f64| (100.0 + m.min(45.0), None);
        let heap_grows = jvm_hour(|_| 60.0, expanding);
        assert!(!heap_grows.suspected, "{heap_grows:?}");
        assert!(heap_grows.outside_heap);
        // The same RSS, from memory the app holds outside its heap.
        let native_grows = jvm_hour(|m| 60.0 + m.min(45.0), |_| (100.0, None));
        assert!(native_grows.suspected, "{native_grows:?}");
        assert!(native_grows.outside_heap && !native_grows.in_heap);
        let rate = native_grows.growth_per_second.unwrap() * 60.0 / MIB;
        // Its trend over the window: 45 min at 1 MiB/min, then flat.
        assert!((0.5..=1.1).contains(&rate), "{rate} MiB/min");
    }

    /// G1 moves regions between its generations and Parallel GC resizes its
    /// young one: the young generation's commits are heap too. Read as memory
    /// outside the heap (the old generation's alone left out), the same young
    /// generation growing would be a leak.
    #[test]
    fn a_young_generation_growing_is_heap_not_memory_outside_it() {
        let young_grows = |m: f64| (100.0, Some(10.0 + m.min(45.0)));
        let v = jvm_hour(|_| 60.0, young_grows);
        assert!(!v.suspected, "{v:?}");
        let unpublished = |m: f64| (100.0 + 10.0 + m.min(45.0), None);
        assert!(!jvm_hour(|_| 60.0, unpublished).suspected);
        let counted_as_native = jvm_hour(|m| 60.0 + 10.0 + m.min(45.0), |_| (100.0, Some(0.0)));
        assert!(counted_as_native.suspected, "{counted_as_native:?}");
    }

    /// ZGC of one generation maps its heap three times: RSS counts it thrice,
    /// what sizing and the memory alerts read counts it once.
    #[test]
    fn a_zgc_heap_counts_once_in_what_memory_verdicts_read() {
        let o = Observation {
            rss_bytes: 500.0 * MIB,
            jvm: Some(JvmHeap {
                old_capacity_bytes: 150 << 20,
                young_capacity_bytes: None,
                heap_mappings: 3,
                shmem_resident_bytes: Some(420 << 20),
                ..Default::default()
            }),
            ..Default::default()
        };
        // 80 MiB outside the heap, 140 MiB of heap counted once.
        assert_eq!(o.resident_bytes(), 220.0 * MIB);
        assert_eq!(o.jvm.unwrap().heap_in_rss_bytes(), Some(420 << 20));
        // Generational ZGC (JDK 21 on) maps it once: its shared memory is the
        // heap in RSS, and RSS counts it once.
        let generational = Observation {
            jvm: Some(JvmHeap {
                heap_mappings: 1,
                shmem_resident_bytes: Some(140 << 20),
                young_capacity_bytes: Some(100 << 20),
                ..o.jvm.unwrap()
            }),
            ..o
        };
        assert_eq!(generational.resident_bytes(), 500.0 * MIB);
        assert_eq!(
            generational.jvm.unwrap().heap_in_rss_bytes(),
            Some(140 << 20)
        );
    }
}
