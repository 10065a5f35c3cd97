//! Start-up (disposability): from the main process' start to its first listening
//! TCP socket, and to its first access line; measured again on every restart.
//!
//! A start is measured only when Outrider saw it happen: when the first tick that
//! sees this start finds the app already listening (Outrider started after it), the
//! time to listen is unknown, not the app's age. The resolution is the tick (the
//! sampler scans connections on every tick while a new start has no listener yet).

use serde::Serialize;

/// What the last start took; seconds from the main process' start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Startup {
    /// Unix time the measured start began.
    pub started_at_unix: Option<f64>,
    pub listening_seconds: Option<f64>,
    pub first_request_seconds: Option<f64>,
    /// Seconds since the start with no listener yet, while that lasts (scans on).
    pub waiting_seconds: Option<f64>,
    /// Either measured figure is over the `slow_startup` threshold. Waiting alone
    /// is not slow: a job, a queue consumer or a worker never listens, and a
    /// server that does is judged when it does.
    pub slow: bool,
    /// The threshold, seconds.
    pub slow_after_seconds: f64,
}

impl Startup {
    /// The longer of the two figures: what a new replica takes to serve.
    pub fn seconds(&self) -> Option<f64> {
        match (self.listening_seconds, self.first_request_seconds) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One tick's figures for the start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seen {
    pub t: f64,
    /// Unix time the group's oldest process started.
    pub start_time: Option<f64>,
    /// Listening sockets at the latest scan; `None` without scans.
    pub listening: Option<u64>,
    /// Access lines attributed to the target (cumulative); `None` when unknown.
    pub requests: Option<u64>,
}

/// The start being watched.
#[derive(Debug, Clone, Default)]
pub struct StartupTracker {
    slow_after: f64,
    start: Option<f64>,
    /// Seen already listening at the first tick: its start-up is unknown.
    attached: bool,
    requests_at_start: Option<u64>,
    last: Startup,
}

/// Start times closer than this are the same start (clock-tick rounding).
const SAME_START: f64 = 0.05;

impl StartupTracker {
    pub fn new(slow_after_seconds: f64) -> Self {
        StartupTracker {
            slow_after: slow_after_seconds,
            ..Default::default()
        }
    }

    /// Feeds one tick; the start-up as known after it.
    pub fn observe(&mut self, s: &Seen) -> Startup {
        let Some(start) = s.start_time else {
            return self.last;
        };
        if self.start.is_none_or(|p| (p - start).abs() > SAME_START) {
            self.start = Some(start);
            self.attached = s.listening.is_some_and(|n| n > 0);
            self.requests_at_start = s.requests;
            self.last = Startup {
                started_at_unix: Some(start),
                slow_after_seconds: self.slow_after,
                ..Default::default()
            };
        }
        if self.attached {
            return self.last;
        }
        let age = (s.t - start).max(0.0);
        if self.last.listening_seconds.is_none() && s.listening.is_some_and(|n| n > 0) {
            self.last.listening_seconds = Some(age);
        }
        let served = match (s.requests, self.requests_at_start) {
            (Some(now), Some(then)) => now > then,
            _ => false,
        };
        if self.requests_at_start.is_none() {
            self.requests_at_start = s.requests;
        }
        if self.last.first_request_seconds.is_none() && served {
            self.last.first_request_seconds = Some(age);
        }
        self.last.waiting_seconds =
            (s.listening == Some(0) && self.last.listening_seconds.is_none()).then_some(age);
        self.last.slow = self.last.seconds().is_some_and(|x| x > self.slow_after);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(t: f64, listening: u64, requests: u64) -> Seen {
        Seen {
            t,
            start_time: Some(100.0),
            listening: Some(listening),
            requests: Some(requests),
        }
    }

    #[test]
    fn start_up_runs_to_the_first_listener_and_the_first_request() {
        let mut s = StartupTracker::new(10.0);
        assert_eq!(s.observe(&seen(100.5, 0, 7)).listening_seconds, None);
        let u = s.observe(&seen(102.0, 1, 7));
        assert_eq!(u.listening_seconds, Some(2.0));
        assert_eq!(u.first_request_seconds, None);
        let u = s.observe(&seen(102.5, 1, 8));
        assert_eq!(u.first_request_seconds, Some(2.5));
        assert!(!u.slow);
        // Later ticks keep the first figures.
        assert_eq!(s.observe(&seen(200.0, 2, 90)).listening_seconds, Some(2.0));
    }

    #[test]
    fn a_restart_is_measured_again_and_slow_past_the_threshold() {
        let mut s = StartupTracker::new(10.0);
        s.observe(&seen(100.5, 0, 0));
        s.observe(&seen(101.0, 1, 0));
        let again = |t, l| Seen {
            t,
            start_time: Some(300.0),
            listening: Some(l),
            requests: Some(5),
        };
        let u = s.observe(&again(300.2, 0));
        assert_eq!(
            (u.listening_seconds, u.started_at_unix),
            (None, Some(300.0))
        );
        // 11 s without a listener: waiting, not slow (a job never listens).
        let u = s.observe(&again(311.0, 0));
        assert_eq!((u.waiting_seconds, u.slow), (Some(11.0), false));
        let u = s.observe(&again(312.0, 1));
        assert_eq!(u.listening_seconds, Some(12.0));
        assert_eq!(u.waiting_seconds, None);
        assert!(u.slow);
    }

    #[test]
    fn an_app_already_listening_when_first_seen_is_not_measured() {
        let mut s = StartupTracker::new(10.0);
        let u = s.observe(&seen(5000.0, 1, 3));
        assert_eq!(u.listening_seconds, None);
        assert_eq!(s.observe(&seen(5001.0, 1, 4)).first_request_seconds, None);
    }
}
