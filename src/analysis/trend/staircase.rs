//! Staircases of shrinking steps: a managed heap settling toward its new size, not
//! a leak.
//!
//! G1 (and other collectors that size the heap from what is still uncommitted)
//! expands in steps: each commit a share of what is left to commit, so each step
//! smaller than the one before, with flat minutes between. Across a segment such a
//! staircase rises as steadily as a leak; the persistence tests, which compare
//! rates, see a step in each half and pass it. What tells it apart is the steps
//! themselves: a leak that comes in steps (a JVM that really leaks commits heap as
//! it fills) keeps their size, a settling heap's shrink.
//!
//! Steps are read from the eroded floors: runs of bucket-to-bucket rises above the
//! recent half window's drift by [`STEP_Z`] robust standard deviations of the rises
//! (and by the least growth that counts), two runs one step when a single floor
//! stands between them (a plateau is two floors or more; a leak's ramp that its
//! noise breaks into runs is not a staircase). A step's size is the rise from the
//! plateau before it to the plateau after it ([`PLATEAU`] floors each, their
//! medians), less the drift between them, so a leak's steady climb under its steps
//! is not counted as steps. A staircase vetoes a fresh verdict only when the window
//! holds [`MIN_STEPS`] steps or more, the steps make [`STAIRCASE_SHARE`] or more of
//! the segment's rise, and the last [`RECENT_STEPS`] shrink by [`SHRINK`] or more a
//! step (the median pairwise slope of their logarithms): a standing verdict is held
//! by its own rules, and a leak whose steps keep their size is never vetoed.

use super::{median, robust_sigma, HALF};

/// Fewest steps in the window for a staircase.
pub const MIN_STEPS: usize = 3;
/// The steps must shrink by this ratio or more a step.
pub const SHRINK: f64 = 0.95;
/// The share of a segment's rise that must be in steps.
pub const STAIRCASE_SHARE: f64 = 0.75;
/// A step is at least this many times the least growth that counts (a tenth of
/// `min_growth`), and [`STEP_Z`] standard deviations of the rises.
pub const MIN_STEP_SHARE: f64 = 3.0;
/// The steps whose sizes are compared: the most recent ones (a JVM's first steps
/// may follow a cache's fill, which is no guide to the heap's).
pub const RECENT_STEPS: usize = 4;
/// Floors either side of a step that its plateaus are read from.
pub const PLATEAU: usize = 3;
/// Robust standard deviations of the rises by which a step stands out.
pub const STEP_Z: f64 = 4.0;

/// One step of a staircase: the eroded floors rise from index `from` to `to` (the
/// first at the new level), by `size` beyond the floors' drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub from: usize,
    pub to: usize,
    pub size: f64,
}

/// The steps in a window's eroded floors `low`, oldest first; `least` is the least
/// growth that counts. A rise that begins in the first two floors is the process's
/// start, not a step.
pub fn steps(low: &[(f64, f64)], least: f64) -> Vec<Step> {
    if low.len() < 2 * PLATEAU + 1 {
        return Vec::new();
    }
    let rises: Vec<f64> = low.windows(2).map(|w| w[1].1 - w[0].1).collect();
    // The drift of the recent half window, where the steps judged are (a cache
    // that filled at the start of the window is no drift under them). The noise:
    // the lesser of the whole window's and the recent half's (a fill early in the
    // window, or a ramp late in it, makes one of them too wide).
    let recent = &rises[rises.len().saturating_sub(HALF)..];
    let drift = median(&mut recent.to_vec());
    let sigma = robust_sigma(rises.clone()).min(robust_sigma(recent.to_vec()));
    let threshold = drift + (STEP_Z * sigma).max(least);
    // Runs of steep rises, joined across a single floor between them: a plateau
    // is two floors or more (a leak's ramp, broken into runs by its noise, is not
    // a staircase).
    let mut found: Vec<Step> = Vec::new();
    for (i, &rise) in rises.iter().enumerate() {
        if rise <= threshold {
            continue;
        }
        match found.last_mut() {
            Some(s) if i <= s.to + 1 => s.to = i + 1,
            _ => found.push(Step {
                from: i,
                to: i + 1,
                size: 0.0,
            }),
        }
    }
    if found.first().is_some_and(|s| s.from < 2) {
        found.remove(0);
    }
    let smallest = (STEP_Z * sigma).max(MIN_STEP_SHARE * least);
    // Dropping a small step lengthens its neighbours' plateaus: measure again.
    loop {
        measure(&mut found, low, drift);
        let weakest = found
            .iter()
            .enumerate()
            .filter(|(_, s)| s.size < smallest)
            .min_by(|a, b| a.1.size.total_cmp(&b.1.size));
        match weakest {
            Some((i, _)) => {
                found.remove(i);
            }
            None => return found,
        }
    }
}

