//! The built-in alert rules: their names, defaults, thresholds, and the check each
//! makes against one tick's snapshot.
//!
//! A rule is a variant of [`RuleName`]; its thresholds, typed, are the matching
//! variant of [`Thresholds`], and [`check`] / [`check_logs`] `match` on those to the
//! rule's own function. A check returns a [`Finding`] (the condition holds, with words
//! and numbers for the annotations) or `None`; the words come from [`crate::words::alert`].
//! Whether a finding has held long enough to fire is the engine's business
//! ([`super::Engine`]), not the rule's.
//!
//! # Layout
//! - [`thresholds`]: each rule's thresholds, their config keys, units and defaults

pub mod thresholds;

use crate::actions::Taken;
use crate::analysis::sizing::AllocationVerdict;
use crate::analysis::TargetStatus;
use crate::analysis::{Leak, LogRates, Verdicts};
use crate::words::{self, alert::Annotations};
use thresholds::{
    CrashLoop, ErrorRate, Http5xxRatio, NearLimit, OomWindow, SlowRequests, Throttling, WasteLimit,
};
pub use thresholds::{Thresholds, Unit};

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
    OverAllocationCost,
}

impl RuleName {
    pub const ALL: [RuleName; 17] = [
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
        RuleName::OverAllocationCost,
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
            RuleName::OverAllocationCost => "OverAllocationCost",
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
            | RuleName::MemoryOverAllocated
            | RuleName::OverAllocationCost => "15m",
        }
    }

    pub fn default_severity(self) -> &'static str {
        match self {
            RuleName::OomKilled | RuleName::TargetDown | RuleName::MemoryNearLimit => "critical",
            RuleName::CpuOverAllocated
            | RuleName::MemoryOverAllocated
            | RuleName::OverAllocationCost => "info",
            _ => "warning",
        }
    }

    /// Whether the rule is on without a word in config: all but the money rule,
    /// whose amount only its user can set.
    pub fn default_enabled(self) -> bool {
        self != RuleName::OverAllocationCost
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
    /// Every threshold of the rule, defaults filled in; the variant is the rule's.
    pub thresholds: Thresholds,
}

