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
//! reads the last k buckets for every k from [`MIN_BUCKETS`] (a fifth of the
//! window) to under half of it, then the recent half and the whole window; a
//! segment needs all of:
//!
//! 1. a significant upward trend of the floors: Mann-Kendall's S on the raw floors
//!    (eroded ones are not independent), one-sided, z ≥ [`MK_Z`] (p < 0.001);
//! 2. a Theil-Sen slope of the eroded floors of at least `min_rate`;
//! 3. a rate in the second half of the segment at least `MIN_PERSISTENCE^(k/HALF)`
//!    of the first half's ([`MIN_PERSISTENCE`] from half a window), and likewise in
//!    its last quarter against the quarter before, and in the halves of the growth
//!    from where it began when it began inside the segment (flat minutes before a
//!    warm-up dilute the first half's rate; the share there is the one for the
//!    growth's own span): a leak keeps its pace, while a
//!    warm-up, a cache filling at a falling rate of new keys and a JVM heap
//!    expanding toward its new size all slow down (the exponent makes the slowest
//!    warm-up that passes the same, a 42-min time constant, whatever the span).
//!    The halves and quarters (and the growth's halves, when it began with the
//!    segment) may show it on the floors or on the buckets' means when the growth
//!    is spread over the buckets, not made in steps, and the means' first part
//!    grows too (`Level`);
//! 4. the *trough* (least eroded floor) of each third of the segment above the one
//!    before by `min_growth / 10`, and the rise from the first third's trough to the
//!    last's, scaled to the whole segment, of at least `min_growth` times a quarter
//!    window over the span (under half a window: the shorter, the steeper) or
//!    `min_growth` per window at the segment's pace (from half a window): growth
//!    still going on, not one step, and not the top of a sawtooth;
//! 5. under half a window, or with less than `min_growth` of growth, evidence
//!    beyond doubt (`beyond_doubt`): each half growing, the second
//!    half keeping its pace by [`SHORT_MARGIN_Z`] standard errors of the slopes
//!    ([`LONG_MARGIN_Z`] for a long segment; on the floors, or on the means of
//!    spread growth, each against its own scatter), no slower than the span before it,
//!    every quarter's trough above the one before, and a level not seen before in
//!    the window.
//!
//! 6. not a staircase of shrinking steps (`staircase`): a managed heap that
//!    expands in commits, each a share of what is left (G1 toward `-Xmx`), climbs
//!    as steadily as a leak across a segment but settles; when three or more steps
//!    in the window make three quarters of the segment's rise and the last four
//!    shrink by 5% a step or more, no fresh verdict is given.
//!
//! Once given, a verdict holds until growth has clearly stopped: until the Theil-Sen
//! rate of the recent half window's eroded floors falls below [`HOLD_SHARE`] of
//! `min_rate` *and* that window no longer climbs (its last third's highest eroded
//! floor under [`HOLD_STEP_SHARE`] of `min_growth` above its first third's trough: a JVM's staircase
//! of heap commits is flat for up to 20 min between steps), or a restart clears the
//! history. A steady leak gets one verdict, and one all-clear after it is fixed,
//! however its noise or its steps play with the tests.
//!
//! What this cannot tell apart: growth that keeps a steady pace for longer than the
//! span the verdict reads is a leak until it stops (a ramp of a sawtooth or a load
//! cycle that climbs for more than a fifth of the window before its first release
//! can be flagged on that first ramp). No verdict before [`MIN_BUCKETS`]. A restart
//! (or a floor that falls below half the one before) clears the history: growth before and after it is not one trend. Memory is
//! bounded: [`BUCKETS`] buckets whatever the window length.

use std::collections::VecDeque;

mod staircase;

