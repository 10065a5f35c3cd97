//! Where a request's time goes, how long the app takes to start and to stop, in
//! words with their consequence: what more CPU, more workers or a faster start-up
//! would change.

use std::time::Duration;

use super::Line;
use crate::analysis::latency::millis;
use crate::analysis::requests::{Bound, OneCore, TimePerRequest, WhyUnknown, MIN_REQUESTS};
use crate::analysis::startup::Startup;
use crate::analysis::Verdicts;
use crate::wrap::{ExitedBy, Shutdown};

/// The request-time and start-up lines of a target, when there is something to say.
pub fn lines(v: &Verdicts) -> Vec<Line> {
    let mut out = Vec::new();
    if let Some(r) = &v.requests {
        out.push(time_per_request(&r.time_per_request));
        out.extend(r.one_core.as_ref().map(one_core));
    }
    out.extend(startup(&v.startup));
    out
}

/// The attention phrases: `web: requests starved of CPU`, `web: slow start-up`.
pub fn attention(name: &str, v: &Verdicts) -> Vec<String> {
    let mut out = Vec::new();
    if v.requests
        .as_ref()
        .is_some_and(|r| r.time_per_request.starved)
    {
        out.push(format!("{name}: requests starved of CPU"));
    }
    if v.requests.as_ref().is_some_and(|r| r.one_core.is_some()) {
        out.push(format!("{name}: threads held to one core"));
    }
    if v.startup.slow {
        out.push(format!("{name}: slow start-up"));
    }
    out
}

fn percent(x: Option<f64>) -> String {
    format!("{:.0}%", x.unwrap_or(0.0) * 100.0)
}

