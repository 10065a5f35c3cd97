//! `[analysis]`: windows and thresholds of the leak, sizing and latency verdicts.

use super::*;

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

/// Checks `[analysis]` and builds the analysis thresholds.
pub(super) fn validate_analysis(a: &RawAnalysis, errors: &mut Vec<String>) -> AnalysisConfig {
    let mut err = |key: &str, msg: String| errors.push(format!("analysis.{key}: {msg}"));
    let mut dur = |key: &str, v: &str, default: f64| match parse_duration(v) {
        Ok(d) if d.as_secs_f64() > 0.0 => d.as_secs_f64(),
        Ok(_) => {
            err(key, "must be above zero".into());
            default
        }
        Err(e) => {
            err(key, e);
            default
        }
    };
    let leak_window = dur("leak_window", &a.leak_window, 3600.0);
    let error_window = dur("error_window", &a.error_window, 300.0);
    let latency_window = dur("latency_window", &a.latency_window, 300.0);
    let sizing_window = dur("sizing_window", &a.sizing_window, 86400.0);
    let sizing_half_life = dur("sizing_half_life", &a.sizing_half_life, 86400.0);
    let sizing_min_data = dur("sizing_min_data", &a.sizing_min_data, 600.0);
    let mut errs = Vec::new();
    let mut num = |key: &str, v: &Scalar, parse: fn(&str) -> Result<f64, String>| -> f64 {
        match parse(&v.to_string()) {
            Ok(x) if x.is_finite() && x >= 0.0 => x,
            Ok(_) => {
                errs.push(format!("analysis.{key}: must be zero or more"));
                0.0
            }
            Err(e) => {
                errs.push(format!("analysis.{key}: {e}"));
                0.0
            }
        }
    };
    let plain = |s: &str| -> Result<f64, String> {
        s.trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    let bytes = |s: &str| parse_bytes(s).map(|b| b as f64);
    let cfg = AnalysisConfig {
        error_window,
        latency_window,
        memory: TrendConfig {
            window: leak_window,
            min_growth: num("memory_min_growth", &a.memory_min_growth, bytes),
            min_rate: num(
                "memory_min_rate_per_minute",
                &a.memory_min_rate_per_minute,
                bytes,
            ) / 60.0,
        },
        fds: TrendConfig {
            window: leak_window,
            min_growth: num("fds_min_growth", &a.fds_min_growth, plain),
            min_rate: num("fds_min_rate_per_minute", &a.fds_min_rate_per_minute, plain) / 60.0,
        },
        threads: TrendConfig {
            window: leak_window,
            min_growth: num("threads_min_growth", &a.threads_min_growth, plain),
            min_rate: num(
                "threads_min_rate_per_minute",
                &a.threads_min_rate_per_minute,
                plain,
            ) / 60.0,
        },
        sizing: SizingConfig {
            window: sizing_window,
            half_life: sizing_half_life,
            min_data: sizing_min_data,
            cpu_request_factor: num("cpu_request_factor", &a.cpu_request_factor, plain),
            cpu_request_floor: num("cpu_request_floor", &a.cpu_request_floor, parse_cpu),
            memory_request_factor: num("memory_request_factor", &a.memory_request_factor, plain),
            memory_request_floor: num("memory_request_floor", &a.memory_request_floor, bytes),
            memory_limit_factor: num("memory_limit_factor", &a.memory_limit_factor, plain),
            oom_bump_bytes: num("oom_bump", &a.oom_bump, bytes),
            oom_bump_factor: num("oom_bump_factor", &a.oom_bump_factor, plain),
            cpu_over_ratio: num("cpu_over_ratio", &a.cpu_over_ratio, plain),
            cpu_over_min_cores: num("cpu_over_min", &a.cpu_over_min, parse_cpu),
            memory_over_ratio: num("memory_over_ratio", &a.memory_over_ratio, plain),
            memory_over_min_bytes: num("memory_over_min", &a.memory_over_min, bytes),
            throttled_share: num("cpu_throttled_share", &a.cpu_throttled_share, plain),
            cpu_wait_share: num("cpu_wait_share", &a.cpu_wait_share, plain),
            near_limit: num("near_limit_share", &a.near_limit_share, plain),
        },
        connections: TrendConfig {
            window: leak_window,
            min_growth: num("connections_min_growth", &a.connections_min_growth, plain),
            min_rate: num(
                "connections_min_rate_per_minute",
                &a.connections_min_rate_per_minute,
                plain,
            ) / 60.0,
        },
    };
    errors.extend(errs);
    cfg
}