/// Buckets per window.
pub const BUCKETS: usize = 60;
/// Fewest completed buckets before any verdict: a fifth of a window.
pub const MIN_BUCKETS: usize = BUCKETS / 5;
/// Half a window: the longest recent segment judged before the whole window.
pub const HALF: usize = BUCKETS / 2;
/// The second half of the segment must grow at least this share of the first
/// half's rate: a warm-up decelerates, a leak does not.
pub const MIN_PERSISTENCE: f64 = 0.7;
/// A verdict given holds until the recent segment's rate falls below this share of
/// `min_rate`: growth has clearly stopped. A leak growing at `min_rate` or more
/// would have to measure at half its pace to lose its verdict, so noise does not
/// turn one leak into a string of alerts.
pub const HOLD_SHARE: f64 = 0.5;
/// A verdict given also holds while the recent half window's last third reaches
/// this share of `min_growth` above its first third's trough (see
/// `TrendTracker::climbing`): a staircase of heap commits is still climbing.
pub const HOLD_STEP_SHARE: f64 = 0.5;
/// The rise from the middle third's trough to the last third's must be at least
/// this share of the rise from the first third's: growth still going on at the end
/// of the segment, not a cache fill at its start followed by a JVM's small heap
/// steps (a recorded JVM, `real-rt-jvm-cache-fills-and-caps`, was flagged so).
pub const LATE_SHARE: f64 = 0.25;
/// The newest raw floor may fall below the segment's line by at most this many
/// scatters of the raw floors about it: a fill that capped in the last bucket has
/// stopped, which the eroded floors (a bucket behind) do not show yet.
pub const TAIL_Z: f64 = 3.0;
/// Mann-Kendall z for a one-sided p < 0.001.
pub const MK_Z: f64 = 3.09;
/// A short segment's second half must keep its pace by this many standard errors
/// of the slopes (one for a long segment with less than `min_growth` of growth):
/// the noisier the floors, the longer the span before a verdict.
pub const SHORT_MARGIN_Z: f64 = 2.0;
/// The margin for a segment of half a window or more whose growth is under
/// `min_growth` (a slow leak's rate; a small warm-up's is as noisy).
pub const LONG_MARGIN_Z: f64 = 1.0;

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

/// The bucket samples go into now.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: f64,
    min: f64,
    last: f64,
    /// The sum and count of the bucket's samples, for its mean.
    sum: f64,
    count: u32,
}

/// A completed bucket: its floor and its mean, a steadier level than the floor
/// under normal noise (see [`Level`]).
#[derive(Debug, Clone, Copy)]
struct Done {
    start: f64,
    min: f64,
    mean: f64,
}

impl From<Bucket> for Done {
    fn from(b: Bucket) -> Done {
        Done {
            start: b.start,
            min: b.min,
            mean: b.sum / f64::from(b.count.max(1)),
        }
    }
}

/// One segment's buckets read two ways: `floors`, their minima eroded (what the
/// verdict rests on), and `means`, their means. A bucket's floor is the least of
/// its samples (60 at 1 s): it ignores a sawtooth or a burst, but the least of
/// many samples of normal noise moves nearly as much as one sample does, while
/// their mean moves with the noise over the root of their count. The pace tests
/// (does the growth keep its pace?) pass on either reading when the growth is
/// `spread` over the buckets: a warm-up slows down in both, and where bursts or
/// a sawtooth make the means jump, their own scatter widens the margin asked of
/// them. Growth in steps is read on the floors alone: a bucket that holds a step
/// has its mean halfway up it, which smooths a staircase of heap commits into a
/// steady climb.
#[derive(Clone, Copy)]
struct Level<'a> {
    floors: &'a [(f64, f64)],
    means: &'a [(f64, f64)],
    spread: bool,
}

impl Level<'_> {
    /// Whether the pace test `keeps(points, first)` holds on the buckets `range`
    /// of the floors, or of the means of spread growth where the part before
    /// `first` grows at `min_rate` or more: a first part that does not grow lets
    /// a pace test pass (growth that began inside the segment), and the means of
    /// buckets that hold bursts rise and fall by chance (a Node-like shape's
    /// first half did, at a negative rate, over floors warming up).
    fn either(
        &self,
        range: std::ops::Range<usize>,
        first: usize,
        min_rate: f64,
        keeps: impl Fn(&[(f64, f64)], usize) -> bool,
    ) -> bool {
        let means = &self.means[range.clone()];
        keeps(&self.floors[range], first)
            || (self.spread && theil_sen(&means[..first]) >= min_rate && keeps(means, first))
    }
}

