//! Each rule's thresholds, typed: the [`Thresholds`] variant is the rule, and its
//! struct has every threshold the rule's check reads, so a rule cannot run without
//! one (the map this replaces answered a missing key with NaN, which never fires).
//!
//! [`Thresholds::build`] is the one place that says which config keys a rule takes,
//! in which [`Unit`], with which default; the defaults, the key list of the "unknown
//! key" error and the validated thresholds all come from it.

use super::RuleName;

/// How a threshold is written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number (a share is written 0.25).
    Number,
    /// A duration such as `4h`, held in seconds.
    Seconds,
}

/// `MemoryNearLimit`: near by share, or soon by the leak's time to the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearLimit {
    /// Share of the limit in use above which the target is near it.
    pub usage_share: f64,
    /// Seconds; a time to the limit below this is near too.
    pub time_to_limit: f64,
}

/// `OOMKilled`: how long a kill keeps the alert up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OomWindow {
    /// Seconds.
    pub window: f64,
}

/// `CpuThrottled`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    /// Share of CPU periods throttled between two ticks above which the alert holds.
    pub throttled_share: f64,
}

/// `ErrorRateHigh`: both must be exceeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRate {
    pub errors_per_minute: f64,
    pub error_ratio: f64,
}

/// `Http5xxRatioHigh`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Http5xxRatio {
    /// Share of responses that are 5xx above which the alert holds.
    pub ratio: f64,
}

/// `LatencyHigh`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowRequests {
    /// Seconds; a p95 request duration above this is slow.
    pub p95: f64,
    /// Fewer requests in the window than this tell nothing.
    pub min_requests: f64,
}

/// `TargetRestarting`: this many restarts within the window are a crash loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrashLoop {
    pub restarts: f64,
    /// Seconds.
    pub window: f64,
}

/// `OverAllocationCost`: the waste that is too much.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WasteLimit {
    /// The workload's waste (requests − recommendation, all replicas) per month, in
    /// `[cost] currency`, above which the alert holds.
    pub per_month: f64,
}

/// One rule with its thresholds; a rule without thresholds is a bare variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Thresholds {
    MemoryLeakSuspected,
    FdLeakSuspected,
    ThreadLeakSuspected,
    MemoryNearLimit(NearLimit),
    OomKilled(OomWindow),
    CpuThrottled(Throttling),
    CpuUnderAllocated,
    CpuOverAllocated,
    MemoryUnderAllocated,
    MemoryOverAllocated,
    ErrorRateHigh(ErrorRate),
    Http5xxRatioHigh(Http5xxRatio),
    LatencyHigh(SlowRequests),
    TargetDown,
    TargetRestarting(CrashLoop),
    ConnectionLeakSuspected,
    OverAllocationCost(WasteLimit),
}

