//! The built-in alert rules: their names, defaults, thresholds, and the check each
//! makes against one tick's snapshot.
//!
//! A rule is a variant of [`RuleName`]; its check is a `match` arm in [`check`]. A
//! check returns a [`Finding`] (the condition holds, with words and numbers for the
//! annotations) or `None`. Whether a finding has held long enough to fire is the
//! engine's business ([`super::Engine`]), not the rule's.

use std::collections::BTreeMap;

use crate::analysis::sizing::AllocationVerdict;
use crate::analysis::LogRates;
use crate::sample::TargetSnapshot;

/// Every built-in rule, as named in `[alerts.rules.<Name>]` and the `alertname` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleName {
    MemoryLeakSuspected,
    FdLeakSuspected,
    ThreadLeakSuspected,
    MemoryNearLimit,
    OomKilled,
    CpuThrottled,
    CpuUnderAllocated,
    CpuOverAllocated,
    MemoryUnderAllocated,
    MemoryOverAllocated,
    ErrorRateHigh,
    Http5xxRatioHigh,
    LatencyHigh,
    TargetDown,
    TargetRestarting,
    ConnectionLeakSuspected,
}

/// How a threshold is written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (a share is written 0.25).
    Number,
    /// A duration such as `4h`, held in seconds.
    Seconds,
}

impl RuleName {
    pub const ALL: [RuleName; 16] = [
        RuleName::MemoryLeakSuspected,
        RuleName::FdLeakSuspected,
        RuleName::ThreadLeakSuspected,
        RuleName::MemoryNearLimit,
        RuleName::OomKilled,
        RuleName::CpuThrottled,
        RuleName::CpuUnderAllocated,
        RuleName::CpuOverAllocated,
        RuleName::MemoryUnderAllocated,
        RuleName::MemoryOverAllocated,
        RuleName::ErrorRateHigh,
        RuleName::Http5xxRatioHigh,
        RuleName::LatencyHigh,
        RuleName::TargetDown,
        RuleName::TargetRestarting,
        RuleName::ConnectionLeakSuspected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleName::MemoryLeakSuspected => "MemoryLeakSuspected",
            RuleName::FdLeakSuspected => "FdLeakSuspected",
            RuleName::ThreadLeakSuspected => "ThreadLeakSuspected",
            RuleName::MemoryNearLimit => "MemoryNearLimit",
            RuleName::OomKilled => "OOMKilled",
            RuleName::CpuThrottled => "CpuThrottled",
            RuleName::CpuUnderAllocated => "CpuUnderAllocated",
            RuleName::CpuOverAllocated => "CpuOverAllocated",
            RuleName::MemoryUnderAllocated => "MemoryUnderAllocated",
            RuleName::MemoryOverAllocated => "MemoryOverAllocated",
            RuleName::ErrorRateHigh => "ErrorRateHigh",
            RuleName::Http5xxRatioHigh => "Http5xxRatioHigh",
            RuleName::LatencyHigh => "LatencyHigh",
            RuleName::TargetDown => "TargetDown",
            RuleName::TargetRestarting => "TargetRestarting",
            RuleName::ConnectionLeakSuspected => "ConnectionLeakSuspected",
        }
    }

    pub fn parse(s: &str) -> Option<RuleName> {
        RuleName::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Default `for`: how long the condition must hold before the alert fires.
    pub fn default_for(self) -> &'static str {
        match self {
            RuleName::OomKilled | RuleName::TargetRestarting => "0s",
            RuleName::TargetDown => "1m",
            RuleName::MemoryLeakSuspected
            | RuleName::FdLeakSuspected
            | RuleName::ThreadLeakSuspected
            | RuleName::ConnectionLeakSuspected
            | RuleName::MemoryNearLimit
            | RuleName::CpuThrottled
            | RuleName::ErrorRateHigh
            | RuleName::Http5xxRatioHigh
            | RuleName::LatencyHigh => "5m",
            RuleName::CpuUnderAllocated
            | RuleName::CpuOverAllocated
            | RuleName::MemoryUnderAllocated
            | RuleName::MemoryOverAllocated => "15m",
        }
    }

    pub fn default_severity(self) -> &'static str {
        match self {
            RuleName::OomKilled | RuleName::TargetDown | RuleName::MemoryNearLimit => "critical",
            RuleName::CpuOverAllocated | RuleName::MemoryOverAllocated => "info",
            _ => "warning",
        }
    }

    /// The rule's own thresholds: name, unit, default.
    pub fn thresholds(self) -> &'static [(&'static str, Unit, f64)] {
        match self {
            RuleName::MemoryNearLimit => &[
                ("usage_share", Unit::Number, 0.9),
                ("time_to_limit", Unit::Seconds, 4.0 * 3600.0),
            ],
            RuleName::OomKilled => &[("window", Unit::Seconds, 300.0)],
            RuleName::CpuThrottled => &[("throttled_share", Unit::Number, 0.25)],
            RuleName::ErrorRateHigh => &[
                ("errors_per_minute", Unit::Number, 10.0),
                ("error_ratio", Unit::Number, 0.05),
            ],
            RuleName::Http5xxRatioHigh => &[("ratio", Unit::Number, 0.05)],
            RuleName::LatencyHigh => &[
                ("p95", Unit::Seconds, 1.0),
                ("min_requests", Unit::Number, 20.0),
            ],
            RuleName::TargetRestarting => &[
                ("restarts", Unit::Number, 3.0),
                ("window", Unit::Seconds, 900.0),
            ],
            _ => &[],
        }
    }

    /// Whether the rule reads the app's output (one alert for all targets).
    pub fn is_log_rule(self) -> bool {
        matches!(
            self,
            RuleName::ErrorRateHigh | RuleName::Http5xxRatioHigh | RuleName::LatencyHigh
        )
    }
}