/// Growth spread over the buckets, not made in steps: the median rise between
/// neighbouring raw floors at least half the segment's `rate` (a staircase whose
/// steps are two buckets apart or more rises by nothing between most of them),
/// or, where the figure moves in quanta, three quarters of the rises over two
/// buckets at that rate. A heap read in whole pages (generational ZGC's old
/// generation, in 2 MiB pages) rises by one page every bucket or two while it
/// grows steadily, so half its rises between neighbours are nil; a staircase of
/// heap commits three buckets apart or more (G1's, 9 MiB every 3 min in
/// `real-heap-jvm-g1-big-heap-leak-1mib`) has a third of its rises over two
/// buckets nil, and stays steps.
fn spread_growth(raw: &[(f64, f64)], rate: f64) -> bool {
    let rises = |lag: usize| -> Vec<f64> {
        raw.iter()
            .zip(&raw[lag.min(raw.len())..])
            .map(|(a, b)| (b.1 - a.1) / (b.0 - a.0))
            .collect()
    };
    let mut one = rises(1);
    if one.is_empty() {
        return false;
    }
    if median(&mut one) >= 0.5 * rate {
        return true;
    }
    let mut two = rises(2);
    let quarter = two.len() / 4;
    !two.is_empty() && *two.select_nth_unstable_by(quarter, f64::total_cmp).1 >= 0.5 * rate
}

/// What the trend says now.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TrendVerdict {
    /// Theil-Sen slope of the floors over the recent segment, units per second;
    /// `None` until there are enough buckets.
    pub rate_per_second: Option<f64>,
    pub suspected: bool,
    /// Not suspected while the floors climb in steps that each shrink: a
    /// runtime's heap settling toward its size (`staircase`).
    pub settling: bool,
    /// The latest value seen.
    pub current: f64,
}

