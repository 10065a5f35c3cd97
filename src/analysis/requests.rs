//! Where a request's time goes: over the latency window, the mean response time
//! (access lines) split into time on a CPU, time waiting for one, and the rest
//! (waiting on something else: a database, an API, the disk).
//!
//! # Method
//!
//! Over the window: `on_cpu = Δ CPU seconds / Δ requests` (user + system, all
//! threads of the group), `cpu_wait = max(Δ run-queue wait, Δ throttled) / Δ
//! requests` (schedstat's run delay summed over all threads; the kernel counts a
//! throttled task as waiting in its run queue, so the cgroup's throttled time is a
//! floor, not an addend), and `other = mean − on_cpu − cpu_wait` (never below 0).
//! Shares are of `max(mean, on_cpu + cpu_wait)`: CPU spent outside requests
//! (background threads, a garbage collector) can make the CPU parts exceed the mean.
//!
//! Concurrent requests share the process' CPU, so the split is a mean over the
//! window, not any one request's: a mix of slow I/O requests and fast CPU-heavy ones
//! reads `mixed`.
//!
//! # Threads that cannot use the cores
//!
//! CPython's GIL and any single event loop run one thread at a time however many
//! there are. The rule ([`one_core`]): a group of at least 2 threads that used at
//! least 0.85 of a core on average over the window (at least 30 s of it) and never
//! more than 1.15 cores in any tick, while its CPU limit (or, without one, the CPUs
//! it may run on) allows 1.5 cores or more and its threads waited for a CPU less than
//! 25% as long as they ran (the machine had cores to spare). Such an app is held
//! to one core by itself: more threads or more CPU will not help, more processes
//! (workers) will.
//!
//! # Layout
//! - [`split`]: the arithmetic and the verdict from window deltas
//! - [`one_core`]: the threads-that-cannot-use-the-cores rule
//! - [`TimeWindow`]: cumulative (requests, durations, CPU, wait, throttled) at a
//!   bounded number of instants → the deltas over the window

use std::collections::VecDeque;

use serde::Serialize;

/// Requests in the window before the split is judged.
pub const MIN_REQUESTS: u64 = 20;
/// A share of the time at or above which one side decides the verdict.
pub const BOUND_SHARE: f64 = 0.7;
/// Waiting for a CPU this share of the time or more makes a CPU-bound app starved.
pub const STARVED_SHARE: f64 = 0.25;
/// Points kept per window (plus the baseline and the newest).
const SEGMENTS: usize = 32;

/// What limits a request's response time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// On a CPU or waiting for one: at least [`BOUND_SHARE`] of the time.
    Cpu,
    /// Waiting on something else: at least [`BOUND_SHARE`] of the time.
    Io,
    Mixed,
    #[default]
    Unknown,
}

/// Why the split is not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhyUnknown {
    /// Fewer than [`MIN_REQUESTS`] requests with a duration in the window.
    TooFewRequests,
    /// No CPU figures for the group.
    NoCpuData,
    /// Several targets are up and no log stream is named after this one.
    NotAttributed,
}

/// The mean request's time, split; seconds per request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimePerRequest {
    /// Requests with a duration in the window.
    pub requests: u64,
    /// Seconds the figures cover.
    pub window_seconds: f64,
    /// Mean response time, from the access lines.
    pub mean_seconds: Option<f64>,
    pub on_cpu_seconds: Option<f64>,
    /// Run-queue wait (throttling included).
    pub cpu_wait_seconds: Option<f64>,
    /// The part of the wait the cgroup's quota accounts for, where it says.
    pub throttled_seconds: Option<f64>,
    pub other_seconds: Option<f64>,
    pub bound: Bound,
    /// On a CPU or waiting, and waiting at least [`STARVED_SHARE`] of the time.
    pub starved: bool,
    pub why_unknown: Option<WhyUnknown>,
    /// The app's CPU limit (cores) when known: the bottleneck of a starved app.
    pub cpu_limit_cores: Option<f64>,
    /// Known services the app holds established connections to: the likely wait.
    pub likely_waits: Vec<&'static str>,
}

