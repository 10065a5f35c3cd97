//! `[analysis]`: windows and thresholds of the leak, sizing and latency verdicts.

use serde::{Deserialize, Serialize};

use crate::analysis::sizing::SizingConfig;
use crate::analysis::trend::TrendConfig;
use crate::analysis::AnalysisConfig;
use crate::units::{parse_bytes, parse_cpu, parse_duration, Scalar};

/// `[analysis]`: windows and thresholds of the leak and sizing verdicts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawAnalysis {
    pub leak_window: String,
    pub error_window: String,
    pub latency_window: String,
    pub memory_min_growth: Scalar,
    pub memory_min_rate_per_minute: Scalar,
    pub fds_min_growth: Scalar,
    pub fds_min_rate_per_minute: Scalar,
    pub threads_min_growth: Scalar,
    pub threads_min_rate_per_minute: Scalar,
    pub connections_min_growth: Scalar,
    pub connections_min_rate_per_minute: Scalar,
    pub sizing_window: String,
    pub sizing_half_life: String,
    pub sizing_min_data: String,
    pub cpu_request_factor: Scalar,
    pub cpu_request_floor: Scalar,
    pub memory_request_factor: Scalar,
    pub memory_request_floor: Scalar,
    pub memory_limit_factor: Scalar,
    pub oom_bump: Scalar,
    pub oom_bump_factor: Scalar,
    pub cpu_over_ratio: Scalar,
    pub cpu_over_min: Scalar,
    pub memory_over_ratio: Scalar,
    pub memory_over_min: Scalar,
    pub cpu_throttled_share: Scalar,
    pub cpu_wait_share: Scalar,
    pub near_limit_share: Scalar,
}

impl Default for RawAnalysis {
    fn default() -> Self {
        let s = |v: &str| Scalar::Str(v.into());
        RawAnalysis {
            leak_window: "1h".into(),
            error_window: "5m".into(),
            latency_window: "5m".into(),
            memory_min_growth: s("10Mi"),
            memory_min_rate_per_minute: s("100Ki"),
            fds_min_growth: Scalar::Int(10),
            fds_min_rate_per_minute: Scalar::Float(0.1),
            threads_min_growth: Scalar::Int(5),
            threads_min_rate_per_minute: Scalar::Float(0.1),
            connections_min_growth: Scalar::Int(20),
            connections_min_rate_per_minute: Scalar::Float(0.2),
            sizing_window: "24h".into(),
            sizing_half_life: "24h".into(),
            sizing_min_data: "10m".into(),
            cpu_request_factor: Scalar::Float(1.15),
            cpu_request_floor: s("10m"),
            memory_request_factor: Scalar::Float(1.15),
            memory_request_floor: s("32Mi"),
            memory_limit_factor: Scalar::Float(1.3),
            oom_bump: s("100Mi"),
            oom_bump_factor: Scalar::Float(1.2),
            cpu_over_ratio: Scalar::Float(1.5),
            cpu_over_min: s("100m"),
            memory_over_ratio: Scalar::Float(1.5),
            memory_over_min: s("64Mi"),
            cpu_throttled_share: Scalar::Float(0.25),
            cpu_wait_share: Scalar::Float(0.25),
            near_limit_share: Scalar::Float(0.9),
        }
    }
}

/// Checks `[analysis]` and builds the analysis thresholds: the windows first, then
/// every threshold in the order of [`AnalysisConfig`]'s fields.
pub(super) fn validate_analysis(a: &RawAnalysis, errors: &mut Vec<String>) -> AnalysisConfig {
    let leak_window = window("leak_window", &a.leak_window, 3600.0, errors);
    let error_window = window("error_window", &a.error_window, 300.0, errors);
    let latency_window = window("latency_window", &a.latency_window, 300.0, errors);
    let sizing_windows = [
        window("sizing_window", &a.sizing_window, 86400.0, errors),
        window("sizing_half_life", &a.sizing_half_life, 86400.0, errors),
        window("sizing_min_data", &a.sizing_min_data, 600.0, errors),
    ];
    let mut n = Thresholds { errors };
    let memory = n.trend(
        leak_window,
        ("memory_min_growth", &a.memory_min_growth),
        ("memory_min_rate_per_minute", &a.memory_min_rate_per_minute),
        bytes,
    );
    let fds = n.trend(
        leak_window,
        ("fds_min_growth", &a.fds_min_growth),
        ("fds_min_rate_per_minute", &a.fds_min_rate_per_minute),
        plain,
    );
    let threads = n.trend(
        leak_window,
        ("threads_min_growth", &a.threads_min_growth),
        (
            "threads_min_rate_per_minute",
            &a.threads_min_rate_per_minute,
        ),
        plain,
    );
    let sizing = sizing(a, sizing_windows, &mut n);
    let connections = n.trend(
        leak_window,
        ("connections_min_growth", &a.connections_min_growth),
        (
            "connections_min_rate_per_minute",
            &a.connections_min_rate_per_minute,
        ),
        plain,
    );
    AnalysisConfig {
        error_window,
        latency_window,
        memory,
        fds,
        threads,
        sizing,
        connections,
        cost: Default::default(), // `[cost]`'s, set by `config::validate`
    }
}

