//! What each alert rule says when it holds: the `summary` and `description`
//! annotations, one function per rule (or per family of rules that share a sentence).
//! Whether a rule holds is decided in `alerts::rules`; these only put the numbers
//! into words.

use crate::analysis::cost::Cost;
use crate::analysis::latency::{millis, Latency};
use crate::analysis::sizing::AllocationVerdict;
use crate::analysis::{Leak, LogRates};
use crate::sample::sockets::Connections;

/// The `summary` and `description` annotations of one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotations {
    pub summary: String,
    pub description: String,
}

fn mib(b: f64) -> String {
    super::mib(b)
}

fn plain(x: f64) -> String {
    format!("{x:.2}")
}

pub fn target_down(name: &str) -> Annotations {
    Annotations {
        summary: format!("{name} is down"),
        description: format!("No process of target {name} is alive."),
    }
}

/// `restarts` restarts in the last `window` seconds, `threshold` or more fire.
/// `oom_kills` OOM kills of the target's cgroup in the same window tie the restarts
/// to memory: the app is killed for it, not crashing on its own.
pub fn target_restarting(
    name: &str,
    restarts: f64,
    window: f64,
    threshold: f64,
    oom_kills: usize,
) -> Annotations {
    let cause = match oom_kills {
        0 => "a crash loop?".to_string(),
        n => format!(
            "the kernel OOM-killed it {} in that time: it runs out of memory (see OOMKilled and the memory recommendation).",
            super::count_as(n as u64, "time", "times")
        ),
    };
    Annotations {
        summary: format!("{name} is restarting"),
        description: format!(
            "Target {name} restarted {restarts} times in the last {} (threshold {threshold}): {cause}",
            crate::units::spoken(window)
        ),
    }
}

/// The sentence of every leak rule; `unit` puts a growth per minute into words.
fn leak(name: &str, what: &str, l: &Leak, unit: fn(f64) -> String) -> Annotations {
    let rate = l.growth_per_second.unwrap_or(0.0);
    let ttl = match super::runs_out(l) {
        Some((s, true)) => format!(
            "; at this rate its old generation reaches its maximum in {} (then OutOfMemoryError)",
            super::duration(s)
        ),
        Some((s, false)) => format!("; the limit is {} away at this rate", super::duration(s)),
        None => String::new(),
    };
    // "memory grows", "file descriptors grow".
    let grow = if what.ends_with('s') { "grow" } else { "grows" };
    Annotations {
        summary: format!("{name} may be leaking {what}"),
        description: format!(
            "Target {name}: {what} {grow} by {} per minute over the leak window{ttl}.",
            unit(rate * 60.0)
        ),
    }
}

pub fn memory_leak(name: &str, l: &Leak) -> Annotations {
    let what = if l.in_heap {
        // The rate is the old generation's; RSS shows it only as the heap grows.
        "memory in its JVM heap (the old generation, after its collections)"
    } else if l.outside_heap {
        "memory outside its JVM heap (threads, metaspace, native buffers)"
    } else {
        "memory"
    };
    leak(name, what, l, mib)
}

pub fn fd_leak(name: &str, l: &Leak) -> Annotations {
    leak(name, "file descriptors", l, plain)
}

pub fn thread_leak(name: &str, l: &Leak) -> Annotations {
    leak(name, "threads", l, plain)
}

pub fn connection_leak(name: &str, l: &Leak, c: &Connections) -> Annotations {
    Annotations {
        summary: format!("{name} may be leaking connections"),
        description: format!(
            "Target {name}: TCP connections held open (established + CLOSE_WAIT) grow by {:.2} per minute over the leak window; now {} established and {} in CLOSE_WAIT (the peer closed, the app did not).",
            l.growth_per_second.unwrap_or(0.0) * 60.0,
            c.established,
            c.close_wait
        ),
    }
}

/// One pending or firing alert as a line, on every surface that lists them:
/// `OOMKilled (firing, critical): web was OOM-killed`.
pub fn line(alertname: &str, firing: bool, severity: &str, summary: &str) -> String {
    let state = if firing { "firing" } else { "pending" };
    format!("{alertname} ({state}, {severity}): {summary}")
}

