//! Configuration: the TOML file as written, overlaid with `OUTRIDER_<SECTION>__<KEY>`
//! environment variables and then CLI flags, validated into a [`Config`].
//!
//! Two types, as ripgrep does it: [`RawConfig`] is the file as deserialized (strings
//! for durations, regexes and quantities, so one bad value does not hide the next);
//! [`Config`] holds parsed durations, compiled regexes and resolved paths. Validation
//! collects every problem with its key path ([`ConfigErrors`]) so a user fixes them
//! all in one go; the CLI exits 64 on them before any port is bound.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::analysis::latency::Buckets;
use crate::analysis::sizing::SizingConfig;
use crate::analysis::trend::TrendConfig;
use crate::analysis::AnalysisConfig;
use crate::logs::access::AccessParser;
use crate::logs::classify::{Classifier, Rule, RuleAction};
use crate::logs::framing::{Format, DEFAULT_MAX_LINE_BYTES};
use crate::logs::LogSettings;
use serde::{Deserialize, Deserializer, Serialize};

/// Where Outrider listens unless told otherwise: a free port in the range the
/// Prometheus wiki keeps for exporters.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9717";

/// Every problem found in a configuration, one line each, led by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The file as deserialized, before validation. Defaults are named functions so
/// `check-config` prints them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawConfig {
    pub http: RawHttp,
    pub sampling: RawSampling,
    pub lifecycle: RawLifecycle,
    pub targets: Vec<RawTarget>,
    pub logs: Vec<RawLog>,
    pub resources: RawResources,
    pub analysis: RawAnalysis,
    pub log_options: RawLogOptions,
    pub alerts: crate::alerts::config::RawAlerts,
    pub receivers: Vec<crate::alerts::config::RawReceiver>,
    pub capacity: capacity::RawCapacity,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawHttp {
    pub listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            listen: DEFAULT_LISTEN.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawSampling {
    pub interval: String,
    pub proc_root: String,
    /// Append every sample to this trace file (the `replay` format); empty: off.
    pub record: String,
    /// Least time between two scans of the app's TCP sockets; "0" or "off": never.
    pub connections_interval: String,
    /// How often the PSS of pre-fork masters and workers is read; `off`: never.
    #[serde(default = "capacity::default_pss_interval")]
    pub pss_interval: String,
}

impl Default for RawSampling {
    fn default() -> Self {
        RawSampling {
            interval: "5s".into(),
            proc_root: "/proc".into(),
            record: String::new(),
            connections_interval: "15s".into(),
            pss_interval: capacity::default_pss_interval(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawLifecycle {
    pub shutdown_grace: String,
}

impl Default for RawLifecycle {
    fn default() -> Self {
        RawLifecycle {
            shutdown_grace: "1s".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_i32",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub children: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub path: String,
    #[serde(default = "auto")]
    pub format: String,
    #[serde(default = "end")]
    pub start_at: String,
    /// This log's own `log_options.duration_regex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_regex: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downward_api_dir: Option<String>,
    pub downward_api_cpu_divisor: Scalar,
}

impl Default for RawResources {
    fn default() -> Self {
        RawResources {
            cpu_request: None,
            cpu_limit: None,
            memory_request: None,
            memory_limit: None,
            downward_api_dir: None,
            downward_api_cpu_divisor: Scalar::Str("1m".into()),
        }
    }
}

/// `[log_options]`: how every stream's lines are read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawLogOptions {
    /// Longer lines are cut here and counted as oversized.
    pub max_line_bytes: Scalar,
    /// Checked first, in order: a regex and what a match means.
    pub rules: Vec<RawLogRule>,
    /// A directory (an emptyDir) for log offsets, so a restart resumes exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
    /// A regex with a named capture `duration_s`, `duration_ms` or `duration_us`
    /// (and optionally `status`) for access lines the built-in readers miss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_regex: Option<String>,
    /// The app's gunicorn `access_log_format`, so its durations are read exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gunicorn_access_log_format: Option<String>,
    /// Upper bounds (seconds) of `outrider_http_request_duration_seconds`.
    pub duration_buckets: RawBuckets,
}

/// Histogram bounds as a TOML list, or a comma-separated string (from the
/// environment).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RawBuckets {
    List(Vec<Scalar>),
    Csv(String),
}

impl Default for RawBuckets {
    fn default() -> Self {
        RawBuckets::List(
            crate::analysis::latency::Buckets::default()
                .0
                .into_iter()
                .map(Scalar::Float)
                .collect(),
        )
    }
}

impl RawBuckets {
    fn parse(&self) -> Result<Vec<f64>, String> {
        let parse = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number"))
        };
        match self {
            RawBuckets::List(v) => v.iter().map(|x| parse(&x.to_string())).collect(),
            RawBuckets::Csv(s) => s.split(',').map(parse).collect(),
        }
    }
}

impl Default for RawLogOptions {
    fn default() -> Self {
        RawLogOptions {
            max_line_bytes: Scalar::Str("64Ki".into()),
            rules: Vec::new(),
            state_dir: None,
            duration_regex: None,
            gunicorn_access_log_format: None,
            duration_buckets: RawBuckets::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawLogRule {
    pub pattern: String,
    /// error | warning | info | debug | unknown | ignore
    pub action: String,
}

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

/// Checks `[log_options]` and builds the classifier.
fn validate_log_options(o: &RawLogOptions, errors: &mut Vec<String>) -> LogSettings {
    let max_line_bytes = match parse_bytes(&o.max_line_bytes.to_string()) {
        Ok(b) if b >= 256 => b as usize,
        Ok(_) => {
            errors.push("log_options.max_line_bytes: must be at least 256".into());
            DEFAULT_MAX_LINE_BYTES
        }
        Err(e) => {
            errors.push(format!("log_options.max_line_bytes: {e}"));
            DEFAULT_MAX_LINE_BYTES
        }
    };
    let mut rules = Vec::new();
    for (i, r) in o.rules.iter().enumerate() {
        let key = format!("log_options.rules[{i}]");
        let mut ok = true;
        if let Err(e) = Regex::new(&r.pattern) {
            errors.push(format!(
                "{key}.pattern: bad regex: {}",
                first_line(&e.to_string())
            ));
            ok = false;
        }
        match r.action.parse::<RuleAction>() {
            Ok(action) if ok => rules.push(Rule {
                pattern: r.pattern.clone(),
                action,
            }),
            Ok(_) => {}
            Err(e) => errors.push(format!("{key}.action: {e}")),
        }
    }
    let classifier = Classifier::new(&rules).unwrap_or_else(|e| {
        errors.push(format!("log_options.rules: {}", first_line(&e.to_string())));
        Classifier::default()
    });
    let classifier = classifier.with_access(validate_access(o, errors));
    LogSettings {
        classifier,
        max_line_bytes,
    }
}

/// Checks the request-duration keys of `[log_options]`.
fn validate_access(o: &RawLogOptions, errors: &mut Vec<String>) -> AccessParser {
    let buckets = match o.duration_buckets.parse().and_then(Buckets::new) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!("log_options.duration_buckets: {e}"));
            Buckets::default()
        }
    };
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let regex = nonempty(&o.duration_regex);
    let gunicorn = nonempty(&o.gunicorn_access_log_format);
    AccessParser::new(regex.as_deref(), gunicorn.as_deref(), buckets.clone()).unwrap_or_else(
        |errs| {
            for (key, e) in errs {
                errors.push(format!("log_options.{key}: {e}"));
            }
            AccessParser::default()
        },
    )
}

/// Checks `[analysis]` and builds the analysis thresholds.
fn validate_analysis(a: &RawAnalysis, errors: &mut Vec<String>) -> AnalysisConfig {
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

/// A value a user may write as a string or a number (`cpu_request = 0.5` or `"500m"`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => write!(f, "{s}"),
        }
    }
}

fn yes() -> bool {
    true
}
fn auto() -> String {
    "auto".into()
}
fn end() -> String {
    "end".into()
}

/// Environment variables arrive as strings; accept `"1234"` where a number is due.
fn lenient_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    match Option::<Scalar>::deserialize(d)? {
        None => Ok(None),
        Some(Scalar::Int(i)) => i32::try_from(i)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{i} is out of range for a pid"))),
        Some(Scalar::Str(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
        Some(Scalar::Float(x)) => Err(serde::de::Error::custom(format!(
            "{x} is not a whole number"
        ))),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Str(String),
    }
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not true or false"
            ))),
        },
    }
}