impl RuleConfig {
    pub fn defaults(rule: RuleName) -> Self {
        RuleConfig {
            enabled: rule.default_enabled(),
            for_seconds: crate::units::parse_duration(rule.default_for())
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            severity: rule.default_severity().to_string(),
            thresholds: Thresholds::defaults(rule),
        }
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
    pub fn update(&mut self, t: &TargetStatus, now: f64, keep: f64) {
        let cg = t.cgroup.as_ref();
        if let Some((p, th)) = cg.and_then(|c| c.cpu_periods.zip(c.cpu_throttled_periods)) {
            self.throttled_share = match self.cpu_periods {
                Some((p0, th0)) if p > p0 => Some(th.saturating_sub(th0) as f64 / (p - p0) as f64),
                Some(_) => Some(0.0),
                None => None,
            };
            self.cpu_periods = Some((p, th));
        }
        if let Some(oom) = cg.and_then(|c| c.app_oom_kills()) {
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

impl Finding {
    fn new(words: Annotations, recommendation: Option<String>) -> Self {
        Finding {
            summary: words.summary,
            description: words.description,
            recommendation,
        }
    }
}

impl From<Annotations> for Finding {
    fn from(words: Annotations) -> Self {
        Finding::new(words, None)
    }
}

/// Checks a per-target rule; `history` is the target's, updated for this tick;
/// `done`: what Outrider did before the kill, which the memory rules name.
pub fn check(
    cfg: &RuleConfig,
    t: &TargetStatus,
    history: &RuleHistory,
    done: Option<&Taken>,
    now: f64,
) -> Option<Finding> {
    let name = &t.name;
    let v = t.verdicts.as_ref();
    match &cfg.thresholds {
        Thresholds::TargetDown => (!t.up).then(|| words::alert::target_down(name).into()),
        Thresholds::TargetRestarting(th) => target_restarting(th, name, history, now),
        // The kill that ended the target is read from its cgroup after it is down.
        Thresholds::OomKilled(th) => {
            oom_killed(th, name, v, history, now).map(|f| noting(f, done, now))
        }
        // Every other rule is about a live target.
        _ if !t.up => None,
        Thresholds::MemoryLeakSuspected => {
            suspected(v.map(|v| &v.memory_leak)).map(|l| words::alert::memory_leak(name, l).into())
        }
        Thresholds::FdLeakSuspected => {
            suspected(v.map(|v| &v.fd_leak)).map(|l| words::alert::fd_leak(name, l).into())
        }
        Thresholds::ThreadLeakSuspected => {
            suspected(v.map(|v| &v.thread_leak)).map(|l| words::alert::thread_leak(name, l).into())
        }
        Thresholds::ConnectionLeakSuspected => {
            let l = suspected(v.map(|v| &v.connection_leak))?;
            let c = t.connections.unwrap_or_default();
            Some(words::alert::connection_leak(name, l, &c).into())
        }
        Thresholds::MemoryNearLimit(th) => memory_near_limit(th, t).map(|f| noting(f, done, now)),
        Thresholds::CpuThrottled(th) => cpu_throttled(th, name, history),
        Thresholds::CpuUnderAllocated => cpu_allocation(name, v?, AllocationVerdict::Under),
        Thresholds::CpuOverAllocated => cpu_allocation(name, v?, AllocationVerdict::Over),
        Thresholds::MemoryUnderAllocated => memory_allocation(name, v?, AllocationVerdict::Under),
        Thresholds::MemoryOverAllocated => memory_allocation(name, v?, AllocationVerdict::Over),
        Thresholds::OverAllocationCost(th) => over_allocation_cost(th, name, v?),
        // Rules on the app's output: see [`check_logs`].
        Thresholds::ErrorRateHigh(_)
        | Thresholds::Http5xxRatioHigh(_)
        | Thresholds::LatencyHigh(_) => None,
    }
}

/// Checks a rule on the app's output (all streams together).
pub fn check_logs(cfg: &RuleConfig, r: &LogRates) -> Option<Finding> {
    match &cfg.thresholds {
        Thresholds::ErrorRateHigh(th) => error_rate_high(th, r),
        Thresholds::Http5xxRatioHigh(th) => http_5xx_ratio_high(th, r),
        Thresholds::LatencyHigh(th) => latency_high(th, r),
        // Per-target rules: see [`check`].
        _ => None,
    }
}

/// The finding's description, followed by what Outrider did before the kill.
fn noting(mut f: Finding, done: Option<&Taken>, now: f64) -> Finding {
    if let Some(d) = done {
        let command = d.command.map(|c| c.map(|o| o.as_str()));
        let acted = words::alert::acted_before_the_kill(d.pid, d.signal, command, now - d.at);
        f.description = format!("{} {acted}", f.description);
    }
    f
}

/// The leak verdict, when it says "suspected".
fn suspected(l: Option<&Leak>) -> Option<&Leak> {
    l.filter(|l| l.suspected)
}

/// `restarts` or more restarts within the window.
fn target_restarting(
    th: &CrashLoop,
    name: &str,
    history: &RuleHistory,
    now: f64,
) -> Option<Finding> {
    let within = |times: &[f64]| times.iter().filter(|x| now - **x <= th.window).count();
    let n = within(&history.restart_times) as f64;
    let ooms = within(&history.oom_times);
    (n >= th.restarts)
        .then(|| words::alert::target_restarting(name, n, th.window, th.restarts, ooms).into())
}

/// The larger of working set and RSS over `usage_share` of the limit, or the memory
/// leak's time to the limit under `time_to_limit`; nothing without a limit.
fn memory_near_limit(th: &NearLimit, t: &TargetStatus) -> Option<Finding> {
    let limit = t.allocation.memory_limit_bytes.map(|l| l.0 as f64)?;
    let ws = t
        .cgroup
        .as_ref()
        .and_then(|c| c.own_working_set_bytes())
        .map(|w| w as f64);
    let used = ws.unwrap_or(0.0).max(t.resident_once_bytes() as f64);
    let ttl = t
        .verdicts
        .as_ref()
        .and_then(|v| v.memory_leak.time_to_limit_seconds);
    let near = used / limit > th.usage_share;
    let soon = ttl.is_some_and(|s| s < th.time_to_limit);
    (near || soon).then(|| words::alert::memory_near_limit(&t.name, used, limit, ttl, near).into())
}

/// An OOM kill within the window; carries the recommended resources.
fn oom_killed(
    th: &OomWindow,
    name: &str,
    v: Option<&Verdicts>,
    history: &RuleHistory,
    now: f64,
) -> Option<Finding> {
    let n = history
        .oom_times
        .iter()
        .filter(|x| now - **x <= th.window)
        .count();
    (n > 0).then(|| {
        Finding::new(
            words::alert::oom_killed(name, n, th.window, history.oom_kills.unwrap_or(0)),
            v.and_then(|v| v.resources_yaml.clone()),
        )
    })
}

/// Throttled share between the last two ticks over `throttled_share`.
fn cpu_throttled(th: &Throttling, name: &str, history: &RuleHistory) -> Option<Finding> {
    let share = history.throttled_share?;
    (share > th.throttled_share)
        .then(|| words::alert::cpu_throttled(name, share, th.throttled_share).into())
}

/// The CPU sizing verdict is `want`; carries the recommended resources.
fn cpu_allocation(name: &str, v: &Verdicts, want: AllocationVerdict) -> Option<Finding> {
    let cpu = &v.sizing.cpu;
    (cpu.allocation.0 == want).then(|| {
        Finding::new(
            words::alert::cpu_allocation(name, want, &cpu.reason),
            v.resources_yaml.clone(),
        )
    })
}

/// The workload's waste (per replica × replicas) passes `per_month`; carries the
/// recommended resources.
fn over_allocation_cost(th: &WasteLimit, name: &str, v: &Verdicts) -> Option<Finding> {
    let c = v.cost.as_ref()?;
    let waste = c.waste_per_month.total? * c.replicas as f64;
    (waste > th.per_month).then(|| {
        Finding::new(
            words::alert::over_allocation_cost(name, c, th.per_month),
            v.resources_yaml.clone(),
        )
    })
}

/// The memory sizing verdict is `want`; carries the recommended resources.
fn memory_allocation(name: &str, v: &Verdicts, want: AllocationVerdict) -> Option<Finding> {
    let memory = &v.sizing.memory;
    (memory.allocation.0 == want).then(|| {
        Finding::new(
            words::alert::memory_allocation(name, want, &memory.reason),
            v.resources_yaml.clone(),
        )
    })
}

/// Both the error rate and the error ratio over their thresholds.
fn error_rate_high(th: &ErrorRate, r: &LogRates) -> Option<Finding> {
    let ratio = r.error_ratio?;
    (r.errors_per_minute > th.errors_per_minute && ratio > th.error_ratio).then(|| {
        words::alert::error_rate_high(r, ratio, th.errors_per_minute, th.error_ratio).into()
    })
}

/// The 5xx share of the access log over `ratio`.
fn http_5xx_ratio_high(th: &Http5xxRatio, r: &LogRates) -> Option<Finding> {
    let ratio = r.http_5xx_ratio?;
    (ratio > th.ratio).then(|| words::alert::http_5xx_ratio_high(r, ratio, th.ratio).into())
}

/// p95 over its threshold, on at least `min_requests` requests.
fn latency_high(th: &SlowRequests, r: &LogRates) -> Option<Finding> {
    let l = r.latency?;
    (l.p95_seconds > th.p95 && l.requests as f64 >= th.min_requests)
        .then(|| words::alert::latency_high(&l, th.p95).into())
}
