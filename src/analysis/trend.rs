//! Leak detection for one resource (memory, fds or threads): a robust trend over a
//! sliding window, kept in a fixed number of buckets.
//!
//! Samples fall into buckets of `window / BUCKETS`, cut from the first sample (never
//! from the clock: the same samples shifted in time get the same verdicts); each
//! bucket keeps its minimum, the *floor*. Floors are what a leak raises and what GC
//! sawtooth, spikes and oscillating load leave alone. A burst that holds memory for
//! longer than a bucket (a Node app's request bursts, every 2 min for 60-90 s)
//! raises a floor wherever the bucket edges fall, so the trend is read from floors
//! *eroded*: each lowered to the least of itself and its neighbours. The verdict
//! looks at the recent half of the window (at least [`MIN_BUCKETS`] buckets) and,
//! failing that, at the whole window (a slow leak needs the longer span to clear
//! `min_growth`); a segment needs all of:
//!
//! 1. a significant upward trend of the floors: Mann-Kendall's S on the raw floors
//!    (eroded ones are not independent), one-sided, z ≥ [`MK_Z`] (p < 0.001);
//! 2. a Theil-Sen slope of the eroded floors of at least `min_rate`;
//! 3. a rate in the second half of the segment at least [`MIN_PERSISTENCE`] of the
//!    first half's, and likewise in its last quarter against the quarter before: a
//!    leak keeps its pace, while a warm-up, a cache filling at a falling rate of new
//!    keys and a JVM heap expanding toward its new size (G1 grows by a share of what
//!    is still uncommitted, so each step is smaller) all slow down;
//! 4. the *trough* (least eroded floor) of each third of the segment above the one
//!    before by `min_growth / 10`, and the rise from the first third's trough to the
//!    last's, scaled to the whole segment, of at least `min_growth`: growth still
//!    going on, not one step (a model loaded once), and not the top of a sawtooth
//!    whose troughs return to the same level. Troughs over thirds, not the last
//!    bucket alone: a segment that happens to end in a burst is not growth.
//!
//! Once given, a verdict holds until growth has clearly stopped: until the Theil-Sen
//! rate of the recent segment's eroded floors falls below [`HOLD_SHARE`] of
//! `min_rate` (or a restart clears the history). A steady leak gets one verdict,
//! and one all-clear after it is fixed, however its noise plays with the tests.
//!
//! What this cannot tell apart: growth that keeps a steady pace for longer than the
//! span the verdict reads is a leak until it stops. No verdict before
//! [`MIN_BUCKETS`]. A restart (or a floor that falls below half the one before)
//! clears the history: growth before and after it is not one trend. Memory is
//! bounded: [`BUCKETS`] buckets whatever the window length.

use std::collections::VecDeque;

/// Buckets per window.
pub const BUCKETS: usize = 60;
/// Fewest completed buckets before any verdict: half a window. Early in a warm-up
/// the curve cannot be told from a leak; half an hour of history can.
pub const MIN_BUCKETS: usize = BUCKETS / 2;
/// The second half of the segment must grow at least this share of the first
/// half's rate: a warm-up decelerates, a leak does not.
pub const MIN_PERSISTENCE: f64 = 0.7;
/// A verdict given holds until the recent segment's rate falls below this share of
/// `min_rate`: growth has clearly stopped. A leak growing at `min_rate` or more
/// would have to measure at half its pace to lose its verdict, so noise does not
/// turn one leak into a string of alerts.
pub const HOLD_SHARE: f64 = 0.5;
/// Mann-Kendall z for a one-sided p < 0.001.
pub const MK_Z: f64 = 3.09;

/// Thresholds for one resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendConfig {
    /// Seconds of history considered.
    pub window: f64,
    /// Units per second the floors must rise by, at least.
    pub min_rate: f64,
    /// Units the envelope must rise by across the recent segment, at least.
    pub min_growth: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: f64,
    min: f64,
    last: f64,
}