/// One rule as validated from config.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    pub enabled: bool,
    /// Seconds the condition must hold before the alert fires.
    pub for_seconds: f64,
    pub severity: String,
    /// Every threshold of [`RuleName::thresholds`], defaults filled in.
    pub thresholds: BTreeMap<&'static str, f64>,
}

impl RuleConfig {
    pub fn defaults(rule: RuleName) -> Self {
        RuleConfig {
            enabled: true,
            for_seconds: crate::config::parse_duration(rule.default_for())
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            severity: rule.default_severity().to_string(),
            thresholds: rule.thresholds().iter().map(|(k, _, v)| (*k, *v)).collect(),
        }
    }

    fn get(&self, key: &str) -> f64 {
        self.thresholds.get(key).copied().unwrap_or(f64::NAN)
    }
}

/// What the engine remembers of a target between ticks, for the rules that compare.
#[derive(Debug, Clone, Default)]
pub struct RuleHistory {
    /// Last tick's (periods, throttled periods).
    pub cpu_periods: Option<(u64, u64)>,
    /// Throttled share between the last two ticks.
    pub throttled_share: Option<f64>,
    pub oom_kills: Option<u64>,
    /// Unix times OOM kills were seen to increase.
    pub oom_times: Vec<f64>,
    pub restarts: Option<u64>,
    /// Unix times restarts were seen to increase, one entry per restart.
    pub restart_times: Vec<f64>,
}

impl RuleHistory {
    /// Folds in this tick's counters; windows are pruned to `keep` seconds.
    pub fn update(&mut self, t: &TargetSnapshot, now: f64, keep: f64) {
        let cg = t.cgroup.as_ref();
        if let Some((p, th)) = cg.and_then(|c| c.cpu_periods.zip(c.cpu_throttled_periods)) {
            self.throttled_share = match self.cpu_periods {
                Some((p0, th0)) if p > p0 => Some(th.saturating_sub(th0) as f64 / (p - p0) as f64),
                Some(_) => Some(0.0),
                None => None,
            };
            self.cpu_periods = Some((p, th));
        }
        if let Some(oom) = cg.and_then(|c| c.oom_kills) {
            if self.oom_kills.is_some_and(|o| oom > o) {
                self.oom_times.push(now);
            }
            self.oom_kills = Some(oom);
        }
        if let Some(r0) = self.restarts {
            for _ in r0..t.restarts {
                self.restart_times.push(now);
            }
        }
        self.restarts = Some(t.restarts);
        self.oom_times.retain(|x| now - x <= keep);
        self.restart_times.retain(|x| now - x <= keep);
    }
}

/// The condition holds: words and numbers for the annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub summary: String,
    pub description: String,
    /// The recommended `resources:` block, for the allocation rules.
    pub recommendation: Option<String>,
}