/// Sizes each step from the medians of up to [`PLATEAU`] floors before and after
/// it (never reaching into the next step's rise), less `drift` a bucket between
/// the plateaus' centres.
fn measure(found: &mut [Step], low: &[(f64, f64)], drift: f64) {
    let bounds: Vec<(usize, usize)> = found.iter().map(|s| (s.from, s.to)).collect();
    for (i, step) in found.iter_mut().enumerate() {
        let floor = if i == 0 { 0 } else { bounds[i - 1].1 };
        let ceiling = bounds.get(i + 1).map_or(low.len() - 1, |b| b.0);
        let before = step.from.saturating_sub(PLATEAU - 1).max(floor)..=step.from;
        let after = step.to..=(step.to + PLATEAU - 1).min(ceiling);
        let centre = |r: &std::ops::RangeInclusive<usize>| (r.start() + r.end()) as f64 / 2.0;
        let level = |r: &std::ops::RangeInclusive<usize>| {
            median(&mut low[r.clone()].iter().map(|p| p.1).collect::<Vec<_>>())
        };
        step.size = level(&after) - level(&before) - drift * (centre(&after) - centre(&before));
    }
}

/// Whether the segment of `low` from index `start` climbs by a staircase of
/// shrinking steps (`steps` of the whole window): see the module's description.
pub fn shrinking(steps: &[Step], low: &[(f64, f64)], start: usize) -> bool {
    if steps.len() < MIN_STEPS {
        return false;
    }
    let end = low.len();
    let level =
        |from: usize, to: usize| median(&mut low[from..to].iter().map(|p| p.1).collect::<Vec<_>>());
    let rise = level(end.saturating_sub(PLATEAU).max(start), end)
        - level(start, (start + PLATEAU).min(end));
    // A step that began before the segment counts for the share of its rise
    // inside it.
    let inside = |s: &Step| {
        let whole = low[s.to].1 - low[s.from].1;
        let after = low[s.to].1 - low[s.from.max(start)].1;
        (after / whole).clamp(0.0, 1.0)
    };
    let stepped: f64 = steps
        .iter()
        .filter(|s| s.to > start)
        .map(|s| s.size * inside(s))
        .sum();
    if rise <= 0.0 || stepped < STAIRCASE_SHARE * rise {
        return false;
    }
    // The median of the pairwise slopes of ln(size) against the step's order, the
    // middle two averaged (four steps give six slopes: the upper one alone, as
    // `theil_sen` takes, leans toward steps that keep their size).
    let recent = &steps[steps.len().saturating_sub(RECENT_STEPS)..];
    let mut slopes = Vec::with_capacity(RECENT_STEPS * RECENT_STEPS / 2);
    for (i, a) in recent.iter().enumerate() {
        for (j, b) in recent.iter().enumerate().skip(i + 1) {
            slopes.push((b.size.ln() - a.size.ln()) / (j - i) as f64);
        }
    }
    slopes.sort_by(f64::total_cmp);
    let mid = slopes.len() / 2;
    let pace = if slopes.len() % 2 == 0 {
        (slopes[mid - 1] + slopes[mid]) / 2.0
    } else {
        slopes[mid]
    };
    pace < SHRINK.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floors a minute apart: `base` with steps of `sizes` every `spacing` buckets
    /// from bucket 5, a drift of `drift` a bucket and a small deterministic jitter.
    fn floors(sizes: &[f64], spacing: usize, drift: f64, n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let stepped: f64 = sizes
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| i >= 5 + k * spacing)
                    .map(|(_, s)| s)
                    .sum();
                let jitter = [0.0, 0.1, -0.1, 0.05][i % 4];
                (i as f64 * 60.0, 100.0 + stepped + drift * i as f64 + jitter)
            })
            .collect()
    }

    #[test]
    fn finds_and_sizes_steps() {
        let low = floors(&[20.0, 16.0, 12.8, 10.2], 8, 0.0, 40);
        let found = steps(&low, 1.0);
        let sizes: Vec<f64> = found.iter().map(|s| s.size).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        for (got, want) in sizes.iter().zip([20.0, 16.0, 12.8, 10.2]) {
            assert!((got - want).abs() < 0.3, "{sizes:?}");
        }
        assert_eq!(found[0].from, 4);
        assert!(shrinking(&found, &low, 0));
    }

    #[test]
    fn steps_that_keep_their_size_are_not_a_settling_heap() {
        let low = floors(&[10.0, 10.0, 10.0, 10.0], 8, 0.0, 40);
        let found = steps(&low, 1.0);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(!shrinking(&found, &low, 0));
    }

    #[test]
    fn a_steady_climb_has_no_steps_and_its_drift_is_not_counted() {
        let ramp = floors(&[], 8, 1.0, 40);
        assert!(steps(&ramp, 1.0).is_empty());
        // Shrinking steps over a climb as steep: sized without the climb, and
        // under three quarters of the rise, so no veto.
        let low = floors(&[8.0, 6.0, 4.5], 8, 1.0, 40);
        let found = steps(&low, 1.0);
        for (s, want) in found.iter().zip([8.0, 6.0, 4.5]) {
            assert!((s.size - want).abs() < 1.0, "{found:?}");
        }
        assert!(!shrinking(&found, &low, 0));
    }

    /// A 3 MiB/min leak after a flat hour, its rises as recorded (a replay of
    /// `leak-3mib-after-hour` in `scripts/leak_stress.py`): two dips break the
    /// ramp into three runs, which are one step, not a staircase.
    #[test]
    fn a_ramp_broken_by_its_noise_is_one_step() {
        let rises = [
            -0.4, 0.0, 0.0, 0.5, 0.0, 0.6, 0.7, -1.1, -0.3, 0.0, 0.0, 0.3, 0.6, 0.0, 0.0, 0.0,
            -0.5, 0.0, 0.0, 0.4, 0.0, -0.9, 0.0, 0.0, 0.5, -0.2, 0.0, 0.0, 0.4, -0.1, -0.4, -0.7,
            0.0, 0.0, 0.5, 0.0, 0.0, 1.3, -0.5, 0.0, -0.2, -0.6, 0.0, 0.0, 0.5, 0.0, 0.0, 0.1, 0.0,
            3.3, 3.1, 1.7, 4.0, 2.6, 3.6, 3.4, 2.9, 3.5, 1.1, 4.5,
        ];
        let mut low = vec![(0.0, 300.0)];
        for (i, r) in rises.iter().enumerate() {
            low.push(((i + 1) as f64 * 60.0, low[i].1 + r));
        }
        let found = steps(&low, 1.0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].from, found[0].to), (49, 60));
        assert!(!shrinking(&found, &low, 30));
    }

    /// G1 steps after a cache filled (the rises of a replay of
    /// `g1-steps-8x420s-r0.85-cache136` in `scripts/leak_stress.py`, 53 min in):
    /// the fill's rises in the first 16 minutes are no drift under the steps and
    /// not their noise, so the last step, 4.9 + 2.3 MiB, still stands out, and
    /// the half window from minute 23 is a settling heap.
    #[test]
    fn steps_after_a_cache_filled_are_read_against_the_recent_half() {
        let rises = [
            0.0, 31.5, 23.1, 19.6, 13.1, 11.7, 7.9, 7.7, 4.6, 5.1, 1.5, 3.1, 2.4, 0.4, 1.9, 0.9,
            17.3, 0.0, 0.8, -0.1, 0.0, 0.0, 13.8, 1.6, 0.1, -1.0, 0.0, 0.0, 1.4, 12.0, 0.0, 0.0,
            0.7, 0.0, 0.5, 1.5, 10.0, -0.1, -0.4, 0.0, 0.0, 0.6, 0.0, 0.8, 7.4, 0.0, 0.0, 1.1, 0.5,
            0.0, 4.9, 2.3,
        ];
        let mut low = vec![(0.0, 180.0)];
        for (i, r) in rises.iter().enumerate() {
            low.push(((i + 1) as f64 * 60.0, low[i].1 + r));
        }
        let found = steps(&low, 1.0);
        assert_eq!(found.last().map(|s| s.from), Some(50), "{found:?}");
        assert!(shrinking(&found, &low, 23), "{found:?}");
    }

    #[test]
    fn small_rises_and_the_start_are_not_steps() {
        // Steps of 2 under the least step (3), and a rise at bucket 1 (the start).
        let mut low = floors(&[2.0, 2.0, 2.0], 8, 0.0, 40);
        for p in &mut low[2..] {
            p.1 += 30.0;
        }
        assert!(steps(&low, 1.0).is_empty(), "{:?}", steps(&low, 1.0));
        assert!(!shrinking(&[], &low, 0));
    }
}