#[derive(Debug, Clone)]
pub struct TrendTracker {
    cfg: TrendConfig,
    bucket_len: f64,
    /// Completed buckets, oldest first; at most `BUCKETS`.
    done: VecDeque<Done>,
    current: Option<Bucket>,
    /// The time of the first sample since the tracker was made or reset: buckets
    /// are cut from it, never from the clock, so the same samples shifted in time
    /// fall into the same buckets and get the same verdicts.
    origin: Option<f64>,
    /// The verdict over the completed buckets: it changes only when one completes.
    cached: Option<(Option<f64>, bool, bool)>,
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
        std::mem::size_of::<Self>() + self.done.capacity() * std::mem::size_of::<Done>()
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
                b.sum += v;
                b.count += 1;
                return;
            }
            Some(b) => {
                let finished = Done::from(*b);
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
            sum: v,
            count: 1,
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
        let (rate_per_second, suspected, settling) = match self.cached {
            Some(c) => c,
            None => {
                let (rate, fresh, settling) = self.evaluate_buckets();
                // Hysteresis: a new verdict needs every test; one that stands needs
                // only growth at half the threshold rate over the recent segment
                // (the rate given when there is no fresh verdict), or a staircase
                // still climbing across it.
                let still = rate.is_some_and(|r| r >= HOLD_SHARE * self.cfg.min_rate);
                self.held = fresh || (self.held && (still || self.climbing()));
                let settling = settling && !self.held;
                self.cached = Some((rate, self.held, settling));
                (rate, self.held, settling)
            }
        };
        TrendVerdict {
            rate_per_second,
            suspected,
            settling,
            current,
        }
    }

    /// A staircase still climbing across the recent half window: the highest of its
    /// last third's eroded floors stands [`HOLD_STEP_SHARE`] of `min_growth` or more
    /// above its first third's trough. A JVM's RSS follows G1's heap commits, flat
    /// for up to 20 min between steps: the Theil-Sen rate of a segment that is
    /// mostly one plateau is nil, while a window longer than the step spacing always
    /// holds a step between its first trough and its last level (the last third's
    /// trough would not do: a step inside that third leaves its trough below it).
    /// A fixed leak's floors level off, and the window's first trough comes within
    /// the share of the level once the window starts that share's growth before the
    /// fix.
    fn climbing(&self) -> bool {
        let n = self.done.len();
        if n < MIN_BUCKETS {
            return false;
        }
        let half = (n / 2).max(HALF).min(n);
        let raw: Vec<(f64, f64)> = self
            .done
            .iter()
            .skip(n - half)
            .map(|b| (b.start, b.min))
            .collect();
        let low = eroded(&raw);
        let [first, ..] = troughs::<3>(&low);
        let top = low[2 * half / 3..]
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max);
        top - first >= HOLD_STEP_SHARE * self.cfg.min_growth
    }

    /// (rate, suspected, settling) from the completed buckets: settling when a
    /// segment that passed every other test, or the recent half, climbs by a
    /// staircase of shrinking steps.
    fn evaluate_buckets(&self) -> (Option<f64>, bool, bool) {
        let n = self.done.len();
        if n < MIN_BUCKETS {
            return (None, false, false);
        }
        let raw: Vec<(f64, f64)> = self
            .done
            .iter()
            .map(|b| (b.start + self.bucket_len / 2.0, b.min))
            .collect();
        let low = eroded(&raw);
        let means: Vec<(f64, f64)> = self
            .done
            .iter()
            .map(|b| (b.start + self.bucket_len / 2.0, b.mean))
            .collect();
        // The recent half (or all there is, under a window): its rate is the one
        // shown, and the one a standing verdict is held by.
        let half = (n / 2).max(HALF).min(n);
        // The last k buckets for every k from MIN_BUCKETS to under half a window
        // (steep growth, or a leak that began recently, is answered quickly), then
        // the recent half and the whole window (a slow leak's growth gathers). A
        // short span never takes the first floor of a history: it has no left
        // neighbour to be eroded with, so it stands one bucket's growth too high,
        // a flat start that hides a warm-up slowing down.
        let short = MIN_BUCKETS..HALF.min(n);
        let long = (n >= HALF).then_some(half).into_iter();
        // A staircase of shrinking steps is a heap settling (item 6 above).
        let steps = staircase::steps(&low, self.cfg.min_growth / 10.0);
        let mut vetoed = false;
        for k in short.chain(long).chain((n > half).then_some(n)) {
            if let Some(rate) =
                self.judge(&raw[n - k..], &low[n - k..], &means[n - k..], &low[..n - k])
            {
                if !staircase::shrinking(&steps, &low, n - k) {
                    return (Some(rate), true, false);
                }
                vetoed = true;
            }
        }
        let settling = vetoed || staircase::shrinking(&steps, &low, n - half);
        (Some(theil_sen(&low[n - half..])), false, settling)
    }

    /// The Theil-Sen rate of one segment if it is a leak: its floors, `raw`, the
    /// same floors [`eroded`], `low`, the buckets' means, `means`, and the eroded
    /// floors of the window before it, `before`. The cheap tests come first: most
    /// segments fail them.
    fn judge(
        &self,
        raw: &[(f64, f64)],
        low: &[(f64, f64)],
        means: &[(f64, f64)],
        before: &[(f64, f64)],
    ) -> Option<f64> {
        let (floors, seg) = (low, low.len());
        // The trough of each third: the level the resource came down to there.
        let [first, middle, last] = troughs::<3>(floors);
        let rises_throughout = middle - first >= self.cfg.min_growth / 10.0
            && last - middle >= self.cfg.min_growth / 10.0;
        // The first and last thirds' troughs are two thirds of the segment apart.
        let growth = (last - first) * 1.5;
        let late = last - middle >= LATE_SHARE * (last - first);
        if !rises_throughout || !late || growth < self.required_growth(seg) {
            return None;
        }
        let rate = theil_sen(floors);
        let level = Level {
            floors,
            means,
            spread: spread_growth(raw, rate),
        };
        if !still_growing(raw, low, rate) {
            return None;
        }
        // On the raw floors: eroded ones share samples with their neighbours, and
        // Mann-Kendall's variance holds for independent values only.
        if rate < self.cfg.min_rate || mann_kendall_z(raw.iter().map(|p| p.1)) < MK_Z {
            return None;
        }
        let gstart = growth_start(floors, self.cfg.min_growth / 10.0);
        let grown = &floors[gstart..];
        let g = grown.len();
        let persistence_of_growth = persistence(g);
        let persistence = persistence(seg);
        // Keeps its pace: second half against first, last quarter against the one
        // before (a warm-up that started mid-segment decelerates there), on the
        // floors or the means.
        let keeps = |a: &[(f64, f64)], b: &[(f64, f64)], share: f64| {
            let (ra, rb) = (theil_sen(a), theil_sen(b));
            ra <= 0.0 || rb >= share * ra
        };
        let min_rate = self.cfg.min_rate;
        let split = |l: &[(f64, f64)], first: usize| keeps(&l[..first], &l[first..], persistence);
        let q = seg / 4;
        // And from where the growth began, if it began inside the segment: a
        // warm-up that starts after flat minutes slows down from there, which the
        // halves' rates, diluted by the flat minutes, may not show. The share asked
        // there is the one for the growth's own span: the shorter the span, the
        // less a warm-up slows across it, so the closer to its pace a leak's must be.
        // Growth that began at the segment's first buckets has the segment's halves
        // shifted by a bucket, read on either reading as they are; growth that began
        // later is read on the floors only, where its start was found (the means let
        // a recorded G1 JVM's cache fill through: `real-heap-jvm-g1-cache-fills-and-caps`).
        let persists = level.either(0..seg, seg / 2, min_rate, split)
            && level.either(seg - 2 * q..seg, q, min_rate, split)
            && (g < MIN_BUCKETS / 2
                || g == seg
                || if gstart <= 1 {
                    let share = persistence_of_growth;
                    level.either(gstart..seg, g / 2, min_rate, |l, f| {
                        keeps(&l[..f], &l[f..], share)
                    })
                } else {
                    keeps(&grown[..g / 2], &grown[g / 2..], persistence_of_growth)
                });
        let plain = seg >= HALF && growth >= self.cfg.min_growth;
        (persists && (plain || self.beyond_doubt(level, before, persistence))).then_some(rate)
    }

    /// What a segment under half a window (or with less than `min_growth` of
    /// growth) must show on top: each half growing at `min_rate` or more; the
    /// second half keeping its pace beyond doubt (on the floors or the means), and
    /// the last third against the middle one (a warm-up that began inside the
    /// segment slows down there); no slower than the same span before it; the
    /// trough of every quarter above the one before; and a level the window has
    /// not seen before (a sawtooth or a load cycle comes back to where it was).
    fn beyond_doubt(&self, level: Level, before: &[(f64, f64)], persistence: f64) -> bool {
        let low = level.floors;
        let (seg, rate) = (low.len(), theil_sen(low));
        let half = seg / 2;
        let (ra, rb) = (theil_sen(&low[..half]), theil_sen(&low[half..]));
        if ra.min(rb) < self.cfg.min_rate {
            return false;
        }
        let margin = if seg < HALF {
            SHORT_MARGIN_Z
        } else {
            LONG_MARGIN_Z
        };
        let third = seg / 3;
        let (middle, last) = (
            theil_sen(&low[third..2 * third]),
            theil_sen(&low[2 * third..]),
        );
        let by_margin = |l: &[(f64, f64)], _| keeps_pace_by(l, persistence, margin);
        if !level.either(0..seg, half, self.cfg.min_rate, by_margin) || last < persistence * middle
        {
            return false;
        }
        // The history's first two buckets hold the process's start (a wrapped app
        // is sampled before its runtime has loaded): a startup ramp is not a
        // warm-up whose slow tail the segment would be.
        let prior = &before[before.len().saturating_sub(seg).max(2).min(before.len())..];
        if prior.len() >= 3 && rate < persistence * theil_sen(prior) {
            return false;
        }
        let quarters = troughs::<4>(low);
        let highest_before = before.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        quarters
            .windows(2)
            .all(|w| w[1] - w[0] >= self.cfg.min_growth / 10.0)
            && quarters[3] > highest_before
    }

    /// The growth between troughs a segment of `k` buckets must show: under half a
    /// window, `min_growth` times a quarter window over the span (the shorter the
    /// span, the steeper the growth); from half a window, `min_growth` per window
    /// at the segment's pace.
    fn required_growth(&self, k: usize) -> f64 {
        let (k, b) = (k as f64, BUCKETS as f64);
        self.cfg.min_growth * (b / 4.0 / k).max(k / b)
    }
}

