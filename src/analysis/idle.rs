//! Could it scale to zero? Minute by minute over the sizing window: idle when no
//! request came (access lines attributed to the target), or, for a target without
//! access lines, when it used under 1% of a core. The share of time idle, the
//! longest idle stretches, and a verdict: a candidate when at least half the time
//! is spent in idle stretches long enough to matter ([`LONG_STRETCH`]).
//!
//! Minutes are cut from the first sample (as [`super::autoscale`]'s hours) and kept
//! as two bits each (idle by requests, idle by CPU): a week's window is 2.5 KiB.

use std::collections::VecDeque;

use serde::Serialize;

use super::autoscale::MIN_DATA;
use super::minutes::{CpuMinute, MinuteClock, MINUTE};

/// Under this many cores a minute without access lines is idle.
pub const IDLE_CORES: f64 = 0.01;
/// An idle stretch this long saves something: KEDA's default cooldown (300 s)
/// is still paid at its start, and a cold start at its end.
pub const LONG_STRETCH: f64 = 30.0 * MINUTE;
/// A candidate from this share of time in long idle stretches.
pub const MIN_IDLE_SHARE: f64 = 0.5;
/// Longest stretches reported.
const STRETCHES: usize = 3;

/// What a minute was judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Access lines attributed to the target: idle = no request.
    Requests,
    /// No access line seen: idle = under [`IDLE_CORES`].
    #[default]
    Cpu,
}

/// `candidate | not_a_candidate | unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Candidate,
    NotACandidate,
    #[default]
    Unknown,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Candidate, Verdict::NotACandidate, Verdict::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Candidate => "candidate",
            Verdict::NotACandidate => "not_a_candidate",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Why (the words are `words::cost`'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    #[default]
    NeedsMoreData,
    /// Idle under half the time.
    Busy,
    /// Idle enough, but in stretches too short to switch off for.
    ShortStretches,
    /// At least half the time in long idle stretches.
    LongIdleStretches,
}

/// One idle stretch: where it starts (seconds after the first sample) and how long.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stretch {
    pub start_offset_seconds: f64,
    pub seconds: f64,
}

/// The scale-to-zero verdict of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScaleToZero {
    pub verdict: Verdict,
    pub reason: Reason,
    pub basis: Basis,
    pub data_seconds: f64,
    /// Seconds until a verdict; `None` once there is one.
    pub ready_in_seconds: Option<f64>,
    /// Share of the window's minutes that were idle.
    pub idle_share: Option<f64>,
    /// Share of the window's minutes in idle stretches of at least [`LONG_STRETCH`].
    pub long_idle_share: Option<f64>,
    /// The longest idle stretches, longest first.
    pub longest_idle: Vec<Stretch>,
}

/// Idle minutes over the window.
#[derive(Debug, Clone)]
pub struct Idle {
    window_minutes: i64,
    clock: MinuteClock,
    /// The minute being filled, and the request count at its start.
    minute: CpuMinute,
    minute_requests: Option<f64>,
    /// The latest cumulative request count.
    requests: Option<f64>,
    /// An access line was seen: requests, not CPU, decide.
    saw_requests: bool,
    /// Two bits per finished minute (1: idle by requests, by CPU); bit 0 of word 0
    /// is minute `base`.
    bits: VecDeque<(u64, u64)>,
    base: i64,
    /// Finished minutes so far (`base + len` is the next one).
    len: i64,
    verdict: ScaleToZero,
}

impl Idle {
    pub fn new(window: f64) -> Self {
        Idle {
            window_minutes: (window / MINUTE).ceil().max(1.0) as i64,
            clock: MinuteClock::default(),
            minute: CpuMinute::default(),
            minute_requests: None,
            requests: None,
            saw_requests: false,
            bits: VecDeque::new(),
            base: 0,
            len: 0,
            verdict: ScaleToZero::default(),
        }
    }