fn finding(summary: String, description: String) -> Option<Finding> {
    Some(Finding {
        summary,
        description,
        recommendation: None,
    })
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1048576.0)
}

fn hours(s: f64) -> String {
    format!("{:.1} h", s / 3600.0)
}

/// Checks a per-target rule.
pub fn check(
    rule: RuleName,
    cfg: &RuleConfig,
    t: &TargetSnapshot,
    mem: &RuleHistory,
    now: f64,
) -> Option<Finding> {
    let name = &t.name;
    if rule == RuleName::TargetDown {
        return (!t.up).then(|| Finding {
            summary: format!("{name} is down"),
            description: format!("No process of target {name} is alive."),
            recommendation: None,
        });
    }
    if rule == RuleName::TargetRestarting {
        let window = cfg.get("window");
        let n = mem
            .restart_times
            .iter()
            .filter(|x| now - **x <= window)
            .count() as f64;
        return (n >= cfg.get("restarts")).then(|| Finding {
            summary: format!("{name} is restarting"),
            description: format!(
                "Target {name} restarted {n} times in the last {:.0} s (threshold {}): a crash loop?",
                window,
                cfg.get("restarts")
            ),
            recommendation: None,
        });
    }
    if !t.up {
        return None;
    }
    let v = t.verdicts.as_ref();
    let leak = |what: &str, l: Option<&crate::analysis::Leak>, unit: &dyn Fn(f64) -> String| {
        let l = l.filter(|l| l.suspected)?;
        let rate = l.growth_per_second.unwrap_or(0.0);
        let ttl = l
            .time_to_limit_seconds
            .map(|s| format!("; the limit is {} away at this rate", hours(s)))
            .unwrap_or_default();
        finding(
            format!("{name} may be leaking {what}"),
            format!(
                "Target {name}: {what} grows by {} per minute over the leak window{ttl}.",
                unit(rate * 60.0)
            ),
        )
    };
    let plain = |x: f64| format!("{x:.2}");
    match rule {
        RuleName::MemoryLeakSuspected => leak("memory", v.map(|v| &v.memory_leak), &mib),
        RuleName::FdLeakSuspected => leak("file descriptors", v.map(|v| &v.fd_leak), &plain),
        RuleName::ThreadLeakSuspected => leak("threads", v.map(|v| &v.thread_leak), &plain),
        RuleName::ConnectionLeakSuspected => {
            let l = v.map(|v| &v.connection_leak).filter(|l| l.suspected)?;
            let c = t.connections.unwrap_or_default();
            finding(
                format!("{name} may be leaking connections"),
                format!(
                    "Target {name}: TCP connections held open (established + CLOSE_WAIT) grow by {:.2} per minute over the leak window; now {} established and {} in CLOSE_WAIT (the peer closed, the app did not).",
                    l.growth_per_second.unwrap_or(0.0) * 60.0,
                    c.established,
                    c.close_wait
                ),
            )
        }
        RuleName::MemoryNearLimit => {
            let limit = t.allocation.memory_limit_bytes.map(|l| l.0 as f64)?;
            let ws = t
                .cgroup
                .as_ref()
                .and_then(|c| c.memory_working_set_bytes)
                .map(|w| w as f64);
            let used = ws.unwrap_or(0.0).max(t.resident_memory_bytes as f64);
            let share = used / limit;
            let ttl = v.and_then(|v| v.memory_leak.time_to_limit_seconds);
            let near = share > cfg.get("usage_share");
            let soon = ttl.is_some_and(|s| s < cfg.get("time_to_limit"));
            (near || soon).then(|| Finding {
                summary: format!("{name} is near its memory limit"),
                description: format!(
                    "Target {name} uses {} of its {} limit ({:.0}%){}.",
                    mib(used),
                    mib(limit),
                    share * 100.0,
                    ttl.map(|s| format!(
                        "; at the current growth it reaches the limit in {}",
                        hours(s)
                    ))
                    .unwrap_or_default()
                ),
                recommendation: None,
            })
        }
        RuleName::OomKilled => {
            let n = mem
                .oom_times
                .iter()
                .filter(|x| now - **x <= cfg.get("window"))
                .count();
            (n > 0).then(|| Finding {
                summary: format!("{name} was OOM-killed"),
                description: format!(
                    "The kernel killed a process of target {name} for memory (OOM kill counter rose in {n} ticks of the last {:.0} s; {} kills in all).",
                    cfg.get("window"),
                    mem.oom_kills.unwrap_or(0)
                ),
                recommendation: v.and_then(|v| v.resources_yaml.clone()),
            })
        }
        RuleName::CpuThrottled => {
            let share = mem.throttled_share?;
            (share > cfg.get("throttled_share")).then(|| Finding {
                summary: format!("{name} is CPU-throttled"),
                description: format!(
                    "Target {name} was throttled in {:.0}% of its CPU periods since the last tick (threshold {:.0}%).",
                    share * 100.0,
                    cfg.get("throttled_share") * 100.0
                ),
                recommendation: None,
            })
        }
        RuleName::CpuUnderAllocated
        | RuleName::CpuOverAllocated
        | RuleName::MemoryUnderAllocated
        | RuleName::MemoryOverAllocated => {
            let v = v?;
            let (res, verdict, reason) = match rule {
                RuleName::CpuUnderAllocated | RuleName::CpuOverAllocated => {
                    ("CPU", v.sizing.cpu.allocation.0, &v.sizing.cpu.reason)
                }
                _ => (
                    "memory",
                    v.sizing.memory.allocation.0,
                    &v.sizing.memory.reason,
                ),
            };
            let want = match rule {
                RuleName::CpuUnderAllocated | RuleName::MemoryUnderAllocated => {
                    AllocationVerdict::Under
                }
                _ => AllocationVerdict::Over,
            };
            (verdict == want).then(|| Finding {
                summary: format!(
                    "{name} has too {} {res}",
                    if want == AllocationVerdict::Under {
                        "little"
                    } else {
                        "much"
                    }
                ),
                description: format!(
                    "{res} of target {name} is {}-allocated: {reason}",
                    want.as_str()
                ),
                recommendation: v.resources_yaml.clone(),
            })
        }
        RuleName::ErrorRateHigh
        | RuleName::Http5xxRatioHigh
        | RuleName::LatencyHigh
        | RuleName::TargetDown
        | RuleName::TargetRestarting => None,
    }
}

