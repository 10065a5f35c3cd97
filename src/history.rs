//! A short, bounded history per target for the status page's charts.
//!
//! Each target keeps at most [`POINTS`] points of [`SLOT_SECONDS`] each (one hour):
//! CPU cores (mean over the slot), resident memory and open fds (maximum over the
//! slot), and log lines per minute on all streams. Older points fall off the ring,
//! so memory stays a few KiB per target however long Outrider runs.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::sample::TargetSample;

/// Points kept per target.
pub const POINTS: usize = 240;
/// Seconds each point covers: POINTS x SLOT_SECONDS = one hour.
pub const SLOT_SECONDS: f64 = 15.0;

/// One slot of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Point {
    pub t: f64,
    pub cpu_cores: f64,
    pub rss_bytes: f64,
    pub open_fds: f64,
    pub log_lines_per_minute: f64,
}

#[derive(Debug, Default)]
struct TargetHistory {
    points: VecDeque<Point>,
    /// The slot being filled: sums for means, maxima for peaks.
    slot: Option<(f64, Point, f64)>,
    prev_cpu: Option<(f64, f64)>,
}

#[derive(Debug, Default)]
pub struct History {
    targets: HashMap<String, TargetHistory>,
    prev_lines: Option<(f64, u64)>,
}

impl History {
    /// Folds in one tick's targets, sampled at unix time `t`; `log_lines` is the
    /// total of all streams so far.
    pub fn record<'a>(
        &mut self,
        t: f64,
        targets: impl IntoIterator<Item = &'a TargetSample>,
        log_lines: u64,
    ) {
        let lines_per_minute = match self.prev_lines {
            Some((pt, pl)) if t > pt => (log_lines.saturating_sub(pl)) as f64 / (t - pt) * 60.0,
            _ => 0.0,
        };
        self.prev_lines = Some((t, log_lines));
        for target in targets.into_iter().filter(|x| x.up) {
            let h = self.targets.entry(target.name.clone()).or_default();
            let cpu_total = target.counters.cpu_user_seconds + target.counters.cpu_system_seconds;
            let cores = match h.prev_cpu {
                Some((pt, pc)) if t > pt && cpu_total >= pc => (cpu_total - pc) / (t - pt),
                _ => 0.0,
            };
            h.prev_cpu = Some((t, cpu_total));
            let slot_start = (t / SLOT_SECONDS).floor() * SLOT_SECONDS;
            let sample = Point {
                t: slot_start,
                cpu_cores: cores,
                rss_bytes: target.resident_memory_bytes as f64,
                open_fds: target.open_fds as f64,
                log_lines_per_minute: lines_per_minute,
            };
            match &mut h.slot {
                Some((start, acc, n)) if *start == slot_start => {
                    acc.cpu_cores += sample.cpu_cores;
                    acc.log_lines_per_minute += sample.log_lines_per_minute;
                    acc.rss_bytes = acc.rss_bytes.max(sample.rss_bytes);
                    acc.open_fds = acc.open_fds.max(sample.open_fds);
                    *n += 1.0;
                }
                _ => {
                    if let Some((_, acc, n)) = h.slot.take() {
                        h.points.push_back(finish(acc, n));
                        while h.points.len() > POINTS {
                            h.points.pop_front();
                        }
                    }
                    h.slot = Some((slot_start, sample, 1.0));
                }
            }
        }
    }

    /// The points of a target, oldest first, the slot in progress last.
    pub fn points(&self, target: &str) -> Vec<Point> {
        let Some(h) = self.targets.get(target) else {
            return Vec::new();
        };
        let mut out: Vec<Point> = h.points.iter().copied().collect();
        if let Some((_, acc, n)) = h.slot {
            out.push(finish(acc, n));
        }
        out
    }
}

fn finish(mut acc: Point, n: f64) -> Point {
    acc.cpu_cores /= n;
    acc.log_lines_per_minute /= n;
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::CountersView;

    fn app(cpu: f64, rss: u64) -> TargetSample {
        TargetSample {
            name: "app".into(),
            up: true,
            processes: 1,
            main_pid: Some(1),
            counters: CountersView {
                cpu_user_seconds: cpu,
                ..Default::default()
            },
            resident_memory_bytes: rss,
            open_fds: 3,
            threads: 1,
            ..TargetSample::default()
        }
    }

    #[test]
    fn slots_average_cpu_keep_peaks_and_stay_bounded() {
        let mut h = History::default();
        // Half a core, memory peaking at 200 within the first slot.
        h.record(0.0, [&app(0.0, 100)], 0);
        h.record(5.0, [&app(2.5, 200)], 60);
        h.record(10.0, [&app(5.0, 150)], 120);
        let p = h.points("app");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].rss_bytes, 200.0);
        assert!(
            (p[0].cpu_cores - 1.0 / 3.0).abs() < 1e-9,
            "{}",
            p[0].cpu_cores
        ); // (0 + .5 + .5) / 3
        for i in 3..5000 {
            h.record(i as f64 * 5.0, [&app(i as f64 * 2.5, 100)], 0);
        }
        assert_eq!(h.points("app").len(), POINTS + 1);
        assert!(h.points("nope").is_empty());
    }
}
