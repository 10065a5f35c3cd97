//! Request durations: the histograms they are counted in, and their percentiles and
//! trend over a sliding window.
//!
//! # Layout
//! - [`FineHistogram`]: log-linear buckets, every value within 2% of its bucket's
//!   representative; the percentiles are read from it
//! - [`Buckets`] and [`LatencyCounts`]: the exported histogram
//!   (`outrider_http_request_duration_seconds{code_class}`) and the fine one, as the
//!   log scanner counts them
//! - [`LatencyWindow`]: cumulative fine histograms at a bounded number of instants →
//!   p50/p95/p99 over the window, and whether latency rose within it
//!
//! # Accuracy and memory
//!
//! A fine bucket `i` holds values in `(γ^(i-1), γ^i]` with γ = 1.02/0.98; reporting
//! `2γ^i/(γ+1)` puts every value within 2% of what is reported (the DDSketch bound).
//! Buckets cover 100 µs to 1000 s: 404 of them plus an underflow (≤ 100 µs, reported
//! as 100 µs) and an overflow bucket, 3.3 KiB of counts, allocated on the first
//! request. The window keeps at most [`SEGMENTS`] + 2 cumulative copies (spaced at
//! least window/32 apart), so at most 34 × 3.3 KiB ≈ 110 KiB whatever the window and
//! the tick.

use serde::Serialize;

use super::sizing::{AllocationVerdict, CpuVerdict};
use crate::logs::classify::StatusClass;

/// Relative error bound of the fine histogram.
pub const RELATIVE_ERROR: f64 = 0.02;
/// Smallest value with a bucket of its own; less is counted as this (seconds).
const MIN_SECONDS: f64 = 1e-4;
/// Largest value with a bucket of its own (seconds).
const MAX_SECONDS: f64 = 1e3;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// Buckets between the underflow and the overflow bucket.
fn inner_buckets() -> usize {
    ((MAX_SECONDS / MIN_SECONDS).ln() / gamma().ln()).ceil() as usize
}

/// Log-linear histogram of durations in seconds (see the module doc).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FineHistogram {
    /// Empty until the first value; then underflow, inner buckets, overflow.
    counts: Vec<u64>,
    count: u64,
}

impl FineHistogram {
    pub fn observe(&mut self, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; inner_buckets() + 2];
        }
        let i = if seconds <= MIN_SECONDS {
            0
        } else {
            let k = ((seconds / MIN_SECONDS).ln() / gamma().ln()).ceil() as usize;
            k.min(self.counts.len() - 1)
        };
        self.counts[i] += 1;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds another histogram's counts (streams summed into one).
    pub fn add(&mut self, other: &FineHistogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; other.counts.len()];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
    }

    /// `self − earlier`, both cumulative (counts never go backwards; saturating).
    pub fn since(&self, earlier: &FineHistogram) -> FineHistogram {
        let mut d = self.clone();
        for (a, b) in d.counts.iter_mut().zip(&earlier.counts) {
            *a = a.saturating_sub(*b);
        }
        d.count = d.counts.iter().sum();
        d
    }

    /// The `q`-quantile (0 < q ≤ 1) within 2%; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        // The smallest value with at least q of all values at or below it.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(representative(i));
            }
        }
        None
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

/// The value reported for fine bucket `i`.
fn representative(i: usize) -> f64 {
    if i == 0 {
        return MIN_SECONDS;
    }
    let g = gamma();
    MIN_SECONDS * 2.0 * g.powi(i as i32) / (g + 1.0)
}

/// Upper bounds of the exported histogram, in seconds: positive, increasing; the
/// `+Inf` bucket is implied.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(pub Vec<f64>);

impl Default for Buckets {
    /// Prometheus' client default buckets, which suit web requests.
    fn default() -> Self {
        Buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
    }
}