/// Growth that has not stopped at the end of a segment (`raw` floors, `low` eroded,
/// Theil-Sen `rate`): the newest raw floor is not below the line by more than
/// [`TAIL_Z`] scatters (a fill that capped in the last bucket), and the last
/// [`MIN_BUCKETS`] eroded floors do not slow down beyond one standard error of
/// their halves' slopes (the tail of a warm-up that began late in a long segment,
/// whose earlier flat part hides it from the whole segment's halves).
fn still_growing(raw: &[(f64, f64)], low: &[(f64, f64)], rate: f64) -> bool {
    let mut offsets: Vec<f64> = raw.iter().map(|p| p.1 - rate * p.0).collect();
    let centre = median(&mut offsets);
    let newest = raw[raw.len() - 1];
    if newest.1 - rate * newest.0 - centre < -TAIL_Z * scatter(raw, rate) {
        return false;
    }
    let recent = &low[low.len().saturating_sub(MIN_BUCKETS)..];
    let (a, b) = recent.split_at(recent.len() / 2);
    let (ra, rb) = (theil_sen(a), theil_sen(b));
    let p = persistence(recent.len());
    let sigma = scatter(recent, theil_sen(recent));
    let se = (slope_error(a, sigma) * p).hypot(slope_error(b, sigma));
    rb >= p * ra - se
}