/// What the trend says now.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TrendVerdict {
    /// Theil-Sen slope of the floors over the recent segment, units per second;
    /// `None` until there are enough buckets.
    pub rate_per_second: Option<f64>,
    pub suspected: bool,
    /// The latest value seen.
    pub current: f64,
}

#[derive(Debug, Clone)]
pub struct TrendTracker {
    cfg: TrendConfig,
    bucket_len: f64,
    /// Completed buckets, oldest first; at most `BUCKETS`.
    done: VecDeque<Bucket>,
    current: Option<Bucket>,
    /// The time of the first sample since the tracker was made or reset: buckets
    /// are cut from it, never from the clock, so the same samples shifted in time
    /// fall into the same buckets and get the same verdicts.
    origin: Option<f64>,
    /// The verdict over the completed buckets: it changes only when one completes.
    cached: Option<(Option<f64>, bool)>,
    /// A leak verdict stands: it holds while the recent rate stays at or above
    /// `HOLD_SHARE` of `min_rate`.
    held: bool,
}

impl TrendTracker {
    pub fn new(cfg: TrendConfig) -> Self {
        TrendTracker {
            cfg,
            bucket_len: (cfg.window / BUCKETS as f64).max(1e-9),
            done: VecDeque::with_capacity(BUCKETS + 1),
            current: None,
            origin: None,
            cached: None,
            held: false,
        }
    }