impl TimePerRequest {
    /// `part`'s share of the time (`on_cpu + cpu_wait + other`); `None` unjudged.
    pub fn share(&self, part: Option<f64>) -> Option<f64> {
        let total = self.on_cpu_seconds? + self.cpu_wait_seconds? + self.other_seconds?;
        (total > 0.0).then(|| part.unwrap_or(0.0) / total)
    }

    /// `(part label, seconds)` for the metric, in its fixed order.
    pub fn parts(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("on_cpu", self.on_cpu_seconds),
            ("cpu_wait", self.cpu_wait_seconds),
            ("other", self.other_seconds),
        ]
    }
}

/// What the analysis says of a target's requests (`/api/v1/status`
/// `verdicts.requests`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Requests {
    pub time_per_request: TimePerRequest,
    /// Held to one core by itself (see the module doc); `None` otherwise.
    pub one_core: Option<OneCore>,
}

/// Mean cores over the window at or above which the app is busy.
pub const ONE_CORE_BUSY: f64 = 0.85;
/// Cores no tick may pass for the app to count as held to one.
pub const ONE_CORE_PEAK: f64 = 1.15;
/// Cores the limit (or the visible CPUs) must allow.
pub const ONE_CORE_ALLOWED: f64 = 1.5;
/// Run-queue wait per CPU second under which the machine had cores to spare.
pub const ONE_CORE_MAX_WAIT: f64 = 0.25;
/// Seconds of window the rule needs.
pub const ONE_CORE_MIN_SECONDS: f64 = 30.0;

/// A busy multi-threaded app that never uses more than about one core.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OneCore {
    pub threads: u64,
    pub mean_cores: f64,
    pub peak_cores: f64,
    pub allowed_cores: f64,
}

/// The rule of the module doc over the window's deltas.
pub fn one_core(d: &Deltas, threads: u64, allowed_cores: f64) -> Option<OneCore> {
    let cpu = d.cpu_seconds?;
    if threads < 2 || d.seconds < ONE_CORE_MIN_SECONDS || cpu <= 0.0 {
        return None;
    }
    let mean_cores = cpu / d.seconds;
    let held = mean_cores >= ONE_CORE_BUSY && d.peak_cores <= ONE_CORE_PEAK;
    let room = allowed_cores >= ONE_CORE_ALLOWED && d.cpu_wait_seconds / cpu < ONE_CORE_MAX_WAIT;
    (held && room).then_some(OneCore {
        threads,
        mean_cores,
        peak_cores: d.peak_cores,
        allowed_cores,
    })
}

/// What changed over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Deltas {
    pub seconds: f64,
    /// Requests with a duration, and the sum of their durations.
    pub requests: u64,
    pub duration_seconds: f64,
    /// `None`: no CPU figures.
    pub cpu_seconds: Option<f64>,
    pub cpu_wait_seconds: f64,
    pub throttled_seconds: Option<f64>,
    /// The most cores one tick in the window used.
    pub peak_cores: f64,
}