impl Buckets {
    /// Checks the bounds: each positive and finite, strictly increasing, at least one.
    pub fn new(bounds: Vec<f64>) -> Result<Buckets, String> {
        if bounds.is_empty() {
            return Err("needs at least one bound".into());
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
            return Err(format!("{b} is not a positive number of seconds"));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[1] <= w[0]) {
            return Err(format!(
                "bounds must increase ({} is followed by {})",
                w[0], w[1]
            ));
        }
        Ok(Buckets(bounds))
    }
}

/// One status class's exported histogram: counts per bucket (not cumulative; the
/// last is `+Inf`), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassHistogram {
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

/// Request durations counted by one log source: per status class for export, and
/// one fine histogram (all classes) for the percentiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyCounts {
    /// The exported bounds, copied on the first request (empty before).
    pub bounds: Vec<f64>,
    /// In [`StatusClass::ALL`] order.
    pub classes: [ClassHistogram; 4],
    pub fine: FineHistogram,
}

fn class_index(c: StatusClass) -> usize {
    match c {
        StatusClass::Success => 0,
        StatusClass::Redirection => 1,
        StatusClass::ClientError => 2,
        StatusClass::ServerError => 3,
    }
}

impl LatencyCounts {
    /// Counts one request that took `seconds` and answered `class`.
    pub fn observe(&mut self, bounds: &Buckets, class: StatusClass, seconds: f64) {
        if !seconds.is_finite() || seconds < 0.0 {
            return;
        }
        if self.bounds.is_empty() {
            self.bounds = bounds.0.clone();
        }
        let h = &mut self.classes[class_index(class)];
        if h.buckets.is_empty() {
            h.buckets = vec![0; bounds.0.len() + 1];
        }
        let last = h.buckets.len() - 1;
        let i = bounds.0.partition_point(|&b| b < seconds).min(last);
        h.buckets[i] += 1;
        h.sum += seconds;
        h.count += 1;
        self.fine.observe(seconds);
    }

    pub fn class(&self, c: StatusClass) -> &ClassHistogram {
        &self.classes[class_index(c)]
    }

    /// A class's `(upper bound, count)` pairs as prometheus-client encodes them
    /// (counts per bucket, `+Inf` last), zeros for a class without requests.
    pub fn class_buckets(&self, c: StatusClass) -> Vec<(f64, u64)> {
        let h = self.class(c);
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .enumerate()
            .map(|(i, b)| (b, h.buckets.get(i).copied().unwrap_or(0)))
            .collect()
    }

    /// Adds another source's counts (same bounds).
    pub fn add(&mut self, other: &LatencyCounts) {
        if self.bounds.is_empty() {
            self.bounds = other.bounds.clone();
        }
        for (a, b) in self.classes.iter_mut().zip(&other.classes) {
            if b.buckets.is_empty() {
                continue;
            }
            if a.buckets.is_empty() {
                a.buckets = vec![0; b.buckets.len()];
            }
            for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
                *x += y;
            }
            a.sum += b.sum;
            a.count += b.count;
        }
        self.fine.add(&other.fine);
    }
}

/// Percentiles of request durations over the window, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Requests with a duration in the window.
    pub requests: u64,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
    pub p99_seconds: f64,
    /// p95 of the earlier and the recent half of the window, when both halves hold
    /// at least [`MIN_HALF_REQUESTS`] requests.
    pub earlier_p95_seconds: Option<f64>,
    pub recent_p95_seconds: Option<f64>,
    /// The recent p95 is at least [`RISE_RATIO`] times the earlier one and at least
    /// [`RISE_MIN_SECONDS`] more.
    pub rising: bool,
}

/// Requests each half of the window needs before a rise is judged.
pub const MIN_HALF_REQUESTS: u64 = 20;
/// How much the recent p95 must exceed the earlier one to count as a rise.
pub const RISE_RATIO: f64 = 1.5;
/// And by at least this much (seconds), so 2 ms → 3 ms is no rise.
pub const RISE_MIN_SECONDS: f64 = 0.01;
/// Snapshots kept per window (plus the baseline and the newest).
pub const SEGMENTS: usize = 32;