/// Checks a rule on the app's output (all streams together).
pub fn check_logs(rule: RuleName, cfg: &RuleConfig, r: &LogRates) -> Option<Finding> {
    match rule {
        RuleName::ErrorRateHigh => {
            let ratio = r.error_ratio?;
            (r.errors_per_minute > cfg.get("errors_per_minute") && ratio > cfg.get("error_ratio"))
                .then(|| Finding {
                    summary: "the app logs many errors".into(),
                    description: format!(
                        "{:.1} errors per minute, {:.1}% of events, over the last {:.0} s (thresholds {} per minute and {:.1}%).",
                        r.errors_per_minute,
                        ratio * 100.0,
                        r.window_seconds,
                        cfg.get("errors_per_minute"),
                        cfg.get("error_ratio") * 100.0
                    ),
                    recommendation: None,
                })
        }
        RuleName::Http5xxRatioHigh => {
            let ratio = r.http_5xx_ratio?;
            (ratio > cfg.get("ratio")).then(|| Finding {
                summary: "the app answers many 5xx".into(),
                description: format!(
                    "{:.1}% of HTTP responses in the app's access log were 5xx over the last {:.0} s (threshold {:.1}%).",
                    ratio * 100.0,
                    r.window_seconds,
                    cfg.get("ratio") * 100.0
                ),
                recommendation: None,
            })
        }
        RuleName::LatencyHigh => {
            let l = r.latency?;
            (l.p95_seconds > cfg.get("p95") && l.requests as f64 >= cfg.get("min_requests")).then(
                || Finding {
                    summary: "the app answers slowly".into(),
                    description: format!(
                        "p95 request duration {} (p50 {}, p99 {}) over {} requests in the app's access log (threshold {}).",
                        crate::analysis::latency::millis(l.p95_seconds),
                        crate::analysis::latency::millis(l.p50_seconds),
                        crate::analysis::latency::millis(l.p99_seconds),
                        l.requests,
                        crate::analysis::latency::millis(cfg.get("p95")),
                    ),
                    recommendation: None,
                },
            )
        }
        _ => None,
    }
}