    /// Bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.bits.capacity() * 16
            + self.verdict.longest_idle.capacity() * std::mem::size_of::<Stretch>()
    }

    /// One tick: `cores` over the `dt` seconds ending at `t`, and the cumulative
    /// access lines attributed to the target (`None`: not known).
    pub fn push(&mut self, t: f64, dt: f64, cores: Option<f64>, requests: Option<f64>) {
        let Some(minute) = self.clock.minute(t, dt) else {
            return;
        };
        if minute != self.minute.index {
            self.close_minute(minute);
        }
        self.minute.add(cores, dt);
        if let Some(r) = requests {
            self.saw_requests |= r > 0.0;
            if self.minute_requests.is_none() {
                // The first count of the minute: the previous tick's, if any.
                self.minute_requests = Some(self.requests.unwrap_or(r));
            }
            self.requests = Some(r);
        }
        self.verdict.data_seconds = self.clock.data_seconds();
    }

    fn close_minute(&mut self, next: i64) {
        let by_requests = match (self.minute_requests, self.requests) {
            (Some(a), Some(b)) => Some(b <= a),
            _ => None,
        };
        let by_cpu = self.minute.mean_cores().map(|c| c < IDLE_CORES);
        if let Some(either) = by_requests.or(by_cpu) {
            self.set(by_requests.unwrap_or(either), by_cpu.unwrap_or(either));
        }
        self.minute = CpuMinute::new(next);
        self.minute_requests = self.requests;
        self.verdict = self.judge();
    }

    /// Appends the next minute's bits (idle by requests, idle by CPU), dropping
    /// whole words out of the window.
    fn set(&mut self, by_requests: bool, by_cpu: bool) {
        let (word, bit) = ((self.len / 64) as usize, self.len % 64);
        if word == self.bits.len() {
            self.bits.push_back((0, 0));
        }
        self.bits[word].0 |= (by_requests as u64) << bit;
        self.bits[word].1 |= (by_cpu as u64) << bit;
        self.len += 1;
        while self.len - 64 >= self.window_minutes {
            self.bits.pop_front();
            self.base += 64;
            self.len -= 64;
        }
    }

    /// Whether minute `i` (from `base`) was idle, by requests once any was seen.
    fn idle_at(&self, i: i64) -> bool {
        let (requests, cpu) = self.bits[(i / 64) as usize];
        let word = if self.saw_requests { requests } else { cpu };
        word >> (i % 64) & 1 == 1
    }

    /// The verdict as of the last finished minute.
    pub fn verdict(&self) -> ScaleToZero {
        let mut v = self.verdict.clone();
        // The basis as of now: an access line read in the first minute already
        // means requests decide (the verdict is judged at each minute's end).
        if self.saw_requests {
            v.basis = Basis::Requests;
        }
        v.data_seconds = self.clock.data_seconds();
        v.ready_in_seconds = (v.data_seconds < MIN_DATA).then_some(MIN_DATA - v.data_seconds);
        v
    }

    fn judge(&self) -> ScaleToZero {
        let mut v = ScaleToZero {
            basis: if self.saw_requests {
                Basis::Requests
            } else {
                Basis::Cpu
            },
            ..Default::default()
        };
        let from = (self.len - self.window_minutes).max(0);
        let total = self.len - from;
        if total == 0 {
            return v;
        }
        let (mut idle, mut long, mut run) = (0i64, 0i64, 0i64);
        let mut stretches: Vec<Stretch> = Vec::new();
        for i in from..=self.len {
            if i < self.len && self.idle_at(i) {
                idle += 1;
                run += 1;
                continue;
            }
            if run > 0 {
                if run as f64 * MINUTE >= LONG_STRETCH {
                    long += run;
                }
                stretches.push(Stretch {
                    start_offset_seconds: (self.base + i - run) as f64 * MINUTE,
                    seconds: run as f64 * MINUTE,
                });
                stretches.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
                stretches.truncate(STRETCHES);
            }
            run = 0;
        }
        v.idle_share = Some(idle as f64 / total as f64);
        v.long_idle_share = Some(long as f64 / total as f64);
        v.longest_idle = stretches;
        let data = self.clock.data_seconds();
        (v.verdict, v.reason) = if data < MIN_DATA {
            (Verdict::Unknown, Reason::NeedsMoreData)
        } else if idle as f64 / (total as f64) < MIN_IDLE_SHARE {
            (Verdict::NotACandidate, Reason::Busy)
        } else if (long as f64) / (total as f64) < MIN_IDLE_SHARE {
            (Verdict::NotACandidate, Reason::ShortStretches)
        } else {
            (Verdict::Candidate, Reason::LongIdleStretches)
        };
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minutes of `f(minute) -> (cores, requests this minute)`, one tick a minute.
    fn run(minutes: i64, f: impl Fn(i64) -> (f64, Option<f64>)) -> ScaleToZero {
        let mut idle = Idle::new(86400.0);
        let mut total = 0.0;
        idle.push(0.0, 0.0, None, Some(0.0));
        for m in 1..=minutes {
            let (cores, reqs) = f(m - 1);
            total += reqs.unwrap_or(0.0);
            idle.push(m as f64 * 60.0, 60.0, Some(cores), reqs.map(|_| total));
        }
        idle.verdict()
    }

    /// 24 h: busy from 08:00 to 15:12 (432 minutes, 30%), idle the rest in two
    /// stretches, 480 min before and 528 after: idle share 1008/1440 = 0.7, all of
    /// it in long stretches → a candidate. The last minute is still being filled:
    /// 1439 minutes judged, 1007 idle.
    #[test]
    fn idle_most_of_the_day_in_long_stretches_is_a_candidate() {
        let v = run(1440, |m| {
            let busy = (480..912).contains(&m);
            (0.2, Some(if busy { 5.0 } else { 0.0 }))
        });
        assert_eq!(v.verdict, Verdict::Candidate, "{v:?}");
        assert_eq!(v.basis, Basis::Requests);
        assert!(
            (v.idle_share.unwrap() - 1007.0 / 1439.0).abs() < 1e-9,
            "{v:?}"
        );
        assert_eq!(v.longest_idle[0].seconds, 527.0 * 60.0);
        assert_eq!(v.longest_idle[0].start_offset_seconds, 912.0 * 60.0);
        assert_eq!(v.longest_idle[1].seconds, 480.0 * 60.0);
        assert_eq!(v.longest_idle[1].start_offset_seconds, 0.0);
    }

    /// Idle every other 10 minutes: half the time, but in 10-minute stretches.
    #[test]
    fn short_gaps_are_not_worth_switching_off_for() {
        let v = run(1440, |m| {
            (0.2, Some(if (m / 10) % 2 == 0 { 0.0 } else { 3.0 }))
        });
        assert_eq!(v.verdict, Verdict::NotACandidate);
        assert_eq!(v.reason, Reason::ShortStretches, "{v:?}");
        assert_eq!(v.long_idle_share, Some(0.0));
    }

    /// Without access lines the CPU decides: 0.005 cores is idle, 0.05 is not.
    #[test]
    fn without_access_lines_the_cpu_decides() {
        let v = run(1440, |m| (if m < 300 { 0.005 } else { 0.05 }, None));
        assert_eq!(v.basis, Basis::Cpu);
        assert_eq!(
            (v.verdict, v.reason),
            (Verdict::NotACandidate, Reason::Busy)
        );
        assert!((v.idle_share.unwrap() - 300.0 / 1439.0).abs() < 1e-9);
        let early = run(60, |_| (0.0, None));
        assert_eq!(early.verdict, Verdict::Unknown);
        assert_eq!(early.ready_in_seconds, Some(MIN_DATA - 3600.0));
    }

    /// Within the first minute, an access line already makes requests the basis
    /// (the status said "no access lines" for a minute while it showed requests).
    #[test]
    fn the_basis_is_requests_from_the_first_access_line() {
        let mut idle = Idle::new(86400.0);
        idle.push(0.0, 0.0, Some(0.2), Some(0.0));
        assert_eq!(idle.verdict().basis, Basis::Cpu);
        idle.push(10.0, 10.0, Some(0.2), Some(3.0));
        let v = idle.verdict();
        assert_eq!((v.basis, v.idle_share), (Basis::Requests, None));
    }

    /// A week's window stays a few KiB of bits.
    #[test]
    fn the_window_bounds_the_bits() {
        let mut idle = Idle::new(7.0 * 86400.0);
        for m in 0..(20 * 1440) {
            idle.push(m as f64 * 60.0, 60.0, Some(0.0), None);
        }
        assert!(idle.bits.len() <= 7 * 1440 / 64 + 2, "{}", idle.bits.len());
        assert!(idle.footprint() < 8192, "{}", idle.footprint());
        assert_eq!(idle.verdict().idle_share, Some(1.0));
    }
}