/// The few settings a CLI flag may override; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub interval: Option<String>,
    pub pid: Option<i32>,
    pub log: Option<String>,
    pub record: Option<String>,
}

/// The validated configuration every other module works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Time between two samples; at least 100 ms.
    pub interval: Duration,
    pub shutdown_grace: Duration,
    /// `/proc` normally; a fixture tree in tests.
    pub proc_root: PathBuf,
    pub targets: Vec<TargetSpec>,
    pub logs: Vec<LogSpec>,
    pub resources: ResourceSpec,
    pub analysis: AnalysisConfig,
    pub log_settings: LogSettings,
    /// Trace file every sample is appended to.
    pub record: Option<PathBuf>,
    /// Least time between two connection scans; `None`: scans are off.
    pub connections_interval: Option<Duration>,
    pub alerts: crate::alerts::AlertsConfig,
    pub receivers: Vec<crate::alerts::notify::Receiver>,
    /// PSS read interval for pre-fork servers; `None`: never read.
    pub pss_interval: Option<Duration>,
    pub capacity: crate::analysis::capacity::CapacityConfig,
}

/// One configured group of processes.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// The `target` label; `None` means "the main process' comm", fixed when first seen.
    pub name: Option<String>,
    pub selector: Selector,
    /// Whether descendants of a matched process join its group.
    pub children: bool,
}