/// Whether the second half of `points` grows at `share` of the first half's
/// Theil-Sen rate or more by `z` standard errors of the two slopes (the error
/// from the robust scatter about the whole segment's line): a noisy leak needs a
/// longer span, a slowing warm-up cannot pass for one.
fn keeps_pace_by(points: &[(f64, f64)], share: f64, z: f64) -> bool {
    let (a, b) = points.split_at(points.len() / 2);
    let sigma = scatter(points, theil_sen(points));
    let se = (slope_error(a, sigma) * share).hypot(slope_error(b, sigma));
    theil_sen(b) - share * theil_sen(a) >= z * se
}

/// Where growth began in a segment's eroded floors: the last bucket still within
/// `slack`, or three robust standard deviations of the floors' noise if more, of
/// the segment's starting level (the median of its first three floors). The noise
/// is read from the bucket-to-bucket differences (1.4826 x their MAD over the root
/// of two), which a steady rise leaves alone.
fn growth_start(low: &[(f64, f64)], slack: f64) -> usize {
    let mut first: Vec<f64> = low[..low.len().min(3)].iter().map(|p| p.1).collect();
    let base = median(&mut first);
    let steps: Vec<f64> = low.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let noise = if steps.is_empty() {
        0.0
    } else {
        robust_sigma(steps) / std::f64::consts::SQRT_2
    };
    let slack = slack.max(3.0 * noise);
    low.iter().rposition(|p| p.1 <= base + slack).unwrap_or(0)
}

/// The share of the first half's rate the second half must keep, for a segment of
/// `k` buckets: [`MIN_PERSISTENCE`] from half a window, and for a shorter one
/// `MIN_PERSISTENCE^(k / HALF)`, so that the slowest exponential warm-up that passes
/// (time constant 42 min in a 1 h window) is the same whatever the span.
fn persistence(k: usize) -> f64 {
    MIN_PERSISTENCE.powf(k.min(HALF) as f64 / HALF as f64)
}

/// The least value of each of `N` equal parts of `points` (the last takes the
/// remainder).
fn troughs<const N: usize>(points: &[(f64, f64)]) -> [f64; N] {
    let part = points.len() / N;
    std::array::from_fn(|i| {
        let end = if i == N - 1 {
            points.len()
        } else {
            (i + 1) * part
        };
        points[i * part..end]
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min)
    })
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

/// The scatter of points about a line of slope `rate`: the [`robust_sigma`] of the
/// residuals.
fn scatter(points: &[(f64, f64)], rate: f64) -> f64 {
    robust_sigma(points.iter().map(|p| p.1 - rate * p.0).collect())
}

