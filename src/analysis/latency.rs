//! Request durations over a sliding window: percentiles and whether they rose. The
//! histograms they are read from are counted by the log pipeline
//! ([`crate::logs::latency`]).
//!
//! # Layout
//! - [`LatencyWindow`]: cumulative fine histograms at a bounded number of instants →
//!   p50/p95/p99 over the window, and whether latency rose within it
//!
//! # Memory
//!
//! A fine histogram is 3.3 KiB of counts. The window keeps at most [`SEGMENTS`] + 2
//! cumulative copies (spaced at least window/32 apart), so at most 34 × 3.3 KiB ≈
//! 110 KiB whatever the window and the tick.

use serde::Serialize;

use super::sizing::{AllocationVerdict, CpuVerdict};
use crate::logs::latency::FineHistogram;

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