/// The split and its verdict (see the module doc).
pub fn split(d: &Deltas) -> TimePerRequest {
    let mut out = TimePerRequest {
        requests: d.requests,
        window_seconds: d.seconds,
        ..Default::default()
    };
    if d.requests > 0 {
        out.mean_seconds = Some(d.duration_seconds / d.requests as f64);
    }
    let Some(cpu) = d.cpu_seconds else {
        out.why_unknown = Some(WhyUnknown::NoCpuData);
        return out;
    };
    if d.requests < MIN_REQUESTS {
        out.why_unknown = Some(WhyUnknown::TooFewRequests);
        return out;
    }
    let n = d.requests as f64;
    let mean = d.duration_seconds / n;
    let on_cpu = cpu.max(0.0) / n;
    let throttled = d.throttled_seconds.map(|s| s.max(0.0) / n);
    let wait = (d.cpu_wait_seconds.max(0.0) / n).max(throttled.unwrap_or(0.0));
    let other = (mean - on_cpu - wait).max(0.0);
    out.on_cpu_seconds = Some(on_cpu);
    out.cpu_wait_seconds = Some(wait);
    out.throttled_seconds = throttled;
    out.other_seconds = Some(other);
    let total = on_cpu + wait + other;
    if total <= 0.0 {
        out.why_unknown = Some(WhyUnknown::TooFewRequests);
        return out;
    }
    out.bound = if (on_cpu + wait) / total >= BOUND_SHARE {
        Bound::Cpu
    } else if other / total >= BOUND_SHARE {
        Bound::Io
    } else {
        Bound::Mixed
    };
    out.starved = out.bound == Bound::Cpu && wait / total >= STARVED_SHARE;
    out
}

/// One tick's figures for one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    pub t: f64,
    /// The target's timed requests and CPU, cumulative; `None` when its access
    /// lines cannot be told from another target's.
    pub totals: Option<Totals>,
    /// Whether any access line with a duration was read at all.
    pub any_requests: bool,
    pub cpu_limit_cores: Option<f64>,
    /// Known services among its established connections.
    pub likely_waits: Vec<&'static str>,
    /// Threads of the group now, and the cores it may use (its CPU limit, else the
    /// CPUs it may run on).
    pub threads: u64,
    pub allowed_cores: f64,
}

/// The time window of one target.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    window: TimeWindow,
}

impl Tracker {
    pub fn new(window: f64) -> Self {
        Tracker {
            window: TimeWindow::new(window),
        }
    }

    /// Feeds one tick; `None` while no access line with a duration was read. The
    /// window starts at the first tick, so requests read before the first one with
    /// a duration count too.
    pub fn observe(&mut self, i: &Input) -> Option<Requests> {
        let deltas = i.totals.map(|totals| self.window.push(i.t, totals));
        if !i.any_requests {
            return None;
        }
        let mut time = match &deltas {
            Some(d) => split(d),
            None => TimePerRequest {
                why_unknown: Some(WhyUnknown::NotAttributed),
                ..Default::default()
            },
        };
        time.cpu_limit_cores = i.cpu_limit_cores;
        time.likely_waits = i.likely_waits.clone();
        Some(Requests {
            time_per_request: time,
            one_core: deltas.and_then(|d| one_core(&d, i.threads, i.allowed_cores)),
        })
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        self.window.footprint()
    }
}

/// Cumulative figures at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub duration_seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub cpu_wait_seconds: f64,
    pub throttled_seconds: Option<f64>,
}

/// Cumulative [`Totals`] at instants spaced at least window/32 apart (the newest
/// always current), one baseline at or before the window's start: bounded memory.
#[derive(Debug, Clone, Default)]
pub struct TimeWindow {
    window: f64,
    /// (t, totals, the most cores any tick since the previous point used).
    points: VecDeque<(f64, Totals, f64)>,
}

impl TimeWindow {
    pub fn new(window: f64) -> Self {
        TimeWindow {
            window,
            points: VecDeque::new(),
        }
    }

