//! `[[logs]]` and `[log_options]`: which streams are read, how every stream's lines
//! are read, and how access lines give request durations.

use std::collections::HashSet;
use std::path::PathBuf;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::last_line;
use crate::logs::access::AccessParser;
use crate::logs::classify::{Classifier, Rule, RuleAction};
use crate::logs::framing::{LogFormat, DEFAULT_MAX_LINE_BYTES};
use crate::logs::latency::Buckets;
use crate::logs::LogSettings;
use crate::units::{expand_env, parse_bytes, valid_label_value, Scalar};

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

fn auto() -> String {
    "auto".into()
}
fn end() -> String {
    "end".into()
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

/// Checks every `[[logs]]` entry; a log whose path cannot be expanded is left out
/// (and then the error means none is used). Offsets go under `state_dir` if set.
pub(super) fn validate_logs(
    raw: &[RawLog],
    state_dir: Option<&str>,
    errors: &mut Vec<String>,
) -> Vec<LogSpec> {
    let mut streams = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, l)| validate_log(i, l, state_dir, &mut streams, errors))
        .collect()
}

/// `logs[i]`: a unique stream name, a known format and start, a path or `-`.
fn validate_log(
    i: usize,
    l: &RawLog,
    state_dir: Option<&str>,
    streams: &mut HashSet<String>,
    errors: &mut Vec<String>,
) -> Option<LogSpec> {
    let mut err = |field: &str, msg: String| errors.push(format!("logs[{i}].{field}: {msg}"));
    let name = l.name.clone().unwrap_or_else(|| {
        if l.path == "-" {
            "stdin".to_string()
        } else {
            format!("log{i}")
        }
    });
    if !valid_label_value(&name) {
        err(
            "name",
            format!("{name:?} must be 1-64 characters of letters, digits, '_', '-', '.'"),
        );
    } else if matches!(name.as_str(), "stdout" | "stderr") || !streams.insert(name.clone()) {
        err("name", format!("{name:?} is already a stream name"));
    }
    if !matches!(l.format.as_str(), "auto" | "cri" | "docker" | "plain") {
        err(
            "format",
            format!("{:?} is not one of auto, cri, docker, plain", l.format),
        );
    }
    if !matches!(l.start_at.as_str(), "end" | "beginning") {
        err(
            "start_at",
            format!("{:?} is not one of end, beginning", l.start_at),
        );
    }
    let format = match l.format.as_str() {
        "cri" => LogFormat::Cri,
        "docker" => LogFormat::Docker,
        "plain" => LogFormat::Plain,
        _ => LogFormat::Auto,
    };
    let source = if l.path == "-" {
        LogSource::Stdin
    } else {
        let pattern = expand_env(&l.path).map_err(|e| err("path", e)).ok()?;
        if let Err(e) = glob::Pattern::new(&pattern) {
            err("path", format!("{pattern:?} is not a valid glob: {e}"));
        }
        let checkpoint = state_dir
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d).join(format!("{name}.offsets.json")));
        LogSource::Files {
            pattern,
            start_at_beginning: l.start_at == "beginning",
            checkpoint,
        }
    };
    Some(LogSpec {
        name,
        source,
        format,
        settings: None,
    })
}

/// `logs[i].duration_regex`: a log's own access regex, on top of `[log_options]`.
pub(super) fn validate_log_duration_regexes(
    logs: &mut [LogSpec],
    raw: &[RawLog],
    log_settings: &LogSettings,
    errors: &mut Vec<String>,
) {
    // Every log is in `logs` unless it had an error, and then none is used.
    for (i, (spec, l)) in logs.iter_mut().zip(raw).enumerate() {
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
            Buckets::default()
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

/// Checks `[log_options]` and builds the classifier.
pub(super) fn validate_log_options(o: &RawLogOptions, errors: &mut Vec<String>) -> LogSettings {
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
                last_line(&e.to_string())
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
        errors.push(format!("log_options.rules: {}", last_line(&e.to_string())));
        Classifier::default()
    });
    let classifier = classifier.with_access(validate_access(o, errors));
    LogSettings {
        classifier,
        max_line_bytes,
    }
}

/// Checks the request-duration keys of `[log_options]`.
pub(super) fn validate_access(o: &RawLogOptions, errors: &mut Vec<String>) -> AccessParser {
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