/// `used` of `limit` bytes; `ttl`: seconds to the limit at the current growth;
/// `near`: whether the share used is what fired (else the growth did, and the
/// summary says when the limit comes rather than calling 15% "near").
pub fn memory_near_limit(
    name: &str,
    used: f64,
    limit: f64,
    ttl: Option<f64>,
    near: bool,
) -> Annotations {
    let summary = match ttl {
        Some(s) if !near => format!(
            "{name} will reach its memory limit in {} at its current growth",
            super::duration(s)
        ),
        _ => format!("{name} is near its memory limit"),
    };
    Annotations {
        summary,
        description: format!(
            "Target {name} uses {} of its {} limit ({:.0}%){}.",
            mib(used),
            mib(limit),
            used / limit * 100.0,
            ttl.map(|s| format!(
                "; at the current growth it reaches the limit in {}",
                super::duration(s)
            ))
            .unwrap_or_default()
        ),
    }
}

/// What Outrider did before the kill, `ago` seconds ago, for the memory alerts:
/// `signal`, its name and whether it was delivered; `command`, `None` when none is
/// configured, else its result (`ok`, `failed`, `timeout`), `None` while it runs.
pub fn acted_before_the_kill(
    pid: i32,
    signal: Option<(&str, bool)>,
    command: Option<Option<&str>>,
    ago: f64,
) -> String {
    let signal = signal.map(|(name, sent)| match sent {
        true => format!("sent {name} to pid {pid}"),
        false => format!("could not send {name} to pid {pid}"),
    });
    let command = command.map(|result| match result {
        None => "started the pre-OOM command (still running)".to_string(),
        Some("ok") => "ran the pre-OOM command".to_string(),
        Some("timeout") => "ran the pre-OOM command (killed at its timeout)".to_string(),
        Some(_) => "ran the pre-OOM command (it failed)".to_string(),
    });
    let what = match (signal, command) {
        (Some(s), Some(c)) => format!("{s} and {c}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "did nothing".to_string(),
    };
    let when = match ago {
        a if a < 1.0 => "just now".to_string(),
        a if a < 60.0 => format!("{a:.0} s ago"),
        a => format!("{} ago", super::duration(a)),
    };
    format!("Outrider {what} {when}.")
}

/// Kills seen in `ticks` ticks of the last `window` seconds; `kills` in all.
pub fn oom_killed(name: &str, ticks: usize, window: f64, kills: u64) -> Annotations {
    Annotations {
        summary: format!("{name} was OOM-killed"),
        description: format!(
            "The kernel killed a process of target {name} for memory (OOM kill counter rose in {ticks} ticks of the last {window:.0} s; {kills} kills in all)."
        ),
    }
}

pub fn cpu_throttled(name: &str, share: f64, threshold: f64) -> Annotations {
    Annotations {
        summary: format!("{name} is CPU-throttled"),
        description: format!(
            "Target {name} was throttled in {:.0}% of its CPU periods since the last tick (threshold {:.0}%).",
            share * 100.0,
            threshold * 100.0
        ),
    }
}

/// The sentence of the four allocation rules.
fn allocation(name: &str, res: &str, verdict: AllocationVerdict, reason: &str) -> Annotations {
    let amount = if verdict == AllocationVerdict::Under {
        "little"
    } else {
        "much"
    };
    Annotations {
        summary: format!("{name} has too {amount} {res}"),
        description: format!(
            "The {res} of target {name} is {}-allocated: {reason}.",
            verdict.as_str()
        ),
    }
}

/// `OverAllocationCost`: `web wastes about $102 a month`, and what on.
pub fn over_allocation_cost(name: &str, c: &Cost, threshold: f64) -> Annotations {
    let money = |x: f64| super::cost::money(x, c.currency);
    let per_replica = c.waste_per_month.total.unwrap_or(0.0);
    let waste = per_replica * c.replicas as f64;
    let what = super::cost::above(c).unwrap_or_else(|| "resources".into());
    let replicas = match c.replicas {
        1 => String::new(),
        n => format!(" ({} per replica, {n} replicas)", money(per_replica)),
    };
    Annotations {
        summary: format!("{name} wastes about {} a month", money(waste)),
        description: format!(
            "Target {name} requests {what} above what it needs: about {} a month{replicas}, \
             over the {} set in waste_per_month. The recommended requests would cost {} a \
             month per replica instead of {}.",
            money(waste),
            money(threshold),
            money(c.per_month.recommended.total.unwrap_or(0.0)),
            money(c.per_month.request.total.unwrap_or(0.0)),
        ),
    }
}

/// `CpuUnderAllocated`, `CpuOverAllocated`.
pub fn cpu_allocation(name: &str, verdict: AllocationVerdict, reason: &str) -> Annotations {
    allocation(name, "CPU", verdict, reason)
}

/// `MemoryUnderAllocated`, `MemoryOverAllocated`.
pub fn memory_allocation(name: &str, verdict: AllocationVerdict, reason: &str) -> Annotations {
    allocation(name, "memory", verdict, reason)
}

/// Error `ratio` (of `r`) over the thresholds `per_minute` and `ratio_threshold`.
pub fn error_rate_high(
    r: &LogRates,
    ratio: f64,
    per_minute: f64,
    ratio_threshold: f64,
) -> Annotations {
    Annotations {
        summary: "the app logs many errors".into(),
        description: format!(
            "{:.1} errors per minute, {:.1}% of events, over the last {:.0} s (thresholds {} per minute and {:.1}%).",
            r.errors_per_minute,
            ratio * 100.0,
            r.window_seconds,
            per_minute,
            ratio_threshold * 100.0
        ),
    }
}

pub fn http_5xx_ratio_high(r: &LogRates, ratio: f64, threshold: f64) -> Annotations {
    Annotations {
        summary: "the app answers many 5xx".into(),
        description: format!(
            "{:.1}% of HTTP responses in the app's access log were 5xx over the last {:.0} s (threshold {:.1}%).",
            ratio * 100.0,
            r.window_seconds,
            threshold * 100.0
        ),
    }
}

/// `p95` threshold in seconds.
pub fn latency_high(l: &Latency, p95: f64) -> Annotations {
    Annotations {
        summary: "the app answers slowly".into(),
        description: format!(
            "p95 request duration {} (p50 {}, p99 {}) over {} requests in the app's access log (threshold {}).",
            millis(l.p95_seconds),
            millis(l.p50_seconds),
            millis(l.p99_seconds),
            l.requests,
            millis(p95),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_done_before_the_kill_in_one_sentence() {
        assert_eq!(
            acted_before_the_kill(1234, Some(("SIGUSR1", true)), Some(Some("ok")), 4.2),
            "Outrider sent SIGUSR1 to pid 1234 and ran the pre-OOM command 4 s ago."
        );
        assert_eq!(
            acted_before_the_kill(7, None, Some(None), 0.2),
            "Outrider started the pre-OOM command (still running) just now."
        );
        assert_eq!(
            acted_before_the_kill(7, Some(("SIGTERM", false)), Some(Some("timeout")), 300.0),
            "Outrider could not send SIGTERM to pid 7 and ran the pre-OOM command (killed at its timeout) 5 min ago."
        );
    }

    #[test]
    fn a_leak_in_a_jvms_heap_says_when_the_heap_is_full() {
        let l = Leak {
            suspected: true,
            growth_per_second: Some(1048576.0 / 60.0),
            time_to_limit_seconds: Some(10.0 * 3600.0),
            in_heap: true,
            time_to_heap_max_seconds: Some(2.0 * 3600.0),
            ..Leak::default()
        };
        assert_eq!(
            memory_leak("api", &l).description,
            "Target api: memory in its JVM heap (the old generation, after its collections) grows by 1.0 MiB per minute over the leak window; at this rate its old generation reaches its maximum in 2.0 h (then OutOfMemoryError)."
        );
        let limit_first = Leak {
            time_to_heap_max_seconds: Some(12.0 * 3600.0),
            ..l
        };
        assert!(memory_leak("api", &limit_first)
            .description
            .ends_with("; the limit is 10.0 h away at this rate."));
    }
}