impl Thresholds {
    /// `rule`'s thresholds, each one `value(key, unit, default)`, asked in the order
    /// the keys are listed to users.
    pub fn build(rule: RuleName, mut value: impl FnMut(&'static str, Unit, f64) -> f64) -> Self {
        use Unit::{Number, Seconds};
        match rule {
            RuleName::MemoryLeakSuspected => Thresholds::MemoryLeakSuspected,
            RuleName::FdLeakSuspected => Thresholds::FdLeakSuspected,
            RuleName::ThreadLeakSuspected => Thresholds::ThreadLeakSuspected,
            RuleName::MemoryNearLimit => Thresholds::MemoryNearLimit(NearLimit {
                usage_share: value("usage_share", Number, 0.9),
                time_to_limit: value("time_to_limit", Seconds, 4.0 * 3600.0),
            }),
            RuleName::OomKilled => Thresholds::OomKilled(OomWindow {
                window: value("window", Seconds, 300.0),
            }),
            RuleName::CpuThrottled => Thresholds::CpuThrottled(Throttling {
                throttled_share: value("throttled_share", Number, 0.25),
            }),
            RuleName::CpuUnderAllocated => Thresholds::CpuUnderAllocated,
            RuleName::CpuOverAllocated => Thresholds::CpuOverAllocated,
            RuleName::MemoryUnderAllocated => Thresholds::MemoryUnderAllocated,
            RuleName::MemoryOverAllocated => Thresholds::MemoryOverAllocated,
            RuleName::ErrorRateHigh => Thresholds::ErrorRateHigh(ErrorRate {
                errors_per_minute: value("errors_per_minute", Number, 10.0),
                error_ratio: value("error_ratio", Number, 0.05),
            }),
            RuleName::Http5xxRatioHigh => Thresholds::Http5xxRatioHigh(Http5xxRatio {
                ratio: value("ratio", Number, 0.05),
            }),
            RuleName::LatencyHigh => Thresholds::LatencyHigh(SlowRequests {
                p95: value("p95", Seconds, 1.0),
                min_requests: value("min_requests", Number, 20.0),
            }),
            RuleName::TargetDown => Thresholds::TargetDown,
            RuleName::TargetRestarting => Thresholds::TargetRestarting(CrashLoop {
                restarts: value("restarts", Number, 3.0),
                window: value("window", Seconds, 900.0),
            }),
            RuleName::ConnectionLeakSuspected => Thresholds::ConnectionLeakSuspected,
            RuleName::OverAllocationCost => Thresholds::OverAllocationCost(WasteLimit {
                per_month: value("waste_per_month", Number, 100.0),
            }),
        }
    }

    /// `rule` with its documented defaults.
    pub fn defaults(rule: RuleName) -> Self {
        Self::build(rule, |_, _, default| default)
    }

    /// The config keys of `rule`'s thresholds and their units, in listing order.
    pub fn keys(rule: RuleName) -> Vec<(&'static str, Unit)> {
        let mut keys = Vec::new();
        Self::build(rule, |key, unit, default| {
            keys.push((key, unit));
            default
        });
        keys
    }

    /// The rule these thresholds belong to.
    pub fn rule(&self) -> RuleName {
        match self {
            Thresholds::MemoryLeakSuspected => RuleName::MemoryLeakSuspected,
            Thresholds::FdLeakSuspected => RuleName::FdLeakSuspected,
            Thresholds::ThreadLeakSuspected => RuleName::ThreadLeakSuspected,
            Thresholds::MemoryNearLimit(_) => RuleName::MemoryNearLimit,
            Thresholds::OomKilled(_) => RuleName::OomKilled,
            Thresholds::CpuThrottled(_) => RuleName::CpuThrottled,
            Thresholds::CpuUnderAllocated => RuleName::CpuUnderAllocated,
            Thresholds::CpuOverAllocated => RuleName::CpuOverAllocated,
            Thresholds::MemoryUnderAllocated => RuleName::MemoryUnderAllocated,
            Thresholds::MemoryOverAllocated => RuleName::MemoryOverAllocated,
            Thresholds::ErrorRateHigh(_) => RuleName::ErrorRateHigh,
            Thresholds::Http5xxRatioHigh(_) => RuleName::Http5xxRatioHigh,
            Thresholds::LatencyHigh(_) => RuleName::LatencyHigh,
            Thresholds::TargetDown => RuleName::TargetDown,
            Thresholds::TargetRestarting(_) => RuleName::TargetRestarting,
            Thresholds::ConnectionLeakSuspected => RuleName::ConnectionLeakSuspected,
            Thresholds::OverAllocationCost(_) => RuleName::OverAllocationCost,
        }
    }

    /// Seconds of [`super::RuleHistory`] the rule looks back over, if it does.
    pub fn history_window(&self) -> Option<f64> {
        match self {
            Thresholds::OomKilled(t) => Some(t.window),
            Thresholds::TargetRestarting(t) => Some(t.window),
            _ => None,
        }
    }
}