/// A window in seconds, above zero; `default` stands in for a wrong value.
fn window(key: &str, v: &str, default: f64, errors: &mut Vec<String>) -> f64 {
    match parse_duration(v) {
        Ok(d) if d.as_secs_f64() > 0.0 => d.as_secs_f64(),
        Ok(_) => {
            errors.push(format!("analysis.{key}: must be above zero"));
            default
        }
        Err(e) => {
            errors.push(format!("analysis.{key}: {e}"));
            default
        }
    }
}

/// A plain number such as `1.5`.
fn plain(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a number"))
}

/// A memory quantity such as `64Mi`, in bytes.
fn bytes(s: &str) -> Result<f64, String> {
    parse_bytes(s).map(|b| b as f64)
}

/// Reads thresholds (zero or more), listing each wrong one with its key.
struct Thresholds<'a> {
    errors: &'a mut Vec<String>,
}

impl Thresholds<'_> {
    fn num(&mut self, key: &str, v: &Scalar, parse: fn(&str) -> Result<f64, String>) -> f64 {
        match parse(&v.to_string()) {
            Ok(x) if x.is_finite() && x >= 0.0 => x,
            Ok(_) => {
                self.errors
                    .push(format!("analysis.{key}: must be zero or more"));
                0.0
            }
            Err(e) => {
                self.errors.push(format!("analysis.{key}: {e}"));
                0.0
            }
        }
    }

    /// A leak trend: its least growth, and its least rate (written per minute).
    fn trend(
        &mut self,
        window: f64,
        (growth_key, growth): (&str, &Scalar),
        (rate_key, rate): (&str, &Scalar),
        parse: fn(&str) -> Result<f64, String>,
    ) -> TrendConfig {
        TrendConfig {
            window,
            min_growth: self.num(growth_key, growth, parse),
            min_rate: self.num(rate_key, rate, parse) / 60.0,
        }
    }
}

/// The right-sizing thresholds; `[window, half_life, min_data]` are already checked.
fn sizing(a: &RawAnalysis, windows: [f64; 3], n: &mut Thresholds) -> SizingConfig {
    let [window, half_life, min_data] = windows;
    SizingConfig {
        window,
        half_life,
        min_data,
        cpu_request_factor: n.num("cpu_request_factor", &a.cpu_request_factor, plain),
        cpu_request_floor: n.num("cpu_request_floor", &a.cpu_request_floor, parse_cpu),
        memory_request_factor: n.num("memory_request_factor", &a.memory_request_factor, plain),
        memory_request_floor: n.num("memory_request_floor", &a.memory_request_floor, bytes),
        memory_limit_factor: n.num("memory_limit_factor", &a.memory_limit_factor, plain),
        oom_bump_bytes: n.num("oom_bump", &a.oom_bump, bytes),
        oom_bump_factor: n.num("oom_bump_factor", &a.oom_bump_factor, plain),
        cpu_over_ratio: n.num("cpu_over_ratio", &a.cpu_over_ratio, plain),
        cpu_over_min_cores: n.num("cpu_over_min", &a.cpu_over_min, parse_cpu),
        memory_over_ratio: n.num("memory_over_ratio", &a.memory_over_ratio, plain),
        memory_over_min_bytes: n.num("memory_over_min", &a.memory_over_min, bytes),
        throttled_share: n.num("cpu_throttled_share", &a.cpu_throttled_share, plain),
        cpu_wait_share: n.num("cpu_wait_share", &a.cpu_wait_share, plain),
        near_limit: n.num("near_limit_share", &a.near_limit_share, plain),
    }
}
