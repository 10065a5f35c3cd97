//! Would a horizontal autoscaler save money? From the CPU usage over the sizing
//! window: each hour's p90 (of its one-minute means), their peak-to-trough ratio,
//! and the share of the allocation an ideal autoscaler would save,
//! `savings_ratio = 1 − mean(hourly p90) / max(hourly p90)`: a fixed allocation
//! must cover the peak hour, a perfect horizontal autoscaler follows each hour.
//!
//! Hours and minutes are cut from the first sample, not the wall clock, so the
//! verdict does not depend on when Outrider started within an hour. [`Hours`] keeps
//! the current hour's minute means (at most 60) and one summary per finished hour
//! of the window: a few KiB whatever the tick.

use std::collections::VecDeque;

use serde::Serialize;

use super::cost::{CostConfig, MeanUsage, HOURS_PER_MONTH};
use super::minutes::{CpuMinute, MinuteClock};

const HOUR: f64 = 3600.0;
/// Data before any autoscaling or scale-to-zero verdict: half a day, so a daily
/// cycle has shown its peak or its trough at least once.
pub const MIN_DATA: f64 = 12.0 * HOUR;
/// Worthwhile from this savings ratio up...
pub const MIN_SAVINGS_RATIO: f64 = 0.3;
/// ...when the peak hour is at least this many times the quietest (Crane's
/// fluctuation threshold).
pub const MIN_PEAK_TO_TROUGH: f64 = 1.5;
/// The HPA sketch's target CPU utilization: headroom for the minutes a new pod
/// takes to start.
pub const TARGET_UTILIZATION: f64 = 0.7;
/// A trough below one millicore is counted as one (the ratio stays finite).
const FLOOR_CORES: f64 = 0.001;

/// One finished hour.
#[derive(Debug, Clone, Copy, Default)]
struct Hour {
    /// Hours since the first sample.
    index: i64,
    p90_cores: Option<f64>,
    cpu_seconds: f64,
    cpu_span: f64,
    memory_byte_seconds: f64,
    memory_span: f64,
}

impl Hour {
    fn add(&mut self, other: &Hour) {
        self.cpu_seconds += other.cpu_seconds;
        self.cpu_span += other.cpu_span;
        self.memory_byte_seconds += other.memory_byte_seconds;
        self.memory_span += other.memory_span;
    }
}

/// CPU and memory usage by hour over the window.
#[derive(Debug, Clone)]
pub struct Hours {
    window: f64,
    clock: MinuteClock,
    /// The minute being filled.
    minute: CpuMinute,
    /// The current hour's finished minutes' mean cores.
    minutes: Vec<f64>,
    current: Hour,
    done: VecDeque<Hour>,
}

impl Hours {
    pub fn new(window: f64) -> Self {
        Hours {
            window,
            clock: MinuteClock::default(),
            minute: CpuMinute::default(),
            minutes: Vec::with_capacity(60),
            current: Hour::default(),
            done: VecDeque::new(),
        }
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.minutes.capacity() * std::mem::size_of::<f64>()
            + self.done.capacity() * std::mem::size_of::<Hour>()
    }

    /// Seconds since the first sample.
    pub fn data_seconds(&self) -> f64 {
        self.clock.data_seconds()
    }

    /// One tick: `cores` used over the `dt` seconds ending at `t`, and memory now.
    pub fn push(&mut self, t: f64, dt: f64, cores: Option<f64>, memory_bytes: f64) {
        let Some(minute) = self.clock.minute(t, dt) else {
            return;
        };
        if minute != self.minute.index {
            self.close_minute(minute);
        }
        if let Some(cpu_seconds) = self.minute.add(cores, dt) {
            self.current.cpu_seconds += cpu_seconds;
            self.current.cpu_span += dt;
        }
        if memory_bytes.is_finite() && memory_bytes > 0.0 && dt > 0.0 {
            self.current.memory_byte_seconds += memory_bytes * dt;
            self.current.memory_span += dt;
        }
    }

    /// Ends the minute being filled; starts `next`, closing the hour if it ends.
    fn close_minute(&mut self, next: i64) {
        self.minutes.extend(self.minute.mean_cores());
        self.minute = CpuMinute::new(next);
        let hour = next.div_euclid(60);
        if hour != self.current.index {
            let mut finished = std::mem::take(&mut self.current);
            finished.p90_cores = p90(&mut self.minutes);
            self.minutes.clear();
            self.done.push_back(finished);
            self.current.index = hour;
            let keep = (self.window / HOUR).ceil().max(1.0) as i64;
            while self.done.front().is_some_and(|h| h.index < hour - keep) {
                self.done.pop_front();
            }
        }
    }

    /// Mean CPU and memory over the window, the hour being filled included.
    pub fn mean_usage(&self) -> MeanUsage {
        let mut sum = self.current;
        for h in &self.done {
            sum.add(h);
        }
        MeanUsage {
            cpu_cores: (sum.cpu_span > 0.0).then(|| sum.cpu_seconds / sum.cpu_span),
            memory_bytes: (sum.memory_span > 0.0)
                .then(|| sum.memory_byte_seconds / sum.memory_span),
        }
    }

