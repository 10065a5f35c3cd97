//! The counting half of request durations, done as the log pipeline reads access
//! lines: the exported histogram's [`Buckets`], the per-status-class counts
//! ([`LatencyCounts`], with their Prometheus native-histogram [`NativeBuckets`]) and
//! the [`FineHistogram`] the percentiles are later read from (windows and
//! percentiles over them live in `analysis::latency`).
//!
//! # Accuracy and memory
//!
//! A fine bucket `i` holds values in `(γ^(i-1), γ^i]` with γ = 1.02/0.98; reporting
//! `2γ^i/(γ+1)` puts every value within 2% of what is reported (the DDSketch bound).
//! Buckets cover 100 µs to 1000 s: 404 of them plus an underflow (≤ 100 µs, reported
//! as 100 µs) and an overflow bucket, 3.3 KiB of counts, allocated on the first
//! request.

use super::classify::StatusClass;

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

/// The R10 preferred numbers (ISO 3): ten a decade, each 10^(1/10) ≈ 1.26 times the
/// last, rounded to three digits so the `le` labels stay readable.
const R10: [&str; 10] = ["1", "1.25", "1.6", "2", "2.5", "3.15", "4", "5", "6.3", "8"];

impl Default for Buckets {
    /// 1 ms to 63 s in the R10 series: 49 bounds. For lognormal latencies with
    /// medians 5 ms..2 s and σ 0.3..1.2, `histogram_quantile` on them is at worst
    /// 5.0% off the p95 and 6.6% off the p99, where the eleven classic client
    /// defaults were 67% and 79% off (`python3 scripts/bucket_error.py`).
    fn default() -> Self {
        let bounds = (-3..=1)
            .flat_map(|decade| R10.iter().map(move |m| format!("{m}e{decade}")))
            .filter_map(|s| s.parse::<f64>().ok())
            .filter(|&b| b <= 63.0)
            .collect();
        Buckets(bounds)
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
    pub native: NativeBuckets,
}

/// Schema of the native histogram: bucket `i` holds `(2^((i-1)/8), 2^(i/8)]`, each
/// 2^(1/8) ≈ 1.09 times the last, so a quantile read from it is within 9.05%.
pub const NATIVE_SCHEMA: i32 = 3;
/// Durations at or below this (2^-20 s ≈ 0.95 µs, a bucket bound) go to the zero
/// bucket.
pub const NATIVE_ZERO_THRESHOLD: f64 = 1.0 / 1_048_576.0;
/// Index of the native bucket ending at 2^16 s (18.2 hours), which also counts
/// anything longer: at most 288 buckets, whatever the log says.
const NATIVE_MAX_INDEX: i32 = 16 << NATIVE_SCHEMA;

/// One status class's native-histogram counts: a zero bucket and a dense window of
/// buckets from `first` on, grown to the smallest and largest index seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeBuckets {
    pub zero: u64,
    /// Index of `counts[0]` (meaningless while `counts` is empty).
    pub first: i32,
    pub counts: Vec<u64>,
}

impl NativeBuckets {
    /// Counts one duration (finite, not negative: the caller checked).
    pub fn observe(&mut self, seconds: f64) {
        if seconds <= NATIVE_ZERO_THRESHOLD {
            self.zero += 1;
            return;
        }
        let scaled = seconds.log2() * f64::from(1 << NATIVE_SCHEMA);
        self.add_at((scaled.ceil() as i32).min(NATIVE_MAX_INDEX), 1);
    }

    fn add_at(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.first = index;
        }
        if index < self.first {
            let grow = (self.first - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.first = index;
        }
        let k = (index - self.first) as usize;
        if k >= self.counts.len() {
            self.counts.resize(k + 1, 0);
        }
        self.counts[k] += n;
    }

    /// Adds another class's counts.
    pub fn add(&mut self, other: &NativeBuckets) {
        self.zero += other.zero;
        for (k, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add_at(other.first + k as i32, n);
            }
        }
    }
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
        h.native.observe(seconds);
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
            a.native.add(&b.native);
            a.sum += b.sum;
            a.count += b.count;
        }
        self.fine.add(&other.fine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn default_buckets_are_r10_from_1_ms_to_63_s() {
        let b = Buckets::default().0;
        assert_eq!(b.len(), 49);
        assert_eq!(&b[..6], &[0.001, 0.00125, 0.0016, 0.002, 0.0025, 0.00315]);
        assert_eq!(b[48], 63.0);
        assert!(Buckets::new(b.clone()).is_ok());
        // Neighbours are 1.25..1.28 apart: the error bound of bucket_error.py holds.
        for w in b.windows(2) {
            assert!((1.249..1.281).contains(&(w[1] / w[0])), "{w:?}");
        }
    }

    #[test]
    fn native_buckets_count_by_power_of_two_eighths() {
        let mut n = NativeBuckets::default();
        // 1 s is the upper bound of bucket 0; just over it is bucket 1; 0.9 s is in
        // bucket -1, (2^(-2/8), 2^(-1/8)] = (0.841, 0.917]; 1e-7 s and 0 s are zero.
        for v in [1.0, 1.0001, 0.9, 1e-7, 0.0, 1e9] {
            n.observe(v);
        }
        assert_eq!(n.zero, 2);
        // 1e9 s is clamped to the bucket ending at 2^16 s, index 128.
        assert_eq!((n.first, n.counts.len()), (-1, 130));
        assert_eq!(&n.counts[..3], &[1, 1, 1]);
        assert_eq!(n.counts[129], 1);
        assert_eq!(n.counts.iter().sum::<u64>(), 4);
        let mut twice = n.clone();
        twice.add(&n);
        assert_eq!(twice.zero, 4);
        assert_eq!(&twice.counts[..3], &[2, 2, 2]);
        // A smaller value grows the window downwards: log2(0.001) × 8 = -79.7.
        twice.observe(0.001);
        assert_eq!(twice.first, -79);
        assert_eq!(twice.counts.iter().sum::<u64>(), 9);
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
}
