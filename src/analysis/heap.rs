//! A JVM's memory leak read from its heap: the old generation's own figure
//! (`sample::jvm`), where RSS shows a leak only as the heap grows.
//!
//! RSS follows the heap's commits, not its contents: G1 commits regions in steps
//! (a staircase the RSS verdict must wait out), and Parallel GC can shrink the
//! heap after start-up so that a leak first fills memory the JVM already holds
//! (the recorded Parallel GC leak sat flat in RSS for 33 min). The old generation's
//! used bytes grow with the leak itself. But they also grow with garbage: objects
//! that lived long enough to be promoted and then died stay there until an old
//! collection (a full collection, or G1's concurrent cycle and the mixed
//! collections after it), and with a large heap that can take hours. So the heap
//! gives a verdict only on growth that *survives collections*:
//!
//! 1. the old generation's used bytes pass every test of [`TrendTracker`] (the
//!    same thresholds as RSS, `analysis.memory_*`; under a collector of one
//!    generation, the least figure between two of its cycles, held into the
//!    buckets no cycle reaches: its used bytes swing by a cycle's allocation),
//!    and
//! 2. the levels it came down to after its collections rise too: for each span
//!    between two old collections, the least used figure in it (right after a full
//!    collection; after G1's mixed collections), kept for the window. A span
//!    closes only once it has lasted a bucket and held a young collection (G1's
//!    cycle ends in two pauses that may fall in two ticks; the span between them
//!    is the top of the sawtooth), or, under a collector with no young
//!    collections (ZGC, Shenandoah: each cycle collects the whole heap), at the
//!    next cycle a bucket later. At least [`MIN_LEVELS`] such levels in the
//!    recent half window, rising at `min_rate` or more, the newest above the
//!    oldest by half of `min_growth` plus [`TOLERATED_GARBAGE`] of the committed
//!    old generation.
//!
//! A heap not collected in the recent half window gives no verdict, whatever it
//! does: its growth may be garbage. Once given, the verdict holds as the trend's
//! does (`trend`), without asking for collections again.
//!
//! The rate a verdict gives is the levels' (growth that survived collections),
//! not the trend's, which counts garbage between collections too. A leak in the
//! heap ends in `OutOfMemoryError` when the old generation reaches its maximum,
//! usually long before the container's memory limit: the time to it
//! ([`HeapVerdict::time_to_max_seconds`]) is from the live set now, the newest
//! level carried forward at the levels' rate (or the used figure, if less), to
//! the maximum the JVM published.

use std::collections::VecDeque;

use super::trend::{theil_sen, TrendConfig, TrendTracker, TrendVerdict, BUCKETS, HALF};
use crate::sample::jvm::JvmHeap;

/// Levels after collections needed in the recent half window for a verdict.
pub const MIN_LEVELS: usize = 2;
/// The share of the window an old generation must grow uncollected before the
/// words say so (a fifth: the trend's shortest span).
pub const MIN_UNCOLLECTED: f64 = 0.2;
/// The share of the committed old generation a collected heap that does not leak
/// may still hold as garbage: G1 skips regions more than 85% live and stops its
/// mixed collections once under 5% of the heap is waste.
pub const TOLERATED_GARBAGE: f64 = 0.05;

/// The old generation's trend and the levels it came down to after collections.
#[derive(Debug, Clone)]
pub struct HeapTrend {
    cfg: TrendConfig,
    used: TrendTracker,
    /// The old- and young-collection counts last seen.
    collections: Option<(u64, u64)>,
    /// The span since an old collection: when it began, the least used figure
    /// in it and when, and whether a young collection has come in it.
    span: Option<Span>,
    /// The old generation's committed bytes, last seen.
    capacity: f64,
    /// The old generation's maximum and its used bytes, last seen.
    max: Option<f64>,
    used_now: f64,
    /// When the last old collection was seen (the first sample's time before
    /// one).
    collected_at: Option<f64>,
    /// When the heap was last read.
    read_at: Option<f64>,
    /// The levels after collections, oldest first: one per bucket at most (the
    /// lower kept), none older than the window.
    levels: VecDeque<(f64, f64)>,
    /// Under a collector of one generation, the least used figure since its
    /// last cycle and when, and the last one pushed and when (`push_cycle_low`).
    cycle_low: Option<(f64, f64)>,
    last_low: Option<(f64, f64)>,
    held: bool,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: f64,
    low: (f64, f64),
    young: bool,
}

