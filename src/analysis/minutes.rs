//! Minutes cut from the first sample, never from the clock: the same ticks shifted
//! in time fall into the same minutes (issue 14: a trace starting 37 min past the
//! hour gives the same hourly figures). Shared by [`autoscale`](super::autoscale)
//! and [`idle`](super::idle), which judge minute by minute.

/// Seconds in a minute.
pub const MINUTE: f64 = 60.0;

/// Which minute a tick falls in, counted from the first tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinuteClock {
    first_t: Option<f64>,
    last_t: f64,
}

impl MinuteClock {
    /// The minute since the first tick that the tick of `dt` seconds ending at `t`
    /// falls in, by its middle (a tick covers the seconds before `t`); `None` for a
    /// tick older than the last one, which is ignored.
    pub fn minute(&mut self, t: f64, dt: f64) -> Option<i64> {
        let first = *self.first_t.get_or_insert(t);
        if t < self.last_t {
            return None;
        }
        self.last_t = t;
        Some(((t - dt.max(0.0) / 2.0 - first) / MINUTE).floor().max(0.0) as i64)
    }

    /// Seconds from the first tick to the last.
    pub fn data_seconds(&self) -> f64 {
        self.first_t.map_or(0.0, |f| self.last_t - f)
    }
}

/// The CPU used in the minute being filled.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuMinute {
    /// Its index since the first tick.
    pub index: i64,
    /// CPU seconds, and the seconds of ticks they were measured over.
    pub cpu_seconds: f64,
    pub span: f64,
}

impl CpuMinute {
    pub fn new(index: i64) -> Self {
        CpuMinute {
            index,
            ..Self::default()
        }
    }

    /// Adds `cores` used over `dt` seconds; a reading that is missing, negative or
    /// not finite, or a tick of no length, adds nothing. Whether it was added.
    pub fn add(&mut self, cores: Option<f64>, dt: f64) -> Option<f64> {
        let c = cores.filter(|c| c.is_finite() && *c >= 0.0 && dt > 0.0)?;
        self.cpu_seconds += c * dt;
        self.span += dt;
        Some(c * dt)
    }

    /// Mean cores over the minute's ticks; `None` if none had a reading.
    pub fn mean_cores(&self) -> Option<f64> {
        (self.span > 0.0).then(|| self.cpu_seconds / self.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_start_at_the_first_tick_and_old_ticks_are_ignored() {
        let mut clock = MinuteClock::default();
        // The first tick 37 s past a clock minute starts minute 0.
        assert_eq!(clock.minute(1_000_037.0, 1.0), Some(0));
        assert_eq!(clock.minute(1_000_096.0, 1.0), Some(0));
        // By its middle: a 10 s tick ending 64 s after the first lies in minute 0.
        assert_eq!(clock.minute(1_000_101.0, 10.0), Some(0));
        assert_eq!(clock.minute(1_000_102.0, 1.0), Some(1));
        assert_eq!(clock.minute(1_000_050.0, 1.0), None);
        assert_eq!(clock.data_seconds(), 65.0);
    }

    #[test]
    fn a_cpu_minute_averages_what_it_was_given() {
        let mut m = CpuMinute::new(3);
        assert_eq!(m.mean_cores(), None);
        assert_eq!(m.add(Some(0.5), 1.0), Some(0.5));
        assert_eq!(m.add(Some(1.5), 3.0), Some(4.5));
        for bad in [None, Some(-1.0), Some(f64::NAN)] {
            assert_eq!(m.add(bad, 1.0), None);
        }
        assert_eq!(m.add(Some(1.0), 0.0), None);
        assert_eq!((m.index, m.mean_cores()), (3, Some(1.25)));
    }
}