/// 1.4826 times the median absolute deviation of `values` from their median: the
/// standard deviation for normal noise, which a few outliers leave alone. Not
/// empty.
fn robust_sigma(mut values: Vec<f64>) -> f64 {
    let centre = median(&mut values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    1.4826 * median(&mut dev)
}

/// The median of `values` (the upper one of an even count), reordering them. Not
/// empty.
fn median(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// The standard error of a least-squares slope through `points` whose scatter is
/// `sigma`.
fn slope_error(points: &[(f64, f64)], sigma: f64) -> f64 {
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.0).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean).powi(2)).sum();
    if sxx > 0.0 {
        sigma / sxx.sqrt()
    } else {
        f64::INFINITY
    }
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
    median(&mut slopes)
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

    /// Feeds `f(t)` every `step` s for `secs`; the first time a leak was suspected.
    fn first_verdict(step: f64, secs: f64, f: impl Fn(f64) -> f64) -> Option<f64> {
        let mut tr = TrendTracker::new(memory());
        let mut t = 0.0;
        while t <= secs {
            tr.push(t, f(t));
            if tr.evaluate().suspected {
                return Some(t);
            }
            t += step;
        }
        None
    }

    /// Sampled every second, as Outrider samples, a leak of 1 MiB/min under 2 MiB
    /// of normal noise: the floors alone (the least of 60 samples a bucket) kept
    /// its pace beyond doubt at 22 min; with the buckets' means, 13 min. Read in
    /// steps, the same growth keeps to the floors (`spread_growth`).
    #[test]
    fn the_means_find_a_leak_under_normal_noise_sooner() {
        let leak = |t: f64| 200.0 * MIB + t / 60.0 * MIB + gauss(t) * 2.0 * MIB;
        let first = first_verdict(1.0, 3600.0, leak);
        assert!(first.is_some_and(|t| t <= 15.0 * 60.0), "{first:?}");
        let raw = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
            (0..12)
                .map(|i| (i as f64 * 60.0, f(i as f64 * 60.0)))
                .collect()
        };
        let linear = raw(&|t| t / 60.0 * MIB + gauss(t) * 0.3 * MIB);
        let steps = raw(&|t| (t / 180.0).floor() * 3.0 * MIB);
        assert!(spread_growth(&linear, MIB / 60.0));
        assert!(!spread_growth(&steps, MIB / 60.0));
        // 1 MiB/min read in 2 MiB pages: a page every other bucket is spread.
        let pages = raw(&|t| (t / 120.0).floor() * 2.0 * MIB);
        assert!(spread_growth(&pages, MIB / 60.0));
    }

    /// Deterministic normal noise of standard deviation 1 (Box-Muller on [`noise`]).
    fn gauss(t: f64) -> f64 {
        let u1 = noise(t).abs().max(1e-12);
        let u2 = noise(t + 0.5).abs();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Deterministic noise in [-1, 1].
    fn noise(t: f64) -> f64 {
        ((t * 12.9898).sin() * 43758.5453).fract()
    }

    #[test]
    fn steady_growth_is_a_leak_with_its_rate() {
        let (first, v) = run(7200.0, |t| 200.0 * MIB + t / 60.0 * MIB + noise(t) * MIB);
        // Steady growth of 1 MiB/min needs well under half a window.
        assert!(first.is_some_and(|t| t <= 1200.0), "{first:?}");
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

    /// Issue 17: a verdict may come before half a window when the evidence is
    /// strong, but not on what only looks like growth over a short span.
    #[test]
    fn steep_growth_is_found_early_and_short_lookalikes_are_not() {
        let (first, _) = run(3600.0, |t| 200.0 * MIB + t / 30.0 * MIB + noise(t) * MIB);
        assert!(first.is_some_and(|t| t <= 1000.0), "2 MiB/min: {first:?}");
        type Shape = Box<dyn Fn(f64) -> f64>;
        let cases: Vec<(&str, Shape)> = vec![
            // The first ramp of a 10-min sawtooth: no verdict before a fifth of a window.
            (
                "sawtooth",
                Box::new(|t| 300.0 * MIB + (t % 600.0) / 600.0 * 120.0 * MIB + noise(t) * MIB),
            ),
            // A warm-up slowing with a 25-min time constant, 50 MiB.
            (
                "slow warm-up",
                Box::new(|t| {
                    300.0 * MIB + 50.0 * MIB * (1.0 - (-t / 1500.0).exp()) + noise(t) * MIB
                }),
            ),
            // Flat for an hour, then a warm-up with an 8-min time constant.
            (
                "late warm-up",
                Box::new(|t| {
                    let d = (t - 3600.0).max(0.0);
                    300.0 * MIB + 50.0 * MIB * (1.0 - (-d / 480.0).exp()) + noise(t) * MIB
                }),
            ),
        ];
        for (name, f) in cases {
            let (first, _) = run(3.0 * 3600.0, f);
            assert_eq!(first, None, "{name} raised a false alarm");
        }
    }

    /// A leak whose RSS climbs in a JVM's steps (20 MiB every 20 min, flat
    /// between) keeps its verdict on the plateaus, and loses it once after the
    /// steps stop (the rate alone let it go on the first plateau).
    #[test]
    fn a_staircase_keeps_its_verdict_until_it_stops() {
        let mut tr = TrendTracker::new(memory());
        let steps = |t: f64| (t.min(4.0 * 3600.0) / 1200.0).floor() * 20.0 * MIB;
        // Found on a steady ramp first, then the ramp turns into steps.
        let level = |t: f64| {
            let ramp = t.min(1800.0) / 30.0 * MIB;
            200.0 * MIB + ramp + steps((t - 1800.0).max(0.0)) + noise(t) * MIB
        };
        let (mut changes, mut was) = (Vec::new(), false);
        let mut t = 0.0;
        while t <= 6.0 * 3600.0 {
            tr.push(t, level(t));
            let now = tr.evaluate().suspected;
            if now != was {
                changes.push((t, now));
            }
            was = now;
            t += 5.0;
        }
        let stop = 1800.0 + 4.0 * 3600.0;
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].1 && changes[0].0 < 1800.0, "{changes:?}");
        // The last step is 20 min before `stop`; half a window of flat floors after it.
        assert!(!changes[1].1 && changes[1].0 > stop, "{changes:?}");
        assert!(changes[1].0 - stop <= 1800.0, "{changes:?}");
    }

    /// G1 expanding the heap toward `-Xmx`: eight steps 7 min apart, each 0.85 of
    /// the one before (90 MiB in all), flat between and after. Across 20-30 min it
    /// climbs as steadily as a leak; its shrinking steps say it is settling. The
    /// same steps kept at one size are a leak.
    #[test]
    fn shrinking_steps_are_a_heap_settling_and_even_ones_a_leak() {
        let first = 90.0 * (1.0 - 0.85) / (1.0 - 0.85f64.powi(8));
        let level = |t: f64, ratio: f64| {
            let done = ((t - 300.0) / 420.0).floor() + 1.0;
            let k = done.clamp(0.0, 8.0) as i32;
            let grown: f64 = (0..k).map(|i| first * ratio.powi(i)).sum();
            300.0 * MIB + grown * MIB + noise(t) * MIB
        };
        let (settling, _) = run(3.0 * 3600.0, |t| level(t, 0.85));
        assert_eq!(settling, None, "shrinking steps flagged");
        // Said so while it climbs (from its third step), not once it is flat.
        let mut tr = TrendTracker::new(memory());
        let mut said = Vec::new();
        let mut t = 0.0;
        while t <= 3.0 * 3600.0 {
            tr.push(t, level(t, 0.85));
            if tr.evaluate().settling {
                said.push(t);
            }
            t += 5.0;
        }
        let (from, to) = (said[0], said[said.len() - 1]);
        assert!(
            from > 300.0 + 2.0 * 420.0 && from < 300.0 + 4.0 * 420.0,
            "{from}"
        );
        assert!(
            to > 300.0 + 7.0 * 420.0 && to < 300.0 + 7.0 * 420.0 + 3600.0,
            "{to}"
        );
        let (even, _) = run(3.0 * 3600.0, |t| level(t, 1.0));
        assert!(even.is_some(), "even steps missed");
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