#[derive(Debug, Clone)]
pub enum Selector {
    Pid(i32),
    PidFile(PathBuf),
    /// Every given field must match (process-exporter's semantics).
    Match {
        /// Exact comm (the kernel's 15-byte process name).
        comm: Option<String>,
        /// Exact executable path, or its file name when no `/` is given.
        exe: Option<String>,
        /// Regex searched in the arguments joined by spaces.
        cmdline: Option<Regex>,
    },
}

#[derive(Debug, Clone)]
pub struct LogSpec {
    /// The `stream` label.
    pub name: String,
    pub source: LogSource,
    pub format: Format,
    /// This log's own settings (its `duration_regex`); `None`: `log_options`'.
    pub settings: Option<LogSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    Stdin,
    /// A path or glob, followed across rotations.
    Files {
        pattern: String,
        start_at_beginning: bool,
        /// Offsets are kept here so a restart resumes exactly where it stopped.
        checkpoint: Option<PathBuf>,
    },
}

/// The app's allocation as configured; unset fields fall back to the downward API
/// directory and then to the cgroup's limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSpec {
    pub cpu_request_cores: Option<f64>,
    pub cpu_limit_cores: Option<f64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub downward_api_dir: Option<PathBuf>,
    /// Cores per unit in the downward API's CPU files (`divisor: 1m` gives 0.001).
    pub downward_api_cpu_divisor: f64,
}

/// Reads the file (if any), applies the environment and the flags, and validates.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<(RawConfig, Config), ConfigErrors> {
    let mut table = match file {
        None => toml::Table::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigErrors(vec![format!(
                    "config file {}: cannot read it: {e}",
                    path.display()
                )])
            })?;
            text.parse::<toml::Table>().map_err(|e| {
                ConfigErrors(vec![format!(
                    "config file {}: not valid TOML: {}",
                    path.display(),
                    e.to_string().trim_end()
                )])
            })?
        }
    };
    let mut errors = Vec::new();
    apply_env(&mut table, env, &mut errors);
    apply_overrides(&mut table, overrides);
    let raw = parse_table(table, &mut errors);
    let Some(raw) = raw else {
        return Err(ConfigErrors(errors));
    };
    match validate(&raw) {
        Ok(config) if errors.is_empty() => Ok((raw, config)),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(more)) => {
            errors.extend(more);
            Err(ConfigErrors(errors))
        }
    }
}

/// Deserializes, listing every unknown key rather than stopping at the first.
fn parse_table(table: toml::Table, errors: &mut Vec<String>) -> Option<RawConfig> {
    let mut unknown = Vec::new();
    let result: Result<RawConfig, _> =
        serde_ignored::deserialize(toml::Value::Table(table), |path| {
            unknown.push(path.to_string())
        });
    for key in unknown {
        errors.push(format!("{key}: unknown key"));
    }
    match result {
        Ok(raw) => Some(raw),
        Err(e) => {
            errors.push(e.to_string().trim_end().to_string());
            None
        }
    }
}

/// `OUTRIDER_HTTP__LISTEN=…` sets `http.listen`; `OUTRIDER_TARGETS__0__PID=…` sets
/// `targets[0].pid`. Values are strings (numeric fields accept them), or arrays
/// written in TOML (`OUTRIDER_RECEIVERS__0__ALERTNAMES='["TargetDown"]'`). `OUTRIDER_LOG`
/// and `OUTRIDER_CONFIG` (single underscore-free names) are not config keys.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
    errors: &mut Vec<String>,
) {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("OUTRIDER_") && k.contains("__"))
        .collect();
    vars.sort();
    for (key, value) in vars {
        let path: Vec<String> = key["OUTRIDER_".len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if let Err(e) = set_path(table, &path, env_value(value)) {
            errors.push(format!("{key}: {e}"));
        }
    }
}