    /// Bytes this tracker holds, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.done.capacity() * std::mem::size_of::<Bucket>()
    }

    /// Forgets everything: after a restart the old growth is another process'.
    pub fn reset(&mut self) {
        self.done.clear();
        self.current = None;
        self.origin = None;
        self.cached = None;
        self.held = false;
    }

    /// Adds one sample taken at `t` seconds.
    pub fn push(&mut self, t: f64, v: f64) {
        if !v.is_finite() {
            return;
        }
        match &mut self.current {
            Some(b) if t < b.start + self.bucket_len => {
                b.min = b.min.min(v);
                b.last = v;
                return;
            }
            Some(b) => {
                let finished = *b;
                // A floor below half the last one is a restart in all but name.
                if let Some(prev) = self.done.back() {
                    if finished.min < prev.min * 0.5 {
                        self.done.clear();
                    }
                }
                self.done.push_back(finished);
                self.cached = None;
                while self.done.len() > BUCKETS {
                    self.done.pop_front();
                }
            }
            None => {}
        }
        // Buckets are whole bucket lengths from the first sample, so gaps leave no
        // partial ones and the wall clock's phase plays no part (issue 17: aligned
        // to absolute time, the same trace shifted by 15 s could get another verdict).
        let origin = *self.origin.get_or_insert(t);
        let start = origin + ((t - origin) / self.bucket_len).floor() * self.bucket_len;
        self.current = Some(Bucket {
            start,
            min: v,
            last: v,
        });
        // Drop buckets that fell out of the window.
        while self
            .done
            .front()
            .is_some_and(|b| b.start + self.cfg.window < start)
        {
            self.done.pop_front();
        }
    }

    pub fn evaluate(&mut self) -> TrendVerdict {
        let current = self.current.map(|b| b.last).unwrap_or(0.0);
        let (rate_per_second, suspected) = match self.cached {
            Some(c) => c,
            None => {
                let (rate, fresh) = self.evaluate_buckets();
                // Hysteresis: a new verdict needs every test; one that stands needs
                // only growth at half the threshold rate over the recent segment
                // (the rate given when there is no fresh verdict).
                let still = rate.is_some_and(|r| r >= HOLD_SHARE * self.cfg.min_rate);
                self.held = fresh || (self.held && still);
                self.cached = Some((rate, self.held));
                (rate, self.held)
            }
        };
        TrendVerdict {
            rate_per_second,
            suspected,
            current,
        }
    }

    /// (rate, suspected) from the completed buckets.
    fn evaluate_buckets(&self) -> (Option<f64>, bool) {
        let n = self.done.len();
        if n < MIN_BUCKETS {
            return (None, false);
        }
        let raw: Vec<(f64, f64)> = self
            .done
            .iter()
            .map(|b| (b.start + self.bucket_len / 2.0, b.min))
            .collect();
        let low = eroded(&raw);
        // The recent half answers fast growth quickly; the whole window gathers
        // enough growth for a slow leak to clear `min_growth`.
        let half = (n / 2).max(MIN_BUCKETS).min(n);
        let recent = self.judge(&raw[n - half..], &low[n - half..]);
        if recent.1 || half == n {
            return (Some(recent.0), recent.1);
        }
        let whole = self.judge(&raw, &low);
        (Some(if whole.1 { whole.0 } else { recent.0 }), whole.1)
    }

    /// (Theil-Sen rate, leak?) for one segment: its floors, `raw`, and the same
    /// floors [`eroded`], `low`.
    fn judge(&self, raw: &[(f64, f64)], low: &[(f64, f64)]) -> (f64, bool) {
        let (floors, seg) = (low, low.len());
        let rate = theil_sen(floors);
        if rate < self.cfg.min_rate {
            return (rate, false);
        }
        // On the raw floors: eroded ones share samples with their neighbours, and
        // Mann-Kendall's variance holds for independent values only.
        let z = mann_kendall_z(raw.iter().map(|p| p.1));
        // The trough of each third: the level the resource came down to there.
        let third = seg / 3;
        let trough = |part: &[(f64, f64)]| part.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let [first, middle, last] = [
            trough(&floors[..third]),
            trough(&floors[third..2 * third]),
            trough(&floors[2 * third..]),
        ];
        let rises_throughout = middle - first >= self.cfg.min_growth / 10.0
            && last - middle >= self.cfg.min_growth / 10.0;
        // The first and last thirds' troughs are two thirds of the segment apart.
        let growth = (last - first) * 1.5;
        // Keeps its pace: second half against first, last quarter against the one
        // before (a warm-up that started mid-segment decelerates there).
        let keeps = |a: &[(f64, f64)], b: &[(f64, f64)]| {
            let (ra, rb) = (theil_sen(a), theil_sen(b));
            ra <= 0.0 || rb >= MIN_PERSISTENCE * ra
        };
        let q = seg / 4;
        let persists = keeps(&floors[..seg / 2], &floors[seg / 2..])
            && keeps(&floors[seg - 2 * q..seg - q], &floors[seg - q..]);
        let suspected = z >= MK_Z && growth >= self.cfg.min_growth && rises_throughout && persists;
        (rate, suspected)
    }
}

/// Each floor lowered to the least of itself and its two neighbours: a burst that
/// held memory through a whole bucket (and would rank as a high floor wherever the
/// bucket edges fall) is gone, while a leak's floors only move by one bucket's growth.
fn eroded(raw: &[(f64, f64)]) -> Vec<(f64, f64)> {
    (0..raw.len())
        .map(|i| {
            let around = &raw[i.saturating_sub(1)..(i + 2).min(raw.len())];
            (
                raw[i].0,
                around.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
            )
        })
        .collect()
}