/// What the heap says now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeapVerdict {
    /// The old generation's trend (rate, and whether every test passed).
    pub trend: TrendVerdict,
    /// A leak the heap shows: the trend's verdict, with growth that survived
    /// collections when it was given.
    pub suspected: bool,
    /// Seconds the old generation has grown (at `min_rate` or more) without an
    /// old collection, from [`MIN_UNCOLLECTED`] on, while no verdict is given:
    /// its growth may be garbage as much as a leak.
    pub uncollected_seconds: Option<f64>,
    /// The rate of growth that survived collections: the Theil-Sen slope of the
    /// levels after collections in the window, units per second; `None` with
    /// fewer than [`MIN_LEVELS`]. The trend's rate counts garbage between
    /// collections too (a G1 leak of 1 MiB/min read +1.6 MiB/min there).
    pub surviving_rate: Option<f64>,
    /// With a leak verdict, seconds until the old generation is full
    /// (`OutOfMemoryError`) at the surviving rate; `None` without a verdict,
    /// without growth or without a published maximum.
    pub time_to_max_seconds: Option<f64>,
}

impl HeapTrend {
    pub fn new(cfg: TrendConfig) -> Self {
        HeapTrend {
            cfg,
            used: TrendTracker::new(cfg),
            collections: None,
            span: None,
            capacity: 0.0,
            max: None,
            used_now: 0.0,
            collected_at: None,
            read_at: None,
            levels: VecDeque::with_capacity(BUCKETS + 1),
            cycle_low: None,
            last_low: None,
            held: false,
        }
    }