/// Cumulative fine histograms at instants spaced at least window/[`SEGMENTS`] apart
/// (the newest always current), one baseline at or before the window's start.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindow {
    window: f64,
    points: std::collections::VecDeque<(f64, FineHistogram)>,
}

impl LatencyWindow {
    pub fn new(window: f64) -> Self {
        LatencyWindow {
            window,
            points: Default::default(),
        }
    }

    /// Adds the totals at `t` and returns the percentiles over the window (`None`
    /// without requests in it).
    pub fn push(&mut self, t: f64, totals: &FineHistogram) -> Option<Latency> {
        let spacing = self.window / SEGMENTS as f64;
        if self.points.is_empty() {
            // Nothing before the first tick: requests read before it count too.
            self.points.push_back((t, FineHistogram::default()));
        }
        let n = self.points.len();
        if n >= 2 && self.points[n - 1].0 - self.points[n - 2].0 < spacing {
            self.points[n - 1] = (t, totals.clone());
        } else {
            self.points.push_back((t, totals.clone()));
        }
        while self.points.len() > 2 && self.points[1].0 <= t - self.window {
            self.points.pop_front();
        }
        let (t0, base) = &self.points[0];
        let all = totals.since(base);
        if all.count() == 0 {
            return None;
        }
        let q = |h: &FineHistogram, q| h.quantile(q).unwrap_or(0.0);
        let mut l = Latency {
            requests: all.count(),
            p50_seconds: q(&all, 0.5),
            p95_seconds: q(&all, 0.95),
            p99_seconds: q(&all, 0.99),
            ..Default::default()
        };
        // The kept instant nearest the middle splits the window in two halves
        // (within window/32 of it).
        let mid_t = (t0 + t) / 2.0;
        let mid = self
            .points
            .iter()
            .min_by(|a, b| (a.0 - mid_t).abs().total_cmp(&(b.0 - mid_t).abs()))
            .map(|(_, h)| h)
            .unwrap_or(base);
        let earlier = mid.since(base);
        let recent = totals.since(mid);
        if earlier.count() >= MIN_HALF_REQUESTS && recent.count() >= MIN_HALF_REQUESTS {
            let (e, r) = (q(&earlier, 0.95), q(&recent, 0.95));
            l.earlier_p95_seconds = Some(e);
            l.recent_p95_seconds = Some(r);
            l.rising = r >= e * RISE_RATIO && r - e >= RISE_MIN_SECONDS;
        }
        Some(l)
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .points
                .iter()
                .map(|(_, h)| h.footprint() + std::mem::size_of::<f64>())
                .sum::<usize>()
    }
}

/// The words added to a CPU under-allocation reason when latency rose with it.
pub fn rise_note(l: &Latency) -> Option<String> {
    match (l.rising, l.earlier_p95_seconds, l.recent_p95_seconds) {
        (true, Some(e), Some(r)) => Some(format!(
            "; latency rises with CPU saturation: p95 {} in the recent half of the window against {} before",
            millis(r),
            millis(e)
        )),
        _ => None,
    }
}

/// Adds "latency rises with CPU saturation" to a CPU under-allocation reason when
/// the window's p95 rose ([`Latency::rising`]) while the CPU verdict is under.
pub fn note_cpu_rise(cpu: &mut CpuVerdict, latency: Option<&Latency>) {
    if cpu.allocation.0 != AllocationVerdict::Under {
        return;
    }
    if let Some(note) = latency.and_then(rise_note) {
        cpu.reason.push_str(&note);
    }
}

/// One line for people: `12.5 requests/s; response time p50 40 ms, p95 180 ms,
/// p99 195 ms over 300 requests in the last 300 s`; `None` without access lines.
pub fn summary(r: &super::LogRates) -> Option<String> {
    if r.requests_per_second <= 0.0 && r.latency.is_none() {
        return None;
    }
    let mut s = format!("{:.1} requests/s", r.requests_per_second);
    match &r.latency {
        Some(l) => s.push_str(&format!(
            "; response time p50 {}, p95 {}, p99 {} over {} requests{}",
            millis(l.p50_seconds),
            millis(l.p95_seconds),
            millis(l.p99_seconds),
            l.requests,
            if l.rising { ", rising" } else { "" }
        )),
        None => s.push_str("; no request duration in the access lines"),
    }
    Some(s)
}