    /// The finished hours' p90s, oldest first.
    pub fn hourly_p90(&self) -> Vec<f64> {
        self.done.iter().filter_map(|h| h.p90_cores).collect()
    }
}

/// Nearest-rank p90 of `xs` (sorted in place); `None` when empty.
fn p90(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let rank = (0.9 * xs.len() as f64).ceil() as usize;
    Some(xs[rank.clamp(1, xs.len()) - 1])
}

/// `worthwhile | not_worthwhile | unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Worthwhile,
    NotWorthwhile,
    #[default]
    Unknown,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [
        Verdict::Worthwhile,
        Verdict::NotWorthwhile,
        Verdict::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Worthwhile => "worthwhile",
            Verdict::NotWorthwhile => "not_worthwhile",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Why the verdict is what it is (the words are `words::cost`'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Less than [`MIN_DATA`] seconds, or no finished hour with CPU usage.
    #[default]
    NeedsMoreData,
    /// The peak hour is under [`MIN_PEAK_TO_TROUGH`] × the quietest.
    Steady,
    /// The load moves, but an autoscaler would save under [`MIN_SAVINGS_RATIO`].
    SmallSavings,
    /// Both thresholds met.
    LoadFollows,
}

/// A starting HorizontalPodAutoscaler, at the current per-replica request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hpa {
    pub target_cpu_utilization_percent: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// The per-replica CPU request the replica counts assume.
    pub cpu_request_cores: f64,
}

/// The autoscaling verdict of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Autoscaling {
    pub verdict: Verdict,
    pub reason: Reason,
    /// Seconds of data so far, and until a verdict (`None` once there is one).
    pub data_seconds: f64,
    pub ready_in_seconds: Option<f64>,
    /// Finished hours the figures rest on.
    pub hours: usize,
    pub peak_hour_p90_cores: Option<f64>,
    pub trough_hour_p90_cores: Option<f64>,
    pub mean_hour_p90_cores: Option<f64>,
    pub peak_to_trough: Option<f64>,
    pub savings_ratio: Option<f64>,
    /// What the ideal autoscaler saves for the whole workload (all replicas), per
    /// month at the configured CPU price: (peak − mean hourly p90) × replicas.
    pub savings_per_month: Option<f64>,
    /// Memory costs more than CPU: an HPA on CPU will not reduce the memory bill.
    pub memory_bound: bool,
    /// When worthwhile: where to start.
    pub hpa: Option<Hpa>,
}

/// The verdict from the hourly p90s, the data so far, the prices, the per-replica
/// CPU request (`None`: unknown) and whether memory is what the app is sized by.
pub fn judge(
    p90s: &[f64],
    data_seconds: f64,
    cfg: &CostConfig,
    cpu_request: Option<f64>,
    memory_bound: bool,
) -> Autoscaling {
    let mut a = Autoscaling {
        data_seconds,
        hours: p90s.len(),
        memory_bound,
        ..Default::default()
    };
    if data_seconds < MIN_DATA || p90s.is_empty() {
        a.ready_in_seconds = (data_seconds < MIN_DATA).then_some(MIN_DATA - data_seconds);
        return a;
    }
    let peak = p90s.iter().copied().fold(0.0, f64::max);
    let trough = p90s.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = p90s.iter().sum::<f64>() / p90s.len() as f64;
    a.peak_hour_p90_cores = Some(peak);
    a.trough_hour_p90_cores = Some(trough);
    a.mean_hour_p90_cores = Some(mean);
    let ratio = peak.max(FLOOR_CORES) / trough.max(FLOOR_CORES);
    let savings = if peak > 0.0 { 1.0 - mean / peak } else { 0.0 };
    a.peak_to_trough = Some(ratio);
    a.savings_ratio = Some(savings);
    a.savings_per_month =
        Some((peak - mean) * cfg.replicas as f64 * cfg.cpu_core_hour * HOURS_PER_MONTH);
    (a.verdict, a.reason) = if ratio < MIN_PEAK_TO_TROUGH {
        (Verdict::NotWorthwhile, Reason::Steady)
    } else if savings < MIN_SAVINGS_RATIO {
        (Verdict::NotWorthwhile, Reason::SmallSavings)
    } else {
        (Verdict::Worthwhile, Reason::LoadFollows)
    };
    if a.verdict == Verdict::Worthwhile {
        a.hpa = cpu_request
            .filter(|r| *r > 0.0)
            .map(|r| hpa(trough, peak, r, cfg.replicas));
    }
    a
}