    /// Adds the totals at `t`; the deltas over the window. A counter that went
    /// backwards (a new log, a new container) starts the window again.
    pub fn push(&mut self, t: f64, now: Totals) -> Deltas {
        let back = self.points.back().map(|p| (p.0, p.1));
        let tick_cores = match back {
            Some((bt, b)) if t > bt => now
                .cpu_seconds
                .zip(b.cpu_seconds)
                .map(|(c, p)| (c - p).max(0.0) / (t - bt)),
            _ => None,
        }
        .unwrap_or(0.0);
        if let Some((_, b)) = back {
            let fell =
                |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(x), Some(y)) if x < y);
            if now.requests < b.requests
                || now.duration_seconds < b.duration_seconds
                || fell(now.cpu_seconds, b.cpu_seconds)
                || fell(now.throttled_seconds, b.throttled_seconds)
            {
                self.points.clear();
            }
        }
        let spacing = self.window / SEGMENTS as f64;
        let n = self.points.len();
        if n >= 2 && self.points[n - 1].0 - self.points[n - 2].0 < spacing {
            let peak = self.points[n - 1].2.max(tick_cores);
            self.points[n - 1] = (t, now, peak);
        } else {
            self.points.push_back((t, now, tick_cores));
        }
        while self.points.len() > 2 && self.points[1].0 <= t - self.window {
            self.points.pop_front();
        }
        let (t0, a, _) = self.points[0];
        let peak = self.points.iter().skip(1).map(|p| p.2).fold(0.0, f64::max);
        let d = |x: Option<f64>, y: Option<f64>| Some(x? - y?);
        Deltas {
            seconds: t - t0,
            requests: now.requests - a.requests,
            duration_seconds: now.duration_seconds - a.duration_seconds,
            cpu_seconds: d(now.cpu_seconds, a.cpu_seconds),
            cpu_wait_seconds: now.cpu_wait_seconds - a.cpu_wait_seconds,
            throttled_seconds: d(now.throttled_seconds, a.throttled_seconds),
            peak_cores: peak,
        }
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.points.capacity() * std::mem::size_of::<(f64, Totals, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deltas(requests: u64, mean: f64, cpu: f64, wait: f64) -> Deltas {
        let n = requests as f64;
        Deltas {
            seconds: 60.0,
            requests,
            duration_seconds: mean * n,
            cpu_seconds: Some(cpu * n),
            cpu_wait_seconds: wait * n,
            throttled_seconds: None,
            peak_cores: 1.0,
        }
    }

    #[test]
    fn a_busy_app_held_to_one_core_with_room_to_spare_is_told_so() {
        // 60 s, 55 CPU-seconds (0.92 core), no tick over 1.02 cores, 8 threads.
        let d = Deltas {
            seconds: 60.0,
            cpu_seconds: Some(55.0),
            cpu_wait_seconds: 2.0,
            peak_cores: 1.02,
            ..Default::default()
        };
        let held = one_core(&d, 8, 2.0).expect("held to one core");
        assert!((held.mean_cores - 55.0 / 60.0).abs() < 1e-9, "{held:?}");
        // One thread; a limit of 1 core; a tick over 1.15 cores; idle; the machine
        // busy (waiting 40% as long as running); too short a window: not this.
        assert_eq!(one_core(&d, 1, 2.0), None);
        assert_eq!(one_core(&d, 8, 1.0), None);
        assert_eq!(
            one_core(
                &Deltas {
                    peak_cores: 1.6,
                    ..d
                },
                8,
                2.0
            ),
            None
        );
        let idle = Deltas {
            cpu_seconds: Some(20.0),
            ..d
        };
        assert_eq!(one_core(&idle, 8, 2.0), None);
        let busy = Deltas {
            cpu_wait_seconds: 22.0,
            ..d
        };
        assert_eq!(one_core(&busy, 8, 2.0), None);
        assert_eq!(
            one_core(
                &Deltas {
                    seconds: 20.0,
                    cpu_seconds: Some(18.0),
                    ..d
                },
                8,
                2.0
            ),
            None
        );
    }

    #[test]
    fn the_window_keeps_the_busiest_tick() {
        let mut w = TimeWindow::new(60.0);
        let mut d = Deltas::default();
        for i in 0..=60u64 {
            // 0.5 core, but 1.5 cores in the tick ending at 30.
            let cpu = 0.5 * i as f64 + if i >= 30 { 1.0 } else { 0.0 };
            d = w.push(
                i as f64,
                Totals {
                    cpu_seconds: Some(cpu),
                    ..Default::default()
                },
            );
        }
        assert!((d.peak_cores - 1.5).abs() < 1e-9, "{d:?}");
    }

    #[test]
    fn a_sleeping_handler_is_io_bound() {
        // 180 ms a request, 10 ms of it on the CPU, 1 ms waiting for one.
        let s = split(&deltas(100, 0.18, 0.01, 0.001));
        assert_eq!(s.bound, Bound::Io);
        assert!((s.other_seconds.unwrap() - 0.169).abs() < 1e-9, "{s:?}");
        assert!((s.share(s.other_seconds).unwrap() - 0.169 / 0.18).abs() < 1e-9);
        assert!(!s.starved);
    }

    #[test]
    fn a_burning_handler_is_cpu_bound_and_starved_when_it_waits() {
        let s = split(&deltas(100, 0.1, 0.08, 0.01));
        assert_eq!(s.bound, Bound::Cpu);
        assert!(!s.starved, "10% waiting is no starvation: {s:?}");
        let s = split(&deltas(100, 0.1, 0.05, 0.04));
        assert_eq!(s.bound, Bound::Cpu);
        assert!(s.starved, "{s:?}");
        assert!((s.share(s.cpu_wait_seconds).unwrap() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn half_and_half_is_mixed_and_the_throttled_time_is_a_floor() {
        assert_eq!(split(&deltas(100, 0.1, 0.05, 0.0)).bound, Bound::Mixed);
        // The kernel said 1 ms of run-queue wait, the cgroup 30 ms of throttling.
        let mut d = deltas(100, 0.1, 0.05, 0.001);
        d.throttled_seconds = Some(0.03 * 100.0);
        let s = split(&d);
        assert!((s.cpu_wait_seconds.unwrap() - 0.03).abs() < 1e-9, "{s:?}");
        assert_eq!(s.bound, Bound::Cpu);
    }

    #[test]
    fn cpu_beyond_the_response_time_leaves_no_other_time() {
        let s = split(&deltas(100, 0.05, 0.08, 0.0));
        assert_eq!(s.other_seconds, Some(0.0));
        assert_eq!(s.bound, Bound::Cpu);
        assert_eq!(s.share(s.on_cpu_seconds), Some(1.0));
    }

    #[test]
    fn too_few_requests_or_no_cpu_is_unknown() {
        let s = split(&deltas(MIN_REQUESTS - 1, 0.1, 0.05, 0.0));
        assert_eq!(
            (s.bound, s.why_unknown),
            (Bound::Unknown, Some(WhyUnknown::TooFewRequests))
        );
        assert!((s.mean_seconds.unwrap() - 0.1).abs() < 1e-9);
        let mut d = deltas(100, 0.1, 0.05, 0.0);
        d.cpu_seconds = None;
        assert_eq!(split(&d).why_unknown, Some(WhyUnknown::NoCpuData));
        assert_eq!(split(&d).share(None), None);
    }

    #[test]
    fn the_window_forgets_old_figures_and_restarts_after_a_reset() {
        let mut w = TimeWindow::new(60.0);
        let mut d = Deltas::default();
        for i in 0..=600u64 {
            // 10 requests a second; 20 ms of CPU each before t = 300, 50 ms after.
            let cpu = if i <= 300 {
                0.2 * i as f64
            } else {
                60.0 + 0.5 * (i - 300) as f64
            };
            d = w.push(
                i as f64,
                Totals {
                    requests: 10 * i,
                    duration_seconds: i as f64,
                    cpu_seconds: Some(cpu),
                    ..Default::default()
                },
            );
        }
        assert!((d.seconds - 60.0).abs() <= 60.0 / 32.0 + 1.0, "{d:?}");
        let per = d.cpu_seconds.unwrap() / d.requests as f64;
        assert!((per - 0.05).abs() < 1e-9, "{d:?}");
        assert!(w.points.len() <= SEGMENTS + 2, "{}", w.points.len());
        let d = w.push(601.0, Totals::default());
        assert_eq!((d.requests, d.seconds), (0, 0.0));
    }
}