    /// Bytes this tracker holds, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + self.used.footprint() - std::mem::size_of::<TrendTracker>()
            + self.levels.capacity() * std::mem::size_of::<(f64, f64)>()
    }

    /// Forgets everything: a new JVM.
    pub fn reset(&mut self) {
        *self = HeapTrend::new(self.cfg);
    }

    /// Adds the heap as read at `t`.
    pub fn push(&mut self, t: f64, heap: &JvmHeap) {
        self.read_at = Some(t);
        let used = heap.old_used_bytes as f64;
        let counts = (heap.old_collections, heap.young_collections);
        if self
            .collections
            .is_some_and(|(old, young)| counts.0 < old || counts.1 < young)
        {
            self.reset(); // a counter went back: another JVM
        }
        if counts.1 > 0 {
            self.used.push(t, used);
        }
        self.capacity = heap.old_capacity_bytes as f64;
        self.max = heap.old_max_bytes.map(|m| m as f64);
        self.used_now = used;
        let (collected, young) = match self.collections {
            Some((old, young)) => (counts.0 > old, counts.1 > young),
            None => (false, false),
        };
        self.collections = Some(counts);
        if counts.1 == 0 {
            self.push_cycle_low(t, used, collected);
        }
        if collected || self.collected_at.is_none() {
            self.collected_at = Some(t);
        }
        let bucket = self.cfg.window / BUCKETS as f64;
        match &mut self.span {
            // A span closes at an old collection once it has lasted a bucket and
            // held a young collection: under G1 the cycle's two pauses (Remark,
            // then Cleanup) may fall in different ticks, and the span between
            // them stands at the top of the sawtooth; the mixed collections that
            // reclaim come after, as young pauses. A collector of one generation
            // (ZGC, Shenandoah: no young collection ever counted) reclaims the
            // whole heap in each cycle, so its spans need none. Its least figure
            // is a level.
            Some(span)
                if collected && (span.young || counts.1 == 0) && t - span.start >= bucket =>
            {
                let level = span.low;
                self.add_level(level);
                self.span = Some(Span {
                    start: t,
                    low: (t, used),
                    young: false,
                });
            }
            Some(span) => {
                span.young |= young;
                if used < span.low.1 {
                    span.low = (t, used);
                }
            }
            // None before the first old collection: the figure has not been
            // collected yet.
            None if collected => {
                self.span = Some(Span {
                    start: t,
                    low: (t, used),
                    young: false,
                })
            }
            None => {}
        }
    }

    /// A collector of one generation (no young collection ever counted) swings
    /// between its cycles by what it allocates in one (a Shenandoah heap between
    /// 55 and 215 MiB, cycles 2.6 min apart): its trend reads the least figure
    /// between two cycles, once the second has come, at its time, and holds it
    /// into each bucket no cycle reaches (the trend's tests count buckets: with
    /// half of them empty, a Shenandoah leak waited 41 min, 23.5 with them held).
    fn push_cycle_low(&mut self, t: f64, used: f64, collected: bool) {
        match &mut self.cycle_low {
            Some(low) if collected => {
                // At its time, or at the last figure held if later: the trend
                // takes its samples in order.
                let at = self.last_low.map_or(low.0, |held| held.0.max(low.0));
                self.used.push(at, low.1);
                self.last_low = Some((t, low.1));
                *low = (t, used);
            }
            Some(low) if used < low.1 => *low = (t, used),
            Some(_) => {}
            None if collected => self.cycle_low = Some((t, used)),
            None => {}
        }
        // Cycles further apart than a bucket (Shenandoah's, 2.6 min when
        // little is allocated) leave buckets empty: the last level is held.
        let bucket = self.cfg.window / BUCKETS as f64;
        if let Some((_, v)) = self.last_low.filter(|l| t - l.0 >= bucket) {
            self.used.push(t, v);
            self.last_low = Some((t, v));
        }
    }

    /// The levels after collections in the window, and the span since the last
    /// old collection once it could close (a bucket old, a young collection in
    /// it where they come): its least figure so far is a level too. It can only
    /// come lower before it closes, so a rise read with it can only shrink.
    /// Old collections 22 min apart (generational ZGC without its proactive
    /// cycles) never closed two spans in a half window.
    fn levels_now(&self, now: f64) -> Vec<(f64, f64)> {
        let mut levels: Vec<(f64, f64)> = self.levels.iter().copied().collect();
        let bucket = self.cfg.window / BUCKETS as f64;
        let one_generation = self.collections.is_some_and(|c| c.1 == 0);
        if let Some(span) = self
            .span
            .filter(|s| (s.young || one_generation) && now - s.start >= bucket)
        {
            if levels.last().is_none_or(|l| span.low.0 - l.0 >= bucket) {
                levels.push(span.low);
            }
        }
        levels
    }

    fn add_level(&mut self, (t, v): (f64, f64)) {
        let bucket = self.cfg.window / BUCKETS as f64;
        match self.levels.back_mut() {
            Some(last) if t - last.0 < bucket => {
                if v < last.1 {
                    *last = (t, v);
                }
            }
            _ => self.levels.push_back((t, v)),
        }
        while self
            .levels
            .front()
            .is_some_and(|l| l.0 < t - self.cfg.window)
        {
            self.levels.pop_front();
        }
    }

    /// Whether the heap was read within a bucket of `now`: a tick or two without
    /// its figures (a failed read) does not lose what the heap says.
    pub fn recent(&self, now: f64) -> bool {
        self.read_at
            .is_some_and(|at| now - at < self.cfg.window / BUCKETS as f64)
    }

    /// The verdict after the latest push, at `now`.
    pub fn evaluate(&mut self, now: f64) -> HeapVerdict {
        let trend = self.used.evaluate();
        self.held = trend.suspected && (self.held || self.survives(now));
        let uncollected = self.collected_at.map(|at| now - at).filter(|&s| {
            s >= MIN_UNCOLLECTED * self.cfg.window
                && !self.held
                && trend
                    .rate_per_second
                    .is_some_and(|r| r >= self.cfg.min_rate)
        });
        let levels = self.levels_now(now);
        let surviving_rate = (levels.len() >= MIN_LEVELS).then(|| theil_sen(&levels));
        HeapVerdict {
            trend,
            suspected: self.held,
            uncollected_seconds: uncollected,
            surviving_rate,
            // Only for a leak: the levels of a heap that does not leak wander
            // (G1 leaves mostly-live regions), and a time from them means nothing.
            time_to_max_seconds: self
                .held
                .then(|| self.time_to_max(now, surviving_rate))
                .flatten(),
        }
    }

    /// Seconds until the old generation reaches its maximum at `rate`: from the
    /// live set now, the newest level carried forward at `rate` (garbage counts
    /// for nothing: a collection would free it), or the used figure if less.
    fn time_to_max(&self, now: f64, rate: Option<f64>) -> Option<f64> {
        let (rate, max) = (rate.filter(|&r| r > 0.0)?, self.max?);
        let &(t, level) = self.levels.back()?;
        let live = (level + rate * (now - t)).min(self.used_now);
        Some(((max - live) / rate).max(0.0))
    }

    /// Growth that survived collections: at least [`MIN_LEVELS`] levels after
    /// collections in the recent half window, rising at `min_rate` or more (their
    /// Theil-Sen slope) and the newest above the oldest by half of `min_growth`
    /// plus [`TOLERATED_GARBAGE`] of the committed old generation (G1 leaves
    /// regions that are mostly live uncollected: its levels wander by that much
    /// on a heap that does not leak).
    fn survives(&self, now: f64) -> bool {
        let since = now - self.cfg.window * HALF as f64 / BUCKETS as f64;
        let recent: Vec<(f64, f64)> = self
            .levels_now(now)
            .into_iter()
            .filter(|l| l.0 >= since)
            .collect();
        let (Some(first), Some(last)) = (recent.first(), recent.last()) else {
            return false;
        };
        recent.len() >= MIN_LEVELS
            && last.1 - first.1 >= self.cfg.min_growth / 2.0 + TOLERATED_GARBAGE * self.capacity
            && theil_sen(&recent) >= self.cfg.min_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    /// The thresholds users get by default.
    fn memory() -> TrendConfig {
        crate::analysis::AnalysisConfig::default().memory
    }

    /// What the heap says after `secs` of 2-s ticks of `heap(t)`.
    fn after(secs: f64, heap: impl Fn(f64) -> JvmHeap) -> HeapVerdict {
        let mut h = HeapTrend::new(memory());
        let mut t = 0.0;
        while t <= secs {
            h.push(t, &heap(t));
            t += 2.0;
        }
        h.evaluate(secs)
    }

    /// Runs `secs` of 2-s ticks of `heap(t)`; the first time the heap's verdict is
    /// given, if ever.
    fn first_verdict(secs: f64, heap: impl Fn(f64) -> JvmHeap) -> Option<f64> {
        let mut h = HeapTrend::new(memory());
        let mut t = 0.0;
        while t <= secs {
            h.push(t, &heap(t));
            if h.evaluate(t).suspected {
                return Some(t);
            }
            t += 2.0;
        }
        None
    }

    /// A heap whose old generation holds `live(t)` after each collection, every
    /// `every` seconds, and gains `garbage` bytes a second of dead objects between.
    fn collected(every: f64, garbage: f64, live: impl Fn(f64) -> f64) -> impl Fn(f64) -> JvmHeap {
        move |t| {
            let since = t % every;
            JvmHeap {
                old_used_bytes: (live(t - since) + garbage * since) as u64,
                old_capacity_bytes: 512 << 20,
                young_capacity_bytes: None,
                old_max_bytes: Some(1 << 30),
                old_collections: (t / every) as u64,
                young_collections: (t / 2.0) as u64,
                heap_mappings: 1,
                shmem_resident_bytes: None,
                max_heap_bytes: None,
                heap_share: None,
                initial_heap_bytes: None,
                collector_given: None,
                ergonomics: None,
            }
        }
    }

    #[test]
    fn a_leak_that_survives_collections_is_found() {
        let leak = collected(60.0, 20_000.0, |t| 40.0 * MIB + t / 60.0 * 2.0 * MIB);
        let at = first_verdict(3600.0, leak).expect("found");
        assert!(at < 20.0 * 60.0, "found at {at}");
    }

    /// Old collections 22 min apart (generational ZGC without its proactive
    /// cycles, recorded: `real-heap-jdk25-zgc-minors-leak-1mib`): two of them in
    /// the recent half window never close two spans in it. The level the second
    /// left counts once its span has lasted a bucket with a young collection:
    /// found a bucket or so after it, not never.
    #[test]
    fn the_level_a_collection_left_counts_before_the_next_collection() {
        let leak = collected(22.0 * 60.0, 5_000.0, |t| 40.0 * MIB + t / 60.0 * 2.0 * MIB);
        let at = first_verdict(3600.0, leak).expect("found");
        assert!((44.0 * 60.0..47.0 * 60.0).contains(&at), "found at {at}");
    }

    #[test]
    fn the_time_to_a_full_heap_is_from_the_live_set_not_the_garbage() {
        // 2 MiB/min live under 20 KB/s of garbage, collected each minute, in an
        // old generation of at most 1 GiB: at 40 min, 120 MiB live and up to
        // 1.1 MiB of garbage, so about (1024 - 120) / 2 = 452 min to go.
        let leak = collected(60.0, 20_000.0, |t| 40.0 * MIB + t / 60.0 * 2.0 * MIB);
        let v = after(2400.0, &leak);
        assert!(v.suspected, "{v:?}");
        let minutes = v.time_to_max_seconds.expect("a maximum is published") / 60.0;
        assert!((440.0..=465.0).contains(&minutes), "{minutes} min");
        // Without a verdict, no time: a live set whose levels creep up by half a
        // MiB in 40 min, far under a leak's pace.
        let steady = collected(60.0, 20_000.0, |t| (80.0 + t / 4800.0) * MIB);
        let v = after(2400.0, steady);
        assert_eq!((v.suspected, v.time_to_max_seconds), (false, None), "{v:?}");
        // Without a published maximum, no time.
        let mut h = HeapTrend::new(memory());
        h.push(
            0.0,
            &JvmHeap {
                old_max_bytes: None,
                ..leak(0.0)
            },
        );
        assert_eq!(h.evaluate(0.0).time_to_max_seconds, None);
    }

    #[test]
    fn garbage_never_collected_is_not_a_leak() {
        // 1 MiB/min promoted and dead, and no old collection: a large heap.
        let never = |t: f64| JvmHeap {
            old_used_bytes: (40.0 * MIB + t / 60.0 * MIB) as u64,
            old_capacity_bytes: 512 << 20,
            young_capacity_bytes: None,
            old_max_bytes: None,
            old_collections: 0,
            young_collections: (t / 2.0) as u64,
            heap_mappings: 1,
            shmem_resident_bytes: None,
            max_heap_bytes: None,
            heap_share: None,
            initial_heap_bytes: None,
            collector_given: None,
            ergonomics: None,
        };
        assert_eq!(first_verdict(3.0 * 3600.0, never), None);
        // And says how long it has gone uncollected while it grows.
        let v = after(1800.0, never);
        assert_eq!(v.uncollected_seconds, Some(1800.0), "{v:?}");
    }

    /// ZGC and Shenandoah: no young collections; each cycle collects the whole
    /// heap.
    fn one_generation(
        every: f64,
        garbage: f64,
        live: impl Fn(f64) -> f64,
    ) -> impl Fn(f64) -> JvmHeap {
        let heap = collected(every, garbage, live);
        move |t| JvmHeap {
            young_collections: 0,
            ..heap(t)
        }
    }

    #[test]
    fn a_heap_of_one_generation_gives_its_verdict_from_its_cycles() {
        let leak = one_generation(60.0, 20_000.0, |t| 40.0 * MIB + t / 60.0 * 2.0 * MIB);
        let at = first_verdict(3600.0, leak).expect("found");
        assert!(at < 20.0 * 60.0, "found at {at}");
        let churn = one_generation(30.0, 2.0 * MIB, |_| 80.0 * MIB);
        assert_eq!(first_verdict(3.0 * 3600.0, churn), None);
    }

    /// Shenandoah's leak as recorded: a cycle each 2.5 min, 160 MiB allocated
    /// between cycles, the live set up 1 MiB/min from 10 min. Its used figure
    /// swings too wide for the trend's tests (no verdict in the hour read on
    /// it); what each cycle leaves rises plainly.
    #[test]
    fn a_heap_of_one_generation_is_judged_on_what_its_cycles_leave() {
        let shenandoah = |live: fn(f64) -> f64| {
            let heap = one_generation(150.0, 160.0 * MIB / 150.0, live);
            move |t| JvmHeap {
                old_capacity_bytes: 256 << 20,
                young_capacity_bytes: None,
                ..heap(t)
            }
        };
        let leak = shenandoah(|t| (55.0 + (t / 60.0 - 10.0).max(0.0)) * MIB);
        let at = first_verdict(3600.0, leak).expect("found in the hour");
        // 32.5 min; 40.0 with the buckets no cycle reaches left empty.
        assert!(at < 36.0 * 60.0, "found at {:.1} min", at / 60.0);
        // The same swings over a live set that stays.
        let churn = shenandoah(|_| 55.0 * MIB);
        assert_eq!(first_verdict(3.0 * 3600.0, churn), None);
    }

    #[test]
    fn a_steady_live_set_under_a_garbage_sawtooth_is_not_a_leak() {
        // Garbage climbs 60 MiB between collections 4 min apart; what survives
        // is the same 80 MiB each time.
        let churn = collected(240.0, 60.0 * MIB / 240.0, |_| 80.0 * MIB);
        assert_eq!(first_verdict(3.0 * 3600.0, churn), None);
    }

    #[test]
    fn g1s_two_cycle_pauses_in_two_ticks_are_not_a_rising_level() {
        // A G1 sawtooth that does not leak: promoted garbage climbs from 100 to
        // 300 MiB over `period`, Remark at the top, Cleanup one tick later, and
        // the mixed collections bring it back to 100 MiB within a minute.
        for period in [720.0, 1200.0, 1680.0] {
            let heap = |t: f64| {
                let cycle = (t / period).floor();
                let into = t - cycle * period;
                let used = if into < 60.0 {
                    300.0 - 200.0 * into / 60.0 // the mixed collections
                } else {
                    100.0 + 200.0 * (into - 60.0) / (period - 60.0)
                };
                // Two pauses a cycle, the second one tick (2 s) after the first.
                let pauses = 2.0 * cycle + if into >= 2.0 { 1.0 } else { 0.0 };
                JvmHeap {
                    old_used_bytes: (used * MIB) as u64,
                    old_capacity_bytes: 512 << 20,
                    young_capacity_bytes: None,
                    old_max_bytes: None,
                    old_collections: pauses as u64,
                    young_collections: (t / 2.0) as u64,
                    heap_mappings: 1,
                    shmem_resident_bytes: None,
                    max_heap_bytes: None,
                    heap_share: None,
                    initial_heap_bytes: None,
                    collector_given: None,
                    ergonomics: None,
                }
            };
            assert_eq!(first_verdict(6.0 * 3600.0, heap), None, "period {period}");
        }
    }

    #[test]
    fn a_held_verdict_needs_no_new_collection_and_a_new_jvm_forgets() {
        let mut h = HeapTrend::new(memory());
        let leak = collected(60.0, 0.0, |t| 40.0 * MIB + t / 60.0 * 2.0 * MIB);
        let mut t = 0.0;
        while t < 1800.0 {
            h.push(t, &leak(t));
            h.evaluate(t);
            t += 2.0;
        }
        assert!(h.evaluate(t).suspected);
        // Growth goes on without a collection for 20 min: the verdict stands.
        let last = leak(t).old_collections;
        while t < 3000.0 {
            let mut heap = leak(t);
            heap.old_collections = last;
            h.push(t, &heap);
            assert!(h.evaluate(t).suspected, "at {t}");
            t += 2.0;
        }
        // A counter that goes back is another JVM: nothing of the old one is kept.
        h.push(t, &JvmHeap::default());
        assert!(!h.evaluate(t).suspected);
    }
}