/// Replicas for the trough and the peak of the whole workload (`replicas` pods
/// each using the hour's p90) at `request` per pod and the target utilization.
fn hpa(trough: f64, peak: f64, request: f64, replicas: u32) -> Hpa {
    let pods = |cores: f64| {
        let n = (cores * replicas as f64 / (request * TARGET_UTILIZATION)).ceil();
        n.clamp(1.0, 10_000.0) as u32
    };
    let min_replicas = pods(trough);
    Hpa {
        target_cpu_utilization_percent: (TARGET_UTILIZATION * 100.0).round() as u32,
        min_replicas,
        max_replicas: pods(peak).max(min_replicas),
        cpu_request_cores: request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_the_nearest_rank() {
        // Ten values 1..=10: rank ceil(9) = 9 → 9. Sixty minutes 1..=60: rank 54.
        let mut ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(p90(&mut ten), Some(9.0));
        let mut sixty: Vec<f64> = (1..=60).rev().map(f64::from).collect();
        assert_eq!(p90(&mut sixty), Some(54.0));
        assert_eq!(p90(&mut []), None);
    }

    /// Hours are cut from the first sample: a trace starting at 00:37 of the wall
    /// clock gives the same hourly p90s as one starting at 00:00.
    #[test]
    fn hours_start_at_the_first_sample_not_the_clock() {
        let run = |t0: f64| {
            let mut h = Hours::new(86400.0);
            for i in 0..=(3 * 60 + 1) {
                let t = t0 + i as f64 * 60.0;
                // Hour 0 at 0.2 cores, hour 1 at 0.6, hour 2 at 0.4.
                // Sample i covers the minute before it.
                let cores = [0.2, 0.6, 0.4, 0.4][(i as usize).saturating_sub(1) / 60];
                h.push(t, if i == 0 { 0.0 } else { 60.0 }, Some(cores), 1e8);
            }
            h.hourly_p90()
        };
        assert_eq!(run(0.0), vec![0.2, 0.6, 0.4]);
        assert_eq!(run(37.0 * 60.0 + 13.0), vec![0.2, 0.6, 0.4]);
    }

    /// Hand-computed: hourly p90s 0.2, 0.6, 0.4 → peak 0.6, trough 0.2, mean 0.4;
    /// peak-to-trough 3.0, savings 1 − 0.4/0.6 = 1/3; money (0.6 − 0.4) × 2
    /// replicas × 0.031611 × 730 = 9.230412 a month. HPA at a 0.25-core request and
    /// 70%: trough 0.2 × 2 / 0.175 = 2.29 → 3 pods, peak 0.6 × 2 / 0.175 = 6.86 → 7.
    #[test]
    fn a_load_that_moves_is_worth_autoscaling() {
        let cfg = CostConfig {
            replicas: 2,
            ..Default::default()
        };
        let a = judge(&[0.2, 0.6, 0.4], 13.0 * HOUR, &cfg, Some(0.25), false);
        assert_eq!(a.verdict, Verdict::Worthwhile);
        assert_eq!(a.reason, Reason::LoadFollows);
        assert!((a.peak_to_trough.unwrap() - 3.0).abs() < 1e-9);
        assert!((a.savings_ratio.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((a.savings_per_month.unwrap() - 9.230412).abs() < 1e-6);
        let hpa = a.hpa.unwrap();
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (3, 7));
        assert_eq!(hpa.target_cpu_utilization_percent, 70);
    }

    /// Hourly p90s 0.50 and 0.55: peak-to-trough 1.1 < 1.5 → steady. Hourly 0.2
    /// and 0.35 (ratio 1.75) but mean 0.275: savings 1 − 0.275/0.35 = 0.214 < 0.3.
    #[test]
    fn a_steady_load_or_small_savings_are_not_worthwhile() {
        let cfg = CostConfig::default();
        let a = judge(&[0.5, 0.55], MIN_DATA, &cfg, Some(1.0), false);
        assert_eq!(
            (a.verdict, a.reason),
            (Verdict::NotWorthwhile, Reason::Steady)
        );
        assert_eq!(a.hpa, None);
        let a = judge(&[0.2, 0.35], MIN_DATA, &cfg, Some(1.0), false);
        assert_eq!(
            (a.verdict, a.reason),
            (Verdict::NotWorthwhile, Reason::SmallSavings)
        );
        assert!((a.savings_ratio.unwrap() - (1.0 - 0.275 / 0.35)).abs() < 1e-9);
    }

    /// Before 12 hours: unknown, saying how long is left.
    #[test]
    fn before_half_a_day_it_says_how_long_is_left() {
        let a = judge(&[0.2, 0.6], 2.0 * HOUR, &CostConfig::default(), None, false);
        assert_eq!(a.verdict, Verdict::Unknown);
        assert_eq!(a.ready_in_seconds, Some(10.0 * HOUR));
    }

    /// Mean usage is weighted by time, the hour being filled included.
    #[test]
    fn mean_usage_covers_the_window() {
        let mut h = Hours::new(86400.0);
        for i in 0..=120 {
            let cores = if i <= 60 { 0.1 } else { 0.3 };
            h.push(
                i as f64 * 60.0,
                if i == 0 { 0.0 } else { 60.0 },
                Some(cores),
                2e8,
            );
        }
        let u = h.mean_usage();
        // 60 minutes at 0.1 and 60 at 0.3: 0.2 cores.
        assert!((u.cpu_cores.unwrap() - 0.2).abs() < 1e-9, "{u:?}");
        assert!((u.memory_bytes.unwrap() - 2e8).abs() < 1e-3);
    }
}