/// An environment value is a string, except one written as a TOML array
/// (`["a", "b"]`), which list keys such as `group_by` or `alertnames` need.
fn env_value(value: String) -> toml::Value {
    if value.trim_start().starts_with('[') {
        if let Ok(mut t) = format!("v = {value}").parse::<toml::Table>() {
            if let Some(v @ toml::Value::Array(_)) = t.remove("v") {
                return v;
            }
        }
    }
    toml::Value::String(value)
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty key")?;
    if first.is_empty() {
        return Err("empty key segment".into());
    }
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let slot = table
        .entry(first.clone())
        .or_insert_with(|| match rest[0].parse::<usize>() {
            Ok(_) => toml::Value::Array(Vec::new()),
            Err(_) => toml::Value::Table(toml::Table::new()),
        });
    set_value(slot, rest, value)
}

fn set_value(slot: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    match slot {
        toml::Value::Table(t) => set_path(t, path, value),
        toml::Value::Array(items) => {
            let index: usize = path[0]
                .parse()
                .map_err(|_| format!("{:?} is not an array index", path[0]))?;
            if index > items.len() {
                return Err(format!(
                    "index {index} skips entries: the array has {} so far",
                    items.len()
                ));
            }
            if index == items.len() {
                items.push(toml::Value::Table(toml::Table::new()));
            }
            if path.len() == 1 {
                items[index] = value;
                return Ok(());
            }
            set_value(&mut items[index], &path[1..], value)
        }
        _ => Err("sets a key inside a value that is not a table".into()),
    }
}

fn apply_overrides(table: &mut toml::Table, o: &Overrides) {
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = entry {
            t.insert(key.to_string(), value);
        } else {
            *entry = toml::Value::Table(toml::Table::from_iter([(key.to_string(), value)]));
        }
    };
    if let Some(listen) = &o.listen {
        set("http", "listen", toml::Value::String(listen.clone()));
    }
    if let Some(record) = &o.record {
        set("sampling", "record", toml::Value::String(record.clone()));
    }
    if let Some(interval) = &o.interval {
        set(
            "sampling",
            "interval",
            toml::Value::String(interval.clone()),
        );
    }
    if let Some(pid) = o.pid {
        let target =
            toml::Table::from_iter([("pid".to_string(), toml::Value::Integer(pid.into()))]);
        table.insert(
            "targets".into(),
            toml::Value::Array(vec![toml::Value::Table(target)]),
        );
    }
    if let Some(log) = &o.log {
        let entry =
            toml::Table::from_iter([("path".to_string(), toml::Value::String(log.clone()))]);
        table.insert(
            "logs".into(),
            toml::Value::Array(vec![toml::Value::Table(entry)]),
        );
    }
}

