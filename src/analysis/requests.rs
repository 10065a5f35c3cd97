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
//! # Layout
//! - [`split`]: the arithmetic and the verdict from window deltas
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
    points: VecDeque<(f64, Totals)>,
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
        let back = self.points.back().map(|p| p.1);
        if let Some(b) = back {
            let fell = |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(x), Some(y)) if x < y);
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
            self.points[n - 1] = (t, now);
        } else {
            self.points.push_back((t, now));
        }
        while self.points.len() > 2 && self.points[1].0 <= t - self.window {
            self.points.pop_front();
        }
        let (t0, a) = self.points[0];
        let d = |x: Option<f64>, y: Option<f64>| Some(x? - y?);
        Deltas {
            seconds: t - t0,
            requests: now.requests - a.requests,
            duration_seconds: now.duration_seconds - a.duration_seconds,
            cpu_seconds: d(now.cpu_seconds, a.cpu_seconds),
            cpu_wait_seconds: now.cpu_wait_seconds - a.cpu_wait_seconds,
            throttled_seconds: d(now.throttled_seconds, a.throttled_seconds),
        }
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.points.capacity() * std::mem::size_of::<(f64, Totals)>()
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
        }
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