/// A configured threshold as it was most likely written: `10 s`, `1.5 s`, `250 ms`.
fn setting(seconds: f64) -> String {
    let s = millis(seconds);
    match s.strip_suffix(" s") {
        Some(n) if n.contains('.') => {
            format!("{} s", n.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// `500m`, `2 cores`.
fn limit(cores: f64) -> String {
    super::cost::cores(cores)
}

/// `Request time: I/O-bound: 94% of a request's 180 ms is spent waiting (database,
/// APIs, disk). More CPU will not make it faster; more workers will carry more
/// load.`
pub fn time_per_request(t: &TimePerRequest) -> Line {
    let mean = millis(t.mean_seconds.unwrap_or(0.0));
    let waits = match t.likely_waits.as_slice() {
        [] => "database, APIs, disk".to_string(),
        names => format!(
            "likely on {}, which it holds connections to",
            names.join(", ")
        ),
    };
    let text = match t.bound {
        Bound::Io => format!(
            "I/O-bound: {} of a request's {mean} is spent waiting ({waits}). More CPU will \
             not make it faster; more workers will carry more load",
            percent(t.share(t.other_seconds))
        ),
        Bound::Cpu if t.starved => format!(
            "CPU-bound and starved: {} of the time waiting for a CPU; {}",
            percent(t.share(t.cpu_wait_seconds)),
            match t.cpu_limit_cores {
                Some(c) => format!(
                    "the {} limit is the bottleneck. A higher limit will make requests faster",
                    limit(c)
                ),
                // The CPU verdict says which of the two applies (a request
                // met, or none or one used up): the words must not promise more.
                None => "the machine's CPUs are busy with other work. Requests will be \
                         faster on a less busy node, or with a larger CPU request where it \
                         uses all of its own"
                    .into(),
            }
        ),
        Bound::Cpu => format!(
            "CPU-bound: {} of a request's {mean} is on a CPU. Faster code makes it faster; \
             more workers help only while cores are free",
            percent(t.share(t.on_cpu_seconds))
        ),
        Bound::Mixed => format!(
            "mixed: of a request's {mean}, {} on a CPU, {} waiting for one, {} waiting on \
             other things ({waits}). More CPU would shorten the first two parts; more \
             workers would carry more load through the last",
            percent(t.share(t.on_cpu_seconds)),
            percent(t.share(t.cpu_wait_seconds)),
            percent(t.share(t.other_seconds))
        ),
        Bound::Unknown => format!("not judged — {}", why_unknown(t)),
    };
    Line {
        text: format!("Request time: {text}"),
        attention: t.starved,
    }
}

/// `Threads: 8 threads, but never more than 1.02 cores (0.92 on average) of the 2
/// cores allowed, with CPUs to spare: …`.
pub fn one_core(o: &OneCore) -> Line {
    Line {
        text: format!(
            "Threads: {}, but never more than {:.2} cores ({:.2} on average) of the {} \
             allowed, with CPUs to spare: one thread runs at a time (CPython's GIL, or a \
             single event loop). More threads or more CPU will not help; more processes \
             (workers) will",
            super::count(o.threads, "thread"),
            o.peak_cores,
            o.mean_cores,
            limit(o.allowed_cores)
        ),
        attention: true,
    }
}

fn why_unknown(t: &TimePerRequest) -> String {
    match t.why_unknown {
        Some(WhyUnknown::TooFewRequests) => format!(
            "{} with a duration in the last {}, it needs {MIN_REQUESTS}",
            super::count(t.requests, "request"),
            crate::units::spoken(t.window_seconds)
        ),
        Some(WhyUnknown::NoCpuData) => "no CPU figures for the app".into(),
        Some(WhyUnknown::NotAttributed) => {
            "several targets are up and no log stream is named after this one".into()
        }
        None => "not enough data".into(),
    }
}

/// `Start-up: listening 2.00 s after the start, first request after 2.50 s`, and
/// what a slow one costs; `None` when the last start was not measured.
pub fn startup(s: &Startup) -> Option<Line> {
    let mut parts = Vec::new();
    if let Some(l) = s.listening_seconds {
        parts.push(format!("listening {} after the start", millis(l)));
    }
    if let Some(f) = s.first_request_seconds {
        parts.push(format!("first request after {}", millis(f)));
    }
    if parts.is_empty() {
        // Past the threshold with no listener: said, not judged (a job, a queue
        // consumer or a worker never listens).
        let waiting = s.waiting_seconds.filter(|w| *w > s.slow_after_seconds)?;
        parts.push(format!(
            "no listening socket {} after the start (a server is judged when it listens; a job or worker never does)",
            // A figure that keeps growing: spoken (80.01 s read as `1.3 min`).
            crate::units::spoken(waiting)
        ));
    }
    let mut text = format!("Start-up: {}", parts.join(", "));
    if s.slow {
        text.push_str(&format!(
            " — slow (over {}): a new replica serves that late, so autoscaling lags \
             behind a rise in load, and a scale from zero makes its first request wait \
             as long (a cold start)",
            setting(s.slow_after_seconds)
        ));
    }
    Some(Line {
        text,
        attention: s.slow,
    })
}

/// The figure the scale-to-zero verdict gives its cold start: ` of 2.50 s (the
/// measured start-up)`; empty when not measured.
pub fn cold_start(s: &Startup) -> String {
    s.seconds()
        .map(|x| format!(" of {} (the measured start-up)", millis(x)))
        .unwrap_or_default()
}

/// The run's last word on the app's shutdown, and whether it needs attention (slow,
/// or killed).
pub fn shutdown(s: &Shutdown, slow_after: Duration, kill_after: Duration) -> (String, bool) {
    match s.exited_by {
        ExitedBy::Kill => (
            format!(
                "the app did not exit within {} of SIGTERM and was killed: requests in \
                 flight were dropped and nothing was flushed, at every deploy and scale-down. \
                 Handle SIGTERM: stop accepting, finish the requests in flight, exit",
                setting(kill_after.as_secs_f64())
            ),
            true,
        ),
        ExitedBy::Exit if s.seconds > slow_after.as_secs_f64() => (
            format!(
                "the app took {} to exit after SIGTERM (slow: over {}): every deploy and \
                 scale-down waits that long per pod, and a platform with a shorter grace \
                 period kills it, dropping requests in flight",
                millis(s.seconds),
                setting(slow_after.as_secs_f64())
            ),
            true,
        ),
        ExitedBy::Exit => (
            format!("the app exited {} after SIGTERM", millis(s.seconds)),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> TimePerRequest {
        TimePerRequest {
            requests: 100,
            mean_seconds: Some(0.18),
            on_cpu_seconds: Some(0.0108),
            cpu_wait_seconds: Some(0.0),
            other_seconds: Some(0.1692),
            bound: Bound::Io,
            ..Default::default()
        }
    }

    #[test]
    fn an_io_bound_app_is_told_more_workers_not_more_cpu() {
        let line = time_per_request(&io());
        assert_eq!(
            line.text,
            "Request time: I/O-bound: 94% of a request's 180 ms is spent waiting (database, \
             APIs, disk). More CPU will not make it faster; more workers will carry more load"
        );
        assert!(!line.attention);
        let mut t = io();
        t.likely_waits = vec!["postgres", "redis"];
        assert!(time_per_request(&t)
            .text
            .contains("waiting (likely on postgres, redis, which it holds connections to)"));
    }

    #[test]
    fn a_starved_app_names_its_limit() {
        let t = TimePerRequest {
            requests: 100,
            mean_seconds: Some(0.1),
            on_cpu_seconds: Some(0.06),
            cpu_wait_seconds: Some(0.04),
            other_seconds: Some(0.0),
            bound: Bound::Cpu,
            starved: true,
            cpu_limit_cores: Some(0.5),
            ..Default::default()
        };
        let line = time_per_request(&t);
        assert_eq!(
            line.text,
            "Request time: CPU-bound and starved: 40% of the time waiting for a CPU; the 500m \
             limit is the bottleneck. A higher limit will make requests faster"
        );
        assert!(line.attention);
    }

    /// Without a limit the wait is other work's: the words name the node, and a
    /// larger request only where the CPU verdict would (none, or one used up),
    /// not "more CPU" beside a verdict that says more would not help.
    #[test]
    fn a_starved_app_without_a_limit_names_the_busy_node() {
        let t = TimePerRequest {
            requests: 100,
            mean_seconds: Some(0.1),
            on_cpu_seconds: Some(0.02),
            cpu_wait_seconds: Some(0.08),
            other_seconds: Some(0.0),
            bound: Bound::Cpu,
            starved: true,
            cpu_limit_cores: None,
            ..Default::default()
        };
        assert_eq!(
            time_per_request(&t).text,
            "Request time: CPU-bound and starved: 80% of the time waiting for a CPU; the \
             machine's CPUs are busy with other work. Requests will be faster on a less busy \
             node, or with a larger CPU request where it uses all of its own"
        );
    }

    /// Neither side dominates: the words still say what each remedy buys.
    #[test]
    fn a_mixed_split_says_what_more_cpu_and_more_workers_would_do() {
        let t = TimePerRequest {
            requests: 100,
            mean_seconds: Some(0.083),
            on_cpu_seconds: Some(0.015),
            cpu_wait_seconds: Some(0.02),
            other_seconds: Some(0.048),
            bound: Bound::Mixed,
            ..Default::default()
        };
        assert_eq!(
            time_per_request(&t).text,
            "Request time: mixed: of a request's 83 ms, 18% on a CPU, 24% waiting for one, \
             58% waiting on other things (database, APIs, disk). More CPU would shorten the \
             first two parts; more workers would carry more load through the last"
        );
    }

    #[test]
    fn threads_held_to_one_core_are_told_to_use_processes() {
        let o = OneCore {
            threads: 8,
            mean_cores: 0.92,
            peak_cores: 1.02,
            allowed_cores: 2.0,
        };
        let line = one_core(&o);
        assert_eq!(
            line.text,
            "Threads: 8 threads, but never more than 1.02 cores (0.92 on average) of the 2 \
             cores allowed, with CPUs to spare: one thread runs at a time (CPython's GIL, or \
             a single event loop). More threads or more CPU will not help; more processes \
             (workers) will"
        );
        assert!(line.attention);
    }

    #[test]
    fn start_up_and_shutdown_read_with_their_cost() {
        let s = Startup {
            listening_seconds: Some(2.0),
            first_request_seconds: Some(2.5),
            slow_after_seconds: 10.0,
            ..Default::default()
        };
        assert_eq!(
            startup(&s).unwrap().text,
            "Start-up: listening 2.00 s after the start, first request after 2.50 s"
        );
        assert_eq!(cold_start(&s), " of 2.50 s (the measured start-up)");
        assert_eq!(startup(&Startup::default()), None);
        let slow = Startup {
            listening_seconds: Some(14.0),
            slow: true,
            ..s
        };
        assert!(startup(&slow)
            .unwrap()
            .text
            .contains(" — slow (over 10 s): "));
        // No listener 20 s in: said, and not a matter for attention.
        let waiting = Startup {
            waiting_seconds: Some(20.0),
            slow_after_seconds: 10.0,
            ..Default::default()
        };
        let line = startup(&waiting).unwrap();
        assert_eq!(
            line.text,
            "Start-up: no listening socket 20 s after the start (a server is judged when it \
             listens; a job or worker never does)"
        );
        assert!(!line.attention);
        // A growing wait is spoken, not given to the hundredth of a second.
        let later = Startup {
            waiting_seconds: Some(80.01),
            ..waiting
        };
        assert!(startup(&later)
            .unwrap()
            .text
            .starts_with("Start-up: no listening socket 1.3 min after the start"));
        assert_eq!(
            startup(&Startup {
                waiting_seconds: Some(5.0),
                ..waiting
            }),
            None
        );
        assert_eq!(setting(1.5), "1.5 s");
        assert_eq!(setting(0.25), "250 ms");
        let ten = Duration::from_secs(10);
        let exit = |seconds, exited_by| Shutdown { seconds, exited_by };
        assert_eq!(
            shutdown(&exit(1.5, ExitedBy::Exit), ten, ten),
            ("the app exited 1.50 s after SIGTERM".to_string(), false)
        );
        assert!(shutdown(&exit(12.0, ExitedBy::Exit), ten, ten).1);
        let (text, attention) = shutdown(&exit(10.0, ExitedBy::Kill), ten, ten);
        assert!(
            attention && text.starts_with("the app did not exit within 10 s of SIGTERM and was killed: requests in flight"),
            "{text}"
        );
    }
}