/// Median of pairwise slopes: robust to a third of the points being outliers.
pub fn theil_sen(points: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(points.len() * points.len() / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let dt = b.0 - a.0;
            if dt > 0.0 {
                slopes.push((b.1 - a.1) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return 0.0;
    }
    let mid = slopes.len() / 2;
    let (_, m, _) = slopes.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// Mann-Kendall z statistic (with the continuity correction); positive for an
/// upward trend.
pub fn mann_kendall_z(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let v: Vec<f64> = values.collect();
    let n = v.len() as f64;
    if v.len() < 3 {
        return 0.0;
    }
    let mut s = 0i64;
    for i in 0..v.len() {
        for j in i + 1..v.len() {
            s += match v[j].total_cmp(&v[i]) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    let var = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0;
    match s {
        0 => 0.0,
        s if s > 0 => (s as f64 - 1.0) / var.sqrt(),
        s => (s as f64 + 1.0) / var.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    fn memory() -> TrendConfig {
        TrendConfig {
            window: 3600.0,
            min_rate: 0.1 * MIB / 60.0,
            min_growth: 10.0 * MIB,
        }
    }

    /// Feeds `f(t)` every 5 s for `secs`; returns the first time a leak was suspected.
    fn run(secs: f64, f: impl Fn(f64) -> f64) -> (Option<f64>, TrendVerdict) {
        let mut tr = TrendTracker::new(memory());
        let mut first = None;
        let mut t = 0.0;
        let mut last = TrendVerdict::default();
        while t <= secs {
            tr.push(t, f(t));
            last = tr.evaluate();
            if last.suspected && first.is_none() {
                first = Some(t);
            }
            t += 5.0;
        }
        (first, last)
    }

    /// Deterministic noise in [-1, 1].
    fn noise(t: f64) -> f64 {
        ((t * 12.9898).sin() * 43758.5453).fract()
    }

    #[test]
    fn steady_growth_is_a_leak_with_its_rate() {
        let (first, v) = run(7200.0, |t| 200.0 * MIB + t / 60.0 * MIB + noise(t) * MIB);
        // Half a window of history comes first.
        assert!(first.is_some_and(|t| t <= 1900.0), "{first:?}");
        let rate = v.rate_per_second.unwrap() * 60.0 / MIB;
        assert!((rate - 1.0).abs() < 0.1, "rate {rate} MiB/min");
    }

    #[test]
    fn flat_noise_sawtooth_step_and_warmup_are_not() {
        type Shape = Box<dyn Fn(f64) -> f64>;
        let cases: Vec<(&str, Shape)> = vec![
            ("flat", Box::new(|t| 300.0 * MIB + noise(t) * 4.0 * MIB)),
            (
                "sawtooth",
                Box::new(|t| 300.0 * MIB + (t % 600.0) / 600.0 * 80.0 * MIB),
            ),
            (
                "step",
                Box::new(|t| if t < 3000.0 { 200.0 * MIB } else { 400.0 * MIB }),
            ),
            (
                "warm-up",
                Box::new(|t| 100.0 * MIB + 200.0 * MIB * (1.0 - (-t / 900.0).exp())),
            ),
            // A load cycle shorter than the window (one longer than the window
            // cannot be told from growth: choose the window accordingly).
            (
                "oscillating",
                Box::new(|t| 300.0 * MIB + (t / 300.0).sin() * 50.0 * MIB),
            ),
        ];
        for (name, f) in cases {
            let (first, _) = run(4.0 * 3600.0, f);
            assert_eq!(first, None, "{name} raised a false alarm");
        }
    }

    #[test]
    fn growth_under_a_sawtooth_is_found() {
        let (first, _) = run(7200.0, |t| {
            200.0 * MIB + t / 60.0 * 0.5 * MIB + (t % 120.0) / 120.0 * 30.0 * MIB
        });
        assert!(first.is_some(), "missed");
    }

    #[test]
    fn statistics() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 * i as f64)).collect();
        assert_eq!(theil_sen(&pts), 2.0);
        let mut with_outlier = pts.clone();
        with_outlier[5].1 = 1000.0;
        assert_eq!(theil_sen(&with_outlier), 2.0);
        assert!(mann_kendall_z((0..30).map(|i| i as f64)) > 5.0);
        assert!(mann_kendall_z((0..30).map(|i| -(i as f64))) < -5.0);
        let pts = [(0.0, 3.0), (1.0, 1.0), (2.0, 2.0), (3.0, 5.0), (4.0, 6.0)];
        let lowered: Vec<f64> = eroded(&pts).iter().map(|p| p.1).collect();
        assert_eq!(lowered, vec![1.0, 1.0, 1.0, 2.0, 5.0]);
    }
}
