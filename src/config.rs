//! Configuration: the TOML file as written, overlaid with `OUTRIDER_<SECTION>__<KEY>`
//! environment variables and then CLI flags, validated into a [`Config`].
//!
//! Two types, as ripgrep does it: [`RawConfig`] is the file as deserialized (strings
//! for durations, regexes and quantities, so one bad value does not hide the next);
//! [`Config`] holds parsed durations, compiled regexes and resolved paths. Validation
//! collects every problem with its key path ([`ConfigErrors`]) so a user fixes them
//! all in one go; the CLI exits 64 on them before any port is bound.
//!
//! # Layout
//! - this file — the top-level sections, [`load`], [`validate`], quantity parsers
//! - [`sources`] — the environment and the flags, merged into the table
//! - [`logs`] — `[log_options]` (classification rules, durations, buckets)
//! - [`analysis`] — `[analysis]` (windows and thresholds)
//! - [`capacity`] — `[capacity]` and `sampling.pss_interval`

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
use crate::logs::framing::{LogFormat, DEFAULT_MAX_LINE_BYTES};
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
    pub format: LogFormat,
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
            "cri" => LogFormat::Cri,
            "docker" => LogFormat::Docker,
            "plain" => LogFormat::Plain,
            _ => LogFormat::Auto,
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

mod analysis;
pub mod capacity;
mod logs;
mod sources;

use analysis::validate_analysis;
pub use analysis::RawAnalysis;
use logs::validate_log_options;
pub use logs::{RawBuckets, RawLogOptions, RawLogRule};
use sources::{apply_env, apply_overrides, parse_table};

#[cfg(test)]
mod tests;