/// Checks every field and builds the [`Config`], or lists every problem.
pub fn validate(raw: &RawConfig) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String| errors.push(format!("{key}: {msg}"));

    let listen = match raw.http.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            err(
                "http.listen",
                format!(
                    "{:?} is not an address and port such as 0.0.0.0:9717",
                    raw.http.listen
                ),
            );
            None
        }
    };
    let interval = match parse_duration(&raw.sampling.interval) {
        Ok(d) if d >= Duration::from_millis(100) => Some(d),
        Ok(_) => {
            err("sampling.interval", "must be at least 100ms".into());
            None
        }
        Err(e) => {
            err("sampling.interval", e);
            None
        }
    };
    let connections_interval = match raw.sampling.connections_interval.trim() {
        "off" | "0" => Some(None),
        v => match parse_duration(v) {
            Ok(d) if d.is_zero() => Some(None),
            Ok(d) if d >= Duration::from_millis(100) => Some(Some(d)),
            Ok(_) => {
                err(
                    "sampling.connections_interval",
                    "must be at least 100ms, or \"off\"".into(),
                );
                None
            }
            Err(e) => {
                err("sampling.connections_interval", format!("{e}, or \"off\""));
                None
            }
        },
    };
    let grace = parse_duration(&raw.lifecycle.shutdown_grace)
        .map_err(|e| err("lifecycle.shutdown_grace", e))
        .ok();
    if raw.sampling.proc_root.is_empty() {
        err("sampling.proc_root", "must not be empty".into());
    }

    let mut targets = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, t) in raw.targets.iter().enumerate() {
        let key = |field: &str| format!("targets[{i}].{field}");
        if let Some(name) = &t.name {
            if !valid_label_value(name) {
                err(
                    &key("name"),
                    format!("{name:?} must be 1-64 characters of letters, digits, '_', '-', '.'"),
                );
            } else if !names.insert(name.clone()) {
                err(&key("name"), format!("{name:?} is used by another target"));
            }
        }
        let cmdline = match &t.cmdline {
            Some(re) => match Regex::new(re) {
                Ok(r) => Some(r),
                Err(e) => {
                    err(
                        &key("cmdline"),
                        format!("bad regex: {}", first_line(&e.to_string())),
                    );
                    None
                }
            },
            None => None,
        };
        let given = [
            t.pid.is_some(),
            t.pid_file.is_some(),
            t.comm.is_some() || t.exe.is_some() || t.cmdline.is_some(),
        ];
        let selector = match given {
            [true, false, false] => {
                let pid = t.pid.unwrap_or_default();
                if pid <= 0 {
                    err(&key("pid"), format!("{pid} is not a process id"));
                }
                Some(Selector::Pid(pid))
            }
            [false, true, false] => Some(Selector::PidFile(PathBuf::from(
                t.pid_file.clone().unwrap_or_default(),
            ))),
            [false, false, true] => Some(Selector::Match {
                comm: t.comm.clone(),
                exe: t.exe.clone(),
                cmdline: cmdline.clone(),
            }),
            [false, false, false] => {
                err(
                    &format!("targets[{i}]"),
                    "needs one of pid, pid_file, or comm/exe/cmdline".into(),
                );
                None
            }
            _ => {
                err(
                    &format!("targets[{i}]"),
                    "pid, pid_file and comm/exe/cmdline exclude one another".into(),
                );
                None
            }
        };
        let named_by_selector = matches!(selector, Some(Selector::Pid(_) | Selector::PidFile(_)));
        if t.name.is_none() && !named_by_selector && t.comm.is_none() {
            err(
                &key("name"),
                "is required unless the target is chosen by pid, pid_file or comm".into(),
            );
        }
        if let Some(selector) = selector {
            let name = t.name.clone().or_else(|| match &selector {
                Selector::Match { comm, .. } => comm.clone(),
                _ => None,
            });
            targets.push(TargetSpec {
                name,
                selector,
                children: t.children,
            });
        }
    }

    let mut logs = Vec::new();
    let mut streams = std::collections::HashSet::new();
    for (i, l) in raw.logs.iter().enumerate() {
        let key = |field: &str| format!("logs[{i}].{field}");
        let name = l.name.clone().unwrap_or_else(|| {
            if l.path == "-" {
                "stdin".to_string()
            } else {
                format!("log{i}")
            }
        });
        if !valid_label_value(&name) {
            err(
                &key("name"),
                format!("{name:?} must be 1-64 characters of letters, digits, '_', '-', '.'"),
            );
        } else if matches!(name.as_str(), "stdout" | "stderr") || !streams.insert(name.clone()) {
            err(&key("name"), format!("{name:?} is already a stream name"));
        }
        if !matches!(l.format.as_str(), "auto" | "cri" | "docker" | "plain") {
            err(
                &key("format"),
                format!("{:?} is not one of auto, cri, docker, plain", l.format),
            );
        }
        if !matches!(l.start_at.as_str(), "end" | "beginning") {
            err(
                &key("start_at"),
                format!("{:?} is not one of end, beginning", l.start_at),
            );
        }
        let format = match l.format.as_str() {
            "cri" => Format::Cri,
            "docker" => Format::Docker,
            "plain" => Format::Plain,
            _ => Format::Auto,
        };
        if l.path == "-" {
            logs.push(LogSpec {
                name,
                source: LogSource::Stdin,
                format,
                settings: None,
            });
        } else {
            match expand_env(&l.path) {
                Ok(pattern) => {
                    if let Err(e) = glob::Pattern::new(&pattern) {
                        err(
                            &key("path"),
                            format!("{pattern:?} is not a valid glob: {e}"),
                        );
                    }
                    let checkpoint = raw
                        .log_options
                        .state_dir
                        .as_ref()
                        .filter(|d| !d.is_empty())
                        .map(|d| PathBuf::from(d).join(format!("{name}.offsets.json")));
                    logs.push(LogSpec {
                        name,
                        source: LogSource::Files {
                            pattern,
                            start_at_beginning: l.start_at == "beginning",
                            checkpoint,
                        },
                        format,
                        settings: None,
                    });
                }
                Err(e) => err(&key("path"), e),
            }
        }
    }

    let r = &raw.resources;
    let cpu = |key: &str, v: &Option<Scalar>, errs: &mut Vec<String>| -> Option<f64> {
        v.as_ref().and_then(|s| match parse_cpu(&s.to_string()) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("resources.{key}: {e}"));
                None
            }
        })
    };
    let mem = |key: &str, v: &Option<Scalar>, errs: &mut Vec<String>| -> Option<u64> {
        v.as_ref().and_then(|s| match parse_bytes(&s.to_string()) {
            Ok(c) => Some(c),
            Err(e) => {
                errs.push(format!("resources.{key}: {e}"));
                None
            }
        })
    };
    let resources = ResourceSpec {
        cpu_request_cores: cpu("cpu_request", &r.cpu_request, &mut errors),
        cpu_limit_cores: cpu("cpu_limit", &r.cpu_limit, &mut errors),
        memory_request_bytes: mem("memory_request", &r.memory_request, &mut errors),
        memory_limit_bytes: mem("memory_limit", &r.memory_limit, &mut errors),
        downward_api_dir: r.downward_api_dir.as_ref().map(PathBuf::from),
        downward_api_cpu_divisor: match parse_cpu(&r.downward_api_cpu_divisor.to_string()) {
            Ok(d) if d > 0.0 => d,
            Ok(_) => {
                errors.push("resources.downward_api_cpu_divisor: must be above zero".into());
                0.001
            }
            Err(e) => {
                errors.push(format!("resources.downward_api_cpu_divisor: {e}"));
                0.001
            }
        },
    };

    let analysis = validate_analysis(&raw.analysis, &mut errors);
    let log_settings = validate_log_options(&raw.log_options, &mut errors);
    // Every log is in `logs` unless it had an error, and then none is used.
    for (i, (spec, l)) in logs.iter_mut().zip(&raw.logs).enumerate() {
        let Some(pattern) = l.duration_regex.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        match log_settings.classifier.access().with_user_regex(pattern) {
            Ok(access) => {
                spec.settings = Some(LogSettings {
                    classifier: log_settings.classifier.clone().with_access(access),
                    max_line_bytes: log_settings.max_line_bytes,
                })
            }
            Err(e) => errors.push(format!("logs[{i}].duration_regex: {e}")),
        }
    }
    let alerts = crate::alerts::config::validate(&raw.alerts, &mut errors);
    let receivers = crate::alerts::config::validate_receivers(&raw.receivers, &mut errors);
    let pss_interval = capacity::validate_pss_interval(&raw.sampling.pss_interval, &mut errors);
    let capacity = capacity::validate_capacity(&raw.capacity, &mut errors);

    match (listen, interval, grace) {
        (Some(listen), Some(interval), Some(shutdown_grace)) if errors.is_empty() => Ok(Config {
            listen,
            interval,
            shutdown_grace,
            proc_root: PathBuf::from(&raw.sampling.proc_root),
            targets,
            logs,
            resources,
            analysis,
            log_settings,
            record: (!raw.sampling.record.is_empty()).then(|| PathBuf::from(&raw.sampling.record)),
            connections_interval: connections_interval.flatten(),
            alerts,
            receivers,
            pss_interval,
            capacity,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Expands `${NAME}` from the environment (the downward API's namespace, pod name,
/// pod uid and container name build the kubelet's log path).
pub fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{s:?}: an unclosed ${{ in the path"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("{s:?}: the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Label values come from config only; keep them short and plain.
pub fn valid_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `"5s"`, `"250ms"`, `"1h30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration such as 5s, 250ms or 1h30m ({e})"))
}

/// Kubernetes CPU quantity in cores: `"500m"` → 0.5, `"2"` → 2.0, `"0.25"`.
pub fn parse_cpu(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a CPU quantity such as 500m, 0.5 or 2");
    let (num, scale) = match t.strip_suffix('m') {
        Some(n) => (n, 0.001),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v * scale)
}

/// Kubernetes memory quantity in bytes: `"512Mi"`, `"1G"`, `"134217728"`, `"1.5Gi"`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a memory quantity such as 512Mi, 1G or 134217728");
    const UNITS: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, scale) = UNITS
        .iter()
        .find_map(|(u, f)| t.strip_suffix(u).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok((v * scale).round() as u64)
}

pub mod capacity;

#[cfg(test)]
mod tests;