/// `123 ms`, `1.25 s`.
pub fn millis(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.0} ms", seconds * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::sizing::AllocationField;

    #[test]
    fn fine_quantiles_are_within_two_percent() {
        let mut h = FineHistogram::default();
        // 10 ms .. 200 ms in 1 ms steps, each once: exact quantiles are known.
        let values: Vec<f64> = (10..=200).map(|ms| ms as f64 / 1000.0).collect();
        for v in &values {
            h.observe(*v);
        }
        for q in [0.5, 0.9, 0.95, 0.99, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let exact = values[rank - 1];
            let got = h.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact <= RELATIVE_ERROR + 1e-9,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.count(), 191);
        assert!(h.footprint() < 4 * 1024, "{}", h.footprint());
    }

    #[test]
    fn extremes_and_garbage_are_bounded() {
        let mut h = FineHistogram::default();
        for v in [0.0, 1e-9, 5e4, f64::NAN, -1.0, f64::INFINITY] {
            h.observe(v);
        }
        assert_eq!(h.count(), 3);
        assert_eq!(h.quantile(0.1), Some(MIN_SECONDS));
        assert!(h.quantile(1.0).unwrap() >= MAX_SECONDS * 0.98);
    }

    #[test]
    fn buckets_are_validated() {
        assert!(Buckets::new(vec![0.1, 0.5, 1.0]).is_ok());
        assert!(Buckets::new(vec![]).is_err());
        assert!(Buckets::new(vec![0.1, 0.1]).is_err());
        assert!(Buckets::new(vec![0.5, 0.1]).is_err());
        assert!(Buckets::new(vec![0.0, 1.0]).is_err());
        assert!(Buckets::new(vec![-1.0]).is_err());
    }

    #[test]
    fn exported_buckets_follow_le() {
        let b = Buckets(vec![0.1, 1.0]);
        let mut c = LatencyCounts::default();
        for v in [0.05, 0.1, 0.2, 1.0, 3.0] {
            c.observe(&b, StatusClass::Success, v);
        }
        c.observe(&b, StatusClass::ServerError, 0.5);
        let ok = c.class(StatusClass::Success);
        // le=0.1 holds 0.05 and 0.1 (bounds are inclusive).
        assert_eq!(ok.buckets, vec![2, 2, 1]);
        assert_eq!(ok.count, 5);
        assert!((ok.sum - 4.35).abs() < 1e-9);
        assert_eq!(c.class(StatusClass::ServerError).buckets, vec![0, 1, 0]);
        assert_eq!(
            c.class_buckets(StatusClass::ClientError),
            vec![(0.1, 0), (1.0, 0), (f64::INFINITY, 0)]
        );
        assert_eq!(c.fine.count(), 6);
        let mut total = LatencyCounts::default();
        total.add(&c);
        total.add(&c);
        assert_eq!(total.class(StatusClass::Success).buckets, vec![4, 4, 2]);
        assert_eq!(total.fine.count(), 12);
    }

    /// Pushes `per_tick` requests of `seconds` each at ticks `from..to` (1 s apart).
    fn run(
        w: &mut LatencyWindow,
        h: &mut FineHistogram,
        from: u32,
        to: u32,
        seconds: f64,
    ) -> Option<Latency> {
        let mut last = None;
        for t in from..to {
            for _ in 0..5 {
                h.observe(seconds);
            }
            last = w.push(t as f64, h);
        }
        last
    }

    #[test]
    fn requests_read_before_the_first_tick_count() {
        let mut w = LatencyWindow::new(60.0);
        let mut h = FineHistogram::default();
        h.observe(0.1);
        h.observe(0.2);
        assert_eq!(w.push(5.0, &h).map(|l| l.requests), Some(2));
        h.observe(0.3);
        assert_eq!(w.push(6.0, &h).map(|l| l.requests), Some(3));
    }

    #[test]
    fn the_window_forgets_old_requests_and_stays_small() {
        let mut w = LatencyWindow::new(60.0);
        let mut h = FineHistogram::default();
        assert_eq!(w.push(0.0, &h), None);
        run(&mut w, &mut h, 1, 600, 2.0);
        let l = run(&mut w, &mut h, 600, 700, 0.1).unwrap();
        // Only the last minute (0.1 s requests) is in the window.
        assert!((l.p95_seconds - 0.1).abs() / 0.1 <= 0.02, "{l:?}");
        assert!((l.requests as f64 - 300.0).abs() <= 15.0, "{l:?}");
        assert!(w.points.len() <= SEGMENTS + 2, "{}", w.points.len());
        assert!(w.footprint() < 120 * 1024, "{}", w.footprint());
        assert!(!l.rising);
    }

    #[test]
    fn a_rise_is_the_recent_half_against_the_earlier() {
        let mut w = LatencyWindow::new(120.0);
        let mut h = FineHistogram::default();
        run(&mut w, &mut h, 0, 120, 0.05);
        let l = run(&mut w, &mut h, 120, 180, 0.2).unwrap();
        assert!(l.rising, "{l:?}");
        let (e, r) = (
            l.earlier_p95_seconds.unwrap(),
            l.recent_p95_seconds.unwrap(),
        );
        assert!(
            (e - 0.05).abs() / 0.05 <= 0.02 && (r - 0.2).abs() / 0.2 <= 0.02,
            "{l:?}"
        );
        let rates = crate::analysis::LogRates {
            requests_per_second: 2.5,
            latency: Some(l),
            ..Default::default()
        };
        assert!(
            summary(&rates)
                .unwrap()
                .starts_with("2.5 requests/s; response time p50 "),
            "{:?}",
            summary(&rates)
        );
        assert!(summary(&rates).unwrap().ends_with(", rising"));
        assert_eq!(summary(&Default::default()), None);
        let note = rise_note(&l).unwrap();
        assert!(
            note.contains(" ms in the recent half of the window against "),
            "{note}"
        );
        // Steady latency is no rise; nor is a tiny one.
        let mut w = LatencyWindow::new(120.0);
        let mut h = FineHistogram::default();
        run(&mut w, &mut h, 0, 120, 0.002);
        let l = run(&mut w, &mut h, 120, 180, 0.004).unwrap();
        assert!(!l.rising, "{l:?}");
        assert_eq!(rise_note(&l), None);
    }

    #[test]
    fn the_cpu_reason_names_the_rise_only_when_both_happen() {
        let rising = Latency {
            requests: 100,
            p95_seconds: 0.2,
            earlier_p95_seconds: Some(0.05),
            recent_p95_seconds: Some(0.3),
            rising: true,
            ..Default::default()
        };
        let under = || CpuVerdict {
            allocation: AllocationField(AllocationVerdict::Under),
            reason: "waited for a CPU 40% as long as it ran (over 25%)".into(),
            ..Default::default()
        };
        let mut cpu = under();
        note_cpu_rise(&mut cpu, Some(&rising));
        assert_eq!(
            cpu.reason,
            "waited for a CPU 40% as long as it ran (over 25%); latency rises with CPU saturation: p95 300 ms in the recent half of the window against 50 ms before"
        );
        // Under without a rise, or a rise without under: unchanged.
        let mut cpu = under();
        let steady = Latency {
            rising: false,
            ..rising
        };
        note_cpu_rise(&mut cpu, Some(&steady));
        assert_eq!(cpu.reason, under().reason);
        let mut ok = CpuVerdict {
            allocation: AllocationField(AllocationVerdict::Ok),
            reason: "fine".into(),
            ..Default::default()
        };
        note_cpu_rise(&mut ok, Some(&rising));
        assert_eq!(ok.reason, "fine");
    }
}
